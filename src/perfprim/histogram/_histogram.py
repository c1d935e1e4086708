"""LatencyHistogram: HdrHistogram recording in float seconds, fast queries, thread safe.

Values are float seconds, stored as integers of ``unit`` seconds (default one
microsecond) in HdrHistogram's bucket layout (see ``_layout``). The counts live
in a plain Python list and a value's index is two shifts and an
``int.bit_length``, computed in a tight loop when pending values are folded:
a fraction of the hdrhistogram package's per-value method calls and ctypes
stores.

Thread safety without a lock on the hot path: ``record`` and ``record_ns``
only append the value to a pending list (``list.append`` is atomic, on GIL and
free-threaded builds alike) and, every ``_FOLD_AT`` values, fold the pending
values into the counts under a lock that only folders and readers take, and
that a writer never waits for (``acquire(blocking=False)``: if another thread
is folding, the writer just carries on). A fold takes the first ``k`` pending
values with ``buf[:k]`` and removes exactly those with ``del buf[:k]``; values
appended meanwhile stay for the next fold, so nothing is lost. Readers fold
everything pending before they answer. Measured side by side on this
project's 2-core machine, recording varied values costs about 0.35x of
hdrhistogram's ``record_value`` this way, against 0.55x for the same update
done inline under a ``threading.Lock``; per-thread shards were no faster than
the lock (a ``threading.local`` lookup costs about as much) and need one
185 KiB counts array per thread. The catch: the writer that triggers a fold
pays for it (256 values, about 40 us) once every 256 records; folding every
1,024 values would be ~4% cheaper per record but make that pause 4x longer.

Queries (percentiles, cumulative counts) use a prefix sum built with
``itertools.accumulate`` and searched with ``bisect``; it is cached and
rebuilt only after writes. Mean is the exact running sum over the count;
stdev uses HdrHistogram's convention (bucket midpoints), computed with
``sum(map(mul, ...))`` in exact integer arithmetic.
"""

from __future__ import annotations

import math
import numbers
import operator
import threading
import time as _time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from fractions import Fraction
from itertools import accumulate, compress, repeat
from operator import add, floordiv, mul
from types import TracebackType
from typing import Any, TypeVar

from perfprim import _validate as v
from perfprim._durations import to_seconds
from perfprim._timing import timing_wrapper
from perfprim.exceptions import ConfigurationError, HistogramRangeError
from perfprim.histogram._layout import Layout, layout_for, median_values

__all__ = ["LatencyHistogram"]

F = TypeVar("F", bound=Callable[..., Any])
H = TypeVar("H", bound="LatencyHistogram")

_NO_MIN = 1 << 63  # larger than any trackable value
_FOLD_AT = 256  # pending values per fold: ~40 us of work for the writer that folds
MAX_COUNT = (1 << 62) - 1
"""Most values a histogram holds: the V2 wire format's ZigZag varints lose larger counts.

The hdrhistogram package's encoder turns a count of 2**62 into 0 and aborts
the interpreter at 2**63, so ``record`` and ``merge`` refuse to go past it."""
_MAX_TICKS = 1000  # .hgrm lines per halving: more is megabytes of text, no more information


def check_unit(unit: float) -> float:
    """Validate ``unit``: seconds per stored integer, from a picosecond to an hour."""
    seconds = to_seconds(unit, name="unit", example="1e-6 = microseconds")
    if not 1e-12 <= seconds <= 3600.0:
        raise v.fail(
            "unit", "between 1e-12 (picoseconds) and 3600 seconds", unit, "1e-6 = microseconds"
        )
    return seconds


def _is_nan(value: numbers.Real) -> bool:
    try:
        return math.isnan(value)
    except OverflowError:  # an int too large for a float is no NaN
        return False


def _check_percentile(p: object) -> float:
    return v.number(p, "percentile", low=0.0, high=100.0, hint="99.9 means p99.9")


def _too_many(have: int, adding: int) -> ConfigurationError:
    return ConfigurationError(
        f"the histogram would hold {have + adding} values, more than the {MAX_COUNT} "
        "(2**62 - 1) that the HdrHistogram wire format can carry: record into a new "
        "histogram (an IntervalRecorder interval, say)"
    )


class _Timer:
    """What :meth:`LatencyHistogram.time` returns: a context manager and a decorator."""

    __slots__ = ("_clock", "_histogram", "_start")

    def __init__(self, histogram: LatencyHistogram, clock: Callable[[], int]) -> None:
        self._histogram = histogram
        self._clock = clock
        self._start = 0

    def __enter__(self) -> _Timer:
        self._start = self._clock()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._histogram.record_ns(self._clock() - self._start)

    async def __aenter__(self) -> _Timer:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        """Decorate ``func`` like :meth:`LatencyHistogram.timed`."""
        return self._histogram._wrap(func, self._clock)


class LatencyHistogram:
    """An HDR latency histogram over float seconds, safe to record into from many threads.

    Every recorded value is first rounded to the nearest ``unit`` (default one
    microsecond) and then counted in HdrHistogram's buckets, which keep
    ``significant_figures`` decimal digits: any value is represented with a
    relative error of at most ``10 ** -significant_figures`` (0.1% at 3), and
    every percentile is within that of the exact sample percentile.

    Args:
        lowest: Lowest value to tell apart from zero, in seconds (>= ``unit``).
            Smaller values are still recorded, at that resolution.
        highest: Highest value to track, in seconds. Larger values raise
            :class:`HistogramRangeError`, or are clamped when ``clamp`` is set.
        significant_figures: Decimal digits of precision, 1..5.
        unit: Resolution of the stored integers, in seconds. Also the unit of
            the HdrHistogram wire format (``encode``) and of other
            implementations reading it.
        clamp: Clamp out-of-range values to ``[0, highest]`` and count them in
            :attr:`clamped` instead of raising.
        clock: Nanosecond clock used by :meth:`timed` and :meth:`time`.

    Raises:
        ConfigurationError: If the range or precision is invalid.

    Example:
        >>> h = LatencyHistogram()
        >>> h.record(0.0123)
        >>> h.record(0.002, count=5)
        >>> h.count, h.max  # max at the histogram's precision: 0.0123's bucket ends at 0.012303
        (6, 0.012303)
        >>> h.percentile(50.0)
        0.002
    """

    __slots__ = (
        "__weakref__",
        "_buf",
        "_clamp",
        "_clamped",
        "_clock",
        "_count",
        "_counts",
        "_generation",
        "_hi",
        "_hi_ns",
        "_inv",
        "_k",
        "_layout",
        "_lock",
        "_max",
        "_min",
        "_ns_den",
        "_ns_half",
        "_ns_num",
        "_nsbuf",
        "_off",
        "_prefix",
        "_prefix_gen",
        "_shift",
        "_sum",
        "_sum_exact",
        "_unit",
        "end_time",
        "start_time",
        "tag",
    )

    def __init__(
        self,
        *,
        lowest: float | timedelta = 1e-6,
        highest: float | timedelta = 3600.0,
        significant_figures: int = 3,
        unit: float = 1e-6,
        clamp: bool = False,
        clock: Callable[[], int] = _time.perf_counter_ns,
    ) -> None:
        unit_f = check_unit(unit)
        lowest_s = to_seconds(lowest, name="lowest")
        highest_s = to_seconds(highest, name="highest")
        clamp = v.boolean(clamp, "clamp")
        v.callable_(clock, "clock", what="a callable returning integer nanoseconds")
        exact_unit = Fraction(repr(unit_f))
        lowest_units = round(Fraction(repr(lowest_s)) / exact_unit)
        highest_units = round(Fraction(repr(highest_s)) / exact_unit)
        if isinstance(significant_figures, bool) or not isinstance(significant_figures, int):
            msg = f"significant_figures must be an int in 1..5, got {significant_figures!r}"
            raise ConfigurationError(msg)
        try:
            layout = layout_for(lowest_units, highest_units, significant_figures)
        except ValueError as exc:
            msg = (
                f"invalid histogram range or precision: {exc}. Pass lowest >= unit "
                f"({unit_f!r} s), highest >= 2 * lowest, significant_figures in 1..5 "
                f"(got lowest={lowest!r}, highest={highest!r})"
            )
            raise ConfigurationError(msg) from exc
        self._setup(layout, exact_unit, clamp=clamp, clock=clock)

    # -- construction helpers -------------------------------------------------------

    def _setup(
        self,
        layout: Layout,
        exact_unit: Fraction,
        *,
        clamp: bool,
        clock: Callable[[], int],
    ) -> None:
        self._layout = layout
        self._unit = exact_unit
        self._clamp = bool(clamp)
        self._clock = clock
        # Hot-path constants (see _layout for the index formula).
        h = layout.sub_bucket_half_count_magnitude
        self._hi = layout.highest
        self._inv = float(1 / exact_unit)
        self._k = layout.sub_bucket_mask
        self._shift = h
        self._off = layout.unit_magnitude << h
        # record_ns: n = (ns * num + half) // den, i.e. round(ns / unit_ns) exactly.
        unit_ns = exact_unit * 1_000_000_000
        self._ns_num = unit_ns.denominator
        self._ns_den = unit_ns.numerator
        self._ns_half = unit_ns.numerator // 2
        # the largest elapsed_ns that still rounds to <= highest units
        self._hi_ns = ((layout.highest + 1) * self._ns_den - self._ns_half - 1) // self._ns_num
        self._buf: list[int] = []  # pending values in units (record)
        self._nsbuf: list[int] = []  # pending values in nanoseconds (record_ns)
        self._lock = threading.Lock()  # guards everything below; writers never wait for it
        self._counts = [0] * layout.counts_len
        self._count = 0
        self._sum = 0
        self._sum_exact = True
        self._min = _NO_MIN
        self._max = 0
        self._clamped = 0
        self._generation = 0
        self._prefix: list[int] = []
        self._prefix_gen = -1
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.tag: str | None = None

    @classmethod
    def _empty_like(cls: type[H], layout: Layout, unit: Fraction, *, clamp: bool) -> H:
        new = cls.__new__(cls)
        new._setup(layout, unit, clamp=clamp, clock=_time.perf_counter_ns)
        return new

    # -- recording (hot path) --------------------------------------------------------

    def record(self, seconds: float, count: int = 1) -> None:
        """Record a value in seconds, ``count`` times.

        Args:
            seconds: The value; rounded to the nearest ``unit`` first.
            count: How many times it occurred (>= 1).

        Raises:
            HistogramRangeError: If the value is negative, NaN or above
                ``highest`` (unless the histogram clamps).
            ConfigurationError: If ``count`` is not a positive int.
        """
        try:
            n = int(seconds * self._inv + 0.5)
        except (ValueError, OverflowError, TypeError):
            n = -1
        if (
            n > self._hi
            or n < 0
            or count != 1
            or count is True  # True == 1: a bool is no count
            or seconds.__class__ is bool
        ):
            self._record_slow(seconds, n, count)
            return
        buf = self._buf
        buf.append(n)
        if len(buf) >= _FOLD_AT:
            self._fold_nowait()

    def record_ns(self, elapsed_ns: int) -> None:
        """Record one duration given in integer nanoseconds (a ``perf_counter_ns`` difference).

        This is the decorator fast path: two comparisons and an append; the
        conversion to ``unit`` (exact integer rounding) happens in the fold.

        Args:
            elapsed_ns: The duration in nanoseconds.

        Raises:
            HistogramRangeError: If it is negative or above ``highest``
                (unless the histogram clamps).
        """
        if elapsed_ns.__class__ is not int or elapsed_ns > self._hi_ns or elapsed_ns < 0:
            self._record_ns_slow(elapsed_ns)
            return
        buf = self._nsbuf
        buf.append(elapsed_ns)
        if len(buf) >= _FOLD_AT:
            self._fold_nowait()

    def _record_ns_slow(self, elapsed_ns: int) -> None:
        if elapsed_ns.__class__ is not int:
            # Only exact ints reach the pending list: an int subclass or an
            # integer-like (numpy.int64) is converted, anything else refused.
            try:
                converted = operator.index(elapsed_ns)
            except TypeError:
                converted = None
            if converted is None or isinstance(elapsed_ns, bool):
                msg = f"record_ns() takes integer nanoseconds, got {elapsed_ns!r}"
                raise ConfigurationError(msg) from None
            self.record_ns(int(converted))
            return
        n = (elapsed_ns * self._ns_num + self._ns_half) // self._ns_den
        try:
            seconds = elapsed_ns / 1e9
        except OverflowError:  # more nanoseconds than a float holds
            seconds = math.inf
        self._record_slow(seconds, -1 if elapsed_ns < 0 else max(n, self._hi + 1), 1)

    def _record_slow(self, seconds: object, n: int, count: object) -> None:
        """Validate, clamp or raise, then add ``count`` values directly under the lock."""
        n = self._out_of_range(seconds, n, count)
        c: int = count  # type: ignore[assignment]  # checked by _out_of_range
        index = self._layout.index_of(n)
        with self._lock:
            self._drain()
            if self._count + c > MAX_COUNT:
                raise _too_many(self._count, c)
            self._counts[index] += c
            self._count += c
            self._sum += n * c
            if n < self._min:  # noqa: PLR1730 - a compare is cheaper than a min() call
                self._min = n
            if n > self._max:  # noqa: PLR1730
                self._max = n
            self._generation += 1

    def _fold_nowait(self) -> None:
        """Fold pending values unless another thread is already at it (writers never wait)."""
        lock = self._lock
        if lock.acquire(blocking=False):
            try:
                self._drain()
            finally:
                lock.release()

    def _drain(self) -> None:
        """Move the pending values into the counts; the caller holds the lock."""
        buf = self._buf
        k = len(buf)
        batch = buf[:k]
        del buf[:k]
        nsbuf = self._nsbuf
        k = len(nsbuf)
        if k:
            den = self._ns_den
            half = self._ns_half
            num = self._ns_num
            # round(ns / unit_ns) exactly, with C-level maps: (ns * num + half) // den
            pending = nsbuf[:k]
            scaled = pending if num == 1 else map(mul, pending, repeat(num))
            batch += map(floordiv, map(add, scaled, repeat(half)), repeat(den))
            del nsbuf[:k]
        if not batch:
            return
        counts = self._counts
        h = self._shift
        mask = self._k
        h1 = h + 1
        off = self._off
        if off:
            for n in batch:
                t = (n | mask).bit_length() - h1
                counts[(t << h) + (n >> t) - off] += 1
        else:  # lowest == 1 unit, the usual case: one subtraction less per value
            linear = mask + 1  # below this the index is the value itself
            for n in batch:
                if n < linear:
                    counts[n] += 1
                else:
                    t = (n | mask).bit_length() - h1
                    counts[(t << h) + (n >> t)] += 1
        self._count += len(batch)
        self._sum += sum(batch)
        low = min(batch)
        if low < self._min:  # noqa: PLR1730
            self._min = low
        high = max(batch)
        if high > self._max:  # noqa: PLR1730
            self._max = high
        self._generation += 1

    def _out_of_range(self, seconds: object, n: int, count: object) -> int:
        """Slow path of record: validate, then clamp (returning the value) or raise."""
        c = v.integer(count, "count", low=1, high=MAX_COUNT)
        if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real):
            msg = (
                f"record() takes float seconds, got {seconds!r} "
                "(for a timedelta pass td.total_seconds())"
            )
            raise ConfigurationError(msg)
        if 0 <= n <= self._hi:
            return n
        if _is_nan(seconds):
            msg = "cannot record NaN: measure a real duration"
            raise HistogramRangeError(msg)
        if self._clamp:
            with self._lock:
                self._clamped += c
            return 0 if seconds < 0 else self._hi
        msg = (
            f"value {v.show(seconds)} s is outside the histogram range [0, {self.highest!r}] s: "
            "construct it with a larger highest=, or with clamp=True to clamp and count "
            "such values in .clamped"
        )
        raise HistogramRangeError(msg)

    def record_corrected(
        self, seconds: float, *, expected_interval: float | timedelta, count: int = 1
    ) -> None:
        """Record a value and correct for coordinated omission.

        A load generator that waits for each response before sending the next
        request stops sampling while the system stalls. When a value exceeds
        the ``expected_interval`` between requests, the requests that would
        have been sent during the stall are recorded too, with the latencies
        they would have seen: ``seconds - k * expected_interval`` for each
        ``k >= 1`` while that is ``>= expected_interval`` (HdrHistogram's
        ``recordValueWithExpectedInterval``). The cost is bounded by the number
        of buckets, not by ``seconds / expected_interval``.

        Args:
            seconds: The measured value.
            expected_interval: Time between requests the generator intended.
            count: How many times the value occurred.

        Raises:
            ConfigurationError: If ``expected_interval`` is not positive.
            HistogramRangeError: As for :meth:`record`.
        """
        interval = to_seconds(expected_interval, name="expected_interval")
        if interval > self.highest:  # no value in range is corrected: nothing to fill in
            self.record(seconds, count)
            return
        d = round(interval * self._inv)
        if d < 1:
            msg = (
                f"expected_interval must be at least one unit ({float(self._unit)!r} s), "
                f"got {expected_interval!r}"
            )
            raise ConfigurationError(msg)
        self.record(seconds, count)
        try:
            n = min(max(int(seconds * self._inv + 0.5), 0), self._hi)
        except OverflowError:  # +inf, clamped by record() above
            n = self._hi
        top = n - d
        if top < d:
            return
        layout = self._layout
        # Walk the arithmetic sequence top, top - d, ..., >= d one bucket at a time.
        updates: list[tuple[int, int]] = []
        added = 0
        total = 0
        x = top
        while x >= d:
            index = layout.index_of(x)
            low = max(layout.lowest_equivalent(index), d)
            k = (x - low) // d + 1  # sequence members in [low, x]
            updates.append((index, k * count))
            added += k * count
            total += (k * x - d * k * (k - 1) // 2) * count
            x -= k * d
        smallest = x + d
        with self._lock:
            self._drain()
            if self._count + added > MAX_COUNT:
                raise _too_many(self._count, added)
            counts = self._counts
            for index, c in updates:
                counts[index] += c
            self._count += added
            self._sum += total
            self._min = min(self._min, smallest)
            self._generation += 1

    # -- decorators ------------------------------------------------------------------

    def _record_elapsed(self, elapsed_ns: int) -> None:
        """record_ns for differences of ``time.perf_counter_ns``: always ints, never negative."""
        if elapsed_ns > self._hi_ns:
            self._record_ns_slow(elapsed_ns)
            return
        buf = self._nsbuf
        buf.append(elapsed_ns)
        if len(buf) >= _FOLD_AT:
            self._fold_nowait()

    def _record_error(self, elapsed_ns: int, exc: BaseException) -> None:
        self.record_ns(elapsed_ns)

    def _wrap(self, func: F, clock: Callable[[], int]) -> F:
        # With the monotonic integer clock the checks of record_ns cannot fail,
        # so the decorator's callback skips them; an injected clock gets them.
        callback = self._record_elapsed if clock is _time.perf_counter_ns else self.record_ns
        return timing_wrapper(func, callback, self._record_error, clock=clock)

    def timed(self, func: F) -> F:
        """Decorate a function to record the duration of every run, also runs that raise.

        Works for ``def``, ``async def``, generator and async generator
        functions, and times the real run (a coroutine from its first await
        until it completes, a generator until it is exhausted or closed).

        Args:
            func: The function to time.

        Returns:
            A wrapper of the same kind, with ``func``'s name, signature and
            ``__wrapped__``.
        """
        return self._wrap(func, self._clock)

    def time(self) -> _Timer:
        """Time a block: ``with h.time(): ...`` (also ``async with``, or ``@h.time()``).

        Returns:
            A fresh timer; it records on exit, also when the block raises.
        """
        return _Timer(self, self._clock)

    # -- state access ----------------------------------------------------------------

    def _state(self) -> tuple[list[int], int, int, int, int, int]:
        """Copy (counts, count, sum, min, max, clamped) consistently, under the lock."""
        with self._lock:
            self._drain()
            return (
                self._counts[:],
                self._count,
                self._sum,
                self._min,
                self._max,
                self._clamped,
            )

    def _to_seconds(self, n: int) -> float:
        return n / self._inv

    def _prefix_sums(self) -> list[int]:
        """Cumulative counts up to the highest recorded index (cached until a write)."""
        with self._lock:
            self._drain()
            if self._generation == self._prefix_gen:
                return self._prefix
            last = self._layout.index_of(self._max) if self._count else -1
            prefix = list(accumulate(self._counts[: last + 1]))
            self._prefix = prefix
            self._prefix_gen = self._generation
            return prefix

    def _stats(self) -> tuple[int, int, int, int]:
        """(count, sum, min, max) after folding what is pending."""
        with self._lock:
            self._drain()
            return self._count, self._sum, self._min, self._max

    @property
    def layout(self) -> Layout:
        """The HdrHistogram bucket layout, in integer units."""
        return self._layout

    @property
    def unit(self) -> float:
        """Seconds per stored integer (the resolution and the wire format's unit)."""
        return float(self._unit)

    @property
    def lowest(self) -> float:
        """Lowest discernible value, in seconds."""
        return self._to_seconds(self._layout.lowest)

    @property
    def highest(self) -> float:
        """Highest trackable value, in seconds."""
        return self._to_seconds(self._layout.highest)

    @property
    def significant_figures(self) -> int:
        """Decimal digits of precision."""
        return self._layout.significant_figures

    @property
    def clamp(self) -> bool:
        """Whether out-of-range values are clamped (True) or raise (False)."""
        return self._clamp

    @property
    def clamped(self) -> int:
        """How many recorded values were out of range and clamped."""
        return self._clamped

    @property
    def count(self) -> int:
        """Number of recorded values."""
        return self._stats()[0]

    @property
    def total(self) -> float:
        """Sum of the recorded values in seconds (Prometheus ``_sum``).

        Exact at the histogram's resolution: each value is rounded to ``unit``
        and summed as an integer, so there is no float drift and merging is
        associative. A decoded histogram has no sum on the wire; its total is
        estimated from bucket midpoints (see :attr:`total_is_exact`).
        """
        return self._to_seconds(self._stats()[1])

    @property
    def total_is_exact(self) -> bool:
        """False if :attr:`total` was estimated from buckets (after :meth:`decode`)."""
        return self._sum_exact

    @property
    def min(self) -> float:
        """Smallest recorded value in seconds, at the histogram's precision (0.0 when empty).

        The lowest value of the bucket holding the smallest recorded value,
        as Java HdrHistogram's ``getMinValue`` reports it; equal to
        ``percentile(0)``.
        """
        m = self._stats()[2]
        if m == _NO_MIN:
            return 0.0
        return self._to_seconds(self._layout.lowest_equivalent(self._layout.index_of(m)))

    @property
    def max(self) -> float:
        """Largest recorded value in seconds, at the histogram's precision (0.0 when empty).

        The highest value of the bucket holding the largest recorded value,
        as Java HdrHistogram's ``getMaxValue`` reports it; equal to
        ``percentile(100)``, and the same after any merge.
        """
        return self._to_seconds(self._highest(self._stats()[3]))

    def _highest(self, n: int) -> int:
        """The highest value equivalent to ``n`` (0 stays 0, as in Java)."""
        return self._layout.highest_equivalent(self._layout.index_of(n)) if n else 0

    @property
    def mean(self) -> float:
        """Mean of the recorded values in seconds (``total / count``; 0.0 when empty)."""
        count, total, _, _ = self._stats()
        return total / count / self._inv if count else 0.0

    @property
    def stdev(self) -> float:
        """Population standard deviation in seconds (0.0 when empty).

        HdrHistogram's convention: each value counts at its bucket's midpoint,
        so the result carries the histogram's relative precision.
        """
        with self._lock:
            self._drain()
            counts = self._counts
            last = self._layout.index_of(self._max) + 1
        mids, squares = median_values(self._layout)
        window = counts[:last]
        n = sum(window)
        if not n:
            return 0.0
        s1 = sum(map(mul, window, mids))
        s2 = sum(map(mul, window, squares))
        variance = Fraction(n * s2 - s1 * s1, n * n)
        return math.sqrt(variance) / self._inv

    # -- queries ---------------------------------------------------------------------

    def _value_at(self, prefix: list[int], p: float) -> int:
        total = prefix[-1]
        target = max(int(p * total / 100.0 + 0.5), 1)
        index = bisect_left(prefix, min(target, total))
        layout = self._layout
        if p == 0.0:
            return layout.lowest_equivalent(index)
        return layout.highest_equivalent(index)

    def percentile(self, p: float) -> float:
        """Return the value at percentile ``p`` in seconds (0.0 when empty).

        HdrHistogram's definition: the highest value equivalent (same bucket)
        to the smallest recorded value with at least ``p`` percent of the
        values at or below it; ``p = 0`` gives the lowest equivalent of the
        minimum. Within ``10 ** -significant_figures`` of the exact sample
        percentile.

        Args:
            p: Percentile in [0, 100], e.g. 99.9.

        Returns:
            The value in seconds.

        Raises:
            ConfigurationError: If ``p`` is outside [0, 100].
        """
        p = _check_percentile(p)
        prefix = self._prefix_sums()
        if not prefix or not prefix[-1]:
            return 0.0
        return self._to_seconds(self._value_at(prefix, p))

    def percentiles(self, ps: Iterable[float]) -> dict[float, float]:
        """Return several percentiles at once, ``{p: seconds}``, from one pass.

        Args:
            ps: Percentiles in [0, 100].

        Returns:
            ``{p: seconds}`` keyed by the percentiles as given, in that order.

        Raises:
            ConfigurationError: If a percentile is outside [0, 100].
        """
        if isinstance(ps, (str, bytes)) or not isinstance(ps, Iterable):
            raise v.fail("ps", "an iterable of percentiles such as (50, 99, 99.9)", ps)
        checked = [(p, _check_percentile(p)) for p in ps]
        prefix = self._prefix_sums()
        if not prefix or not prefix[-1]:
            return {key: 0.0 for key, _ in checked}
        return {key: self._to_seconds(self._value_at(prefix, p)) for key, p in checked}

    def cumulative_counts(self, bounds: Sequence[float]) -> list[int]:
        """Count the values at or below each bound (Prometheus ``le`` buckets).

        HDR rounding: a bound is rounded to ``unit`` like a recorded value and
        every value in the bound's HdrHistogram bucket counts as ``<=`` it.
        So no value at or below a bound is ever missed, and values above it by
        at most one bucket width (a relative ``10 ** -significant_figures``)
        may be included.

        Args:
            bounds: Upper bounds in seconds (any order; ``math.inf`` allowed).

        Returns:
            One count per bound, in the same order.

        Raises:
            ConfigurationError: If ``bounds`` is not a sequence of numbers, or
                a bound is NaN.
        """
        checked = v.numbers(bounds, "bounds", lambda b, name: v.number(b, name, allow_inf=True))
        prefix = self._prefix_sums()
        total = prefix[-1] if prefix else 0
        last = len(prefix) - 1
        layout = self._layout
        result = []
        for b in checked:
            if b < 0:
                result.append(0)
                continue
            n = b * self._inv + 0.5
            if n > self._hi:
                result.append(total)
                continue
            index = layout.index_of(int(n))
            result.append(prefix[index] if index <= last else total)
        return result

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return (
            f"LatencyHistogram(count={self.count}, min={self.min!r}, max={self.max!r}, "
            f"lowest={self.lowest!r}, highest={self.highest!r}, "
            f"significant_figures={self.significant_figures}, unit={self.unit!r})"
        )

    # -- whole-histogram operations ----------------------------------------------------

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s values to this histogram.

        Same layout and unit: counts are added exactly. Otherwise each of
        ``other``'s buckets is recorded at its lowest equivalent value (as
        HdrHistogram's ``add`` does), subject to this histogram's range.

        Args:
            other: The histogram to add; it is not modified.

        Raises:
            ConfigurationError: If ``other`` is not a ``LatencyHistogram``, or
                the sum would hold more than :data:`MAX_COUNT` values.
            HistogramRangeError: If ``other`` holds values above this
                histogram's range (and this one does not clamp); nothing is
                added then.
        """
        v.instance(other, "other", LatencyHistogram, "a LatencyHistogram")
        counts, count, total, low, high, clamped = other._state()
        if not count:
            return
        nonzero = list(compress(range(len(counts)), counts))
        same = other._layout == self._layout and other._unit == self._unit
        if same:
            updates = [(i, counts[i]) for i in nonzero]
        else:
            ratio = other._unit / self._unit
            olayout = other._layout
            updates = []
            values: list[int] = []
            clamped_here = 0
            for i in nonzero:
                n = round(olayout.lowest_equivalent(i) * ratio)
                if n > self._hi:
                    if not self._clamp:
                        msg = (
                            f"merge: the other histogram holds values up to {other.max!r} s, "
                            f"above this histogram's highest {self.highest!r} s; construct "
                            "it with a larger highest= or clamp=True"
                        )
                        raise HistogramRangeError(msg)
                    n = self._hi
                    clamped_here += counts[i]
                updates.append((self._layout.index_of(n), counts[i]))
                values.append(n)
            clamped += clamped_here
            total = round(total * ratio)
            # Java's add() records each of other's buckets at its lowest value,
            # so the extremes are those values, read in this layout.
            low, high = values[0], values[-1]
        with self._lock:
            self._drain()
            if self._count + count > MAX_COUNT:
                raise _too_many(self._count, count)
            mine = self._counts
            for i, c in updates:
                mine[i] += c
            self._count += count
            self._sum += total
            self._sum_exact = self._sum_exact and other._sum_exact
            self._min = min(self._min, low)
            self._max = max(self._max, high)
            self._clamped += clamped
            self._generation += 1
            if other.start_time is not None:
                self.start_time = (
                    other.start_time
                    if self.start_time is None
                    else min(self.start_time, other.start_time)
                )
            if other.end_time is not None:
                self.end_time = (
                    other.end_time if self.end_time is None else max(self.end_time, other.end_time)
                )

    def copy(self) -> LatencyHistogram:
        """Return an independent copy (same settings, counts, timestamps and tag)."""
        new = self._empty_like(self._layout, self._unit, clamp=self._clamp)
        new._clock = self._clock
        (new._counts, new._count, new._sum, new._min, new._max, new._clamped) = self._state()
        new._sum_exact = self._sum_exact
        new.start_time, new.end_time, new.tag = self.start_time, self.end_time, self.tag
        return new

    def reset(self) -> None:
        """Forget every recorded value (settings, tag and timestamps are kept)."""
        fresh = [0] * self._layout.counts_len
        with self._lock:
            self._drain()
            self._take(fresh)

    def _take(self, fresh: list[int]) -> tuple[list[int], int, int, int, int, int, bool]:
        """Swap in empty state (caller holds the lock); return the old state."""
        old = (
            self._counts,
            self._count,
            self._sum,
            self._min,
            self._max,
            self._clamped,
            self._sum_exact,
        )
        self._counts = fresh
        self._count = 0
        self._sum = 0
        self._min = _NO_MIN
        self._max = 0
        self._clamped = 0
        self._sum_exact = True
        self._generation += 1
        return old

    def percentile_distribution(
        self, *, output_unit: float = 1e-3, ticks_per_half_distance: int = 5
    ) -> str:
        """Return the percentile distribution as HdrHistogram's ``.hgrm`` text.

        The same table as Java HdrHistogram's ``outputPercentileDistribution``
        (readable by the HdrHistogram plotter at hdrhistogram.github.io), with
        the mean and standard deviation scaled like the values.

        Args:
            output_unit: Seconds per printed unit (1e-3: milliseconds).
            ticks_per_half_distance: Lines per halving of the distance to 100%.

        Returns:
            The text.

        Raises:
            ConfigurationError: If an argument is not positive.
        """
        from perfprim.histogram._hgrm import percentile_distribution

        out = to_seconds(output_unit, name="output_unit", example="1e-3 = milliseconds")
        ticks = v.integer(
            ticks_per_half_distance, "ticks_per_half_distance", low=1, high=_MAX_TICKS
        )
        counts, count, total, _low, high, _clamped = self._state()
        return percentile_distribution(
            self._layout,
            counts,
            scale=out * self._inv,
            mean=(total / count / self._inv / out) if count else 0.0,
            stdev=self.stdev / out,
            max_value=self._highest(high) / self._inv / out,
            ticks_per_half_distance=ticks,
        )

    # -- wire format -------------------------------------------------------------------

    def encode(self) -> str:
        """Encode in the HdrHistogram V2 compressed format, base64 (a "histoblob").

        Readable by the hdrhistogram package and the Java, C, Go, Rust and
        JavaScript HdrHistogram libraries; integer values are in ``unit``.

        Returns:
            The base64 text.

        Raises:
            ConfigurationError: If the histogram holds more than
                :data:`MAX_COUNT` values, which the format cannot carry.
        """
        from perfprim.histogram._codec import encode

        counts, count, _total, low, high, _clamped = self._state()
        if count > MAX_COUNT:  # only single records, folded in bulk, can get here
            raise _too_many(count, 0)
        return encode(self._layout, counts, count, low, high)

    @classmethod
    def decode(
        cls, text: str | bytes, *, unit: float = 1e-6, clamp: bool = False
    ) -> LatencyHistogram:
        """Decode an HdrHistogram V2 base64 histoblob (from any implementation).

        Args:
            text: The base64 text.
            unit: Seconds per integer value in the encoded histogram (what the
                writer recorded: 1e-6 for microseconds, 1e-9 for nanoseconds).
            clamp: The new histogram's ``clamp`` option.

        Returns:
            A histogram with the encoded range, precision and counts. Its
            :attr:`total` is estimated from bucket midpoints; min and max are
            the encoded buckets' lowest and highest equivalent values.

        Raises:
            HistogramFormatError: If the text is not a valid V2 histogram.
            ConfigurationError: If ``unit`` is invalid.
        """
        from perfprim.histogram._codec import decode

        unit_f = check_unit(unit)
        clamp = v.boolean(clamp, "clamp")
        if not isinstance(text, (str, bytes)):
            raise v.fail("text", "the base64 text of an HdrHistogram (str or bytes)", text)
        layout, counts = decode(text)
        new = cls._empty_like(layout, Fraction(repr(unit_f)), clamp=clamp)
        new._load_counts(counts)
        return new

    def _load_counts(self, counts: list[int]) -> None:
        """Replace the state with bucket counts (no exact sum, min or max known)."""
        layout = self._layout
        n = layout.counts_len
        if len(counts) != n:
            counts = counts[:n] + [0] * (n - len(counts))
        nonzero = list(compress(range(n), counts))
        mids, _ = median_values(layout)
        total = sum(map(mul, counts[: nonzero[-1] + 1], mids)) if nonzero else 0
        with self._lock:
            self._buf.clear()
            self._nsbuf.clear()
            self._take(counts)
            if nonzero:
                self._count = sum(counts)
                self._sum = total
                self._sum_exact = False
                self._min = layout.lowest_equivalent(nonzero[0])
                self._max = layout.highest_equivalent(nonzero[-1])

    # -- pickle ----------------------------------------------------------------------

    def __getstate__(self) -> dict[str, object]:
        counts, count, total, low, high, clamped = self._state()
        return {
            "layout": (
                self._layout.lowest,
                self._layout.highest,
                self._layout.significant_figures,
            ),
            "unit": (self._unit.numerator, self._unit.denominator),
            "clamp": self._clamp,
            "counts": counts,
            "count": count,
            "sum": total,
            "sum_exact": self._sum_exact,
            "min": low,
            "max": high,
            "clamped": clamped,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "tag": self.tag,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        layout = layout_for(*state["layout"])
        self._setup(
            layout, Fraction(*state["unit"]), clamp=state["clamp"], clock=_time.perf_counter_ns
        )
        self._counts = list(state["counts"])
        self._count = state["count"]
        self._sum = state["sum"]
        self._sum_exact = state["sum_exact"]
        self._min = state["min"]
        self._max = state["max"]
        self._clamped = state["clamped"]
        self.start_time = state["start_time"]
        self.end_time = state["end_time"]
        self.tag = state["tag"]
