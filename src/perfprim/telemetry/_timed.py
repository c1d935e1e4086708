"""``@timed`` and ``@instrument``: a latency distribution and error counts per call."""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, overload

from perfprim._timing import timing_wrapper
from perfprim.exceptions import ConfigurationError
from perfprim.telemetry._args import ArgReader, AttributeValue, name_map
from perfprim.telemetry._conventions import PROMETHEUS_ERROR_TYPE, function_name
from perfprim.telemetry._dispatch import dispatching
from perfprim.telemetry._registry import (
    DEFAULT_BUCKETS,
    Series,
    TelemetryRegistry,
    default_registry,
)
from perfprim.telemetry._spans import span_wrapper
from perfprim.telemetry._traced import build_span_spec

if TYPE_CHECKING:
    from perfprim.histogram import LatencyHistogram

P = ParamSpec("P")
R = TypeVar("R")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")


class SLORecorder(Protocol):
    """What ``slo=`` accepts: an object with ``record(good)`` (e.g. ``SLOTracker``)."""

    def record(self, good: bool) -> object:
        """Count one event, good or bad."""


def default_metric_name(func: Callable[..., Any]) -> str:
    """Return the metric name derived from ``func``'s qualified name (``<locals>`` -> ``_``)."""
    return _UNSAFE.sub("_", function_name(func)).strip("_.") or "function"


def series_wrapper(
    func: Callable[..., Any],
    build: Callable[[Series], Callable[..., Any]],
    *,
    name: str | None,
    registry: TelemetryRegistry | None,
    labels: Mapping[str, str] | None,
    label_args: Sequence[str] | Mapping[str, str],
    histogram: LatencyHistogram | None,
    description: str,
    buckets: Sequence[float | timedelta],
    quantiles: bool | Sequence[float],
    significant_figures: int,
) -> Callable[..., Any]:
    """Find or create the timer of a decorated function and return its wrapper.

    Without ``label_args`` the function records into one series and the
    wrapper is ``build(series)``. With ``label_args`` the series is chosen per
    call from the named arguments (folded by the timer's label guard), and a
    kind-preserving dispatcher runs ``build(series)``, built once per series.
    """
    given: object = labels
    if given is not None and not isinstance(given, Mapping):
        msg = "labels must be a mapping of label name to value, e.g. labels={'route': '/users'}"
        raise ConfigurationError(msg)
    static = {str(k): str(v) for k, v in (labels or {}).items()}
    if histogram is not None and not callable(getattr(histogram, "record_ns", None)):
        msg = "histogram must be a perfprim.histogram.LatencyHistogram"
        raise ConfigurationError(msg)
    dynamic = name_map(label_args, option="label_args") if label_args else {}
    if dynamic and histogram is not None:
        msg = "histogram= records a single series; drop label_args or histogram"
        raise ConfigurationError(msg)
    if PROMETHEUS_ERROR_TYPE in static or PROMETHEUS_ERROR_TYPE in dynamic.values():
        msg = "'error_type' is the label of the errors counter; choose another label name"
        raise ConfigurationError(msg)
    clash = set(static) & set(dynamic.values())
    if clash or len(set(dynamic.values())) != len(dynamic):
        msg = f"each label needs one source; {sorted(clash) or list(dynamic.values())} repeat"
        raise ConfigurationError(msg)
    registry = registry if registry is not None else default_registry()
    timer = registry.timer(
        name if name is not None else default_metric_name(func),
        description=description or f"Duration of {function_name(func)} in seconds.",
        label_names=(*static, *dynamic.values()),
        buckets=buckets,
        quantiles=quantiles,
        significant_figures=significant_figures,
    )
    if not dynamic:
        return build(timer.series(static, histogram=histogram))
    reader = ArgReader(func, dynamic)
    order = timer.label_names
    built: dict[tuple[str, ...], Callable[..., Any]] = {}

    def pick(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[..., Any]:
        got = reader.read(args, kwargs)
        values = tuple(static[n] if n in static else str(got.get(n, "")) for n in order)
        series = timer.series_at(values)
        wrapper = built.get(series.labels)
        if wrapper is None:
            wrapper = built.setdefault(series.labels, build(series))
        return wrapper

    return dispatching(func, pick)


Exclude = tuple[type[BaseException], ...] | Callable[[BaseException], bool]
"""What ``exclude=`` accepts: exception types, or a predicate of the exception."""


def _check_slo(slo: object) -> None:
    if slo is not None and not callable(getattr(slo, "record", None)):
        msg = "slo must have a record(good: bool) method, e.g. a perfprim.slo.SLOTracker"
        raise ConfigurationError(msg)


def _excluder(exclude: Exclude, slo: object) -> Callable[[BaseException], bool] | None:
    """Return ``exc -> excluded?`` for ``exclude=``, or None when nothing is excluded."""
    given: object = exclude
    if isinstance(given, tuple):
        if not all(isinstance(e, type) and issubclass(e, BaseException) for e in given):
            msg = f"exclude must be exception types or a predicate, got {exclude!r}"
            raise ConfigurationError(msg)
        types = given
        if not types:
            return None
        excluder: Callable[[BaseException], bool] = lambda exc: isinstance(exc, types)  # noqa: E731
    elif callable(given):
        excluder = given
    else:
        msg = (
            "exclude must be a tuple of exception types or a predicate "
            f"exc -> bool, got {exclude!r}"
        )
        raise ConfigurationError(msg)
    if slo is None:
        msg = "exclude= only applies to the SLO: pass slo= too"
        raise ConfigurationError(msg)
    return excluder


class _SLOHooks:
    """Series callbacks that also count each run as good or bad for an SLO tracker.

    A tracker of a latency SLO (its ``slo`` has a ``threshold``) gets
    ``record_latency(seconds)`` for runs that returned, so slow runs count as
    bad; every tracker gets ``record(False)`` for runs that raised.
    """

    __slots__ = ("excluded", "latency", "series", "slo")

    def __init__(
        self,
        series: Series,
        slo: SLORecorder,
        excluded: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self.series = series
        self.slo = slo
        self.excluded = excluded
        threshold = getattr(getattr(slo, "slo", None), "threshold", None)
        record_latency = getattr(slo, "record_latency", None)
        self.latency: Callable[[float], object] | None = (
            record_latency if threshold is not None and callable(record_latency) else None
        )

    def _good(self, elapsed_ns: int) -> None:
        if self.latency is not None:
            self.latency(elapsed_ns / 1e9)
        else:
            self.slo.record(True)

    def on_success(self, elapsed_ns: int) -> None:
        self.series.record_ns(elapsed_ns)
        self._good(elapsed_ns)

    def _bad(self, exc: BaseException) -> None:
        # An excluded exception (a client's error such as a 404) is not an
        # event of the SLO at all, as SLOTracker.track(exclude=...) does.
        if self.excluded is None or not self.excluded(exc):
            self.slo.record(not isinstance(exc, Exception))

    def on_error(self, elapsed_ns: int, exc: BaseException) -> None:
        self.series.on_error(elapsed_ns, exc)
        self._bad(exc)

    def span_success(self, elapsed_ns: int, span: Any) -> None:
        self.series.span_success(elapsed_ns, span)
        self._good(elapsed_ns)

    def span_error(self, elapsed_ns: int, exc: BaseException, span: Any) -> None:
        self.series.span_error(elapsed_ns, exc, span)
        self._bad(exc)


def _otel_importable() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry") is not None
    except (ImportError, ValueError):  # pragma: no cover - broken installs
        return False


def with_exemplars(
    series: Series,
    on_success: Callable[[int], object],
    on_error: Callable[[int, BaseException], object],
    *,
    always: bool,
) -> tuple[Callable[[int], object], Callable[[int, BaseException], object]]:
    """Wrap the callbacks so that a run inside a sampled span becomes its bucket's exemplar.

    ``always=False`` (the default ``exemplars=None``) looks up the current
    span only while a global tracer provider is set (one attribute load per
    call otherwise): with no SDK there is no sampled span to find.
    """
    from perfprim.telemetry._otelapi import otel_api

    api = otel_api()
    trace_mod = api.trace
    current_span = api.get_current_span
    exemplar = series.exemplar

    if always:

        def success(elapsed_ns: int) -> None:
            on_success(elapsed_ns)
            ctx = current_span().get_span_context()
            if ctx.trace_flags & 1:
                exemplar(elapsed_ns, ctx.trace_id, ctx.span_id)

        def error(elapsed_ns: int, exc: BaseException) -> None:
            on_error(elapsed_ns, exc)
            ctx = current_span().get_span_context()
            if ctx.trace_flags & 1:
                exemplar(elapsed_ns, ctx.trace_id, ctx.span_id)

    else:

        def success(elapsed_ns: int) -> None:
            on_success(elapsed_ns)
            if trace_mod._TRACER_PROVIDER is not None:
                ctx = current_span().get_span_context()
                if ctx.trace_flags & 1:
                    exemplar(elapsed_ns, ctx.trace_id, ctx.span_id)

        def error(elapsed_ns: int, exc: BaseException) -> None:
            on_error(elapsed_ns, exc)
            if trace_mod._TRACER_PROVIDER is not None:
                ctx = current_span().get_span_context()
                if ctx.trace_flags & 1:
                    exemplar(elapsed_ns, ctx.trace_id, ctx.span_id)

    return success, error


@overload
def timed(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def timed(
    *,
    name: str | None = None,
    histogram: LatencyHistogram | None = None,
    slo: SLORecorder | None = None,
    exclude: Exclude = (),
    labels: Mapping[str, str] | None = None,
    label_args: Sequence[str] | Mapping[str, str] = (),
    registry: TelemetryRegistry | None = None,
    description: str = "",
    buckets: Sequence[float | timedelta] = DEFAULT_BUCKETS,
    quantiles: bool | Sequence[float] = False,
    significant_figures: int = 2,
    exemplars: bool | None = False,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def timed(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    histogram: LatencyHistogram | None = None,
    slo: SLORecorder | None = None,
    exclude: Exclude = (),
    labels: Mapping[str, str] | None = None,
    label_args: Sequence[str] | Mapping[str, str] = (),
    registry: TelemetryRegistry | None = None,
    description: str = "",
    buckets: Sequence[float | timedelta] = DEFAULT_BUCKETS,
    quantiles: bool | Sequence[float] = False,
    significant_figures: int = 2,
    exemplars: bool | None = False,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Record each run's duration in an HDR histogram and count its errors.

    Works on ``def``, ``async def``, generator and async generator functions
    and methods, timing the real run (a coroutine from its first ``await`` to
    its result, a generator until exhausted, failed or closed), keeping the
    function's kind, name, signature and ``__wrapped__``. Per call the work
    is one ``record_ns`` on the histogram; an ``Exception`` also counts one
    error under its ``error.type``. Nothing is exported per call: the
    exporters (:class:`PrometheusCollector`, :func:`register_otel_instruments`)
    read the registry when scraped.

    Args:
        func: The function, when used as ``@timed`` without parentheses.
        name: Metric base name; defaults to the qualified function name.
            Prometheus: ``<name>_seconds`` and ``<name>_errors_total``; OTel:
            ``<name>.duration`` and ``<name>.errors``.
        histogram: Record into this :class:`~perfprim.histogram.LatencyHistogram`
            (yours to query too) instead of a new one.
        slo: An SLO tracker (``perfprim.slo.SLOTracker``); each run counts as
            good (returned) or bad (raised); for a latency SLO, a run that
            returned is passed to ``record_latency`` (good when fast enough).
        exclude: Exceptions that are not events of the SLO (a client's error:
            ``HTTPException(404)``, ``Http404``): a tuple of types, or a
            predicate ``exc -> bool`` such as
            :func:`perfprim.web.client_error`. They are still timed and
            counted in ``<name>_errors_total``; only the SLO ignores them.
        labels: Static label values of this function's series, e.g.
            ``{"route": "/users"}``. Never put ids or free text here.
        label_args: Parameter names whose values become metric labels (a
            sequence: the label is the parameter name; a mapping: parameter
            name -> label name). Each label keeps at most the timer's
            ``max_label_values`` (100) distinct values; later ones are folded
            into ``"other"`` with one :class:`CardinalityWarning`. Choose
            bounded arguments (a tenant tier, a method), never ids.
        registry: The registry to record into; :func:`default_registry` if None.
        description: Help text of the metric.
        buckets: Export bucket bounds in seconds.
        quantiles: ``True`` for p50/p90/p99 gauges, or quantiles in (0, 1).
        significant_figures: HDR precision of the timer's histograms: 2
            (default) keeps every value within 1% in 27 KiB per series; 3
            gives 0.1% in 185 KiB. The first definition of a name wins.
        exemplars: Keep the active sampled span as the exemplar of each
            bucket. ``False`` (default): never, so a call costs one histogram
            record and nothing else (``@instrument`` gets exemplars for free
            from its own span). ``None``: when the OpenTelemetry API is
            installed, look the current span up while a global tracer
            provider is set (without one: one more Python call and an
            attribute load per call, about 60 ns). ``True``: look it up on
            every call (for a provider that is not the global one).
        clock: The nanosecond clock that times each run (injectable for tests).

    Returns:
        The wrapper, or a decorator when called with options only.

    Raises:
        ConfigurationError: If an option is invalid, or ``name`` is used by
            another timer with different labels or buckets.

    Example:
        >>> from perfprim.telemetry import TelemetryRegistry, timed
        >>> registry = TelemetryRegistry()
        >>> @timed(name="demo.square", registry=registry)
        ... def square(x: int) -> int:
        ...     return x * x
        >>> [square(i) for i in range(3)]
        [0, 1, 4]
        >>> registry.timer_views()[0].series[0].histogram.count
        3
    """
    _check_slo(slo)
    excluded = _excluder(exclude, slo)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        def build(series: Series) -> Callable[..., Any]:
            hooks: Any = series
            on_success: Callable[[int], object] = series.record_ns
            on_error: Callable[[int, BaseException], object] = series.on_error
            if slo is not None:
                hooks = _SLOHooks(series, slo, excluded)
                on_success, on_error = hooks.on_success, hooks.on_error
            if exemplars or (exemplars is None and _otel_importable()):
                on_success, on_error = with_exemplars(
                    series, on_success, on_error, always=bool(exemplars)
                )
            return timing_wrapper(fn, on_success, on_error, clock=clock)

        return series_wrapper(
            fn,
            build,
            name=name,
            registry=registry,
            labels=labels,
            label_args=label_args,
            histogram=histogram,
            description=description,
            buckets=buckets,
            quantiles=quantiles,
            significant_figures=significant_figures,
        )

    if func is not None:
        return decorate(func)
    return decorate


@overload
def instrument(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def instrument(
    *,
    name: str | None = None,
    span_name: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    record_args: Sequence[str] | Mapping[str, str] = (),
    histogram: LatencyHistogram | None = None,
    slo: SLORecorder | None = None,
    exclude: Exclude = (),
    labels: Mapping[str, str] | None = None,
    label_args: Sequence[str] | Mapping[str, str] = (),
    registry: TelemetryRegistry | None = None,
    description: str = "",
    buckets: Sequence[float | timedelta] = DEFAULT_BUCKETS,
    quantiles: bool | Sequence[float] = False,
    significant_figures: int = 2,
    tracer_provider: object | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def instrument(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    span_name: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    record_args: Sequence[str] | Mapping[str, str] = (),
    histogram: LatencyHistogram | None = None,
    slo: SLORecorder | None = None,
    exclude: Exclude = (),
    labels: Mapping[str, str] | None = None,
    label_args: Sequence[str] | Mapping[str, str] = (),
    registry: TelemetryRegistry | None = None,
    description: str = "",
    buckets: Sequence[float | timedelta] = DEFAULT_BUCKETS,
    quantiles: bool | Sequence[float] = False,
    significant_figures: int = 2,
    tracer_provider: object | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """``@traced`` and ``@timed`` in one wrapper: a span, a histogram record, error counts.

    With an OpenTelemetry SDK configured, each run is one span (as
    :func:`traced`) and one histogram record (as :func:`timed`); a sampled
    span becomes the exemplar of the value's bucket (the trace id shown in
    OpenMetrics output). Without an SDK it costs what :func:`timed` costs.

    Args:
        func: The function, when used as ``@instrument`` without parentheses.
        name: Metric base name (see :func:`timed`); defaults to the qualified
            function name.
        span_name: Span name; defaults to ``name`` if given, else the
            qualified function name.
        attributes: Static span attributes.
        record_args: Parameter names whose values become span attributes
            (never metric labels).
        histogram: Record into this histogram instead of a new one.
        slo: An SLO tracker; each run counts as good or bad (see :func:`timed`).
        exclude: Exceptions that are not events of the SLO (see :func:`timed`).
        labels: Static metric label values.
        label_args: Parameter names whose values become metric labels,
            bounded by the label guard (see :func:`timed`).
        registry: The registry to record into; :func:`default_registry` if None.
        description: Help text of the metric.
        buckets: Export bucket bounds in seconds.
        quantiles: ``True`` for p50/p90/p99 gauges, or quantiles in (0, 1).
        significant_figures: HDR precision (see :func:`timed`).
        tracer_provider: A tracer provider to use instead of the global one.
        clock: The nanosecond clock that times each run (injectable for tests).

    Returns:
        The wrapper, or a decorator when called with options only.

    Raises:
        ConfigurationError: If an option is invalid.
        MissingDependencyError: If ``opentelemetry-api`` is not installed.
    """
    _check_slo(slo)
    excluded = _excluder(exclude, slo)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        def build(series: Series) -> Callable[..., Any]:
            hooks: Any = series if slo is None else _SLOHooks(series, slo, excluded)
            on_success = series.record_ns if slo is None else hooks.on_success
            fallback = timing_wrapper(fn, on_success, hooks.on_error, clock=clock)
            spec = build_span_spec(
                fn,
                name=span_name if span_name is not None else name,
                attributes=attributes,
                record_args=record_args,
                tracer_provider=tracer_provider,
                fallback=fallback,
                hooks=hooks,
                clock=clock,
            )
            return span_wrapper(fn, spec)

        return series_wrapper(
            fn,
            build,
            name=name,
            registry=registry,
            labels=labels,
            label_args=label_args,
            histogram=histogram,
            description=description,
            buckets=buckets,
            quantiles=quantiles,
            significant_figures=significant_figures,
        )

    if func is not None:
        return decorate(func)
    return decorate
