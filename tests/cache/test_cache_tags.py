"""Tags: ``set``/``get_or_load``/``cached`` with ``tags=``, ``invalidate_tags`` (memory tiers).

Each test runs on ``TieredCache`` and ``AsyncTieredCache`` (the ``kind``
fixture), memory-only and with a MemoryTier standing in as L2 (``lower``).
The real Redis and Cluster runs, across two processes, are in
``test_cache_e2e_tags.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from perfprim.cache import MemoryTier
from perfprim.exceptions import ConfigurationError
from tests.cache.conformance import FakeClock
from tests.cache.helpers import Driver, LocalBus, build


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """TieredCache or AsyncTieredCache."""
    return str(request.param)


@pytest.fixture(params=["memory-only", "memory-l2"])
def lower(request: pytest.FixtureRequest) -> str:
    """No lower tier, or a MemoryTier as L2."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    """The injected wall clock."""
    return FakeClock()


@pytest.fixture
def drv(kind: str, lower: str, clock: FakeClock) -> Driver:
    """A cache with an L1 and, for ``memory-l2``, a second MemoryTier below it."""
    l2 = MemoryTier(maxsize=100, timer=clock) if lower == "memory-l2" else None
    return build(kind, clock, l1=MemoryTier(maxsize=100), l2=l2)


class Counting:
    """A loader of ``f"{name}@{n}"``, counting its calls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"{self.name}@{self.calls}"


async def test_set_with_tags_then_invalidate(drv: Driver) -> None:
    """invalidate_tags retires exactly the entries carrying one of the tags."""
    await drv("set", "user:1:profile", "p1", tags=["user:1"])
    await drv("set", "user:1:orders", "o1", tags=["user:1", "orders"])
    await drv("set", "user:2:profile", "p2", tags=["user:2"])
    await drv("set", "plain", "x")
    await drv("invalidate_tags", "user:1")
    got = await drv("get_many", ["user:1:profile", "user:1:orders", "user:2:profile", "plain"])
    assert {"user:2:profile": "p2", "plain": "x"} == got
    await drv("invalidate_tags", "orders", "user:2")
    assert {"plain": "x"} == await drv("get_many", ["user:2:profile", "plain"])


async def test_get_or_load_with_tags_reloads_after_invalidation(drv: Driver) -> None:
    """A loaded tagged value is served until its tag is invalidated, then loaded again."""
    load = Counting("v")
    assert "v@1" == await drv("get_or_load", "k", drv.loader(load), tags=["t"])
    assert "v@1" == await drv("get_or_load", "k", drv.loader(load), tags=["t"])
    await drv("invalidate_tags", "other")
    assert "v@1" == await drv("get_or_load", "k", drv.loader(load), tags=["t"])
    await drv("invalidate_tags", "t")
    assert "v@2" == await drv("get_or_load", "k", drv.loader(load), tags=["t"])
    assert 2 == load.calls


async def test_invalidation_during_a_load_is_not_lost(drv: Driver) -> None:
    """A tag invalidated while its value is computed: the stored value is never served.

    The versions are read before the loader runs, so the entry is stale the
    moment it is stored (the classic "read old data, invalidate, write old
    data" race); L1 does not take it either.
    """
    calls: list[str] = []

    async def invalidate() -> None:
        await drv("invalidate_tags", "t")

    def body() -> str:
        calls.append("load")
        return f"v{len(calls)}"

    if drv.is_async:

        async def loader() -> str:
            value = body()
            if len(calls) == 1:
                await invalidate()
            return value

    else:

        def loader() -> str:
            value = body()
            if len(calls) == 1:
                drv.cache.invalidate_tags("t")
            return value

    assert "v1" == await drv("get_or_load", "k", loader, tags=["t"])
    assert "v2" == await drv("get_or_load", "k", loader, tags=["t"])
    assert "v2" == await drv("get_or_load", "k", loader, tags=["t"])
    assert 2 == len(calls)


async def test_cached_with_tags_callable_and_list(drv: Driver) -> None:
    """@cached(tags=callable) tags by argument; tags=[...] tags every call."""
    calls: list[int] = []

    def profile(user_id: int) -> dict[str, int]:
        calls.append(user_id)
        return {"id": user_id, "n": len(calls)}

    by_user = drv.cached(profile, "profile", tags=lambda user_id: [f"user:{user_id}"])
    everything = drv.cached(lambda x: x * 10, "times10", tags=["all"])
    assert {"id": 1, "n": 1} == await drv.call(by_user, 1)
    assert {"id": 2, "n": 2} == await drv.call(by_user, 2)
    assert 30 == await drv.call(everything, 3)
    await drv("invalidate_tags", "user:1")
    assert {"id": 1, "n": 3} == await drv.call(by_user, 1)
    assert {"id": 2, "n": 2} == await drv.call(by_user, 2)  # user:2 kept its entry
    await drv("invalidate_tags", "all")
    assert {"id": 2, "n": 2} == await drv.call(by_user, 2)


async def test_cached_set_is_write_through_with_tags(drv: Driver) -> None:
    """fn.set(value, *args) stores the result for those arguments, with the function's tags."""
    calls: list[int] = []

    def profile(user_id: int) -> str:
        calls.append(user_id)
        return f"loaded {user_id}"

    fn = drv.cached(profile, "profile", tags=lambda user_id: [f"user:{user_id}"])
    await drv.call(fn.set, "written 7", 7)
    assert "written 7" == await drv.call(fn, 7)
    assert [] == calls
    await drv("invalidate_tags", "user:7")
    assert "loaded 7" == await drv.call(fn, 7)
    assert [7] == calls


async def test_tags_reach_other_processes_l1(kind: str, clock: FakeClock) -> None:
    """invalidate_tags in one cache drops the tagged L1 copies of another (through the bus)."""
    hub = LocalBus()
    shared = MemoryTier(maxsize=100, timer=clock)
    a = build(kind, clock, l1=MemoryTier(maxsize=100), l2=shared, invalidation=hub.endpoint())
    b = build(kind, clock, l1=MemoryTier(maxsize=100), l2=shared, invalidation=hub.endpoint())
    await a("set", "k", "v", tags=["t"])
    assert "v" == await b("get", "k")
    assert b.l1 is not None
    assert 1 == len(b.l1)  # b's L1 holds a copy
    await a("invalidate_tags", "t")
    assert 0 == len(b.l1)
    assert None is await b("get", "k")


@pytest.mark.parametrize(
    ("tags", "match"),
    [("user:1", r"tags=\['user:1'\]"), ([""], "non-empty str"), ([1], "non-empty str")],
)
async def test_bad_tags_are_refused(drv: Driver, tags: Any, match: str) -> None:
    """A str instead of a list, an empty tag, a non-str tag: ConfigurationError with the fix."""
    with pytest.raises(ConfigurationError, match=match):
        await drv("set", "k", 1, tags=tags)


def test_bad_cached_tags_fail_at_decoration(kind: str, clock: FakeClock) -> None:
    """cached(tags="x") and cached(tags=[1]) fail when the function is decorated."""
    drv = build(kind, clock, l1=MemoryTier())
    with pytest.raises(ConfigurationError, match="write tags="):
        drv.cached(lambda x: x, "f", tags="user")
    with pytest.raises(ConfigurationError, match="non-empty strs"):
        drv.cached(lambda x: x, "g", tags=[1])


async def test_invalidating_many_keys_is_one_counter_bump(kind: str, clock: FakeClock) -> None:
    """A tag over 1,000 keys is retired by one incr of its counter (no per-key work)."""
    l2 = MemoryTier(maxsize=5000, timer=clock)
    drv = build(kind, clock, l1=MemoryTier(maxsize=5000), l2=l2)
    await drv("set_many", {f"k{i}": i for i in range(1000)}, tags=["bulk"])
    before = dict(l2._counters)
    await drv("invalidate_tags", "bulk")
    changed = {k: v for k, v in l2._counters.items() if before.get(k) != v}
    assert [1] == list(changed.values())
    assert {} == await drv("get_many", [f"k{i}" for i in range(0, 1000, 100)])
