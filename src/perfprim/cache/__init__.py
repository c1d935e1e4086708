"""Multi-tier cache-aside: in-process L1, Redis L2, stampede protection, early expiry.

Filled in by the cache issues; see ``docs/cache.md``.
"""

from __future__ import annotations

from perfprim.cache._entry import Entry
from perfprim.cache._protocols import AsyncTier, InvalidationBus, Tier

__all__ = ["AsyncTier", "Entry", "InvalidationBus", "Tier"]
