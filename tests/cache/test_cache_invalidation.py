"""Cross-cache invalidation through the InvalidationBus protocol, and generation re-reads.

Two caches over one shared L2 stand for two processes; ``LocalBus`` carries
their messages in-process (the real Redis bus and real processes are B's and
issue 4's tests).
"""

from __future__ import annotations

from typing import Any

import pytest

from perfprim.cache import MemoryTier
from tests.cache.conformance import FakeClock
from tests.cache.helpers import Driver, FailingTier, LocalBus, build


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Run each test against TieredCache and AsyncTieredCache."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    """The injected wall clock."""
    return FakeClock()


@pytest.fixture
def pair(kind: str, clock: FakeClock) -> tuple[Driver, Driver]:
    """Two caches ("processes") sharing an L2 and a bus, each with its own L1."""
    l2 = MemoryTier(timer=clock)
    hub = LocalBus()
    a = build(kind, clock, l1=MemoryTier(ttl=30.0), l2=l2, invalidation=hub.endpoint())
    b = build(kind, clock, l1=MemoryTier(ttl=30.0), l2=l2, invalidation=hub.endpoint())
    return a, b


async def test_set_in_one_drops_the_copy_in_the_other(pair: tuple[Driver, Driver]) -> None:
    """B's L1 copy is dropped when A sets the key, so B reads A's new value."""
    a, b = pair
    await a("set", "k", "old")
    assert "old" == await b("get", "k")
    await a("set", "k", "new")
    assert "new" == await b("get", "k")


async def test_delete_and_invalidate_reach_the_other(pair: tuple[Driver, Driver]) -> None:
    """delete() and fn.invalidate() in A remove B's L1 copies."""
    a, b = pair
    await a("set", "k", 1)
    await b("get", "k")
    await a("delete", "k")
    assert None is await b("get", "k")
    calls: list[str] = []
    fa = a.cached(lambda x: calls.append("a") or x, "mod.shared")
    fb = b.cached(lambda x: calls.append("b") or x, "mod.shared")
    await a.call(fa, 1)
    await b.call(fb, 1)
    await a.call(fa.invalidate, 1)
    await b.call(fb, 1)
    assert ["a", "b"] == calls


async def test_clear_in_one_is_seen_by_the_other_at_once(pair: tuple[Driver, Driver]) -> None:
    """A's clear() flushes B's L1 and B re-reads the generation: B misses right away."""
    a, b = pair
    await a("set", "k", 1)
    assert 1 == await b("get", "k")
    await a("clear")
    assert None is await b("get", "k")
    assert [[]] == [m for m in a.cache._bus.published if m == []]


async def test_invalidate_all_in_one_is_seen_by_the_other(pair: tuple[Driver, Driver]) -> None:
    """A's fn.invalidate_all() makes B re-read that function's generation only."""
    a, b = pair
    calls: list[str] = []
    fa = a.cached(lambda x: calls.append("a") or x, "mod.h")
    fb = b.cached(lambda x: calls.append("b") or x, "mod.h")
    await a.call(fa, 1)
    await b.call(fb, 1)
    await a.call(fa.invalidate_all)
    await b.call(fb, 1)
    assert ["a", "b"] == calls


async def test_lost_message_is_bounded_by_the_generation_interval(
    kind: str, clock: FakeClock
) -> None:
    """Without a bus, another cache sees a clear() within generation_check_interval."""
    l2 = MemoryTier(timer=clock)
    opts: dict[str, Any] = {"generation_check_interval": 2.0, "invalidate_l1": False}
    a = build(kind, clock, l1=MemoryTier(), l2=l2, **opts)
    b = build(kind, clock, l1=MemoryTier(), l2=l2, **opts)
    await a("set", "k", 1)
    assert 1 == await b("get", "k")
    await a("clear")
    assert 1 == await b("get", "k")  # not yet re-read
    clock.advance(2.1)
    assert None is await b("get", "k")


async def test_reconnect_flush_clears_l1(pair: tuple[Driver, Driver]) -> None:
    """on_flush (sent by the bus after a reconnect gap) empties L1."""
    _a, b = pair
    await b("set", "k", 1)
    assert 1 == len(b.l1)
    b.cache._bus.on_flush()
    assert 0 == len(b.l1)


async def test_tier_provided_bus_is_started_and_closed(kind: str, clock: FakeClock) -> None:
    """A lower tier offering invalidation_bus() gets its bus started; close() closes it."""
    hub = LocalBus()
    endpoint = hub.endpoint()

    channels = []

    class BusTier(MemoryTier):
        def invalidation_bus(self, *, channel: str) -> Any:
            channels.append(channel)
            return endpoint

    drv = build(kind, clock, l1=MemoryTier(), l2=BusTier(timer=clock))
    assert endpoint.on_keys is not None
    assert [f"perfprim:invalidate:{drv.cache.namespace}"] == channels
    await drv("set", "k", 1)
    assert 1 == len(endpoint.published)
    await drv("close")
    assert endpoint.closed


async def test_invalidate_l1_false_starts_no_bus(kind: str, clock: FakeClock) -> None:
    """invalidate_l1=False leaves the tier's bus alone."""
    started = []

    class BusTier(MemoryTier):
        def invalidation_bus(self, *, channel: str) -> Any:
            started.append(channel)
            return LocalBus().endpoint()

    build(kind, clock, l1=MemoryTier(), l2=BusTier(timer=clock), invalidate_l1=False)
    assert [] == started


async def test_cache_without_l1_publishes_and_follows_generations(
    kind: str, clock: FakeClock
) -> None:
    """A cache with only a lower tier still tells the others and hears their bumps."""
    hub = LocalBus()
    endpoint = hub.endpoint()
    shared = MemoryTier(timer=clock)
    l2 = FailingTier(shared)  # not a MemoryTier, so the sync cache does not take it as L1
    l2.down = False
    l2.invalidation_bus = lambda *, channel: endpoint  # type: ignore[attr-defined]
    writer = build(kind, clock, l1=None, l2=l2)
    reader = build(kind, clock, l1=MemoryTier(), l2=shared, invalidation=hub.endpoint())
    await writer("set", "k", 1)
    assert 1 == await reader("get", "k")
    await writer("set", "k", 2)
    assert 2 == await reader("get", "k")
    await reader("clear")
    assert None is await writer("get", "k")
