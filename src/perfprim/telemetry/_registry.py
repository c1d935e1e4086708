"""In-process aggregation: named timers (HDR histograms + error counts) and snapshot sources.

A :class:`Timer` is one metric (``name``, fixed label names, export bucket
bounds); each combination of label values is a :class:`Series` holding one
:class:`~perfprim.histogram.LatencyHistogram`, its error counts by
``error.type`` and the latest exemplar per bucket. The per-call work is one
``record_ns`` on the series' histogram (plus a dict increment on errors);
exporters read the registry at collection time through :class:`TimerView`.

A *source* is a name plus a callable returning a snapshot (for example
``TieredCache.stats`` or ``SLOTracker.snapshot``) and an adapter turning that
snapshot into :class:`MetricPoint` values, called at collection time.
"""

from __future__ import annotations

import bisect
import itertools
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError
from perfprim.telemetry._cardinality import LabelGuard
from perfprim.telemetry._conventions import (
    PROMETHEUS_ERROR_TYPE,
    check_label_name,
    check_metric_name,
    error_type,
)

if TYPE_CHECKING:
    from perfprim.histogram import LatencyHistogram

__all__ = [
    "DEFAULT_BUCKETS",
    "Exemplar",
    "MetricPoint",
    "Series",
    "SeriesView",
    "Source",
    "TelemetryRegistry",
    "Timer",
    "TimerView",
    "default_registry",
]

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Default export bucket bounds in seconds (0.5 ms to 10 s); the HDR histogram
keeps the full distribution, so these only shape the Prometheus/OTel output."""

DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)
"""Quantiles exported as gauges when a timer asks for them (``quantiles=True``)."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One exemplar: a recorded value and the sampled span it was recorded in.

    Attributes:
        trace_id: The trace id, 32 lowercase hex digits.
        span_id: The span id, 16 lowercase hex digits.
        value: The recorded duration in seconds.
        timestamp: When it was recorded, Unix seconds.
    """

    trace_id: str
    span_id: str
    value: float
    timestamp: float


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One value exported from a snapshot source.

    Attributes:
        name: The metric base name (dotted or snake case; exporters adapt it).
        kind: ``"counter"`` (monotonic) or ``"gauge"``.
        value: The value.
        labels: Label names and values.
        unit: ``"seconds"``, ``"ratio"`` or ``""``; exporters suffix Prometheus
            names with it and set the OTel unit.
        description: Help text.
    """

    name: str
    kind: Literal["counter", "gauge"]
    value: float
    labels: tuple[tuple[str, str], ...] = ()
    unit: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class SeriesView:
    """A consistent copy of one series, read at collection time.

    Attributes:
        labels: The label values, in the timer's label-name order.
        histogram: A copy of the series' histogram (the live one for exporters).
        total: Sum of recorded durations, seconds.
        errors: Error counts by ``error.type``.
        exemplars: Latest exemplar per export bucket (``len(buckets) + 1``
            entries, the last for ``+Inf``), ``None`` where there is none.
    """

    labels: tuple[str, ...]
    histogram: LatencyHistogram
    total: float
    errors: Mapping[str, int]
    exemplars: tuple[Exemplar | None, ...]


@dataclass(frozen=True, slots=True)
class TimerView:
    """A consistent copy of one timer and all its series, read at collection time.

    Attributes:
        name: The metric base name.
        description: Help text.
        label_names: Label names of every series.
        buckets: Export bucket bounds, seconds, increasing.
        quantiles: Quantiles (0..1) to export as gauges; empty for none.
        series: One view per label-value combination.
        start_time_unix_nano: When the timer was created (the start of its
            cumulative counts), Unix nanoseconds; 0 when unknown.
    """

    name: str
    description: str
    label_names: tuple[str, ...]
    buckets: tuple[float, ...]
    quantiles: tuple[float, ...]
    series: tuple[SeriesView, ...] = field(default=())
    start_time_unix_nano: int = 0


def new_histogram(*, lowest: float, highest: float, significant_figures: int) -> LatencyHistogram:
    """Create the HDR histogram of a series (clamping: a slow call never raises)."""
    from perfprim.histogram import LatencyHistogram

    return LatencyHistogram(
        lowest=lowest, highest=highest, significant_figures=significant_figures, clamp=True
    )


class Series:
    """One label-value combination of a :class:`Timer`: histogram, errors, exemplars.

    ``record_ns`` is the histogram's own bound method, so the success path of
    ``@timed`` is a single call.
    """

    __slots__ = ("_lock", "errors", "exemplars", "histogram", "labels", "record_ns", "timer")

    def __init__(self, timer: Timer, labels: tuple[str, ...], histogram: LatencyHistogram) -> None:
        self.timer = timer
        self.labels = labels
        self.histogram = histogram
        self.record_ns: Callable[[int], None] = histogram.record_ns
        self.errors: dict[str, int] = {}
        self.exemplars: list[tuple[int, int, float, float] | None] = [None] * (
            len(timer.buckets) + 1
        )
        self._lock = threading.Lock()

    def on_error(self, elapsed_ns: int, exc: BaseException) -> None:
        """Record a run that raised: its duration, and an error if ``exc`` is an ``Exception``.

        Cancellation (``asyncio.CancelledError``) and other ``BaseException``
        that are not ``Exception`` are timed but not counted as errors, as in
        the OTel API's own span handling.
        """
        self.record_ns(elapsed_ns)
        if isinstance(exc, Exception):
            self.count_error(error_type(exc))

    def count_error(self, kind: str) -> None:
        """Add one error of type ``kind`` (folded by the timer's label guard)."""
        kind = self.timer.guard.fold(PROMETHEUS_ERROR_TYPE, kind)
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def exemplar(self, elapsed_ns: int, trace_id: int, span_id: int) -> None:
        """Keep ``(trace, span, value)`` as the latest exemplar of the value's bucket."""
        seconds = elapsed_ns / 1e9
        index = bisect.bisect_left(self.timer.buckets, seconds)
        self.exemplars[index] = (trace_id, span_id, seconds, time.time())

    def span_success(self, elapsed_ns: int, span: Any) -> None:
        """Record a run that completed inside ``span``; keep an exemplar if it is sampled."""
        self.record_ns(elapsed_ns)
        ctx = span.get_span_context()
        if ctx.trace_flags & 1:
            self.exemplar(elapsed_ns, ctx.trace_id, ctx.span_id)

    def span_error(self, elapsed_ns: int, exc: BaseException, span: Any) -> None:
        """Record a run that raised inside ``span``; keep an exemplar if it is sampled."""
        self.on_error(elapsed_ns, exc)
        ctx = span.get_span_context()
        if ctx.trace_flags & 1:
            self.exemplar(elapsed_ns, ctx.trace_id, ctx.span_id)

    def view(self, *, copy: bool = True) -> SeriesView:
        """Return a view of the series for an exporter.

        Args:
            copy: Copy the histogram (a frozen, consistent snapshot). The
                exporters pass False and read the live histogram with one
                ``cumulative_counts`` call (buckets and count from the same
                prefix sums), which saves the copy on every scrape.

        Returns:
            The view.
        """
        histogram = self.histogram.copy() if copy else self.histogram
        with self._lock:
            errors = dict(self.errors)
        exemplars = tuple(
            None
            if e is None
            else Exemplar(
                trace_id=format(e[0], "032x"),
                span_id=format(e[1], "016x"),
                value=e[2],
                timestamp=e[3],
            )
            for e in self.exemplars
        )
        return SeriesView(self.labels, histogram, histogram.total, errors, exemplars)


def check_buckets(buckets: Sequence[float | timedelta]) -> tuple[float, ...]:
    """Validate export bucket bounds: finite, positive seconds, strictly increasing.

    Raises:
        ConfigurationError: If the bounds are empty, not finite, not positive
            or not strictly increasing.
    """
    example = "buckets=(0.005, 0.05, 0.5, 5.0); +Inf is added for you"
    bounds = tuple(to_seconds(b, name="buckets", example=example) for b in buckets)
    if not bounds or any(a >= b for a, b in itertools.pairwise(bounds)):
        msg = (
            f"buckets must be finite, positive and strictly increasing seconds (got {bounds!r}); "
            "+Inf is added for you, e.g. buckets=(0.005, 0.05, 0.5, 5.0)"
        )
        raise ConfigurationError(msg)
    return bounds


def check_quantiles(quantiles: bool | Sequence[float]) -> tuple[float, ...]:
    """Normalize ``quantiles``: ``False`` (none), ``True`` (p50, p90, p99) or values in (0, 1).

    Raises:
        ConfigurationError: If a quantile is not strictly between 0 and 1.
    """
    if quantiles is True:
        return DEFAULT_QUANTILES
    if quantiles is False:
        return ()
    values = tuple(float(q) for q in quantiles)
    if any(not 0.0 < q < 1.0 for q in values):
        msg = f"quantiles must lie strictly between 0 and 1 (got {values!r}), e.g. (0.5, 0.99)"
        raise ConfigurationError(msg)
    return tuple(sorted(set(values)))


class Timer:
    """One latency metric: fixed label names, one :class:`Series` per label values.

    Create timers with :meth:`TelemetryRegistry.timer` (or let ``@timed`` do it).
    """

    __slots__ = (
        "_lock",
        "_series",
        "buckets",
        "created_unix_nano",
        "description",
        "guard",
        "highest",
        "label_names",
        "lowest",
        "name",
        "quantiles",
        "significant_figures",
    )

    def __init__(
        self,
        name: str,
        *,
        description: str,
        label_names: tuple[str, ...],
        buckets: tuple[float, ...],
        quantiles: tuple[float, ...],
        lowest: float,
        highest: float,
        significant_figures: int,
        max_label_values: int,
    ) -> None:
        self.name = name
        self.description = description
        self.label_names = label_names
        self.buckets = buckets
        self.quantiles = quantiles
        self.lowest = lowest
        self.highest = highest
        self.significant_figures = significant_figures
        self.guard = LabelGuard(max_values=max_label_values, metric=name)
        self.created_unix_nano = time.time_ns()
        self._series: dict[tuple[str, ...], Series] = {}
        self._lock = threading.Lock()

    def series(
        self, labels: Mapping[str, str] | None = None, *, histogram: LatencyHistogram | None = None
    ) -> Series:
        """Return the series for ``labels`` (created on first use).

        Label values pass through the timer's :class:`LabelGuard`: past
        ``max_label_values`` distinct values, new ones are folded into
        ``"other"`` with one :class:`CardinalityWarning`.

        Args:
            labels: A value for every label name of the timer.
            histogram: Adopt this histogram for a new series (``@timed(histogram=h)``).

        Returns:
            The series.

        Raises:
            ConfigurationError: If the label names differ from the timer's, or
                ``histogram`` is given for a series that already has another one.
        """
        given = dict(labels or {})
        if tuple(sorted(given)) != self.label_names:
            msg = (
                f"timer {self.name!r} has labels {list(self.label_names)}; got {sorted(given)}. "
                "Use the same label names everywhere for one metric name"
            )
            raise ConfigurationError(msg)
        key = tuple(self.guard.fold(n, str(given[n])) for n in self.label_names)
        series = self._series.get(key)
        if series is not None and (histogram is None or series.histogram is histogram):
            return series
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = Series(
                    self,
                    key,
                    histogram
                    if histogram is not None
                    else new_histogram(
                        lowest=self.lowest,
                        highest=self.highest,
                        significant_figures=self.significant_figures,
                    ),
                )
                self._series[key] = series
            elif histogram is not None and series.histogram is not histogram:
                msg = (
                    f"timer {self.name!r} {dict(zip(self.label_names, key, strict=True))} "
                    "already records into another histogram; give each histogram its own "
                    "name or labels"
                )
                raise ConfigurationError(msg)
            return series

    def series_at(self, values: tuple[str, ...]) -> Series:
        """Return the series for label ``values`` given in :attr:`label_names` order.

        The values pass through the label guard like :meth:`series`.
        """
        fold = self.guard.fold
        key = tuple(fold(n, v) for n, v in zip(self.label_names, values, strict=True))
        series = self._series.get(key)
        if series is not None:
            return series
        return self.series(dict(zip(self.label_names, key, strict=True)))

    def view(self, *, copy: bool = True) -> TimerView:
        """Return a view of every series (copied histograms unless ``copy=False``)."""
        with self._lock:
            series = list(self._series.values())
        return TimerView(
            self.name,
            self.description,
            self.label_names,
            self.buckets,
            self.quantiles,
            tuple(s.view(copy=copy) for s in series),
            self.created_unix_nano,
        )


SourceSharing = Literal["local", "sum", "slo"]
"""How a source is merged across pre-fork workers (see :class:`MultiProcessWriter`):
``"local"`` (not written; the scraped process exports its own), ``"sum"``
(points written; counters summed over every worker, gauges over live ones),
``"slo"`` (an ``SLOTracker``: its per-bucket history is written and replayed)."""


@dataclass(frozen=True, slots=True)
class Source:
    """A snapshot source of a registry (see :meth:`TelemetryRegistry.add_source`).

    Attributes:
        name: The metric prefix of its points.
        labels: Labels added to every point (sources of one name differ by them).
        snapshot: Returns the current snapshot.
        adapter: Turns ``(name, snapshot)`` into metric points.
        sharing: How pre-fork workers merge it: ``"local"``, ``"sum"`` or ``"slo"``.
        tracker: The SLO tracker of an ``"slo"`` source, else None.
    """

    name: str
    labels: tuple[tuple[str, str], ...]
    snapshot: Callable[[], Any]
    adapter: Callable[[str, Any], Iterable[MetricPoint]]
    sharing: SourceSharing = "local"
    tracker: Any = None

    def points(self) -> list[MetricPoint]:
        """Call the snapshot and the adapter; add the source's labels to every point."""
        points = list(self.adapter(self.name, self.snapshot()))
        if not self.labels:
            return points
        return [
            MetricPoint(p.name, p.kind, p.value, (*self.labels, *p.labels), p.unit, p.description)
            for p in points
        ]


class TelemetryRegistry:
    """Timers and snapshot sources, read by the exporters at collection time.

    Decorators use :func:`default_registry` unless given ``registry=``; use a
    registry of your own to keep tests or sub-applications apart.

    Example:
        >>> registry = TelemetryRegistry()
        >>> timer = registry.timer("demo.op", label_names=("route",))
        >>> timer.series({"route": "/a"}).record_ns(1_500_000)
        >>> [round(v.series[0].total, 4) for v in registry.timer_views()]
        [0.0015]
    """

    def __init__(self) -> None:
        self._timers: dict[str, Timer] = {}
        self._sources: dict[tuple[str, tuple[tuple[str, str], ...]], Source] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Timer], None]] = []
        self._writer: Any = None

    @property
    def multiprocess_writer(self) -> Any:
        """The running :class:`MultiProcessWriter` of this registry in this process, or None.

        While one runs, the exporters of this registry serve the merge of every
        worker's file (timers and shared sources) plus this process's local
        sources, each metric family once.
        """
        writer = self._writer
        if writer is None or writer.pid != os.getpid():
            return None
        return writer

    def attach_writer(self, writer: Any) -> None:
        """Mark ``writer`` as this registry's multi-process writer (called by its ``start()``)."""
        self._writer = writer

    def timer(
        self,
        name: str,
        *,
        description: str = "",
        label_names: Sequence[str] = (),
        buckets: Sequence[float | timedelta] = DEFAULT_BUCKETS,
        quantiles: bool | Sequence[float] = False,
        lowest: float | timedelta = 1e-6,
        highest: float | timedelta = 3600.0,
        significant_figures: int = 2,
        max_label_values: int = 100,
    ) -> Timer:
        """Return the timer named ``name``, creating it on first use.

        Args:
            name: Metric base name, e.g. ``"db.load_user"`` (Prometheus:
                ``db_load_user_seconds``; OTel: ``db.load_user.duration``).
            description: Help text.
            label_names: Label names every series of the timer carries.
            buckets: Export bucket bounds in seconds (``+Inf`` is added).
            quantiles: ``True`` for p50/p90/p99 gauges, or quantiles in (0, 1).
            lowest: Smallest duration the histogram resolves, seconds.
            highest: Largest duration tracked, seconds (longer runs are clamped
                to it and counted in the histogram's ``clamped``).
            significant_figures: HDR precision: 2 (default) keeps values within
                1% in 27 KiB per series; 3 within 0.1% in 185 KiB.
            max_label_values: Distinct values admitted per label before
                folding into ``"other"``.

        Returns:
            The timer.

        Raises:
            ConfigurationError: If an option is invalid, or a timer with this
                name exists with different label names or buckets.
        """
        check_metric_name(name)
        names = tuple(sorted(check_label_name(n) for n in label_names))
        if len(set(names)) != len(names):
            msg = f"label names must be distinct (got {list(label_names)})"
            raise ConfigurationError(msg)
        bounds = check_buckets(buckets)
        qs = check_quantiles(quantiles)
        with self._lock:
            existing = self._timers.get(name)
            if existing is not None:
                if existing.label_names != names or existing.buckets != bounds:
                    msg = (
                        f"timer {name!r} already exists with labels {list(existing.label_names)} "
                        f"and buckets {existing.buckets}; one metric name needs one definition"
                    )
                    raise ConfigurationError(msg)
                return existing
            timer = Timer(
                name,
                description=description,
                label_names=names,
                buckets=bounds,
                quantiles=qs,
                lowest=to_seconds(lowest, name="lowest"),
                highest=to_seconds(highest, name="highest"),
                significant_figures=significant_figures,
                max_label_values=max_label_values,
            )
            # Build one series' histogram now so that a bad range fails here.
            new_histogram(
                lowest=timer.lowest,
                highest=timer.highest,
                significant_figures=significant_figures,
            )
            self._timers[name] = timer
            listeners = list(self._listeners)
        for listener in listeners:
            listener(timer)
        return timer

    def timers(self) -> list[Timer]:
        """Return the timers, in creation order."""
        with self._lock:
            return list(self._timers.values())

    def timer_views(self, *, copy: bool = True) -> list[TimerView]:
        """Return a view of every timer (what the exporters read).

        Args:
            copy: Copy each histogram (default). ``False`` hands out the live
                histograms, for exporters that read each one once.

        Returns:
            The views, in timer creation order.
        """
        return [t.view(copy=copy) for t in self.timers()]

    def add_source(
        self,
        name: str,
        snapshot: Callable[[], T],
        adapter: Callable[[str, T], Iterable[MetricPoint]],
        *,
        labels: Mapping[str, str] | None = None,
        shared: bool = False,
    ) -> None:
        """Export ``adapter(name, snapshot())`` at every collection.

        Args:
            name: The metric prefix of the source, e.g. ``"cache.users"``.
            snapshot: Returns the current snapshot (``cache.stats``,
                ``tracker.snapshot``, ...).
            adapter: Turns a snapshot into metric points (see
                :func:`perfprim.telemetry.cache_stats_points` and
                :func:`perfprim.telemetry.dataclass_points`).
            labels: Labels added to every point; several sources may share a
                name when their labels differ (one per route, say).
            shared: Under a :class:`MultiProcessWriter`, write the points to
                the worker files and merge them at the scrape (counters summed
                over every worker, gauges over the live ones). False: the
                scraped process exports its own points.

        Raises:
            ConfigurationError: If the name or a label is invalid, or the
                name and labels are already used.
        """
        self._add(
            Source(
                name,
                self._labels(labels),
                snapshot,
                adapter,
                "sum" if shared else "local",
            )
        )

    @staticmethod
    def _labels(labels: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
        given: object = labels
        if given is not None and not isinstance(given, Mapping):
            msg = "labels must be a mapping of label name to value, e.g. labels={'route': '/a'}"
            raise ConfigurationError(msg)
        return tuple(sorted((check_label_name(k), str(v)) for k, v in (labels or {}).items()))

    def _add(self, source: Source) -> None:
        check_metric_name(source.name)
        given: tuple[object, object] = (source.snapshot, source.adapter)
        if not all(callable(f) for f in given):
            msg = "snapshot and adapter must be callables, e.g. add_source('c', cache.stats, ...)"
            raise ConfigurationError(msg)
        key = (source.name, source.labels)
        with self._lock:
            if key in self._sources:
                msg = (
                    f"source {source.name!r} {dict(source.labels)} is already registered; "
                    "remove_source() it first"
                )
                raise ConfigurationError(msg)
            self._sources[key] = source

    def add_cache(self, name: str, cache: Any, *, labels: Mapping[str, str] | None = None) -> None:
        """Export a cache's ``stats()`` under ``name`` (see ``cache_stats_points``).

        Under a :class:`MultiProcessWriter` the counters of every worker are
        summed and ``circuit_state`` counts the live workers in each state.

        Args:
            name: Metric prefix, e.g. ``"cache.users"``.
            cache: A ``TieredCache`` or ``AsyncTieredCache`` (anything with ``stats()``).
            labels: Labels added to every point.

        Raises:
            ConfigurationError: If ``cache`` has no ``stats()`` or the name is taken.
        """
        from perfprim.telemetry._sources import cache_stats_points

        stats = getattr(cache, "stats", None)
        if not callable(stats):
            msg = "add_cache needs an object with a stats() method, e.g. a TieredCache"
            raise ConfigurationError(msg)
        self.add_source(name, stats, cache_stats_points, labels=labels, shared=True)

    def add_slo(self, name: str, tracker: Any, *, labels: Mapping[str, str] | None = None) -> None:
        """Export an SLO tracker's ``snapshot()`` under ``name`` (see ``slo_points``).

        Under a :class:`MultiProcessWriter` the trackers of every worker are
        merged exactly (their per-bucket histories are summed, then the
        windows, budget and alerts are computed at the scrape), which needs
        trackers on the default clock (``time.monotonic``).

        Args:
            name: Metric prefix, e.g. ``"slo.checkout"``.
            tracker: A ``perfprim.slo.SLOTracker``.
            labels: Labels added to every point, e.g. ``{"http_route": "/users/{id}"}``.

        Raises:
            ConfigurationError: If ``tracker`` has no ``snapshot()`` or the
                name and labels are taken.
        """
        from perfprim.telemetry._sources import slo_points

        snapshot = getattr(tracker, "snapshot", None)
        if not callable(snapshot):
            msg = "add_slo needs an object with a snapshot() method, e.g. an SLOTracker"
            raise ConfigurationError(msg)
        sharing: SourceSharing = "slo" if callable(getattr(tracker, "history", None)) else "local"
        self._add(Source(name, self._labels(labels), snapshot, slo_points, sharing, tracker))

    def remove_source(self, name: str, *, labels: Mapping[str, str] | None = None) -> None:
        """Stop exporting the source ``name`` with these labels (no error if absent)."""
        key = (name, self._labels(labels))
        with self._lock:
            self._sources.pop(key, None)

    def sources(self) -> list[Source]:
        """Return the sources, in the order they were added."""
        with self._lock:
            return list(self._sources.values())

    def source_points(
        self, *, sharing: Collection[SourceSharing] | None = None
    ) -> list[MetricPoint]:
        """Call every source and adapter; return all their points.

        Args:
            sharing: Only the sources merged this way (None: all of them).

        Returns:
            The points, in source order.
        """
        points: list[MetricPoint] = []
        for source in self.sources():
            if sharing is None or source.sharing in sharing:
                points.extend(source.points())
        return points

    def on_new_timer(self, listener: Callable[[Timer], None]) -> None:
        """Call ``listener(timer)`` for every timer created from now on."""
        with self._lock:
            self._listeners.append(listener)


_DEFAULT: list[TelemetryRegistry] = []
_DEFAULT_LOCK = threading.Lock()


def default_registry() -> TelemetryRegistry:
    """Return the process-wide registry the decorators use unless given ``registry=``."""
    if not _DEFAULT:
        with _DEFAULT_LOCK:
            if not _DEFAULT:
                _DEFAULT.append(TelemetryRegistry())
    return _DEFAULT[0]
