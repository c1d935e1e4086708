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
        errors: ``BackendError``s this tier raised (the cache degraded past them).
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
    """

    tiers: tuple[TierStats, ...]
    loads: int
    load_errors: int
    backend_errors: int

    @property
    def hits(self) -> int:
        """Hits summed over every tier."""
        return sum(t.hits for t in self.tiers)


class Counters:
    """Mutable counters the caches increment (private: read them through ``stats()``)."""

    __slots__ = ("errors", "hits", "l1_hits", "l1_misses", "load_errors", "loads", "misses")

    def __init__(self, lower_tiers: int) -> None:
        self.l1_hits = 0
        self.l1_misses = 0
        self.hits = [0] * lower_tiers
        self.misses = [0] * lower_tiers
        self.errors = [0] * (lower_tiers + 1)  # index 0 is L1 (counters on a memory-only cache)
        self.loads = 0
        self.load_errors = 0
