"""A FastAPI app with perfprim's ASGI middleware, for the real-server tests.

Routes: a product with an SLO (``?delay=`` makes it slow), an included
router, a 1 s streaming response, a 1 s background task, a view that raises,
an HTTPException(404), a WebSocket, a slow stream for client disconnects, a
``@timed`` view and a tiered cache registered as a source (the FastAPI recipe
of docs/telemetry.md, combined with the gunicorn one under gunicorn).
"""

from __future__ import annotations

import asyncio
import os

from fastapi import APIRouter, BackgroundTasks, FastAPI, HTTPException, WebSocket
from fastapi.responses import StreamingResponse

from perfprim.cache import MemoryTier, TieredCache
from perfprim.slo import SLO, SLOTracker
from perfprim.telemetry import default_registry, timed
from perfprim.web import RouteSLO, client_error
from perfprim.web.asgi import MetricsMiddleware

registry = default_registry()
users_cache = TieredCache(MemoryTier(maxsize=1_000), ttl=300.0, namespace="users")
registry.add_cache("cache.users", users_cache)
users_slo = SLOTracker(SLO(target=0.999))
registry.add_slo("slo.get_user", users_slo)

app = FastAPI()
api = APIRouter(prefix="/v1")


@api.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    """A route of an included router."""
    return {"item": item_id}


app.include_router(api, prefix="/api")


@app.get("/products/{product_id}")
async def product(product_id: int, delay: float = 0.0) -> dict[str, int]:
    """A product with an SLO; ``?delay=`` seconds of sleep first."""
    if delay:
        await asyncio.sleep(delay)
    return {"product": product_id}


@users_cache.cached()
def load_user(user_id: int) -> dict[str, int]:
    """A cached loader (the cache's stats are a source)."""
    return {"user": user_id}


@app.get("/users/{user_id}")
@timed(name="http.get_user", slo=users_slo, exclude=client_error)
async def get_user(user_id: int) -> dict[str, int]:
    """A @timed view with its own SLO; user 0 is a 404."""
    if user_id == 0:
        raise HTTPException(status_code=404)
    return load_user(user_id)


async def _chunks() -> object:
    for i in range(4):
        yield f"chunk {i}\n".encode()
        await asyncio.sleep(0.25)


@app.get("/stream")
async def stream() -> StreamingResponse:
    """A 1 s streaming response."""
    return StreamingResponse(_chunks(), media_type="text/plain")


async def _slow_chunks() -> object:
    for i in range(50):
        yield (f"chunk {i}\n" * 1000).encode()
        await asyncio.sleep(0.1)


@app.get("/slow-stream")
async def slow_stream() -> StreamingResponse:
    """A 5 s stream, for client disconnects."""
    return StreamingResponse(_slow_chunks(), media_type="text/plain")


async def _one_second() -> None:
    await asyncio.sleep(1.0)


@app.get("/background")
async def background(tasks: BackgroundTasks) -> dict[str, str]:
    """Answers at once; a 1 s background task runs after."""
    tasks.add_task(_one_second)
    return {"status": "queued"}


@app.get("/boom")
async def boom() -> None:
    """A view that raises."""
    raise ValueError("boom")


@app.get("/missing/{thing}")
async def missing(thing: str) -> None:
    """A view that raises HTTPException(404)."""
    raise HTTPException(status_code=404)


@app.websocket("/ws/{room}")
async def echo(websocket: WebSocket, room: str) -> None:
    """A WebSocket that echoes one message with its room."""
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"{room}:{text}")
    await websocket.close()


app.add_middleware(
    MetricsMiddleware,
    slos={"/products/{product_id}": RouteSLO(threshold=0.2, target=0.99)},
    default_slo=RouteSLO(threshold=0.5, target=0.99),
)


if os.environ.get("PERFPRIM_TEST_TRACING"):
    # A real OTel SDK and the OTel ASGI middleware outside perfprim's: each
    # request runs in a sampled span, which perfprim keeps as exemplar.
    from opentelemetry import trace
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
    app = OpenTelemetryMiddleware(app)  # type: ignore[assignment]
