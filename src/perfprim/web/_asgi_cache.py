"""The ASGI adapter of the HTTP response cache: Starlette, FastAPI, any ASGI 3 application.

It only moves bytes: it turns the scope into a
:class:`~perfprim.web._http_cache_core.CacheRequest`, reads the cache, asks
the core what to answer, calls the application when told to (buffering the
body while it may be stored), and writes what the core says to write. Every
decision is the core's. Its own failures (a cache that raises, a value it
cannot store) are logged and the request goes to the application: the
middleware never breaks the app it wraps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import timedelta
from typing import Any

from perfprim.cache import AsyncTieredCache
from perfprim.cache.advanced import MISSING, AsyncSingleFlight
from perfprim.exceptions import ConfigurationError
from perfprim.web._http_cache_core import (
    AsgiHeaders,
    CacheRequest,
    ReadAction,
    ReadDecision,
    RequestPlan,
    StoreDecision,
    decide_collapsed,
    decide_on_error,
    decide_read,
    decide_store,
    plan_request,
    storable,
)
from perfprim.web._http_cache_entry import HttpCacheEntry
from perfprim.web._http_cache_options import CONDITIONAL_FIELDS, CacheOptions, logger
from perfprim.web._http_cache_policy import HttpCachePolicy

__all__ = ["CacheMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ERRORS = frozenset({500, 502, 503, 504})
_CONDITIONALS = frozenset(name.encode() for name in CONDITIONAL_FIELDS)
_COLLAPSIBLE = frozenset({"uri-miss", "vary-miss", "stale"})
_ANSWERS = frozenset({ReadAction.SERVE, ReadAction.NOT_MODIFIED})


def _encode(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]


async def _send_whole(
    send: Send, status: int, headers: Iterable[tuple[str, str]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class _Forwarded:
    """What one call of the application produced, as far as the cache needs it."""

    __slots__ = ("error", "result", "sent", "stood_in")

    def __init__(self) -> None:
        self.result: StoreDecision | None = None
        self.error: BaseException | None = None
        self.sent = False  # something reached the client
        self.stood_in = False  # a stale entry answered for an error (stale-if-error)


class CacheMiddleware:
    """ASGI middleware: a shared HTTP response cache (RFC 9111) on an ``AsyncTieredCache``.

    Stores the responses to GET that their headers allow (``s-maxage``,
    ``max-age``, ``Expires``, else ``default_ttl``) and answers later GET and
    HEAD requests from the cache without calling the application: the stored
    response with ``Age``, a 304 when ``If-None-Match``/``If-Modified-Since``
    say the client's copy is current, a stale copy within
    ``stale-while-revalidate`` (refreshed by one background request) or
    ``stale-if-error``. Every response carries ``Cache-Status`` (RFC 9211).
    Concurrent misses of one URL call the application once in this process.
    A successful POST, PUT, PATCH or DELETE invalidates its URL, ``Location``
    and ``Content-Location``; ``Cache-Tag`` response fields become cache tags
    (``cache.invalidate_tags("product:42")``) and are not sent to the client.
    See ``docs/http_cache.md`` for every rule and option.

    Args:
        app: The ASGI application to wrap.
        cache: The store: an :class:`~perfprim.cache.AsyncTieredCache`
            (memory L1, Redis L2). Give the HTTP cache its own ``namespace``.
        default_ttl: Freshness in seconds for responses that state none;
            ``None`` (the default) stores only what the response allows.
        policy: Every other choice (:class:`~perfprim.web.HttpCachePolicy`);
            ``default_ttl``, when given, replaces the policy's.
        paths: Cache only these path prefixes (or the paths a predicate
            accepts); the others pass through untouched. ``None``: every path.
        clock: Wall clock in epoch seconds; injectable for tests.
        error_timeout: With a stale entry that ``stale-if-error`` allows, a
            forward that has not answered within this many seconds is
            answered with the stale entry (RFC 5861 §4); ``None`` waits.

    Raises:
        ConfigurationError: If an option is invalid.

    Example (FastAPI or Starlette)::

        cache = AsyncTieredCache(MemoryTier(maxsize=10_000), namespace="http")
        app.add_middleware(CacheMiddleware, cache=cache, default_ttl=None)
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: AsyncTieredCache,
        default_ttl: float | timedelta | None = None,
        policy: HttpCachePolicy | None = None,
        paths: Iterable[str] | Callable[[str], bool] | None = None,
        clock: Callable[[], float] | None = None,
        error_timeout: float | timedelta | None = None,
    ) -> None:
        if not isinstance(cache, AsyncTieredCache):
            raise ConfigurationError(
                "cache must be a perfprim.cache.AsyncTieredCache (the WSGI and Django "
                f"middleware take a TieredCache), got {type(cache).__name__}"
            )
        self.app = app
        self.cache = cache
        self.options = CacheOptions.build(
            default_ttl=default_ttl,
            policy=policy,
            paths=paths,
            clock=clock or time.time,
            error_timeout=error_timeout,
        )
        self.policy = self.options.policy
        self._flight: AsyncSingleFlight[str] = AsyncSingleFlight()
        self._revalidating: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        paths = self.options.paths
        if paths is not None and not paths(scope["path"]):
            await self.app(scope, receive, send)
            return
        policy = self.policy
        try:
            plan = plan_request(_request(scope), policy)
            decision = await self._read(plan) if plan.lookup else None
        except Exception:
            logger.exception("HTTP cache: reading the cache failed; the request goes to the app")
            await self.app(scope, receive, send)
            return
        if decision is not None and decision.action is not ReadAction.FORWARD:
            await _send_whole(send, decision.status, decision.headers, decision.body)
            if decision.revalidate:
                self._revalidate(scope, plan, decision)
            return
        if (
            decision is not None
            and plan.may_store
            and not plan.authorized
            and decision.fwd in _COLLAPSIBLE
        ):
            await self._collapse(scope, receive, send, plan, decision)
            return
        forwarded = await self._forward(scope, receive, send, plan, decision)
        if forwarded.error is not None:
            raise forwarded.error

    # -- reading -----------------------------------------------------------------------------

    async def _read(self, plan: RequestPlan) -> ReadDecision:
        policy = self.policy
        now = self.options.clock()
        decision = decide_read(plan, await self.cache.get(plan.key), now=now, policy=policy)
        if decision.action is ReadAction.LOOKUP_VARIANT:
            stored = await self.cache.get(decision.key)  # type: ignore[arg-type]
            decision = decide_read(
                plan, stored, now=now, policy=policy, vary_index=decision.vary_index
            )
        return decision

    # -- single-flight -----------------------------------------------------------------------

    async def _collapse(
        self, scope: Scope, receive: Receive, send: Send, plan: RequestPlan, decision: ReadDecision
    ) -> None:
        """Concurrent misses of one URL: one forward, the others answered from what it stored.

        One forward per process (single-flight) and, with Redis, one at a time across
        processes (the cache's lock: a process that waited re-reads the cache).
        """
        mine: _Forwarded | None = None

        async def lead() -> HttpCacheEntry | None:
            nonlocal mine
            mine = await self._forward(scope, receive, send, plan, decision)
            return mine.result.entry if mine.result is not None else None

        async def reread() -> object:
            try:
                found = await self._read(plan)
            except Exception:
                return MISSING
            if found.action in _ANSWERS and not found.revalidate and found.entry is not None:
                return found.entry
            return MISSING

        async def flight() -> HttpCacheEntry | None:
            return await self.cache.load_once(plan.key, lead, read=reread)

        try:
            entry = await self._flight.do(plan.key, flight)
        except Exception:  # the cache's lock failed closed: this request forwards by itself
            logger.warning("HTTP cache: the single-flight failed", exc_info=True)
            entry = None
        if mine is not None:
            if mine.error is not None:
                raise mine.error
            return
        try:
            collapsed = decide_collapsed(
                plan, decision, entry, now=self.options.clock(), policy=self.policy
            )
        except Exception:
            logger.exception("HTTP cache: answering a collapsed request failed")
            collapsed = None
        if collapsed is not None:
            await _send_whole(send, collapsed.status, collapsed.headers, collapsed.body)
            return
        forwarded = await self._forward(scope, receive, send, plan, decision)
        if forwarded.error is not None:
            raise forwarded.error

    # -- forwarding --------------------------------------------------------------------------

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        plan: RequestPlan,
        decision: ReadDecision | None,
    ) -> _Forwarded:
        """Call the application; store, invalidate and answer as the core decides.

        Never raises: the application's exception is returned in ``error``
        (after a stale entry answered for it, when ``stale-if-error`` allows).
        """
        out = _Forwarded()
        if decision is not None and decision.strip_conditionals:
            scope = dict(scope)
            scope["headers"] = [h for h in scope["headers"] if h[0].lower() not in _CONDITIONALS]
        exchange = _Exchange(self, plan, decision, send, out)
        fallback_possible = (
            decision is not None
            and decision.entry is not None
            and decision.entry.stale_if_error > 0
        )
        try:
            timeout = self.options.error_timeout
            if fallback_possible and timeout is not None:
                await asyncio.wait_for(self.app(scope, receive, exchange.send), timeout)
            else:
                await self.app(scope, receive, exchange.send)
            await exchange.finish()
        except Exception as exc:  # the application's (or a timeout): stale-if-error may answer
            if out.stood_in or (
                not out.sent and fallback_possible and await self._stand_in(send, plan, decision)
            ):
                # The client has its answer: the error is logged, not raised into the server.
                logger.warning(
                    "HTTP cache: served a stale response for an app error", exc_info=True
                )
                return out
            out.error = exc
        return out

    async def _stand_in(
        self,
        send: Send,
        plan: RequestPlan,
        decision: ReadDecision | None,
        status: int | None = None,
    ) -> bool:
        """Answer with the stale entry when ``stale-if-error`` allows it; whether it did."""
        try:
            fallback = decide_on_error(
                plan, decision, now=self.options.clock(), policy=self.policy, status=status
            )
        except Exception:
            logger.exception("HTTP cache: deciding on an application error failed")
            return False
        if fallback is None:
            return False
        await _send_whole(send, fallback.status, fallback.headers, fallback.body)
        return True

    async def _apply(self, result: StoreDecision) -> None:
        """Carry out the core's writes and deletes; a cache failure is logged, never raised."""
        cache = self.cache
        try:
            for write in result.writes:
                await cache.set(write.key, write.value, ttl=write.ttl, tags=write.tags or None)
            for key in result.deletes:
                await cache.delete(key)
        except Exception:
            logger.exception("HTTP cache: writing to the cache failed; the response is sent")

    # -- stale-while-revalidate --------------------------------------------------------------

    def _revalidate(self, scope: Scope, plan: RequestPlan, decision: ReadDecision) -> None:
        """Refresh a stale entry with one background GET (one per key in this process)."""
        entry = decision.entry
        key = f"{plan.key}#{entry.variant}" if entry is not None and entry.variant else plan.key
        if key in self._revalidating:
            return
        self._revalidating.add(key)
        try:
            task = asyncio.get_running_loop().create_task(self._refresh(scope, plan, decision, key))
        except RuntimeError:
            self._revalidating.discard(key)
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(
        self, scope: Scope, plan: RequestPlan, decision: ReadDecision, key: str
    ) -> None:
        try:
            request = plan.request
            headers = [h for h in scope["headers"] if h[0].lower() not in _CONDITIONALS]
            get_scope = dict(scope, method="GET", headers=headers)
            get_plan = plan_request(
                CacheRequest(
                    "GET", request.scheme, request.host, request.path, request.query,
                    AsgiHeaders(headers),
                ),
                self.policy,
            )  # fmt: skip
            collected = _Collected()
            await self.app(get_scope, _empty_receive, collected.send)
            if collected.status is None or collected.status in _ERRORS:
                return  # keep serving the stale entry (RFC 5861 §3)
            result = decide_store(
                get_plan,
                decision._replace(strip_conditionals=False),
                status=collected.status,
                headers=collected.headers,
                body=b"".join(collected.body),
                now=self.options.clock(),
                policy=self.policy,
            )
            await self._apply(result)
        except Exception:
            logger.warning("HTTP cache: background revalidation of %s failed", key, exc_info=True)
        finally:
            self._revalidating.discard(key)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for the background revalidations running now (tests, shutdown)."""
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


class _Collected:
    """A send that keeps the response (a background revalidation)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            self.body.append(bytes(message.get("body", b"")))


class _Exchange:
    """The send handed to the application: buffers while the response may be stored."""

    __slots__ = (
        "buffered",
        "chunks",
        "decision",
        "done",
        "middleware",
        "out",
        "passing",
        "plan",
        "send_body",
        "size",
        "start",
        "upstream",
    )

    def __init__(
        self,
        middleware: CacheMiddleware,
        plan: RequestPlan,
        decision: ReadDecision | None,
        upstream: Send,
        out: _Forwarded,
    ) -> None:
        self.middleware = middleware
        self.plan = plan
        self.decision = decision
        self.upstream = upstream
        self.out = out
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.buffered = False  # holding the response to store it
        self.passing = False  # passing it through
        self.send_body = True
        self.done = False  # the client got the whole response (or a stand-in)

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.done:
            return  # a stand-in answered; the application's response is dropped
        if kind == "http.response.start":
            await self._start(message)
        elif kind == "http.response.body":
            await self._body(message)
        else:  # trailers, extensions: pass them on
            self.out.sent = True
            await self.upstream(message)

    async def _start(self, message: Message) -> None:
        middleware = self.middleware
        status = message["status"]
        headers = list(message.get("headers", ()))
        self.start = message
        plan, decision = self.plan, self.decision
        try:
            if (
                status in _ERRORS
                and decision is not None
                and decision.entry is not None
                and await middleware._stand_in(self.upstream, plan, decision, status)
            ):
                self.done = self.out.sent = self.out.stood_in = True
                return
            refusal = storable(
                plan, status, headers, now=middleware.options.clock(), policy=middleware.policy
            )
        except Exception:
            logger.exception("HTTP cache: judging the response failed; it passes through")
            self.passing = True
            self.out.sent = True
            await self.upstream(message)
            return
        if refusal is None:
            self.buffered = True  # decide once the body is in
            return
        await self._pass(None)

    def _decide(self, start: Message, body: bytes | None) -> StoreDecision | None:
        """The core's store decision on the response (None: it failed, so pass through)."""
        middleware = self.middleware
        try:
            return decide_store(
                self.plan,
                self.decision,
                status=start["status"],
                headers=list(start.get("headers", ())),
                body=body,
                now=middleware.options.clock(),
                policy=middleware.policy,
            )
        except Exception:
            logger.exception("HTTP cache: deciding on a response failed; it passes through")
            return None

    async def _pass(self, body: bytes | None, *, more: bool = True) -> None:
        """Send the start with the core's headers, then what was buffered, then pass through."""
        middleware = self.middleware
        start = self.start
        assert start is not None
        self.buffered = False
        self.passing = True
        result = self._decide(start, body)
        self.out.result = result
        if result is not None:
            await middleware._apply(result)
            start = {**start, "status": result.status, "headers": _encode(result.headers)}
            self.send_body = result.send_body
        self.out.sent = True
        await self.upstream(start)
        chunks, self.chunks = self.chunks, []
        if chunks or not more:
            body_now = b"".join(chunks) if self.send_body else b""
            await self.upstream({"type": "http.response.body", "body": body_now, "more_body": more})
        if not more:
            self.done = True

    async def _body(self, message: Message) -> None:
        more = bool(message.get("more_body", False))
        if self.buffered:
            chunk = message.get("body", b"")
            if chunk:
                self.chunks.append(bytes(chunk))
                self.size += len(chunk)
            policy = self.middleware.policy
            if more and self.size == len(chunk) and not policy.store_streaming:
                await self._pass(None)  # a streamed body: passed through (store_streaming=False)
                return
            if self.size > policy.max_body_bytes:
                await self._pass(b"".join(self.chunks), more=more)  # the core says too-large
                return
            if not more:
                await self._store()
            return
        if self.passing:
            if self.send_body:
                self.out.sent = True
                await self.upstream(message)
            elif not more:
                await self.upstream({"type": "http.response.body", "body": b"", "more_body": False})
            if not more:
                self.done = True
            return
        await self.upstream(message)  # a body before the start: the server will complain

    async def _store(self) -> None:
        """The whole body is in: store it and answer as the core says."""
        middleware = self.middleware
        start = self.start
        assert start is not None
        body = b"".join(self.chunks)
        self.chunks = []
        self.buffered = False
        self.done = True
        result = self._decide(start, body)
        self.out.result = result
        self.out.sent = True
        if result is None:
            await _send_whole(self.upstream, start["status"], _decode(start), body)
            return
        await middleware._apply(result)
        await _send_whole(
            self.upstream, result.status, result.headers, body if result.send_body else b""
        )

    async def finish(self) -> None:
        """The application returned: flush a response it left unfinished."""
        if self.buffered:
            await self._store()
        elif self.passing and not self.done and not self.send_body:
            await self.upstream({"type": "http.response.body", "body": b"", "more_body": False})


def _decode(message: Message) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in message.get("headers", ())]


def _request(scope: Scope) -> CacheRequest:
    """The request as the core sees it: the raw path, the Host field, the query as received."""
    headers = AsgiHeaders(scope["headers"])
    host = headers.get("host")
    if host is None:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    return CacheRequest(scope["method"], scope.get("scheme", "http"), host, path, query, headers)
