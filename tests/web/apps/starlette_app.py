"""A plain Starlette app with a mounted sub-application, for the real-server tests."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from perfprim.web import RouteSLO
from perfprim.web.asgi import MetricsMiddleware


async def item(request: Request) -> PlainTextResponse:
    """An item of a tenant's shop (mounted sub-application)."""
    return PlainTextResponse(f"{request.path_params['tenant']}/{request.path_params['item_id']}")


async def health(request: Request) -> PlainTextResponse:
    """A top-level route."""
    return PlainTextResponse("ok")


shop = Starlette(routes=[Route("/items/{item_id:int}", item)])

app = Starlette(
    routes=[Route("/health", health), Mount("/shop/{tenant}", app=shop)],
    middleware=[
        Middleware(
            MetricsMiddleware,
            slos={"/shop/{tenant}/items/{item_id:int}": RouteSLO(threshold=0.25, target=0.95)},
        )
    ],
)
