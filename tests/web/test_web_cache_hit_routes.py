"""A response-cache hit is labelled with its route and counts in the route's SLO.

The real ``CacheMiddleware`` answers a hit before the framework's router
runs, so the metrics middleware finds the route from the path: Starlette and
FastAPI (the router seen before, or found through the wrapped apps), Flask
(its URL map). Django is covered in ``test_http_cache_django.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

from perfprim.cache import AsyncTieredCache, MemoryTier, TieredCache
from perfprim.telemetry import TelemetryRegistry
from perfprim.web import RouteSLO
from perfprim.web import asgi as web_asgi
from perfprim.web import wsgi as web_wsgi

ROUTE = "/products/{product_id}"
SLO = RouteSLO(threshold=5.0, target=0.99)


def _counts(registry: TelemetryRegistry) -> dict[tuple[str, ...], int]:
    (view,) = [v for v in registry.timer_views() if v.name == "http.server.request.duration"]
    return {s.labels: s.histogram.count for s in view.series if s.histogram.count}


def _slo_events(middleware: Any, route: str) -> int:
    return int(middleware.recorder.tracker(route).snapshot().events)


def _starlette(calls: list[str]) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Mount, Route

    async def product(request: Request) -> JSONResponse:
        calls.append(request.url.path)
        return JSONResponse({"id": 1}, headers={"Cache-Control": "max-age=60"})

    async def stock(request: Request) -> PlainTextResponse:
        calls.append(request.url.path)
        return PlainTextResponse("3", headers={"Cache-Control": "max-age=60"})

    async def edit(request: Request) -> PlainTextResponse:
        return PlainTextResponse("", status_code=204)

    return Starlette(
        routes=[
            Route(ROUTE, product),
            Route("/products/{product_id}", edit, methods=["PUT"]),
            Mount("/shop/{tenant}", routes=[Route("/stock/{sku}", stock)]),
        ]
    )


async def _get(app: Any, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.example") as client:
        return [await client.get(path) for path in paths]


@pytest.mark.parametrize("first_request_hits", [False, True])
async def test_asgi_hit_is_labelled_with_its_route(first_request_hits: bool) -> None:
    """Metrics outside the cache: a hit is timed under its template and counts in the SLO.

    With ``first_request_hits`` the cache already holds the page (filled by
    another app on the same cache, as another worker would through Redis),
    so the metrics middleware has seen no router yet and finds it through
    the wrapped apps' ``app``/``router`` attributes.
    """
    calls: list[str] = []
    cache = AsyncTieredCache(MemoryTier(), namespace="http")
    if first_request_hits:
        await _get(web_asgi.CacheMiddleware(_starlette(calls), cache=cache), "/products/1")
        calls.clear()
    registry = TelemetryRegistry()
    app = web_asgi.MetricsMiddleware(
        web_asgi.CacheMiddleware(_starlette(calls), cache=cache),
        slos={ROUTE: SLO},
        registry=registry,
    )
    paths = ("/products/1", "/products/1", "/shop/acme/stock/9", "/shop/acme/stock/9", "/nope")
    responses = await _get(app, *paths)
    hits = sum(r.headers.get("Cache-Status", "").startswith("perfprim; hit") for r in responses)
    assert hits == 4 - len(calls)  # every 2xx GET the app did not answer was a hit
    assert {
        ("", "GET", "200", ROUTE): 2,
        ("", "GET", "200", "/shop/{tenant}/stock/{sku}"): 2,
        ("", "GET", "404", "<unmatched>"): 1,
    } == _counts(registry)
    assert _slo_events(app, ROUTE) == 2


async def test_asgi_add_middleware_order_and_a_path_no_route_matches() -> None:
    """FastAPI with ``add_middleware`` (metrics added last, outside); a hit's path matched once."""
    api = FastAPI()

    @api.get("/items/{item_id}")
    async def item(item_id: int, response: Response) -> dict[str, int]:
        response.headers["Cache-Control"] = "max-age=60"
        return {"id": item_id}

    registry = TelemetryRegistry()
    api.add_middleware(
        web_asgi.CacheMiddleware, cache=AsyncTieredCache(MemoryTier(), namespace="http")
    )
    api.add_middleware(
        web_asgi.MetricsMiddleware, slos={"/items/{item_id}": SLO}, registry=registry
    )
    responses = await _get(api, "/items/1", "/items/1", "/items/2", "/items/2", "/missing")
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 404]
    assert {
        ("", "GET", "200", "/items/{item_id}"): 4,
        ("", "GET", "404", "<unmatched>"): 1,
    } == _counts(registry)


async def test_asgi_cache_outside_the_metrics_records_misses_only() -> None:
    """The other order: a hit never reaches the metrics middleware (documented)."""
    calls: list[str] = []
    registry = TelemetryRegistry()
    app = web_asgi.CacheMiddleware(
        web_asgi.MetricsMiddleware(_starlette(calls), slos={ROUTE: SLO}, registry=registry),
        cache=AsyncTieredCache(MemoryTier(), namespace="http"),
    )
    await _get(app, "/products/1", "/products/1", "/products/1")
    assert (1, {("", "GET", "200", ROUTE): 1}) == (len(calls), _counts(registry))


def test_resolver_without_a_router_answers_unmatched() -> None:
    """A plain ASGI app with no router anywhere: ``<unmatched>``, and the search is made once."""
    from perfprim.web._asgi_routes import RouteResolver

    async def plain(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        return None

    resolver = RouteResolver(plain)
    scope = {"type": "http", "method": "GET", "path": "/x", "root_path": ""}
    assert ["<unmatched>", "<unmatched>"] == [resolver.resolve(scope), resolver.resolve(scope)]


def _flask_app(calls: list[str]) -> Any:
    from flask import Flask

    app = Flask(__name__)

    @app.get("/products/<int:product_id>")
    def product(product_id: int) -> Any:
        calls.append(str(product_id))
        return {"id": product_id}, 200, {"Cache-Control": "max-age=60"}

    return app


def test_wsgi_flask_hit_is_labelled_with_its_rule() -> None:
    """Flask: the metrics outside the cache; hits and misses are matched against the URL map.

    (The cache calls ``start_response`` after Flask is done with the request,
    so a miss has no Werkzeug request to read the rule from either.)
    """
    calls: list[str] = []
    flask_app = _flask_app(calls)
    registry = TelemetryRegistry()
    rule = "/products/<int:product_id>"
    flask_app.wsgi_app = web_wsgi.CacheMiddleware(
        flask_app.wsgi_app, cache=TieredCache(MemoryTier(), namespace="http")
    )
    flask_app.wsgi_app = web_wsgi.MetricsMiddleware(
        flask_app.wsgi_app, slos={rule: SLO}, registry=registry
    )
    client = flask_app.test_client()
    responses = [client.get(p) for p in ("/products/1", "/products/1", "/products/2", "/nope")]
    for response in responses:
        assert response.data is not None  # read to the end, then closed as a server does
        response.close()
    assert [200, 200, 200, 404] == [r.status_code for r in responses]
    hits = sum(r.headers.get("Cache-Status", "").startswith("perfprim; hit") for r in responses)
    assert (1, 2) == (hits, len(calls))
    assert {("", "GET", "200", rule): 3, ("", "GET", "404", "<unmatched>"): 1} == _counts(registry)
    assert _slo_events(flask_app.wsgi_app, rule) == 3
