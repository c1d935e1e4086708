"""The soak's ASGI service: Starlette on gunicorn's uvicorn workers, an AsyncTieredCache on Redis.

Behind perfprim's metrics and response-cache middleware.

``gunicorn tests.reliability.soak.asgi_app:app -k uvicorn_worker.UvicornWorker -w 2``
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier
from perfprim.exceptions import BackendError
from perfprim.web.asgi import CacheMiddleware, MetricsMiddleware
from tests.reliability.soak.common import (
    CACHE_TTL,
    INVALIDATE_L1,
    L1_TTL,
    PROBE_KEY,
    Database,
    mark_slow_request,
    process_figures,
    random_item,
    setting,
)

db = Database(setting("SOAK_DB"))
tier = AsyncRedisTier.from_url(setting("SOAK_REDIS_URL"))
cache = AsyncTieredCache(
    MemoryTier(maxsize=10_000, ttl=L1_TTL),
    tier,
    ttl=CACHE_TTL,
    namespace=setting("SOAK_NAMESPACE"),
    invalidate_l1=INVALIDATE_L1,
)


async def read_item(item: int) -> JSONResponse:
    """The item through the cache (cache-aside over the database)."""

    async def load() -> dict[str, object]:
        return db.read(item)

    return JSONResponse(await cache.get_or_load(f"item:{item}", load))


async def any_item(request: Request) -> JSONResponse:
    """A random item: the steady load."""
    return await read_item(random_item())


async def item(request: Request) -> JSONResponse:
    """GET reads an item through the cache; POST writes a new version and invalidates it."""
    number = int(request.path_params["item"])
    if request.method == "POST":
        version = db.bump(number)
        await cache.delete(f"item:{number}")
        return JSONResponse({"id": number, "v": version})
    return await read_item(number)


async def redis_ok(request: Request) -> JSONResponse:
    """Whether this worker's Redis tier answers now (its circuit breaker included)."""
    try:
        await tier.get(PROBE_KEY)
        ok = True
    except BackendError:
        ok = False
    return JSONResponse({"ok": ok, **process_figures()})


async def slow(request: Request) -> JSONResponse:
    """A request that lasts ``seconds`` (5): long enough to kill its worker in the middle of it."""
    mark_slow_request(setting("SOAK_STATE"))
    await asyncio.sleep(float(request.query_params.get("seconds", "5")))
    return JSONResponse({"slow": True})


routes = [
    Route("/items/any", any_item),
    Route("/items/{item:int}", item, methods=["GET", "POST"]),
    Route("/redis-ok", redis_ok),
    Route("/slow", slow),
]
# The HTTP response cache (issue 13) on the same tiered cache: every GET is looked up there
# first. The item responses carry no freshness of their own, so they are not stored
# (``default_ttl=None``); the lookups still meet every Redis fault.
app = MetricsMiddleware(CacheMiddleware(Starlette(routes=routes), cache=cache))
