"""In-process single-flight: concurrent callers for one key share one load.

:class:`SingleFlight` coalesces threads, :class:`AsyncSingleFlight` asyncio
tasks. The first caller for a key (the *leader*) runs the function; callers
arriving while it runs (*waiters*) block until it ends and get its result, or
the very same exception. An uncontended call allocates no ``Event`` or
future (the first waiter makes one), so single-flight costs about 1 us on a
miss path that nobody shares. No lock is held while the function runs: the map
lock only guards the few dictionary operations around it, so different keys
load in parallel. Per-key state is removed when the flight ends, so memory
does not grow with the number of distinct keys ever loaded.

Waiters may bound their wait (``timeout=``): past it they *fail open* and
run the function themselves (counted in ``fail_open``), or raise
:class:`~perfprim.exceptions.LockTimeoutError` when built with
``fail_open=False``.

Works on free-threaded Python: every shared structure is guarded by a real
``threading.Lock``, never by the GIL.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from perfprim._durations import to_seconds
from perfprim.exceptions import LockTimeoutError

__all__ = ["AsyncSingleFlight", "SingleFlight", "SingleFlightStats", "check_wait_timeout"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def check_wait_timeout(timeout: float | timedelta | None, *, name: str = "timeout") -> float | None:
    """Validate a bounded wait: ``None`` (wait as long as the load runs) or seconds > 0.

    Args:
        timeout: ``None``, float seconds or a ``timedelta``.
        name: The option's name, for the message.

    Returns:
        ``None`` or float seconds.

    Raises:
        ConfigurationError: If the value is not ``None`` and not > 0.
    """
    if timeout is None:
        return None
    return to_seconds(timeout, name=name, example="None waits for the whole load")


@dataclass(frozen=True, slots=True)
class SingleFlightStats:
    """Counters of one single-flight group since it was built.

    Attributes:
        flights: Loads started by a leader.
        coalesced: Callers that joined a running load instead of starting one.
        fail_open: Waiters whose bounded wait ran out and loaded themselves
            (or raised ``LockTimeoutError`` with ``fail_open=False``).
        in_flight: Loads running now (keys in the internal map).
    """

    flights: int
    coalesced: int
    fail_open: int
    in_flight: int


class _Call(Generic[T]):
    """One running load: waiters block on ``done``; the leader fills the outcome.

    ``done`` is created by the first waiter, under the group's lock, so an
    uncontended load (the common case) allocates no ``Event`` at all.
    """

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done: threading.Event | None = None
        self.result: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[K]):
    """Coalesce concurrent loads of one key across threads.

    Args:
        fail_open: What a waiter does when its bounded wait runs out: load by
            itself (``True``, the default) or raise ``LockTimeoutError``.

    Examples:
        >>> flight = SingleFlight()
        >>> flight.do("user:1", lambda: {"id": 1})
        {'id': 1}
        >>> flight.stats().flights
        1
    """

    def __init__(self, *, fail_open: bool = True) -> None:
        self._fail_open_enabled = fail_open
        self._lock = threading.Lock()
        self._calls: dict[K, _Call[Any]] = {}
        self._flights = 0
        self._coalesced = 0
        self._fail_open = 0

    def do(self, key: K, fn: Callable[[], T], *, timeout: float | None = None) -> T:
        """Run ``fn`` once for all concurrent callers of ``key``; return its result.

        Args:
            key: What identifies the load (hashable).
            fn: The load, a zero-argument callable; run by the leader only.
            timeout: For a waiter, the longest wait in seconds (``None``: as
                long as the leader runs); past it the waiter fails open.

        Returns:
            The result of the leader's ``fn()`` (or of the waiter's own call
            after a timeout).

        Raises:
            LockTimeoutError: A waiter's wait ran out and ``fail_open=False``.
            BaseException: Whatever ``fn`` raised, the same object in every caller.
        """
        lock = self._lock
        calls = self._calls
        # acquire/release with try/finally rather than ``with``: the same guarantee, and
        # about half the cost on the uncontended path (the common one).
        lock.acquire()
        try:
            call = calls.get(key)
            if call is None:
                call = calls[key] = _Call()
                self._flights += 1
                leader = True
            else:
                self._coalesced += 1
                leader = False
                if call.done is None:
                    call.done = threading.Event()
                done = call.done
        finally:
            lock.release()
        if leader:
            try:
                result = fn()
            except BaseException as exc:
                call.error = exc
                self._land(key, call)
                raise
            call.result = result
            lock.acquire()  # _land, inlined on the hot path
            try:
                if calls.get(key) is call:
                    del calls[key]
                waiters = call.done
            finally:
                lock.release()
            if waiters is not None:
                waiters.set()
            return result
        if not done.wait(timeout):
            with lock:
                self._fail_open += 1
            if not self._fail_open_enabled:
                raise LockTimeoutError(
                    f"waited {timeout} s for another caller's load of {key!r}; raise the "
                    "wait bound or build the cache with fail_open=True to load instead"
                )
            return fn()
        error = call.error
        if error is not None:
            raise error
        return call.result  # type: ignore[return-value]

    def _land(self, key: K, call: _Call[Any]) -> None:
        """End the leader's flight (its outcome is set) and wake the waiters, if any."""
        lock = self._lock
        lock.acquire()
        try:
            # Only our own flight: never remove a later one for the same key.
            if self._calls.get(key) is call:
                del self._calls[key]
            # No waiter can join after this point; those that did made ``done``.
            waiters = call.done
        finally:
            lock.release()
        if waiters is not None:
            waiters.set()

    def in_flight(self, key: K) -> bool:
        """Return whether a load of ``key`` is running now."""
        with self._lock:
            return key in self._calls

    def stats(self) -> SingleFlightStats:
        """Return the counters (a consistent snapshot)."""
        with self._lock:
            return SingleFlightStats(
                flights=self._flights,
                coalesced=self._coalesced,
                fail_open=self._fail_open,
                in_flight=len(self._calls),
            )

    def after_fork(self) -> None:
        """In a forked child: the parent's loads do not run here; a fresh lock."""
        self._lock = threading.Lock()
        self._calls = {}

    def __len__(self) -> int:
        """Number of loads running now."""
        return len(self._calls)


class _Retry:
    """Sent to waiters when the leader's own caller was cancelled: one of them reloads."""


_RETRY: Any = _Retry()


class _AsyncCall:
    """One running load in one event loop; ``future`` is made by the first waiter."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] | None = None


class AsyncSingleFlight(Generic[K]):
    """Coalesce concurrent loads of one key across asyncio tasks.

    The first caller (the leader) awaits the load in its own task, so an
    uncontended load costs no extra Task; callers arriving meanwhile wait on
    a future through ``asyncio.shield``: cancelling a waiter never cancels the
    load. If the leader's own caller is cancelled, the load stops with it and
    one of the waiters runs it again (the others keep waiting). A group may be
    used from several event loops: a key already loading in another loop is
    loaded again in the caller's loop.

    Args:
        fail_open: What a waiter does when its bounded wait runs out: load by
            itself (``True``, the default) or raise ``LockTimeoutError``.
    """

    def __init__(self, *, fail_open: bool = True) -> None:
        self._fail_open_enabled = fail_open
        self._lock = threading.Lock()
        self._calls: dict[K, _AsyncCall] = {}
        self._flights = 0
        self._coalesced = 0
        self._fail_open = 0

    async def do(
        self, key: K, fn: Callable[[], Awaitable[T]], *, timeout: float | None = None
    ) -> T:
        """Await ``fn()`` once for all concurrent callers of ``key``; return its result.

        Args:
            key: What identifies the load (hashable).
            fn: A zero-argument callable returning an awaitable (an ``async def``).
            timeout: For a waiter, the longest wait in seconds (``None``: as
                long as the load runs); past it the waiter fails open.

        Returns:
            The load's result (or the waiter's own after a timeout).

        Raises:
            LockTimeoutError: A waiter's wait ran out and ``fail_open=False``.
            BaseException: Whatever the load raised, the same object in every caller.
        """
        loop = asyncio.get_running_loop()
        lock = self._lock
        calls = self._calls
        for _ in range(1000):  # bounded: a retry happens only when a leader was cancelled
            # acquire/release with try/finally rather than ``with``: same guarantee, cheaper.
            lock.acquire()
            try:
                call = calls.get(key)
                if call is None:
                    call = calls[key] = _AsyncCall(loop)
                    self._flights += 1
                    future = None
                elif call.loop is loop:
                    self._coalesced += 1
                    if call.future is None:
                        call.future = loop.create_future()
                    future = call.future
                else:
                    call = None  # another loop's flight cannot be awaited from this loop
                    future = None
            finally:
                lock.release()
            if call is None:
                return await fn()
            if future is None:
                # The leader (_lead inlined: one coroutine less on the uncontended path).
                outcome: Any = _RETRY
                error: BaseException | None = None
                try:
                    outcome = await fn()
                    return outcome  # type: ignore[no-any-return]
                except asyncio.CancelledError:
                    raise  # the waiters get _RETRY: one of them loads
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    self._land(key, call, outcome, error)
            try:
                if timeout is None:
                    result = await asyncio.shield(future)
                else:
                    result = await asyncio.wait_for(asyncio.shield(future), timeout)
            except asyncio.TimeoutError:
                break
            if result is not _RETRY:
                return result  # type: ignore[no-any-return]
        with self._lock:
            self._fail_open += 1
        if not self._fail_open_enabled:
            raise LockTimeoutError(
                f"waited {timeout} s for another task's load of {key!r}; raise the wait "
                "bound or build the cache with fail_open=True to load instead"
            )
        return await fn()

    def _land(self, key: K, call: _AsyncCall, outcome: Any, error: BaseException | None) -> None:
        """End the leader's flight and hand its outcome to the waiters, if any."""
        lock = self._lock
        lock.acquire()
        try:
            if self._calls.get(key) is call:
                del self._calls[key]
            future = call.future  # no waiter can join after this point
        finally:
            lock.release()
        if future is not None and not future.done():
            if error is not None:
                future.set_exception(error)
                future.exception()  # retrieved: every waiter may have gone
            else:
                future.set_result(outcome)

    def in_flight(self, key: K) -> bool:
        """Return whether a load of ``key`` is running now."""
        with self._lock:
            return key in self._calls

    def stats(self) -> SingleFlightStats:
        """Return the counters (a consistent snapshot)."""
        with self._lock:
            return SingleFlightStats(
                flights=self._flights,
                coalesced=self._coalesced,
                fail_open=self._fail_open,
                in_flight=len(self._calls),
            )

    def after_fork(self) -> None:
        """In a forked child: the parent's loads do not run here; a fresh lock."""
        self._lock = threading.Lock()
        self._calls = {}

    def __len__(self) -> int:
        """Number of loads running now."""
        return len(self._calls)
