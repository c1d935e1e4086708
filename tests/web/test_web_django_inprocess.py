"""The Django middleware in process: Django's own WSGI and ASGI handlers, called directly.

The real-server tests run Django under gunicorn; these cover what a server
cannot easily provoke (a stream closed early, the async path, HEAD on
/metrics) and let coverage see the adapter.
"""

from __future__ import annotations

import asyncio
import io
import types
from collections.abc import Iterator
from typing import Any

import pytest

from perfprim.telemetry import TelemetryRegistry
from perfprim.web import RouteSLO

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import include, path  # noqa: E402


def _product(request: Any, product_id: int) -> JsonResponse:
    """A product."""
    return JsonResponse({"product": product_id})


def _boom(request: Any) -> HttpResponse:
    """A view that raises."""
    raise ValueError("boom")


def _missing(request: Any) -> HttpResponse:
    """A view that raises Http404."""
    raise Http404("no")


def _stream(request: Any) -> StreamingHttpResponse:
    """Three chunks."""
    return StreamingHttpResponse(iter([b"a", b"b", b"c"]))


URLS = types.ModuleType("perfprim_test_urls")
URLS.urlpatterns = [  # type: ignore[attr-defined]
    path("shop/", include([path("products/<int:product_id>", _product)])),
    path("boom", _boom),
    path("missing", _missing),
    path("stream", _stream),
]

if not settings.configured:
    settings.configure(
        ROOT_URLCONF=URLS,
        ALLOWED_HOSTS=["testserver", "127.0.0.1"],
        MIDDLEWARE=["perfprim.web.django.MetricsMiddleware"],
        PERFPRIM_WEB={},
        LOGGING_CONFIG=None,
        DEBUG=False,
    )
    django.setup()


@pytest.fixture
def registry() -> Iterator[TelemetryRegistry]:
    """A fresh registry, wired into the middleware through PERFPRIM_WEB."""
    from django.test.utils import override_settings

    fresh = TelemetryRegistry()
    options = {
        "registry": fresh,
        "slos": {"/shop/products/<int:product_id>": RouteSLO(threshold=5.0, target=0.99)},
    }
    with override_settings(ROOT_URLCONF=URLS, PERFPRIM_WEB=options):
        yield fresh


def _wsgi(path_info: str, *, method: str = "GET", consume: int | None = None) -> tuple[str, bytes]:
    from django.core.handlers.wsgi import WSGIHandler

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path_info,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
        "HTTP_ACCEPT": "text/plain",
    }
    status: list[str] = []
    result = WSGIHandler()(environ, lambda s, h, e=None: status.append(s))
    chunks = []
    try:
        for i, chunk in enumerate(result):
            if consume is not None and i >= consume:
                break
            chunks.append(chunk)
    finally:
        result.close()
    return status[0], b"".join(chunks)


def _counts(registry: TelemetryRegistry) -> dict[tuple[str, ...], int]:
    (view,) = [v for v in registry.timer_views() if v.name == "http.server.request.duration"]
    return {s.labels: s.histogram.count for s in view.series if s.histogram.count}


def test_wsgi_routes_errors_and_404s(registry: TelemetryRegistry) -> None:
    """include() prefixes joined, Http404 and unmatched paths, a view's exception as 500 + type."""
    assert _wsgi("/shop/products/3")[0].startswith("200")
    assert _wsgi("/missing")[0].startswith("404")
    assert _wsgi("/nowhere")[0].startswith("404")
    assert _wsgi("/boom")[0].startswith("500")
    assert {
        ("", "GET", "200", "/shop/products/<int:product_id>"): 1,
        ("", "GET", "404", "/missing"): 1,
        ("", "GET", "404", "<unmatched>"): 1,
        ("ValueError", "GET", "500", "/boom"): 1,
    } == _counts(registry)


def test_stream_closed_early_is_a_client_disconnect(registry: TelemetryRegistry) -> None:
    """A streaming response the server stops reading is client_disconnect; a full one is fine."""
    assert (_wsgi("/stream")[1]) == b"abc"
    _wsgi("/stream", consume=1)
    assert {
        ("", "GET", "200", "/stream"): 1,
        ("client_disconnect", "GET", "200", "/stream"): 1,
    } == _counts(registry)


def test_metrics_endpoint_and_head(registry: TelemetryRegistry) -> None:
    """/metrics answers the exposition (HEAD included) and is not recorded as a request."""
    _wsgi("/shop/products/1")
    status, body = _wsgi("/metrics")
    assert status.startswith("200")
    assert b'http_server_slo_events_total{http_route="/shop/products/<int:product_id>"} 1.0' in body
    assert _wsgi("/metrics", method="HEAD")[1] == b""
    assert all(labels[3] != "/metrics" for labels in _counts(registry))


def test_async_handler(registry: TelemetryRegistry) -> None:
    """Under Django's ASGI handler the middleware runs its async path and records the same."""
    from django.core.handlers.asgi import ASGIHandler

    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)  # the client never leaves; Django cancels this listener
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/shop/products/9",
        "raw_path": b"/shop/products/9",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
    }
    asyncio.run(ASGIHandler()(scope, receive, send))
    assert 200 == sent[0]["status"]
    assert {("", "GET", "200", "/shop/products/<int:product_id>"): 1} == _counts(registry)


def test_a_closed_response_is_freed_by_reference_counting(registry: TelemetryRegistry) -> None:
    """No response <-> close() cycle is left behind; a second close() is no second request."""
    import gc
    import weakref

    from django.core.handlers.wsgi import WSGIHandler

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/shop/products/5",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
    }
    handler = WSGIHandler()
    gc.collect()
    gc.disable()
    try:
        response = handler(environ, lambda s, h, e=None: None)
        alive = weakref.ref(response)
        assert b"".join(response) == b'{"product": 5}'
        response.close()
        response.close()
        del response
        assert alive() is None  # freed now, not at the next garbage collection
    finally:
        gc.enable()
    assert {("", "GET", "200", "/shop/products/<int:product_id>"): 1} == _counts(registry)
