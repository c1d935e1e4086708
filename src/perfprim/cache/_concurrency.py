"""What truly differs between the sync and the asyncio cache, written once each.

The cache, the Redis tier and the Redis lock are written once, as asyncio
code in :mod:`perfprim.cache._async`; ``scripts/unasync.py`` derives the sync
twins and maps each class below onto its twin:

=====================  ======================  =====================================
asyncio source         generated sync code     what it does
=====================  ======================  =====================================
``AsyncBackground``    ``SyncBackground``      run background refreshes: tasks in
                                               the running loop / a small thread pool
``AsyncWatchdog``      ``SyncWatchdog``        extend held Redis locks while their
                                               loads run: a task per lock / one
                                               daemon thread per lock object
``AsyncLocalCounters``  ``SyncLocalCounters``    a memory-only cache's counters (its
                                               L1's), behind the tier methods
=====================  ======================  =====================================

(Single-flight has its twins in :mod:`perfprim.cache._singleflight`.)
Both classes of a pair have the same method names; only ``async``/``await``
differ at their call sites.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any, Protocol

from perfprim.exceptions import BackendError

__all__ = [
    "AsyncBackground",
    "AsyncLocalCounters",
    "AsyncWatchdog",
    "SyncBackground",
    "SyncLocalCounters",
    "SyncWatchdog",
]


class AsyncBackground:
    """Background jobs of an asyncio cache: one task each, in the caller's running loop."""

    is_async = True

    def __init__(self, workers: int) -> None:
        del workers  # tasks need no pool
        self._running: set[asyncio.Task[None]] = set()

    def spawn(
        self, job: Callable[..., Coroutine[Any, Any, None]], *args: object, **kwargs: object
    ) -> bool:
        """Start ``job(*args, **kwargs)`` as a task; ``False`` if there is no running loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        task = loop.create_task(job(*args, **kwargs))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return True

    def detach(self, job: Callable[..., Coroutine[Any, Any, None]]) -> bool:
        """Run a long-lived job: a task, like :meth:`spawn`."""
        return self.spawn(job)

    async def pause(self, seconds: float) -> bool:
        """Sleep in a job (cancelled by :meth:`close`); always ``True``."""
        await asyncio.sleep(seconds)
        return True

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for the jobs running now."""
        running = [t for t in self._running if t.get_loop() is asyncio.get_running_loop()]
        if running:
            await asyncio.wait(running, timeout=timeout)

    async def close(self) -> None:
        """Cancel the running jobs and wait (bounded) for them to end."""
        running = list(self._running)
        for task in running:
            task.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - close() is awaited, so a loop runs
            return
        mine = [t for t in running if t.get_loop() is loop]
        if mine:
            await asyncio.wait(mine, timeout=5.0)

    def abandon(self) -> None:
        """Cancel the running jobs without waiting (a finalizer cannot await)."""
        for task in list(self._running):
            with contextlib.suppress(RuntimeError):  # its loop is closed
                task.cancel()

    def after_fork(self) -> None:
        """In a forked child: the parent's tasks do not exist here."""
        self._running = set()

    def __len__(self) -> int:
        return len(self._running)


class SyncBackground:
    """Background jobs of a sync cache: a thread pool of ``workers`` threads, made on first use."""

    is_async = False

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._running: set[Future[None]] = set()
        self._closed = False
        self._stop = threading.Event()

    def detach(self, job: Callable[[], None]) -> bool:
        """Run a long-lived job in a daemon thread of its own (it never holds the exit)."""
        if self._closed:
            return False
        threading.Thread(target=job, name="perfprim-repair", daemon=True).start()
        return True

    def pause(self, seconds: float) -> bool:
        """Sleep in a job; ``False``: stop the job (closed, or the interpreter is exiting).

        A job must not hold the interpreter's exit: the pool's threads are
        joined at exit, so a retry loop would otherwise keep a process alive.
        """
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if self._stop.wait(min(max(left, 0.0), 0.1)) or not _main_alive():
                return False
            if left <= 0.1:
                return True

    def spawn(self, job: Callable[..., None], *args: object, **kwargs: object) -> bool:
        """Submit ``job(*args, **kwargs)`` to the pool; ``False`` once closed."""
        with self._lock:
            if self._closed:
                return False
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._workers, thread_name_prefix="perfprim-refresh"
                )
            try:
                future = self._executor.submit(job, *args, **kwargs)
            except RuntimeError:  # shut down meanwhile
                return False
            self._running.add(future)
        future.add_done_callback(self._forget)
        return True

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._running.discard(future)

    def drain(self, timeout: float) -> None:
        """Wait (bounded) for the jobs running now."""
        with self._lock:
            running = list(self._running)
        if running:
            wait_futures(running, timeout=timeout)

    def close(self) -> None:
        """Cancel queued jobs and stop the pool's threads (running jobs finish on their own)."""
        with self._lock:
            self._closed = True
            self._stop.set()
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def abandon(self) -> None:
        """The same as :meth:`close` (it never waits)."""
        self.close()

    def after_fork(self) -> None:
        """In a forked child: the parent's pool threads do not exist here; start afresh."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._executor = None
        self._running = set()

    def __len__(self) -> int:
        return len(self._running)


def _main_alive() -> bool:
    return threading.main_thread().is_alive()


class _Lease(Protocol):
    extended_at: float


class AsyncWatchdog:
    """Extends held Redis locks while their loads run: one task per held lock."""

    def __init__(self, interval: float, extend: Callable[[Any], Awaitable[bool]]) -> None:
        self._interval = interval
        self._extend = extend
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def watch(self, lease: _Lease) -> None:
        """Start extending ``lease`` every ``interval`` seconds."""
        task = asyncio.get_running_loop().create_task(self._run(lease))
        self._tasks[id(lease)] = task
        task.add_done_callback(lambda _: self._tasks.pop(id(lease), None))

    def unwatch(self, lease: _Lease) -> None:
        """Stop extending ``lease``."""
        task = self._tasks.pop(id(lease), None)
        if task is not None:
            task.cancel()

    async def _run(self, lease: _Lease) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                if not await self._extend(lease):
                    return
            except BackendError:
                continue  # transient: the lock lives on until its ttl; retry next round

    def close(self) -> None:
        """Stop every watch (the locks then expire after their ttl)."""
        for task in list(self._tasks.values()):
            task.cancel()
        self._tasks.clear()

    def after_fork(self) -> None:
        """In a forked child: the parent's tasks do not exist here."""
        self._tasks = {}


class SyncWatchdog:
    """Extends held Redis locks while their loads run: one daemon thread for all of them.

    Never notified (a wake-up per acquire would cost a thread switch on every
    miss): it polls every ``interval / 2``, so each held lock is extended
    between ``interval`` and ``1.5 * interval`` after its last extension.
    """

    def __init__(self, interval: float, extend: Callable[[Any], bool]) -> None:
        self._interval = interval
        self._extend = extend
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._held: dict[int, _Lease] = {}
        self._thread: threading.Thread | None = None

    def watch(self, lease: _Lease) -> None:
        """Start extending ``lease`` (the thread starts on first use)."""
        lease.extended_at = time.monotonic()
        with self._lock:
            self._held[id(lease)] = lease
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=_watch_loop,
                    args=(self._interval, self._stop, self._lock, self._held, self._extend),
                    name="perfprim-lock-watchdog",
                    daemon=True,
                )
                self._thread.start()

    def unwatch(self, lease: _Lease) -> None:
        """Stop extending ``lease``."""
        with self._lock:
            self._held.pop(id(lease), None)

    def close(self) -> None:
        """Stop the thread (held locks then expire after their ttl)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)

    def after_fork(self) -> None:
        """In a forked child: the parent's thread does not exist here; start afresh."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._held = {}
        self._thread = None


def _watch_loop(
    interval: float,
    stop: threading.Event,
    lock: threading.Lock,
    held: dict[int, _Lease],
    extend: Callable[[Any], bool],
) -> None:
    # A function, not a method: the thread must not keep the watchdog (and its lock) alive.
    while not stop.wait(interval / 2.0):
        now = time.monotonic()
        with lock:
            due = [lease for lease in held.values() if now - lease.extended_at >= interval]
        for lease in due:
            lease.extended_at = time.monotonic()
            with contextlib.suppress(BackendError):  # transient: retry next round
                if not extend(lease):
                    with lock:
                        held.pop(id(lease), None)


class _Counters(Protocol):
    def incr(self, key: str) -> int: ...
    def read_counter(self, key: str) -> int: ...
    def read_counters(self, keys: Sequence[str]) -> list[int]: ...


class AsyncLocalCounters:
    """The counters of a memory-only asyncio cache (its L1's), with the tiers' awaitable methods."""

    def __init__(self, tier: _Counters) -> None:
        self._tier = tier

    async def incr(self, key: str) -> int:
        """Increment the counter ``key``."""
        return self._tier.incr(key)

    async def read_counter(self, key: str) -> int:
        """Return the counter ``key``."""
        return self._tier.read_counter(key)

    async def read_counters(self, keys: Sequence[str]) -> list[int]:
        """Return the counters ``keys``."""
        return self._tier.read_counters(keys)


class SyncLocalCounters:
    """The counters of a memory-only sync cache (its L1's)."""

    def __init__(self, tier: _Counters) -> None:
        self._tier = tier

    def incr(self, key: str) -> int:
        """Increment the counter ``key``."""
        return self._tier.incr(key)

    def read_counter(self, key: str) -> int:
        """Return the counter ``key``."""
        return self._tier.read_counter(key)

    def read_counters(self, keys: Sequence[str]) -> list[int]:
        """Return the counters ``keys``."""
        return self._tier.read_counters(keys)
