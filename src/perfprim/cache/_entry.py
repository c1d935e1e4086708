"""What a cache tier stores for one key: the value plus what freshness decisions need."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Entry"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached value with its timing metadata.

    Times are wall-clock seconds (``time.time()`` scale, injectable in the
    cache) because entries are shared across processes through Redis.

    Attributes:
        value: The cached value; ``None`` is a value like any other.
        expires_at: When the value stops being fresh.
        delta: How long computing the value took, in seconds (XFetch's delta,
            Vattani et al., VLDB 2015); ``0.0`` when unknown (a plain ``set``).
        stale_until: Until when the value may still be served stale
            (stale-while-revalidate, stale-if-error); equal to ``expires_at``
            when no stale window is configured. Tiers keep the entry until
            then, never longer.
        tags: ``(tag counter key, version)`` pairs: the versions of the
            entry's tags when its value was computed. A tier never returns an
            entry one of whose tags has since been invalidated (its counter
            moved on); ``()`` for an untagged entry.
    """

    value: object
    expires_at: float
    delta: float
    stale_until: float
    tags: tuple[tuple[str, int], ...] = ()

    def remaining(self, now: float) -> float:
        """Seconds of freshness left at ``now`` (negative once expired)."""
        return self.expires_at - now
