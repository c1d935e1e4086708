"""Multi-tier cache-aside: in-process L1, Redis L2, stampede protection, early expiry.

Filled in by the cache issues; see ``docs/cache.md`` and ``docs/cache_stampede.md``.
"""

from __future__ import annotations

from perfprim.cache._entry import Entry
from perfprim.cache._lock import MISSING, AsyncRedisLock, Lease, LockStats, RedisLock
from perfprim.cache._protocols import AsyncTier, InvalidationBus, Tier
from perfprim.cache._singleflight import AsyncSingleFlight, SingleFlight, SingleFlightStats
from perfprim.cache._xfetch import Decision, decide, early_probability

__all__ = [
    "MISSING",
    "AsyncRedisLock",
    "AsyncSingleFlight",
    "AsyncTier",
    "Decision",
    "Entry",
    "InvalidationBus",
    "Lease",
    "LockStats",
    "RedisLock",
    "SingleFlight",
    "SingleFlightStats",
    "Tier",
    "decide",
    "early_probability",
]
