"""Pre-fork servers (gunicorn workers): each worker writes its state; the scrape merges.

The story
---------
Every worker process runs a :class:`MultiProcessWriter` that writes its
registry to ``<directory>/perfprim-<pid>-<random>.json`` (the random part is
drawn once per writer and process, so a reused pid never overwrites a dead
worker's file) every ``interval`` seconds, at exit, and before each scrape it
serves:

- per timer series the HDR histogram encoded in the HdrHistogram V2 format,
  the exact sum of durations, the error counts and the exemplars;
- the points of shared sources (``add_cache``, ``add_source(shared=True)``);
- for each SLO tracker (``add_slo``) its SLO and its events per bucket
  (``SLOTracker.history()``).

The write is atomic (a temporary file renamed over the old one), so a reader
never sees half a file. The scrape (:class:`PrometheusCollector` of a
registry whose writer runs, or :class:`MultiProcessCollector` in any other
process) reads every file and merges:

- histograms of equal ``(name, labels)`` exactly (same layout: counts add),
  sums and error counts added, the newest exemplar kept per bucket;
- source counters summed over every worker ever started; source gauges
  (a cache's ``circuit_state``) summed over the live workers only;
- SLO trackers by replaying every worker's history into one tracker (same
  SLO, same resolutions), so the windows, burn rates, budget and alerts
  cover every worker's events and age out with time, a dead worker's too.

Limits
------
- Freshness: a scrape sees each other worker as of its last write
  (``interval``, 5 s by default). A worker that dies without a normal
  interpreter exit (``SIGKILL``, ``os._exit`` as in ``multiprocessing``
  children) loses the calls since its last write; call ``stop()`` yourself
  where you can.
- Files of dead workers stay and keep counting (counters must not go
  backwards); clear the directory when the server starts, as with
  prometheus_client's multiprocess mode.
- SLO trackers must use the default clock (``time.monotonic``, one clock for
  every process of a host); quantile gauges are computed from the merged
  histograms.
- Start the writer in each worker after the fork (gunicorn's ``post_fork``):
  threads do not survive ``fork``. Do not record in the master before
  forking: every worker would inherit and re-export those counts.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError
from perfprim.telemetry._prometheus import _prom, point_families, timer_families, unique_families
from perfprim.telemetry._registry import (
    Exemplar,
    MetricPoint,
    SeriesView,
    SourceSharing,
    TelemetryRegistry,
    TimerView,
    default_registry,
)

_FORMATS = (1, 2)
_FORMAT = 2
_PREFIX = "perfprim-"


def _directory(directory: str | os.PathLike[str]) -> Path:
    path = Path(directory)
    if not path.is_dir():
        msg = f"{str(path)!r} is not a directory; create it (and clear it when the server starts)"
        raise ConfigurationError(msg)
    return path


def _exemplars(series: SeriesView) -> list[list[Any]]:
    return [
        [index, e.trace_id, e.span_id, e.value, e.timestamp]
        for index, e in enumerate(series.exemplars)
        if e is not None
    ]


def _timers_json(views: list[TimerView]) -> list[dict[str, Any]]:
    return [
        {
            "name": view.name,
            "description": view.description,
            "label_names": list(view.label_names),
            "buckets": list(view.buckets),
            "quantiles": list(view.quantiles),
            "series": [
                {
                    "labels": list(s.labels),
                    "unit": s.histogram.unit,
                    "histogram": s.histogram.encode(),
                    "total": s.total,
                    "errors": dict(s.errors),
                    "exemplars": _exemplars(s),
                }
                for s in view.series
                if s.histogram.count or s.errors
            ],
        }
        for view in views
    ]


def encode_views(views: list[TimerView], pid: int) -> str:
    """Serialize timer views to the worker file's JSON text (timers only)."""
    return json.dumps(
        {"format": _FORMAT, "pid": pid, "timers": _timers_json(views)}, sort_keys=True
    )


def slo_to_json(slo: Any) -> dict[str, Any]:
    """The JSON form of an ``SLO`` or ``LatencySLO`` (read through its public attributes)."""
    budgeting = slo.budgeting
    return {
        "target": slo.target,
        "window": slo.window,
        "threshold": getattr(slo, "threshold", None),
        "budgeting": {
            "kind": type(budgeting).__name__,
            **{
                attr: getattr(budgeting, attr)
                for attr in ("slice_target", "slice_duration")
                if hasattr(budgeting, attr)
            },
        },
        "policy": [
            [r.severity, r.budget_fraction, r.long_window, r.short_window] for r in slo.policy
        ],
    }


def slo_from_json(data: dict[str, Any]) -> Any:
    """Rebuild the ``SLO`` or ``LatencySLO`` of :func:`slo_to_json`."""
    from perfprim import slo as slo_module

    kinds: dict[str, Callable[..., Any]] = {
        "Occurrences": slo_module.Occurrences,
        "Timeslices": slo_module.Timeslices,
        "RatioTimeslices": slo_module.RatioTimeslices,
    }
    spec = dict(data["budgeting"])
    budgeting = kinds[spec.pop("kind")](**spec)
    policy = [
        slo_module.AlertRule(
            severity=severity,
            budget_fraction=fraction,
            long_window=long_window,
            short_window=short_window,
        )
        for severity, fraction, long_window, short_window in data["policy"]
    ]
    common = {
        "target": data["target"],
        "window": data["window"],
        "budgeting": budgeting,
        "policy": policy,
    }
    if data["threshold"] is None:
        return slo_module.SLO(**common)
    return slo_module.LatencySLO(threshold=data["threshold"], **common)


def _point_json(point: MetricPoint) -> list[Any]:
    return [
        point.name,
        point.kind,
        point.value,
        [list(kv) for kv in point.labels],
        point.unit,
        point.description,
    ]


def encode_registry(registry: TelemetryRegistry, pid: int, *, exited: bool = False) -> str:
    """Serialize what a worker shares: timers, shared source points and SLO histories."""
    points: list[list[Any]] = []
    slos: list[dict[str, Any]] = []
    for source in registry.sources():
        if source.sharing == "sum":
            points.extend(_point_json(p) for p in source.points())
        elif source.sharing == "slo":
            tracker = source.tracker
            snapshot = tracker.snapshot()
            slos.append(
                {
                    "events": [snapshot.events, snapshot.bad_events],
                    "name": source.name,
                    "labels": [list(kv) for kv in source.labels],
                    "slo": slo_to_json(tracker.slo),
                    "resolution": tracker.resolution,
                    "budget_resolution": tracker.budget_resolution,
                    "history": [[b.start, b.end, b.total, b.bad] for b in tracker.history()],
                }
            )
    document = {
        "format": _FORMAT,
        "pid": pid,
        "exited": exited,
        "timers": _timers_json(registry.timer_views(copy=False)),
        "points": points,
        "slos": slos,
    }
    return json.dumps(document, sort_keys=True)


class MultiProcessWriter:
    """Write this process's timers and shared sources to ``directory``, periodically and at exit.

    Once started, the registry's exporters (:class:`PrometheusCollector`,
    and so a web middleware's ``/metrics``) serve the merge of every worker's
    file: one scrape of any worker covers them all.

    Args:
        directory: A shared directory (cleared when the server starts).
        registry: The registry to write; :func:`default_registry` if None.
        interval: Seconds between writes of the background thread.

    Raises:
        ConfigurationError: If ``directory`` does not exist or ``interval``
            is not positive.

    The file is ``perfprim-<pid>-<random>.json``, written atomically
    (temporary file + rename).

    Example (gunicorn ``gunicorn.conf.py``)::

        def post_fork(server, worker):
            MultiProcessWriter(os.environ["PERFPRIM_MULTIPROC_DIR"]).start()
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        registry: TelemetryRegistry | None = None,
        interval: float | timedelta = 5.0,
    ) -> None:
        self.directory = _directory(directory)
        self.registry = registry if registry is not None else default_registry()
        self.interval = to_seconds(interval, name="interval", example="5.0")
        self.pid = os.getpid()
        self._names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """This process's file: ``perfprim-<pid>-<random>.json``."""
        pid = os.getpid()
        name = self._names.get(pid)
        if name is None:
            # A new name after a fork too: the child must not overwrite the parent's file.
            name = self._names.setdefault(pid, f"{_PREFIX}{pid}-{secrets.token_hex(4)}.json")
        return self.directory / name

    def flush(self, *, exited: bool = False) -> Path:
        """Write the registry now (atomically) and return the file's path."""
        text = encode_registry(self.registry, os.getpid(), exited=exited)
        target = self.path
        with self._lock:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return target

    def start(self) -> MultiProcessWriter:
        """Start the background writer thread and the at-exit write; return ``self``.

        Also attaches the writer to its registry in this process, so the
        registry's exporters serve the merged view.
        """
        self.pid = os.getpid()
        self.registry.attach_writer(self)
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="perfprim-multiprocess", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the thread (if any) and write a last time, marked as exited."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout=self.interval + 1.0)
            atexit.unregister(self.stop)
        self.flush(exited=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError):  # a full disk must not kill the thread
                self.flush()

    def __enter__(self) -> MultiProcessWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_files(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read every worker file of ``directory`` (unreadable or foreign ones are skipped)."""
    files = []
    for path in sorted(Path(directory).glob(f"{_PREFIX}*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("format") in _FORMATS:
            files.append(data)
    return files


def _alive(data: dict[str, Any]) -> bool:
    if data.get("exited"):
        return False
    pid = data.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def merge_timers(files: Iterable[dict[str, Any]]) -> list[TimerView]:
    """Merge the timers of worker files per ``(name, labels)``.

    A timer whose label names or buckets differ from the first file that
    defined it is skipped in the files that differ.
    """
    from perfprim.histogram import LatencyHistogram

    defs: dict[str, dict[str, Any]] = {}
    merged: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
    for data in files:
        for timer in data.get("timers", ()):
            name = timer["name"]
            first = defs.setdefault(name, timer)
            if first["label_names"] != timer["label_names"] or first["buckets"] != timer["buckets"]:
                continue
            slots = len(timer["buckets"]) + 1
            for series in timer["series"]:
                key = (name, tuple(series["labels"]))
                histogram = LatencyHistogram.decode(series["histogram"], unit=series["unit"])
                slot = merged.get(key)
                if slot is None:
                    slot = merged[key] = [histogram, 0.0, {}, [None] * slots]
                else:
                    slot[0].merge(histogram)
                slot[1] += float(series["total"])
                for kind, n in series["errors"].items():
                    slot[2][kind] = slot[2].get(kind, 0) + int(n)
                for index, trace_id, span_id, value, stamp in series.get("exemplars", ()):
                    kept = slot[3][index]
                    if kept is None or kept.timestamp < stamp:
                        slot[3][index] = Exemplar(trace_id, span_id, value, stamp)
    views = []
    for name in sorted(defs):
        timer = defs[name]
        buckets = tuple(float(b) for b in timer["buckets"])
        series_views = tuple(
            SeriesView(labels, slot[0], slot[1], slot[2], tuple(slot[3]))
            for (n, labels), slot in sorted(merged.items(), key=lambda kv: kv[0])
            if n == name
        )
        views.append(
            TimerView(
                name,
                timer["description"],
                tuple(timer["label_names"]),
                buckets,
                tuple(float(q) for q in timer["quantiles"]),
                series_views,
            )
        )
    return views


def read_directory(directory: str | os.PathLike[str]) -> list[TimerView]:
    """Read every worker file in ``directory`` and merge the timers per ``(name, labels)``.

    Files that cannot be read (being replaced, corrupt, another format) are
    skipped; a timer whose label names or buckets differ from the first file
    that defined it is skipped in the files that differ.

    Args:
        directory: The shared directory.

    Returns:
        Merged timer views, sorted by name, with the newest exemplar per bucket.
    """
    return merge_timers(read_files(directory))


def merge_points(files: Iterable[dict[str, Any]]) -> list[MetricPoint]:
    """Merge the shared source points of worker files.

    Counters are summed over every file (dead workers keep counting: a
    counter never goes back); gauges over the files of live workers.
    """
    order: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
    merged: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[Any]] = {}
    for data in files:
        alive: bool | None = None
        for name, kind, value, labels, unit, description in data.get("points", ()):
            counted = float(value)
            if kind != "counter":
                if alive is None:
                    alive = _alive(data)
                if not alive:
                    counted = 0.0
            key = (name, kind, tuple((str(k), str(v)) for k, v in labels))
            slot = merged.get(key)
            if slot is None:
                merged[key] = [counted, unit, description]
                order.append(key)
            else:
                slot[0] += counted
    return [
        MetricPoint(name, kind, merged[key][0], labels, merged[key][1], merged[key][2])  # type: ignore[arg-type]
        for key in order
        for name, kind, labels in (key,)
    ]


def merge_slos(
    files: Iterable[dict[str, Any]], *, clock: Callable[[], float] = time.monotonic
) -> list[MetricPoint]:
    """Merge the SLO trackers of worker files and return their points (as ``slo_points``).

    Trackers of equal ``(name, labels)`` are merged by replaying every
    worker's per-bucket history, in time order, into one new tracker of the
    same SLO and resolutions, read at ``clock()``. A file whose SLO or
    resolutions differ from the first one's is skipped for that tracker.
    """
    from perfprim.slo import Occurrences, SLOTracker
    from perfprim.telemetry._sources import slo_points

    defs: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
    histories: dict[tuple[str, tuple[tuple[str, str], ...]], list[list[Any]]] = {}
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], list[int]] = {}
    for data in files:
        for entry in data.get("slos", ()):
            key = (entry["name"], tuple((str(k), str(v)) for k, v in entry["labels"]))
            first = defs.setdefault(key, entry)
            same = all(
                first[field] == entry[field] for field in ("slo", "resolution", "budget_resolution")
            )
            if same:
                histories.setdefault(key, []).extend(entry["history"])
                counted = totals.setdefault(key, [0, 0])
                events, bad_events = entry.get("events", (0, 0))
                counted[0] += int(events)
                counted[1] += int(bad_events)
    now = float(clock())
    points: list[MetricPoint] = []
    for key, entry in defs.items():
        slo = slo_from_json(entry["slo"])
        buckets = sorted(histories.get(key, ()), key=lambda b: b[0] + b[1])
        moment = [now]
        if buckets:
            moment[0] = min(now, (buckets[0][0] + buckets[0][1]) / 2)
        tracker = SLOTracker(
            slo,
            clock=lambda moment=moment: moment[0],  # type: ignore[misc]
            resolution=entry["resolution"],
            budget_resolution=(
                entry["budget_resolution"] if isinstance(slo.budgeting, Occurrences) else None
            ),
        )
        for start, end, total, bad in buckets:
            moment[0] = max(moment[0], (start + end) / 2)
            tracker.record_counts(good=int(total) - int(bad), total=int(total))
        moment[0] = max(moment[0], now)
        name, labels = key
        events, bad_events = totals.get(key, (0, 0))
        # The windows come from the replay; the counters since start from the
        # workers' own totals (a replay holds only the SLO window).
        snapshot = dataclasses.replace(tracker.snapshot(), events=events, bad_events=bad_events)
        points.extend(
            MetricPoint(p.name, p.kind, p.value, (*labels, *p.labels), p.unit, p.description)
            for p in slo_points(name, snapshot)
        )
    return points


def merged_families(
    directory: str | os.PathLike[str],
    *,
    registry: TelemetryRegistry | None = None,
    namespace: str = "",
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Any]:
    """Yield the Prometheus families of the merged worker files (plus a registry's local sources).

    Args:
        directory: The shared directory.
        registry: Also export this registry's local (unshared) sources.
        namespace: A prefix joined to every metric name with ``_``.
        clock: The SLO trackers' clock (``time.monotonic``).

    Yields:
        Metric families, each name once.
    """
    files = read_files(directory)
    points = merge_points(files) + merge_slos(files, clock=clock)
    if registry is not None:
        local: tuple[SourceSharing, ...] = ("local",)
        points += registry.source_points(sharing=local)
    yield from unique_families(
        [
            *timer_families(merge_timers(files), namespace=namespace),
            *point_families(points, namespace=namespace),
        ]
    )


class MultiProcessCollector:
    """A prometheus_client collector merging every worker's file at scrape time.

    For a process that writes no file itself (a sidecar). In the workers,
    the registry's own :class:`PrometheusCollector` already serves the merge
    once its :class:`MultiProcessWriter` runs: register one of the two in a
    prometheus registry, never both (each family would appear twice).

    Args:
        directory: The directory the workers' :class:`MultiProcessWriter` write to.
        namespace: A prefix joined to every metric name with ``_``.
        clock: The SLO trackers' clock (``time.monotonic``, as in the workers).

    Raises:
        ConfigurationError: If ``directory`` does not exist.
        MissingDependencyError: If ``prometheus-client`` is not installed.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        namespace: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _prom()
        self.directory = _directory(directory)
        self.namespace = namespace
        self.clock = clock

    def collect(self) -> Iterator[Any]:
        """Yield the merged metric families."""
        yield from merged_families(self.directory, namespace=self.namespace, clock=self.clock)

    def describe(self) -> list[Any]:
        """Return no descriptions: the metrics depend on the workers' files."""
        return []
