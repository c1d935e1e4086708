"""Pre-fork servers (gunicorn workers): each worker writes its histograms; the scrape merges.

The story
---------
Every worker process runs a :class:`MultiProcessWriter` that writes the
registry's timers to ``<directory>/perfprim-<pid>-<random>.json`` (the random
part is drawn once per writer and process, so a reused pid never overwrites a
dead worker's file) every ``interval``
seconds and at exit: per series the HDR histogram encoded in the
HdrHistogram V2 format, the exact sum of durations and the error counts. The
write is atomic (a temporary file renamed over the old one), so a reader
never sees half a file. The process that serves ``/metrics`` (any worker, or
a sidecar) uses :class:`MultiProcessCollector`, which reads every file,
merges the histograms of equal ``(name, labels)`` exactly (same layout:
counts are added) and yields the same metric families as
:class:`~perfprim.telemetry.PrometheusCollector`.

Limits
------
- Freshness: a scrape sees each worker as of its last write (``interval``,
  5 s by default), never the calls since. A worker that dies without a
  normal interpreter exit (``SIGKILL``, ``os._exit`` as in ``multiprocessing``
  children) loses the calls since its last write; call ``stop()`` yourself
  where you can.
- Files of dead workers stay and keep counting (counters must not go
  backwards); clear the directory when the server starts, as with
  prometheus_client's multiprocess mode.
- Exemplars, quantile gauges' freshness and snapshot sources (cache stats,
  SLO trackers) are per process and not merged; export those from each
  worker's own registry if needed.
- Start the writer in each worker after the fork (gunicorn's ``post_fork``):
  threads do not survive ``fork``. Do not record in the master before
  forking: every worker would inherit and re-export those counts.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from perfprim.exceptions import ConfigurationError
from perfprim.telemetry._prometheus import _prom, timer_families
from perfprim.telemetry._registry import (
    SeriesView,
    TelemetryRegistry,
    TimerView,
    default_registry,
)

_FORMAT = 1
_PREFIX = "perfprim-"


def _interval(value: float | timedelta) -> float:
    seconds: object = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        msg = f"interval must be positive float seconds or a timedelta (got {value!r}), e.g. 5.0"
        raise ConfigurationError(msg)
    return float(seconds)


def _directory(directory: str | os.PathLike[str]) -> Path:
    path = Path(directory)
    if not path.is_dir():
        msg = f"{str(path)!r} is not a directory; create it (and clear it when the server starts)"
        raise ConfigurationError(msg)
    return path


def encode_views(views: list[TimerView], pid: int) -> str:
    """Serialize timer views to the worker file's JSON text."""
    timers = [
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
                }
                for s in view.series
                if s.histogram.count or s.errors
            ],
        }
        for view in views
    ]
    return json.dumps({"format": _FORMAT, "pid": pid, "timers": timers}, sort_keys=True)


class MultiProcessWriter:
    """Write this process's timers to ``directory`` periodically and at exit.

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
        self.interval = _interval(interval)
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

    def flush(self) -> Path:
        """Write the registry now (atomically) and return the file's path."""
        text = encode_views(self.registry.timer_views(copy=False), os.getpid())
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
        """Start the background writer thread and the at-exit write; return ``self``."""
        if self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="perfprim-multiprocess", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the thread (if any) and write a last time."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout=self.interval + 1.0)
            atexit.unregister(self.stop)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def __enter__(self) -> MultiProcessWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_directory(directory: str | os.PathLike[str]) -> list[TimerView]:
    """Read every worker file in ``directory`` and merge them per ``(name, labels)``.

    Files that cannot be read (being replaced, corrupt, another format) are
    skipped; a timer whose label names or buckets differ from the first file
    that defined it is skipped in the files that differ.

    Args:
        directory: The shared directory.

    Returns:
        Merged timer views, sorted by name; exemplars are not carried.
    """
    from perfprim.histogram import LatencyHistogram

    defs: dict[str, dict[str, Any]] = {}
    merged: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
    for path in sorted(Path(directory).glob(f"{_PREFIX}*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            continue
        for timer in data["timers"]:
            name = timer["name"]
            first = defs.setdefault(name, timer)
            if first["label_names"] != timer["label_names"] or first["buckets"] != timer["buckets"]:
                continue
            for series in timer["series"]:
                key = (name, tuple(series["labels"]))
                histogram = LatencyHistogram.decode(series["histogram"], unit=series["unit"])
                slot = merged.get(key)
                if slot is None:
                    merged[key] = [histogram, float(series["total"]), dict(series["errors"])]
                    continue
                slot[0].merge(histogram)
                slot[1] += float(series["total"])
                for kind, n in series["errors"].items():
                    slot[2][kind] = slot[2].get(kind, 0) + int(n)
    views = []
    for name in sorted(defs):
        timer = defs[name]
        buckets = tuple(float(b) for b in timer["buckets"])
        series_views = tuple(
            SeriesView(labels, slot[0], slot[1], slot[2], (None,) * (len(buckets) + 1))
            for (n, labels), slot in sorted(merged.items())
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


class MultiProcessCollector:
    """A prometheus_client collector merging every worker's file at scrape time.

    Args:
        directory: The directory the workers' :class:`MultiProcessWriter` write to.
        namespace: A prefix joined to every metric name with ``_``.

    Raises:
        ConfigurationError: If ``directory`` does not exist.
        MissingDependencyError: If ``prometheus-client`` is not installed.
    """

    def __init__(self, directory: str | os.PathLike[str], *, namespace: str = "") -> None:
        _prom()
        self.directory = _directory(directory)
        self.namespace = namespace

    def collect(self) -> Iterator[Any]:
        """Yield the merged metric families."""
        yield from timer_families(read_directory(self.directory), namespace=self.namespace)

    def describe(self) -> list[Any]:
        """Return no descriptions: the metrics depend on the workers' files."""
        return []
