"""Errors redis-py leaks instead of its own exceptions never reach the cache's caller.

redis-py's asyncio client can raise ``AttributeError`` or ``TypeError`` from
deep inside a connection that another task or the peer closed (redis/redis-py
#4287: a write on a peer-closed pooled connection; #3835: a cluster node
missing from a stale slot map; seen in perfprim's failover soak as
``'NoneType' object has no attribute 'writelines'`` during ``CLUSTER
FAILOVER``). Neither is a ``RedisError``: before the tier mapped them, they
went through the cache to the caller. Here a client that leaks such an
error on its next calls stands in for the race, against a real server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio

from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier, RedisTier, TieredCache
from perfprim.cache.advanced import RedisLock
from perfprim.exceptions import BackendError

pytestmark = pytest.mark.redis

LEAKS = (
    AttributeError("'NoneType' object has no attribute 'writelines'"),
    TypeError("'NoneType' object is not callable"),
    ValueError("I/O operation on closed file."),
)


class LeakySync(redis.Redis):
    """A redis-py client whose next ``leaks`` commands raise what redis-py leaks."""

    leaks: list[BaseException]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.leaks:
            raise self.leaks.pop(0)
        return super().execute_command(*args, **options)


class LeakyAsync(redis.asyncio.Redis):
    """The asyncio twin of :class:`LeakySync`."""

    leaks: list[BaseException]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.leaks:
            raise self.leaks.pop(0)
        return await super().execute_command(*args, **options)


@pytest.mark.parametrize("leak", LEAKS, ids=lambda e: type(e).__name__)
def test_sync_cache_degrades_past_a_leaked_driver_error(
    redis_url: str, namespace: str, leak: BaseException
) -> None:
    """The load's value comes back, the leak is counted as a tier error, Redis serves again."""
    client = LeakySync.from_url(redis_url, socket_timeout=1.0)
    client.leaks = []
    cache = TieredCache(MemoryTier(ttl=0.001), RedisTier(client), namespace=namespace)
    try:
        client.leaks = [leak, leak]  # the call and its one retry
        assert {"v": 1} == cache.get_or_load("k", lambda: {"v": 1})
        assert cache.stats().tiers[1].errors >= 1
        client.leaks = [leak]  # the retry on a new connection succeeds
        assert {"v": 1} == cache.get_or_load("k2", lambda: {"v": 1})
    finally:
        cache.close()


@pytest.mark.parametrize("leak", LEAKS, ids=lambda e: type(e).__name__)
async def test_async_cache_degrades_past_a_leaked_driver_error(
    redis_url: str, namespace: str, leak: BaseException
) -> None:
    """The asyncio twin: no leaked driver error reaches the caller."""
    client = LeakyAsync.from_url(redis_url, socket_timeout=1.0)
    client.leaks = []
    cache = AsyncTieredCache(MemoryTier(ttl=0.001), AsyncRedisTier(client), namespace=namespace)
    try:

        async def load() -> dict[str, int]:
            return {"v": 1}

        client.leaks = [leak, leak]
        assert {"v": 1} == await cache.get_or_load("k", load)
        assert cache.stats().tiers[1].errors >= 1
        client.leaks = [leak]
        assert {"v": 1} == await cache.get_or_load("k2", load)
        await asyncio.sleep(0)
    finally:
        await cache.close()


@pytest.mark.parametrize("leak", LEAKS, ids=lambda e: type(e).__name__)
def test_lock_extend_meets_a_leaked_driver_error_as_a_backend_error(
    redis_url: str, namespace: str, leak: BaseException
) -> None:
    """The watchdog retries a ``BackendError`` next round; a leaked error used to kill its thread.

    CI saw ``ValueError: I/O operation on closed file`` end the watchdog's
    thread when a client was closed under an extend.
    """
    client = LeakySync.from_url(redis_url, socket_timeout=1.0)
    client.leaks = []
    lock = RedisLock(client, watchdog=False)
    try:
        lease = lock.acquire(f"{namespace}:k")
        assert lease is not None
        client.leaks = [leak]
        with pytest.raises(BackendError):
            lock.extend(lease)
        assert lock.extend(lease) is True  # the lock is still ours
        assert lock.release(lease) is True
    finally:
        client.close()
