"""The service ``perfprim demo`` runs: a small shop behind the tiered cache, served by uvicorn.

A Starlette app with two pages over a slow "database" (an asyncio pool of
:data:`POOL` connections, :data:`QUERY_SECONDS` per query):

- ``/products/{product_id}``: the product page, behind the HTTP response
  cache (:class:`perfprim.web.asgi.CacheMiddleware`, ``max-age=3``), its
  slow call behind ``@cache.cached``; both caches are
  :class:`~perfprim.cache.AsyncTieredCache` (memory L1, Redis L2 when there
  is one), in namespaces of their own;
- ``/products/{product_id}/stock``: the live stock level, never cached (the
  capacity step load measures it: the database pool is its bottleneck).

The app is wrapped by :func:`wrap_response_cache` (the HTTP response cache)
and then by the metrics middleware with a per-route SLO (outside, so that
response-cache hits are measured under their route too), and served in
process by uvicorn on a free loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from perfprim.cache import AsyncRedisTier, AsyncTieredCache, CacheStats, MemoryTier
from perfprim.web import RouteSLO

__all__ = [
    "PAGE_MAX_AGE",
    "POOL",
    "PRODUCT_ROUTE",
    "QUERY_SECONDS",
    "SLO_TARGET",
    "SLO_THRESHOLD",
    "STOCK_ROUTE",
    "Database",
    "DemoService",
    "build_app",
    "response_cached",
    "wrap_response_cache",
]

POOL = 8
"""Database connections: at most this many queries at once."""
QUERY_SECONDS = 0.015
"""Seconds per database query."""
PRODUCT_ROUTE = "/products/{product_id}"
STOCK_ROUTE = "/products/{product_id}/stock"
SLO_THRESHOLD = 0.1
"""The product page's latency SLO: requests within 100 ms..."""
SLO_TARGET = 0.99
"""... for 99% of them (over 30 days)."""
L1_SIZE = 100
L1_TTL = 2.0
CACHE_TTL = 60.0
PAGE_MAX_AGE = 3
"""Seconds the response cache may answer a product page without the app (its max-age)."""


class Database:
    """A slow database: :data:`POOL` connections, :data:`QUERY_SECONDS` per query."""

    def __init__(self) -> None:
        self.queries = 0
        self._pool: asyncio.Semaphore | None = None

    async def query(self, product_id: int) -> dict[str, Any]:
        """One row, after waiting for a connection and the query's time."""
        if self._pool is None:  # made on the server's event loop
            self._pool = asyncio.Semaphore(POOL)
        async with self._pool:
            self.queries += 1
            await asyncio.sleep(QUERY_SECONDS)
        return {"id": product_id, "name": f"product {product_id}", "price": product_id % 97 + 0.99}


def response_cached(path: str) -> bool:
    """Whether the HTTP response cache handles ``path``: the product page, not the live stock."""
    return not path.endswith("/stock")


def wrap_response_cache(app: Any, http_cache: AsyncTieredCache) -> Any:
    """Put the HTTP response cache (:class:`perfprim.web.asgi.CacheMiddleware`) in front of ``app``.

    The product page says ``Cache-Control: public, max-age=3``
    (:data:`PAGE_MAX_AGE`): a page is answered from the response cache (its
    L1, then Redis) for 3 s after the app rendered it, with an ETag (a
    digest of the body) that turns a client's ``If-None-Match`` into a 304;
    only a response-cache miss reaches the page and its ``@cache.cached``
    data lookup. The stock page stays
    uncached (not even looked up), so the step load measures the database.
    """
    from perfprim.web.asgi import CacheMiddleware

    return CacheMiddleware(app, cache=http_cache, paths=response_cached)


def build_app(
    cache: AsyncTieredCache, http_cache: AsyncTieredCache, database: Database, registry: Any
) -> Any:
    """The demo's ASGI app: routes, the response cache, metrics (outermost) and the route SLO."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from perfprim.web.asgi import MetricsMiddleware

    @cache.cached(ttl=CACHE_TTL)
    async def product(product_id: int) -> dict[str, Any]:
        return await database.query(product_id)

    def product_id(request: Request) -> int:
        text = request.path_params["product_id"]
        if not text.isdigit():
            raise HTTPException(status_code=404)
        return int(text)

    async def product_page(request: Request) -> JSONResponse:
        body = await product(product_id(request))
        return JSONResponse(body, headers={"Cache-Control": f"public, max-age={PAGE_MAX_AGE}"})

    async def stock_page(request: Request) -> JSONResponse:
        row = await database.query(product_id(request))
        return JSONResponse({"id": row["id"], "in_stock": row["id"] % 7})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        yield
        await http_cache.close()  # on the loop that used them
        await cache.close()

    app: Any = Starlette(
        routes=[
            Route(PRODUCT_ROUTE, product_page),
            Route(STOCK_ROUTE, stock_page),
        ],
        lifespan=lifespan,
    )
    app = wrap_response_cache(app, http_cache)
    slo = RouteSLO(threshold=SLO_THRESHOLD, target=SLO_TARGET)
    # Outside the response cache: hits are timed, under their route, in the SLO.
    return MetricsMiddleware(app, slos={PRODUCT_ROUTE: slo}, registry=registry)


class DemoService:
    """The demo app served by uvicorn in a thread of this process.

    Args:
        redis_url: The L2's Redis, or None for a memory-only cache.
        cooldown: Seconds an open Redis circuit waits before it probes.
    """

    def __init__(self, *, redis_url: str | None, cooldown: float = 1.0) -> None:
        from perfprim.telemetry import TelemetryRegistry

        tiers: list[Any] = [MemoryTier(maxsize=L1_SIZE, ttl=L1_TTL)]
        if redis_url is not None:
            tiers.append(AsyncRedisTier.from_url(redis_url, cooldown=cooldown))
        self.cache = AsyncTieredCache(*tiers, ttl=CACHE_TTL, namespace="perfprim-demo")
        # The response cache: the same tiers, a namespace (and counters) of its own.
        http_tiers: list[Any] = [MemoryTier(maxsize=L1_SIZE, ttl=L1_TTL)]
        if redis_url is not None:
            http_tiers.append(AsyncRedisTier.from_url(redis_url, cooldown=cooldown))
        self.http_cache = AsyncTieredCache(*http_tiers, namespace="perfprim-demo-http")
        self.database = Database()
        self.registry = TelemetryRegistry()
        self.app = build_app(self.cache, self.http_cache, self.database, self.registry)
        self.redis_url = redis_url

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on a free loopback port; yield the base URL; stop (and close the cache) after."""
        import uvicorn

        from perfprim.testing import free_port

        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
            )
        )
        thread = threading.Thread(target=server.run, name="perfprim-demo-server", daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                msg = f"the demo server did not start on 127.0.0.1:{port}"
                raise RuntimeError(msg)
            thread.join(0.02)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(15)

    def stats(self) -> CacheStats:
        """The data cache's counters now."""
        return self.cache.stats()

    def http_stats(self) -> CacheStats:
        """The response cache's counters now."""
        return self.http_cache.stats()
