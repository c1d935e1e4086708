"""A FastAPI app behind perfprim's ASGI CacheMiddleware, for the real-server cache tests.

``/local/...`` is cached in a memory-only cache per worker (ETags computed in
each worker); everything else in memory L1 + the private Redis.
"""

from __future__ import annotations

import asyncio
import os

from fastapi import FastAPI, Request, Response

from perfprim.web.asgi import CacheMiddleware
from tests.web.apps.cache_common import async_cache, count_call, local_async_cache

app = FastAPI()
PID = str(os.getpid())


@app.get("/products/{product_id}")
async def product(product_id: int, request: Request, response: Response) -> dict[str, object]:
    """A product for 60 s, tagged; ``?sleep=`` seconds first."""
    count_call(request.url.path)
    await asyncio.sleep(float(request.query_params.get("sleep", "0")))
    response.headers["cache-control"] = "max-age=60"
    response.headers["cache-tag"] = f"product:{product_id}"
    response.headers["x-pid"] = PID
    return {"product": product_id, "lang": request.headers.get("accept-language")}


@app.post("/products/{product_id}", status_code=204)
async def edit(product_id: int, request: Request) -> Response:
    """An edit: invalidates the product's URL."""
    count_call("POST " + request.url.path)
    return Response(status_code=204)


@app.get("/local/{name}")
async def local(name: str, request: Request, response: Response) -> dict[str, str]:
    """The same body in every worker; X-Pid says which worker made it."""
    count_call(request.url.path)
    response.headers["cache-control"] = "max-age=60"
    response.headers["x-pid"] = PID
    return {"name": name}


app.add_middleware(CacheMiddleware, cache=async_cache(), paths=lambda p: not p.startswith("/local"))
app.add_middleware(CacheMiddleware, cache=local_async_cache(), paths=["/local"])
