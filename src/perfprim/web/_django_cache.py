"""The Django adapter of the HTTP response cache: a ``MIDDLEWARE`` entry and a view decorator.

It only translates: ``request.META`` into a
:class:`~perfprim.web._http_cache_core.CacheRequest`, the ``HttpResponse``
into an :class:`~perfprim.web._http_cache_sync.Upstream` (cookies included),
and the reply back into an ``HttpResponse`` (the view's own one when it is
passed through). The flow is
:class:`~perfprim.web._http_cache_sync.SyncHttpCache`'s.

Configuration (``settings.py``)::

    PERFPRIM_CACHE = "myproject.caches.http_cache"   # dotted path, or the TieredCache itself
    PERFPRIM_HTTP_CACHE = {"default_ttl": None, "paths": ["/products"]}
"""

from __future__ import annotations

import functools
import importlib
import io
import time
from collections.abc import Callable
from typing import Any, TypeVar

from perfprim._optional import require
from perfprim.cache import TieredCache
from perfprim.exceptions import ConfigurationError
from perfprim.web._http_cache_options import CacheOptions, logger
from perfprim.web._http_cache_sync import Reply, SyncHttpCache, Upstream
from perfprim.web._wsgi_cache import wsgi_request

__all__ = ["CacheMiddleware", "cache_response"]

_FEATURE = "perfprim.web.django.CacheMiddleware"
_CONDITIONAL_KEYS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")
_OPTIONS = frozenset({"default_ttl", "policy", "paths", "clock"})

V = TypeVar("V", bound=Callable[..., Any])


def _settings_cache(conf: Any) -> TieredCache:
    value = getattr(conf.settings, "PERFPRIM_CACHE", None)
    if value is None:
        raise ConfigurationError(
            "perfprim.web.django.CacheMiddleware needs a cache: set PERFPRIM_CACHE in "
            "settings to a TieredCache or to its dotted path ('myproject.caches.http_cache')"
        )
    if isinstance(value, str):
        module_name, _, attribute = value.rpartition(".")
        try:
            value = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigurationError(
                f"PERFPRIM_CACHE = {value!r} names nothing importable: give "
                "'package.module.attribute' of a TieredCache"
            ) from exc
    if callable(value) and not isinstance(value, TieredCache):
        value = value()  # a factory
    if not isinstance(value, TieredCache):
        raise ConfigurationError(
            f"PERFPRIM_CACHE must be a perfprim.cache.TieredCache, got {type(value).__name__}"
        )
    return value


def _settings_options(conf: Any) -> dict[str, Any]:
    options = dict(getattr(conf.settings, "PERFPRIM_HTTP_CACHE", {}) or {})
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ConfigurationError(
            f"PERFPRIM_HTTP_CACHE has unknown options {sorted(unknown)}; valid: {sorted(_OPTIONS)}"
        )
    return options


class CacheMiddleware:
    """Django middleware: a shared HTTP response cache (RFC 9111) on a ``TieredCache``.

    The rules are those of :class:`perfprim.web.asgi.CacheMiddleware`
    (``docs/http_cache.md``). Put it early in ``MIDDLEWARE`` (after
    ``MetricsMiddleware`` when both are used), so a hit skips the rest.
    The cache comes from the ``PERFPRIM_CACHE`` setting (a
    :class:`~perfprim.cache.TieredCache`, a dotted path to one, or a
    zero-argument factory), the options from ``PERFPRIM_HTTP_CACHE`` (a dict
    of ``default_ttl``, ``policy``, ``paths``, ``clock``). Stale entries are
    refreshed in a background thread under WSGI; under ASGI a stale entry
    within ``stale-while-revalidate`` is served and the next request after
    the window refreshes it.

    Args:
        get_response: The next handler (Django passes it).
        cache: The store; default: ``PERFPRIM_CACHE``.
        **options: Override ``PERFPRIM_HTTP_CACHE``.

    Raises:
        MissingDependencyError: If Django is not installed.
        ConfigurationError: If the settings or options are invalid.
    """

    sync_capable = True
    async_capable = False

    def __init__(
        self,
        get_response: Callable[[Any], Any],
        *,
        cache: TieredCache | None = None,
        **options: Any,
    ) -> None:
        conf = require("django.conf", package="django", extra="django", feature=_FEATURE)
        self._http = require("django.http", package="django", extra="django", feature=_FEATURE)
        merged = {**_settings_options(conf), **options}
        unknown = set(merged) - _OPTIONS
        if unknown:
            raise ConfigurationError(
                f"unknown options {sorted(unknown)}; valid: {sorted(_OPTIONS)}"
            )
        cache = cache if cache is not None else _settings_cache(conf)
        built = CacheOptions.build(
            default_ttl=merged.get("default_ttl"),
            policy=merged.get("policy"),
            paths=merged.get("paths"),
            clock=merged.get("clock") or time.time,
            error_timeout=None,
        )
        self.get_response = get_response
        self.cache = cache
        self.policy = built.policy
        self.engine = SyncHttpCache(cache, built, adapter="Django")

    def __call__(self, request: Any) -> Any:
        return self.handle(request, self.get_response)

    def handle(self, request: Any, get_response: Callable[[Any], Any]) -> Any:
        """Answer ``request`` from the cache or through ``get_response``."""
        try:
            cache_request = wsgi_request(request.META)._replace(scheme=request.scheme)
        except Exception:
            logger.exception("HTTP cache: reading the Django request failed; it goes to the view")
            return get_response(request)
        plan = self.engine.plan(cache_request)
        if plan is None:
            return get_response(request)
        responses: list[Any] = []

        def forward(strip: bool) -> Upstream:
            removed = {}
            if strip:
                for key in _CONDITIONAL_KEYS:
                    if key in request.META:
                        removed[key] = request.META.pop(key)
            try:
                response = get_response(request)
            finally:
                request.META.update(removed)
            responses.append(response)
            return _upstream(response)

        refresh: Callable[[], Upstream] | None = None
        if plan.lookup and "wsgi.input" in request.META:
            refresh = functools.partial(_refresh, request.META, get_response)
        reply = self.engine.respond(plan, forward, refresh)
        return self._response(reply, responses[-1] if responses else None)

    def _response(self, reply: Reply, original: Any) -> Any:
        http = self._http
        tag_header = self.policy.tag_header
        if reply.upstream is not None and original is not None:
            response = original  # passed through: the view's own response, headers updated
            response.status_code = reply.status
            if tag_header is not None and tag_header in response:
                del response[tag_header]
            for name, value in reply.headers:
                if name != "set-cookie":
                    response[name] = value
            return response
        response = http.HttpResponse(b"".join(reply.body), status=reply.status)
        del response["content-type"]
        for name, value in reply.headers:
            if name == "set-cookie":
                response.cookies.load(value)
            else:
                response[name] = value
        return response

    def drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for the background revalidations running now (tests, shutdown)."""
        self.engine.drain(timeout)


def _upstream(response: Any) -> Upstream:
    headers = [(str(n), str(v)) for n, v in response.items()]
    headers += [("set-cookie", morsel.OutputString()) for morsel in response.cookies.values()]
    if getattr(response, "streaming", False):
        return Upstream(response.status_code, headers, response.streaming_content, True, None)
    return Upstream(response.status_code, headers, [response.content], False, None)


def _refresh(meta: dict[str, Any], get_response: Callable[[Any], Any]) -> Upstream:
    """A background GET of the same URL, without validators (WSGI requests only)."""
    handlers = require(
        "django.core.handlers.wsgi", package="django", extra="django", feature=_FEATURE
    )
    db = require("django.db", package="django", extra="django", feature=_FEATURE)
    environ = {k: v for k, v in meta.items() if k not in _CONDITIONAL_KEYS}
    environ.update({"REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": "0"})
    try:
        response = get_response(handlers.WSGIRequest(environ))
        return _upstream(response)
    finally:
        db.connections.close_all()  # this thread's connections (a thread of our own)


def cache_response(*, cache: TieredCache | None = None, **options: Any) -> Callable[[V], V]:
    """The per-view form: cache one Django view's responses (same rules as the middleware).

    Args:
        cache: The store; default: ``PERFPRIM_CACHE``.
        **options: ``default_ttl``, ``policy``, ``clock`` (default: those of
            ``PERFPRIM_HTTP_CACHE``; its ``paths`` do not apply to a decorated view).

    Returns:
        A decorator for a sync view function.

    Example::

        @cache_response(default_ttl=60)
        def product(request, product_id): ...
    """

    def decorate(view: V) -> V:
        middleware: list[CacheMiddleware] = []  # built on first use: settings are ready then

        @functools.wraps(view)
        def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
            if not middleware:
                middleware.append(CacheMiddleware(view, cache=cache, **{"paths": None, **options}))
            return middleware[0].handle(request, lambda r: view(r, *args, **kwargs))

        return wrapped  # type: ignore[return-value]

    return decorate
