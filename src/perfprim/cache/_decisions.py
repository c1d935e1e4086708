"""Every decision the tiered cache makes, as pure functions of ``(entry, now, options)``.

Nothing here does I/O, reads a clock or draws a random number unless handed
a source: the cache (written once in :mod:`perfprim.cache._async.tiered`,
generated for sync code) passes ``now`` and its options in, so each rule
lives in one place and is tested without a server.

- freshness and the L1 back-fill rule: :func:`is_fresh`,
  :func:`l1_fresh_until`, :func:`l1_keep_until`;
- what a read does with the entry it found (XFetch early refresh, stale
  serving): :func:`read_action`, :func:`serve_while_refreshing`;
- what a load stores: :func:`entry_from_load`, :func:`entry_from_set`,
  :func:`loaded_ttl` (caching ``None``);
- fallbacks: :func:`stale_fallback` (stale-if-error), :func:`lock_usable`;
- tags: :func:`stamp_tags`.

XFetch's own math (Vattani et al., VLDB 2015) is in :mod:`._xfetch`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from perfprim.cache._entry import Entry
from perfprim.cache._xfetch import Decision, decide_lazy

if TYPE_CHECKING:
    from perfprim.cache._stampede import StampedeOptions

__all__ = [
    "NO_VERSION",
    "entry_from_load",
    "entry_from_set",
    "is_fresh",
    "l1_fresh_until",
    "l1_keep_until",
    "loaded_ttl",
    "lock_usable",
    "read_action",
    "serve_while_refreshing",
    "stale_fallback",
    "stamp_tags",
]

_STALE: Final = Decision.STALE
_MISS: Final = Decision.MISS
NO_VERSION: Final = -1
"""The stamp of a tag whose version could not be read: never current, so never served from L2."""


def is_fresh(entry: Entry, now: float) -> bool:
    """Whether ``entry`` may be served as a hit at ``now`` (strictly before its expiry)."""
    return now < entry.expires_at


def l1_fresh_until(entry: Entry, now: float, l1_ttl: float | None) -> float:
    """When an L1 copy of ``entry`` stored at ``now`` stops being served.

    The back-fill rule: ``min(now + l1_ttl, entry.expires_at)``, so an L1 copy
    never outlives the entry it copies, and an L1 TTL shorter than the entry's
    bounds how long this process can serve a value another process replaced
    (the fallback when an invalidation message is lost).

    >>> l1_fresh_until(Entry("v", expires_at=103.0, delta=0.0, stale_until=103.0), 100.0, 5.0)
    103.0
    >>> l1_fresh_until(Entry("v", expires_at=160.0, delta=0.0, stale_until=160.0), 100.0, 5.0)
    105.0
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
    value: object,
    *,
    now: float,
    ttl: float,
    delta: float,
    stale_ttl: float = 0.0,
    tags: tuple[tuple[str, int], ...] = (),
) -> Entry:
    """Build the entry for a value a loader just computed.

    Args:
        value: What the loader returned (``None`` included).
        now: Clock reading when the load finished.
        ttl: Freshness lifetime in seconds.
        delta: How long the loader ran, in seconds (XFetch's delta).
        stale_ttl: How long past expiry the value may still be served stale.
        tags: The tag stamps taken before the loader ran (:func:`stamp_tags`).

    Returns:
        ``Entry(value, now + ttl, delta, now + ttl + stale_ttl, tags)``.
    """
    expires_at = now + ttl
    return Entry(value, expires_at, max(delta, 0.0), expires_at + stale_ttl, tags)


def entry_from_set(
    value: object,
    *,
    now: float,
    ttl: float,
    stale_ttl: float = 0.0,
    tags: tuple[tuple[str, int], ...] = (),
) -> Entry:
    """Build the entry for an explicit ``set`` (no load was measured: ``delta`` is 0)."""
    return entry_from_load(value, now=now, ttl=ttl, delta=0.0, stale_ttl=stale_ttl, tags=tags)


def loaded_ttl(value: object, ttl: float, opts: StampedeOptions) -> float | None:
    """The freshness a loaded ``value`` is stored with, or ``None``: do not store it.

    ``None`` is a value like any other unless ``cache_none=False``; with
    ``none_ttl`` it is stored for that long instead (short negative caching).
    """
    if value is None:
        if not opts.cache_none:
            return None
        return opts.none_ttl or ttl
    return ttl


def read_action(
    entry: Entry | None, now: float, opts: StampedeOptions, source: Callable[[], float]
) -> Decision:
    """What a read that missed the L1 fast path does with the entry it found.

    XFetch (:func:`~perfprim.cache._xfetch.decide_lazy`), then the stale
    window split: past expiry an entry is served stale (with one background
    refresh) only within ``stale_ttl``; between ``stale_ttl`` and
    ``stale_until`` it is kept only as the stale-if-error fallback, so the
    read is a MISS that waits for the loader.

    Args:
        entry: The entry found (L1 copy or lower tier), or ``None``.
        now: Wall-clock seconds.
        opts: The cache's options.
        source: Random source in (0, 1] for XFetch.

    Returns:
        The :class:`~perfprim.cache.advanced.Decision`.
    """
    decision = decide_lazy(entry, now, beta=opts.beta, source=source)
    if decision is _STALE and entry is not None and now >= entry.expires_at + opts.stale_ttl:
        return _MISS
    return decision


def serve_while_refreshing(entry: Entry, now: float, opts: StampedeOptions) -> bool:
    """Whether this process, refreshing ``entry``'s key itself, may serve its L1 copy meanwhile.

    Only while the entry may still be served: fresh, or within ``stale_ttl``
    past expiry (and never past ``stale_until``).
    """
    return now < entry.stale_until and now < entry.expires_at + opts.stale_ttl


def stale_fallback(stale: Entry | None, now: float, opts: StampedeOptions) -> bool:
    """Whether ``stale`` may replace a failed load (stale-if-error)."""
    grace = opts.stale_if_error
    return (
        stale is not None
        and grace > 0.0
        and now < stale.stale_until
        and now < stale.expires_at + grace
    )


def lock_usable(circuit_state: object, failing: bool) -> bool:
    """Whether the load lock may talk to its Redis.

    Not while the tier's circuit is open or half-open, nor right after its
    server failed a read: a hung Redis must cost a load one timeout, not one
    more for the lock.
    """
    return not failing and (circuit_state is None or str(circuit_state) == "closed")


def stamp_tags(keys: Sequence[str], versions: Sequence[int] | None) -> tuple[tuple[str, int], ...]:
    """The ``(tag counter key, version)`` stamps of an entry about to be computed.

    Taken *before* the loader runs: an invalidation that lands while it runs
    makes the stored entry stale at once. ``versions`` is ``None`` when the
    counters could not be read; the stamps are then :data:`NO_VERSION`, so
    the entry is never served from a lower tier (only this process's L1,
    which the invalidation bus and the L1 TTL keep bounded).

    >>> stamp_tags(["ns:#tag:{a}"], [3])
    (('ns:#tag:{a}', 3),)
    >>> stamp_tags(["ns:#tag:{a}"], None)
    (('ns:#tag:{a}', -1),)
    """
    if versions is None:
        return tuple((key, NO_VERSION) for key in keys)
    return tuple(zip(keys, versions, strict=True))
