"""Distributed load lock on Redis: at most one process loads a key at a time.

The protocol, for a full key ``K`` (which carries a Redis Cluster hash tag,
so every key below lands on the value's slot):

- **Acquire**: ``SET K:lock <token> NX PX <ttl>`` and ``EXISTS K`` in one
  script (one round trip, never on the hit path): the winner learns whether a
  previous holder has just written the value, and then reads it instead of
  loading. The token (random, per acquisition) owns the lock.
- **Watchdog**: while the load runs, the lock is extended every ``ttl / 3``
  by a compare-and-pexpire script, so a slow load never loses its lock; a
  holder that dies stops extending and its lock expires after ``ttl``. One
  daemon thread per :class:`RedisLock` serves every held lock (a task per
  lock for :class:`AsyncRedisLock`).
- **Release**: a compare-and-delete script deletes the lock only if the token
  still owns it, and pushes one wake-up per registered waiter onto ``K:lock:done``.
- **Wait**: a loser registers itself with one script call (which also tells it
  whether the lock is still held) and blocks on ``BLPOP K:lock:done``, in
  slices shorter than the client's socket timeout, at most ``wait_timeout``
  seconds; then it reads the value. A waiting process thus sends a handful of
  commands (register, BLPOP, read), not a busy poll. When the bound runs out
  it *fails open* and loads by itself.
- **Refresh token**: ``SET K:refresh 1 NX PX <ttl>`` lets exactly one process
  win an early (XFetch) or background (stale-while-revalidate) refresh.

Scripts are package data (``perfprim/cache/lua/*.lua``) run with EVALSHA and
reloaded on ``NOSCRIPT`` (redis-py's ``Script``). Driver errors become
:class:`~perfprim.exceptions.BackendError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import importlib.resources
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal, TypeVar

from perfprim._durations import to_seconds
from perfprim._optional import require
from perfprim.exceptions import BackendError, ConfigurationError, LockTimeoutError

__all__ = [
    "MISSING",
    "AsyncRedisLock",
    "Lease",
    "LockStats",
    "RedisLock",
    "lock_keys",
]

T = TypeVar("T")


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing.MISSING
"""Returned by a ``read`` callable to say "no value yet" (``None`` is a value)."""

Missing = Literal[_Missing.MISSING]

_MAX_SLICE = 1.0  # longest single BLPOP, in seconds: bounds the reaction to a dead holder
_MIN_SLICE = 0.01


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


def _has_hash_tag(key: str) -> bool:
    return _hash_tagged(key) is key


@dataclass(frozen=True, slots=True)
class _LockKeys:
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
    k = _keys(key)
    return (k.lock, k.waiters, k.done, k.refresh)


def _keys(key: str) -> _LockKeys:
    base = _hash_tagged(key)
    return _LockKeys(base + ":lock", base + ":lock:waiters", base + ":lock:done", base + ":refresh")


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

    __slots__ = ("_extended_at", "_watchdog", "key", "lost", "token", "value_present")

    def __init__(self, key: str, token: str, value_present: bool | None = None) -> None:
        self.key = key
        self.token = token
        self.lost = False
        self.value_present = value_present
        """Whether the value existed when the lock was taken (``None``: not checked)."""
        self._extended_at = 0.0
        self._watchdog: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Lease(key={self.key!r}, lost={self.lost})"


class _LockBase:
    """Configuration, key names and counters shared by the sync and async locks."""

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
        socket_timeout = _socket_timeout(client)
        slice_ = _MAX_SLICE
        if socket_timeout is not None:
            slice_ = min(slice_, max(_MIN_SLICE, socket_timeout * 0.8))
        self._slice = slice_
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
        self._acquire = client.register_script(_script_source("acquire"))
        self._set_release = client.register_script(_script_source("set_release"))
        self._release = client.register_script(_script_source("release"))
        self._extend = client.register_script(_script_source("extend"))
        self._register = client.register_script(_script_source("wait"))

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
        keys = _keys(lease.key)
        return (
            self._set_release,
            [lease.key, keys.lock, keys.waiters, keys.done],
            [data, "" if px is None else px, lease.token, self._ttl_ms],
        )

    def _timeout_error(self, key: str, waited: float) -> LockTimeoutError:
        self._count("_timeouts")
        return LockTimeoutError(
            f"waited {waited:.3f} s for another process's load of {key!r}; raise "
            "wait_timeout or build the lock with fail_open=True to load instead"
        )


def _redis_error() -> type[Exception]:
    module = require("redis", package="redis", extra="redis", feature="RedisLock")
    error: type[Exception] = module.exceptions.RedisError
    return error


class RedisLock(_LockBase):
    """Token-owned distributed load lock on a synchronous redis-py client.

    Works with ``redis.Redis`` and ``redis.cluster.RedisCluster``.

    Args:
        client: The redis-py client (its socket timeout bounds each BLPOP slice).
        ttl: Lifetime of the lock; the watchdog extends it every ``ttl / 3``
            while the load runs, so it only matters when the holder dies.
        wait_timeout: Longest wait for another process's load before failing open.
        refresh_ttl: Lifetime of the refresh token (one early or background
            refresh per key per ``refresh_ttl`` at most).
        watchdog: Extend held locks while their loads run (one daemon thread per
            ``RedisLock``, started on first use; :meth:`close` stops it).
        fail_open: When the wait runs out or Redis fails, load anyway (``True``)
            or raise ``LockTimeoutError`` / ``BackendError``.

    Raises:
        ConfigurationError: If a duration is not > 0 or ``client`` is missing.
    """

    def __init__(
        self,
        client: Any,
        *,
        ttl: float | timedelta = 10.0,
        wait_timeout: float | timedelta = 5.0,
        refresh_ttl: float | timedelta = 5.0,
        watchdog: bool = True,
        fail_open: bool = True,
    ) -> None:
        super().__init__(
            client,
            ttl=ttl,
            wait_timeout=wait_timeout,
            refresh_ttl=refresh_ttl,
            watchdog=watchdog,
            fail_open=fail_open,
        )
        self._error = _redis_error()
        self._watch_lock = threading.Lock()
        self._watch_stop = threading.Event()
        self._held: dict[int, Lease] = {}
        self._watch_thread: threading.Thread | None = None

    def acquire(self, key: str) -> Lease | None:
        """Try once to take the lock of ``key`` (``SET NX PX``); never blocks.

        Args:
            key: The full cache key.

        Returns:
            A :class:`Lease` (with its watchdog running) or ``None`` if
            another holder has it.

        Raises:
            BackendError: Redis failed.
        """
        token = secrets.token_hex(12)
        keys = _keys(key)
        try:
            if _has_hash_tag(key):
                state = int(self._acquire(keys=[keys.lock, key], args=[token, self._ttl_ms]))
            else:  # the value may live on another slot: only take the lock
                state = 1 if self._client.set(keys.lock, token, nx=True, px=self._ttl_ms) else 0
        except self._error as exc:
            raise BackendError(f"lock acquire on {keys.lock!r} failed: {exc}") from exc
        if not state:
            return None
        self._count("_acquired")
        present = None if not _has_hash_tag(key) else state == 2
        lease = Lease(key, token, present)
        if self.watchdog:
            self._watch(lease)
        return lease

    def settled(self, lease: Lease, released: bool) -> None:
        """After :meth:`set_release_call`'s script (or its failure): stop watching ``lease``."""
        self._unwatch(lease)
        if not released and not lease.lost:
            lease.lost = True
            self._count("_lost")

    def _watch(self, lease: Lease) -> None:
        """Hand ``lease`` to this lock's watchdog thread (started once, on first use)."""
        lease._extended_at = time.monotonic()
        with self._watch_lock:
            self._held[id(lease)] = lease
            if self._watch_thread is None:
                self._watch_thread = threading.Thread(
                    target=self._watch_loop, name="perfprim-lock-watchdog", daemon=True
                )
                self._watch_thread.start()

    def _unwatch(self, lease: Lease) -> None:
        with self._watch_lock:
            self._held.pop(id(lease), None)

    def close(self) -> None:
        """Stop the watchdog thread (held locks then expire after ``ttl``)."""
        self._watch_stop.set()
        thread = self._watch_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)

    def _watch_loop(self) -> None:
        # Never notified (a wake-up per acquire would cost a thread switch on every miss):
        # it polls every ttl/6, so each held lock is extended between ttl/3 and ttl/2
        # after its last extension, well before it could expire.
        interval = self.ttl / 3.0
        while not self._watch_stop.wait(interval / 2.0):
            now = time.monotonic()
            with self._watch_lock:
                due = [
                    lease for lease in self._held.values() if now - lease._extended_at >= interval
                ]
            for lease in due:
                lease._extended_at = time.monotonic()
                try:
                    if not self.extend(lease):
                        self._unwatch(lease)
                except BackendError:
                    pass  # transient: the lock lives on until its ttl; retry next round

    def extend(self, lease: Lease) -> bool:
        """Push the lock's expiry to ``ttl`` from now if ``lease`` still owns it.

        Args:
            lease: The lease from :meth:`acquire`.

        Returns:
            Whether the lock is still ours (``False`` marks the lease lost).

        Raises:
            BackendError: Redis failed.
        """
        keys = _keys(lease.key)
        try:
            ok = self._extend(keys=[keys.lock], args=[lease.token, self._ttl_ms])
        except self._error as exc:
            raise BackendError(f"lock extend on {keys.lock!r} failed: {exc}") from exc
        if not ok and not lease.lost:
            lease.lost = True
            self._count("_lost")
        return bool(ok)

    def release(self, lease: Lease) -> bool:
        """Stop the watchdog, delete the lock if ``lease`` owns it and wake the waiters.

        Args:
            lease: The lease from :meth:`acquire`.

        Returns:
            Whether the lock was still ours.

        Raises:
            BackendError: Redis failed (the lock then expires after ``ttl``).
        """
        self._unwatch(lease)
        keys = _keys(lease.key)
        try:
            ok = self._release(
                keys=[keys.lock, keys.waiters, keys.done], args=[lease.token, self._ttl_ms]
            )
        except self._error as exc:
            raise BackendError(f"lock release on {keys.lock!r} failed: {exc}") from exc
        if not ok and not lease.lost:
            lease.lost = True
            self._count("_lost")
        return bool(ok)

    def wait(self, key: str, *, timeout: float | None = None) -> bool:
        """Wait until the lock of ``key`` is released (or expires), at most ``timeout``.

        Args:
            key: The full cache key.
            timeout: Seconds (default ``wait_timeout``).

        Returns:
            ``True`` once the lock is free (read the value now), ``False`` if
            the time ran out.

        Raises:
            BackendError: Redis failed.
        """
        deadline = time.monotonic() + (self.wait_timeout if timeout is None else timeout)
        keys = _keys(key)
        for _ in range(100_000):  # bounded; the deadline ends it long before
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                ttl_ms = self._register(keys=[keys.lock, keys.waiters], args=[self._ttl_ms])
                if not ttl_ms:
                    return True
                # Wake at the latest when the lock would expire (its holder may be dead).
                slice_ = max(_MIN_SLICE, min(remaining, self._slice, ttl_ms / 1000.0 + 0.005))
                if self._client.blpop([keys.done], timeout=slice_) is not None:
                    return True
            except self._error as exc:
                raise BackendError(f"lock wait on {keys.lock!r} failed: {exc}") from exc
        return False  # pragma: no cover

    def try_refresh(self, key: str) -> bool:
        """Take the refresh token of ``key`` if nobody has it (``SET K:refresh 1 NX PX``).

        Args:
            key: The full cache key.

        Returns:
            Whether this caller won and should run the refresh.

        Raises:
            BackendError: Redis failed.
        """
        refresh = _keys(key).refresh
        try:
            won = bool(self._client.set(refresh, b"1", nx=True, px=self._refresh_ms))
        except self._error as exc:
            raise BackendError(f"refresh token on {refresh!r} failed: {exc}") from exc
        self._count("_refresh_won" if won else "_refresh_lost")
        return won

    def run(
        self,
        key: str,
        *,
        read: Callable[[], T | Missing],
        load: Callable[[], T],
        reread: bool = True,
    ) -> T:
        """Cache-aside under the lock: one process loads, the others read its value.

        Takes the lock if free (and reads instead of loading when the acquire
        script saw the value: a previous holder has just written it), else
        waits for the holder and reads; loads without the lock (fails open)
        after ``wait_timeout`` or a Redis error.

        Args:
            key: The full cache key.
            read: Returns the stored value or :data:`MISSING`.
            load: Computes the value and stores it (so that waiters can read it).
            reread: When the lock is taken and the value key exists, read it
                before loading (``False``: the caller knows those bytes are
                unusable, e.g. undecodable, and loads at once).

        Returns:
            The value read or loaded.

        Raises:
            LockTimeoutError: The wait ran out and ``fail_open=False``.
            BackendError: Redis failed and ``fail_open=False``.
        """
        started = time.monotonic()
        deadline = started + self.wait_timeout
        for _ in range(1000):  # bounded: each round waits or loads
            try:
                lease = self.acquire(key)
            except BackendError:
                self._count("_errors")
                if not self.fail_open:
                    raise
                return load()
            if lease is not None:
                try:
                    if lease.value_present is False or not reread:
                        return load()
                    value = read()  # a previous holder may have just written it
                    return load() if value is MISSING else value
                finally:
                    with contextlib.suppress(BackendError):
                        self.release(lease)
            self._count("_waits")
            try:
                released = self.wait(key, timeout=deadline - time.monotonic())
            except BackendError:
                self._count("_errors")
                if not self.fail_open:
                    raise
                return load()
            if released:
                value = read()
                if value is not MISSING:
                    return value
                continue  # the holder failed: try to take the lock ourselves
            if not self.fail_open:
                raise self._timeout_error(key, time.monotonic() - started)
            self._count("_timeouts")
            return load()
        return load()  # pragma: no cover


class AsyncRedisLock(_LockBase):
    """The asyncio twin of :class:`RedisLock` (``redis.asyncio`` clients, Cluster too).

    Same options, same method names, each a coroutine; the watchdog is a task.

    Args:
        client: The ``redis.asyncio`` client.
        ttl: Lifetime of the lock, extended every ``ttl / 3`` while the load runs.
        wait_timeout: Longest wait for another process's load before failing open.
        refresh_ttl: Lifetime of the refresh token.
        watchdog: Extend the lock while a load runs (one task per held lock).
        fail_open: Load anyway after a timeout or Redis error (``True``) or raise.

    Raises:
        ConfigurationError: If a duration is not > 0 or ``client`` is missing.
    """

    def __init__(
        self,
        client: Any,
        *,
        ttl: float | timedelta = 10.0,
        wait_timeout: float | timedelta = 5.0,
        refresh_ttl: float | timedelta = 5.0,
        watchdog: bool = True,
        fail_open: bool = True,
    ) -> None:
        super().__init__(
            client,
            ttl=ttl,
            wait_timeout=wait_timeout,
            refresh_ttl=refresh_ttl,
            watchdog=watchdog,
            fail_open=fail_open,
        )
        self._error = _redis_error()

    async def acquire(self, key: str) -> Lease | None:
        """Try once to take the lock of ``key``; see :meth:`RedisLock.acquire`.

        Args:
            key: The full cache key.

        Returns:
            A :class:`Lease` or ``None`` if another holder has it.

        Raises:
            BackendError: Redis failed.
        """
        token = secrets.token_hex(12)
        keys = _keys(key)
        try:
            if _has_hash_tag(key):
                state = int(await self._acquire(keys=[keys.lock, key], args=[token, self._ttl_ms]))
            else:
                won = await self._client.set(keys.lock, token, nx=True, px=self._ttl_ms)
                state = 1 if won else 0
        except self._error as exc:
            raise BackendError(f"lock acquire on {keys.lock!r} failed: {exc}") from exc
        if not state:
            return None
        self._count("_acquired")
        lease = Lease(key, token, None if not _has_hash_tag(key) else state == 2)
        if self.watchdog:
            lease._watchdog = asyncio.get_running_loop().create_task(self._watch(lease))
        return lease

    def settled(self, lease: Lease, released: bool) -> None:
        """After :meth:`set_release_call`'s script (or its failure): stop the watchdog."""
        if lease._watchdog is not None:
            lease._watchdog.cancel()
        if not released and not lease.lost:
            lease.lost = True
            self._count("_lost")

    async def _watch(self, lease: Lease) -> None:
        interval = self.ttl / 3.0
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self.extend(lease):
                    return
            except BackendError:
                continue

    async def extend(self, lease: Lease) -> bool:
        """Push the lock's expiry to ``ttl`` from now if ``lease`` still owns it.

        Args:
            lease: The lease from :meth:`acquire`.

        Returns:
            Whether the lock is still ours.

        Raises:
            BackendError: Redis failed.
        """
        keys = _keys(lease.key)
        try:
            ok = await self._extend(keys=[keys.lock], args=[lease.token, self._ttl_ms])
        except self._error as exc:
            raise BackendError(f"lock extend on {keys.lock!r} failed: {exc}") from exc
        if not ok and not lease.lost:
            lease.lost = True
            self._count("_lost")
        return bool(ok)

    async def release(self, lease: Lease) -> bool:
        """Stop the watchdog, delete the lock if ``lease`` owns it and wake the waiters.

        Args:
            lease: The lease from :meth:`acquire`.

        Returns:
            Whether the lock was still ours.

        Raises:
            BackendError: Redis failed (the lock then expires after ``ttl``).
        """
        watchdog = lease._watchdog
        if isinstance(watchdog, asyncio.Task):
            watchdog.cancel()
        keys = _keys(lease.key)
        try:
            ok = await self._release(
                keys=[keys.lock, keys.waiters, keys.done], args=[lease.token, self._ttl_ms]
            )
        except self._error as exc:
            raise BackendError(f"lock release on {keys.lock!r} failed: {exc}") from exc
        if not ok and not lease.lost:
            lease.lost = True
            self._count("_lost")
        return bool(ok)

    async def wait(self, key: str, *, timeout: float | None = None) -> bool:
        """Wait until the lock of ``key`` is released (or expires), at most ``timeout``.

        Args:
            key: The full cache key.
            timeout: Seconds (default ``wait_timeout``).

        Returns:
            ``True`` once the lock is free, ``False`` if the time ran out.

        Raises:
            BackendError: Redis failed.
        """
        deadline = time.monotonic() + (self.wait_timeout if timeout is None else timeout)
        keys = _keys(key)
        for _ in range(100_000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                ttl_ms = await self._register(keys=[keys.lock, keys.waiters], args=[self._ttl_ms])
                if not ttl_ms:
                    return True
                slice_ = max(_MIN_SLICE, min(remaining, self._slice, ttl_ms / 1000.0 + 0.005))
                if await self._client.blpop([keys.done], timeout=slice_) is not None:
                    return True
            except self._error as exc:
                raise BackendError(f"lock wait on {keys.lock!r} failed: {exc}") from exc
        return False  # pragma: no cover

    async def try_refresh(self, key: str) -> bool:
        """Take the refresh token of ``key`` if nobody has it.

        Args:
            key: The full cache key.

        Returns:
            Whether this caller won and should run the refresh.

        Raises:
            BackendError: Redis failed.
        """
        refresh = _keys(key).refresh
        try:
            won = bool(await self._client.set(refresh, b"1", nx=True, px=self._refresh_ms))
        except self._error as exc:
            raise BackendError(f"refresh token on {refresh!r} failed: {exc}") from exc
        self._count("_refresh_won" if won else "_refresh_lost")
        return won

    async def run(
        self,
        key: str,
        *,
        read: Callable[[], Awaitable[T | Missing]],
        load: Callable[[], Awaitable[T]],
        reread: bool = True,
    ) -> T:
        """Cache-aside under the lock; see :meth:`RedisLock.run`.

        Args:
            key: The full cache key.
            read: Coroutine function returning the stored value or :data:`MISSING`.
            load: Coroutine function computing and storing the value.
            reread: See :meth:`RedisLock.run`.

        Returns:
            The value read or loaded.

        Raises:
            LockTimeoutError: The wait ran out and ``fail_open=False``.
            BackendError: Redis failed and ``fail_open=False``.
        """
        started = time.monotonic()
        deadline = started + self.wait_timeout
        for _ in range(1000):
            try:
                lease = await self.acquire(key)
            except BackendError:
                self._count("_errors")
                if not self.fail_open:
                    raise
                return await load()
            if lease is not None:
                try:
                    if lease.value_present is False or not reread:
                        return await load()
                    value = await read()  # a previous holder may have just written it
                    return await load() if value is MISSING else value
                finally:
                    with contextlib.suppress(BackendError):
                        await self.release(lease)
            self._count("_waits")
            try:
                released = await self.wait(key, timeout=deadline - time.monotonic())
            except BackendError:
                self._count("_errors")
                if not self.fail_open:
                    raise
                return await load()
            if released:
                value = await read()
                if value is not MISSING:
                    return value
                continue
            if not self.fail_open:
                raise self._timeout_error(key, time.monotonic() - started)
            self._count("_timeouts")
            return await load()
        return await load()  # pragma: no cover
