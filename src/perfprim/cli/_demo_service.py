"""The service ``perfprim demo`` runs: a small shop behind the tiered cache, served by uvicorn.

A Starlette app with two pages over a slow "database" (an asyncio pool of
:data:`POOL` connections, :data:`QUERY_SECONDS` per query):

- ``/products/{product_id}``: the product page, the slow call behind
  ``@cache.cached`` on an :class:`~perfprim.cache.AsyncTieredCache` (memory
  L1, Redis L2 when there is one);
- ``/products/{product_id}/stock``: the live stock level, never cached (the
  capacity step load measures it: the database pool is its bottleneck).

The app is wrapped by :func:`wrap_response_cache` (the HTTP response cache,
when ``perfprim.web.asgi`` has one) and then by the metrics middleware with a
per-route SLO, and served in process by uvicorn on a free loopback port.
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
    "POOL",
    "PRODUCT_ROUTE",
    "QUERY_SECONDS",
    "SLO_TARGET",
    "SLO_THRESHOLD",
    "STOCK_ROUTE",
    "Database",
    "DemoService",
    "build_app",
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


def wrap_response_cache(app: Any, cache: AsyncTieredCache) -> tuple[Any, bool]:
    """Put the HTTP response cache in front of ``app`` when the demo is ready for it.

    THE ONE PLACE where the response cache joins the demo.
    ``perfprim.web.asgi.CacheMiddleware`` exists now, but it stays out until
    the demo's figures account for it: a response-cache hit never reaches
    ``@cache.cached`` (the cache figures count data lookups, one per page
    request), and ``MetricsMiddleware`` labels a hit ``<unmatched>`` because
    the router never runs for it (the per-route SLO would count misses only).
    Until then the pages are cached by the tiered cache's ``@cache.cached``.

    Returns:
        The app, and whether the response cache is in (``False``).
    """
    del cache  # the response cache would get a namespace of its own
    return app, False


def build_app(cache: AsyncTieredCache, database: Database, registry: Any) -> tuple[Any, bool]:
    """The demo's ASGI app: routes, response cache (when available), metrics and SLOs.

    Returns:
        The app, and whether the HTTP response cache wraps it.
    """
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
        return JSONResponse(body, headers={"Cache-Control": "public, max-age=5"})

    async def stock_page(request: Request) -> JSONResponse:
        row = await database.query(product_id(request))
        return JSONResponse({"id": row["id"], "in_stock": row["id"] % 7})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        yield
        await cache.close()  # on the loop that used it

    app: Any = Starlette(
        routes=[
            Route(PRODUCT_ROUTE, product_page),
            Route(STOCK_ROUTE, stock_page),
        ],
        lifespan=lifespan,
    )
    app, response_cache = wrap_response_cache(app, cache)
    slo = RouteSLO(threshold=SLO_THRESHOLD, target=SLO_TARGET)
    app = MetricsMiddleware(app, slos={PRODUCT_ROUTE: slo}, registry=registry)
    return app, response_cache


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
        self.database = Database()
        self.registry = TelemetryRegistry()
        self.app, self.response_cache = build_app(self.cache, self.database, self.registry)
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
        """The cache's counters now."""
        return self.cache.stats()
