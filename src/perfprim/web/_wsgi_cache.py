"""The WSGI adapter of the HTTP response cache: Flask, any WSGI application.

It only translates: the environ into a
:class:`~perfprim.web._http_cache_core.CacheRequest`, the application's
``start_response`` and body iterable into an
:class:`~perfprim.web._http_cache_sync.Upstream`, and the reply back into a
``start_response`` call and a body iterable. The flow is
:class:`~perfprim.web._http_cache_sync.SyncHttpCache`'s, the decisions the
core's.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from perfprim.cache import TieredCache
from perfprim.web._http_cache_core import CacheRequest, collect_headers
from perfprim.web._http_cache_options import CacheOptions
from perfprim.web._http_cache_policy import HttpCachePolicy
from perfprim.web._http_cache_sync import Reply, SyncHttpCache, Upstream

__all__ = ["CacheMiddleware"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_CONDITIONAL_KEYS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class CacheMiddleware:
    """WSGI middleware: a shared HTTP response cache (RFC 9111) on a ``TieredCache``.

    The rules are those of :class:`perfprim.web.asgi.CacheMiddleware`
    (``docs/http_cache.md``): GET responses stored as their headers allow,
    GET and HEAD answered from the cache with ``Age``, 304s, ``Vary``
    variants, stale serving, ``Cache-Status`` on every response, concurrent
    misses of one URL collapsed into one application call per process,
    unsafe methods invalidating, ``Cache-Tag`` turned into cache tags. A
    background revalidation (``stale-while-revalidate``) runs the
    application in a daemon thread with a copy of the request's environ.

    Args:
        app: The WSGI application to wrap (``app.wsgi_app`` for Flask).
        cache: The store: a :class:`~perfprim.cache.TieredCache`. Give the
            HTTP cache its own ``namespace``.
        default_ttl: Freshness in seconds for responses that state none;
            ``None`` (the default) stores only what the response allows.
        policy: Every other choice (:class:`~perfprim.web.HttpCachePolicy`);
            ``default_ttl``, when given, replaces the policy's.
        paths: Cache only these path prefixes (or the paths a predicate
            accepts); the others pass through untouched.
        clock: Wall clock in epoch seconds; injectable for tests.

    Raises:
        ConfigurationError: If an option is invalid.

    Example (Flask)::

        cache = TieredCache(MemoryTier(maxsize=10_000), namespace="http")
        app.wsgi_app = CacheMiddleware(app.wsgi_app, cache=cache)
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        cache: TieredCache,
        default_ttl: float | timedelta | None = None,
        policy: HttpCachePolicy | None = None,
        paths: Iterable[str] | Callable[[str], bool] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.app = app
        options = CacheOptions.build(
            default_ttl=default_ttl,
            policy=policy,
            paths=paths,
            clock=clock or time.time,
            error_timeout=None,
        )
        self.engine = SyncHttpCache(cache, options, adapter="WSGI")
        self.cache = cache
        self.policy = options.policy

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        plan = self.engine.plan(wsgi_request(environ))
        if plan is None:
            return self.app(environ, start_response)
        app = self.app

        def forward(strip: bool) -> Upstream:
            env = environ
            if strip:
                env = {k: v for k, v in environ.items() if k not in _CONDITIONAL_KEYS}
            return _call(app, env)

        refresh: Callable[[], Upstream] | None = None
        if plan.lookup:
            refresh_env = {k: v for k, v in environ.items() if k not in _CONDITIONAL_KEYS}
            refresh_env["REQUEST_METHOD"] = "GET"

            def refresh() -> Upstream:
                env = dict(refresh_env)
                env["wsgi.input"] = io.BytesIO(b"")
                env["CONTENT_LENGTH"] = "0"
                return _call(app, env)

        reply = self.engine.respond(plan, forward, refresh)
        return _send(reply, start_response)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for the background revalidations running now (tests, shutdown)."""
        self.engine.drain(timeout)


def _call(app: WSGIApp, environ: Environ) -> Upstream:
    """Call the application, keeping its ``start_response`` arguments."""
    seen: dict[str, Any] = {}
    written: list[bytes] = []  # PEP 3333's legacy write(): sent before the iterable

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None and seen:
            raise exc_info[1].with_traceback(exc_info[2])
        seen["status"] = status
        seen["headers"] = headers
        return written.append

    body = app(environ, start_response)
    close = getattr(body, "close", None)
    if written:
        body = _prepend(b"".join(written), iter(body))
    if "status" not in seen:  # a generator app calls start_response on its first step
        iterator = iter(body)
        try:
            first = next(iterator)
        except StopIteration:
            first = b""
        except BaseException:
            if callable(close):
                close()
            raise
        body = _prepend(first, iterator)
    headers = list(seen.get("headers", ()))
    status = int(str(seen.get("status", "500")).split(" ", 1)[0])
    streaming = not isinstance(body, (list, tuple)) and "content-length" not in collect_headers(
        headers
    )
    return Upstream(status, headers, body, streaming, close if callable(close) else None)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


class _Passed:
    """The application's own body, passed through; ``close()`` reaches the application."""

    __slots__ = ("_body", "_close")

    def __init__(self, body: Iterable[bytes], close: Callable[[], None] | None) -> None:
        self._body = body
        self._close = close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        if self._close is not None:
            self._close()


def _send(reply: Reply, start_response: StartResponse) -> Iterable[bytes]:
    start_response(_status_line(reply.status), list(reply.headers))
    if reply.upstream is not None:
        return _Passed(reply.body, reply.upstream.close)
    return reply.body if isinstance(reply.body, list) else list(reply.body)


def wsgi_request(environ: Environ) -> CacheRequest:
    """The request as the core sees it, from a WSGI environ (PEP 3333)."""
    headers = [
        (key[5:].replace("_", "-").lower(), value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    if environ.get("CONTENT_TYPE"):
        headers.append(("content-type", environ["CONTENT_TYPE"]))
    host = environ.get("HTTP_HOST")
    if not host:
        host = f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")  # gunicorn, uWSGI, mod_wsgi
    if isinstance(raw, str) and raw.startswith("/"):
        path = raw.split("?", 1)[0]
    else:  # PEP 3333 decodes the path as latin-1 bytes: re-quote it
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        try:
            raw_path = path.encode("latin-1")
        except UnicodeEncodeError:  # a server that decoded the path as UTF-8 (against PEP 3333)
            raw_path = path.encode("utf-8", "surrogatepass")
        path = quote(raw_path, safe="/:@!$&'()*+,;=-._~")
    return CacheRequest(
        environ.get("REQUEST_METHOD", "GET"),
        environ.get("wsgi.url_scheme", "http"),
        host,
        path or "/",
        environ.get("QUERY_STRING", ""),
        dict(headers),
    )
