"""Multi-tier cache-aside: in-process L1, Redis L2, sync and async; see ``docs/cache.md``.

Stampede protection, early expiry and stale serving: ``docs/cache_stampede.md``.

>>> from perfprim.cache import MemoryTier, TieredCache
>>> cache = TieredCache(MemoryTier(maxsize=1_000), ttl=30.0, namespace="example")
>>> @cache.cached()
... def square(x: int) -> int:
...     return x * x
>>> square(12)
144
>>> cache.stats().loads
1
"""

from __future__ import annotations

from perfprim.cache._async_redis_tier import AsyncRedisTier
from perfprim.cache._async_tiered import AsyncTieredCache
from perfprim.cache._breaker import CircuitState
from perfprim.cache._decorators import (
    AsyncBoundCachedMethod,
    AsyncCachedFunction,
    BoundCachedMethod,
    CachedFunction,
)
from perfprim.cache._entry import Entry
from perfprim.cache._invalidation import RedisInvalidationBus
from perfprim.cache._lock import MISSING, AsyncRedisLock, Lease, LockStats, RedisLock
from perfprim.cache._memory import MemoryTier
from perfprim.cache._protocols import AsyncTier, InvalidationBus, Tier
from perfprim.cache._redis_tier import RedisTier
from perfprim.cache._serializers import JsonSerializer, PickleSerializer, Serializer
from perfprim.cache._singleflight import AsyncSingleFlight, SingleFlight, SingleFlightStats
from perfprim.cache._stats import CacheStats, TierStats
from perfprim.cache._tiered import TieredCache
from perfprim.cache._xfetch import Decision, decide, early_probability

__all__ = [
    "MISSING",
    "AsyncBoundCachedMethod",
    "AsyncCachedFunction",
    "AsyncRedisLock",
    "AsyncRedisTier",
    "AsyncSingleFlight",
    "AsyncTier",
    "AsyncTieredCache",
    "BoundCachedMethod",
    "CacheStats",
    "CachedFunction",
    "CircuitState",
    "Decision",
    "Entry",
    "InvalidationBus",
    "JsonSerializer",
    "Lease",
    "LockStats",
    "MemoryTier",
    "PickleSerializer",
    "RedisInvalidationBus",
    "RedisLock",
    "RedisTier",
    "Serializer",
    "SingleFlight",
    "SingleFlightStats",
    "Tier",
    "TierStats",
    "TieredCache",
    "decide",
    "early_probability",
]
