"""The HTTP response cache's synchronous driver, shared by the WSGI and the Django adapters.

It runs the core's flow (:mod:`perfprim.web._http_cache_core`) on a
:class:`~perfprim.cache.TieredCache`: read, answer or forward, store,
invalidate, stand in on errors, collapse concurrent misses, refresh stale
entries in a background thread. The adapters only translate: a request into
a :class:`CacheRequest`, the application's answer into an :class:`Upstream`,
and the :class:`Reply` back into what their server expects. Its own failures
are logged and the request goes to the application.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from perfprim.cache import TieredCache
from perfprim.cache.advanced import MISSING, SingleFlight
from perfprim.exceptions import ConfigurationError
from perfprim.web._http_cache_core import (
    CacheRequest,
    Headers,
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

__all__ = ["Reply", "SyncHttpCache", "Upstream"]

_ERRORS = frozenset({500, 502, 503, 504})
_COLLAPSIBLE = frozenset({"uri-miss", "vary-miss", "stale"})
_ANSWERS = frozenset({ReadAction.SERVE, ReadAction.NOT_MODIFIED})


class Upstream(NamedTuple):
    """The application's answer, before its body is read.

    Attributes:
        status: The status code.
        headers: The header lines, text pairs (``Set-Cookie`` included).
        body: The body chunks, not yet read.
        streaming: The body is a stream (no length known up front).
        close: Releases the body (WSGI ``close()``); ``None`` if nothing to release.
    """

    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]
    streaming: bool
    close: Callable[[], None] | None = None


class Reply(NamedTuple):
    """What the adapter sends.

    Attributes:
        status: The status code.
        headers: The complete header lines.
        body: The body chunks (the application's own iterable when passed through).
        upstream: The application's answer passed through (its body is ``body``,
            or dropped for HEAD and 304); ``None`` when the cache built the reply.
    """

    status: int
    headers: Headers
    body: Iterable[bytes]
    upstream: Upstream | None = None


Forward = Callable[[bool], Upstream]
"""Calls the application; the argument says to remove ``If-None-Match``/``If-Modified-Since``."""


def _release(upstream: Upstream) -> None:
    if upstream.close is not None:
        try:
            upstream.close()
        except Exception:
            logger.exception("HTTP cache: closing the application's response failed")


class _Led:
    """What the caller that led a single-flight forward got."""

    __slots__ = ("ran", "reply")

    def __init__(self) -> None:
        self.ran = False
        self.reply: Reply | None = None


class SyncHttpCache:
    """The flow of the response cache over a sync ``TieredCache`` (see the module docstring).

    Args:
        cache: The store.
        options: The adapter's options.

    Raises:
        ConfigurationError: If ``cache`` is not a ``TieredCache``.
    """

    def __init__(self, cache: TieredCache, options: CacheOptions, *, adapter: str) -> None:
        if not isinstance(cache, TieredCache):
            raise ConfigurationError(
                f"cache must be a perfprim.cache.TieredCache for the {adapter} middleware "
                f"(the ASGI one takes an AsyncTieredCache), got {type(cache).__name__}"
            )
        self.cache = cache
        self.options = options
        self.policy = options.policy
        self._flight: SingleFlight[str] = SingleFlight()
        self._revalidating: set[str] = set()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    def plan(self, request: CacheRequest) -> RequestPlan | None:
        """The plan, or ``None`` when the request is not the cache's (path filter, failure)."""
        paths = self.options.paths
        if paths is not None and not paths(request.path.split("?", 1)[0]):
            return None
        try:
            return plan_request(request, self.policy)
        except Exception:
            logger.exception("HTTP cache: planning the request failed; it goes to the app")
            return None

    def respond(
        self, plan: RequestPlan, forward: Forward, refresh: Callable[[], Upstream] | None
    ) -> Reply:
        """Answer one request: from the cache, or through ``forward``.

        Args:
            plan: From :meth:`plan`.
            forward: Calls the application (raises what it raises).
            refresh: Calls the application for a background revalidation
                (a GET without validators, safe to run in another thread);
                ``None``: no stale-while-revalidate.

        Returns:
            The reply.
        """
        decision: ReadDecision | None = None
        if plan.lookup:
            try:
                decision = self._read(plan)
            except Exception:
                logger.exception(
                    "HTTP cache: reading the cache failed; the request goes to the app"
                )
                return self._pass_untouched(forward(False))
            if decision.action is not ReadAction.FORWARD:
                if decision.revalidate and refresh is not None:
                    self._revalidate(plan, decision, refresh)
                return Reply(decision.status, decision.headers, (decision.body,))
            if plan.may_store and not plan.authorized and decision.fwd in _COLLAPSIBLE:
                return self._collapse(plan, decision, forward)
        return self._forward(plan, decision, forward)

    def _read(self, plan: RequestPlan) -> ReadDecision:
        policy = self.policy
        now = self.options.clock()
        decision = decide_read(plan, self.cache.get(plan.key), now=now, policy=policy)
        if decision.action is ReadAction.LOOKUP_VARIANT:
            stored = self.cache.get(decision.key)  # type: ignore[arg-type]
            decision = decide_read(
                plan, stored, now=now, policy=policy, vary_index=decision.vary_index
            )
        return decision

    def _collapse(self, plan: RequestPlan, decision: ReadDecision, forward: Forward) -> Reply:
        """Concurrent misses of one URL: one forward, the others answered from what it stored.

        One forward per process (single-flight) and, with Redis, one at a time across
        processes (the cache's lock: a process that waited re-reads the cache).
        """
        led = _Led()

        def lead() -> HttpCacheEntry | None:
            led.ran = True
            led.reply, entry = self._forward_entry(plan, decision, forward)
            return entry

        def reread() -> object:
            try:
                found = self._read(plan)
            except Exception:
                return MISSING
            if found.action in _ANSWERS and not found.revalidate and found.entry is not None:
                return found.entry
            return MISSING

        def flight() -> HttpCacheEntry | None:
            return self.cache.load_once(plan.key, lead, read=reread)

        # An application error reaches every waiter through the flight: each then forwards
        # by itself below (and so meets the error, or a stand-in, on its own).
        try:
            entry = self._flight.do(plan.key, flight)
        except Exception:
            if led.ran:
                raise
            entry = None
        if led.ran:
            assert led.reply is not None
            return led.reply
        try:
            collapsed = decide_collapsed(
                plan, decision, entry, now=self.options.clock(), policy=self.policy
            )
        except Exception:
            logger.exception("HTTP cache: answering a collapsed request failed")
            collapsed = None
        if collapsed is not None:
            return Reply(collapsed.status, collapsed.headers, (collapsed.body,))
        return self._forward(plan, decision, forward)

    def _forward(self, plan: RequestPlan, decision: ReadDecision | None, forward: Forward) -> Reply:
        return self._forward_entry(plan, decision, forward)[0]

    def _forward_entry(
        self, plan: RequestPlan, decision: ReadDecision | None, forward: Forward
    ) -> tuple[Reply, HttpCacheEntry | None]:
        """Call the application; store, invalidate and answer as the core decides."""
        strip = decision is not None and decision.strip_conditionals
        try:
            upstream = forward(strip)
        except Exception:
            stand_in = self._stand_in(plan, decision, None)
            if stand_in is None:
                raise
            logger.warning("HTTP cache: served a stale response for an app error", exc_info=True)
            return stand_in, None
        try:
            if upstream.status in _ERRORS:
                stand_in = self._stand_in(plan, decision, upstream.status)
                if stand_in is not None:
                    _release(upstream)
                    return stand_in, None
            policy = self.policy
            refusal = storable(
                plan, upstream.status, upstream.headers, now=self.options.clock(), policy=policy
            )
        except Exception:
            logger.exception("HTTP cache: judging the response failed; it passes through")
            return self._pass_untouched(upstream), None
        if refusal is not None or (upstream.streaming and not policy.store_streaming):
            return self._pass(plan, decision, upstream, None, ()), None
        chunks: list[bytes] = []
        size = 0
        iterator = iter(upstream.body)
        try:
            for chunk in iterator:
                if chunk:
                    chunks.append(chunk)
                    size += len(chunk)
                if size > policy.max_body_bytes:  # the core says too-large; send the rest as is
                    return self._pass(plan, decision, upstream, b"".join(chunks), iterator), None
        except Exception:
            _release(upstream)
            stand_in = self._stand_in(plan, decision, None)
            if stand_in is None:
                raise
            return stand_in, None
        _release(upstream)
        body = b"".join(chunks)
        try:
            result = decide_store(
                plan,
                decision,
                status=upstream.status,
                headers=upstream.headers,
                body=body,
                now=self.options.clock(),
                policy=policy,
            )
        except Exception:
            logger.exception("HTTP cache: deciding on a response failed; it passes through")
            return Reply(upstream.status, tuple(upstream.headers), (body,)), None
        self._apply(result)
        return Reply(
            result.status, result.headers, (body,) if result.send_body else ()
        ), result.entry

    def _pass(
        self,
        plan: RequestPlan,
        decision: ReadDecision | None,
        upstream: Upstream,
        head: bytes | None,
        rest: Iterable[bytes],
    ) -> Reply:
        """Pass the application's answer through with the core's headers (nothing stored)."""
        try:
            result: StoreDecision = decide_store(
                plan,
                decision,
                status=upstream.status,
                headers=upstream.headers,
                body=head,
                now=self.options.clock(),
                policy=self.policy,
            )
        except Exception:
            logger.exception("HTTP cache: deciding on a response failed; it passes through")
            return self._pass_untouched(upstream)
        self._apply(result)
        if not result.send_body:
            _release(upstream)
            return Reply(result.status, result.headers, ())
        body: Iterable[bytes] = upstream.body if head is None else _chain(head, rest)
        return Reply(result.status, result.headers, body, upstream)

    @staticmethod
    def _pass_untouched(upstream: Upstream) -> Reply:
        return Reply(upstream.status, tuple(upstream.headers), upstream.body, upstream)

    def _stand_in(
        self, plan: RequestPlan, decision: ReadDecision | None, status: int | None
    ) -> Reply | None:
        try:
            fallback = decide_on_error(
                plan, decision, now=self.options.clock(), policy=self.policy, status=status
            )
        except Exception:
            logger.exception("HTTP cache: deciding on an application error failed")
            return None
        if fallback is None:
            return None
        return Reply(fallback.status, fallback.headers, (fallback.body,))

    def _apply(self, result: StoreDecision) -> None:
        cache = self.cache
        try:
            for write in result.writes:
                cache.set(write.key, write.value, ttl=write.ttl, tags=write.tags or None)
            for key in result.deletes:
                cache.delete(key)
        except Exception:
            logger.exception("HTTP cache: writing to the cache failed; the response is sent")

    # -- stale-while-revalidate --------------------------------------------------------------

    def _revalidate(
        self, plan: RequestPlan, decision: ReadDecision, refresh: Callable[[], Upstream]
    ) -> None:
        entry = decision.entry
        key = f"{plan.key}#{entry.variant}" if entry is not None and entry.variant else plan.key
        with self._lock:
            if key in self._revalidating:
                return
            self._revalidating.add(key)
        thread = threading.Thread(
            target=self._refresh,
            args=(plan, decision, refresh, key),
            name="perfprim-http-revalidate",
            daemon=True,
        )
        with self._lock:
            self._threads.add(thread)
        try:
            thread.start()
        except RuntimeError:
            with self._lock:
                self._revalidating.discard(key)
                self._threads.discard(thread)

    def _refresh(
        self,
        plan: RequestPlan,
        decision: ReadDecision,
        refresh: Callable[[], Upstream],
        key: str,
    ) -> None:
        try:
            request = plan.request
            headers = {n: v for n, v in request.headers.items() if n not in CONDITIONAL_FIELDS}
            get_plan = plan_request(request._replace(method="GET", headers=headers), self.policy)
            upstream = refresh()
            try:
                body = b"".join(upstream.body)
            finally:
                _release(upstream)
            if upstream.status in _ERRORS:
                return  # keep serving the stale entry (RFC 5861 §3)
            result = decide_store(
                get_plan,
                decision._replace(strip_conditionals=False),
                status=upstream.status,
                headers=upstream.headers,
                body=body,
                now=self.options.clock(),
                policy=self.policy,
            )
            self._apply(result)
        except Exception:
            logger.warning("HTTP cache: background revalidation of %s failed", key, exc_info=True)
        finally:
            with self._lock:
                self._revalidating.discard(key)
                self._threads.discard(threading.current_thread())

    def drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for the background revalidations running now (tests, shutdown)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)


def _chain(head: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest
