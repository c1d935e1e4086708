"""The cache conformance suite with a real Redis L2: standalone server and Cluster.

:class:`tests.cache.cache_conformance.LowerTierConformance` runs here with
``RedisTier`` as the L2 of ``TieredCache`` and ``AsyncRedisTier`` as the L2 of
``AsyncTieredCache`` (the ``kind`` fixture), each with a real
``RedisInvalidationBus`` attached, as in production. The suites' fake wall
clock starts at 1e6 s; the tiers write ``SET ... PX`` relative to the cache's
``now``, so Redis keeps each entry for its remaining life on its own clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from perfprim.cache import AsyncRedisTier, MemoryTier, RedisTier
from perfprim.testing import RedisCluster
from tests.cache.cache_conformance import LowerTierConformance
from tests.cache.conformance import FakeClock
from tests.cache.e2e_support import WatchedBus
from tests.cache.helpers import Driver, build

pytestmark = pytest.mark.redis


class RedisL2:
    """The cache fixture for a Redis L2: a real bus, L1 flush on subscribe awaited, closed after."""

    @pytest.fixture
    async def cache(
        self, kind: str, clock: FakeClock, make_lower: Callable[[], Any], namespace: str
    ) -> AsyncIterator[Driver]:
        """MemoryTier(ttl=5) over the Redis tier, with a started invalidation bus."""
        lower = make_lower()
        bus = WatchedBus(lower.invalidation_bus())
        driver = build(
            kind,
            clock,
            l1=MemoryTier(maxsize=100, ttl=5.0),
            l2=lower,
            namespace=namespace,
            invalidation=bus,
        )
        assert bus.wait_flushes(1)  # the first subscription flushes L1: let it happen now
        yield driver
        await driver("close")
        bus.close()


class TestRedisServerL2(RedisL2, LowerTierConformance):
    """The cache suite over a real standalone Redis."""

    @pytest.fixture
    def make_lower(self, kind: str, redis_url: str) -> Callable[[], Any]:
        """RedisTier for the sync cache, AsyncRedisTier for the async one."""
        if kind == "sync":
            return lambda: RedisTier.from_url(redis_url)
        return lambda: AsyncRedisTier.from_url(redis_url)


@pytest.mark.cluster
class TestRedisClusterL2(RedisL2, LowerTierConformance):
    """The cache suite over a real three-master Redis Cluster."""

    @pytest.fixture
    def make_lower(self, kind: str, redis_cluster: RedisCluster) -> Callable[[], Any]:
        """Cluster tiers of the cache's kind."""
        if kind == "sync":
            return lambda: RedisTier.from_url(redis_cluster.url, cluster=True)
        return lambda: AsyncRedisTier.from_url(redis_cluster.url, cluster=True)
