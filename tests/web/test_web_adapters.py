"""The adapters in process: a real Starlette/FastAPI app or WSGI app called directly.

What needs no network: perfprim's own failures never reach the app, the
app's exceptions propagate unchanged, the route map's corner cases, the
cardinality cap, the rules file, the import promises.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perfprim.exceptions import ConfigurationError
from perfprim.telemetry import CardinalityWarning, TelemetryRegistry
from perfprim.web import RouteSLO
from perfprim.web import asgi as web_asgi
from perfprim.web import wsgi as web_wsgi

Scope = dict[str, Any]


def call_asgi(
    app: Any, path: str, *, method: str = "GET", headers: list[Any] | None = None
) -> list[Any]:
    """Run one HTTP request through an ASGI app in process; return the messages sent."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers or [],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1234),
    }
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.path_params['name']}")

    async def boom(request: Any) -> PlainTextResponse:
        raise LookupError("the app's own error")

    return Starlette(routes=[Route("/hello/{name}", hello), Route("/boom", boom)])


def _counts(registry: TelemetryRegistry) -> dict[tuple[str, ...], int]:
    (view,) = [v for v in registry.timer_views() if v.name == "http.server.request.duration"]
    return {s.labels: s.histogram.count for s in view.series}


def test_asgi_perfprim_failure_is_logged_once_and_the_request_proceeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A recorder that raises: every response is intact, the failure logged once."""
    middleware = web_asgi.MetricsMiddleware(_starlette_app(), registry=TelemetryRegistry())

    def broken(*args: object) -> None:
        raise RuntimeError("perfprim bug")

    middleware.recorder.request = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="perfprim.web"):
        for _ in range(3):
            sent = call_asgi(middleware, "/hello/ada")
            assert 200 == sent[0]["status"]
            assert b"hello ada" == sent[1]["body"]
    assert 1 == sum("recording an HTTP request" in r.getMessage() for r in caplog.records)


def test_asgi_app_exception_propagates_unchanged() -> None:
    """The app's exception object reaches the server as it was raised; it is recorded as 500."""
    registry = TelemetryRegistry()
    inner = _starlette_app()
    seen: list[BaseException] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await inner(scope, receive, send)
        except LookupError as exc:
            seen.append(exc)
            raise

    middleware = web_asgi.MetricsMiddleware(app, registry=registry)
    with pytest.raises(LookupError) as info:
        call_asgi(middleware, "/boom")
    assert [info.value] == seen
    assert {("LookupError", "GET", "500", "/boom"): 1} == _counts(registry)


def test_asgi_route_cap_folds_new_routes(tmp_path: Path) -> None:
    """max_routes bounds http_route: later templates fold into 'other' with one warning."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    routes = [Route(f"/r{i}", ok) for i in range(4)]
    registry = TelemetryRegistry()
    middleware = web_asgi.MetricsMiddleware(
        Starlette(routes=routes), registry=registry, max_routes=2
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(4):
            call_asgi(middleware, f"/r{i}")
    routes_seen = sorted(labels[3] for labels in _counts(registry))
    assert ["/r0", "/r1", "other"] == routes_seen
    folded = [str(w.message) for w in caught if w.category is CardinalityWarning]
    assert folded
    assert all("'http_route'" in message for message in folded)


def test_one_router_included_twice_gets_each_prefix() -> None:
    """FastAPI include_router at two prefixes: one route object, two templates, told apart."""
    from fastapi import APIRouter, FastAPI

    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    app = FastAPI()
    app.include_router(router, prefix="/v1")
    app.include_router(router, prefix="/v2")
    registry = TelemetryRegistry()
    middleware = web_asgi.MetricsMiddleware(app, registry=registry)
    call_asgi(middleware, "/v1/items/1")
    call_asgi(middleware, "/v2/items/2")
    call_asgi(middleware, "/v2/items/3")
    counts = {labels[3]: n for labels, n in _counts(registry).items()}
    assert {"/v1/items/{item_id}": 1, "/v2/items/{item_id}": 2} == counts


def test_metrics_endpoint_negotiates_and_answers_head() -> None:
    """OpenMetrics when asked for, Prometheus text otherwise; HEAD gets headers only."""
    middleware = web_asgi.MetricsMiddleware(_starlette_app(), registry=TelemetryRegistry())
    call_asgi(middleware, "/hello/x")
    text = call_asgi(middleware, "/metrics")
    assert text[0]["status"] == 200
    assert b"text/plain" in dict(text[0]["headers"])[b"content-type"]
    om = call_asgi(
        middleware,
        "/metrics",
        headers=[(b"accept", b"application/openmetrics-text; version=1.0.0")],
    )
    assert b"openmetrics" in dict(om[0]["headers"])[b"content-type"]
    assert om[1]["body"].endswith(b"# EOF\n")
    head = call_asgi(middleware, "/metrics", method="HEAD")
    assert b"" == head[1]["body"]
    assert int(dict(head[0]["headers"])[b"content-length"]) > 0


def _wsgi_call(app: Callable[..., Any], path: str, *, close: bool = True) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(s: str, headers: list[Any], exc_info: Any = None) -> Callable[..., Any]:
        status.append(s)
        return lambda data: None

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "", "HTTP_ACCEPT": ""}
    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if close and hasattr(result, "close"):
            result.close()
    return status[0], body


def _plain_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ["PATH_INFO"] == "/boom":
        raise KeyError("the app's own error")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_wsgi_route_function_and_exception_propagation() -> None:
    """route= names plain WSGI routes; the app's exception propagates and counts as 500."""
    registry = TelemetryRegistry()
    middleware = web_wsgi.MetricsMiddleware(
        _plain_wsgi, registry=registry, route=lambda environ: "/hello"
    )
    assert ("200 OK", b"hello") == _wsgi_call(middleware, "/hello")
    with pytest.raises(KeyError, match="the app's own error"):
        _wsgi_call(middleware, "/boom")
    counts = _counts(registry)
    assert 1 == counts[("", "GET", "200", "/hello")]
    assert 1 == counts[("KeyError", "GET", "500", "<unmatched>")]


def test_wsgi_perfprim_failure_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """A route function that raises: the response is intact, logged once, route unmatched."""

    def broken_route(environ: Any) -> str:
        raise RuntimeError("perfprim bug")

    registry = TelemetryRegistry()
    middleware = web_wsgi.MetricsMiddleware(_plain_wsgi, registry=registry, route=broken_route)
    with caplog.at_level(logging.ERROR, logger="perfprim.web"):
        for _ in range(3):
            assert ("200 OK", b"hello") == _wsgi_call(middleware, "/x")
    assert 1 == sum("reading the route" in r.getMessage() for r in caplog.records)
    assert 3 == _counts(registry)[("", "GET", "200", "<unmatched>")]


def test_wsgi_close_before_the_end_is_a_client_disconnect() -> None:
    """A server that closes the body before its last chunk: recorded as client_disconnect."""

    def chunks(environ: Any, start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [])
        yield b"a"
        yield b"b"

    registry = TelemetryRegistry()
    middleware = web_wsgi.MetricsMiddleware(chunks, registry=registry, route=lambda e: "/c")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/c", "SCRIPT_NAME": ""}
    body = middleware(environ, lambda s, h, e=None: None)
    iterator = iter(body)
    assert b"a" == next(iterator)
    body.close()  # type: ignore[attr-defined]
    assert {("client_disconnect", "GET", "200", "/c"): 1} == _counts(registry)


def test_prometheus_rules_pass_promtool(tmp_path: Path) -> None:
    """The configured route SLOs become one rule file promtool accepts, labelled by route."""
    middleware = web_asgi.MetricsMiddleware(
        _starlette_app(),
        registry=TelemetryRegistry(),
        slos={
            "/hello/{name}": RouteSLO(threshold=0.2, target=0.99),
            "/boom": RouteSLO(threshold=1.0, target=0.999),
        },
    )
    text = middleware.prometheus_rules(service="shop")
    path = tmp_path / "rules.yml"
    path.write_text(text)
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, timeout=60, check=False
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    import yaml

    groups = yaml.safe_load(text)["groups"]
    exprs = [rule["expr"] for group in groups for rule in group["rules"] if "record" in rule]
    assert any('http_server_slo_bad_events_total{http_route="/hello/{name}"}' in e for e in exprs)
    routes = {rule["labels"]["http_route"] for group in groups for rule in group["rules"]}
    assert {"/hello/{name}", "/boom"} == routes


def test_bad_options_fail_fast() -> None:
    """A non-RouteSLO value or a non-mapping slos raises ConfigurationError."""
    with pytest.raises(ConfigurationError):
        web_asgi.MetricsMiddleware(_starlette_app(), slos={"/a": 0.2})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError):
        web_wsgi.MetricsMiddleware(_plain_wsgi, slos=[("/a", RouteSLO(threshold=1, target=0.9))])  # type: ignore[arg-type]


def test_web_imports_no_framework() -> None:
    """perfprim.web, .asgi and .wsgi import no web framework (in a fresh interpreter)."""
    code = (
        "import sys, json, perfprim.web, perfprim.web.asgi, perfprim.web.wsgi;"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    roots = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert set() == roots & {
        "starlette",
        "fastapi",
        "flask",
        "werkzeug",
        "django",
        "prometheus_client",
    }


def test_django_adapter_names_its_extra_when_django_is_missing() -> None:
    """Without Django, the Django middleware raises MissingDependencyError naming the extra."""
    code = (
        "import sys; sys.modules['django'] = None; sys.modules['django.conf'] = None\n"
        "from perfprim.web.django import MetricsMiddleware\n"
        "try:\n    MetricsMiddleware(lambda r: r)\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("MissingDependencyError")
    assert "pip install 'perfprim[django]'" in out.stdout
