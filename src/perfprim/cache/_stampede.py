"""Stampede protection inside the tiered cache: its options and its per-cache state.

:class:`StampedeOptions` is the frozen, validated configuration a cache takes
(``TieredCache(..., stampede=StampedeOptions(stale_ttl=30))``);
:class:`StampedeState` is the mutable part: the keys being refreshed in the
background, the in-process memory of recent loader exceptions (negative
caching) and the counters. The decisions are in :mod:`._decisions`; the I/O
(loads under single-flight and the Redis lock, background refreshes) is the
cache's, written once in :mod:`perfprim.cache._async.tiered`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Final

from perfprim._durations import to_seconds
from perfprim.cache._lock_common import LockStats
from perfprim.cache._singleflight import SingleFlightStats, check_wait_timeout
from perfprim.cache._xfetch import MAX_NEG_LN_RAND, check_beta, uniform_open_closed
from perfprim.exceptions import ConfigurationError

__all__ = ["StampedeCounts", "StampedeOptions", "StampedeState"]

_ERROR_MEMO_SIZE: Final = 10_000


def _duration(value: float | timedelta | None, name: str) -> float:
    """``None`` -> 0.0 (off); else seconds > 0."""
    return 0.0 if value is None else to_seconds(value, name=name, example="None turns it off")


@dataclass(frozen=True, slots=True, init=False)
class StampedeOptions:
    """How a cache protects its loads against stampedes: one frozen, validated object.

    The defaults protect a cache without any tuning (single-flight, the Redis
    lock with a Redis tier, XFetch early refresh); stale serving and negative
    caching are opt-in. Durations are float seconds (a ``timedelta`` is
    accepted and converted once); ``None`` turns an optional one off.

    >>> StampedeOptions(stale_ttl=30.0).stale_ttl
    30.0
    >>> StampedeOptions(lock=False).lock
    False

    Args:
        single_flight: Coalesce concurrent loads of one key in this process:
            one caller reads the lower tiers and loads, the others get its
            value or its exception.
        wait_timeout: Longest wait for another caller's load of the same key;
            past it the waiter loads by itself (``stats().wait_timeouts``).
            ``None``: as long as the load.
        lock: With a Redis tier, take a distributed lock around each load so
            that one process loads a key at a time (the others wait for the
            value, then fail open after ``lock_wait_timeout``).
        lock_ttl: Lifetime of the Redis lock (extended while the load runs).
        lock_wait_timeout: Longest wait for another process's load.
        refresh_ttl: Lifetime of the Redis refresh token that elects one
            process per early or stale refresh (default: ``lock_ttl``).
        beta: XFetch early refresh (Vattani et al., VLDB 2015): a read may
            refresh a hot entry shortly before it expires, in the background;
            ``0`` disables it, larger refreshes earlier.
        rand: Random source in (0, 1] for XFetch; injectable for tests
            (default ``1 - random.random()``).
        stale_ttl: Seconds past expiry during which a read gets the stale
            value at once while one background refresh runs
            (stale-while-revalidate).
        stale_if_error: Seconds past expiry during which a stale value
            replaces a loader exception (``stats().stale_on_error``).
        cache_none: Cache a loader's ``None`` like any other value.
        none_ttl: Freshness of a cached ``None`` (default: the ttl of the
            load), for short negative caching.
        error_ttl: Remember a loader exception in this process for that many
            seconds and re-raise it without calling the loader.
        refresh_workers: Threads running background refreshes (sync cache;
            the asyncio cache runs them as tasks).

    Raises:
        ConfigurationError: On any invalid option; the message names the valid form.
    """

    single_flight: bool
    wait_timeout: float | None
    lock: bool
    lock_ttl: float
    lock_wait_timeout: float
    refresh_ttl: float
    beta: float
    rand: Callable[[], float]
    stale_ttl: float
    stale_if_error: float
    cache_none: bool
    none_ttl: float
    error_ttl: float
    refresh_workers: int

    def __init__(
        self,
        *,
        single_flight: bool = True,
        wait_timeout: float | timedelta | None = None,
        lock: bool = True,
        lock_ttl: float | timedelta = 10.0,
        lock_wait_timeout: float | timedelta = 5.0,
        refresh_ttl: float | timedelta | None = None,
        beta: float = 1.0,
        rand: Callable[[], float] | None = None,
        stale_ttl: float | timedelta | None = None,
        stale_if_error: float | timedelta | None = None,
        cache_none: bool = True,
        none_ttl: float | timedelta | None = None,
        error_ttl: float | timedelta | None = None,
        refresh_workers: int = 4,
    ) -> None:
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
        if rand is not None and not callable(rand):
            raise ConfigurationError(
                "rand must be a zero-argument callable returning a float in (0, 1]"
            )
        lock_ttl_s = to_seconds(lock_ttl, name="lock_ttl")
        values: dict[str, object] = {
            "single_flight": single_flight,
            "wait_timeout": check_wait_timeout(wait_timeout, name="wait_timeout"),
            "lock": lock,
            "lock_ttl": lock_ttl_s,
            "lock_wait_timeout": to_seconds(lock_wait_timeout, name="lock_wait_timeout"),
            "refresh_ttl": _duration(refresh_ttl, "refresh_ttl") or lock_ttl_s,
            "beta": check_beta(beta),
            "rand": rand if rand is not None else uniform_open_closed,
            "stale_ttl": _duration(stale_ttl, "stale_ttl"),
            "stale_if_error": _duration(stale_if_error, "stale_if_error"),
            "cache_none": cache_none,
            "none_ttl": _duration(none_ttl, "none_ttl"),
            "error_ttl": _duration(error_ttl, "error_ttl"),
            "refresh_workers": refresh_workers,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def keep_stale(self) -> float:
        """How long past expiry entries stay in the tiers (``stale_until - expires_at``)."""
        return max(self.stale_ttl, self.stale_if_error)


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
    lock_errors: int


class StampedeState:
    """Per-cache mutable stampede state: refreshes running, remembered errors, counters."""

    def __init__(self, opts: StampedeOptions) -> None:
        self.opts = opts
        self.rand: Callable[[], float] = opts.rand
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

    # -- counters --------------------------------------------------------------------------

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
                lock_errors=lstats.errors if lstats else 0,
            )

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held it) and no refreshes."""
        self.lock = threading.Lock()
        self.refreshing = set()
