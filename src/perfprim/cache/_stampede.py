"""Stampede protection inside the tiered caches: options and decisions shared by sync and async.

``TieredCache`` and ``AsyncTieredCache`` hold one :class:`StampedeState`
each. Everything here is free of I/O: the options (validated once), the read
decision (:func:`read_action`: XFetch plus the split between the
stale-while-revalidate window and the stale-if-error grace period), the set
of keys being refreshed in the background, and the in-process memory of
recent loader exceptions (negative caching). The caches' I/O glue (loads
under single-flight and the Redis lock, background refresh by thread or task)
stays in ``_tiered.py`` and ``_async_tiered.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Final

from perfprim._durations import to_seconds
from perfprim.cache._entry import Entry
from perfprim.cache._lock import LockStats
from perfprim.cache._singleflight import SingleFlightStats, check_wait_timeout
from perfprim.cache._xfetch import (
    MAX_NEG_LN_RAND,
    Decision,
    check_beta,
    decide_lazy,
    uniform_open_closed,
)
from perfprim.exceptions import ConfigurationError

__all__ = ["StampedeOptions", "StampedeState", "read_action", "stampede_options"]

_STALE: Final = Decision.STALE
_MISS: Final = Decision.MISS
_ERROR_MEMO_SIZE: Final = 10_000


def _duration(value: float | timedelta | None, name: str) -> float:
    """``None`` -> 0.0 (off); else seconds > 0."""
    return 0.0 if value is None else to_seconds(value, name=name, example="None turns it off")


@dataclass(frozen=True, slots=True)
class StampedeOptions:
    """The stampede options of one cache, validated (seconds; 0.0 means off)."""

    single_flight: bool
    lock: bool
    beta: float
    stale_ttl: float
    stale_if_error: float
    cache_none: bool
    none_ttl: float
    error_ttl: float
    wait_timeout: float | None
    lock_ttl: float
    lock_wait_timeout: float
    refresh_ttl: float
    refresh_workers: int

    @property
    def keep_stale(self) -> float:
        """How long past expiry entries stay in the tiers (``stale_until - expires_at``)."""
        return max(self.stale_ttl, self.stale_if_error)


def stampede_options(
    *,
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
) -> StampedeOptions:
    """Validate the cache's stampede options once, at construction.

    Raises:
        ConfigurationError: On any invalid option; the message names the valid form.
    """
    for name, flag in (
        ("single_flight", single_flight),
        ("lock", lock),
        ("cache_none", cache_none),
    ):
        if not isinstance(flag, bool):
            raise ConfigurationError(f"{name} must be True or False, got {flag!r}")
    workers: object = refresh_workers
    if type(workers) is not int or refresh_workers < 1:
        raise ConfigurationError(
            f"refresh_workers must be an int >= 1 (threads for background refreshes), "
            f"got {refresh_workers!r}"
        )
    lock_ttl_s = _duration(lock_ttl, "lock_ttl")
    return StampedeOptions(
        single_flight=single_flight,
        lock=lock,
        beta=check_beta(beta),
        stale_ttl=_duration(stale_ttl, "stale_ttl"),
        stale_if_error=_duration(stale_if_error, "stale_if_error"),
        cache_none=cache_none,
        none_ttl=_duration(none_ttl, "none_ttl"),
        error_ttl=_duration(error_ttl, "error_ttl"),
        wait_timeout=check_wait_timeout(wait_timeout, name="wait_timeout"),
        lock_ttl=lock_ttl_s,
        lock_wait_timeout=_duration(lock_wait_timeout, "lock_wait_timeout"),
        refresh_ttl=_duration(refresh_ttl, "refresh_ttl") or lock_ttl_s,
        refresh_workers=refresh_workers,
    )


def read_action(
    entry: Entry | None, now: float, opts: StampedeOptions, source: Callable[[], float]
) -> Decision:
    """What a read that missed the L1 fast path does with the entry it found.

    XFetch (:func:`~perfprim.cache._xfetch.decide_lazy`), then the stale
    window split: past expiry an entry is served stale (with one background
    refresh) only within ``stale_ttl``; between ``stale_ttl`` and
    ``stale_until`` it is kept only as the stale-if-error fallback, so the
    read is a MISS that waits for the loader.

    Args:
        entry: The entry found (L1 copy or lower tier), or ``None``.
        now: Wall-clock seconds.
        opts: The cache's options.
        source: Random source in (0, 1] for XFetch.

    Returns:
        The :class:`~perfprim.cache.Decision`.
    """
    decision = decide_lazy(entry, now, beta=opts.beta, source=source)
    if decision is _STALE and entry is not None and now >= entry.expires_at + opts.stale_ttl:
        return _MISS
    return decision


@dataclass(frozen=True, slots=True)
class StampedeCounts:
    """The stampede part of ``CacheStats`` (private carrier)."""

    coalesced: int
    fail_open: int
    early_refreshes: int
    background_refreshes: int
    stale_served: int
    stale_on_error: int
    errors_served: int
    lock_waits: int
    lock_timeouts: int


class StampedeState:
    """Per-cache mutable stampede state: refreshes running, remembered errors, counters."""

    def __init__(self, opts: StampedeOptions, rand: Callable[[], float] | None) -> None:
        if rand is not None and not callable(rand):
            raise ConfigurationError(
                "rand must be a zero-argument callable returning a float in (0, 1]"
            )
        self.opts = opts
        self.rand: Callable[[], float] = rand if rand is not None else uniform_open_closed
        self.early_scale = opts.beta * MAX_NEG_LN_RAND
        self.lock = threading.Lock()
        self.refreshing: set[str] = set()
        self.errors: dict[str, tuple[float, BaseException, TracebackType | None]] = {}
        self.early_refreshes = 0
        self.background_refreshes = 0
        self.stale_served = 0
        self.stale_on_error = 0
        self.errors_served = 0

    # -- background refreshes ------------------------------------------------------------

    def claim_refresh(self, fk: str) -> bool:
        """Return ``True`` if no refresh of ``fk`` runs in this process (and mark one running)."""
        with self.lock:
            if fk in self.refreshing:
                return False
            self.refreshing.add(fk)
            return True

    def end_refresh(self, fk: str) -> None:
        """Mark the background refresh of ``fk`` finished."""
        with self.lock:
            self.refreshing.discard(fk)

    def count_refresh(self, *, early: bool) -> None:
        """Count one refresh that actually runs."""
        with self.lock:
            if early:
                self.early_refreshes += 1
            else:
                self.background_refreshes += 1

    # -- negative caching of exceptions ----------------------------------------------------

    def remembered_error(self, fk: str, now: float) -> BaseException | None:
        """The exception a recent load of ``fk`` raised, while ``error_ttl`` lasts."""
        if not self.errors:
            return None
        item = self.errors.get(fk)
        if item is None:
            return None
        if now < item[0]:
            with self.lock:
                self.errors_served += 1
            # Reset to the loader's own traceback: re-raising the same object would
            # otherwise grow its traceback by the caller's frames on every call.
            return item[1].with_traceback(item[2])
        self.errors.pop(fk, None)
        return None

    def remember_error(self, fk: str, exc: BaseException, now: float) -> None:
        """Remember that loading ``fk`` raised ``exc`` (only with ``error_ttl``)."""
        if not self.opts.error_ttl:
            return
        with self.lock:
            if len(self.errors) >= _ERROR_MEMO_SIZE:
                self.errors.clear()  # bounded: a burst of distinct failing keys
            self.errors[fk] = (now + self.opts.error_ttl, exc, exc.__traceback__)

    def forget_errors(self, fks: list[str] | None) -> None:
        """Drop remembered errors for ``fks`` (all of them for ``None``): a write or delete."""
        if not self.errors:
            return
        with self.lock:
            if fks is None:
                self.errors.clear()
            else:
                for fk in fks:
                    self.errors.pop(fk, None)

    # -- stale fallbacks -------------------------------------------------------------------

    def stale_fallback(self, stale: Entry | None, now: float) -> bool:
        """Whether ``stale`` may replace a failed load (stale-if-error)."""
        grace = self.opts.stale_if_error
        return (
            stale is not None
            and grace > 0.0
            and now < stale.stale_until
            and now < stale.expires_at + grace
        )

    def count_stale(self, *, on_error: bool) -> None:
        """Count one stale value served."""
        with self.lock:
            if on_error:
                self.stale_on_error += 1
            else:
                self.stale_served += 1

    def counts(self, flight: Any, lock: Any) -> StampedeCounts:
        """Snapshot of the counters, with the single-flight and lock counters added."""
        fstats: SingleFlightStats | None = flight.stats() if flight is not None else None
        lstats: LockStats | None = lock.stats() if lock is not None else None
        with self.lock:
            return StampedeCounts(
                coalesced=fstats.coalesced if fstats else 0,
                fail_open=fstats.fail_open if fstats else 0,
                early_refreshes=self.early_refreshes,
                background_refreshes=self.background_refreshes,
                stale_served=self.stale_served,
                stale_on_error=self.stale_on_error,
                errors_served=self.errors_served,
                lock_waits=lstats.waits if lstats else 0,
                lock_timeouts=lstats.timeouts if lstats else 0,
            )


def find_lock_tier(lower: tuple[Any, ...]) -> Any:
    """The first lower tier exposing a redis-py ``client`` (a Redis tier), or ``None``."""
    for tier in lower:
        if getattr(tier, "client", None) is not None:
            return tier
    return None


def tier_usable(tier: Any) -> bool:
    """Whether the lock may talk to ``tier``'s Redis: not while its circuit is open."""
    state = getattr(tier, "circuit_state", "closed")
    return state is None or str(state) == "closed"
