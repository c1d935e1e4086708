"""Single-flight for threads and asyncio tasks: one load per key, shared outcome, no leak."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.cache import _singleflight
from perfprim.cache._singleflight import check_wait_timeout
from perfprim.cache.advanced import AsyncSingleFlight, SingleFlight, SingleFlightStats
from perfprim.exceptions import ConfigurationError, LockTimeoutError

WAIT = 10.0  # upper bound for any wait in these tests (never reached when the code is right)


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Spin (bounded in time) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.001)


def test_threads_share_one_load() -> None:
    """100 threads missing one key at once run the loader once and all get its result."""
    flight: SingleFlight[str] = SingleFlight()
    release = threading.Event()
    calls = 0

    def load() -> dict[str, int]:
        nonlocal calls
        calls += 1
        release.wait(WAIT)
        return {"v": 1}

    results: list[object] = []

    def worker() -> None:
        results.append(flight.do("k", load))

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    wait_until(lambda: flight.stats().coalesced == 99)
    release.set()
    for t in threads:
        t.join(WAIT)
    assert 1 == calls
    assert 100 == len(results)
    assert all(r is results[0] for r in results)
    assert SingleFlightStats(flights=1, coalesced=99, fail_open=0, in_flight=0) == flight.stats()


def test_threads_get_the_same_exception_and_it_is_not_cached() -> None:
    """Every waiter gets the leader's exception object; the next call loads again."""
    flight: SingleFlight[str] = SingleFlight()
    release = threading.Event()
    boom = RuntimeError("db down")

    def failing() -> int:
        release.wait(WAIT)
        raise boom

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            flight.do("k", failing)
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    wait_until(lambda: flight.stats().coalesced == 9)
    release.set()
    for t in threads:
        t.join(WAIT)
    assert 10 == len(errors)
    assert all(e is boom for e in errors)
    assert 7 == flight.do("k", lambda: 7)


def test_different_keys_load_in_parallel() -> None:
    """Loads of two keys overlap: no lock is held while a loader runs."""
    flight: SingleFlight[str] = SingleFlight()
    a_started = threading.Event()
    b_done = threading.Event()

    def load_a() -> str:
        a_started.set()
        assert b_done.wait(WAIT), "b never ran while a was loading"
        return "a"

    def load_b() -> str:
        assert a_started.wait(WAIT)
        b_done.set()
        return "b"

    out: dict[str, str] = {}
    ta = threading.Thread(target=lambda: out.setdefault("a", flight.do("a", load_a)))
    ta.start()
    assert "b" == flight.do("b", load_b)
    ta.join(WAIT)
    assert "a" == out["a"]


def test_bounded_wait_fails_open() -> None:
    """A waiter whose bound runs out loads by itself, and is counted."""
    flight: SingleFlight[str] = SingleFlight()
    release = threading.Event()
    leader = threading.Thread(target=lambda: flight.do("k", lambda: release.wait(WAIT)))
    leader.start()
    wait_until(lambda: flight.in_flight("k"))
    assert "own" == flight.do("k", lambda: "own", timeout=0.01)
    release.set()
    leader.join(WAIT)
    assert 1 == flight.stats().fail_open


def test_bounded_wait_raises_when_fail_open_is_off() -> None:
    """With fail_open=False a waiter past its bound raises LockTimeoutError."""
    flight: SingleFlight[str] = SingleFlight(fail_open=False)
    release = threading.Event()
    leader = threading.Thread(target=lambda: flight.do("k", lambda: release.wait(WAIT)))
    leader.start()
    wait_until(lambda: flight.in_flight("k"))
    with pytest.raises(LockTimeoutError, match="fail_open=True"):
        flight.do("k", lambda: "own", timeout=0.01)
    release.set()
    leader.join(WAIT)


def test_memory_stays_flat_after_a_million_keys() -> None:
    """1e6 distinct keys leave no per-key state; 1e5 more allocate (almost) nothing that stays."""
    flight: SingleFlight[int] = SingleFlight()
    fn = int
    for i in range(1_000_000):
        flight.do(i, fn)
    assert 0 == len(flight)
    assert 1_000_000 == flight.stats().flights
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(100_000):
            flight.do(i, fn)
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # Only what the single-flight module itself still holds (other threads' noise excluded).
    mine = snapshot.filter_traces([tracemalloc.Filter(True, _singleflight.__file__)])
    kept = sum(stat.size for stat in mine.statistics("filename"))
    assert kept < 4 * 1024, f"{kept} bytes kept by the single-flight module after 1e5 loads"


@settings(max_examples=25, deadline=None)
@given(keys=st.lists(st.integers(0, 5), min_size=1, max_size=40))
def test_every_caller_gets_its_own_keys_value(keys: list[int]) -> None:
    """Invariant: concurrent callers on random keys each get the value of their own key."""
    flight: SingleFlight[int] = SingleFlight()
    results: dict[int, int] = {}
    lock = threading.Lock()

    def worker(idx: int, key: int) -> None:
        value = flight.do(key, lambda: key * 10)
        with lock:
            results[idx] = value

    threads = [threading.Thread(target=worker, args=(i, k)) for i, k in enumerate(keys)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert {i: k * 10 for i, k in enumerate(keys)} == results
    stats = flight.stats()
    assert len(keys) == stats.flights + stats.coalesced
    assert 0 == stats.in_flight


@pytest.mark.parametrize("bad", [0, -1.0, "1", True])
def test_wait_timeout_validation(bad: object) -> None:
    """A wait bound that is not None nor > 0 fails fast, naming the valid forms."""
    with pytest.raises(
        ConfigurationError, match=r"positive, finite duration.*None waits for the whole load"
    ):
        check_wait_timeout(bad)  # type: ignore[arg-type]


def test_wait_timeout_accepts_timedelta() -> None:
    """A timedelta is converted once to float seconds; None stays None."""
    assert 1.5 == check_wait_timeout(timedelta(seconds=1.5))
    assert check_wait_timeout(None) is None


# -- asyncio ---------------------------------------------------------------


async def test_tasks_share_one_load() -> None:
    """100 tasks missing one key at once await the loader once and all get its result."""
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()
    release = asyncio.Event()
    calls = 0

    async def load() -> list[int]:
        nonlocal calls
        calls += 1
        await release.wait()
        return [1]

    tasks = [asyncio.create_task(flight.do("k", load)) for _ in range(100)]
    for _ in range(50):
        await asyncio.sleep(0)
    assert 99 == flight.stats().coalesced
    release.set()
    results = await asyncio.gather(*tasks)
    assert 1 == calls
    assert all(r is results[0] for r in results)
    assert 0 == len(flight)


async def test_cancelled_waiter_never_cancels_the_load() -> None:
    """Cancelling waiters leaves the leader's load running; the other callers get its result."""
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()
    release = asyncio.Event()
    calls: list[int] = []

    async def load() -> str:
        calls.append(1)
        await release.wait()
        return "done"

    leader = asyncio.create_task(flight.do("k", load))
    waiters = [asyncio.create_task(flight.do("k", load)) for _ in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)
    waiters[0].cancel()
    waiters[1].cancel()
    release.set()
    assert "done" == await leader
    assert "done" == await waiters[2]
    assert waiters[0].cancelled()
    assert waiters[1].cancelled()
    assert [1] == calls


async def test_cancelled_leader_hands_the_load_to_a_waiter() -> None:
    """Cancelling the caller that started the load: one waiter reloads, all waiters get it."""
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()
    release = asyncio.Event()
    calls: list[int] = []

    async def load() -> str:
        calls.append(1)
        await release.wait()
        return "done"

    leader = asyncio.create_task(flight.do("k", load))
    waiters = [asyncio.create_task(flight.do("k", load)) for _ in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)
    leader.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    release.set()
    assert ["done"] * 3 == await asyncio.gather(*waiters)
    assert leader.cancelled()
    assert [1, 1] == calls
    assert 0 == len(flight)


async def test_tasks_get_the_same_exception() -> None:
    """Every task gets the load's exception object; nothing is cached."""
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()
    boom = KeyError("gone")

    async def failing() -> int:
        await asyncio.sleep(0)
        raise boom

    results = await asyncio.gather(
        *(flight.do("k", failing) for _ in range(10)), return_exceptions=True
    )
    assert all(r is boom for r in results)

    async def ok() -> int:
        return 3

    assert 3 == await flight.do("k", ok)


async def test_async_bounded_wait_fails_open() -> None:
    """A task whose bound runs out loads by itself (counted); the leader still finishes."""
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "leader"

    async def own() -> str:
        return "own"

    leader = asyncio.create_task(flight.do("k", slow))
    await asyncio.sleep(0)
    assert "own" == await flight.do("k", own, timeout=0.01)
    release.set()
    assert "leader" == await leader
    assert 1 == flight.stats().fail_open


async def test_async_bounded_wait_raises_when_fail_open_is_off() -> None:
    """With fail_open=False a task past its bound raises LockTimeoutError."""
    flight: AsyncSingleFlight[str] = AsyncSingleFlight(fail_open=False)
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "leader"

    leader = asyncio.create_task(flight.do("k", slow))
    await asyncio.sleep(0)
    with pytest.raises(LockTimeoutError):
        await flight.do("k", slow, timeout=0.01)
    release.set()
    assert "leader" == await leader


async def test_async_memory_stays_flat() -> None:
    """2e5 distinct keys leave no per-key state behind."""
    flight: AsyncSingleFlight[int] = AsyncSingleFlight()

    async def load() -> int:
        return 1

    for i in range(200_000):
        await flight.do(i, load)
    assert 0 == len(flight)
    assert 200_000 == flight.stats().flights
