"""Targets: what a load test calls, turned into one ``async def call()`` per run.

- an ``"http://..."`` URL or an :class:`HttpTarget`: a GET (or the given
  method) through one pooled HTTP client (:mod:`perfprim.load._http`);
- a coroutine function: awaited on the driver's event loop;
- any other callable: run on a bounded thread pool; its completion time is
  taken in the worker thread.

A failure is an exception from the callable, or an HTTP status >= 400.

A sync function cannot be cancelled: at the run's deadline its request is
counted as a ``"timeout"`` error, but the thread runs on, and Python waits
for pool threads at exit. Give blocking targets their own timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import pickle
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Union

from perfprim.exceptions import ConfigurationError
from perfprim.load._engine import Call

__all__ = ["HttpTarget", "Target", "check_target", "open_call"]

MAX_THREADS = 256
"""A sync target runs on at most this many threads (and at most ``max_in_flight``)."""


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """An HTTP request to send: ``run(HttpTarget(url, method="POST", body=b"..."), ...)``.

    A plain URL string is ``HttpTarget(url)``: a GET with no body.

    Args:
        url: ``http://`` or ``https://`` URL.
        method: HTTP method.
        headers: Extra request headers.
        body: Request body.

    Raises:
        ConfigurationError: If the URL is not an HTTP URL.
    """

    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None

    def __post_init__(self) -> None:
        url: object = self.url  # checked at runtime: callers may not be type-checked
        method: object = self.method
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            msg = f"an HTTP target needs an http:// or https:// URL, got {self.url!r}"
            raise ConfigurationError(msg)
        if not isinstance(method, str) or not method.isalpha():
            msg = f"method must be an HTTP method such as 'GET' or 'POST', got {self.method!r}"
            raise ConfigurationError(msg)
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", dict(self.headers))


Target = Union[str, HttpTarget, Callable[[], object]]  # noqa: UP007 - a runtime alias on 3.10
"""What ``run`` and ``find_knee`` accept: a URL, an :class:`HttpTarget`, or a callable."""


def check_target(target: object, *, workers: int = 1) -> HttpTarget | Callable[[], object]:
    """Validate a target early, with a message that says what to pass.

    Args:
        target: The target.
        workers: Worker processes; more than one needs a picklable target.

    Returns:
        An :class:`HttpTarget` for a URL, else the callable.

    Raises:
        ConfigurationError: If the target is neither, or cannot go to workers.
    """
    if isinstance(target, str):
        return HttpTarget(target)
    if isinstance(target, HttpTarget):
        return target
    if not callable(target):
        msg = (
            f"target must be an http:// URL, an HttpTarget, a function or a coroutine function "
            f"taking no arguments, got {target!r}"
        )
        raise ConfigurationError(msg)
    if inspect.isasyncgenfunction(target) or inspect.isgeneratorfunction(target):
        msg = "target must be a function or coroutine function, not a generator function"
        raise ConfigurationError(msg)
    if workers > 1:
        try:
            pickle.dumps(target)
        except Exception as exc:
            msg = (
                f"workers={workers} sends the target to other processes, and {target!r} cannot "
                "be pickled: use a URL, or a function defined at module level (not a lambda or "
                "a closure)"
            )
            raise ConfigurationError(msg) from exc
    return target


class HttpStatusError(Exception):
    """An HTTP answer with status >= 400 (counted as an error named ``http NNN``)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.perfprim_kind = f"http {status}"


@contextlib.asynccontextmanager
async def open_call(
    target: HttpTarget | Callable[[], object],
    *,
    connections: int,
    timeout: float,
    clock: Callable[[], float] = time.perf_counter,
) -> AsyncIterator[Call]:
    """Yield the ``call`` for a target, with its client or thread pool open.

    Args:
        target: As returned by :func:`check_target`.
        connections: In-flight bound (HTTP connections, threads up to
            :data:`MAX_THREADS`).
        timeout: HTTP request timeout in seconds.
        clock: The run's clock (completion times of sync targets).

    Yields:
        The call.
    """
    if isinstance(target, HttpTarget):
        from perfprim.load._http import http_call

        async with http_call(target, connections=connections, timeout=timeout) as call:
            yield call
        return
    if inspect.iscoroutinefunction(target):
        coroutine_function: Callable[[], Awaitable[object]] = target

        async def call_coroutine() -> None:
            await coroutine_function()

        yield call_coroutine
        return
    function = target

    def timed() -> float:
        function()
        return clock()

    pool = ThreadPoolExecutor(
        max_workers=min(connections, MAX_THREADS), thread_name_prefix="perfprim-load"
    )
    loop = asyncio.get_running_loop()

    async def call_in_thread() -> float:
        return await loop.run_in_executor(pool, timed)

    try:
        yield call_in_thread
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
