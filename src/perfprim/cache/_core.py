"""What ``TieredCache`` and ``AsyncTieredCache`` share: configuration, keys, generations, stats.

The two caches repeat only their I/O methods (httpx's ``BaseClient`` model);
everything that decides without I/O lives here or in :mod:`._policy`.

Generations: every full key carries the namespace's generation (bumped by
``clear()``) and, for ``cached`` functions, the function's generation (bumped
by ``invalidate_all()``). A bump is one ``INCR`` on the counter tier (the last
tier: Redis when present). Old keys are never scanned: they become
unreachable and expire. Each process caches the generations it read, so the
hit path makes no round trip; it learns of another process's bump from the
invalidation bus (the bumped counter's key, or a flush) and, as a fallback,
re-reads its generations every ``generation_check_interval`` seconds.

Extension points (stampede protection, XFetch, stale serving):

- Every load goes through ``_load(fk, loader, ttl, stale)`` (a coroutine in the
  async cache): wrap it for single-flight and the distributed lock
  (``fk + ":lock"`` shares the key's cluster slot). ``stale`` is the expired
  entry met on the way, for stale-while-revalidate and stale-if-error.
- Every freshness decision is in :mod:`._policy`; entries carry ``delta`` and
  ``stale_until`` already (``entry_from_load(..., stale_ttl=)``).
- The L1 hit path only compares ``now < record[0]``. XFetch stores in
  ``record[0]`` the time after which a read must take the slow path and draw
  (``expires_at - 36.7 * delta * beta``), keeping the entry in ``record[2]``
  and the L1 copy's own validity in ``record[4]``.

Issue 4 fills these in: :mod:`._stampede` holds the options, the read
decision and the counters; the caches' ``_miss`` / ``_load_guarded`` /
``_start_refresh`` are the I/O glue (single-flight, the Redis lock,
background refresh by thread or task).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from perfprim._durations import to_seconds
from perfprim.cache._keys import (
    DEFAULT_MAX_BODY_LENGTH,
    counter_key,
    function_counter_key,
    key_prefix,
    safe_body,
)
from perfprim.cache._memory import MemoryTier, Record
from perfprim.cache._protocols import InvalidationBus
from perfprim.cache._stampede import (
    StampedeOptions,
    StampedeState,
    find_lock_tier,
    stampede_options,
)
from perfprim.cache._stats import CacheStats, Counters, TierStats
from perfprim.exceptions import BackendError, ConfigurationError

__all__ = ["FULL_KEY_MEMO_SIZE", "CacheCore", "GenerationState"]

logger = logging.getLogger("perfprim.cache")

_NEVER = float("-inf")
FULL_KEY_MEMO_SIZE = 4096


class GenerationState:
    """The cached generation of the namespace or of one ``cached`` function.

    ``prefix`` is what every full key of that scope starts with; the hit path
    reads it and ``check_at`` (when to re-read the counter) and nothing else.
    """

    __slots__ = ("check_at", "counter_key", "full_keys", "generation", "parent", "prefix")

    def __init__(self, counter_key: str, parent: GenerationState | None) -> None:
        self.counter_key = counter_key
        self.parent = parent
        self.generation = 0
        self.prefix = ""
        self.check_at = _NEVER
        # user key (or a cached function's single int/str argument) -> full key under
        # ``prefix``: the hit path does one dict lookup instead of validating and
        # formatting the key, and the full key's hash is computed once. Replaced when
        # the prefix changes; bounded by FULL_KEY_MEMO_SIZE.
        self.full_keys: dict[object, str] = {}


class CacheCore:
    """Shared state and pure logic of the sync and async tiered caches (private)."""

    def __init__(
        self,
        l1: MemoryTier | None,
        lower: tuple[Any, ...],
        *,
        ttl: float | timedelta,
        namespace: str,
        clock: Callable[[], float],
        invalidation: InvalidationBus | None,
        invalidate_l1: bool | None,
        raise_on_backend_error: bool,
        generation_check_interval: float | timedelta,
        max_key_length: int,
        stampede: StampedeOptions | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        if l1 is None and not lower:
            raise ConfigurationError(
                "a cache needs at least one tier: pass MemoryTier(...) and/or a Redis tier"
            )
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
        self._ttl = to_seconds(ttl, name="ttl")
        self._namespace = namespace
        self._clock = clock
        self._raise = bool(raise_on_backend_error)
        self._gen_interval = to_seconds(generation_check_interval, name="generation_check_interval")
        self._max_len = max_key_length
        self._l1 = l1
        # The hit path reads this dict directly; without an L1 it stays empty (always a miss).
        self._records: dict[str, Record] = l1._records if l1 is not None else {}
        self._lower = lower
        self._counter_tier: Any = lower[-1] if lower else l1
        self._counter_index = len(lower) if lower else 0
        self._counters = Counters(len(lower))
        self._failing = [False] * (len(lower) + 1)
        self._ns = GenerationState(counter_key(namespace), None)
        self._states: dict[str, GenerationState] = {self._ns.counter_key: self._ns}
        self._bus: InvalidationBus | None = None
        self._owns_bus = False
        self._closed = False
        opts = stampede if stampede is not None else stampede_options()
        self._sp = StampedeState(opts, rand)
        self._opts = opts
        if l1 is not None:
            l1.early_scale = self._sp.early_scale
        # Set by the subclass: its SingleFlight / AsyncSingleFlight and RedisLock / AsyncRedisLock.
        self._flight: Any = None
        self._dlock: Any = None
        self._lock_tier: Any = find_lock_tier(lower) if opts.lock else None
        self._lock_index = 1 + lower.index(self._lock_tier) if self._lock_tier is not None else 0
        # The lock tier, if it counts undecodable payloads: a read that met one must not let
        # the lock re-read the key. ``None`` skips that bookkeeping on the L2 path.
        self._undecodable: Any = (
            self._lock_tier if hasattr(self._lock_tier, "decode_errors") else None
        )
        # XFetch's beta, for the hit path's "no early-refresh window yet" test.
        self._beta = opts.beta
        self._setup_bus(invalidation, invalidate_l1)

    # -- invalidation bus ------------------------------------------------------------------

    def _setup_bus(self, bus: InvalidationBus | None, invalidate_l1: bool | None) -> None:
        if invalidate_l1 is None:
            # Also without an L1 of our own: our writes must still reach the others' L1s.
            invalidate_l1 = bool(self._lower)
        if bus is None and invalidate_l1:
            for tier in self._lower:
                factory = getattr(tier, "invalidation_bus", None)
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
                "invalidation must implement perfprim.cache.InvalidationBus "
                "(publish, start, close), e.g. RedisInvalidationBus"
            )
        self._bus = bus
        # Listen even without an L1: generation bumps from other processes arrive here too.
        bus.start(self._on_keys, self._on_flush)

    def _on_keys(self, keys: Sequence[str]) -> None:
        """Another process changed ``keys``: drop our L1 copies, re-read bumped generations."""
        drop = []
        for key in keys:
            state = self._states.get(key)
            if state is None:
                drop.append(key)
            elif state is self._ns:
                self._forget_generations()
            else:
                state.check_at = _NEVER
        if drop:
            self._sp.forget_errors(drop)
            if self._l1 is not None:
                self._l1.delete(drop)

    def _on_flush(self) -> None:
        """Flush message or a reconnect after a gap: clear L1 and re-read every generation."""
        if self._l1 is not None:
            self._l1.clear()
        self._sp.forget_errors(None)
        self._forget_generations()

    def _forget_generations(self) -> None:
        for state in list(self._states.values()):
            state.check_at = _NEVER

    def _publish(self, keys: Sequence[str]) -> None:
        if self._bus is not None:
            self._bus.publish(keys)

    # -- keys and generations --------------------------------------------------------------

    def _body(self, key: str) -> str:
        if type(key) is not str:
            raise ConfigurationError(
                f"cache keys are str, got {type(key).__name__}: convert the key with str() "
                "or use cached() which encodes arguments"
            )
        if len(key) <= self._max_len and "{" not in key and "}" not in key:
            return key
        return safe_body(key, self._max_len)

    def _remember_key(self, state: GenerationState, key: str) -> str:
        """Validate ``key``, build its full key under ``state`` and remember it (bounded)."""
        # Memo before prefix: _apply_generation swaps the prefix first, then the memo,
        # so a full key built under an old prefix can only land in the old memo.
        memo = state.full_keys
        fk = f"{state.prefix}{self._body(key)}}}"
        if len(memo) >= FULL_KEY_MEMO_SIZE:
            memo.clear()
        memo[key] = fk
        return fk

    def _function_state(self, qualname: str) -> GenerationState:
        key = function_counter_key(self._namespace, qualname)
        state = self._states.get(key)
        if state is None:
            state = GenerationState(key, self._ns)
            self._states[key] = state
        return state

    def _apply_generation(self, state: GenerationState, value: int | None, now: float) -> None:
        """Record a counter value read (``None``: the read failed, keep the last one)."""
        if value is not None:
            state.generation = value
        parent = state.parent
        if parent is None:
            generation = str(state.generation)
        else:
            generation = f"{parent.generation}.{state.generation}"
        prefix = key_prefix(self._namespace, generation)
        if prefix != state.prefix:
            state.prefix = prefix
            state.full_keys = {}
        state.check_at = now + self._gen_interval
        if parent is not None and parent.check_at < state.check_at:
            # Re-read together with the namespace: a clear() elsewhere must reach us too.
            state.check_at = parent.check_at

    def _after_bump(self, state: GenerationState, value: int | None, now: float) -> None:
        self._apply_generation(state, value, now)
        if state is self._ns:
            for other in list(self._states.values()):
                if other is not state:
                    other.check_at = _NEVER
            if self._l1 is not None:
                self._l1.clear()
            self._sp.forget_errors(None)
            self._publish([])
        else:
            self._publish([state.counter_key])

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

    # -- stats -----------------------------------------------------------------------------

    def stats(self) -> CacheStats:
        """Return a snapshot of the hit, miss, load and error counters, per tier."""
        c = self._counters
        tiers: list[TierStats] = []
        if self._l1 is not None:
            tiers.append(TierStats("memory", c.l1_hits, c.l1_misses, c.errors[0], 0, None))
        for i, tier in enumerate(self._lower):
            state = getattr(tier, "circuit_state", None)
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
        )

    @property
    def namespace(self) -> str:
        """The prefix of every key this cache writes."""
        return self._namespace

    @property
    def ttl(self) -> float:
        """The default freshness lifetime, in seconds."""
        return self._ttl


DEFAULT_GENERATION_CHECK_INTERVAL = 5.0
"""Seconds between re-reads of the cached generations (fallback when a bus message is lost)."""

__all__ += ["DEFAULT_GENERATION_CHECK_INTERVAL", "DEFAULT_MAX_BODY_LENGTH"]
