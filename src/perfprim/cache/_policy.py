"""Pure freshness decisions: functions of ``(entry, now, ...)``, shared by sync and async.

Nothing here does I/O or reads a clock; the caches pass ``now`` in. Issue 4
(stampede protection, XFetch early refresh, stale serving) adds its decisions
here so that :class:`~perfprim.cache.TieredCache` and
:class:`~perfprim.cache.AsyncTieredCache` share them.
"""

from __future__ import annotations

from perfprim.cache._entry import Entry

__all__ = [
    "entry_from_load",
    "entry_from_set",
    "is_fresh",
    "l1_fresh_until",
    "l1_keep_until",
]


def is_fresh(entry: Entry, now: float) -> bool:
    """Whether ``entry`` may be served as a hit at ``now`` (strictly before its expiry)."""
    return now < entry.expires_at


def l1_fresh_until(entry: Entry, now: float, l1_ttl: float | None) -> float:
    """When an L1 copy of ``entry`` stored at ``now`` stops being served.

    The back-fill rule: ``min(now + l1_ttl, entry.expires_at)``, so an L1 copy
    never outlives the entry it copies, and an L1 TTL shorter than the entry's
    bounds how long this process can serve a value another process replaced
    (the fallback when an invalidation message is lost).
    """
    if l1_ttl is None:
        return entry.expires_at
    return min(now + l1_ttl, entry.expires_at)


def l1_keep_until(entry: Entry, fresh_until: float) -> float:
    """Until when L1 keeps its copy: the stale window only if the L1 TTL did not bind.

    If the L1 TTL cut the copy short, the copy may be outdated once it ends (L2
    holds the truth), so it is dropped then; otherwise it is the entry itself
    and may be kept until ``entry.stale_until`` for stale serving.
    """
    if fresh_until < entry.expires_at:
        return fresh_until
    return max(entry.stale_until, fresh_until)


def entry_from_load(
    value: object, *, now: float, ttl: float, delta: float, stale_ttl: float = 0.0
) -> Entry:
    """Build the entry for a value a loader just computed.

    Args:
        value: What the loader returned (``None`` included).
        now: Clock reading when the load finished.
        ttl: Freshness lifetime in seconds.
        delta: How long the loader ran, in seconds (XFetch's delta).
        stale_ttl: How long past expiry the value may still be served stale.

    Returns:
        ``Entry(value, now + ttl, delta, now + ttl + stale_ttl)``.
    """
    expires_at = now + ttl
    return Entry(value, expires_at, max(delta, 0.0), expires_at + stale_ttl)


def entry_from_set(value: object, *, now: float, ttl: float, stale_ttl: float = 0.0) -> Entry:
    """Build the entry for an explicit ``set`` (no load was measured: ``delta`` is 0)."""
    return entry_from_load(value, now=now, ttl=ttl, delta=0.0, stale_ttl=stale_ttl)
