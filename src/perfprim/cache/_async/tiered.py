"""``AsyncTieredCache``: cache-aside over an in-process L1 and lower tiers.

The one hand-written source of the tiered cache: ``scripts/unasync.py``
generates ``TieredCache`` (:mod:`perfprim.cache._sync.tiered`) from it. The
decisions are pure functions in :mod:`perfprim.cache._decisions`; the state
without I/O is in :class:`~perfprim.cache._core.CacheCore`; this module is
the I/O around them.
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from perfprim.cache._concurrency import AsyncBackground, AsyncLocalCounters
from perfprim.cache._core import (
    DEFAULT_GENERATION_CHECK_INTERVAL,
    DEFAULT_MAX_BODY_LENGTH,
    CacheCore,
    HitPath,
    KeyScope,
    stop_threads,
)
from perfprim.cache._decisions import (
    entry_from_load,
    entry_from_set,
    is_fresh,
    loaded_ttl,
    lock_usable,
    read_action,
    serve_while_refreshing,
    stale_fallback,
    stamp_tags,
)
from perfprim.cache._decorators import AsyncCachedFunction, KeyFunction, TagsOf, make_cached
from perfprim.cache._entry import Entry
from perfprim.cache._fork import rearm_after_fork
from perfprim.cache._lock_common import MISSING, Lease
from perfprim.cache._memory import MemoryTier, Record
from perfprim.cache._protocols import AsyncLockingTier, AsyncTier, InvalidationBus
from perfprim.cache._singleflight import AsyncSingleFlight
from perfprim.cache._stampede import StampedeOptions
from perfprim.cache._xfetch import Decision, before_window
from perfprim.exceptions import BackendError

__all__ = ["AsyncTieredCache"]

T = TypeVar("T")
P = ParamSpec("P")
logger = logging.getLogger("perfprim.cache")
_FRESH = Decision.FRESH
_REFRESH_EARLY = Decision.REFRESH_EARLY
_STALE = Decision.STALE
_IS_ASYNC = AsyncBackground.is_async


class AsyncTieredCache(CacheCore):
    """Cache-aside over tiers, L1 first: memory only, or memory in front of Redis.

    A read returns from the first tier that holds a fresh entry and back-fills
    the tiers above it (the L1 copy lives ``min(L1 ttl, remaining life)``); a
    miss in every tier runs the loader once per key (single-flight in this
    process, the Redis lock across processes), measures how long it took, and
    writes the entry to the lowest tier first, then up to L1. The L1 hit path
    of ``get_or_load`` and of a ``cached`` function is one clock read, one
    ``dict.get``, one comparison and one counter increment.

    Sync and async code get the same cache from one source: same arguments,
    same methods, same behaviour (``docs/cache.md``). The cache is a context
    manager that closes what it owns; ``close()`` may be called more than
    once, and a cache dropped without it still stops its threads.

    Args:
        *tiers: The tiers, fastest first. A leading :class:`MemoryTier` is the
            L1 whose hits take the fast path; the others are tiers of this
            cache's kind (``AsyncRedisTier``).
        ttl: Default freshness lifetime in seconds (or ``timedelta``).
        namespace: Prefix of every key; caches with different namespaces
            never see each other's entries.
        stampede: A :class:`StampedeOptions` (single-flight, the Redis lock,
            XFetch early refresh, stale serving, negative caching); the
            defaults protect without tuning.
        clock: Wall clock in seconds; injectable for tests. Entry expiry times
            are on this clock (shared across processes through Redis).
        invalidation: An ``InvalidationBus`` that tells other processes to
            drop their L1 copies. By default the cache asks a lower tier for
            one (``tier.invalidation_bus()``) when ``invalidate_l1`` is on.
        invalidate_l1: Start the lower tier's invalidation bus automatically.
            Default: on when there is a lower tier (a cache without an L1
            still publishes, so the other processes' L1s stay coherent, and
            listens for their generation bumps).
        raise_on_backend_error: Re-raise a tier's ``BackendError`` to the
            caller. By default it is counted in ``stats()``, logged, and the
            cache continues with the other tiers and the loader.
        generation_check_interval: Seconds between re-reads of the cached
            generation counters, the fallback by which a ``clear()`` or
            ``invalidate_all()`` in another process is seen when its bus
            message was lost.
        max_key_length: Longest key body kept verbatim; longer ones are hashed.

    Raises:
        ConfigurationError: On an invalid option, or a tier argument that is
            not a tier instance of this cache's kind (the message says what
            to pass).
    """

    def __init__(
        self,
        *tiers: MemoryTier | AsyncTier,
        ttl: float | timedelta = 300.0,
        namespace: str = "perfprim",
        stampede: StampedeOptions | None = None,
        clock: Callable[[], float] = time.time,
        invalidation: InvalidationBus | None = None,
        invalidate_l1: bool | None = None,
        raise_on_backend_error: bool = False,
        generation_check_interval: float | timedelta = DEFAULT_GENERATION_CHECK_INTERVAL,
        max_key_length: int = DEFAULT_MAX_BODY_LENGTH,
    ) -> None:
        super().__init__(
            tiers,
            is_async=_IS_ASYNC,
            ttl=ttl,
            namespace=namespace,
            stampede=stampede,
            clock=clock,
            invalidation=invalidation,
            invalidate_l1=invalidate_l1,
            raise_on_backend_error=raise_on_backend_error,
            generation_check_interval=generation_check_interval,
            max_key_length=max_key_length,
        )
        opts = self._opts
        if not self._lower:
            self._counter_tier = AsyncLocalCounters(self._l1)  # type: ignore[arg-type]
        self._flight: AsyncSingleFlight[str] | None = (
            AsyncSingleFlight() if opts.single_flight else None
        )
        lock_tier: Any = None
        if opts.lock:
            lock_tier = next((t for t in self._lower if isinstance(t, AsyncLockingTier)), None)
        self._lock_tier = lock_tier
        self._lock_index = 1 + self._lower.index(lock_tier) if lock_tier is not None else 0
        self._dlock: Any = None
        if lock_tier is not None:
            self._dlock = lock_tier.load_lock(
                ttl=opts.lock_ttl,
                wait_timeout=opts.lock_wait_timeout,
                refresh_ttl=opts.refresh_ttl,
            )
        # The lock tier is the only lower tier: a locked miss stores the value and
        # releases the lock in one script (GET, acquire, store+release).
        self._fused = lock_tier is not None and len(self._lower) == 1
        self._background = AsyncBackground(opts.refresh_workers)
        self._stop_threads = weakref.finalize(
            self,
            stop_threads,
            self._bus if self._owns_bus else None,
            self._dlock,
            self._background,
        )
        rearm_after_fork(self)

    def __repr__(self) -> str:
        tiers = [self._l1, *self._lower] if self._l1 is not None else list(self._lower)
        return (
            f"{type(self).__name__}({', '.join(map(repr, tiers))}, namespace={self._namespace!r})"
        )

    async def __aenter__(self) -> AsyncTieredCache:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def hit_path(self) -> HitPath:
        """The explicit handle ``cached`` builds its wrappers on (see :class:`HitPath`)."""
        return HitPath(
            clock=self._clock,
            records=self._records,
            counters=self._counters,
            max_key_length=self._max_len,
            scope=self._function_scope,
            refresh=self._refresh,
            miss=self._miss,
            delete=self._delete_full,
            bump=self._bump,
            store=self._store_full,
            is_async=_IS_ASYNC,
        )

    def _after_fork(self) -> None:
        super()._after_fork()
        self._background.after_fork()
        if self._flight is not None:
            self._flight.after_fork()
        for tier in self._lower:
            rebuild = getattr(tier, "after_fork", None)  # optional, documented on the tiers
            if callable(rebuild):
                rebuild()
        if self._dlock is not None:
            self._dlock.after_fork(self._lock_tier.client)

    # -- generations and repairs -----------------------------------------------------------

    async def _refresh(self, scope: KeyScope, now: float) -> None:
        parent = scope.parent
        if parent is not None and now >= parent.check_at:
            await self._refresh(parent, now)
        self._apply_generation(scope, await self._read_counter(scope.counter_key), now)

    async def _read_counter(self, key: str) -> int | None:
        if self._pending and not await self._repair():
            return None
        try:
            value = await self._counter_tier.read_counter(key)
        except BackendError as exc:
            self._tier_failed(len(self._lower), exc, "read_counter")
            return None
        self._tier_ok(len(self._lower))
        return int(value)

    async def _bump(self, scope: KeyScope) -> None:
        value: int | None = None
        if not self._pending or await self._repair():
            try:
                value = int(await self._counter_tier.incr(scope.counter_key))
            except BackendError as exc:
                self._tier_failed(len(self._lower), exc, "incr")
        self._after_bump(scope, value, self._clock())

    async def _repair(self) -> bool:
        """Apply the writes that waited for the lower tiers; ``False`` while they cannot be."""
        deletes, bumps = self._take_pending()
        index = len(self._lower)
        try:
            if deletes:
                for index in range(len(self._lower), 0, -1):
                    await self._lower[index - 1].delete(deletes)
            index = len(self._lower)
            for key in bumps:
                await self._counter_tier.incr(key)
        except BackendError as exc:
            self._tier_failed(index, exc, "repair")
            return False
        self._pending_done(deletes, bumps)
        return True

    def _repair_soon(self) -> None:
        if not self._closed:
            self._background.detach(self._repair_job)

    async def _repair_job(self) -> None:
        """Apply the pending writes as soon as the lower tiers answer, even if nobody reads.

        Capped exponential backoff (0.05 s to 2 s), bounded in tries; a read
        of the lower tiers applies them too, whichever comes first.
        """
        delay = 0.05
        for _ in range(10_000):  # bounded: about 5.5 hours at the 2 s cap
            if not await self._background.pause(delay) or self._closed or not self._pending:
                return
            try:
                if await self._repair():
                    return
            except BackendError:  # raise_on_backend_error: nobody to raise to here
                pass
            delay = min(delay * 2.0, 2.0)

    async def _full_key(self, key: str, now: float) -> str:
        scope = self._ns
        if now >= scope.check_at:
            await self._refresh(scope, now)
        try:
            fk = scope.full_keys.get(key)
        except TypeError:  # an unhashable key: let _body() say what a key must be
            fk = None
        return fk if fk is not None else self._remember_key(scope, key)

    async def _stamp(self, tags: Sequence[str] | None) -> tuple[tuple[str, int], ...]:
        """The stamps of ``tags``: their counters now, read before the value is computed."""
        keys = self._tag_keys(tags)
        if not keys:
            return ()
        versions: list[int] | None = None
        if not self._pending or await self._repair():
            try:
                versions = await self._counter_tier.read_counters(keys)
            except BackendError as exc:
                self._tier_failed(len(self._lower), exc, "read_counters")
        return stamp_tags(keys, versions)

    # -- the flow ----------------------------------------------------------------------------

    async def _find(self, fk: str, now: float, stale: Entry | None) -> Entry | None:
        """Read the tiers below L1; back-fill above a fresh hit; else the first stale entry."""
        l1 = self._l1
        counters = self._counters
        if l1 is not None:
            counters.l1_misses += 1
        if self._pending and not await self._repair():
            # They may still hold values replaced or deleted during their outage.
            return stale
        failing = self._failing
        for i, tier in enumerate(self._lower):
            try:
                entry: Entry | None = await tier.get(fk)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "get")
                continue
            if failing[i + 1]:
                self._tier_ok(i + 1)
            if entry is not None and now < entry.expires_at:  # is_fresh, inlined
                counters.hits[i] += 1
                if i or l1 is not None:
                    await self._fill(fk, entry, now, above=i)
                elif self._sp.errors:  # _fill's only work with nothing above this tier
                    self._sp.forget_errors([fk])
                return entry
            counters.misses[i] += 1
            if stale is None:
                stale = entry
        return stale

    async def _fill(
        self,
        fk: str,
        entry: Entry,
        now: float,
        *,
        above: int,
        after_read: bool = False,
        write: bool = False,
        tag_epoch: int | None = None,
    ) -> None:
        """Write ``entry`` to the lower tiers ``above - 1 .. 0``, then to L1.

        ``after_read``: skip a tier whose read of this key just failed, so a hung
        server costs a load one timeout, not two (the read's and the write's).
        ``write``: an application write (``set``): a tier that misses it may
        still hold the old value, which must be deleted before it is read again.
        ``tag_epoch``: L1's tag epoch when the value's computation started
        (see :meth:`MemoryTier.set`).
        """
        for i in range(above - 1, -1, -1):
            if after_read and self._failing[i + 1]:
                continue
            try:
                await self._lower[i].set(fk, entry, now=now)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "set")
                if write:
                    self._add_pending(deletes=[fk])
        if self._l1 is not None:
            self._l1.set(fk, entry, now=now, tag_epoch=tag_epoch)
        self._sp.forget_errors([fk])

    async def _miss(
        self,
        fk: str,
        now: float,
        record: Record | None,
        loader: Callable[[], Awaitable[Any]],
        ttl: Any,
        *,
        tags: Sequence[str] | None = None,
    ) -> Any:
        """Everything after the L1 fast path: XFetch, stale serving, lower tiers, the loader."""
        if self._sp.errors:
            error = self._sp.remembered_error(fk, now)
            if error is not None:
                raise error
        if record is None:
            pass
        elif now < record[4]:
            # The L1 copy is valid: only XFetch's window sent us here, no lower tier to read.
            self._counters.l1_hits += 1
            entry = record[2]
            if read_action(entry, now, self._opts, self._sp.rand) is _REFRESH_EARLY:
                self._start_refresh(fk, loader, ttl, tags, entry, early=True)
            return entry.value
        elif fk in self._sp.refreshing:
            # This process is refreshing the key: serve the copy while it may be served.
            entry = record[2]
            if serve_while_refreshing(entry, now, self._opts):
                if now >= entry.expires_at:
                    self._sp.count_stale(on_error=False)
                return entry.value
        flight = self._flight
        if flight is None:
            return await self._resolve(fk, loader, ttl, tags)
        # One caller per key reads the lower tiers and loads; the others wait for it.
        return await flight.do(
            fk, lambda: self._resolve(fk, loader, ttl, tags), timeout=self._opts.wait_timeout
        )

    async def _resolve(
        self,
        fk: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: Any,
        tags: Sequence[str] | None,
    ) -> Any:
        """Lower tiers, then the decision, then (on a miss) the locked load."""
        now = self._clock()
        record = self._records.get(fk)
        if record is not None and now < record[0]:
            return record[1]  # a flight that just ended filled L1
        # The L1 copy is the fallback while it may be kept (``l1_keep_until``): past an L1
        # TTL that cut it short it may be outdated, and must not stand in for the lower
        # tiers when they miss or cannot be read (the L1 TTL bounds staleness). Without
        # lower tiers the copy is the entry itself, kept until the entry's own expiry.
        kept = None
        if record is not None and (now < record[3] or not self._lower):
            kept = record[2]
        counted = self._lock_tier
        if counted is None:
            entry = await self._find(fk, now, kept)
            reread = True
        else:
            before = counted.decode_errors
            entry = await self._find(fk, now, kept)
            # Bytes under the key that the tier could not decode: the lock must not re-read.
            reread = counted.decode_errors == before
        if entry is not None and before_window(entry, now, self._opts.beta):
            return entry.value  # FRESH without a draw
        return await self._act(fk, now, entry, loader, ttl, tags=tags, reread=reread)

    async def _act(
        self,
        fk: str,
        now: float,
        entry: Entry | None,
        loader: Callable[[], Awaitable[Any]],
        ttl: Any,
        *,
        tags: Sequence[str] | None,
        reread: bool = True,
    ) -> Any:
        """Serve, refresh in the background, or load under the lock, as the entry decides."""
        action = read_action(entry, now, self._opts, self._sp.rand)
        if action is _FRESH:
            return entry.value  # type: ignore[union-attr]
        if action is _REFRESH_EARLY:
            self._start_refresh(fk, loader, ttl, tags, entry, early=True)
            return entry.value  # type: ignore[union-attr]
        if action is _STALE:
            self._sp.count_stale(on_error=False)
            self._start_refresh(fk, loader, ttl, tags, entry, early=False)
            return entry.value  # type: ignore[union-attr]
        return await self._load_locked(fk, loader, self._ttl_of(ttl), entry, tags, reread=reread)

    async def _load_locked(
        self,
        fk: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float,
        stale: Entry | None,
        tags: Sequence[str] | None,
        *,
        reread: bool = True,
    ) -> Any:
        """Load under the Redis lock when there is one (one process loads a key at a time)."""
        lock = self._dlock
        if lock is None or not lock_usable(
            self._lock_tier.circuit_state, self._failing[self._lock_index]
        ):
            return await self._load_or_fallback(fk, loader, ttl, stale, tags)
        if self._fused:
            # Take the lock here, so that the load can store the value and release the
            # lock in one script (a miss: GET, acquire, store+release).
            try:
                lease = await lock.acquire(fk)
            except BackendError as exc:
                lock.record_fail_open(fk, f"acquire failed ({exc})")
                return await self._load_or_fallback(fk, loader, ttl, stale, tags)
            if lease is not None:
                if lease.value_present and reread:
                    now = self._clock()
                    entry = await self._find(fk, now, None)
                    if entry is not None and now < entry.expires_at:
                        await self._release(lease)
                        return entry.value
                return await self._load_or_fallback(fk, loader, ttl, stale, tags, lease=lease)

        async def read() -> Any:
            now = self._clock()
            entry = await self._find(fk, now, None)
            return entry.value if entry is not None and now < entry.expires_at else MISSING

        async def load() -> Any:
            return await self._load_or_fallback(fk, loader, ttl, stale, tags)

        return await lock.run(fk, read=read, load=load, reread=reread)

    async def _load_or_fallback(
        self,
        fk: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float,
        stale: Entry | None,
        tags: Sequence[str] | None,
        *,
        lease: Lease | None = None,
    ) -> Any:
        """Load; on a loader exception serve ``stale`` (stale-if-error) or remember it."""
        try:
            return await self._load(fk, loader, ttl, tags, lease=lease)
        except Exception as exc:
            now = self._clock()
            if stale_fallback(stale, now, self._opts):
                self._sp.count_stale(on_error=True)
                return stale.value  # type: ignore[union-attr]
            self._sp.remember_error(fk, exc, now)
            raise

    def _start_refresh(
        self,
        fk: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: Any,
        tags: Sequence[str] | None,
        entry: Entry | None,
        *,
        early: bool,
    ) -> None:
        """Refresh ``fk`` in the background, once per process (and per cluster)."""
        if self._closed or not self._sp.claim_refresh(fk):
            return
        if not self._background.spawn(
            self._refresh_job, fk, loader, ttl, tags, entry=entry, early=early
        ):
            self._sp.end_refresh(fk)

    async def _refresh_job(
        self,
        fk: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: Any,
        tags: Sequence[str] | None,
        *,
        entry: Entry | None,
        early: bool,
    ) -> None:
        try:
            lock = self._dlock
            if lock is not None and lock_usable(self._lock_tier.circuit_state, False):
                try:
                    if not await lock.try_refresh(fk):
                        return  # another process refreshes it
                except BackendError:
                    pass  # fail open: refresh from this process
            self._sp.count_refresh(early=early)
            # Not through the single-flight: claim_refresh already made it one per process,
            # and the foreground readers are served the current value meanwhile.
            await self._load_or_fallback(fk, loader, self._ttl_of(ttl), entry, tags)
        except Exception:  # counted in load_errors; nobody waits for a background refresh
            logger.debug("background refresh of %r failed", fk, exc_info=True)
        finally:
            self._sp.end_refresh(fk)

    async def _drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for the background refreshes running now (for tests and close)."""
        await self._background.drain(timeout)

    async def _load(
        self,
        fk: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float,
        tags: Sequence[str] | None,
        *,
        lease: Lease | None = None,
    ) -> Any:
        """Run the loader and store its value in every tier (the single place loads happen).

        With ``lease`` (the lock tier is the only lower tier, its lock held)
        the value is stored and the lock released by one script.
        """
        # A tag invalidated while the loader runs: the lower tiers refuse the entry by its
        # stamps, but the L1 hit path does not look at them: L1 refuses it by this epoch
        # (read first: an invalidation between the two reads must be caught by one of them).
        epoch = self._l1.tag_epoch if tags and self._l1 is not None else None
        try:
            stamps = await self._stamp(tags) if tags else ()
        except BaseException:
            if lease is not None:
                await self._release(lease)
            raise
        start = self._clock()
        try:
            value = await loader()
        except Exception:  # a cancellation is not a load error
            self._counters.load_errors += 1
            if lease is not None:
                await self._release(lease)
            raise
        except BaseException:
            if lease is not None:
                await self._release(lease)
            raise
        now = self._clock()
        self._counters.loads += 1
        keep = loaded_ttl(value, ttl, self._opts)
        if keep is None:
            if lease is not None:
                await self._release(lease)
            return value
        entry = entry_from_load(
            value,
            now=now,
            ttl=keep,
            delta=now - start,
            stale_ttl=self._opts.keep_stale,
            tags=stamps,
        )
        if lease is None:
            await self._fill(
                fk, entry, now, above=len(self._lower), after_read=True, tag_epoch=epoch
            )
            return value
        tier, lock = self._lock_tier, self._dlock
        try:
            data, px = tier.encode(entry, now)
        except BaseException:  # SerializationError: nothing is written
            await self._release(lease)
            raise
        script, keys, args = lock.set_release_call(lease, data, px)
        try:
            released = bool(await tier.execute(script, keys, args))
        except BackendError as exc:
            lock.release_later(lease)  # unknown: released at the lock's next call
            self._tier_failed(1, exc, "set")
        else:
            lock.settled(lease, released)
        if self._l1 is not None:
            self._l1.set(fk, entry, now=now, tag_epoch=epoch)
        self._sp.forget_errors([fk])
        return value

    async def _release(self, lease: Lease) -> None:
        """Release a lock whose load produced nothing to store (error, uncached None)."""
        with contextlib.suppress(BackendError):
            await self._dlock.release(lease)

    # -- public API ------------------------------------------------------------------------

    async def get(self, key: str, default: object = None) -> object:
        """Return the value cached under ``key``, or ``default`` if no tier has it fresh.

        Args:
            key: The key (a str; the namespace and generation are added).
            default: Returned on a miss; a cached ``None`` is returned as ``None``.

        Returns:
            The cached value or ``default``.
        """
        now = self._clock()
        fk = await self._full_key(key, now)
        record = self._records.get(fk)
        if record is not None and now < record[4]:
            self._counters.l1_hits += 1
            return record[1]
        entry = await self._find(fk, now, None)
        if entry is None or not is_fresh(entry, now):
            return default
        return entry.value

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        ttl: float | timedelta | None = None,
        *,
        tags: Sequence[str] | None = None,
    ) -> T:
        """Return the cached value of ``key``, or run ``loader()`` and cache its result.

        Args:
            key: The key.
            loader: Zero-argument callable computing the value (``async def``
                for ``AsyncTieredCache``); its exceptions propagate and
                nothing is cached.
            ttl: Freshness lifetime of a loaded value; default: the cache's.
            tags: Tags of a loaded value: :meth:`invalidate_tags` with any of
                them retires it everywhere.

        Returns:
            The cached or freshly loaded value (``None`` included).
        """
        now = self._clock()
        scope = self._ns
        if now >= scope.check_at:
            await self._refresh(scope, now)
        try:
            fk = scope.full_keys.get(key)
        except TypeError:  # an unhashable key: let _body() say what a key must be
            fk = None
        if fk is None:
            fk = self._remember_key(scope, key)
        record = self._records.get(fk)
        if record is not None and now < record[0]:
            self._counters.l1_hits += 1
            return record[1]  # type: ignore[return-value]
        return await self._miss(fk, now, record, loader, ttl, tags=tags)  # type: ignore[no-any-return]

    async def load_once(
        self,
        key: str,
        load: Callable[[], Awaitable[T]],
        *,
        read: Callable[[], Awaitable[Any]],
    ) -> T:
        """Run ``load()`` in one process at a time for ``key``: the cache's stampede lock alone.

        For callers that store what they load themselves, such as the HTTP
        response cache (whose lifetime and tags are known only after the
        load). With a Redis tier and ``StampedeOptions(lock=True)`` (the
        default), ``load()`` runs under the cross-process lock of ``key``; a
        caller that waited for another process's load calls ``read()``
        instead, which returns what that load stored, or
        :data:`~perfprim.cache.advanced.MISSING` to load after all. Without a
        lock tier, or while Redis fails, ``load()`` runs at once (fail open).
        It does not coalesce callers within the process: put a
        :class:`~perfprim.cache.advanced.AsyncSingleFlight` in front.

        Args:
            key: The key the load will store (the lock is taken on it).
            load: Computes and stores the value; returns it.
            read: Re-reads the value after another process's load.

        Returns:
            What ``load()`` or ``read()`` returned.
        """
        lock = self._dlock
        if lock is None or not lock_usable(
            self._lock_tier.circuit_state, self._failing[self._lock_index]
        ):
            return await load()
        fk = await self._full_key(key, self._clock())
        return await lock.run(fk, read=read, load=load)  # type: ignore[no-any-return]

    async def set(
        self,
        key: str,
        value: object,
        ttl: float | timedelta | None = None,
        *,
        tags: Sequence[str] | None = None,
    ) -> None:
        """Store ``value`` under ``key`` in every tier and invalidate other processes' L1.

        Args:
            key: The key.
            value: Any value the lower tiers' serializer accepts (``None`` too).
            ttl: Freshness lifetime; default: the cache's.
            tags: Tags of the value: :meth:`invalidate_tags` with any of them
                retires it everywhere.
        """
        now = self._clock()
        await self._store_full(await self._full_key(key, now), value, ttl, tags)

    async def _store_full(
        self,
        fk: str,
        value: object,
        ttl: float | timedelta | None,
        tags: Sequence[str] | None,
    ) -> None:
        seconds = self._ttl_of(ttl)
        stamps = await self._stamp(tags) if tags else ()
        now = self._clock()
        entry = entry_from_set(
            value, now=now, ttl=seconds, stale_ttl=self._opts.keep_stale, tags=stamps
        )
        await self._fill(fk, entry, now, above=len(self._lower), write=True)
        self._publish([fk])

    async def delete(self, key: str) -> None:
        """Remove ``key`` from every tier and from other processes' L1."""
        await self._delete_full([await self._full_key(key, self._clock())])

    async def _delete_full(self, fks: list[str]) -> None:
        if self._pending and not await self._repair():
            self._add_pending(deletes=fks)
        else:
            for i in range(len(self._lower) - 1, -1, -1):
                try:
                    await self._lower[i].delete(fks)
                except BackendError as exc:
                    self._tier_failed(i + 1, exc, "delete")
                    self._add_pending(deletes=fks)
        if self._l1 is not None:
            self._l1.delete(fks)
        self._sp.forget_errors(fks)
        self._publish(fks)

    async def invalidate_tags(self, *tags: str) -> None:
        """Retire every entry stored with any of ``tags``, in every tier and every process.

        One ``INCR`` per tag on the counter tier (Redis when present), whatever
        the number of keys: the lower tiers refuse an entry whose tag counter
        moved since its value was computed. This process's L1 drops its tagged
        copies at once, the other processes' on the bus message (within the
        L1 TTL when the bus is down). If Redis cannot be reached the bump is
        remembered and applied before the next read of Redis.

        Args:
            *tags: The tags (non-empty strs).

        Raises:
            ConfigurationError: If a tag is not a non-empty str.
        """
        keys = self._tag_keys(list(tags))
        if not keys:
            return
        self._tag_invalidated(keys)
        if self._pending and not await self._repair():
            self._add_pending(bumps=keys)
        else:
            for i, key in enumerate(keys):
                try:
                    await self._counter_tier.incr(key)
                except BackendError as exc:
                    self._tier_failed(len(self._lower), exc, "incr")
                    self._add_pending(bumps=keys[i:])
                    break
        self._publish(keys)

    async def get_many(self, keys: Iterable[str]) -> dict[str, object]:
        """Return ``{key: value}`` for the keys some tier holds fresh (misses are absent).

        One call per lower tier for all the keys L1 missed (one round trip, or
        one per slot group on a cluster).
        """
        now = self._clock()
        wanted = {await self._full_key(key, now): key for key in keys}
        found: dict[str, object] = {}
        missing: list[str] = []
        for fk, key in wanted.items():
            record = self._records.get(fk)
            if record is not None and now < record[4]:
                self._counters.l1_hits += 1
                found[key] = record[1]
            else:
                missing.append(fk)
        if self._l1 is not None:
            self._counters.l1_misses += len(missing)
        if missing and self._pending and not await self._repair():
            return found
        for i, tier in enumerate(self._lower):
            if not missing:
                break
            try:
                entries = await tier.get_many(missing)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "get_many")
                continue
            self._tier_ok(i + 1)
            hits: dict[str, Entry] = {}
            still: list[str] = []
            for fk, entry in zip(missing, entries, strict=True):
                if entry is not None and is_fresh(entry, now):
                    hits[fk] = entry
                    found[wanted[fk]] = entry.value
                else:
                    still.append(fk)
            self._counters.hits[i] += len(hits)
            self._counters.misses[i] += len(still)
            if hits:
                await self._fill_many(hits, now, above=i)
            missing = still
        return found

    async def _fill_many(
        self, entries: Mapping[str, Entry], now: float, *, above: int, write: bool = False
    ) -> None:
        for i in range(above - 1, -1, -1):
            try:
                await self._lower[i].set_many(entries, now=now)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "set_many")
                if write:
                    self._add_pending(deletes=list(entries))
        if self._l1 is not None:
            self._l1.set_many(entries, now=now)

    async def set_many(
        self,
        mapping: Mapping[str, object],
        ttl: float | timedelta | None = None,
        *,
        tags: Sequence[str] | None = None,
    ) -> None:
        """Store every ``key: value`` of ``mapping`` (one call per tier) and invalidate L1s.

        Args:
            mapping: Keys and values.
            ttl: Freshness lifetime; default: the cache's.
            tags: Tags of every value stored.
        """
        seconds = self._ttl_of(ttl)
        stamps = await self._stamp(tags) if tags else ()
        now = self._clock()
        entries = {
            await self._full_key(key, now): entry_from_set(
                value, now=now, ttl=seconds, stale_ttl=self._opts.keep_stale, tags=stamps
            )
            for key, value in mapping.items()
        }
        await self._fill_many(entries, now, above=len(self._lower), write=True)
        self._publish(list(entries))

    async def clear(self) -> None:
        """Invalidate every key of the namespace: one ``INCR`` of its generation.

        Nothing is scanned or deleted in the lower tiers: the old keys become
        unreachable and expire on their own. This process's L1 is cleared and
        other processes are told to clear theirs.
        """
        await self._bump(self._ns)

    def cached(
        self,
        *,
        ttl: float | timedelta | None = None,
        key: KeyFunction | None = None,
        noself: bool = False,
        ignore: Iterable[str] = (),
        tags: TagsOf = None,
    ) -> Callable[[Callable[P, Awaitable[T]]], AsyncCachedFunction[P, T]]:
        """Decorate a function so that its results are cached by arguments.

        Args:
            ttl: Freshness lifetime; default: the cache's.
            key: Optional callable receiving the call's arguments and returning
                the key body (a str); by default the body is built from the
                function's ``module.qualname`` and its encoded arguments.
            noself: Leave out the first argument (``self`` or ``cls``) of a
                method: all instances share the cache entries.
            ignore: Names of parameters left out of the key (a request object,
                a database session); checked against the signature now.
            tags: The tags of each result: a list of str, or a callable
                receiving the call's arguments and returning one.

        Returns:
            A decorator; the decorated function gains ``invalidate(*args,
            **kwargs)``, ``invalidate_all()`` and ``set(value, *args,
            **kwargs)`` (write-through), of the same kind as the function.

        Raises:
            ConfigurationError: If the function is a generator function or not
                of this cache's kind (``async def`` for ``AsyncTieredCache``),
                or if ``ignore`` names a parameter the function does not have.
        """
        seconds = None if ttl is None else self._ttl_of(ttl)

        def decorate(fn: Callable[P, Awaitable[T]]) -> AsyncCachedFunction[P, T]:
            return make_cached(  # type: ignore[no-any-return]
                self.hit_path(), fn, ttl=seconds, key=key, noself=noself, ignore=ignore, tags=tags
            )

        return decorate

    async def close(self) -> None:
        """Stop what this cache started (bus, lock watchdog, refreshes) and close its tiers.

        Writes still waiting for a lower tier get one last attempt. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        await self._background.close()
        if self._pending:
            await self._repair()
        self._stop_threads()
        for tier in self._lower:
            await tier.close()
        if self._l1 is not None:
            self._l1.close()
