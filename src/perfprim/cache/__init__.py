"""Multi-tier cache-aside: in-process L1, Redis L2, sync and asyncio; see ``docs/cache.md``.

What an application uses is here; the pieces for building tiers, buses and
decorators of your own, and the stampede components on their own, are in
:mod:`perfprim.cache.advanced`.

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

from perfprim.cache._async.redis_tier import AsyncRedisTier
from perfprim.cache._async.tiered import AsyncTieredCache
from perfprim.cache._decorators import AsyncCachedFunction, CachedFunction
from perfprim.cache._memory import MemoryTier
from perfprim.cache._serializers import JsonSerializer, PickleSerializer
from perfprim.cache._stampede import StampedeOptions
from perfprim.cache._stats import CacheStats, TierStats
from perfprim.cache._sync.redis_tier import RedisTier
from perfprim.cache._sync.tiered import TieredCache

__all__ = [
    "AsyncCachedFunction",
    "AsyncRedisTier",
    "AsyncTieredCache",
    "CacheStats",
    "CachedFunction",
    "JsonSerializer",
    "MemoryTier",
    "PickleSerializer",
    "RedisTier",
    "StampedeOptions",
    "TierStats",
    "TieredCache",
]
