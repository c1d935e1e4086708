"""The I/O boundaries of the cache, as small protocols.

``TieredCache`` talks to its tiers only through :class:`Tier` and
``AsyncTieredCache`` through :class:`AsyncTier` (its L1 is always a
synchronous ``MemoryTier``: awaiting a dict lookup would only add cost). A
tier that can also host the cross-process load lock implements
:class:`LockingTier` / :class:`AsyncLockingTier` (the Redis tiers do).
Cross-process L1 invalidation goes through :class:`InvalidationBus`.

Keys reaching a tier are complete: the cache has already applied the
namespace, the generation and the hash tag. A Redis tier uses them verbatim.

Error contract: a tier raises :class:`perfprim.exceptions.BackendError` (or
its subclass ``CircuitOpenError``) for any failure of its backend, never a
driver exception, and returns ``None`` for a payload it cannot trust (foreign,
unsigned or corrupted bytes), counting it in ``decode_errors``.

Tags contract: an entry carries ``(tag counter key, version)`` stamps
(:attr:`Entry.tags`). A tier never returns a tagged entry whose stamps differ
from its own current counters (``read_counters``): the cache bumps those
counters to invalidate a tag, so one ``INCR`` per tag retires every entry
carrying it, in every process, whatever their number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from perfprim.cache._entry import Entry

__all__ = ["AsyncLockingTier", "AsyncTier", "InvalidationBus", "LockingTier", "Tier"]


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

    def read_counters(self, keys: Sequence[str]) -> list[int]:
        """Return the counters ``keys`` in order, 0 for an absent one (one round trip)."""
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

    async def read_counters(self, keys: Sequence[str]) -> list[int]:
        """Return the counters ``keys`` in order (one round trip)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class LockingTier(Tier, Protocol):
    """A :class:`Tier` that can host the cross-process load lock next to each key (``RedisTier``).

    The cache takes the lock through :meth:`load_lock`, and on a miss stores
    the loaded value and releases the lock with one script: it encodes the
    entry with :meth:`encode` and runs the script with :meth:`execute`, so
    the tier's breaker and error mapping apply.
    """

    decode_errors: int
    """Payloads the tier refused to decode (a read that met one must not be re-read)."""

    @property
    def circuit_state(self) -> str:
        """``"closed"`` while the lock may talk to the server."""
        ...

    def load_lock(self, *, ttl: float, wait_timeout: float, refresh_ttl: float) -> Any:
        """Build the lock (a ``RedisLock``) on the tier's connection."""
        ...

    def encode(self, entry: Entry, now: float) -> tuple[bytes, int | None]:
        """The bytes the tier stores for ``entry`` and their ``PX`` in ms."""
        ...

    def execute(self, fn: Callable[..., Any], *args: object) -> Any:
        """Run one driver call under the tier's breaker and error mapping."""
        ...


@runtime_checkable
class AsyncLockingTier(AsyncTier, Protocol):
    """The asyncio twin of :class:`LockingTier` (``AsyncRedisTier``)."""

    decode_errors: int

    @property
    def circuit_state(self) -> str:
        """``"closed"`` while the lock may talk to the server."""
        ...

    def load_lock(self, *, ttl: float, wait_timeout: float, refresh_ttl: float) -> Any:
        """Build the lock (an ``AsyncRedisLock``) on the tier's connection."""
        ...

    def encode(self, entry: Entry, now: float) -> tuple[bytes, int | None]:
        """The bytes the tier stores for ``entry`` and their ``PX`` in ms."""
        ...

    async def execute(self, fn: Callable[..., Any], *args: object) -> Any:
        """Run one driver call under the tier's breaker and error mapping."""
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
