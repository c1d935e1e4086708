"""``AsyncTieredCache``: the asyncio twin of ``TieredCache``, same method names.

Its L1 is the same synchronous :class:`MemoryTier` (awaiting a dict lookup
would only add cost); the lower tiers are :class:`~perfprim.cache.AsyncTier`
implementations (``AsyncRedisTier``). Every decision is shared with
``TieredCache`` through :mod:`._core` and :mod:`._policy`; only the I/O
methods are repeated here.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from perfprim.cache._core import (
    DEFAULT_GENERATION_CHECK_INTERVAL,
    DEFAULT_MAX_BODY_LENGTH,
    CacheCore,
    GenerationState,
)
from perfprim.cache._decorators import AsyncCachedFunction, KeyFunction, make_async_cached
from perfprim.cache._entry import Entry
from perfprim.cache._lock import MISSING, AsyncRedisLock, Lease
from perfprim.cache._memory import MemoryTier, Record
from perfprim.cache._policy import entry_from_load, entry_from_set, is_fresh
from perfprim.cache._protocols import AsyncTier, InvalidationBus
from perfprim.cache._singleflight import AsyncSingleFlight
from perfprim.cache._stampede import read_action, stampede_options, tier_usable
from perfprim.cache._xfetch import Decision, before_window
from perfprim.exceptions import BackendError, ConfigurationError

__all__ = ["AsyncTieredCache"]

T = TypeVar("T")
logger = logging.getLogger("perfprim.cache")
_FRESH = Decision.FRESH
_REFRESH_EARLY = Decision.REFRESH_EARLY
_STALE = Decision.STALE
P = ParamSpec("P")


class AsyncTieredCache(CacheCore):
    """Asyncio cache-aside: an optional in-process L1, then async tiers.

    The L1 hit path of ``get_or_load`` and of a ``cached`` coroutine function
    awaits nothing and creates no Task. Options and behaviour are those of
    :class:`~perfprim.cache.TieredCache`.

    Args:
        l1: The in-process L1, or ``None`` for none.
        *tiers: Lower tiers implementing :class:`~perfprim.cache.AsyncTier`.
        ttl: Default freshness lifetime in seconds (or ``timedelta``).
        namespace: Prefix of every key.
        clock: Wall clock in seconds; injectable for tests.
        invalidation: An :class:`~perfprim.cache.InvalidationBus`, or ``None``
            to ask a lower tier for one when ``invalidate_l1`` is on.
        invalidate_l1: Start the lower tier's bus automatically (default: on
            when there is a lower tier, with or without an L1).
        raise_on_backend_error: Re-raise tier ``BackendError`` exceptions instead of
            degrading.
        generation_check_interval: Seconds between re-reads of the cached
            generation counters.
        max_key_length: Longest key body kept verbatim.
        single_flight: Coalesce concurrent loads of one key across tasks.
        lock: With a Redis tier, one process loads a key at a time.
        beta: XFetch early refresh (``0`` disables).
        stale_ttl: Stale-while-revalidate window in seconds (``None``: off).
        stale_if_error: Grace period in which a stale value replaces a loader
            exception (``None``: off).
        cache_none: Cache a loader's ``None``.
        none_ttl: Freshness of a cached ``None`` (default: ``ttl``).
        error_ttl: Remember a loader exception for that long (``None``: off).
        wait_timeout: Longest wait for another task's load of the same key.
        lock_ttl: Lifetime of the Redis lock (extended while the load runs).
        lock_wait_timeout: Longest wait for another process's load.
        refresh_ttl: Lifetime of the Redis refresh token (default: ``lock_ttl``).
        refresh_workers: Unused by the asyncio cache (refreshes are tasks);
            accepted so that both caches take the same options.
        rand: Random source in (0, 1] for XFetch; injectable for tests.

    Raises:
        ConfigurationError: On an invalid option or tier.

    Example:
        >>> import asyncio
        >>> from perfprim.cache import AsyncTieredCache, MemoryTier
        >>> cache = AsyncTieredCache(MemoryTier(maxsize=100), ttl=60.0, namespace="doc")
        >>> async def load() -> str:
        ...     return "value"
        >>> asyncio.run(cache.get_or_load("k", load))
        'value'
    """

    def __init__(
        self,
        l1: MemoryTier | None,
        *tiers: AsyncTier,
        ttl: float | timedelta = 300.0,
        namespace: str = "perfprim",
        clock: Callable[[], float] = time.time,
        invalidation: InvalidationBus | None = None,
        invalidate_l1: bool | None = None,
        raise_on_backend_error: bool = False,
        generation_check_interval: float | timedelta = DEFAULT_GENERATION_CHECK_INTERVAL,
        max_key_length: int = DEFAULT_MAX_BODY_LENGTH,
        single_flight: bool = True,
        lock: bool = True,
        beta: float = 1.0,
        stale_ttl: float | timedelta | None = None,
        stale_if_error: float | timedelta | None = None,
        cache_none: bool = True,
        none_ttl: float | timedelta | None = None,
        error_ttl: float | timedelta | None = None,
        wait_timeout: float | timedelta | None = None,
        lock_ttl: float | timedelta = 10.0,
        lock_wait_timeout: float | timedelta = 5.0,
        refresh_ttl: float | timedelta | None = None,
        refresh_workers: int = 4,
        rand: Callable[[], float] | None = None,
    ) -> None:
        opts = stampede_options(
            single_flight=single_flight,
            lock=lock,
            beta=beta,
            stale_ttl=stale_ttl,
            stale_if_error=stale_if_error,
            cache_none=cache_none,
            none_ttl=none_ttl,
            error_ttl=error_ttl,
            wait_timeout=wait_timeout,
            lock_ttl=lock_ttl,
            lock_wait_timeout=lock_wait_timeout,
            refresh_ttl=refresh_ttl,
            refresh_workers=refresh_workers,
        )
        if l1 is not None and not isinstance(l1, MemoryTier):
            raise ConfigurationError(
                "the first argument of AsyncTieredCache is the L1: a MemoryTier or None"
            )
        for tier in tiers:
            candidate: object = tier  # checked at runtime: callers may not be type-checked
            if not isinstance(candidate, AsyncTier) or not inspect.iscoroutinefunction(
                candidate.get
            ):
                raise ConfigurationError(
                    f"{tier!r} is not an async cache tier: pass AsyncRedisTier(...) "
                    "(a sync tier belongs in TieredCache)"
                )
        super().__init__(
            l1,
            tuple(tiers),
            ttl=ttl,
            namespace=namespace,
            clock=clock,
            invalidation=invalidation,
            invalidate_l1=invalidate_l1,
            raise_on_backend_error=raise_on_backend_error,
            generation_check_interval=generation_check_interval,
            max_key_length=max_key_length,
            stampede=opts,
            rand=rand,
        )
        if opts.single_flight:
            self._flight = AsyncSingleFlight()
        if self._lock_tier is not None:
            self._dlock = AsyncRedisLock(
                self._lock_tier.client,
                ttl=opts.lock_ttl,
                wait_timeout=opts.lock_wait_timeout,
                refresh_ttl=opts.refresh_ttl,
            )
        # One Redis tier with the lock: the miss path fuses read + lock and write + unlock.
        self._fused: Any = (
            self._lock_tier
            if self._dlock is not None
            and len(self._lower) == 1
            and all(hasattr(self._lock_tier, n) for n in ("_call", "_decode", "_encode_one"))
            else None
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        tiers = ", ".join(map(repr, self._lower))
        return f"AsyncTieredCache({self._l1!r}, {tiers}, namespace={self._namespace!r})"

    async def __aenter__(self) -> AsyncTieredCache:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- generations -----------------------------------------------------------------------

    async def _refresh(self, state: GenerationState, now: float) -> None:
        parent = state.parent
        if parent is not None and now >= parent.check_at:
            await self._refresh(parent, now)
        self._apply_generation(state, await self._read_counter(state.counter_key), now)

    async def _read_counter(self, key: str) -> int | None:
        try:
            if self._lower:
                value = await self._counter_tier.read_counter(key)
            else:
                value = self._counter_tier.read_counter(key)
        except BackendError as exc:
            self._tier_failed(self._counter_index, exc, "read_counter")
            return None
        self._tier_ok(self._counter_index)
        return int(value)

    async def _bump(self, state: GenerationState) -> None:
        try:
            if self._lower:
                value: int | None = int(await self._counter_tier.incr(state.counter_key))
            else:
                value = int(self._counter_tier.incr(state.counter_key))
        except BackendError as exc:
            self._tier_failed(self._counter_index, exc, "incr")
            value = None
        self._after_bump(state, value, self._clock())

    async def _full_key(self, key: str, now: float) -> str:
        state = self._ns
        if now >= state.check_at:
            await self._refresh(state, now)
        try:
            fk = state.full_keys.get(key)
        except TypeError:  # an unhashable key: let _body() say what a key must be
            fk = None
        return fk if fk is not None else self._remember_key(state, key)

    # -- the flow ----------------------------------------------------------------------------

    async def _find(self, fk: str, now: float, stale: Entry | None) -> Entry | None:
        """Read the tiers below L1; back-fill above a fresh hit; else the first stale entry."""
        l1 = self._l1
        counters = self._counters
        if l1 is not None:
            counters.l1_misses += 1
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
        self, fk: str, entry: Entry, now: float, *, above: int, after_read: bool = False
    ) -> None:
        """Write ``entry`` to the lower tiers ``above - 1 .. 0``, then to L1.

        ``after_read``: skip a tier whose read of this key just failed, so a hung
        server costs a load one timeout, not two (the read's and the write's).
        """
        for i in range(above - 1, -1, -1):
            if after_read and self._failing[i + 1]:
                continue
            try:
                await self._lower[i].set(fk, entry, now=now)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "set")
        if self._l1 is not None:
            self._l1.set(fk, entry, now=now)
        self._sp.forget_errors([fk])

    async def _miss(
        self,
        fk: str,
        now: float,
        record: Record | None,
        loader: Callable[[], Awaitable[Any]],
        ttl: Any,
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
                self._start_refresh(fk, loader, ttl, entry, early=True)
            return entry.value
        elif fk in self._sp.refreshing:
            # This process is refreshing the key: serve the copy while it may be served.
            entry = record[2]
            if now < entry.stale_until and now < entry.expires_at + self._opts.stale_ttl:
                if now >= entry.expires_at:
                    self._sp.count_stale(on_error=False)
                return entry.value
        flight = self._flight
        if flight is None:
            return await self._resolve(fk, loader, ttl)
        return await flight.do(
            fk, lambda: self._resolve(fk, loader, ttl), timeout=self._opts.wait_timeout
        )

    async def _resolve(self, fk: str, loader: Callable[[], Awaitable[Any]], ttl: Any) -> Any:
        """Lower tiers, then the decision, then (on a miss) the locked load."""
        now = self._clock()
        record = self._records.get(fk)
        if record is not None and now < record[0]:
            return record[1]
        counted = self._undecodable
        if counted is None:
            entry = await self._find(fk, now, record[2] if record is not None else None)
            reread = True
        else:
            before = counted.decode_errors
            entry = await self._find(fk, now, record[2] if record is not None else None)
            # Bytes under the key that the tier could not decode: the lock must not re-read.
            reread = counted.decode_errors == before
        if entry is not None and before_window(entry, now, self._beta):
            return entry.value  # FRESH without a draw
        return await self._act(fk, now, entry, loader, ttl, reread=reread)

    async def _act(
        self,
        fk: str,
        now: float,
        entry: Entry | None,
        loader: Callable[[], Awaitable[Any]],
        ttl: Any,
        *,
        reread: bool = True,
    ) -> Any:
        """Serve, refresh in the background, or load under the lock, as the entry decides."""
        action = read_action(entry, now, self._opts, self._sp.rand)
        if action is _FRESH:
            return entry.value  # type: ignore[union-attr]
        if action is _REFRESH_EARLY:
            self._start_refresh(fk, loader, ttl, entry, early=True)
            return entry.value  # type: ignore[union-attr]
        if action is _STALE:
            self._sp.count_stale(on_error=False)
            self._start_refresh(fk, loader, ttl, entry, early=False)
            return entry.value  # type: ignore[union-attr]
        return await self._load_locked(fk, loader, self._ttl_of(ttl), entry, reread=reread)

    async def _load_locked(
        self,
        fk: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float,
        stale: Entry | None,
        *,
        reread: bool = True,
    ) -> Any:
        """Load under the Redis lock when there is one (one process loads a key at a time)."""
        lock = self._dlock
        if lock is None or self._failing[self._lock_index] or not tier_usable(self._lock_tier):
            # No lock while its server just failed a read: a hung Redis must cost a
            # load one timeout, not one more for the lock.
            return await self._load_or_fallback(fk, loader, ttl, stale)
        if self._fused is not None:
            # One Redis tier: take the lock here, so that the load can store the value
            # and release the lock in one script (a miss: GET, acquire, store+release).
            try:
                lease = await lock.acquire(fk)
            except BackendError:
                return await self._load_or_fallback(fk, loader, ttl, stale)
            if lease is not None:
                if lease.value_present and reread:
                    now = self._clock()
                    entry = await self._find(fk, now, None)
                    if entry is not None and now < entry.expires_at:
                        await self._release(lease)
                        return entry.value
                return await self._load_or_fallback(fk, loader, ttl, stale, lease=lease)

        async def read() -> Any:
            now = self._clock()
            entry = await self._find(fk, now, None)
            return entry.value if entry is not None and now < entry.expires_at else MISSING

        async def load() -> Any:
            return await self._load_or_fallback(fk, loader, ttl, stale)

        return await lock.run(fk, read=read, load=load, reread=reread)

    async def _load_or_fallback(
        self,
        fk: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float,
        stale: Entry | None,
        *,
        lease: Lease | None = None,
    ) -> Any:
        """Load; on a loader exception serve ``stale`` (stale-if-error) or remember it."""
        try:
            return await self._load(fk, loader, ttl, stale, lease=lease)
        except Exception as exc:
            now = self._clock()
            if self._sp.stale_fallback(stale, now):
                self._sp.count_stale(on_error=True)
                return stale.value  # type: ignore[union-attr]
            self._sp.remember_error(fk, exc, now)
            raise

    def _start_refresh(
        self,
        fk: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: Any,
        entry: Entry | None,
        *,
        early: bool,
    ) -> None:
        """Refresh ``fk`` in a background task, once per process (and per cluster)."""
        if self._closed or not self._sp.claim_refresh(fk):
            return
        task = asyncio.get_running_loop().create_task(
            self._refresh_job(fk, loader, ttl, entry, early)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_job(
        self,
        fk: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: Any,
        entry: Entry | None,
        early: bool,
    ) -> None:
        try:
            lock = self._dlock
            if lock is not None and tier_usable(self._lock_tier):
                try:
                    if not await lock.try_refresh(fk):
                        return
                except BackendError:
                    pass  # fail open: refresh from this process
            self._sp.count_refresh(early=early)
            # Not through the single-flight: claim_refresh already made it one per process.
            await self._load_or_fallback(fk, loader, self._ttl_of(ttl), entry)
        except Exception:  # counted in load_errors; nobody waits for a background refresh
            logger.debug("background refresh of %r failed", fk, exc_info=True)
        finally:
            self._sp.end_refresh(fk)

    async def _drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for the background refreshes running now (for tests and close)."""
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def _load(
        self,
        fk: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float,
        stale: Entry | None,
        *,
        lease: Lease | None = None,
    ) -> Any:
        """Await the loader and store its value in every tier (the single place loads happen).

        With ``lease`` (one Redis tier, its lock held) one script stores the
        value and releases the lock.
        """
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
        if value is None:
            if not self._opts.cache_none:
                if lease is not None:
                    await self._release(lease)
                return value
            ttl = self._opts.none_ttl or ttl
        entry = entry_from_load(
            value, now=now, ttl=ttl, delta=now - start, stale_ttl=self._opts.keep_stale
        )
        if lease is None:
            await self._fill(fk, entry, now, above=len(self._lower), after_read=True)
            return value
        tier, lock = self._fused, self._dlock
        try:
            data, px = tier._encode_one(entry, now)
        except BaseException:  # SerializationError: nothing is written
            await self._release(lease)
            raise
        script, keys, args = lock.set_release_call(lease, data, px)
        try:
            released = bool(await tier._call(lambda: script(keys=keys, args=args)))
        except BackendError as exc:
            lock.settled(lease, True)  # unknown: the lock expires by itself
            self._tier_failed(1, exc, "set")
        else:
            lock.settled(lease, released)
        if self._l1 is not None:
            self._l1.set(fk, entry, now=now)
        self._sp.forget_errors([fk])
        return value

    async def _release(self, lease: Lease) -> None:
        """Release a lock whose load produced nothing to store (error, uncached None)."""
        with contextlib.suppress(BackendError):
            await self._dlock.release(lease)

    # -- public API ------------------------------------------------------------------------

    async def get(self, key: str, default: object = None) -> object:
        """Return the value cached under ``key``, or ``default`` if no tier has it fresh."""
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
    ) -> T:
        """Return the cached value of ``key``, or await ``loader()`` and cache its result.

        Args:
            key: The key.
            loader: Zero-argument callable returning an awaitable of the value.
            ttl: Freshness lifetime of a loaded value; default: the cache's.

        Returns:
            The cached or freshly loaded value.
        """
        now = self._clock()
        state = self._ns
        if now >= state.check_at:
            await self._refresh(state, now)
        try:
            fk = state.full_keys.get(key)
        except TypeError:  # an unhashable key: let _body() say what a key must be
            fk = None
        if fk is None:
            fk = self._remember_key(state, key)
        record = self._records.get(fk)
        if record is not None and now < record[0]:
            self._counters.l1_hits += 1
            return record[1]  # type: ignore[return-value]
        return await self._miss(fk, now, record, loader, ttl)  # type: ignore[no-any-return]

    async def set(self, key: str, value: object, ttl: float | timedelta | None = None) -> None:
        """Store ``value`` under ``key`` in every tier and invalidate other processes' L1."""
        seconds = self._ttl_of(ttl)
        now = self._clock()
        fk = await self._full_key(key, now)
        entry = entry_from_set(value, now=now, ttl=seconds, stale_ttl=self._opts.keep_stale)
        await self._fill(fk, entry, now, above=len(self._lower))
        self._publish([fk])

    async def delete(self, key: str) -> None:
        """Remove ``key`` from every tier and from other processes' L1."""
        await self._delete_full([await self._full_key(key, self._clock())])

    async def _delete_full(self, fks: list[str]) -> None:
        for i in range(len(self._lower) - 1, -1, -1):
            try:
                await self._lower[i].delete(fks)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "delete")
        if self._l1 is not None:
            self._l1.delete(fks)
        self._sp.forget_errors(fks)
        self._publish(fks)

    async def get_many(self, keys: Iterable[str]) -> dict[str, object]:
        """Return ``{key: value}`` for the keys some tier holds fresh (misses are absent)."""
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

    async def _fill_many(self, entries: Mapping[str, Entry], now: float, *, above: int) -> None:
        for i in range(above - 1, -1, -1):
            try:
                await self._lower[i].set_many(entries, now=now)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "set_many")
        if self._l1 is not None:
            self._l1.set_many(entries, now=now)

    async def set_many(
        self, mapping: Mapping[str, object], ttl: float | timedelta | None = None
    ) -> None:
        """Store every ``key: value`` of ``mapping`` (one call per tier) and invalidate L1s."""
        seconds = self._ttl_of(ttl)
        now = self._clock()
        entries = {
            await self._full_key(key, now): entry_from_set(
                value, now=now, ttl=seconds, stale_ttl=self._opts.keep_stale
            )
            for key, value in mapping.items()
        }
        await self._fill_many(entries, now, above=len(self._lower))
        self._publish(list(entries))

    async def clear(self) -> None:
        """Invalidate every key of the namespace: one ``INCR`` of its generation."""
        await self._bump(self._ns)

    def cached(
        self,
        *,
        ttl: float | timedelta | None = None,
        key: KeyFunction | None = None,
        noself: bool = False,
    ) -> Callable[[Callable[P, Awaitable[T]]], AsyncCachedFunction[P, T]]:
        """Decorate a coroutine function so that its results are cached by arguments.

        Args:
            ttl: Freshness lifetime; default: the cache's.
            key: Optional callable receiving the call's arguments and returning
                the key body (a str).
            noself: Leave out the first argument (``self`` or ``cls``).

        Returns:
            A decorator; the decorated function gains ``await invalidate(...)``
            and ``await invalidate_all()``.

        Raises:
            ConfigurationError: If the function is not a coroutine function.
        """
        seconds = None if ttl is None else self._ttl_of(ttl)

        def decorate(fn: Callable[P, Awaitable[T]]) -> AsyncCachedFunction[P, T]:
            return make_async_cached(self, fn, ttl=seconds, key=key, noself=noself)

        return decorate

    async def close(self) -> None:
        """Stop the invalidation bus this cache started and close every tier."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        if self._bus is not None and self._owns_bus:
            self._bus.close()
        for tier in self._lower:
            await tier.close()
        if self._l1 is not None:
            self._l1.close()
