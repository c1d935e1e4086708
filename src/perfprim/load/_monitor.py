"""The monitor: folds per-interval samples into totals, windows, threshold verdicts and progress.

Pure bookkeeping, the same for one process and for many: the single-process
engine hands it each interval's sample directly; with worker processes the
parent merges the workers' samples of one interval first (:meth:`Sample.merge`,
lossless: HDR counts add exactly) and hands it the merged one. It decides
whether a windowed threshold aborts the run, builds :class:`Progress`
snapshots, and writes the interval log.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from perfprim.histogram import HistogramLogWriter, LatencyHistogram
from perfprim.load._progress import Progress
from perfprim.load._schedule import Schedule
from perfprim.load._thresholds import (
    Measurements,
    Threshold,
    ThresholdResult,
    evaluate,
    observe,
)

__all__ = ["HISTOGRAM_OPTIONS", "Monitor", "Sample", "new_histogram"]

HISTOGRAM_OPTIONS: dict[str, Any] = {
    "lowest": 1e-6,
    "highest": 24 * 3600.0,
    "significant_figures": 3,
    "clamp": True,
}
"""Latency and lateness histograms: 1 us to 24 h, 3 digits (wrk2's layout), clamped."""

LATENESS_TAG = "lateness"


def new_histogram() -> LatencyHistogram:
    """Return an empty histogram in the load driver's layout."""
    return LatencyHistogram(**HISTOGRAM_OPTIONS)


@dataclass(slots=True)
class Sample:
    """What happened during one interval of a run (one process, or merged over workers).

    Attributes:
        index: Interval number, from 0.
        offset: Seconds from the run's start to the end of the interval.
        seconds: Length of the interval in seconds.
        latency: Latency (completion - planned start) of requests completed in it.
        lateness: Lateness (actual send - planned send) of requests sent in it.
        sent: Requests sent.
        completed: Requests completed (including errors).
        errors: Requests failed.
        late: Sends later than the run's ``late_after``.
        waited: Sends that waited for a free in-flight slot.
        in_flight: Requests in flight at the end of the interval.
        error_kinds: Failures by kind (``"http 503"``, ``"TimeoutError"``...).
    """

    index: int
    offset: float
    seconds: float
    latency: LatencyHistogram
    lateness: LatencyHistogram
    sent: int = 0
    completed: int = 0
    errors: int = 0
    late: int = 0
    waited: int = 0
    in_flight: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def merge(self, other: Sample) -> None:
        """Add another process's sample of the same interval to this one."""
        self.latency.merge(other.latency)
        self.lateness.merge(other.lateness)
        self.offset = max(self.offset, other.offset)
        self.seconds = max(self.seconds, other.seconds)
        self.sent += other.sent
        self.completed += other.completed
        self.errors += other.errors
        self.late += other.late
        self.waited += other.waited
        self.in_flight += other.in_flight
        for kind, n in other.error_kinds.items():
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + n

    def to_message(self) -> dict[str, Any]:
        """Encode for a pipe: histograms in the HdrHistogram V2 format, the rest as numbers."""
        return {
            "index": self.index,
            "offset": self.offset,
            "seconds": self.seconds,
            "latency": self.latency.encode(),
            "lateness": self.lateness.encode(),
            "start": self.latency.start_time,
            "end": self.latency.end_time,
            "counts": (
                self.sent,
                self.completed,
                self.errors,
                self.late,
                self.waited,
                self.in_flight,
            ),
            "error_kinds": dict(self.error_kinds),
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Sample:
        """Decode what :meth:`to_message` encoded (counts exact, min/max to bucket precision)."""
        latency = _decoded(message["latency"], message)
        lateness = _decoded(message["lateness"], message)
        lateness.tag = LATENESS_TAG
        sent, completed, errors, late, waited, in_flight = message["counts"]
        return cls(
            index=message["index"],
            offset=message["offset"],
            seconds=message["seconds"],
            latency=latency,
            lateness=lateness,
            sent=sent,
            completed=completed,
            errors=errors,
            late=late,
            waited=waited,
            in_flight=in_flight,
            error_kinds=dict(message["error_kinds"]),
        )


def _decoded(text: str, message: dict[str, Any]) -> LatencyHistogram:
    decoded = LatencyHistogram.decode(text, clamp=True)
    # Decoding keeps the encoded layout; fold into the driver's layout so that
    # every merge is a plain addition of counts.
    histogram = new_histogram()
    histogram.merge(decoded)
    histogram.start_time = message["start"]
    histogram.end_time = message["end"]
    return histogram


@dataclass(slots=True)
class _WindowState:
    threshold: Threshold
    size: int  # intervals per window
    failed: ThresholdResult | None = None
    worst: ThresholdResult | None = None


def _worse(threshold: Threshold, a: float, b: float) -> bool:
    """Whether observed value ``a`` is further from passing than ``b``."""
    if math.isnan(b):
        return False
    if threshold.operator in ("<", "<="):
        return a > b
    if threshold.operator in (">", ">="):
        return a < b
    return abs(a - threshold.value) > abs(b - threshold.value)


class Monitor:
    """Fold interval samples into a run's totals, windowed verdicts, progress and log.

    Args:
        thresholds: Parsed thresholds.
        schedule: The run's schedule (for the planned rate in progress).
        interval: Seconds per interval (windows are whole numbers of intervals).
        on_progress: Called with a :class:`Progress` after each sample.
        log: Writes each interval to an ``.hlog`` (header already written).
    """

    def __init__(
        self,
        thresholds: Sequence[Threshold],
        *,
        schedule: Schedule,
        interval: float,
        on_progress: Callable[[Progress], object] | None = None,
        log: HistogramLogWriter | None = None,
    ) -> None:
        self.thresholds = tuple(thresholds)
        self._schedule = schedule
        self._interval = interval
        self._on_progress = on_progress
        self._log = log
        self.latency = new_histogram()
        self.lateness = new_histogram()
        self.lateness.tag = LATENESS_TAG
        self.sent = self.completed = self.errors = self.late = self.waited = 0
        self.in_flight = 0
        self.samples = 0
        self.duration = 0.0
        self.error_kinds: dict[str, int] = {}
        self._windows = [
            _WindowState(t, max(1, round((t.window_seconds or 0.0) / interval)))
            for t in self.thresholds
            if t.window is not None
        ]
        self._recent: deque[Sample] = deque(maxlen=max((w.size for w in self._windows), default=1))
        self.aborted_by: ThresholdResult | None = None

    def add(self, sample: Sample) -> bool:
        """Fold in one interval's sample; return True if the run must abort.

        Args:
            sample: The interval (merged over workers).

        Returns:
            True when a windowed ``abort`` threshold failed on this interval.
        """
        self.latency.merge(sample.latency)
        self.lateness.merge(sample.lateness)
        self.sent += sample.sent
        self.completed += sample.completed
        self.errors += sample.errors
        self.late += sample.late
        self.waited += sample.waited
        self.in_flight = sample.in_flight
        self.samples += 1
        self.duration = max(self.duration, sample.offset)
        for kind, n in sample.error_kinds.items():
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + n
        if self._log is not None and (sample.latency.start_time is not None):
            self._log.write_interval(sample.latency)
            self._log.write_interval(sample.lateness, tag=LATENESS_TAG)
        self._recent.append(sample)
        abort = self._evaluate_windows()
        if self._on_progress is not None:
            self._on_progress(self.progress(sample))
        return abort

    def _evaluate_windows(self) -> bool:
        abort = False
        cache: dict[int, Measurements] = {}
        for state in self._windows:
            if len(self._recent) < state.size:
                continue
            m = cache.get(state.size)
            if m is None:
                m = cache[state.size] = self._window(state.size)
            if m.completed == 0:  # nothing finished in the window: no verdict
                continue
            observed = observe(state.threshold, m)
            start = self._recent[-1].offset - m.seconds
            result = ThresholdResult(
                state.threshold, observed, state.threshold.holds(observed), window_start=start
            )
            if state.worst is None or _worse(state.threshold, observed, state.worst.observed):
                state.worst = result
            if not result.passed and state.failed is None:
                state.failed = result
                if state.threshold.abort_on_fail and self.aborted_by is None:
                    self.aborted_by = result
                    abort = True
        return abort

    def _window(self, size: int) -> Measurements:
        recent = list(self._recent)[-size:]
        latency = new_histogram()
        for s in recent:
            latency.merge(s.latency)
        return Measurements(
            latency=latency,
            completed=sum(s.completed for s in recent),
            errors=sum(s.errors for s in recent),
            seconds=math.fsum(s.seconds for s in recent),
        )

    def progress(self, sample: Sample) -> Progress:
        """Return the progress snapshot after ``sample``."""
        p = self.latency.percentiles((50.0, 99.0))
        return Progress(
            elapsed=sample.offset,
            duration=self._schedule.duration,
            planned_rate=self._schedule.rate_at(min(sample.offset, self._schedule.duration)),
            rate=sample.completed / sample.seconds if sample.seconds > 0 else 0.0,
            in_flight=sample.in_flight,
            sent=self.sent,
            completed=self.completed,
            errors=self.errors,
            late=self.late,
            p50=p[50.0],
            p99=p[99.0],
        )

    def verdicts(self, seconds: float) -> tuple[ThresholdResult, ...]:
        """Return every threshold's verdict for the whole run, in the order given.

        Args:
            seconds: The run's duration, for ``rate``.

        Returns:
            Whole-run thresholds evaluated on the totals; windowed ones with
            their first failing (or worst) window, or "no data" when no
            window completed.
        """
        whole = Measurements(self.latency, self.completed, self.errors, seconds)
        windows = {id(w.threshold): w for w in self._windows}
        results = []
        for t in self.thresholds:
            state = windows.get(id(t))
            if state is None:
                results.append(evaluate(t, whole))
            elif state.failed is not None:
                results.append(state.failed)
            elif state.worst is not None:
                results.append(state.worst)
            else:
                results.append(ThresholdResult(t, math.nan, False))
        return tuple(results)
