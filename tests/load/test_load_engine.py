"""The open-loop and closed-loop engines on virtual time: exact, deterministic timing."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from perfprim.load._engine import OpenLoop, TaskSender, closed_loop, error_kind
from perfprim.load._monitor import Sample
from perfprim.load._schedule import Schedule
from perfprim.load._stages import Stage
from tests.load.virtual_time import run_virtual

STALL_EVERY, STALL_FOR, SERVICE = 5.0, 1.0, 0.001


def stalling_target() -> object:
    """A service that answers in 1 ms, except that every 5 s it stalls for 1 s."""

    async def call() -> None:
        loop = asyncio.get_running_loop()
        phase = (loop.time() - 1000.0) % STALL_EVERY
        if phase < STALL_FOR:
            await asyncio.sleep(STALL_FOR - phase)
        await asyncio.sleep(SERVICE)

    return call


def expected_open_latencies(rate: float, seconds: float) -> list[float]:
    """Latency of each request of a constant-rate plan, from the stall rule alone."""
    out = []
    for i in range(int(rate * seconds)):
        t = i / rate
        phase = t % STALL_EVERY
        wait = STALL_FOR - phase if phase < STALL_FOR else 0.0
        out.append(wait + SERVICE)
    return sorted(out)


def nearest_rank(sorted_values: list[float], p: float) -> float:
    """The nearest-rank percentile (what HDR's percentile approximates)."""
    k = max(math.ceil(p / 100.0 * len(sorted_values)), 1)
    return sorted_values[k - 1]


async def drive_open(
    schedule: Schedule, call: object, **options: object
) -> tuple[list[Sample], OpenLoop]:
    """Run the open loop on the running (virtual-time) loop; return its samples and itself."""
    samples: list[Sample] = []
    loop = asyncio.get_running_loop()
    defaults: dict[str, object] = {
        "max_in_flight": 10_000,
        "late_after": 0.01,
        "timeout": 5.0,
        "interval": 1.0,
        "on_sample": lambda s: samples.append(s) or False,
    }
    defaults.update(options)
    engine = OpenLoop(
        schedule,
        TaskSender(call, clock=loop.time),  # type: ignore[arg-type]
        start=loop.time(),
        clock=loop.time,
        wall_clock=loop.time,
        **defaults,  # type: ignore[arg-type]
    )
    await engine.run()
    return samples, engine


def merged(samples: list[Sample]) -> Sample:
    """All samples merged into the first."""
    total = samples[0]
    for s in samples[1:]:
        total.merge(s)
    return total


def test_open_loop_shows_the_stall_in_p99_where_a_closed_loop_hides_it() -> None:
    """Open model: p99/p99.9 match the stall rule (~1 s); closed model's p99 stays ~1 ms."""
    schedule = Schedule([Stage(20, 100)])
    samples, _ = run_virtual(drive_open(schedule, stalling_target()))[0]
    total = merged(samples)
    expected = expected_open_latencies(100, 20)
    assert len(expected) == total.completed == total.latency.count
    for p in (50.0, 90.0, 99.0, 99.9):
        want = nearest_rank(expected, p)
        assert want == pytest.approx(total.latency.percentile(p), rel=2e-3, abs=2e-6)
    assert 0.9 < total.latency.percentile(99.0)


def test_closed_loop_hides_the_stall() -> None:
    """Closed model, one user: 4 slow samples among ~16,000 fast ones, so p99 is ~1 ms."""

    async def go() -> object:
        loop = asyncio.get_running_loop()
        return await closed_loop(
            stalling_target(),  # type: ignore[arg-type]
            concurrency=1,
            duration=20.0,
            warmup=0.0,
            timeout=5.0,
            clock=loop.time,
        )

    measure, _ = run_virtual(go())
    assert measure.completed > 10_000  # type: ignore[attr-defined]
    assert 0.0015 > measure.latency.percentile(99.0)  # type: ignore[attr-defined]
    assert 0.99 < measure.latency.max  # type: ignore[attr-defined]


def test_open_loop_sends_on_plan_and_counts_nothing_late() -> None:
    """On virtual time the sender is never late: lateness is 0 and every request completes."""
    schedule = Schedule([Stage(0, 0), Stage(4, 200)])
    samples, engine = run_virtual(drive_open(schedule, stalling_target()))[0]
    total = merged(samples)
    assert schedule.planned == total.sent == total.completed
    assert 0 == total.late
    assert 0.0 == total.lateness.max
    assert 0 == engine.in_flight


def test_max_in_flight_makes_sends_wait_and_late_and_is_counted() -> None:
    """With 5 slots and 100 ms requests at 100/s, sends wait for slots and run late."""

    async def slow() -> None:
        await asyncio.sleep(0.1)

    schedule = Schedule([Stage(2, 100)])
    samples, _ = run_virtual(drive_open(schedule, slow, max_in_flight=5))[0]
    total = merged(samples)
    assert schedule.planned == total.sent == total.completed
    assert total.waited > 0
    assert total.late > 0
    # Latency from the planned start includes the wait for a slot: it grows past 100 ms.
    assert total.latency.max > 1.0


def test_deadline_cancels_stragglers_as_timeout_errors() -> None:
    """Requests still out at stages' end + timeout are cancelled, counted as 'timeout' errors."""

    async def hang() -> None:
        await asyncio.sleep(3600)

    schedule = Schedule([Stage(1, 10)])
    (samples, engine), elapsed = run_virtual(drive_open(schedule, hang, timeout=2.0))
    total = merged(samples)
    assert 10 == total.sent == total.completed == total.errors
    assert {"timeout": 10} == total.error_kinds
    assert 3.0 == pytest.approx(elapsed, abs=0.01)
    # their latency runs to the deadline: the first was planned at 0, cut at 3 s
    assert 3.0 == pytest.approx(total.latency.max, rel=2e-3)
    assert 0 == engine.in_flight


def test_abort_from_on_sample_stops_sending() -> None:
    """A True from on_sample (a failed abort threshold) stops the plan; cancelled: 'aborted'."""

    async def slowish() -> None:
        await asyncio.sleep(0.5)

    schedule = Schedule([Stage(10, 10)])
    samples: list[Sample] = []

    def stop_at_second(s: Sample) -> bool:
        samples.append(s)
        return s.index == 1

    run_virtual(drive_open(schedule, slowish, on_sample=stop_at_second))
    total = merged(samples)
    assert 25 > total.sent >= 15  # about 2 s of the 10 s plan
    assert total.error_kinds.get("aborted", 0) > 0
    assert total.sent == total.completed


def test_failures_are_counted_by_kind() -> None:
    """An exception from the call is an error named by its type, never raised out."""

    async def boom() -> None:
        raise KeyError("x")

    samples, _ = run_virtual(drive_open(Schedule([Stage(1, 20)]), boom))[0]
    total = merged(samples)
    assert 20 == total.errors
    assert {"KeyError": 20} == total.error_kinds


def test_samples_partition_the_run_by_interval() -> None:
    """One sample per interval plus the final one; their counts add up to the plan."""
    schedule = Schedule([Stage(3, 50)])
    samples, _ = run_virtual(drive_open(schedule, stalling_target()))[0]
    assert [0, 1, 2] == [s.index for s in samples]  # ticks at 1 s and 2 s, then the final one
    assert 150 == sum(s.sent for s in samples)
    assert 1.0 == pytest.approx(samples[0].seconds)


def test_error_kind_uses_the_perfprim_kind_attribute() -> None:
    """HTTP status errors carry their name; others are named by type."""

    class StatusError(Exception):
        perfprim_kind = "http 503"

    assert "http 503" == error_kind(StatusError())
    assert "ValueError" == error_kind(ValueError())


def test_no_request_is_sent_and_no_interval_ends_before_its_plan_on_uvloop() -> None:
    """Timers of uvloop wake sleepers up to ~1.4 ms early: the driver sleeps again.

    A send before its plan would under-report latency (it counts from the
    plan); an interval emitted early would end before its time (a stall timed
    by the intervals, as the demo's, started an interval late).
    """
    import time

    from perfprim.load._run import run_event_loop

    early: list[float] = []
    offsets: list[float] = []

    class Recording(TaskSender):
        def send(self, planned: float, finish: Any) -> None:
            early.append(planned - time.perf_counter())
            super().send(planned, finish)

    async def quick() -> None:
        return None

    async def main() -> None:
        start = time.perf_counter()

        def on_sample(s: Sample) -> bool:
            offsets.append(s.offset)
            return False

        await OpenLoop(
            Schedule([Stage(1.0, 300)]),
            Recording(quick),
            start=start,
            max_in_flight=100,
            late_after=0.01,
            timeout=1.0,
            interval=0.1,
            on_sample=on_sample,
        ).run()

    run_event_loop(main())
    assert 300 == len(early)
    assert max(early) <= 0.0  # never before the plan
    ticks = offsets[:-1]  # the last sample is the run's end, not a tick
    assert all(t >= 0.1 * (k + 1) for k, t in enumerate(ticks)), ticks
