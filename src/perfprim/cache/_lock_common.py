"""The distributed load lock's shared parts: protocol, key names, scripts, lease, counters.

The lock itself is :class:`~perfprim.cache._async.lock.AsyncRedisLock`
(written once) and its generated twin :class:`~perfprim.cache._sync.lock.RedisLock`.

The protocol, for a full key ``K`` (which carries a Redis Cluster hash tag,
so every key below lands on the value's slot):

- **Acquire**: ``SET K:lock <token> NX PX <ttl>`` and ``EXISTS K`` in one
  script (one round trip, never on the hit path): the winner learns whether a
  previous holder has just written the value, and then reads it instead of
  loading. The token (random, per acquisition) owns the lock.
- **Watchdog**: while the load runs, the lock is extended every ``ttl / 3``
  by a compare-and-pexpire script, so a slow load never loses its lock; a
  holder that dies stops extending and its lock expires after ``ttl``.
- **Release**: a compare-and-delete script deletes the lock only if the token
  still owns it, and pushes one wake-up per registered waiter onto ``K:lock:done``.
- **Wait**: a loser registers itself with one script call (which also tells it
  whether the lock is still held) and blocks on ``BLPOP K:lock:done`` in
  slices, at most ``wait_timeout`` seconds in all; then it reads the value. A
  slice ends well inside the client's socket timeout *including* the server's
  timer resolution (a ``BLPOP`` of 0.16 s returns after 0.19-0.21 s at the
  default ``hz 10``), and a slice the client still times out is a slice
  ended, not an error: the next registration finds out whether the lock is
  still held. When the bound runs out the waiter *fails open* and loads by
  itself (counted, logged).
- **Refresh token**: ``SET K:refresh 1 NX PX <ttl>`` lets exactly one process
  win an early (XFetch) or background (stale-while-revalidate) refresh.

Scripts are package data (``perfprim/cache/lua/*.lua``) run with EVALSHA and
reloaded on ``NOSCRIPT`` (redis-py's ``Script``). Driver errors become
:class:`~perfprim.exceptions.BackendError`.
"""

from __future__ import annotations

import enum
import functools
import importlib.resources
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

from perfprim._durations import to_seconds
from perfprim._optional import require
from perfprim.cache._redis_common import LEAKED_DRIVER_ERRORS
from perfprim.exceptions import ConfigurationError, LockTimeoutError

__all__ = [
    "MISSING",
    "Lease",
    "LockBase",
    "LockKeys",
    "LockStats",
    "Missing",
    "has_hash_tag",
    "key_set",
    "lock_keys",
    "wait_slice",
]

_log = logging.getLogger("perfprim.cache")


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing.MISSING
"""Returned by a ``read`` callable to say "no value yet" (``None`` is a value)."""

Missing = Literal[_Missing.MISSING]

_MAX_SLICE = 1.0  # longest single BLPOP, in seconds: bounds the reaction to a dead holder
_MIN_SLICE = 0.01
_SERVER_TIMER = 0.1  # a blocking command's timeout fires on the server's cron: 1 / hz (10)
_MARGIN = 0.03  # a busy server or client: what a slice keeps apart from the socket timeout


@functools.cache
def _script_source(name: str) -> str:
    return importlib.resources.files("perfprim.cache").joinpath(f"lua/{name}.lua").read_text()


def _hash_tagged(key: str) -> str:
    """Return ``key`` if it has a Redis Cluster hash tag, else ``{key}``.

    Keys built by the cache always carry one (``ns:gen:{body}``), so the lock
    lands on the value's slot. A bare key is wrapped so that at least the
    lock's own keys share a slot (the Lua scripts touch several).
    """
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key
    return "{" + key + "}"


def has_hash_tag(key: str) -> bool:
    """Whether ``key`` carries a Redis Cluster hash tag (then the lock shares its slot)."""
    return _hash_tagged(key) is key


@dataclass(frozen=True, slots=True)
class LockKeys:
    """The Redis keys the lock uses for one cache key."""

    lock: str
    waiters: str
    done: str
    refresh: str


def lock_keys(key: str) -> tuple[str, str, str, str]:
    """Return the Redis keys the lock uses for ``key``: lock, waiters, wake-ups, refresh.

    Args:
        key: The full cache key (ideally with a hash tag, as the cache builds them).

    Returns:
        ``(K:lock, K:lock:waiters, K:lock:done, K:refresh)`` where ``K`` is
        ``key`` (or ``{key}`` if it has no hash tag).

    Examples:
        >>> lock_keys("shop:0:{user:1}")[0]
        'shop:0:{user:1}:lock'
        >>> lock_keys("plain")[3]
        '{plain}:refresh'
    """
    k = key_set(key)
    return (k.lock, k.waiters, k.done, k.refresh)


def key_set(key: str) -> LockKeys:
    """The :class:`LockKeys` of ``key`` (see :func:`lock_keys`)."""
    base = _hash_tagged(key)
    return LockKeys(base + ":lock", base + ":lock:waiters", base + ":lock:done", base + ":refresh")


def wait_slice(socket_timeout: float | None) -> float:
    """The longest single ``BLPOP`` a waiter sends, for a client with ``socket_timeout``.

    The server answers a blocking command up to one timer tick (``1 / hz``,
    0.1 s by default) after its timeout, so a slice must stay that far (plus
    a margin) inside the socket timeout, or the client gives up first.

    >>> wait_slice(0.2)
    0.07
    >>> wait_slice(None), wait_slice(30.0)
    (1.0, 1.0)
    """
    if socket_timeout is None:
        return _MAX_SLICE
    return round(min(_MAX_SLICE, max(_MIN_SLICE, socket_timeout - _SERVER_TIMER - _MARGIN)), 6)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _socket_timeout(client: object) -> float | None:
    """Best effort: the client's socket timeout, so a BLPOP slice never exceeds it."""
    for path in (
        ("connection_pool", "connection_kwargs"),
        ("nodes_manager", "connection_kwargs"),
        ("connection_kwargs",),
    ):
        obj: Any = client
        for attr in path:
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, dict):
            timeout = obj.get("socket_timeout")
            return float(timeout) if isinstance(timeout, (int, float)) else None
    return None


@dataclass(frozen=True, slots=True)
class LockStats:
    """Counters of one lock object since it was built.

    Attributes:
        acquired: Locks taken (this process loaded).
        waits: Times a caller found the lock held and waited for the holder.
        timeouts: Waits that ran out (the caller failed open or raised).
        errors: Redis errors around the lock (the caller failed open).
        lost: Locks that expired or changed owner before their release.
        refresh_won: Refresh tokens won (early or background refreshes started).
        refresh_lost: Refresh tokens already taken by another process.
    """

    acquired: int
    waits: int
    timeouts: int
    errors: int
    lost: int
    refresh_won: int
    refresh_lost: int


class Lease:
    """A held lock: its key, its owner token and whether it was lost.

    Returned by ``acquire``; give it back to ``release``.
    """

    __slots__ = ("extended_at", "key", "lost", "token", "value_present")

    def __init__(self, key: str, token: str, value_present: bool | None = None) -> None:
        self.key = key
        self.token = token
        self.lost = False
        self.value_present = value_present
        """Whether the value existed when the lock was taken (``None``: not checked)."""
        self.extended_at = 0.0
        """When the watchdog last extended the lock (``time.monotonic()``)."""

    def __repr__(self) -> str:
        return f"Lease(key={self.key!r}, lost={self.lost})"


class LockBase:
    """Configuration, key names, scripts and counters of the lock (its sync and async twins)."""

    def __init__(
        self,
        client: Any,
        *,
        ttl: float | timedelta,
        wait_timeout: float | timedelta,
        refresh_ttl: float | timedelta,
        watchdog: bool,
        fail_open: bool,
    ) -> None:
        if client is None:
            raise ConfigurationError(
                "the lock needs a redis-py client: redis.Redis, redis.cluster.RedisCluster "
                "or their redis.asyncio twins"
            )
        self._client = client
        self.ttl = to_seconds(ttl, name="ttl")
        self.wait_timeout = to_seconds(wait_timeout, name="wait_timeout")
        self.refresh_ttl = to_seconds(refresh_ttl, name="refresh_ttl")
        self.watchdog = watchdog
        self.fail_open = fail_open
        self._slice = wait_slice(_socket_timeout(client))
        self._ttl_ms = _ms(self.ttl)
        self._refresh_ms = _ms(self.refresh_ttl)
        self._counter_lock = threading.Lock()
        self._acquired = 0
        self._waits = 0
        self._timeouts = 0
        self._errors = 0
        self._lost = 0
        self._refresh_won = 0
        self._refresh_lost = 0
        self._bind(client)
        redis = require("redis", package="redis", extra="redis", feature="RedisLock")
        self._error: tuple[type[Exception], ...] = (
            redis.exceptions.RedisError,
            *LEAKED_DRIVER_ERRORS,
        )
        # A BLPOP the client times out is a slice ended (see the module docstring).
        self._slice_ended: tuple[type[BaseException], ...] = (
            redis.exceptions.TimeoutError,
            TimeoutError,
        )

    def _count(self, name: str) -> None:
        with self._counter_lock:
            setattr(self, name, getattr(self, name) + 1)

    def stats(self) -> LockStats:
        """Return the counters (a consistent snapshot)."""
        with self._counter_lock:
            return LockStats(
                acquired=self._acquired,
                waits=self._waits,
                timeouts=self._timeouts,
                errors=self._errors,
                lost=self._lost,
                refresh_won=self._refresh_won,
                refresh_lost=self._refresh_lost,
            )

    def set_release_call(
        self, lease: Lease, data: bytes, px: int | None
    ) -> tuple[Any, list[str], list[object]]:
        """The script, keys and args that store the value and release ``lease`` at once."""
        keys = key_set(lease.key)
        return (
            self._set_release,
            [lease.key, keys.lock, keys.waiters, keys.done],
            [data, "" if px is None else px, lease.token, self._ttl_ms],
        )

    def _bind(self, client: Any) -> None:
        """Use ``client`` for every command and script from now on."""
        self._client = client
        self._acquire = client.register_script(_script_source("acquire"))
        self._set_release = client.register_script(_script_source("set_release"))
        self._release = client.register_script(_script_source("release"))
        self._extend = client.register_script(_script_source("extend"))
        self._register = client.register_script(_script_source("wait"))

    def record_fail_open(self, key: str, why: str) -> None:
        """Count and log a caller that loads without the lock after a Redis error around it."""
        self._failed_open(key, why, "_errors")

    def _failed_open(self, key: str, why: str, counter: str) -> None:
        """Count and log a caller that loads without the lock."""
        self._count(counter)
        _log.warning(
            "perfprim lock on %r: %s; loading without the lock (another process may load too)",
            key,
            why,
        )

    def _timeout_error(self, key: str, waited: float) -> LockTimeoutError:
        self._count("_timeouts")
        return LockTimeoutError(
            f"waited {waited:.3f} s for another process's load of {key!r}; raise "
            "wait_timeout or build the lock with fail_open=True to load instead"
        )
