"""The cache's building blocks, for tiers, buses and decorators of your own.

An application needs :mod:`perfprim.cache`. This module documents what the
cache is made of, for those who extend it or use a piece on its own:

- the I/O protocols a tier, a lock-hosting tier and an invalidation bus
  implement (:class:`Tier`, :class:`AsyncTier`, :class:`LockingTier`,
  :class:`AsyncLockingTier`, :class:`InvalidationBus`), what a tier stores
  (:class:`Entry`) and the serializer protocol (:class:`Serializer`);
- :class:`HitPath`, the one handle a decorator builds its hit path on
  (``cache.hit_path()``), with :class:`KeyScope` and the L1 :data:`Record`;
- the stampede components: :class:`SingleFlight` / :class:`AsyncSingleFlight`,
  the distributed :class:`RedisLock` / :class:`AsyncRedisLock` with
  :class:`Lease`, :data:`MISSING` and :class:`LockStats`, and XFetch's pure
  :func:`decide` / :func:`early_probability` with :class:`Decision`;
- :class:`RedisInvalidationBus` and :class:`CircuitState`;
- the ``cached`` wrappers' method types (:class:`BoundCachedMethod`,
  :class:`AsyncBoundCachedMethod`).

See ``docs/cache_advanced.md``.
"""

from __future__ import annotations

from perfprim.cache._async.lock import AsyncRedisLock
from perfprim.cache._breaker import CircuitState
from perfprim.cache._core import HitPath, KeyScope
from perfprim.cache._decorators import AsyncBoundCachedMethod, BoundCachedMethod
from perfprim.cache._entry import Entry
from perfprim.cache._invalidation import RedisInvalidationBus
from perfprim.cache._lock_common import MISSING, Lease, LockStats
from perfprim.cache._memory import Record
from perfprim.cache._protocols import (
    AsyncLockingTier,
    AsyncTier,
    InvalidationBus,
    LockingTier,
    Tier,
)
from perfprim.cache._serializers import Serializer
from perfprim.cache._singleflight import AsyncSingleFlight, SingleFlight, SingleFlightStats
from perfprim.cache._sync.lock import RedisLock
from perfprim.cache._xfetch import Decision, decide, early_probability

__all__ = [
    "MISSING",
    "AsyncBoundCachedMethod",
    "AsyncLockingTier",
    "AsyncRedisLock",
    "AsyncSingleFlight",
    "AsyncTier",
    "BoundCachedMethod",
    "CircuitState",
    "Decision",
    "Entry",
    "HitPath",
    "InvalidationBus",
    "KeyScope",
    "Lease",
    "LockStats",
    "LockingTier",
    "Record",
    "RedisInvalidationBus",
    "RedisLock",
    "Serializer",
    "SingleFlight",
    "SingleFlightStats",
    "Tier",
    "decide",
    "early_probability",
]
