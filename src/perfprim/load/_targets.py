"""Targets: what a load test calls, turned into one :class:`~perfprim.load._engine.Sender` per run.

- an ``"http://..."`` URL or an :class:`HttpTarget`: a GET (or the given
  method) over the driver's own keep-alive connections (:mod:`perfprim.load._http`);
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
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Union
from urllib.parse import urlsplit

from perfprim.exceptions import ConfigurationError
from perfprim.load._engine import Sender, TaskSender

__all__ = ["HttpTarget", "Target", "check_target", "open_sender"]

MAX_THREADS = 256
"""A sync target runs on at most this many threads (and at most ``max_in_flight``)."""


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """An HTTP request to send: ``run(HttpTarget(url, method="POST", body=b"..."), ...)``.

    A plain URL string is ``HttpTarget(url)``: a GET with no body.

    Args:
        url: ``http://`` or ``https://`` URL (no credentials in it: send an
            ``Authorization`` header).
        method: HTTP method.
        headers: Extra request headers.
        body: Request body.
        verify: For ``https://``: True verifies the server's certificate
            against the system's trust store, a path against that CA bundle
            (PEM), False not at all (a test server's self-signed certificate).

    Raises:
        ConfigurationError: If the URL is not an HTTP URL with a host, or a
            header or the method could not be sent as given.
    """

    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    verify: bool | str = True

    def __post_init__(self) -> None:
        url: object = self.url  # checked at runtime: callers may not be type-checked
        method: object = self.method
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            msg = f"an HTTP target needs an http:// or https:// URL, got {self.url!r}"
            raise ConfigurationError(msg)
        _check_url(url)
        if not isinstance(method, str) or not method.isalpha():
            msg = f"method must be an HTTP method such as 'GET' or 'POST', got {self.method!r}"
            raise ConfigurationError(msg)
        headers = dict(self.headers)
        for name, value in headers.items():
            pair: tuple[object, object] = (name, value)  # checked at runtime, as above
            if not (isinstance(pair[0], str) and isinstance(pair[1], str)) or not (
                _TOKEN.fullmatch(name) and not _UNSENDABLE.search(value)
            ):
                msg = (
                    f"header {name!r}: {value!r} cannot be sent: a name is a token (letters, "
                    "digits, '-'), a value a string without line breaks or control characters"
                )
                raise ConfigurationError(msg)
        body: object = self.body
        if body is not None and not isinstance(body, bytes):
            msg = f"body must be bytes (encode text first), got {type(body).__name__}"
            raise ConfigurationError(msg)
        verify: object = self.verify
        if not isinstance(verify, (bool, str)):
            msg = f"verify must be True, False or a path to a CA bundle, got {verify!r}"
            raise ConfigurationError(msg)
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", headers)


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2
_UNSENDABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # all controls but tab


def _check_url(url: str) -> None:
    if _UNSENDABLE.search(url) or " " in url:
        msg = f"the URL {url!r} has spaces or control characters: percent-encode them"
        raise ConfigurationError(msg)
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError as exc:
        msg = f"the URL {url!r} has an invalid port: {exc}"
        raise ConfigurationError(msg) from exc
    if not parts.hostname:
        msg = f"the URL {url!r} has no host; write it as http://host:port/path"
        raise ConfigurationError(msg)
    if parts.username is not None or parts.password is not None:
        msg = (
            f"the URL {url!r} carries credentials; send them as a header instead: "
            "HttpTarget(url, headers={'Authorization': ...})"
        )
        raise ConfigurationError(msg)


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
async def open_sender(
    target: HttpTarget | Callable[[], object],
    *,
    connections: int,
    timeout: float,
    clock: Callable[[], float] = time.perf_counter,
) -> AsyncIterator[Sender]:
    """Yield the sender for a target, with its client or thread pool open.

    Args:
        target: As returned by :func:`check_target`.
        connections: In-flight bound (threads, up to :data:`MAX_THREADS`;
            HTTP connections are bounded by the requests in flight).
        timeout: HTTP request timeout in seconds.
        clock: The run's clock (completion times of sync targets).

    Yields:
        The sender; its ``call`` performs one request (closed loops).
    """
    if isinstance(target, HttpTarget):
        from perfprim.load._http import http_client

        async with http_client(target, timeout=timeout) as client:
            yield client
        return
    if inspect.iscoroutinefunction(target):
        coroutine_function: Callable[[], Awaitable[object]] = target

        async def call_coroutine() -> None:
            await coroutine_function()

        yield TaskSender(call_coroutine, clock=clock)
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
        yield TaskSender(call_in_thread, clock=clock)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
