"""``TieredCache``: synchronous cache-aside over an in-process L1 and lower tiers."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping
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
from perfprim.cache._memory import MemoryTier, Record
from perfprim.cache._policy import entry_from_load, entry_from_set, is_fresh
from perfprim.cache._protocols import InvalidationBus, Tier
from perfprim.exceptions import BackendError, ConfigurationError

__all__ = ["TieredCache"]

T = TypeVar("T")
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
    ) -> None:
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
        )

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
        if self._l1 is not None:
            self._counters.l1_misses += 1
        for i, tier in enumerate(self._lower):
            try:
                entry: Entry | None = tier.get(fk)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "get")
                continue
            self._tier_ok(i + 1)
            if entry is not None and is_fresh(entry, now):
                self._counters.hits[i] += 1
                self._fill(fk, entry, now, above=i)
                return entry
            self._counters.misses[i] += 1
            if stale is None:
                stale = entry
        return stale

    def _fill(self, fk: str, entry: Entry, now: float, *, above: int) -> None:
        """Write ``entry`` to the lower tiers ``above - 1 .. 0``, then to L1."""
        for i in range(above - 1, -1, -1):
            try:
                self._lower[i].set(fk, entry, now=now)
            except BackendError as exc:
                self._tier_failed(i + 1, exc, "set")
        if self._l1 is not None:
            self._l1.set(fk, entry, now=now)

    def _miss(
        self, fk: str, now: float, record: Record | None, loader: Callable[[], Any], ttl: Any
    ) -> Any:
        """Everything after an L1 miss: lower tiers, then the loader."""
        entry = self._find(fk, now, record[2] if record is not None else None)
        if entry is not None and is_fresh(entry, now):
            return entry.value
        return self._load(fk, loader, self._ttl_of(ttl), entry)

    def _load(self, fk: str, loader: Callable[[], Any], ttl: float, stale: Entry | None) -> Any:
        """Run the loader and store its value in every tier (the single place loads happen).

        ``stale`` is the expired entry seen on the way, if any (for stale
        serving and early refresh, issue 4).
        """
        start = self._clock()
        try:
            value = loader()
        except Exception:  # a cancellation is not a load error
            self._counters.load_errors += 1
            raise
        now = self._clock()
        self._counters.loads += 1
        self._fill(
            fk,
            entry_from_load(value, now=now, ttl=ttl, delta=now - start),
            now,
            above=len(self._lower),
        )
        return value

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
        if record is not None and now < record[0]:
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
        self._fill(fk, entry_from_set(value, now=now, ttl=seconds), now, above=len(self._lower))
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
            if record is not None and now < record[0]:
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
            self._full_key(key, now): entry_from_set(value, now=now, ttl=seconds)
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
        if self._bus is not None and self._owns_bus:
            self._bus.close()
        for tier in self._lower:
            tier.close()
        if self._l1 is not None:
            self._l1.close()
