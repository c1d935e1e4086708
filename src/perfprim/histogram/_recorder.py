"""IntervalRecorder: record continuously, take the counts since the last call.

Writers use the wrapped :class:`LatencyHistogram`'s lock-free path (append,
fold without waiting). ``interval()`` takes the histogram's fold lock, folds
what is pending and swaps in an empty counts list: constant work under the
lock, and writers never wait for it. A value appended after the fold stays
pending and lands in the next interval, so the intervals partition the
recorded values exactly.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from datetime import timedelta

from perfprim.histogram._histogram import LatencyHistogram

__all__ = ["IntervalRecorder"]


class IntervalRecorder:
    """Record latencies and take interval histograms, as HdrHistogram's ``Recorder`` does.

    ``record``, ``record_ns``, ``record_corrected``, ``timed`` and ``time``
    are those of an internal :class:`LatencyHistogram` (same cost). Each
    :meth:`interval` returns a new histogram with the values recorded since
    the previous call, stamped with wall-clock ``start_time`` and
    ``end_time`` (seconds since the epoch) and the recorder's ``tag``, ready
    for :class:`HistogramLogWriter`.

    Args:
        lowest: As for :class:`LatencyHistogram`.
        highest: As for :class:`LatencyHistogram`.
        significant_figures: As for :class:`LatencyHistogram`.
        unit: As for :class:`LatencyHistogram`.
        clamp: As for :class:`LatencyHistogram`.
        tag: Tag given to every interval histogram (no commas or spaces).
        clock: Nanosecond clock for ``timed`` and ``time``.
        wall_clock: Seconds-since-epoch clock for interval timestamps.

    Raises:
        ConfigurationError: If an option is invalid.

    Example:
        >>> rec = IntervalRecorder(wall_clock=iter([100.0, 160.0, 220.0]).__next__)
        >>> rec.record(0.004)
        >>> snapshot = rec.interval()
        >>> snapshot.count, snapshot.start_time, snapshot.end_time
        (1, 100.0, 160.0)
        >>> rec.interval().count
        0
    """

    def __init__(
        self,
        *,
        lowest: float | timedelta = 1e-6,
        highest: float | timedelta = 3600.0,
        significant_figures: int = 3,
        unit: float = 1e-6,
        clamp: bool = False,
        tag: str | None = None,
        clock: Callable[[], int] = _time.perf_counter_ns,
        wall_clock: Callable[[], float] = _time.time,
    ) -> None:
        from perfprim import _validate as v
        from perfprim.histogram._log import check_tag

        self.tag = check_tag(tag)
        v.callable_(wall_clock, "wall_clock", what="a callable returning seconds since the epoch")
        self._histogram = LatencyHistogram(
            lowest=lowest,
            highest=highest,
            significant_figures=significant_figures,
            unit=unit,
            clamp=clamp,
            clock=clock,
        )
        self._wall_clock = wall_clock
        self._start = wall_clock()
        # The hot paths are the histogram's own bound methods: no extra call.
        #: :meth:`LatencyHistogram.record` of the current interval.
        self.record = self._histogram.record
        #: :meth:`LatencyHistogram.record_ns` of the current interval.
        self.record_ns = self._histogram.record_ns
        #: :meth:`LatencyHistogram.record_corrected` of the current interval.
        self.record_corrected = self._histogram.record_corrected
        #: :meth:`LatencyHistogram.timed`: decorate a function to record its runs.
        self.timed = self._histogram.timed
        #: :meth:`LatencyHistogram.time`: a timer context manager and decorator.
        self.time = self._histogram.time

    def interval(self) -> LatencyHistogram:
        """Return the values recorded since the last call (or creation) and start a new interval.

        Returns:
            A new histogram holding exactly those values, with ``start_time``,
            ``end_time`` and ``tag`` set.
        """
        h = self._histogram
        fresh = [0] * h.layout.counts_len
        with h._lock:
            now = self._wall_clock()
            h._drain()
            counts, count, total, low, high, clamped, exact = h._take(fresh)
            start, self._start = self._start, now
        snapshot = LatencyHistogram._empty_like(h.layout, h._unit, clamp=h.clamp)
        snapshot._counts = counts
        snapshot._count = count
        snapshot._sum = total
        snapshot._min = low
        snapshot._max = high
        snapshot._clamped = clamped
        snapshot._sum_exact = exact
        snapshot.start_time = start
        snapshot.end_time = now
        snapshot.tag = self.tag
        return snapshot

    def __repr__(self) -> str:
        return f"IntervalRecorder(tag={self.tag!r}, since={self._start!r})"
