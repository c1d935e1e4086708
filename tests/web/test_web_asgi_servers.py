"""ASGI middleware against real servers: uvicorn serving FastAPI and a Starlette app with a mount.

Every request is real HTTP on loopback; every figure is read back from the
app's own ``/metrics``. Servers live for the module; tests compare the scrape
before and after what they send.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.servers import (
    Server,
    promtool_check,
    request,
    scrape,
    serve,
    total,
    uvicorn,
    value,
    wait_until,
)

DURATION = "http_server_request_duration_seconds"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fastapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Uvicorn serving tests/web/apps/fastapi_app.py, traced by the OTel ASGI middleware."""
    tmp = tmp_path_factory.mktemp("fastapi")
    with serve(uvicorn("tests.web.apps.fastapi_app:app"), tmp, PERFPRIM_TEST_TRACING="1") as server:
        yield server


@pytest.fixture(scope="module")
def starlette_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Uvicorn serving a plain Starlette app with a mounted sub-application."""
    tmp = tmp_path_factory.mktemp("starlette")
    with serve(uvicorn("tests.web.apps.starlette_app:app"), tmp) as server:
        yield server


def count(
    text: str, route: str, status: str = "200", error: str = "", method: str = "GET"
) -> float:
    """The request count of one series."""
    return value(
        text,
        f"{DURATION}_count",
        error_type=error,
        http_request_method=method,
        http_response_status_code=status,
        http_route=route,
    )


def test_route_templates_not_raw_paths(fastapi_server: Server) -> None:
    """Each request is labelled with its route template (included routers too), never its path."""
    port = fastapi_server.port
    before = scrape(port)
    for i in range(3):
        assert 200 == request(port, f"/products/{i}")[0]
    assert 200 == request(port, "/api/v1/items/7")[0]
    after = scrape(port)
    assert 3 == count(after, "/products/{product_id}") - count(before, "/products/{product_id}")
    assert 1 == count(after, "/api/v1/items/{item_id}") - count(before, "/api/v1/items/{item_id}")
    assert "/products/1" not in after
    assert "/api/v1/items/7" not in after


def test_unmatched_and_404_routes(fastapi_server: Server) -> None:
    """An unmatched path is one fixed label; a view's HTTPException(404) keeps its route."""
    port = fastapi_server.port
    before = scrape(port)
    assert 404 == request(port, "/no/such/page")[0]
    assert 404 == request(port, "/another-missing-page")[0]
    assert 404 == request(port, "/missing/thing")[0]
    after = scrape(port)
    assert 2 == count(after, "<unmatched>", "404") - count(before, "<unmatched>", "404")
    assert 1 == count(after, "/missing/{thing}", "404") - count(before, "/missing/{thing}", "404")
    assert "/no/such/page" not in after


def test_unknown_method_folds_into_other(fastapi_server: Server) -> None:
    """A method outside the OTel list (WebDAV PROPFIND) is recorded as _OTHER.

    Not a made-up one: uvicorn with httptools (installed with perfprim[load])
    answers 400 to a method llhttp does not know, before the app runs.
    """
    port = fastapi_server.port
    before = scrape(port)
    request(port, "/products/1", method="PROPFIND")
    counted_before = total(before, f"{DURATION}_count", http_request_method="_OTHER")

    def recorded() -> str | None:
        # The request is recorded after its last byte is sent: the client may
        # have its answer (and scrape) a moment before that.
        text = scrape(port)
        counted = total(text, f"{DURATION}_count", http_request_method="_OTHER")
        return text if counted > counted_before else None

    after = wait_until(recorded, timeout=20)
    assert after is not None, "the PROPFIND request was never recorded"
    assert 1 == total(after, f"{DURATION}_count", http_request_method="_OTHER") - counted_before
    assert "PROPFIND" not in after


def test_streaming_response_is_timed_to_its_last_byte(fastapi_server: Server) -> None:
    """A 1 s stream: the duration covers the whole body, the time to first byte does not."""
    port = fastapi_server.port
    before = scrape(port)
    started = time.monotonic()
    status, _, body = request(port, "/stream")
    elapsed = time.monotonic() - started
    assert 200 == status
    assert 4 == body.count(b"chunk")
    after = scrape(port)
    labels = {
        "error_type": "",
        "http_request_method": "GET",
        "http_response_status_code": "200",
        "http_route": "/stream",
    }
    duration = value(after, f"{DURATION}_sum", **labels) - value(
        before, f"{DURATION}_sum", **labels
    )
    ttfb_name = "http_server_time_to_first_byte_seconds_sum"
    ttfb = value(after, ttfb_name, **labels) - value(before, ttfb_name, **labels)
    assert 0.95 <= duration <= elapsed + 0.01
    assert ttfb < 0.5


def test_background_task_is_not_request_latency(fastapi_server: Server) -> None:
    """A 1 s BackgroundTask: the request stays fast; the task lands in its own histogram."""
    port = fastapi_server.port
    background = "http_server_background_duration_seconds"
    labels = {"error_type": "", "http_request_method": "GET", "http_route": "/background"}
    before = scrape(port)
    started = time.monotonic()
    assert 200 == request(port, "/background")[0]
    assert time.monotonic() - started < 0.9  # the client did not wait for the task
    after = wait_until(
        lambda: (
            text
            if value(text := scrape(port), f"{background}_count", **labels)
            > value(before, f"{background}_count", **labels)
            else None
        ),
        timeout=20,
    )
    assert after, "the background task was never recorded"
    task = value(after, f"{background}_sum", **labels) - value(
        before, f"{background}_sum", **labels
    )
    assert 0.95 <= task < 5
    request_labels = {**labels, "http_response_status_code": "200"}
    duration = value(after, f"{DURATION}_sum", **request_labels) - value(
        before, f"{DURATION}_sum", **request_labels
    )
    assert 0 < duration < 0.5


def test_websocket_is_counted_apart_from_http(fastapi_server: Server) -> None:
    """A WebSocket session is one session in its own histogram, never an HTTP request."""
    from websockets.sync.client import connect

    port = fastapi_server.port
    ws = "http_server_websocket_duration_seconds_count"
    before = scrape(port)
    with connect(f"ws://127.0.0.1:{port}/ws/lobby", open_timeout=10) as websocket:
        websocket.send("hi")
        assert "lobby:hi" == websocket.recv(timeout=10)
    after = wait_until(
        lambda: (
            text
            if value(text := scrape(port), ws, error_type="", http_route="/ws/{room}")
            > value(before, ws, error_type="", http_route="/ws/{room}")
            else None
        ),
        timeout=10,
    )
    assert after
    assert 1 == value(after, ws, error_type="", http_route="/ws/{room}") - value(
        before, ws, error_type="", http_route="/ws/{room}"
    )
    assert 0 == total(after, f"{DURATION}_count", http_route="/ws/{room}")


def test_exception_in_a_view_is_a_500_with_its_type(fastapi_server: Server) -> None:
    """A view that raises: the client gets a 500, recorded with error_type=ValueError."""
    port = fastapi_server.port
    before = scrape(port)
    assert 500 == request(port, "/boom")[0]
    after = scrape(port)
    assert 1 == count(after, "/boom", "500", "ValueError") - count(
        before, "/boom", "500", "ValueError"
    )


def test_client_disconnect_has_its_own_error_type(fastapi_server: Server) -> None:
    """A client that leaves mid-stream is recorded as client_disconnect, not as a 200 or 500."""
    port = fastapi_server.port
    before = scrape(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /slow-stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    name = f"{DURATION}_count"

    def recorded() -> str | None:
        text = scrape(port)
        after = total(text, name, http_route="/slow-stream", error_type="client_disconnect")
        gone = total(before, name, http_route="/slow-stream", error_type="client_disconnect")
        return text if after > gone else None

    after = wait_until(recorded, timeout=20)
    assert after, "the disconnect was never recorded"
    assert 0 == total(after, name, http_route="/slow-stream", error_type="") - total(
        before, name, http_route="/slow-stream", error_type=""
    )


def test_route_slo_counts_what_was_sent(fastapi_server: Server) -> None:
    """6 fast and 3 slow (0.35 s > 0.2 s) requests: the route's SLO saw 9 events, 6 good."""
    port = fastapi_server.port
    route = "/products/{product_id}"
    before = scrape(port)
    for i in range(6):
        assert 200 == request(port, f"/products/{i}")[0]
    for i in range(3):
        assert 200 == request(port, f"/products/{i}?delay=0.35")[0]
    after = scrape(port)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, http_route=route, **labels) - value(
            before, name, http_route=route, **labels
        )

    assert 9 == delta("http_server_slo_window_events", window="5m")
    assert 6 == delta("http_server_slo_window_good_events", window="5m")
    assert 9 == delta("http_server_slo_events_total")
    assert 3 == delta("http_server_slo_bad_events_total")


def test_default_slo_covers_other_routes(fastapi_server: Server) -> None:
    """A route without its own SLO gets the default one; unmatched requests get none."""
    port = fastapi_server.port
    request(port, "/api/v1/items/3")
    request(port, "/not-a-route")
    text = scrape(port)
    assert value(text, "http_server_slo_objective_ratio", http_route="/api/v1/items/{item_id}")
    assert 0 == total(text, "http_server_slo_objective_ratio", http_route="<unmatched>")


def test_decorator_slo_leaves_client_errors_out(fastapi_server: Server) -> None:
    """@timed(slo=..., exclude=client_error): a 404 is no event of the SLO; a 200 is good."""
    port = fastapi_server.port
    before = scrape(port)
    assert 404 == request(port, "/users/0")[0]
    assert 200 == request(port, "/users/1")[0]
    assert 200 == request(port, "/users/2")[0]
    after = scrape(port)
    events = "slo_get_user_window_events"
    good = "slo_get_user_window_good_events"
    assert 2 == value(after, events, window="5m") - value(before, events, window="5m")
    assert 2 == value(after, good, window="5m") - value(before, good, window="5m")
    assert 1 == value(after, "slo_get_user_error_budget_remaining_ratio")


def test_scrape_passes_promtool_and_has_exemplars(fastapi_server: Server) -> None:
    """Promtool accepts the scrape; OpenMetrics carries the request's trace id as exemplar."""
    port = fastapi_server.port
    request(port, "/products/42")
    text = scrape(port)
    promtool_check(text)
    assert len(re.findall(r"^# TYPE (\S+)", text, re.M)) == len(
        set(re.findall(r"^# TYPE (\S+)", text, re.M))
    )
    openmetrics = scrape(port, openmetrics=True)
    assert openmetrics.rstrip().endswith("# EOF")
    exemplar = re.search(
        r'^http_server_request_duration_seconds_bucket\{[^}]*http_route="/products/\{product_id\}"'
        r'[^}]*\} \S+ # \{span_id="[0-9a-f]{16}",trace_id="[0-9a-f]{32}"\}',
        openmetrics,
        re.M,
    )
    assert exemplar, openmetrics[:2000]


def test_mounted_sub_app_routes_resolve_to_the_full_template(
    starlette_server: Server, tmp_path: Path
) -> None:
    """Starlette Mount("/shop/{tenant}") + Route("/items/{item_id:int}"): one full template."""
    port = starlette_server.port
    assert 200 == request(port, "/shop/acme/items/1")[0]
    assert 200 == request(port, "/shop/globex/items/2")[0]
    assert 404 == request(port, "/shop/acme/nothing")[0]
    assert 200 == request(port, "/health")[0]
    text = scrape(port)
    assert 2 == count(text, "/shop/{tenant}/items/{item_id:int}")
    assert 1 == count(text, "/health")
    assert 1 == count(text, "<unmatched>", "404")
    assert 2 == value(
        text, "http_server_slo_events_total", http_route="/shop/{tenant}/items/{item_id:int}"
    )
    promtool_check(text)
