"""What the tiered cache decides and keeps without I/O: configuration, keys, generations, stats.

:class:`CacheCore` is the base of ``AsyncTieredCache`` (written once, in
:mod:`perfprim.cache._async.tiered`) and of the generated ``TieredCache``
(httpx's ``BaseClient`` model): it validates the options, splits the tiers,
builds keys, keeps the generations, the pending repairs and the counters,
and wires the invalidation bus. The freshness, stampede and tag rules are
pure functions in :mod:`._decisions`.

Generations: every full key carries the namespace's generation (bumped by
``clear()``) and, for ``cached`` functions, the function's generation (bumped
by ``invalidate_all()``). A bump is one ``INCR`` on the counter tier (the last
tier: Redis when present). Old keys are never scanned: they become
unreachable and expire. Each process caches the generations it read, so the
hit path makes no round trip; it learns of another process's bump from the
invalidation bus (the bumped counter's key, or a flush) and, as a fallback,
re-reads its generations every ``generation_check_interval`` seconds.

Tags: a tag is a counter on the counter tier (``namespace:#tag:{tag}``).
An entry stored with tags carries the counters' values read *before* its
value was computed; a tier returns it only while they are unchanged, and
``invalidate_tags`` bumps them (one ``INCR`` per tag), drops the tagged L1
copies here (an index in ``MemoryTier``) and, through the bus, everywhere.

Pending repairs: a delete, a write or a bump that cannot reach a lower tier
(Redis down, circuit open) is remembered; a background job retries it with
capped backoff, and the cache's next read of the lower tiers applies it
first (then re-announces the keys on the bus); until then the cache does not
read the lower tiers: a value the application replaced or deleted during an
outage never comes back from Redis.

The hit path of a ``cached`` function needs a few of these members; it gets
them through one explicit handle, :class:`HitPath` (``cache.hit_path()``).
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from perfprim._durations import to_seconds
from perfprim.cache._keys import (
    DEFAULT_MAX_BODY_LENGTH,
    counter_key,
    function_counter_key,
    key_prefix,
    safe_body,
    tag_counter_key,
)
from perfprim.cache._memory import MemoryTier, Record
from perfprim.cache._protocols import InvalidationBus
from perfprim.cache._stampede import StampedeOptions, StampedeState
from perfprim.cache._stats import CacheStats, Counters, TierStats
from perfprim.exceptions import BackendError, ConfigurationError

__all__ = [
    "DEFAULT_GENERATION_CHECK_INTERVAL",
    "DEFAULT_MAX_BODY_LENGTH",
    "FULL_KEY_MEMO_SIZE",
    "CacheCore",
    "HitPath",
    "KeyScope",
    "PendingRepairs",
    "split_tiers",
    "stop_threads",
]

logger = logging.getLogger("perfprim.cache")

_NEVER: Final = float("-inf")
FULL_KEY_MEMO_SIZE: Final = 4096
DEFAULT_GENERATION_CHECK_INTERVAL: Final = 5.0
"""Seconds between re-reads of the cached generations (fallback when a bus message is lost)."""
_MAX_PENDING: Final = 10_000


class KeyScope:
    """The cached generation of the namespace or of one ``cached`` function.

    ``prefix`` is what every full key of the scope starts with; the hit path
    reads it and ``check_at`` (when to re-read the counter) and nothing else.

    Attributes:
        prefix: ``namespace:generation:{`` (the body and ``}`` follow).
        check_at: Wall-clock time after which the generation must be re-read.
        full_keys: A bounded memo ``user key -> full key`` under ``prefix``
            (replaced when the prefix changes).
    """

    __slots__ = ("check_at", "counter_key", "full_keys", "generation", "parent", "prefix")

    def __init__(self, counter_key: str, parent: KeyScope | None) -> None:
        self.counter_key = counter_key
        self.parent = parent
        self.generation = 0
        self.prefix = ""
        self.check_at = _NEVER
        # user key (or a cached function's single int/str argument) -> full key under
        # ``prefix``: the hit path does one dict lookup instead of validating and
        # formatting the key, and the full key's hash is computed once.
        self.full_keys: dict[object, str] = {}


@dataclass(frozen=True, slots=True)
class HitPath:
    """Everything a wrapper needs to serve an L1 hit without calling into the cache.

    ``cache.hit_path()`` returns it; ``cached`` builds its wrappers on it and
    nothing else. An L1 hit is::

        now = path.clock()
        if now >= scope.check_at:
            path.refresh(scope, now)        # awaited for the asyncio cache
        fk = scope.prefix + body + "}"
        record = path.records.get(fk)
        if record is not None and now < record[0]:
            path.counters.l1_hits += 1
            return record[1]
        return path.miss(fk, now, record, loader, ttl, tags)   # awaited too

    Attributes:
        clock: The cache's wall clock.
        records: The L1's live ``full key -> Record`` mapping (empty without an L1).
        counters: The cache's counters (the wrapper increments ``l1_hits``).
        max_key_length: Longest key body kept verbatim (longer ones are digested).
        scope: ``scope(qualname)``: the :class:`KeyScope` of a cached function.
        refresh: ``refresh(scope, now)``: re-read a scope's generation.
        miss: ``miss(fk, now, record, loader, ttl, tags)``: the slow path.
        delete: ``delete(fks)``: drop full keys everywhere.
        bump: ``bump(scope)``: invalidate a whole scope (one ``INCR``).
        store: ``store(fk, value, ttl, tags)``: write a value under a full key.
        is_async: Whether ``refresh``, ``miss``, ``delete``, ``bump`` and
            ``store`` are coroutine functions.
    """

    clock: Callable[[], float]
    records: Mapping[str, Record]
    counters: Counters
    max_key_length: int
    scope: Callable[[str], KeyScope]
    refresh: Callable[..., Any]
    miss: Callable[..., Any]
    delete: Callable[..., Any]
    bump: Callable[..., Any]
    store: Callable[..., Any]
    is_async: bool


def split_tiers(
    tiers: Sequence[object], *, is_async: bool
) -> tuple[MemoryTier | None, tuple[Any, ...]]:
    """Check the tiers a cache was given and split them into ``(L1, lower tiers)``.

    A leading :class:`MemoryTier` is the L1; every other tier must be a tier
    *instance* of the cache's kind (sync tiers for ``TieredCache``, asyncio
    tiers for ``AsyncTieredCache``).

    Raises:
        ConfigurationError: Saying what to pass instead.
    """
    from perfprim.cache._protocols import AsyncTier, Tier

    cache = "AsyncTieredCache" if is_async else "TieredCache"
    other = "TieredCache" if is_async else "AsyncTieredCache"
    example = "AsyncRedisTier.from_url(url)" if is_async else "RedisTier.from_url(url)"
    if not tiers:
        raise ConfigurationError(
            f"a cache needs at least one tier: {cache}(MemoryTier(maxsize=10_000), {example})"
        )
    l1 = tiers[0] if isinstance(tiers[0], MemoryTier) else None
    lower = tuple(tiers[1:] if l1 is not None else tiers)
    for tier in tiers:
        if isinstance(tier, type):
            raise ConfigurationError(
                f"{cache} got the class {tier.__name__}, not a tier: pass an instance, "
                f"e.g. {cache}(MemoryTier(maxsize=10_000), {example})"
            )
    for tier in lower:
        get = getattr(tier, "get", None)
        kind_ok = isinstance(tier, AsyncTier if is_async else Tier) and (
            inspect.iscoroutinefunction(get) == is_async
        )
        if not kind_ok:
            if isinstance(tier, Tier if is_async else AsyncTier):
                raise ConfigurationError(
                    f"{tier!r} is {'a sync' if is_async else 'an asyncio'} tier: it belongs in "
                    f"{other}; {cache} takes {example} (and a leading MemoryTier as L1)"
                )
            raise ConfigurationError(
                f"{tier!r} is not a cache tier: {cache} takes a leading MemoryTier(...) as L1 "
                f"and tiers such as {example}"
            )
    return l1, lower


class PendingRepairs:
    """Writes that could not reach the lower tiers: full keys to delete, counters to bump."""

    __slots__ = ("bumps", "deletes", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deletes: dict[str, None] = {}
        self.bumps: dict[str, None] = {}


class CacheCore:
    """Shared state and pure logic of the sync and asyncio tiered cache (private base)."""

    def __init__(
        self,
        tiers: tuple[object, ...],
        *,
        is_async: bool,
        ttl: float | timedelta,
        namespace: str,
        stampede: StampedeOptions | None,
        clock: Callable[[], float],
        invalidation: InvalidationBus | None,
        invalidate_l1: bool | None,
        raise_on_backend_error: bool,
        generation_check_interval: float | timedelta,
        max_key_length: int,
    ) -> None:
        l1, lower = split_tiers(tiers, is_async=is_async)
        ns: object = namespace  # checked at runtime: callers may not be type-checked
        if type(ns) is not str or not namespace or "{" in namespace or "}" in namespace:
            raise ConfigurationError(
                f"namespace must be a non-empty str without '{{' or '}}', got {namespace!r}"
            )
        if not callable(clock):
            raise ConfigurationError("clock must be a zero-argument callable returning seconds")
        length: object = max_key_length
        if type(length) is not int or max_key_length < 16:
            raise ConfigurationError(f"max_key_length must be an int >= 16, got {max_key_length!r}")
        if stampede is None:
            stampede = StampedeOptions()
        elif not isinstance(stampede, StampedeOptions):
            raise ConfigurationError(
                f"stampede must be a StampedeOptions(...), got {type(stampede).__name__}"
            )
        self._ttl = to_seconds(ttl, name="ttl")
        self._namespace = namespace
        self._clock = clock
        self._raise = bool(raise_on_backend_error)
        self._gen_interval = to_seconds(generation_check_interval, name="generation_check_interval")
        self._max_len = max_key_length
        self._l1 = l1
        # The hit path reads this mapping directly; without an L1 it stays empty (a miss).
        self._records: Mapping[str, Record] = l1.records if l1 is not None else {}
        self._lower = lower
        self._counter_tier: Any = lower[-1] if lower else l1
        self._counters = Counters(len(lower))
        self._failing = [False] * (len(lower) + 1)
        self._ns = KeyScope(counter_key(namespace), None)
        self._scopes: dict[str, KeyScope] = {self._ns.counter_key: self._ns}
        self._tag_prefix = tag_counter_key(namespace, "")[:-2]  # "namespace:#tag:{"
        self._opts = stampede
        self._sp = StampedeState(stampede)
        if l1 is not None:
            l1.early_scale = self._sp.early_scale
        # Writes that could not reach the lower tiers; ``_pending`` is the hot paths' test.
        # (Few attributes: past 30, CPython 3.11 stops sharing instance-dict keys and every
        # ``self._x`` on the hit path gets slower.)
        self._repairs = PendingRepairs()
        self._pending = False
        # Set by the subclass: its single-flight and its load lock (or None).
        self._flight: Any = None
        self._dlock: Any = None
        self._bus: InvalidationBus | None = None
        self._owns_bus = False
        self._closed = False
        self._setup_bus(invalidation, invalidate_l1)

    # -- invalidation bus ------------------------------------------------------------------

    def _setup_bus(self, bus: InvalidationBus | None, invalidate_l1: bool | None) -> None:
        if invalidate_l1 is None:
            # Also without an L1 of our own: our writes must still reach the others' L1s.
            invalidate_l1 = bool(self._lower)
        if bus is None and invalidate_l1:
            for tier in self._lower:
                factory = getattr(tier, "invalidation_bus", None)  # documented, optional
                if callable(factory):
                    # One channel per namespace: a clear() in one namespace must not
                    # flush the L1 of every other cache sharing the server.
                    bus = factory(channel=f"perfprim:invalidate:{self._namespace}")
                    self._owns_bus = True
                    break
        if bus is None:
            return
        if not isinstance(bus, InvalidationBus):
            raise ConfigurationError(
                "invalidation must implement perfprim.cache.advanced.InvalidationBus "
                "(publish, start, close), e.g. RedisInvalidationBus"
            )
        self._bus = bus
        # The bus's threads hold the cache weakly: a cache dropped without close() is
        # collected, and its finalizer stops the bus it owns (no thread outlives it).
        ref = weakref.ref(self)
        bus.start(_weak_on_keys(ref), _weak_on_flush(ref))

    def _on_keys(self, keys: Sequence[str]) -> None:
        """Another process changed ``keys``: drop our L1 copies, re-read bumped generations."""
        drop = []
        tags = []
        for key in keys:
            scope = self._scopes.get(key)
            if scope is not None:
                if scope is self._ns:
                    self._forget_generations()
                else:
                    scope.check_at = _NEVER
            elif key.startswith(self._tag_prefix):
                tags.append(key)
            else:
                drop.append(key)
        if drop:
            self._sp.forget_errors(drop)
            if self._l1 is not None:
                self._l1.delete(drop)
        if tags:
            self._tag_invalidated(tags)

    def _on_flush(self) -> None:
        """Flush message or a reconnect after a gap: clear L1 and re-read every generation."""
        if self._l1 is not None:
            self._l1.clear()
        self._sp.forget_errors(None)
        self._forget_generations()

    def _forget_generations(self) -> None:
        for scope in list(self._scopes.values()):
            scope.check_at = _NEVER

    def _publish(self, keys: Sequence[str]) -> None:
        if self._bus is not None:
            self._bus.publish(keys)

    # -- keys, generations and tags --------------------------------------------------------

    def _body(self, key: str) -> str:
        if type(key) is not str:
            raise ConfigurationError(
                f"cache keys are str, got {type(key).__name__}: convert the key with str() "
                "or use cached() which encodes arguments"
            )
        if len(key) <= self._max_len and "{" not in key and "}" not in key:
            return key
        return safe_body(key, self._max_len)

    def _remember_key(self, scope: KeyScope, key: str) -> str:
        """Validate ``key``, build its full key under ``scope`` and remember it (bounded)."""
        # Memo before prefix: _apply_generation swaps the prefix first, then the memo,
        # so a full key built under an old prefix can only land in the old memo.
        memo = scope.full_keys
        fk = f"{scope.prefix}{self._body(key)}}}"
        if len(memo) >= FULL_KEY_MEMO_SIZE:
            memo.clear()
        memo[key] = fk
        return fk

    def _function_scope(self, qualname: str) -> KeyScope:
        key = function_counter_key(self._namespace, qualname)
        scope = self._scopes.get(key)
        if scope is None:
            scope = KeyScope(key, self._ns)
            self._scopes[key] = scope
        return scope

    def _tag_keys(self, tags: Sequence[str] | None) -> list[str]:
        """The counter keys of ``tags`` (validated: non-empty strs), in order, deduplicated."""
        if not tags:
            return []
        if isinstance(tags, str):
            raise ConfigurationError(
                f"tags is a list of str, got the str {tags!r}: write tags=[{tags!r}]"
            )
        keys: dict[str, None] = {}
        for tag in tags:
            if type(tag) is not str or not tag or "\0" in tag:
                raise ConfigurationError(f"a tag is a non-empty str without NUL, got {tag!r}")
            keys[tag_counter_key(self._namespace, tag)] = None
        return list(keys)

    def _tag_invalidated(self, keys: Sequence[str]) -> None:
        """``keys`` (tag counter keys) were invalidated: drop the tagged L1 copies."""
        if self._l1 is not None:
            self._l1.drop_tags(keys)

    def _apply_generation(self, scope: KeyScope, value: int | None, now: float) -> None:
        """Record a counter value read (``None``: the read failed, keep the last one)."""
        if value is not None:
            scope.generation = value
        parent = scope.parent
        if parent is None:
            generation = str(scope.generation)
        else:
            generation = f"{parent.generation}.{scope.generation}"
        prefix = key_prefix(self._namespace, generation)
        if prefix != scope.prefix:
            scope.prefix = prefix
            scope.full_keys = {}
        scope.check_at = now + self._gen_interval
        if parent is not None and parent.check_at < scope.check_at:
            # Re-read together with the namespace: a clear() elsewhere must reach us too.
            scope.check_at = parent.check_at

    def _after_bump(self, scope: KeyScope, value: int | None, now: float) -> None:
        if value is None:
            # The INCR did not reach the counter tier: apply it later, and until then
            # move this process off the old keys with a local generation of its own.
            self._add_pending(bumps=[scope.counter_key])
            value = scope.generation + 1
        self._apply_generation(scope, value, now)
        if scope is self._ns:
            for other in list(self._scopes.values()):
                if other is not scope:
                    other.check_at = _NEVER
            if self._l1 is not None:
                self._l1.clear()
            self._sp.forget_errors(None)
            self._publish([])
        else:
            self._publish([scope.counter_key])

    # -- pending repairs -------------------------------------------------------------------

    def _add_pending(self, *, deletes: Sequence[str] = (), bumps: Sequence[str] = ()) -> None:
        """Remember writes that did not reach the lower tiers (bounded: overflow clears)."""
        repairs = self._repairs
        with repairs.lock:
            first = not self._pending
            repairs.deletes.update(dict.fromkeys(deletes))
            repairs.bumps.update(dict.fromkeys(bumps))
            if len(repairs.deletes) > _MAX_PENDING:
                # Too many keys to remember: retire the whole namespace instead.
                repairs.deletes.clear()
                repairs.bumps[self._ns.counter_key] = None
            self._pending = True
        if first:
            self._repair_soon()

    def _repair_soon(self) -> None:
        """Retry the pending writes in the background (the subclass starts the job)."""

    def _take_pending(self) -> tuple[list[str], list[str]]:
        repairs = self._repairs
        with repairs.lock:
            return list(repairs.deletes), list(repairs.bumps)

    def _pending_done(self, deletes: list[str], bumps: list[str]) -> None:
        repairs = self._repairs
        with repairs.lock:
            for key in deletes:
                repairs.deletes.pop(key, None)
            for key in bumps:
                repairs.bumps.pop(key, None)
            self._pending = bool(repairs.deletes or repairs.bumps)
        if bumps:
            self._forget_generations()  # re-read the counters that just moved
        logger.info(
            "perfprim cache %r: applied %d deletes and %d invalidations that had waited "
            "for the lower tiers",
            self._namespace,
            len(deletes),
            len(bumps),
        )
        # Other processes may have read the old values back meanwhile: tell them again.
        self._publish([*deletes, *(b for b in bumps if b != self._ns.counter_key)])
        if self._ns.counter_key in bumps:
            self._publish([])

    # -- errors ----------------------------------------------------------------------------

    def _tier_failed(self, index: int, exc: BackendError, operation: str) -> None:
        """Count a tier failure; re-raise it if so configured, else degrade past it."""
        self._counters.errors[index] += 1
        if self._raise:
            raise exc
        if not self._failing[index]:
            self._failing[index] = True
            logger.warning(
                "cache tier %d (%s) failed on %s; degrading to the other tiers and the loader: %s",
                index,
                self._tier_name(index),
                operation,
                exc,
            )

    def _tier_ok(self, index: int) -> None:
        if self._failing[index]:
            self._failing[index] = False
            logger.info("cache tier %d (%s) recovered", index, self._tier_name(index))

    def _tier_name(self, index: int) -> str:
        if index == 0:
            return "memory" if self._l1 is not None else "none"
        return str(getattr(self._lower[index - 1], "name", "?"))

    def _ttl_of(self, ttl: float | timedelta | None) -> float:
        return self._ttl if ttl is None else to_seconds(ttl, name="ttl")

    # -- fork ------------------------------------------------------------------------------

    def _after_fork(self) -> None:
        """In a forked child: fresh locks and no inherited in-flight state."""
        self._repairs.lock = threading.Lock()
        self._sp.after_fork()
        if self._l1 is not None:
            self._l1.after_fork()

    # -- stats -----------------------------------------------------------------------------

    def stats(self) -> CacheStats:
        """Return a snapshot of the hit, miss, load and error counters, per tier."""
        c = self._counters
        tiers: list[TierStats] = []
        if self._l1 is not None:
            tiers.append(TierStats("memory", c.l1_hits, c.l1_misses, c.errors[0], 0, None))
        tag_misses = 0
        for i, tier in enumerate(self._lower):
            state = getattr(tier, "circuit_state", None)  # optional, documented on the tiers
            tag_misses += int(getattr(tier, "tag_misses", 0))
            tiers.append(
                TierStats(
                    str(getattr(tier, "name", type(tier).__name__)),
                    c.hits[i],
                    c.misses[i],
                    c.errors[i + 1],
                    int(getattr(tier, "decode_errors", 0)),
                    None if state is None else str(state),
                )
            )
        sp = self._sp.counts(self._flight, self._dlock)
        with self._repairs.lock:
            pending = len(self._repairs.deletes) + len(self._repairs.bumps)
        return CacheStats(
            tuple(tiers),
            c.loads,
            c.load_errors,
            sum(c.errors),
            coalesced=sp.coalesced,
            wait_timeouts=sp.fail_open,
            early_refreshes=sp.early_refreshes,
            background_refreshes=sp.background_refreshes,
            stale_served=sp.stale_served,
            stale_on_error=sp.stale_on_error,
            errors_served=sp.errors_served,
            lock_waits=sp.lock_waits,
            lock_timeouts=sp.lock_timeouts,
            lock_errors=sp.lock_errors,
            tag_misses=tag_misses,
            pending_repairs=pending,
        )

    @property
    def namespace(self) -> str:
        """The prefix of every key this cache writes."""
        return self._namespace

    @property
    def ttl(self) -> float:
        """The default freshness lifetime, in seconds."""
        return self._ttl

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._closed


def _weak_on_keys(ref: weakref.ref[CacheCore]) -> Callable[[Sequence[str]], None]:
    def on_keys(keys: Sequence[str]) -> None:
        cache = ref()
        if cache is not None:
            cache._on_keys(keys)

    return on_keys


def _weak_on_flush(ref: weakref.ref[CacheCore]) -> Callable[[], None]:
    def on_flush() -> None:
        cache = ref()
        if cache is not None:
            cache._on_flush()

    return on_flush


def stop_threads(bus: InvalidationBus | None, lock: Any, background: Any) -> None:
    """Stop the threads a cache started: its own bus, its lock's watchdog, its refresh pool.

    ``close()`` calls it, and so does the finalizer of a cache dropped
    without ``close()`` (the threads hold the cache only weakly), so no
    thread outlives its cache. Never raises.
    """
    for stop in (
        bus.close if bus is not None else None,
        lock.close if lock is not None else None,
        background.abandon,
    ):
        if stop is None:
            continue
        try:
            stop()
        except Exception:  # pragma: no cover - a finalizer must not raise
            logger.debug("stopping %r failed", stop, exc_info=True)
