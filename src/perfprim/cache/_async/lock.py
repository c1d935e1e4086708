"""``AsyncRedisLock``: the distributed load lock (protocol: :mod:`perfprim.cache._lock_common`)."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from perfprim.cache._concurrency import AsyncWatchdog
from perfprim.cache._lock_common import (
    MISSING,
    Lease,
    LockBase,
    Missing,
    has_hash_tag,
    key_set,
)
from perfprim.exceptions import BackendError

__all__ = ["AsyncRedisLock"]

_RELEASE_RETRY = 0.25  # seconds between tries of the kept releases while Redis is away

T = TypeVar("T")


class AsyncRedisLock(LockBase):
    """Token-owned distributed load lock: at most one process loads a key at a time.

    Works with standalone and Cluster clients of redis-py, of this class's
    kind. ``perfprim.cache.advanced`` documents the protocol; a cache with a
    Redis tier builds its lock itself.

    Args:
        client: The redis-py client (its socket timeout bounds each BLPOP slice).
        ttl: Lifetime of the lock; the watchdog extends it every ``ttl / 3``
            while the load runs, so it only matters when the holder dies.
        wait_timeout: Longest wait for another process's load before failing open.
        refresh_ttl: Lifetime of the refresh token (one early or background
            refresh per key per ``refresh_ttl`` at most).
        watchdog: Extend held locks while their loads run (:meth:`close`
            stops the watchdog).
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
        self._watchdog = AsyncWatchdog(self.ttl / 3.0, self.extend)
        # Leases whose release failed (Redis away), with when their lock expires anyway:
        # released before this lock's next acquire or wait, so that nobody waits out a
        # finished holder's lock for its whole TTL once Redis is back.
        self._unreleased: deque[tuple[Lease, float]] = deque(maxlen=1024)
        # While Redis stays away, retry those releases at most this often: each
        # failed try costs a caller a round trip (or a socket timeout).
        self._release_retry_at = 0.0

    def release_later(self, lease: Lease) -> None:
        """Stop watching ``lease`` and release it at this lock's next call (its release failed).

        Args:
            lease: A lease whose release (or store-and-release) could not reach Redis.
        """
        self._watchdog.unwatch(lease)
        self._unreleased.append((lease, time.monotonic() + self.ttl))

    async def _release_pending(self) -> None:
        """Release the leases :meth:`release_later` kept; keep them while Redis is away."""
        now = time.monotonic()
        if now < self._release_retry_at:
            return
        for _ in range(len(self._unreleased)):
            try:
                lease, expires = self._unreleased.popleft()
            except IndexError:  # another thread took the last one
                return
            if expires <= now:
                continue  # the lock has expired by itself
            keys = key_set(lease.key)
            try:
                await self._release(
                    keys=[keys.lock, keys.waiters, keys.done], args=[lease.token, self._ttl_ms]
                )
            except self._error:
                self._unreleased.append((lease, expires))
                self._release_retry_at = time.monotonic() + _RELEASE_RETRY
                return  # still away: a call after _RELEASE_RETRY tries again

    async def acquire(self, key: str) -> Lease | None:
        """Try once to take the lock of ``key`` (``SET NX PX``); never blocks.

        Args:
            key: The full cache key.

        Returns:
            A :class:`Lease` (with its watchdog running) or ``None`` if
            another holder has it.

        Raises:
            BackendError: Redis failed.
        """
        if self._unreleased:
            await self._release_pending()
        token = secrets.token_hex(12)
        keys = key_set(key)
        tagged = has_hash_tag(key)
        try:
            if tagged:
                state = int(await self._acquire(keys=[keys.lock, key], args=[token, self._ttl_ms]))
            else:  # the value may live on another slot: only take the lock
                won = await self._client.set(keys.lock, token, nx=True, px=self._ttl_ms)
                state = 1 if won else 0
        except self._error as exc:
            # The command may have reached Redis and run after we gave up (a paused
            # or slow server): then the lock is held under this token and nobody
            # would release it. Release it like a failed release (token-checked:
            # a lock that is not ours is left alone).
            self._unreleased.append((Lease(key, token, None), time.monotonic() + self.ttl))
            raise BackendError(f"lock acquire on {keys.lock!r} failed: {exc}") from exc
        if not state:
            return None
        self._count("_acquired")
        lease = Lease(key, token, state == 2 if tagged else None)
        if self.watchdog:
            self._watchdog.watch(lease)
        return lease

    def settled(self, lease: Lease, released: bool) -> None:
        """After :meth:`set_release_call`'s script (or its failure): stop watching ``lease``."""
        self._watchdog.unwatch(lease)
        if not released and not lease.lost:
            lease.lost = True
            self._count("_lost")

    def close(self) -> None:
        """Stop the watchdog (held locks then expire after ``ttl``)."""
        self._watchdog.close()

    def after_fork(self, client: Any = None) -> None:
        """In a forked child: forget the parent's watchdog; use ``client`` if given.

        Args:
            client: The child's own client (the tier rebuilt it), or ``None``
                to keep the inherited one (redis-py resets its pool).
        """
        self._watchdog.after_fork()
        if client is not None:
            self._bind(client)

    async def extend(self, lease: Lease) -> bool:
        """Push the lock's expiry to ``ttl`` from now if ``lease`` still owns it.

        Args:
            lease: The lease from :meth:`acquire`.

        Returns:
            Whether the lock is still ours (``False`` marks the lease lost).

        Raises:
            BackendError: Redis failed.
        """
        keys = key_set(lease.key)
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
            BackendError: Redis failed (the lock is released at this lock's next call, or
                expires after ``ttl``).
        """
        self._watchdog.unwatch(lease)
        keys = key_set(lease.key)
        try:
            ok = await self._release(
                keys=[keys.lock, keys.waiters, keys.done], args=[lease.token, self._ttl_ms]
            )
        except self._error as exc:
            self._unreleased.append((lease, time.monotonic() + self.ttl))
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
            ``True`` once the lock is free (read the value now), ``False`` if
            the time ran out.

        Raises:
            BackendError: Redis failed.
        """
        deadline = time.monotonic() + (self.wait_timeout if timeout is None else timeout)
        keys = key_set(key)
        for _ in range(100_000):
            if self._unreleased:
                await self._release_pending()  # bounded; the deadline ends it long before
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                ttl_ms = await self._register(keys=[keys.lock, keys.waiters], args=[self._ttl_ms])
            except self._error as exc:
                raise BackendError(f"lock wait on {keys.lock!r} failed: {exc}") from exc
            if not ttl_ms:
                return True
            # Wake at the latest when the lock would expire (its holder may be dead).
            slice_ = max(0.01, min(remaining, self._slice, ttl_ms / 1000.0 + 0.005))
            try:
                if await self._client.blpop([keys.done], timeout=slice_) is not None:
                    return True
            except self._slice_ended:
                continue  # the client gave up first: the next registration tells the state
            except self._error as exc:
                raise BackendError(f"lock wait on {keys.lock!r} failed: {exc}") from exc
        return False  # pragma: no cover

    async def try_refresh(self, key: str) -> bool:
        """Take the refresh token of ``key`` if nobody has it (``SET K:refresh 1 NX PX``).

        Args:
            key: The full cache key.

        Returns:
            Whether this caller won and should run the refresh.

        Raises:
            BackendError: Redis failed.
        """
        refresh = key_set(key).refresh
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
        """Cache-aside under the lock: one process loads, the others read its value.

        Takes the lock if free (and reads instead of loading when the acquire
        script saw the value: a previous holder has just written it), else
        waits for the holder and reads; loads without the lock (fails open,
        counted in ``stats()`` and logged) after ``wait_timeout`` or a Redis
        error.

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
                lease = await self.acquire(key)
            except BackendError as exc:
                if not self.fail_open:
                    raise
                self._failed_open(key, f"acquire failed ({exc})", "_errors")
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
            except BackendError as exc:
                if not self.fail_open:
                    raise
                self._failed_open(key, f"wait failed ({exc})", "_errors")
                return await load()
            if released:
                value = await read()
                if value is not MISSING:
                    return value
                continue  # the holder failed: try to take the lock ourselves
            if not self.fail_open:
                raise self._timeout_error(key, time.monotonic() - started)
            self._failed_open(
                key, f"waited {time.monotonic() - started:.3f} s for its holder", "_timeouts"
            )
            return await load()
        return await load()  # pragma: no cover
