"""The drivers: an open-loop sender (for ``run``) and a closed loop (for ``find_knee``).

The closed loop awaits a *call*: an ``async def call() -> float | None``
that performs one request, raises on failure, and may return the
completion time on the run's clock (the thread-pool adapter does, so that a
sync target's latency excludes the hop back to the event loop).

The open loop starts requests through a :class:`Sender`: ``send(planned,
finish)`` starts one request and returns at once; ``finish(planned, done,
error)`` is called when it ends. The HTTP client implements it with no task
or future per request (its connections call ``finish`` from the event
loop's I/O callback); :class:`TaskSender` adapts any *call* with one task
per request.

Open loop (wrk2's method, generalised to ramps by :class:`Schedule`): request
``i`` is due at ``start + offset_i``. The sender sleeps until then, sends, and
moves on without waiting for the answer; the answer's latency is recorded
from the *planned* start, so a server stall shows up as latency of every
request that was due during it, however late the driver managed to send it.
The lateness of each send (actual - planned) is recorded apart: it measures
the driver, not the server. When ``max_in_flight`` requests are out the
sender waits for a slot (counted in ``waited``); it never drops a planned
request. The run is bounded: no send after ``deadline``, and requests still
in flight then are cancelled and counted as errors (``"timeout"``), their
latency recorded up to that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from perfprim.histogram import IntervalRecorder, LatencyHistogram
from perfprim.load._monitor import HISTOGRAM_OPTIONS, LATENESS_TAG, Sample, new_histogram
from perfprim.load._schedule import Schedule

__all__ = [
    "Call",
    "ClosedLoopMeasure",
    "Finish",
    "OpenLoop",
    "Sender",
    "TaskSender",
    "closed_loop",
    "error_kind",
]

Call = Callable[[], Awaitable[float | None]]
"""One request: raises on failure; may return its completion time on the run's clock."""

Finish = Callable[[float, "float | None", "str | None"], None]
"""``finish(planned, done, error)``: a request planned at ``planned`` ended at
``done`` on the run's clock (None: now), failed as ``error`` (None: it succeeded)."""


class Sender(Protocol):
    """Starts requests for the open loop and reports each one's end."""

    def send(self, planned: float, finish: Finish) -> None:
        """Start one request now; call ``finish`` exactly once when it ends."""

    async def cancel_all(self, kind: str) -> None:
        """End every request in flight at once, each reported to ``finish`` as ``kind``."""

    async def call(self) -> float | None:
        """Perform one request and wait for it (raises on failure): the closed loop's call."""


class TaskSender:
    """A :class:`Sender` over any *call*: one asyncio task per request.

    Args:
        call: Performs one request.
        clock: The run's clock (completion times when the call returns none).
    """

    def __init__(self, call: Call, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self._call = call
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancel_kind = "timeout"

    def send(self, planned: float, finish: Finish) -> None:
        """Start ``call`` in a task; report its end to ``finish``."""
        task = asyncio.get_running_loop().create_task(self._request(planned, finish))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def call(self) -> float | None:
        """Perform one request (the wrapped call)."""
        return await self._call()

    async def _request(self, planned: float, finish: Finish) -> None:
        try:
            done = await self._call()
        except asyncio.CancelledError:
            finish(planned, self._clock(), self._cancel_kind)
            raise
        except Exception as exc:
            finish(planned, self._clock(), error_kind(exc))
        else:
            finish(planned, done, None)

    async def cancel_all(self, kind: str) -> None:
        """Cancel every task; each reports ``kind``."""
        self._cancel_kind = kind
        # One pass of the loop first: a task cancelled before its first step
        # never runs its body, and its request would go uncounted.
        await asyncio.sleep(0)
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


_BURST = 64  # sends in a row without yielding to the event loop when behind schedule


def error_kind(exc: BaseException) -> str:
    """Name a failure for the error breakdown (an HTTP status error names its status)."""
    kind = getattr(exc, "perfprim_kind", None)
    return kind if isinstance(kind, str) else type(exc).__name__


class OpenLoop:
    """Send one worker's share of a schedule, open-loop, recording CO-free latency.

    Args:
        schedule: The planned send offsets of this worker.
        sender: Starts the requests.
        start: The run's start on ``clock`` (offset 0).
        max_in_flight: Requests out at once, at most.
        late_after: A send later than this (seconds) counts as late.
        timeout: Seconds after the schedule's end at which the run stops.
        interval: Seconds per sample.
        on_sample: Receives each interval's :class:`Sample`; returns True to
            stop the run (a failed ``abort`` threshold, or a parent's order).
        clock: Seconds clock (``time.perf_counter``; tests pass the loop's
            virtual time).
        wall_clock: Seconds-since-epoch clock for the interval timestamps.
    """

    def __init__(
        self,
        schedule: Schedule,
        sender: Sender,
        *,
        start: float,
        max_in_flight: int,
        late_after: float,
        timeout: float,
        interval: float,
        on_sample: Callable[[Sample], bool],
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._schedule = schedule
        self._sender = sender
        self._start = start
        self._max = max_in_flight
        self._late_after = late_after
        self._interval = interval
        self._on_sample = on_sample
        self._clock = clock
        self.deadline = start + schedule.duration + timeout
        options = dict(HISTOGRAM_OPTIONS)
        self._latency = IntervalRecorder(**options, wall_clock=wall_clock)
        self._lateness = IntervalRecorder(**options, tag=LATENESS_TAG, wall_clock=wall_clock)
        self._slot = asyncio.Event()
        self._idle = asyncio.Event()
        self._stop = False
        self._cancel_kind = "timeout"
        self._index = 0
        self._last_tick = start
        self.in_flight = 0
        self._zero_counts()

    def _zero_counts(self) -> None:
        self._sent = self._completed = self._errors = self._late = self._waited = 0
        self._kinds: dict[str, int] = {}

    async def run(self) -> None:
        """Send the schedule, wait for the answers (up to the deadline), emit the last sample."""
        ticker = asyncio.get_running_loop().create_task(self._tick())
        try:
            await self._send_all()
            self._idle.clear()
            if self.in_flight and not self._stop:
                remaining = self.deadline - self._clock()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), max(remaining, 0.0))
            await self._cancel_stragglers()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        self._emit(self._clock())

    async def _send_all(self) -> None:
        clock = self._clock
        start = self._start
        deadline = self.deadline
        late_after = self._late_after
        record_lateness = self._lateness.record
        send = self._sender.send
        finish = self._finish
        burst = 0
        for offset in self._schedule:
            planned = start + offset
            now = clock()
            if planned > now:
                burst = 0
                while planned > now:  # uvloop's millisecond timers may wake us early
                    await asyncio.sleep(planned - now)
                    now = clock()
            elif burst >= _BURST:
                burst = 0
                await asyncio.sleep(0)
                now = clock()
            if self._stop or now >= deadline:
                return
            if self.in_flight >= self._max:
                self._waited += 1
                if not await self._wait_for_slot():
                    return
                now = clock()
            lateness = now - planned
            record_lateness(lateness)
            if lateness > late_after:
                self._late += 1
            self._sent += 1
            self.in_flight += 1
            send(planned, finish)
            burst += 1

    async def _wait_for_slot(self) -> bool:
        while self.in_flight >= self._max:
            self._slot.clear()
            remaining = self.deadline - self._clock()
            if remaining <= 0.0 or self._stop:
                return False
            try:
                await asyncio.wait_for(self._slot.wait(), remaining)
            except asyncio.TimeoutError:
                return False
        return not self._stop

    def _finish(self, planned: float, done: float | None, error: str | None) -> None:
        self.in_flight -= 1
        self._completed += 1
        latency = (self._clock() if done is None else done) - planned
        self._latency.record(latency if latency > 0.0 else 0.0)
        if error is not None:
            self._errors += 1
            self._kinds[error] = self._kinds.get(error, 0) + 1
        if self.in_flight < self._max:
            self._slot.set()
        if not self.in_flight:
            self._idle.set()

    async def _cancel_stragglers(self) -> None:
        await self._sender.cancel_all(self._cancel_kind)

    async def _tick(self) -> None:
        k = 1
        while True:
            due = self._start + k * self._interval
            now = self._clock()
            while due > now:  # never emit an interval early (uvloop may wake us early)
                await asyncio.sleep(due - now)
                now = self._clock()
            k += 1
            if self._emit(self._clock()):
                self._stop = True
                self._cancel_kind = "aborted"
                self._slot.set()
                self._idle.set()

    def _emit(self, now: float) -> bool:
        sample = Sample(
            index=self._index,
            offset=now - self._start,
            seconds=max(now - self._last_tick, 0.0),
            latency=self._latency.interval(),
            lateness=self._lateness.interval(),
            sent=self._sent,
            completed=self._completed,
            errors=self._errors,
            late=self._late,
            waited=self._waited,
            in_flight=self.in_flight,
            error_kinds=self._kinds,
        )
        self._index += 1
        self._last_tick = now
        self._zero_counts()
        return self._on_sample(sample)


@dataclass(frozen=True, slots=True)
class ClosedLoopMeasure:
    """What one closed-loop step measured.

    Attributes:
        completed: Requests completed inside the measured span.
        errors: Of those, failures.
        seconds: The measured span.
        latency: Latency of the measured requests.
    """

    completed: int
    errors: int
    seconds: float
    latency: LatencyHistogram


async def closed_loop(
    call: Call,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    timeout: float,
    clock: Callable[[], float] = time.perf_counter,
) -> ClosedLoopMeasure:
    """Run ``concurrency`` users that each send a request as soon as the last one answered.

    Requests that complete during ``[start + warmup, start + warmup + duration)``
    are counted; throughput is their number over ``duration``. No user sends
    after the span ends; users still waiting ``timeout`` seconds later are
    cancelled.

    Args:
        call: Performs one request.
        concurrency: Users.
        duration: Measured seconds.
        warmup: Seconds run before measuring.
        timeout: Grace for the last requests.
        clock: Seconds clock.

    Returns:
        The measurement.
    """
    latency = new_histogram()
    begin = clock() + warmup
    end = begin + duration
    completed = errors = 0

    async def user() -> None:
        nonlocal completed, errors
        while True:
            t0 = clock()
            if t0 >= end:
                return
            failed = False
            try:
                done = await call()
            except Exception:
                done, failed = None, True
            t1 = clock() if done is None else done
            if begin <= t1 < end:
                completed += 1
                errors += failed
                latency.record(max(t1 - t0, 0.0))

    tasks = [asyncio.get_running_loop().create_task(user()) for _ in range(concurrency)]
    _, pending = await asyncio.wait(tasks, timeout=max(end - clock(), 0.0) + timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return ClosedLoopMeasure(completed, errors, duration, latency)
