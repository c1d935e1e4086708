"""SLOTracker.track: runs of sync, async and generator functions become SLO events."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator

import pytest

from perfprim.exceptions import ConfigurationError
from perfprim.slo import SLO, LatencySLO, SLOTracker


class BadRequestError(Exception):
    """A client's fault: not an SLO event."""


class NsClock:
    """A nanosecond clock that advances by ``step`` at every reading."""

    def __init__(self, step: int) -> None:
        self.now = 0
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def counts(tracker: SLOTracker) -> tuple[int, int]:
    """(good, total) over the shortest window."""
    status = tracker.window_status(300)
    return status.good, status.total


def test_sync_function_runs_are_events() -> None:
    """Returns are good, raises are bad, excluded exceptions are not counted."""
    tracker = SLOTracker(SLO(target=0.99))

    @tracker.track(exclude=(BadRequestError,))
    def handler(outcome: str) -> str:
        """Serve one request."""
        if outcome == "fail":
            raise RuntimeError(outcome)
        if outcome == "client":
            raise BadRequestError(outcome)
        return outcome

    assert "ok" == handler("ok")
    for outcome in ("fail", "client"):
        with pytest.raises((RuntimeError, BadRequestError)):
            handler(outcome)
    assert (1, 2) == counts(tracker)
    assert "handler" == handler.__name__
    assert "Serve one request." == handler.__doc__


async def test_async_function_keeps_its_kind_and_times_the_run() -> None:
    """A coroutine function stays one; the run is timed from await to completion."""
    clock = NsClock(step=200_000_000)  # every clock read: +0.2 s
    tracker = SLOTracker(LatencySLO(threshold=0.3, target=0.99))

    @tracker.track(clock=clock)
    async def fast() -> int:
        return 1

    @tracker.track(clock=clock)
    async def slow() -> int:
        clock.now += 500_000_000  # the run takes 0.5 s more
        await asyncio.sleep(0)
        return 2

    assert inspect.iscoroutinefunction(fast)
    assert 1 == await fast()
    assert 2 == await slow()
    assert (1, 2) == counts(tracker)


def test_generator_counts_when_exhausted() -> None:
    """A generator is one event, recorded when exhausted, not when created."""
    tracker = SLOTracker(SLO(target=0.99))

    @tracker.track
    def numbers() -> Iterator[int]:
        yield 1
        yield 2

    generator = numbers()
    assert (0, 0) == counts(tracker)
    assert [1, 2] == list(generator)
    assert (1, 1) == counts(tracker)


async def test_async_generator_failure_is_bad() -> None:
    """An async generator that raises mid-stream is one bad event."""
    tracker = SLOTracker(SLO(target=0.99))

    @tracker.track
    async def stream() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("broken stream")

    seen: list[int] = []

    async def consume() -> None:
        async for item in stream():
            seen.append(item)

    with pytest.raises(RuntimeError, match="broken stream"):
        await consume()
    assert [1] == seen
    assert (0, 1) == counts(tracker)


def test_latency_and_errors_together() -> None:
    """For a LatencySLO a slow success is bad and so is any failure, however fast."""
    tracker = SLOTracker(LatencySLO(threshold=0.3, target=0.99))

    @tracker.track(clock=NsClock(step=100_000_000))  # every run: 0.1 s
    def handler(fail: bool) -> None:
        if fail:
            raise ValueError("boom")

    handler(False)
    with pytest.raises(ValueError, match="boom"):
        handler(True)
    assert (1, 2) == counts(tracker)


@pytest.mark.parametrize("exclude", [BadRequestError, (int,), ["x"]])
def test_exclude_must_be_a_tuple_of_exception_types(exclude: object) -> None:
    """A bare class or non-exception types are refused."""
    tracker = SLOTracker(SLO(target=0.99))
    with pytest.raises(ConfigurationError, match="tuple of exception types"):
        tracker.track(exclude=exclude)  # type: ignore[arg-type]
