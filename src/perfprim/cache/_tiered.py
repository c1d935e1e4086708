"""``TieredCache``: synchronous cache-aside over an in-process L1 and lower tiers."""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from perfprim.cache._core import (
    DEFAULT_GENERATION_CHECK_INTERVAL,
    DEFAULT_MAX_BODY_LENGTH,
    CacheCore,
    GenerationState,
)
from perfprim.cache._decorators import CachedFunction, KeyFunction, make_sync_cached
from perfprim.cache._entry import Entry
from perfprim.cache._lock import MISSING, Lease, RedisLock
from perfprim.cache._memory import MemoryTier, Record
from perfprim.cache._policy import entry_from_load, entry_from_set, is_fresh
from perfprim.cache._protocols import InvalidationBus, Tier
from perfprim.cache._singleflight import SingleFlight
from perfprim.cache._stampede import read_action, stampede_options, tier_usable
from perfprim.cache._xfetch import Decision, before_window
from perfprim.exceptions import BackendError, ConfigurationError

__all__ = ["TieredCache"]

T = TypeVar("T")
logger = logging.getLogger("perfprim.cache")
_FRESH = Decision.FRESH
_REFRESH_EARLY = Decision.REFRESH_EARLY
_STALE = Decision.STALE
P = ParamSpec("P")
_MISSING: Any = object()


class TieredCache(CacheCore):
    """Cache-aside over tiers, L1 first: memory only, or memory in front of Redis.

    A read returns from the first tier that holds a fresh entry and back-fills
    the tiers above it (the L1 copy lives ``min(L1 ttl, remaining life)``); a
    miss in every tier runs the loader, measures how long it took, and writes
    the entry to the lowest tier first, then up to L1.

    Args:
        *tiers: The tiers, fastest first. A leading :class:`MemoryTier` is the
            L1 whose hits take the fast path; the others are
            :class:`~perfprim.cache.Tier` implementations (``RedisTier``).
        ttl: Default freshness lifetime in seconds (or ``timedelta``).
        namespace: Prefix of every key; caches with different namespaces
            never see each other's entries.
        clock: Wall clock in seconds; injectable for tests. Entry expiry times
            are on this clock (shared across processes through Redis).
        invalidation: An :class:`~perfprim.cache.InvalidationBus` that tells
            other processes to drop their L1 copies. By default the cache asks
            a lower tier for one (``tier.invalidation_bus()``) when
            ``invalidate_l1`` is on.
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
        single_flight: Coalesce concurrent loads of one key in this process:
            the loader runs once, every caller gets its value or exception.
        lock: With a Redis tier, take a distributed lock around each load so
            that one process loads a key at a time (the others wait for the
            value, then fail open after ``lock_wait_timeout``).
        beta: XFetch early refresh (Vattani et al., VLDB 2015): a read may
            refresh a hot entry shortly before it expires, in the background;
            ``0`` disables it, larger refreshes earlier.
        stale_ttl: Seconds past expiry during which a read gets the stale value
            at once while one background refresh runs (stale-while-revalidate);
            ``None``: off.
        stale_if_error: Seconds past expiry during which a stale value replaces
            a loader exception (counted as ``stale_on_error``); ``None``: off.
        cache_none: Cache a loader's ``None`` like any other value.
        none_ttl: Freshness of a cached ``None`` (default: ``ttl``), for short
            negative caching.
        error_ttl: Remember a loader exception in this process for that many
            seconds and re-raise it without calling the loader; ``None``: off.
        wait_timeout: Longest wait for another thread's load of the same key;
            past it the waiter loads by itself. ``None``: as long as the load.
        lock_ttl: Lifetime of the Redis lock (extended while the load runs).
        lock_wait_timeout: Longest wait for another process's load.
        refresh_ttl: Lifetime of the Redis refresh token that elects one
            process per early or stale refresh (default: ``lock_ttl``).
        refresh_workers: Threads running background refreshes.
        rand: Random source in (0, 1] for XFetch; injectable for tests.

    Raises:
        ConfigurationError: On an invalid option or a tier that is not a
            :class:`~perfprim.cache.Tier`.

    Example:
        >>> from perfprim.cache import MemoryTier, TieredCache
        >>> cache = TieredCache(MemoryTier(maxsize=100), ttl=60.0, namespace="doc")
        >>> cache.get_or_load("answer", lambda: 42)
        42
        >>> cache.get("answer")
        42
    """

    def __init__(
        self,
        *tiers: Tier,
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
        for tier in tiers:
            candidate: object = tier  # checked at runtime: callers may not be type-checked
            if not isinstance(candidate, Tier) or inspect.iscoroutinefunction(candidate.get):
                raise ConfigurationError(
                    f"{tier!r} is not a cache tier: pass MemoryTier(...) or RedisTier(...) "
                    "(an async tier belongs in AsyncTieredCache)"
                )
        l1 = tiers[0] if tiers and isinstance(tiers[0], MemoryTier) else None
        lower = tiers[1:] if l1 is not None else tiers
        super().__init__(
            l1,
            tuple(lower),
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
            self._flight = SingleFlight()
        if self._lock_tier is not None:
            self._dlock = RedisLock(
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
        self._executor: ThreadPoolExecutor | None = None
        self._futures: set[Future[None]] = set()

    def __repr__(self) -> str:
        tiers = [self._l1, *self._lower] if self._l1 is not None else list(self._lower)
        return f"TieredCache({', '.join(map(repr, tiers))}, namespace={self._namespace!r})"

    def __enter__(self) -> TieredCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- generations -----------------------------------------------------------------------

    def _refresh(self, state: GenerationState, now: float) -> None:
        parent = state.parent
        if parent is not None and now >= parent.check_at:
            self._refresh(parent, now)
        self._apply_generation(state, self._read_counter(state.counter_key), now)

    def _read_counter(self, key: str) -> int | None:
        try:
            value = self._counter_tier.read_counter(key)
        except BackendError as exc:
            self._tier_failed(self._counter_index, exc, "read_counter")
            return None
        self._tier_ok(self._counter_index)
        return int(value)

    def _bump(self, state: GenerationState) -> None:
        try:
            value: int | None = int(self._counter_tier.incr(state.counter_key))
        except BackendError as exc:
            self._tier_failed(self._counter_index, exc, "incr")
            value = None
        self._after_bump(state, value, self._clock())

    def _full_key(self, key: str, now: float) -> str:
        state = self._ns
        if now >= state.check_at:
            self._refresh(state, now)
        try:
            fk = state.full_keys.get(key)
        except TypeError:  # an unhashable key: let _body() say what a key must be
            fk = None
        return fk if fk is not None else self._remember_key(state, key)

    # -- the flow ----------------------------------------------------------------------------

    def _find(self, fk: str, now: float, stale: Entry | None) -> Entry | None:
        """Read the tiers below L1; back-fill above a fresh hit; else the first stale entry."""
        l1 = self._l1
        counters = self._counters
        if l1 is not None:
            counters.l1_misses += 1
        failing = self._failing
        for i, tier in enumerate(self._lower):
            try:
                entry: Entry | None = tier.get(fk)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "get")
                continue
            if failing[i + 1]:
                self._tier_ok(i + 1)
            if entry is not None and now < entry.expires_at:  # is_fresh, inlined
                counters.hits[i] += 1
                if i or l1 is not None:
                    self._fill(fk, entry, now, above=i)
                elif self._sp.errors:  # _fill's only work with nothing above this tier
                    self._sp.forget_errors([fk])
                return entry
            counters.misses[i] += 1
            if stale is None:
                stale = entry
        return stale

    def _fill(
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
                self._lower[i].set(fk, entry, now=now)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "set")
        if self._l1 is not None:
            self._l1.set(fk, entry, now=now)
        self._sp.forget_errors([fk])

    def _miss(
        self, fk: str, now: float, record: Record | None, loader: Callable[[], Any], ttl: Any
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
            return self._resolve(fk, loader, ttl)
        # One caller per key reads the lower tiers and loads; the others wait for it.
        return flight.do(
            fk, lambda: self._resolve(fk, loader, ttl), timeout=self._opts.wait_timeout
        )

    def _resolve(self, fk: str, loader: Callable[[], Any], ttl: Any) -> Any:
        """Lower tiers, then the decision, then (on a miss) the locked load."""
        now = self._clock()
        record = self._records.get(fk)
        if record is not None and now < record[0]:
            return record[1]  # a flight that just ended filled L1
        counted = self._undecodable
        if counted is None:
            entry = self._find(fk, now, record[2] if record is not None else None)
            reread = True
        else:
            before = counted.decode_errors
            entry = self._find(fk, now, record[2] if record is not None else None)
            # Bytes under the key that the tier could not decode: the lock must not re-read.
            reread = counted.decode_errors == before
        if entry is not None and before_window(entry, now, self._beta):
            return entry.value  # FRESH without a draw
        return self._act(fk, now, entry, loader, ttl, reread=reread)

    def _act(
        self,
        fk: str,
        now: float,
        entry: Entry | None,
        loader: Callable[[], Any],
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
        return self._load_locked(fk, loader, self._ttl_of(ttl), entry, reread=reread)

    def _load_locked(
        self,
        fk: str,
        loader: Callable[[], Any],
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
            return self._load_or_fallback(fk, loader, ttl, stale)
        if self._fused is not None:
            # One Redis tier: take the lock here, so that the load can store the value
            # and release the lock in one script (a miss: GET, acquire, store+release).
            try:
                lease = lock.acquire(fk)
            except BackendError:
                return self._load_or_fallback(fk, loader, ttl, stale)
            if lease is not None:
                if lease.value_present and reread:
                    now = self._clock()
                    entry = self._find(fk, now, None)
                    if entry is not None and now < entry.expires_at:
                        self._release(lease)
                        return entry.value
                return self._load_or_fallback(fk, loader, ttl, stale, lease=lease)

        def read() -> Any:
            now = self._clock()
            entry = self._find(fk, now, None)
            return entry.value if entry is not None and now < entry.expires_at else MISSING

        return lock.run(
            fk,
            read=read,
            load=lambda: self._load_or_fallback(fk, loader, ttl, stale),
            reread=reread,
        )

    def _load_or_fallback(
        self,
        fk: str,
        loader: Callable[[], Any],
        ttl: float,
        stale: Entry | None,
        *,
        lease: Lease | None = None,
    ) -> Any:
        """Load; on a loader exception serve ``stale`` (stale-if-error) or remember it."""
        try:
            return self._load(fk, loader, ttl, stale, lease=lease)
        except Exception as exc:
            now = self._clock()
            if self._sp.stale_fallback(stale, now):
                self._sp.count_stale(on_error=True)
                return stale.value  # type: ignore[union-attr]
            self._sp.remember_error(fk, exc, now)
            raise

    def _start_refresh(
        self, fk: str, loader: Callable[[], Any], ttl: Any, entry: Entry | None, *, early: bool
    ) -> None:
        """Refresh ``fk`` in a background thread, once per process (and per cluster)."""
        if not self._sp.claim_refresh(fk):
            return
        if self._executor is None:
            with self._sp.lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self._opts.refresh_workers,
                        thread_name_prefix="perfprim-refresh",
                    )
        try:
            future = self._executor.submit(self._refresh_job, fk, loader, ttl, entry, early)
        except RuntimeError:  # the cache was closed
            self._sp.end_refresh(fk)
            return
        with self._sp.lock:
            self._futures.add(future)
        future.add_done_callback(self._forget_future)

    def _forget_future(self, future: Future[None]) -> None:
        with self._sp.lock:
            self._futures.discard(future)

    def _refresh_job(
        self, fk: str, loader: Callable[[], Any], ttl: Any, entry: Entry | None, early: bool
    ) -> None:
        try:
            lock = self._dlock
            if lock is not None and tier_usable(self._lock_tier):
                try:
                    if not lock.try_refresh(fk):
                        return  # another process refreshes it
                except BackendError:
                    pass  # fail open: refresh from this process
            self._sp.count_refresh(early=early)
            # Not through the single-flight: claim_refresh already made it one per process,
            # and the foreground readers are served the current value meanwhile.
            self._load_or_fallback(fk, loader, self._ttl_of(ttl), entry)
        except Exception:  # counted in load_errors; nobody waits for a background refresh
            logger.debug("background refresh of %r failed", fk, exc_info=True)
        finally:
            self._sp.end_refresh(fk)

    def _drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for the background refreshes running now (for tests and close)."""
        with self._sp.lock:
            futures = list(self._futures)
        if futures:
            wait(futures, timeout=timeout)

    def _load(
        self,
        fk: str,
        loader: Callable[[], Any],
        ttl: float,
        stale: Entry | None,
        *,
        lease: Lease | None = None,
    ) -> Any:
        """Run the loader and store its value in every tier (the single place loads happen).

        ``stale`` is the expired entry seen on the way, if any (for
        stale-if-error in the caller). With ``lease`` (the fused path: one
        Redis tier, its lock held) the value is stored and the lock released
        by one script.
        """
        start = self._clock()
        try:
            value = loader()
        except Exception:  # a cancellation is not a load error
            self._counters.load_errors += 1
            if lease is not None:
                self._release(lease)
            raise
        except BaseException:
            if lease is not None:
                self._release(lease)
            raise
        now = self._clock()
        self._counters.loads += 1
        if value is None:
            if not self._opts.cache_none:
                if lease is not None:
                    self._release(lease)
                return value
            ttl = self._opts.none_ttl or ttl
        entry = entry_from_load(
            value, now=now, ttl=ttl, delta=now - start, stale_ttl=self._opts.keep_stale
        )
        if lease is None:
            self._fill(fk, entry, now, above=len(self._lower), after_read=True)
            return value
        tier, lock = self._fused, self._dlock
        try:
            data, px = tier._encode_one(entry, now)
        except BaseException:  # SerializationError: nothing is written
            self._release(lease)
            raise
        script, keys, args = lock.set_release_call(lease, data, px)
        try:
            released = bool(tier._call(lambda: script(keys=keys, args=args)))
        except BackendError as exc:
            lock.settled(lease, True)  # unknown: the lock expires by itself
            self._tier_failed(1, exc, "set")
        else:
            lock.settled(lease, released)
        if self._l1 is not None:
            self._l1.set(fk, entry, now=now)
        self._sp.forget_errors([fk])
        return value

    def _release(self, lease: Lease) -> None:
        """Release a lock whose load produced nothing to store (error, uncached None)."""
        with contextlib.suppress(BackendError):
            self._dlock.release(lease)

    # -- public API ------------------------------------------------------------------------

    def get(self, key: str, default: object = None) -> object:
        """Return the value cached under ``key``, or ``default`` if no tier has it fresh.

        Args:
            key: The key (a str; the namespace and generation are added).
            default: Returned on a miss; a cached ``None`` is returned as ``None``.

        Returns:
            The cached value or ``default``.
        """
        now = self._clock()
        fk = self._full_key(key, now)
        record = self._records.get(fk)
        if record is not None and now < record[4]:
            self._counters.l1_hits += 1
            return record[1]
        entry = self._find(fk, now, None)
        if entry is None or not is_fresh(entry, now):
            return default
        return entry.value

    def get_or_load(
        self, key: str, loader: Callable[[], T], ttl: float | timedelta | None = None
    ) -> T:
        """Return the cached value of ``key``, or run ``loader()`` and cache its result.

        Args:
            key: The key.
            loader: Zero-argument callable computing the value; its exceptions
                propagate and nothing is cached.
            ttl: Freshness lifetime of a loaded value; default: the cache's.

        Returns:
            The cached or freshly loaded value (``None`` included).
        """
        now = self._clock()
        state = self._ns
        if now >= state.check_at:
            self._refresh(state, now)
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
        return self._miss(fk, now, record, loader, ttl)  # type: ignore[no-any-return]

    def set(self, key: str, value: object, ttl: float | timedelta | None = None) -> None:
        """Store ``value`` under ``key`` in every tier and invalidate other processes' L1.

        Args:
            key: The key.
            value: Any value the lower tiers' serializer accepts (``None`` too).
            ttl: Freshness lifetime; default: the cache's.
        """
        seconds = self._ttl_of(ttl)
        now = self._clock()
        fk = self._full_key(key, now)
        entry = entry_from_set(value, now=now, ttl=seconds, stale_ttl=self._opts.keep_stale)
        self._fill(fk, entry, now, above=len(self._lower))
        self._publish([fk])

    def delete(self, key: str) -> None:
        """Remove ``key`` from every tier and from other processes' L1."""
        self._delete_full([self._full_key(key, self._clock())])

    def _delete_full(self, fks: list[str]) -> None:
        for i in range(len(self._lower) - 1, -1, -1):
            try:
                self._lower[i].delete(fks)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "delete")
        if self._l1 is not None:
            self._l1.delete(fks)
        self._sp.forget_errors(fks)
        self._publish(fks)

    def get_many(self, keys: Iterable[str]) -> dict[str, object]:
        """Return ``{key: value}`` for the keys some tier holds fresh (misses are absent).

        One call per lower tier for all the keys L1 missed (one round trip, or
        one per slot group on a cluster).
        """
        now = self._clock()
        wanted = {self._full_key(key, now): key for key in keys}
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
                entries = tier.get_many(missing)
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
                self._fill_many(hits, now, above=i)
            missing = still
        return found

    def _fill_many(self, entries: Mapping[str, Entry], now: float, *, above: int) -> None:
        for i in range(above - 1, -1, -1):
            try:
                self._lower[i].set_many(entries, now=now)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "set_many")
        if self._l1 is not None:
            self._l1.set_many(entries, now=now)

    def set_many(self, mapping: Mapping[str, object], ttl: float | timedelta | None = None) -> None:
        """Store every ``key: value`` of ``mapping`` (one call per tier) and invalidate L1s."""
        seconds = self._ttl_of(ttl)
        now = self._clock()
        entries = {
            self._full_key(key, now): entry_from_set(
                value, now=now, ttl=seconds, stale_ttl=self._opts.keep_stale
            )
            for key, value in mapping.items()
        }
        self._fill_many(entries, now, above=len(self._lower))
        self._publish(list(entries))

    def clear(self) -> None:
        """Invalidate every key of the namespace: one ``INCR`` of its generation.

        Nothing is scanned or deleted in the lower tiers: the old keys become
        unreachable and expire on their own. This process's L1 is cleared and
        other processes are told to clear theirs.
        """
        self._bump(self._ns)

    def cached(
        self,
        *,
        ttl: float | timedelta | None = None,
        key: KeyFunction | None = None,
        noself: bool = False,
    ) -> Callable[[Callable[P, T]], CachedFunction[P, T]]:
        """Decorate a function so that its results are cached by arguments.

        Args:
            ttl: Freshness lifetime; default: the cache's.
            key: Optional callable receiving the call's arguments and returning
                the key body (a str); by default the body is built from the
                function's ``module.qualname`` and its encoded arguments.
            noself: Leave out the first argument (``self`` or ``cls``) of a
                method: all instances share the cache entries.

        Returns:
            A decorator; the decorated function gains ``invalidate(*args,
            **kwargs)`` and ``invalidate_all()``.

        Raises:
            ConfigurationError: If the function is a coroutine or generator
                function (use :class:`AsyncTieredCache` for ``async def``).
        """
        seconds = None if ttl is None else self._ttl_of(ttl)

        def decorate(fn: Callable[P, T]) -> CachedFunction[P, T]:
            return make_sync_cached(self, fn, ttl=seconds, key=key, noself=noself)

        return decorate

    def close(self) -> None:
        """Stop the invalidation bus this cache started and close every tier."""
        if self._closed:
            return
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._dlock is not None:
            self._dlock.close()
        if self._bus is not None and self._owns_bus:
            self._bus.close()
        for tier in self._lower:
            tier.close()
        if self._l1 is not None:
            self._l1.close()
