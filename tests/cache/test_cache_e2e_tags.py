"""Tags against real Redis: a standalone server and the real three-master Cluster, two processes.

The guarantees under test: after ``invalidate_tags`` returns, no process
serves a value stored with that tag before the call, neither from its L1 (the
bus drops the copies) nor from Redis (the entry's tag stamps no longer match
the counters); and invalidating a tag costs one ``INCR`` whatever the number
of keys it covers (no ``SCAN``, no ``DEL``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier, RedisTier, TieredCache
from perfprim.testing import RedisCluster, RedisServer
from tests.cache.e2e_support import command_calls
from tests.cache.test_cache_e2e_invalidation import Child, Parent

pytestmark = pytest.mark.redis


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """TieredCache + RedisTier, or AsyncTieredCache + AsyncRedisTier."""
    return str(request.param)


@pytest.fixture(params=["standalone", "cluster"])
def url(request: pytest.FixtureRequest, redis_url: str) -> Iterator[tuple[str, bool]]:
    """A standalone server or the real cluster (``(url, cluster)``)."""
    if request.param == "standalone":
        yield redis_url, False
        return
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    yield cluster.url, True


class Caches:
    """Caches of one kind on one Redis, made and closed by the test."""

    def __init__(self, kind: str, url: str, cluster: bool, namespace: str) -> None:
        self.kind, self.url, self.cluster, self.namespace = kind, url, cluster, namespace
        self.made: list[Any] = []
        self.buses: list[Any] = []

    def make(self, *, l1: bool = True) -> Any:
        """A cache with (or without) an L1, on its own client and subscribed bus.

        It waits for the bus's subscription: a message published before it is
        lost (the subscription's flush covers only what L1 held before it).
        """
        tier_class: Any = RedisTier if self.kind == "sync" else AsyncRedisTier
        tier = tier_class.from_url(self.url, cluster=self.cluster, socket_timeout=1.0)
        bus = tier.invalidation_bus(channel=f"perfprim:invalidate:{self.namespace}")
        self.buses.append(bus)
        tiers = [MemoryTier(maxsize=1000, ttl=300.0), tier] if l1 else [tier]
        cls: Any = TieredCache if self.kind == "sync" else AsyncTieredCache
        self.made.append(cls(*tiers, ttl=300.0, namespace=self.namespace, invalidation=bus))
        assert bus.wait_subscribed(10.0)
        return self.made[-1]

    def loader(self, value: str) -> Callable[[], Any]:
        """A loader of ``value`` of the caches' kind."""
        if self.kind == "sync":
            return lambda: value

        async def load() -> str:
            return value

        return load

    async def close(self) -> None:
        for cache in self.made:
            await run(cache.close())
        for bus in self.buses:
            bus.close()


async def run(result: Any) -> Any:
    """Await ``result`` if it is awaitable."""
    return await result if inspect.isawaitable(result) else result


@pytest.fixture
async def caches(kind: str, url: tuple[str, bool], namespace: str) -> AsyncIterator[Caches]:
    """The factory; every cache made is closed after the test."""
    made = Caches(kind, url[0], url[1], namespace)
    yield made
    await made.close()


async def test_an_invalidated_entry_is_refused_from_redis(caches: Caches) -> None:
    """A cache that never held the value in L1 reads Redis after the invalidation: a miss.

    No bus message can help that reader: it had no copy. Only the stamps in
    the entry, checked against the tag counters on the read, keep the old
    value from being served.
    """
    writer, reader = caches.make(), caches.make(l1=False)
    await run(writer.set("user:42:profile", "old", tags=["user:42"]))
    await run(writer.set("user:43:profile", "other", tags=["user:43"]))
    assert "old" == await run(reader.get("user:42:profile"))
    await run(writer.invalidate_tags("user:42"))
    assert None is await run(reader.get("user:42:profile"))
    assert "other" == await run(reader.get("user:43:profile"))
    assert 1 <= reader.stats().tag_misses
    loaded = await run(
        reader.get_or_load("user:42:profile", caches.loader("new"), tags=["user:42"])
    )
    assert "new" == loaded
    assert "new" == await run(writer.get("user:42:profile"))


async def test_a_load_racing_an_invalidation_is_not_served(caches: Caches) -> None:
    """The loader reads the old data, the tag is invalidated, the load stores: not served.

    Redis refuses the stored entry at once (its stamps predate the bump); the
    loading process's L1 copy goes when the bus message arrives (it may have
    been stored just before), as for any write in another process.
    """
    cache, other = caches.make(), caches.make()
    calls: list[str] = []

    def body() -> str:
        calls.append("x")
        return f"v{len(calls)}"

    if caches.kind == "sync":

        def loader() -> str:
            value = body()
            if len(calls) == 1:
                other.invalidate_tags("t")  # another process updates the data meanwhile
            return value

    else:

        async def loader() -> str:  # type: ignore[misc]
            value = body()
            if len(calls) == 1:
                await other.invalidate_tags("t")
            return value

    assert "v1" == await run(cache.get_or_load("k", loader, tags=["t"]))
    assert None is await run(other.get("k"))  # refused from Redis
    for _ in range(2000):  # bounded: the bus delivers in about a millisecond
        if None is await run(cache.get("k")):
            break
        await asyncio.sleep(0.005)
    got = await run(cache.get_or_load("k", loader, tags=["t"]))
    assert "v2" == got, (calls, cache.stats(), other.stats())
    assert "v2" == await run(other.get("k"))


async def test_two_processes(kind: str, redis_url: str, namespace: str) -> None:
    """invalidate_tags here: the child drops its L1 copy and does not reload the old value."""
    parent = Parent(redis_url, namespace, kind)
    child = Child(redis_url, namespace, kind)
    try:
        assert "old" == child.value(op="tload", key="k", value="old", tags=["user:1"])
        assert "keep" == child.value(op="tload", key="k2", value="keep", tags=["user:2"])
        assert "old" == child.value(op="get", key="k")  # its L1 copy (ttl 300 s)
        await parent(parent.cache.invalidate_tags("user:1"))
        ok, seen = child.poll("<miss>", op="get", key="k")
        assert ok, seen
        assert "keep" == child.value(op="get", key="k2")
        # And the other direction: the child invalidates, this process's copy goes.
        await parent(parent.cache.set("mine", "p", tags=["user:2"]))
        assert "p" == await parent(parent.cache.get("mine"))
        child.ask(op="invalidate_tags", tags=["user:2"])
        for _ in range(1000):
            if None is await parent(parent.cache.get("mine")):
                break
            parent.bus.wait_keys(1, timeout=0.01)
        assert None is await parent(parent.cache.get("mine"))
    finally:
        child.stop()
        await parent.close()


async def test_invalidating_a_tag_over_many_keys_is_one_incr(
    kind: str, redis_server_factory: Callable[[], RedisServer], namespace: str
) -> None:
    """1,000 tagged keys: invalidate_tags sends one INCR, no SCAN, no DEL, whatever the count."""
    server = redis_server_factory()
    made = Caches(kind, server.url, False, namespace)
    try:
        cache = made.make()
        await run(cache.set_many({f"k{i}": i for i in range(1000)}, tags=["bulk"]))
        server.command("CONFIG", "RESETSTAT")
        await run(cache.invalidate_tags("bulk"))
        calls = command_calls(server)
        assert 1 == calls.get("incrby", 0) + calls.get("incr", 0)  # redis-py sends INCRBY
        assert set() == {"scan", "del", "unlink", "keys"} & set(calls)
        reader = made.make(l1=False)
        assert {} == await run(reader.get_many([f"k{i}" for i in range(0, 1000, 37)]))
    finally:
        await made.close()


async def test_a_tagged_l2_hit_is_one_round_trip_on_a_server(
    kind: str, redis_server_factory: Callable[[], RedisServer], namespace: str
) -> None:
    """Standalone: a tagged entry is read and its tags checked by one script call (one trip)."""
    server = redis_server_factory()
    made = Caches(kind, server.url, False, namespace)
    try:
        writer, reader = made.make(), made.make(l1=False)
        await run(writer.set("k", "v", tags=["a", "b"]))
        await run(reader.get_or_load("warm", made.loader("w"), tags=["a"]))  # tags in use
        await run(reader.get("warm"))  # the script is loaded on the server now
        server.command("CONFIG", "RESETSTAT")
        assert "v" == await run(reader.get("k"))
        calls = command_calls(server)  # Lua's own commands count too: GET k, GET a, GET b
        # Only the reads: the buses' pings and a new connection's handshake (CLIENT SETINFO)
        # may land in the same window and are not part of the read.
        reads = {"evalsha", "eval", "get", "mget", "exists", "script|load"}
        assert {"evalsha": 1, "get": 3} == {k: v for k, v in calls.items() if k in reads}
        await run(writer.invalidate_tags("b"))
        assert None is await run(reader.get("k"))
    finally:
        await made.close()
