"""Live, in-process SLO tracking in bounded memory.

How it works
------------
The tracker keeps two running counters, all events and bad events, that only
grow. Time is cut into buckets; at the end of each bucket the counters'
values are written into a ring buffer (an ``array('q')``), one slot per
bucket. The events of any window of ``k`` buckets are then one subtraction:
``counter_now - ring[bucket_now - k]``. So:

- ``record`` is O(1): one clock read, a lock, a comparison, two additions.
  Crossing a bucket edge writes the slots of the buckets passed (at most the
  ring size, however long the tracker was idle).
- Window queries are O(1), and memory is fixed by the window lengths and the
  resolution, never by traffic.

Two rings are kept: a fine one (``resolution``, 1/10 of the shortest policy
window by default) spanning the longest policy window, for the alerts, and a
coarse one spanning the SLO window (``budget_resolution``: the slice length
with a timeslice budgeting method, ``window / 720`` otherwise), for the budget.
A window of ``w`` seconds is read as the current, partial bucket plus the
``w / resolution - 1`` buckets before it, so its edge is exact to one bucket.

With timeslice budgeting each coarse bucket is a slice. As a slice closes,
its verdict (good or not; or its ratio) is added to running sums, and the
verdicts of slices leaving the SLO window are subtracted, so the budget is
read in O(1) too, not by scanning 43,200 one-minute slices of a month.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, overload

from perfprim import _validate as v
from perfprim._durations import to_seconds
from perfprim._timing import timing_wrapper
from perfprim.exceptions import ConfigurationError
from perfprim.slo._budgeting import Occurrences
from perfprim.slo._policy import AlertWindow
from perfprim.slo._slo import SLO, LatencySLO, check_latency

__all__ = ["MAX_SLOTS", "BucketCounts", "SLOSnapshot", "SLOTracker", "WindowStatus"]

F = TypeVar("F", bound=Callable[..., Any])

MAX_SLOTS = 1_000_000
"""Largest ring the tracker accepts (16 MB of counters); choose a coarser resolution."""
_MAX_EVENTS = (1 << 63) - 1  # the rings are array('q'): the running counters must fit


@dataclass(frozen=True, slots=True)
class WindowStatus:
    """Events, error ratio and burn rate over one window, at one moment.

    Attributes:
        window: The window in seconds.
        good: Good events in the window.
        total: All events in the window.
        error_ratio: ``(total - good) / total``, or None without traffic.
        burn_rate: ``error_ratio / error_budget``, or None when undefined.
    """

    window: float
    good: int
    total: int
    error_ratio: float | None
    burn_rate: float | None


@dataclass(frozen=True, slots=True)
class SLOSnapshot:
    """Everything an exporter needs about a tracked SLO, read at one moment.

    Attributes:
        time: The tracker clock's reading.
        slo: The SLO tracked.
        windows: One status per policy window, shortest first.
        sli: The SLI over the SLO window under its budgeting method, or None
            without traffic.
        budget_consumed: Share of the SLO window's budget used (may exceed 1).
        budget_remaining: ``1 - budget_consumed`` (negative once missed).
        firing: The policy rows firing now, in policy order.
        events: All events counted since the tracker was created (a
            monotonic counter, for Prometheus rules).
        bad_events: Bad events counted since the tracker was created.
    """

    time: float
    slo: SLO
    windows: tuple[WindowStatus, ...]
    sli: float | None
    budget_consumed: float
    budget_remaining: float
    firing: tuple[AlertWindow, ...]
    events: int = 0
    bad_events: int = 0

    def window(self, window: float | timedelta) -> WindowStatus:
        """Return the status of one policy window.

        Args:
            window: The window, float seconds or ``timedelta``.

        Returns:
            Its status.

        Raises:
            ConfigurationError: If the policy has no such window.
        """
        wanted = to_seconds(window, name="window")
        for status in self.windows:
            if status.window == wanted:
                return status
        raise _unknown_window(wanted, tuple(s.window for s in self.windows))


@dataclass(frozen=True, slots=True)
class BucketCounts:
    """Events a tracker counted in one bucket of time (see :meth:`SLOTracker.history`).

    Attributes:
        start: The bucket's start, in the tracker clock's seconds.
        end: The bucket's end (exclusive).
        total: All events counted in the bucket.
        bad: Bad events counted in the bucket.
    """

    start: float
    end: float
    total: int
    bad: int


def _unknown_window(window: float, known: tuple[float, ...]) -> ConfigurationError:
    listed = ", ".join(f"{w:g}" for w in known)
    return ConfigurationError(
        f"the tracker keeps no {window:g} s window; its policy windows are {listed} s "
        "(add an AlertRule with that window to the SLO's policy)"
    )


def _bucket(now: float, width: float) -> int:
    """The bucket of a clock reading; a reading so large that it has none is refused."""
    index = now / width
    if not math.isfinite(index):
        msg = f"the clock reads {now!r} s: too large for buckets of {width:g} s"
        raise ConfigurationError(msg)
    return math.floor(index)


def _reading(value: object) -> float:
    """The clock's first reading: finite seconds (every bucket edge is computed from it)."""
    return v.number(value, "clock()", hint="the clock must return seconds, e.g. time.monotonic")


def _exception_types(value: object) -> bool:
    return isinstance(value, tuple) and all(
        isinstance(e, type) and issubclass(e, BaseException) for e in value
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Ring:
    """Counter values at the end of each bucket, for the last ``size`` buckets."""

    __slots__ = ("bad", "first", "size", "total", "width")

    def __init__(self, width: float, span: float, first: int, name: str) -> None:
        slots = span / width  # may be inf for a tiny width: refused below, never ceil()ed
        size = math.ceil(slots - 1e-9) + 2 if slots < MAX_SLOTS else MAX_SLOTS + 1
        if size > MAX_SLOTS:
            msg = (
                f"{name}={width:g} s over {span:g} s needs {size} slots (limit {MAX_SLOTS}): "
                f"use a coarser {name}"
            )
            raise ConfigurationError(msg)
        self.width = width
        self.size = size
        self.first = first
        self.total = array("q", bytes(8 * size))
        self.bad = array("q", bytes(8 * size))

    def fill(self, start: int, stop: int, total: int, bad: int) -> None:
        """Buckets ``start .. stop-1`` ended with these counter values."""
        start = max(start, stop - self.size)
        size = self.size
        for bucket in range(start, stop):
            self.total[bucket % size] = total
            self.bad[bucket % size] = bad

    def at(self, bucket: int) -> tuple[int, int]:
        """Counter values at the end of ``bucket`` (0 before the tracker started)."""
        if bucket < self.first:
            return 0, 0
        slot = bucket % self.size
        return self.total[slot], self.bad[slot]


class SLOTracker:
    """Tracks an SLO live: error ratios and burn rates per window, budget, alerts.

    Thread-safe; ``record`` is O(1) and memory is bounded by the windows and
    the resolution, whatever the traffic.

    Args:
        slo: The SLO (a :class:`LatencySLO` for :meth:`record_latency`).
        clock: Returns seconds, monotonic (``time.monotonic`` by default).
            A clock that steps back is treated as standing still.
        resolution: The fine bucket width for the policy windows (float
            seconds or ``timedelta``); 1/10 of the shortest policy window by
            default. Window edges are exact to one bucket.
        budget_resolution: The coarse bucket width for the SLO window;
            the slice length for timeslice budgeting (required to be so),
            ``window / 720`` otherwise.

    Raises:
        ConfigurationError: If the widths do not fit the windows, or the
            rings would exceed :data:`MAX_SLOTS` slots.

    Example:
        >>> now = [0.0]
        >>> tracker = SLOTracker(SLO(target=0.999), clock=lambda: now[0])
        >>> for i in range(1000):
        ...     tracker.record(i % 50 != 0)       # 2% errors
        >>> tracker.burn_rate(3600)
        20.0
    """

    def __init__(
        self,
        slo: SLO,
        *,
        clock: Callable[[], float] = time.monotonic,
        resolution: float | timedelta | None = None,
        budget_resolution: float | timedelta | None = None,
    ) -> None:
        v.instance(slo, "slo", SLO, "an SLO or LatencySLO")
        v.callable_(clock, "clock", what="a callable returning seconds")
        windows = slo.policy_windows()
        shortest = windows[0] if windows else slo.window
        longest = windows[-1] if windows else slo.window
        budgeting = slo.budgeting
        fine = shortest / 10 if resolution is None else to_seconds(resolution, name="resolution")
        if fine > shortest:
            msg = (
                f"resolution ({fine:g} s) is coarser than the shortest policy window "
                f"({shortest:g} s): use at most {shortest / 10:g} s"
            )
            raise ConfigurationError(msg)
        if isinstance(budgeting, Occurrences):
            coarse = (
                slo.window / 720
                if budget_resolution is None
                else to_seconds(budget_resolution, name="budget_resolution")
            )
        else:
            coarse = budgeting.slice_duration
            if budget_resolution is not None and (
                to_seconds(budget_resolution, name="budget_resolution") != coarse
            ):
                msg = (
                    f"with {type(budgeting).__name__} budgeting the budget_resolution is the "
                    f"slice length ({coarse:g} s): leave budget_resolution unset"
                )
                raise ConfigurationError(msg)
        if coarse > slo.window:
            msg = f"budget_resolution ({coarse:g} s) is longer than the SLO window"
            raise ConfigurationError(msg)
        self._slo = slo
        self._clock = clock
        self._lock = threading.Lock()
        self._windows = windows
        self._threshold = slo.threshold if isinstance(slo, LatencySLO) else None
        now = _reading(clock())
        self._fine = _Ring(fine, longest, _bucket(now, fine), "resolution")
        self._coarse = _Ring(coarse, slo.window, _bucket(now, coarse), "budget_resolution")
        self._buckets = {w: max(1, round(w / fine)) for w in windows}
        self._fine_bucket = self._fine.first
        self._coarse_bucket = self._coarse.first
        self._edge = min((self._fine_bucket + 1) * fine, (self._coarse_bucket + 1) * coarse)
        self._total = 0
        self._bad = 0
        self._judge = None if isinstance(budgeting, Occurrences) else budgeting.slice_value
        self._slices_in_window = max(1, round(slo.window / coarse))
        self._slices_counted = 0
        self._slices_value = 0.0

    @property
    def slo(self) -> SLO:
        """The SLO tracked."""
        return self._slo

    @property
    def resolution(self) -> float:
        """The fine bucket width in seconds."""
        return self._fine.width

    @property
    def budget_resolution(self) -> float:
        """The coarse bucket width in seconds."""
        return self._coarse.width

    # -- recording (hot path) -----------------------------------------------

    def record(self, good: bool) -> None:
        """Count one event, good or bad.

        Args:
            good: True for a good event, False for a bad one.

        Raises:
            ConfigurationError: If ``good`` is not a bool (a status code or a
                latency passed here would count as good).
        """
        if good.__class__ is not bool:  # callers may not be type-checked
            v.boolean(good, "good")  # type: ignore[unreachable]
        now = self._clock()
        with self._lock:
            if now >= self._edge:
                self._advance(now)
            self._total += 1
            if not good:
                self._bad += 1

    def record_latency(self, latency: float) -> None:
        """Count one request of ``latency`` seconds: good when ``<= threshold``.

        Args:
            latency: The request's latency in seconds.

        Raises:
            ConfigurationError: If the tracked SLO is not a :class:`LatencySLO`,
                or ``latency`` is not a non-negative, finite number of seconds
                (NaN is no measurement: it would otherwise count as good).
        """
        threshold = self._threshold
        if threshold is None:
            msg = "record_latency needs a LatencySLO; use record(good) for this SLO"
            raise ConfigurationError(msg)
        if latency.__class__ is not float or not 0.0 <= latency < math.inf:
            latency = check_latency(latency)
        now = self._clock()
        with self._lock:
            if now >= self._edge:
                self._advance(now)
            self._total += 1
            if latency > threshold:
                self._bad += 1

    def record_counts(self, *, good: int, total: int) -> None:
        """Count a batch of events at once.

        Args:
            good: Good events in the batch.
            total: All events in the batch.

        Raises:
            ConfigurationError: If the counts are not integers with
                ``0 <= good <= total``.
        """
        if not (_is_int(good) and _is_int(total) and 0 <= good <= total):
            msg = (
                f"record_counts needs integers with 0 <= good <= total, got "
                f"{v.show(good)}, {v.show(total)}"
            )
            raise ConfigurationError(msg)
        now = self._clock()
        with self._lock:
            if self._total + total > _MAX_EVENTS:
                msg = (
                    f"record_counts: {total} more events would pass the {_MAX_EVENTS} "
                    "(2**63 - 1) a tracker counts"
                )
                raise ConfigurationError(msg)
            if now >= self._edge:
                self._advance(now)
            self._total += total
            self._bad += total - good

    @overload
    def track(self, func: F, /) -> F: ...

    @overload
    def track(
        self,
        /,
        *,
        exclude: tuple[type[BaseException], ...] = (),
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> Callable[[F], F]: ...

    def track(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        exclude: tuple[type[BaseException], ...] = (),
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> Any:
        """Decorate a function so that each of its runs is an event of this SLO.

        A run that returns is good (for a :class:`LatencySLO`: when it took at
        most ``threshold``); a run that raises is bad, except for the
        ``exclude`` exception types, which are not counted at all (invalid
        events, such as a client's bad request). Works for ``def``,
        ``async def``, generator and async generator functions, and times the
        real run, not the creation of the coroutine or generator.

        Use as ``@tracker.track`` or ``@tracker.track(exclude=(BadRequest,))``.

        Args:
            func: The function to track.
            exclude: Exception types that make a run invalid (not counted).
            clock: Nanosecond clock timing the runs (for a ``LatencySLO``).

        Returns:
            The wrapper (a decorator when called without ``func``).

        Raises:
            ConfigurationError: If ``exclude`` is not a tuple of exception types.
        """
        if not _exception_types(exclude):
            msg = f"exclude must be a tuple of exception types, got {exclude!r}"
            raise ConfigurationError(msg)
        threshold_ns = None if self._threshold is None else self._threshold * 1e9
        record = self.record

        def on_success(elapsed_ns: int) -> object:
            if threshold_ns is None:
                record(True)
            else:
                record(elapsed_ns <= threshold_ns)
            return None

        def on_error(elapsed_ns: int, exc: BaseException) -> object:
            if not isinstance(exc, exclude):
                record(False)
            return None

        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            return timing_wrapper(function, on_success, on_error, clock=clock)

        return decorate if func is None else decorate(func)

    def _advance(self, now: float) -> None:
        # Close the buckets that ended before `now`: each ended with the
        # current counter values, since nothing was recorded after them.
        fine = self._fine
        bucket = math.floor(now / fine.width)
        if bucket > self._fine_bucket:
            fine.fill(self._fine_bucket, bucket, self._total, self._bad)
            self._fine_bucket = bucket
        coarse = self._coarse
        cbucket = math.floor(now / coarse.width)
        if cbucket > self._coarse_bucket:
            if self._judge is not None:
                self._close_slices(cbucket)
            coarse.fill(self._coarse_bucket, cbucket, self._total, self._bad)
            self._coarse_bucket = cbucket
        self._edge = min((self._fine_bucket + 1) * fine.width, (cbucket + 1) * coarse.width)

    def _slice(self, bucket: int) -> tuple[int, int]:
        """(good, total) of a completed coarse bucket (a time slice), from the ring."""
        end_total, end_bad = self._coarse.at(bucket)
        start_total, start_bad = self._coarse.at(bucket - 1)
        total = end_total - start_total
        return total - (end_bad - start_bad), total

    def _close_slices(self, new_bucket: int) -> None:
        # Timeslice budgeting, kept O(1) per slice: running sums over the
        # last K completed slices. The slice being closed ends with the
        # current counters; slices that leave the window are read from the
        # ring before `fill` overwrites their slots.
        assert self._judge is not None
        old = self._coarse_bucket
        k = self._slices_in_window
        if new_bucket - old > k:  # everything, closing slice included, left the window
            self._slices_counted = 0
            self._slices_value = 0.0
            return
        start_total, start_bad = self._coarse.at(old - 1)
        closing_total = self._total - start_total
        closing_good = closing_total - (self._bad - start_bad)
        for bucket in range(old - k, new_bucket - k):
            good, total = self._slice(bucket)
            if total:
                self._slices_counted -= 1
                self._slices_value -= self._judge(good, total)
        if closing_total:
            self._slices_counted += 1
            self._slices_value += self._judge(closing_good, closing_total)
        if self._slices_counted == 0:
            self._slices_value = 0.0  # no float residue once the window is empty

    # -- history (for merging the trackers of several processes) -------------

    def history(self) -> tuple[BucketCounts, ...]:
        """The events this tracker still holds, per bucket, oldest first.

        The buckets of the coarse ring (``budget_resolution`` wide) that end
        before the span of the fine ring come first, then the fine buckets
        (``resolution`` wide), the current, partial bucket last; buckets
        without events are left out. Replaying them into a new tracker of
        the same SLO and resolutions (``record_counts`` at each bucket's
        middle, in order) reproduces every window and the budget this tracker
        reports. Summing the histories of trackers in several processes that
        share a clock (``time.monotonic`` on one host) merges them: this is how
        ``perfprim.telemetry`` merges the trackers of pre-fork workers.

        Returns:
            The buckets with events.
        """
        with self._lock:
            self._sync()
            fine, coarse = self._fine, self._coarse
            fb, cb = self._fine_bucket, self._coarse_bucket
            # Cumulative (total, bad) at bucket edges, oldest first.
            f0 = max(fine.first, fb - fine.size + 1)
            fine_start = f0 * fine.width
            c0 = max(coarse.first, cb - coarse.size + 1)
            edges: list[tuple[float, int, int]] = [(c0 * coarse.width, *coarse.at(c0 - 1))]
            for bucket in range(c0, cb):
                end = (bucket + 1) * coarse.width
                if end >= fine_start:
                    break
                edges.append((end, *coarse.at(bucket)))
            if fine_start > edges[-1][0]:
                edges.append((fine_start, *fine.at(f0 - 1)))
            edges.extend(((b + 1) * fine.width, *fine.at(b)) for b in range(f0, fb))
            edges.append(((fb + 1) * fine.width, self._total, self._bad))
        out: list[BucketCounts] = []
        for (start, t0, b0), (end, t1, b1) in itertools.pairwise(edges):
            if t1 > t0:
                out.append(BucketCounts(start, end, t1 - t0, b1 - b0))
        return tuple(out)

    # -- queries ------------------------------------------------------------

    def _sync(self) -> float:
        now = float(self._clock())
        if now >= self._edge:
            self._advance(now)
        return now

    def _counts(self, window: float) -> tuple[int, int]:
        buckets = self._buckets.get(window)
        if buckets is None:
            raise _unknown_window(window, self._windows)
        base_total, base_bad = self._fine.at(self._fine_bucket - buckets)
        return self._total - base_total, self._bad - base_bad

    def _window(self, window: float) -> WindowStatus:
        total, bad = self._counts(window)
        if total == 0:
            return WindowStatus(window, 0, 0, None, None)
        ratio = bad / total
        return WindowStatus(window, total - bad, total, ratio, self._slo._burn(ratio))

    def _budget_sli(self) -> float | None:
        coarse = self._coarse
        buckets = max(1, round(self._slo.window / coarse.width))
        budgeting = self._slo.budgeting
        if isinstance(budgeting, Occurrences):
            base_total, base_bad = coarse.at(self._coarse_bucket - buckets)
            total = self._total - base_total
            good = total - (self._bad - base_bad)
            return self._slo.sli(good, total)
        # Timeslices: the last K completed slices, summed as they closed.
        if self._slices_counted == 0:
            return None
        return min(1.0, max(0.0, self._slices_value / self._slices_counted))

    def window_status(self, window: float | timedelta) -> WindowStatus:
        """Events, error ratio and burn rate over one of the policy's windows.

        Args:
            window: A window of the SLO's policy (float seconds or ``timedelta``).

        Returns:
            The status now.

        Raises:
            ConfigurationError: If the policy has no such window.
        """
        wanted = to_seconds(window, name="window")
        with self._lock:
            self._sync()
            return self._window(wanted)

    def error_ratio(self, window: float | timedelta) -> float | None:
        """Bad / all events over a policy window, or None without traffic.

        Args:
            window: A window of the SLO's policy.

        Returns:
            The error ratio.

        Raises:
            ConfigurationError: If the policy has no such window.
        """
        wanted = to_seconds(window, name="window")
        with self._lock:
            self._sync()
            total, bad = self._counts(wanted)
        return None if total == 0 else bad / total

    def burn_rate(self, window: float | timedelta) -> float | None:
        """The burn rate over a policy window, or None when undefined.

        Args:
            window: A window of the SLO's policy.

        Returns:
            The burn rate.

        Raises:
            ConfigurationError: If the policy has no such window.
        """
        ratio = self.error_ratio(window)
        return None if ratio is None else self._slo._burn(ratio)

    def budget_remaining(self) -> float:
        """Share of the error budget left over the SLO window (negative once missed).

        Returns:
            ``1 - budget consumed``, under the SLO's budgeting method.
        """
        with self._lock:
            self._sync()
            sli = self._budget_sli()
        return 1.0 - self._slo.budget_consumed_from_sli(sli)

    def firing(self) -> tuple[AlertWindow, ...]:
        """The policy rows firing now.

        Returns:
            The firing rows, in policy order.
        """
        return self.snapshot().firing

    def snapshot(self) -> SLOSnapshot:
        """Read everything at one moment, consistently.

        Returns:
            The frozen snapshot an exporter publishes.
        """
        with self._lock:
            now = self._sync()
            statuses = tuple(self._window(w) for w in self._windows)
            sli = self._budget_sli()
            events, bad_events = self._total, self._bad
        consumed = self._slo.budget_consumed_from_sli(sli)
        firing = self._slo._firing({s.window: s.burn_rate for s in statuses})
        return SLOSnapshot(
            time=now,
            slo=self._slo,
            windows=statuses,
            sli=sli,
            budget_consumed=consumed,
            budget_remaining=1.0 - consumed,
            firing=firing,
            events=events,
            bad_events=bad_events,
        )
