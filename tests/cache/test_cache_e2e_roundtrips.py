"""Round trips through the cache, counted by the server itself (``INFO commandstats``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.crc import key_slot

from perfprim.cache import AsyncRedisTier, MemoryTier, RedisTier
from perfprim.testing import RedisCluster, RedisServer
from tests.cache.conformance import FakeClock
from tests.cache.e2e_support import command_calls
from tests.cache.helpers import Driver, build

pytestmark = pytest.mark.redis


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """TieredCache over RedisTier, or AsyncTieredCache over AsyncRedisTier."""
    return str(request.param)


def data_commands(server: RedisServer) -> dict[str, int]:
    """Commands since RESETSTAT, without the test's own INFO and CONFIG."""
    return {
        name: calls
        for name, calls in command_calls(server).items()
        if name != "info" and not name.startswith("config")
    }


def make(kind: str, url: str, *, cluster: bool, namespace: str) -> Driver:
    """A cache of ``kind`` with an L1 and a Redis L2 (no bus: its PINGs would be counted)."""
    tier = (RedisTier if kind == "sync" else AsyncRedisTier).from_url(url, cluster=cluster)
    return build(
        kind,
        FakeClock(),
        l1=MemoryTier(maxsize=100, ttl=60.0),
        l2=tier,
        namespace=namespace,
        invalidate_l1=False,
    )


async def test_get_many_is_one_mget(
    kind: str, redis_server_factory: Callable[[], RedisServer], namespace: str
) -> None:
    """get_many of 20 keys with a cold L1 is one MGET; L2 hits back-fill L1 without writes."""
    server = redis_server_factory()
    cache = make(kind, server.url, cluster=False, namespace=namespace)
    try:
        keys = [f"user:{i}" for i in range(20)]
        await cache("set_many", {key: i for i, key in enumerate(keys) if i % 4})
        cache.l1.clear()
        server.command("CONFIG", "RESETSTAT")
        found = await cache("get_many", keys)
        assert {key: i for i, key in enumerate(keys) if i % 4} == found
        assert {"mget": 1} == data_commands(server)
        server.command("CONFIG", "RESETSTAT")
        assert found == await cache("get_many", keys)  # now L1 answers the hits
        assert {"mget": 1} == data_commands(server)
    finally:
        await cache("close")


@pytest.mark.cluster
async def test_cluster_get_many_is_one_mget_per_slot(
    kind: str, redis_cluster: RedisCluster, namespace: str
) -> None:
    """On a cluster, get_many sends one MGET per slot holding a requested key."""
    cache = make(kind, redis_cluster.url, cluster=True, namespace=namespace)
    try:
        keys = [f"user:{i}" for i in range(12)]
        await cache("set_many", {key: i for i, key in enumerate(keys)})
        full_keys = list(cache.l1._records)
        cache.l1.clear()
        for node in redis_cluster.nodes:
            node.command("CONFIG", "RESETSTAT")
        assert {key: i for i, key in enumerate(keys)} == await cache("get_many", keys)
        calls = [command_calls(node) for node in redis_cluster.nodes]
        assert len({key_slot(fk.encode()) for fk in full_keys}) == sum(
            c.get("mget", 0) for c in calls
        )
        assert 0 == sum(c.get("get", 0) for c in calls)
    finally:
        await cache("close")
