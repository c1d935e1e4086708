"""What the cache test apps share: their caches (memory L1 + the private Redis) and a call counter.

``REDIS_URL`` names the test module's private redis-server; every app call is
counted there (``INCR calls:<path>``), so a test sees the calls of every worker.
"""

from __future__ import annotations

import contextlib
import os

import redis

from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier, RedisTier, TieredCache

REDIS_URL = os.environ["REDIS_URL"]
NAMESPACE = os.environ.get("PERFPRIM_HTTP_NAMESPACE", "http")
_counter = redis.Redis.from_url(REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)


def count_call(path: str) -> None:
    """Count one application call of ``path`` (never fails the request)."""
    with contextlib.suppress(redis.RedisError):
        _counter.incr(f"calls:{path}")


def sync_cache() -> TieredCache:
    """Memory L1 + Redis L2, sync."""
    return TieredCache(MemoryTier(maxsize=1000), RedisTier.from_url(REDIS_URL), namespace=NAMESPACE)


def async_cache() -> AsyncTieredCache:
    """Memory L1 + Redis L2, asyncio."""
    return AsyncTieredCache(
        MemoryTier(maxsize=1000), AsyncRedisTier.from_url(REDIS_URL), namespace=NAMESPACE
    )


def local_sync_cache() -> TieredCache:
    """A memory-only cache: each worker computes its own ETags."""
    return TieredCache(MemoryTier(maxsize=1000), namespace=NAMESPACE + "-local")


def local_async_cache() -> AsyncTieredCache:
    """A memory-only asyncio cache: each worker computes its own ETags."""
    return AsyncTieredCache(MemoryTier(maxsize=1000), namespace=NAMESPACE + "-local")
