"""Cache statistics: plain int counters on the hot path, a frozen snapshot on demand."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CacheStats", "TierStats"]


@dataclass(frozen=True, slots=True)
class TierStats:
    """Counters of one tier, as seen by the cache.

    Attributes:
        name: The tier's label (``"memory"``, ``"redis"``).
        hits: Reads that found a fresh entry in this tier.
        misses: Reads that found nothing usable in this tier.
        errors: ``BackendError`` exceptions this tier raised (the cache degraded past them).
        decode_errors: Payloads the tier refused to decode (its own counter, 0 if
            the tier keeps none).
        circuit_state: The tier's circuit breaker state (``"closed"``, ``"open"``,
            ``"half_open"``) or ``None`` for a tier without one.
    """

    name: str
    hits: int
    misses: int
    errors: int
    decode_errors: int
    circuit_state: str | None


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of a cache's counters, returned by ``stats()``.

    Counters are plain integer increments, exact in single-threaded code; under
    heavy thread contention an increment may rarely be lost (they are for
    dashboards, not for accounting).

    Attributes:
        tiers: Per-tier counters, L1 first.
        loads: Loader calls that returned a value.
        load_errors: Loader calls that raised (the exception propagated).
        backend_errors: Sum of ``errors`` over the tiers.
        coalesced: Callers that joined another caller's lookup of the same key
            in this process (single-flight: one caller reads the lower tiers
            and loads, the others get its outcome).
        wait_timeouts: Single-flight waiters whose ``wait_timeout`` ran out
            (they loaded by themselves).
        early_refreshes: Refreshes started before expiry by XFetch (run in
            the background; the caller got the still-fresh value).
        background_refreshes: Refreshes started by a stale read
            (stale-while-revalidate; the caller got the stale value).
        stale_served: Lookups answered with a stale value while it was refreshed
            (callers coalesced on such a lookup count in ``coalesced``).
        stale_on_error: Loader failures answered with a stale value (stale-if-error).
        errors_served: Calls answered by re-raising a remembered loader
            exception (negative caching, ``error_ttl``).
        lock_waits: Loads that waited for another process holding the Redis lock.
        lock_timeouts: Lock waits that ran out (the caller loaded by itself; logged).
        lock_errors: Redis errors around the lock after which the caller loaded
            without it (logged).
        tag_misses: Tagged entries a lower tier refused because one of their
            tags was invalidated after they were computed.
        pending_repairs: Writes (deletes, invalidations) that could not reach a
            lower tier and wait to be applied before its next read.
    """

    tiers: tuple[TierStats, ...]
    loads: int
    load_errors: int
    backend_errors: int
    coalesced: int = 0
    wait_timeouts: int = 0
    early_refreshes: int = 0
    background_refreshes: int = 0
    stale_served: int = 0
    stale_on_error: int = 0
    errors_served: int = 0
    lock_waits: int = 0
    lock_timeouts: int = 0
    lock_errors: int = 0
    tag_misses: int = 0
    pending_repairs: int = 0

    @property
    def hits(self) -> int:
        """Hits summed over every tier."""
        return sum(t.hits for t in self.tiers)


class Counters:
    """Mutable counters the cache increments; read them through ``stats()``.

    The hit path of a ``cached`` function increments ``l1_hits`` itself
    (see :class:`~perfprim.cache.advanced.HitPath`).
    """

    __slots__ = ("errors", "hits", "l1_hits", "l1_misses", "load_errors", "loads", "misses")

    def __init__(self, lower_tiers: int) -> None:
        self.l1_hits = 0
        self.l1_misses = 0
        self.hits = [0] * lower_tiers
        self.misses = [0] * lower_tiers
        self.errors = [0] * (lower_tiers + 1)  # index 0 is L1 (counters on a memory-only cache)
        self.loads = 0
        self.load_errors = 0
