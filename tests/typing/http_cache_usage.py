"""Uses the HTTP cache middleware the way a user would; mypy --strict checks it (not run)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from perfprim.cache import AsyncTieredCache, MemoryTier, TieredCache
from perfprim.web import HttpCachePolicy, asgi, django, wsgi


async def asgi_app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    """A plain ASGI application."""


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A plain WSGI application."""
    start_response("200 OK", [("Cache-Control", "max-age=60")])
    return [b"ok"]


cached_asgi = asgi.CacheMiddleware(
    asgi_app,
    cache=AsyncTieredCache(MemoryTier(), namespace="http"),
    default_ttl=None,
    policy=HttpCachePolicy(set_cookie="strip", default_stale_if_error=300),
    paths=["/products"],
    error_timeout=2.0,
)
cached_wsgi = wsgi.CacheMiddleware(
    wsgi_app, cache=TieredCache(MemoryTier(), namespace="http"), default_ttl=30.0
)
cached_wsgi.drain(timeout=1.0)


@django.cache_response(default_ttl=60)
def view(request: Any, sku: str) -> Iterable[bytes]:
    """A Django view cached on its own."""
    return [sku.encode()]
