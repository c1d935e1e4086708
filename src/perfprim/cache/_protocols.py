"""The I/O boundaries of the cache, as small protocols.

``TieredCache`` talks to its tiers only through :class:`Tier` and
``AsyncTieredCache`` through :class:`AsyncTier` (its L1 is always a
synchronous :class:`Tier`, an in-process ``MemoryTier``: awaiting a dict
lookup would only add cost). Cross-process L1 invalidation goes through
:class:`InvalidationBus`.

Keys reaching a tier are complete: the cache has already applied the
namespace, the generation and the hash tag. A Redis tier uses them verbatim.

Error contract: a tier raises :class:`perfprim.exceptions.BackendError` (or
its subclass ``CircuitOpenError``) for any failure of its backend, never a
driver exception, and returns ``None`` for a payload it cannot trust (foreign,
unsigned or corrupted bytes), counting it in ``decode_errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from perfprim.cache._entry import Entry

__all__ = ["AsyncTier", "InvalidationBus", "Tier"]


@runtime_checkable
class Tier(Protocol):
    """A synchronous cache tier (``MemoryTier``, ``RedisTier``)."""

    name: str
    """Short label used in stats: ``"memory"``, ``"redis"``."""

    def get(self, key: str) -> Entry | None:
        """Return the entry stored under ``key``, or ``None``."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """Return the entries for ``keys``, in order (one round trip per slot group)."""
        ...

    def set(self, key: str, entry: Entry, *, now: float) -> None:
        """Store ``entry``; the tier keeps it until ``entry.stale_until`` (``now`` is the clock)."""
        ...

    def set_many(self, entries: Mapping[str, Entry], *, now: float) -> None:
        """Store several entries (one round trip per slot group)."""
        ...

    def delete(self, keys: Sequence[str]) -> None:
        """Remove ``keys`` (missing keys are ignored)."""
        ...

    def incr(self, key: str) -> int:
        """Atomically increment the integer counter ``key`` and return the new value."""
        ...

    def read_counter(self, key: str) -> int:
        """Return the integer counter ``key`` (0 if absent)."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...


@runtime_checkable
class AsyncTier(Protocol):
    """An asyncio cache tier (``AsyncRedisTier``); same contract as :class:`Tier`."""

    name: str

    async def get(self, key: str) -> Entry | None:
        """Return the entry stored under ``key``, or ``None``."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """Return the entries for ``keys``, in order."""
        ...

    async def set(self, key: str, entry: Entry, *, now: float) -> None:
        """Store ``entry`` until ``entry.stale_until``."""
        ...

    async def set_many(self, entries: Mapping[str, Entry], *, now: float) -> None:
        """Store several entries."""
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove ``keys``."""
        ...

    async def incr(self, key: str) -> int:
        """Atomically increment the counter ``key``."""
        ...

    async def read_counter(self, key: str) -> int:
        """Return the counter ``key`` (0 if absent)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class InvalidationBus(Protocol):
    """Tells every process sharing an L2 to drop its stale L1 copies.

    The bus runs its own listener (a daemon thread), so it serves sync and
    async caches alike. Messages a process publishes are not delivered back
    to that same process.
    """

    def publish(self, keys: Sequence[str]) -> None:
        """Announce that ``keys`` changed; an empty sequence means "flush all".

        Never blocks on the network: the message is queued to the bus's own
        thread, so sync and async callers alike pay microseconds.
        """
        ...

    def start(
        self,
        on_keys: Callable[[Sequence[str]], None],
        on_flush: Callable[[], None],
    ) -> None:
        """Start listening: ``on_keys`` for each message, ``on_flush`` for "flush all".

        ``on_flush`` is also called whenever the subscription was (re)connected
        after a gap, because messages sent during the gap are lost.
        """
        ...

    def close(self) -> None:
        """Stop listening and release the connection."""
        ...
