"""Stampede protection through the real caches: TieredCache and AsyncTieredCache (memory tiers)."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import pytest

from perfprim.cache import AsyncTieredCache, CacheStats, MemoryTier, StampedeOptions, TieredCache
from perfprim.exceptions import ConfigurationError
from tests.cache.conformance import FakeClock
from tests.cache.helpers import build

WAIT = 10.0


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Run the test body against TieredCache and AsyncTieredCache."""
    return str(request.param)


async def drain(cache: Any) -> None:
    """Wait (bounded) for background refreshes of either cache kind."""
    result = cache._drain(WAIT)
    if asyncio.iscoroutine(result):
        await result


class Source:
    """A loader that counts its calls, advances the fake clock by ``delta`` and returns v1, v2..."""

    def __init__(self, clock: FakeClock, delta: float = 0.0) -> None:
        self.clock = clock
        self.delta = delta
        self.calls = 0
        self.fail: BaseException | None = None

    def __call__(self) -> str:
        self.calls += 1
        self.clock.advance(self.delta)
        if self.fail is not None:
            raise self.fail
        return f"v{self.calls}"


# -- XFetch --------------------------------------------------------------------


async def test_xfetch_refreshes_early_exactly_by_the_formula(kind: str) -> None:
    """A read refreshes early iff now - delta*beta*ln(rand) >= expiry; it gets the old value."""
    clock = FakeClock(1000.0)
    rand = [0.5]
    d = build(kind, clock, l1=MemoryTier(maxsize=100), ttl=10.0, rand=lambda: rand[0])
    src = Source(clock, delta=2.0)
    load = d.loader(src)
    assert "v1" == await d("get_or_load", "k", load)
    expires = 1012.0  # loaded from 1000 to 1002 (delta 2), ttl 10
    # Just before the XFetch point for rand=0.5: now + 2*ln2 < expires.
    clock.now = expires - 2.0 * math.log(2) - 1e-6
    assert "v1" == await d("get_or_load", "k", load)
    await drain(d.cache)
    assert 1 == src.calls
    # At the point: the read returns the current value and refreshes in the background.
    clock.now = expires - 2.0 * math.log(2)
    assert "v1" == await d("get_or_load", "k", load)
    await drain(d.cache)
    assert 2 == src.calls
    stats: CacheStats = d.cache.stats()
    assert 1 == stats.early_refreshes
    assert "v2" == await d("get_or_load", "k", load)


async def test_beta_zero_never_refreshes_early(kind: str) -> None:
    """With beta=0 an entry is served until its hard expiry, then reloaded in the foreground."""
    clock = FakeClock(1000.0)
    d = build(kind, clock, l1=MemoryTier(maxsize=100), ttl=10.0, beta=0.0, rand=lambda: 1e-9)
    src = Source(clock, delta=2.0)
    load = d.loader(src)
    await d("get_or_load", "k", load)
    clock.now = 1012.0 - 1e-6
    assert "v1" == await d("get_or_load", "k", load)
    await drain(d.cache)
    assert 0 == d.cache.stats().early_refreshes
    clock.now = 1012.0
    assert "v2" == await d("get_or_load", "k", load)


async def test_l1_hits_far_from_expiry_never_draw(kind: str) -> None:
    """Far from expiry (> 36.7 * delta * beta left) the hit path does not call the random source."""
    clock = FakeClock(1000.0)
    draws: list[int] = []

    def rand() -> float:
        draws.append(1)
        return 1.0

    d = build(kind, clock, l1=MemoryTier(maxsize=100), ttl=100.0, rand=rand)
    load = d.loader(Source(clock, delta=1.0))
    await d("get_or_load", "k", load)
    for _ in range(10):
        await d("get_or_load", "k", load)
    assert [] == draws
    clock.now = 1101.0 - 30.0  # inside the window: each read draws once
    await d("get_or_load", "k", load)
    assert [1] == draws


# -- stale-while-revalidate ------------------------------------------------------------


async def test_stale_while_revalidate_serves_stale_and_refreshes_once(kind: str) -> None:
    """Past expiry within stale_ttl: the stale value at once, one background refresh."""
    clock = FakeClock(1000.0)
    d = build(kind, clock, l1=MemoryTier(maxsize=100), ttl=10.0, beta=0.0, stale_ttl=30.0)
    src = Source(clock)
    load = d.loader(src)
    assert "v1" == await d("get_or_load", "k", load)
    clock.advance(15.0)
    assert "v1" == await d("get_or_load", "k", load)
    await drain(d.cache)
    assert 2 == src.calls
    assert "v2" == await d("get_or_load", "k", load)
    stats = d.cache.stats()
    assert (1, 1) == (stats.stale_served, stats.background_refreshes)


async def test_past_the_stale_window_the_caller_waits_for_the_load(kind: str) -> None:
    """Beyond stale_ttl the entry is not served: the read loads in the foreground."""
    clock = FakeClock(1000.0)
    d = build(kind, clock, l1=MemoryTier(maxsize=100), ttl=10.0, beta=0.0, stale_ttl=5.0)
    load = d.loader(Source(clock))
    await d("get_or_load", "k", load)
    clock.advance(16.0)
    assert "v2" == await d("get_or_load", "k", load)
    assert 0 == d.cache.stats().stale_served


# -- stale-if-error and negative caching -----------------------------------------------


async def test_stale_if_error_serves_the_stale_value(kind: str) -> None:
    """A failing loader within the grace period yields the stale value (counted)."""
    clock = FakeClock(1000.0)
    d = build(kind, clock, l1=MemoryTier(maxsize=100), ttl=10.0, beta=0.0, stale_if_error=60.0)
    src = Source(clock)
    load = d.loader(src)
    await d("get_or_load", "k", load)
    clock.advance(20.0)
    src.fail = RuntimeError("db down")
    assert "v1" == await d("get_or_load", "k", load)
    assert 1 == d.cache.stats().stale_on_error
    clock.advance(60.0)  # past the grace period: the error propagates
    with pytest.raises(RuntimeError, match="db down"):
        await d("get_or_load", "k", load)


async def test_errors_are_not_cached_by_default(kind: str) -> None:
    """Without error_ttl each call after a failure runs the loader again."""
    clock = FakeClock(1000.0)
    d = build(kind, clock, l1=MemoryTier(maxsize=100))
    src = Source(clock)
    src.fail = KeyError("missing")
    load = d.loader(src)
    for _ in range(3):
        with pytest.raises(KeyError):
            await d("get_or_load", "k", load)
    assert 3 == src.calls


async def test_error_ttl_remembers_the_exception(kind: str) -> None:
    """With error_ttl the same exception is re-raised without a load, until it lapses or a set."""
    clock = FakeClock(1000.0)
    d = build(kind, clock, l1=MemoryTier(maxsize=100), error_ttl=5.0)
    src = Source(clock)
    boom = RuntimeError("down")
    src.fail = boom
    load = d.loader(src)
    for _ in range(3):
        with pytest.raises(RuntimeError) as info:
            await d("get_or_load", "k", load)
        assert info.value is boom
    assert 1 == src.calls
    assert 2 == d.cache.stats().errors_served
    clock.advance(5.0)
    src.fail = None
    assert "v2" == await d("get_or_load", "k", load)
    src.fail = boom
    clock.advance(100.0)
    with pytest.raises(RuntimeError):
        await d("get_or_load", "k", load)
    await d("set", "k", "manual")  # a write forgets the remembered error
    assert "manual" == await d("get_or_load", "k", load)


async def test_cache_none_false_does_not_cache_none(kind: str) -> None:
    """With cache_none=False a None result is returned but never stored."""
    clock = FakeClock(1000.0)
    d = build(kind, clock, l1=MemoryTier(maxsize=100), cache_none=False)
    calls: list[int] = []
    load = d.loader(lambda: calls.append(1))
    assert await d("get_or_load", "k", load) is None
    assert await d("get_or_load", "k", load) is None
    assert 2 == len(calls)


async def test_none_ttl_expires_none_sooner(kind: str) -> None:
    """A cached None lives none_ttl, other values ttl."""
    clock = FakeClock(1000.0)
    d = build(kind, clock, l1=MemoryTier(maxsize=100), ttl=60.0, none_ttl=1.0, beta=0.0)
    calls: list[int] = []
    load = d.loader(lambda: calls.append(1))
    await d("get_or_load", "k", load)
    await d("get_or_load", "k", load)
    assert 1 == len(calls)
    clock.advance(1.0)
    await d("get_or_load", "k", load)
    assert 2 == len(calls)


# -- single-flight through the cache ------------------------------------------------------


def test_threads_stampede_through_the_cache_loads_once() -> None:
    """100 threads missing one key of a TieredCache: one load, 99 coalesced waiters."""
    cache = TieredCache(MemoryTier(maxsize=100), ttl=60.0, namespace="t")
    release = threading.Event()
    calls: list[int] = []

    def load() -> str:
        calls.append(1)
        release.wait(WAIT)
        return "v"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_load("k", load)))
        for _ in range(100)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + WAIT
    while cache.stats().coalesced < 99 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for t in threads:
        t.join(WAIT)
    assert 1 == len(calls)
    assert ["v"] * 100 == results
    assert 99 == cache.stats().coalesced
    assert 1 == cache.stats().loads
    cache.close()


def test_single_flight_off_lets_every_thread_load() -> None:
    """single_flight=False: concurrent misses each run the loader (the old behaviour)."""
    cache = TieredCache(
        MemoryTier(maxsize=100),
        ttl=60.0,
        namespace="t",
        stampede=StampedeOptions(single_flight=False),
    )
    barrier = threading.Barrier(5)
    calls: list[int] = []

    def load() -> str:
        calls.append(1)
        barrier.wait(WAIT)  # all five are inside the loader at once
        return "v"

    threads = [threading.Thread(target=lambda: cache.get_or_load("k", load)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert 5 == len(calls)
    assert 0 == cache.stats().coalesced


async def test_tasks_stampede_through_the_cache_loads_once() -> None:
    """100 tasks missing one key of an AsyncTieredCache: one load, the same value for all."""
    cache = AsyncTieredCache(MemoryTier(maxsize=100), ttl=60.0, namespace="t")
    release = asyncio.Event()
    calls: list[int] = []

    async def load() -> str:
        calls.append(1)
        await release.wait()
        return "v"

    tasks = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(100)]
    for _ in range(20):
        await asyncio.sleep(0)
    release.set()
    assert ["v"] * 100 == await asyncio.gather(*tasks)
    assert 1 == len(calls)
    assert 99 == cache.stats().coalesced
    await cache.close()


async def test_cancelled_caller_does_not_cancel_the_load() -> None:
    """Cancelling the task that started a load hands the load to a waiter; the value is cached."""
    cache = AsyncTieredCache(MemoryTier(maxsize=100), ttl=60.0, namespace="t")
    release = asyncio.Event()

    async def load() -> str:
        await release.wait()
        return "v"

    first = asyncio.create_task(cache.get_or_load("k", load))
    second = asyncio.create_task(cache.get_or_load("k", load))
    for _ in range(5):
        await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert "v" == await second
    assert first.cancelled()
    assert "v" == await cache.get("k")
    await cache.close()


def test_sync_swr_with_concurrent_readers_runs_one_refresh() -> None:
    """Many threads reading a stale key at once: all get the stale value, one refresh runs."""
    clock = FakeClock(1000.0)
    cache = TieredCache(
        MemoryTier(maxsize=100),
        ttl=10.0,
        namespace="t",
        clock=clock,
        stampede=StampedeOptions(beta=0.0, stale_ttl=60.0),
    )
    cache.get_or_load("k", lambda: "old")
    clock.advance(20.0)
    release = threading.Event()
    calls: list[int] = []

    def load() -> str:
        calls.append(1)
        release.wait(WAIT)
        return "new"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_load("k", load)))
        for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    release.set()
    cache._drain(WAIT)
    assert ["old"] * 20 == results
    assert 1 == len(calls)
    assert 1 == cache.stats().background_refreshes
    stats = cache.stats()
    # Each lookup that found the stale entry counts once; callers that joined it are coalesced.
    assert 20 == stats.stale_served + stats.coalesced
    assert "new" == cache.get_or_load("k", load)
    cache.close()


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("beta", -1.0, "beta"),
        ("stale_ttl", 0, "stale_ttl"),
        ("stale_if_error", "1", "stale_if_error"),
        ("error_ttl", -5, "error_ttl"),
        ("none_ttl", 0.0, "none_ttl"),
        ("wait_timeout", 0, "wait_timeout"),
        ("lock_ttl", 0, "lock_ttl"),
        ("refresh_workers", 0, "refresh_workers"),
        ("single_flight", "yes", "single_flight"),
        ("rand", 3, "rand"),
    ],
)
def test_bad_stampede_options_fail_fast(option: str, value: object, match: str) -> None:
    """Each invalid stampede option raises ConfigurationError naming it, at construction."""
    with pytest.raises(ConfigurationError, match=match):
        StampedeOptions(**{option: value})


async def test_get_in_the_xfetch_window_reads_l1_only(kind: str) -> None:
    """get() of an entry inside the XFetch window is an L1 hit: no lower-tier read, no refresh."""
    from tests.cache.helpers import LoggingMemoryTier

    clock = FakeClock(1000.0)
    log: list[tuple[str, str, str]] = []
    l2 = LoggingMemoryTier(log, "l2", maxsize=100, timer=clock)
    d = build(kind, clock, l1=MemoryTier(maxsize=100), l2=l2, ttl=10.0, rand=lambda: 1e-9)
    await d("get_or_load", "k", d.loader(Source(clock, delta=2.0)))
    log.clear()
    clock.now = 1011.0  # 1 s left, delta 2: inside 36.7 * delta * beta
    assert "v1" == await d("get", "k")
    assert {"k": "v1"} == await d("get_many", ["k"])
    assert [] == [entry for entry in log if entry[1] != "set"]
    assert 0 == d.cache.stats().early_refreshes


async def test_remembered_error_traceback_does_not_grow(kind: str) -> None:
    """Re-raising a remembered exception many times keeps its traceback bounded."""
    import traceback

    clock = FakeClock(1000.0)
    d = build(kind, clock, l1=MemoryTier(maxsize=100), error_ttl=60.0)
    src = Source(clock)
    src.fail = RuntimeError("down")
    load = d.loader(src)
    lengths = []
    for _ in range(20):
        with pytest.raises(RuntimeError) as info:
            await d("get_or_load", "k", load)
        lengths.append(len(traceback.extract_tb(info.value.__traceback__)))
    assert lengths[1] == lengths[-1]


async def test_xfetch_on_a_lower_tier_hit_follows_the_formula(kind: str) -> None:
    """A lower-tier hit (L1 copy gone) refreshes early exactly where an L1 hit would."""
    clock = FakeClock(1000.0)
    rand = [0.5]
    d = build(
        kind,
        clock,
        l1=MemoryTier(maxsize=100, ttl=0.5),  # the L1 copy ends long before the entry
        l2=MemoryTier(maxsize=100, timer=clock),
        ttl=10.0,
        rand=lambda: rand[0],
    )
    src = Source(clock, delta=2.0)
    load = d.loader(src)
    assert "v1" == await d("get_or_load", "k", load)
    expires = 1012.0
    d.l1.clear()  # every read below goes to the lower tier
    clock.now = expires - 2.0 * math.log(2) - 1e-6
    assert "v1" == await d("get_or_load", "k", load)
    await drain(d.cache)
    assert 1 == src.calls
    d.l1.clear()
    clock.now = expires - 2.0 * math.log(2)
    assert "v1" == await d("get_or_load", "k", load)
    await drain(d.cache)
    assert 2 == src.calls
    assert 1 == d.cache.stats().early_refreshes
