"""The HTTP/1.1 client behind URL targets: keep-alive connections on asyncio, parsed by httptools.

Why written here, not taken from an HTTP client library: the driver's
capacity is the issue's budget (>= 2x locust's ``FastHttpUser`` per core),
and every client measured (``benchmarks/bench_load_clients.py``: aiohttp,
httpx, aiosonic, pyqwest) costs several times the whole budget per request:
their per-request objects (request and response objects, header maps,
cookie jars, a task or future per call, a hop to another thread for
pyqwest) are what a load driver does not need. A load driver sends one
prepared request again and again and needs only the status and the end of
the answer. So this module keeps what a client must get right and nothing
else: the request bytes are built once; each connection is an
``asyncio.Protocol`` whose parser is httptools (llhttp, the parser of
Node.js, as used by uvicorn: the well-kept part, not written here), which
handles ``Content-Length``, chunked bodies, keep-alive and ``Connection:
close``; a request's end is reported by a plain callback, with no task or
future per request. The connection handling in this module (about 250
lines) is ours.

What it does not do: redirects (a 3xx is an answer: the driver measures
what was asked), decompression, cookies, proxies, HTTP/2, pipelining. TLS is
asyncio's (``https://`` URLs; ``HttpTarget.verify`` says how certificates
are checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from perfprim._optional import require
from perfprim.exceptions import ConfigurationError
from perfprim.load._engine import Finish
from perfprim.load._targets import HttpStatusError, HttpTarget

__all__ = ["HttpClient", "HttpRequestError", "http_client"]

_CLOSED_EARLY = "connection closed"  # the server closed before the answer ended
_PROTOCOL = "bad response"  # the answer was not HTTP/1.x


class HttpRequestError(Exception):
    """A request that failed without an HTTP answer (``perfprim_kind`` names the failure)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.perfprim_kind = kind


def _kind_of_status(status: int) -> str | None:
    return None if status < 400 else f"http {status}"


def request_bytes(target: HttpTarget) -> tuple[str, int, bool, bytes]:
    """Split the target's URL (checked by :class:`HttpTarget`) and encode its request once.

    Returns:
        ``(host, port, tls, request)``.
    """
    parts = urlsplit(target.url)
    tls = parts.scheme == "https"
    host = parts.hostname or ""
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    lines = [f"{target.method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
    names = {name.lower() for name in target.headers}
    if "user-agent" not in names:
        lines.append("User-Agent: perfprim.load")
    lines.extend(f"{name}: {value}" for name, value in target.headers.items())
    body = target.body or b""
    if body or target.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return host, parts.port or (443 if tls else 80), tls, head + body


def tls_context(verify: bool | str) -> ssl_module.SSLContext:
    """The TLS context for ``HttpTarget.verify``: the system store, a CA bundle, or none."""
    if verify is True:
        return ssl_module.create_default_context()
    if verify is False:
        context = ssl_module.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl_module.CERT_NONE
        return context
    try:
        return ssl_module.create_default_context(cafile=verify)
    except (OSError, ssl_module.SSLError) as exc:
        msg = f"verify={verify!r} is not a readable CA bundle (PEM): {exc}"
        raise ConfigurationError(msg) from exc


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    __slots__ = (
        "_client",
        "_got_bytes",
        "_headers_done",
        "_parser",
        "_reused",
        "deadline",
        "finish",
        "planned",
        "transport",
    )  # fmt: skip

    def __init__(self, client: HttpClient) -> None:
        self._client = client
        self._parser = client.new_parser(self)
        self.transport: asyncio.Transport | None = None
        self.planned = 0.0
        self.finish: Finish | None = None
        self.deadline = 0.0
        self._reused = False
        self._got_bytes = False
        self._headers_done = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except Exception:  # httptools.HttpParserError and its subclasses
            self._fail(_PROTOCOL)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._client.forget(self)
        if self.finish is None:
            return
        if self._headers_done and not self._parser.should_keep_alive():
            # An answer whose body ends where the connection ends (no length).
            self._done(_kind_of_status(self._parser.get_status_code()))
        elif self._reused and not self._got_bytes:
            # The server closed an idle keep-alive connection as we wrote to
            # it: send again on a fresh connection, as browsers and clients do.
            planned, finish = self.planned, self.finish
            self.finish = None
            self._client.resend(planned, finish)
        else:
            self._done(_CLOSED_EARLY if exc is None else type(exc).__name__)

    # -- httptools callbacks

    def on_headers_complete(self) -> None:
        self._headers_done = True
        if self._client.head_only:  # a HEAD answer announces a length but has no body
            self.on_message_complete()
            self._parser = self._client.new_parser(self)

    def on_message_complete(self) -> None:
        if self.finish is None:  # an answer nobody asked for: stop using the connection
            self._close()
            return
        status = self._parser.get_status_code()
        if status < 200:  # 1xx (103 Early Hints, ...): the final answer follows
            self._headers_done = False
            return
        keep = self._parser.should_keep_alive()
        self._done(_kind_of_status(status))
        if keep and self.transport is not None:
            self._client.release(self)
        else:
            self._close(abort=False)

    # -- used by the client

    def start(self, planned: float, finish: Finish, deadline: float, request: bytes) -> bool:
        """Send the request; False (and ``finish`` called) if the connection is already closed."""
        transport = self.transport
        if transport is None:  # the server closed it between the connect and now
            finish(planned, None, _CLOSED_EARLY)
            return False
        self.planned, self.finish, self.deadline = planned, finish, deadline
        self._got_bytes = self._headers_done = False
        transport.write(request)
        return True

    def reuse(self) -> None:
        self._reused = True

    def _done(self, error: str | None) -> None:
        finish = self.finish
        if finish is None:
            return
        self.finish = None
        self._client.settle(self)
        finish(self.planned, None, error)

    def _fail(self, kind: str) -> None:
        self._done(kind)
        self._close()

    def fail(self, kind: str) -> None:
        """End the request in flight as ``kind`` and drop the connection (timeout, cancel)."""
        self._fail(kind)

    def _close(self, *, abort: bool = True) -> None:
        transport = self.transport
        if transport is not None:
            self.transport = None
            if abort:  # after a failure: drop whatever is buffered either way
                transport.abort()
            else:
                transport.close()
        self._client.forget(self)


class HttpClient:
    """Sends one prepared request over keep-alive connections, one request per connection at once.

    A connection is opened when no idle one is left, so there are never more
    than the most requests ever in flight at once (the driver bounds those
    by ``max_in_flight``).

    :meth:`send` starts a request and returns at once; its end is reported
    by ``finish(planned, None, error)`` from the event loop (``error`` is
    None, ``"http NNN"`` for a status >= 400, or the name of a transport
    failure). :meth:`call` is the same as an awaitable, for closed loops.

    Args:
        target: The request.
        timeout: Seconds for one request, connect to last byte (checked by a
            sweep every tenth of it, at most every 0.5 s: no timer per request).
    """

    def __init__(
        self,
        target: HttpTarget,
        *,
        timeout: float,
    ) -> None:
        self._httptools: Any = require(
            "httptools", package="httptools", extra="load", feature="perfprim.load HTTP"
        )
        self.host, self.port, tls, self._request = request_bytes(target)
        self._ssl = tls_context(target.verify) if tls else None
        self.head_only = target.method == "HEAD"
        self._timeout = timeout
        self._cancel_kind = "timeout"
        self._loop = asyncio.get_running_loop()
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._connecting: set[asyncio.Task[None]] = set()
        self._sweeper = self._loop.call_later(self._sweep_every(), self._sweep)

    def new_parser(self, connection: _Connection) -> Any:
        """A response parser that calls back into ``connection``."""
        return self._httptools.HttpResponseParser(connection)

    def _sweep_every(self) -> float:
        return min(max(self._timeout / 10.0, 0.005), 0.5)

    def send(self, planned: float, finish: Finish) -> None:
        """Start one request; ``finish`` is called when it ends, however it ends."""
        idle = self._idle
        if idle:
            connection = idle.pop()
            if connection.start(planned, finish, self._loop.time() + self._timeout, self._request):
                self._busy.add(connection)
        else:
            self.resend(planned, finish)

    def resend(self, planned: float, finish: Finish) -> None:
        """Send on a new connection (none idle, or the reused one was closed under us)."""
        task = self._loop.create_task(self._connect_and_send(planned, finish))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect_and_send(self, planned: float, finish: Finish) -> None:
        try:
            _, connection = await asyncio.wait_for(
                self._loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                ),
                self._timeout,
            )
        except asyncio.CancelledError:
            finish(planned, None, self._cancel_kind)
            raise
        except asyncio.TimeoutError:
            finish(planned, None, "timeout")
            return
        except Exception as exc:
            finish(planned, None, type(exc).__name__)
            return
        if connection.start(planned, finish, self._loop.time() + self._timeout, self._request):
            self._busy.add(connection)

    def settle(self, connection: _Connection) -> None:
        """A request ended: the connection is no longer busy."""
        self._busy.discard(connection)

    def release(self, connection: _Connection) -> None:
        """Keep a connection whose answer ended for the next request."""
        connection.reuse()
        self._idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        """A connection closed: drop it from the pool (called once or more; idempotent)."""
        self._busy.discard(connection)
        with contextlib.suppress(ValueError):
            self._idle.remove(connection)

    def _sweep(self) -> None:
        now = self._loop.time()
        for connection in [c for c in self._busy if c.deadline <= now]:
            connection.fail("timeout")
        self._sweeper = self._loop.call_later(self._sweep_every(), self._sweep)

    async def call(self) -> float | None:
        """Send one request and wait for its end; raise on failure (closed loops)."""
        future: asyncio.Future[str | None] = self._loop.create_future()

        def finish(_planned: float, _done: float | None, error: str | None) -> None:
            if not future.done():
                future.set_result(error)

        self.send(0.0, finish)
        error = await future
        if error is not None:
            if error.startswith("http "):
                raise HttpStatusError(int(error[5:]))
            raise HttpRequestError(error)
        return None

    async def cancel_all(self, kind: str) -> None:
        """End every request in flight as ``kind`` (the run's deadline or an abort)."""
        self._cancel_kind = kind
        for connection in list(self._busy):
            connection.fail(kind)
        tasks = list(self._connecting)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Close every connection."""
        self._sweeper.cancel()
        await self.cancel_all("closed")
        for connection in list(self._idle):
            connection.fail("closed")
        self._idle.clear()


@contextlib.asynccontextmanager
async def http_client(
    target: HttpTarget,
    *,
    timeout: float,
) -> AsyncIterator[HttpClient]:
    """Open an :class:`HttpClient` on the running loop and close it on exit.

    Raises:
        MissingDependencyError: If httptools is not installed (the ``load`` extra).
        ConfigurationError: For a ``verify`` path that is no CA bundle.
    """
    client = HttpClient(target, timeout=timeout)
    try:
        yield client
    finally:
        await client.aclose()
