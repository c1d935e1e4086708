"""WSGI and Django middleware against real servers: gunicorn sync workers serving Flask and Django.

Both run several workers with a ``MultiProcessWriter`` each (the gunicorn
recipe), so every figure read from ``/metrics`` is the merge of all workers.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.servers import (
    APPS,
    Server,
    gunicorn,
    promtool_check,
    request,
    scrape,
    serve,
    total,
    value,
    wait_until,
)

DURATION = "http_server_request_duration_seconds"
pytestmark = pytest.mark.slow


def _server(tmp: Path, app: str, workers: int, **env: str) -> Iterator[Server]:
    directory = tmp / "multiproc"
    argv = gunicorn(app, workers=workers, config=str(APPS / "gunicorn_conf.py"))
    with serve(argv, tmp, PERFPRIM_MULTIPROC_DIR=str(directory), **env) as server:
        assert wait_until(
            lambda: len(list(directory.glob("perfprim-*.json"))) >= workers, timeout=30
        )
        yield server


@pytest.fixture(scope="module")
def flask_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gunicorn, 3 sync workers, the Flask app behind perfprim's WSGI middleware."""
    yield from _server(tmp_path_factory.mktemp("flask"), "tests.web.apps.flask_app:app", 3)


@pytest.fixture(scope="module")
def django_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gunicorn, 2 sync workers, the Django project with perfprim's middleware first."""
    yield from _server(
        tmp_path_factory.mktemp("django"),
        "tests.web.apps.djangoproj.wsgi:application",
        2,
        DJANGO_SETTINGS_MODULE="tests.web.apps.djangoproj.settings",
    )


def count(text: str, route: str, status: str = "200", error: str = "") -> float:
    """The request count of one series."""
    return value(
        text,
        f"{DURATION}_count",
        error_type=error,
        http_request_method="GET",
        http_response_status_code=status,
        http_route=route,
    )


def _settled(port: int, check) -> str:  # type: ignore[no-untyped-def]
    """Scrape until ``check(text)`` holds (the other workers write every 0.5 s)."""
    text = wait_until(lambda: t if check(t := scrape(port)) else None, timeout=30)
    assert text, "the merged scrape never showed what was sent"
    return str(text)


@pytest.mark.parametrize(
    ("server", "route", "status_of_missing", "missing_route"),
    [
        ("flask_server", "/products/<int:product_id>", "404", "/missing/<thing>"),
        ("django_server", "/shop/products/<int:product_id>", "404", "/missing/<str:thing>"),
    ],
)
def test_templates_404s_and_errors(
    server: str,
    route: str,
    status_of_missing: str,
    missing_route: str,
    request_fixture: pytest.FixtureRequest,
) -> None:
    """Route templates (mount prefixes included), 404s, a view's exception, over all workers."""
    port = request_fixture.getfixturevalue(server).port
    prefix = "/shop" if server == "django_server" else ""
    before = scrape(port)
    for i in range(12):
        assert 200 == request(port, f"{prefix}/products/{i}")[0]
    assert 404 == request(port, "/no/such/page")[0]
    assert 404 == request(port, "/missing/thing")[0]
    assert 500 == request(port, "/boom")[0]

    def sent(text: str) -> bool:
        return (
            12 == count(text, route) - count(before, route)
            and 1 == count(text, "<unmatched>", "404") - count(before, "<unmatched>", "404")
            and 1
            == count(text, missing_route, status_of_missing)
            - count(before, missing_route, status_of_missing)
            and 1
            == count(text, "/boom", "500", "ValueError")
            - count(before, "/boom", "500", "ValueError")
        )

    text = _settled(port, sent)
    assert "/products/3" not in text
    promtool_check(text)


@pytest.mark.parametrize("server", ["flask_server", "django_server"])
def test_streaming_is_timed_to_the_last_byte(
    server: str, request_fixture: pytest.FixtureRequest
) -> None:
    """A 1 s streamed body: the recorded duration covers it all."""
    port = request_fixture.getfixturevalue(server).port
    labels = {
        "error_type": "",
        "http_request_method": "GET",
        "http_response_status_code": "200",
        "http_route": "/stream",
    }
    before = scrape(port)
    started = time.monotonic()
    status, _, body = request(port, "/stream")
    elapsed = time.monotonic() - started
    assert 200 == status
    assert 4 == body.count(b"chunk")
    text = _settled(
        port,
        lambda t: (
            value(t, f"{DURATION}_count", **labels) > value(before, f"{DURATION}_count", **labels)
        ),
    )
    duration = value(text, f"{DURATION}_sum", **labels) - value(before, f"{DURATION}_sum", **labels)
    assert 0.95 <= duration <= elapsed + 0.01


@pytest.mark.parametrize(
    ("server", "route"),
    [
        ("flask_server", "/products/<int:product_id>"),
        ("django_server", "/shop/products/<int:product_id>"),
    ],
)
def test_route_slo_counts_what_was_sent(
    server: str, route: str, request_fixture: pytest.FixtureRequest
) -> None:
    """5 fast and 2 slow (0.35 s > 0.2 s) requests: 7 events, 5 good, over every worker."""
    port = request_fixture.getfixturevalue(server).port
    prefix = "/shop" if server == "django_server" else ""
    before = scrape(port)
    for i in range(5):
        request(port, f"{prefix}/products/{i}")
    for i in range(2):
        request(port, f"{prefix}/products/{i}?delay=0.35")

    def delta(text: str, name: str, **labels: str) -> float:
        return value(text, name, http_route=route, **labels) - value(
            before, name, http_route=route, **labels
        )

    text = _settled(port, lambda t: 7 == delta(t, "http_server_slo_window_events", window="5m"))
    assert 5 == delta(text, "http_server_slo_window_good_events", window="5m")
    assert 7 == delta(text, "http_server_slo_events_total")
    assert 2 == delta(text, "http_server_slo_bad_events_total")


def test_flask_client_disconnect(flask_server: Server) -> None:
    """A client that leaves a Flask stream is recorded as client_disconnect."""
    port = flask_server.port
    before = scrape(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /slow-stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    name = f"{DURATION}_count"
    text = _settled(
        port,
        lambda t: (
            total(t, name, http_route="/slow-stream", error_type="client_disconnect")
            > total(before, name, http_route="/slow-stream", error_type="client_disconnect")
        ),
    )
    assert 0 == total(text, name, http_route="/slow-stream", error_type="") - total(
        before, name, http_route="/slow-stream", error_type=""
    )


@pytest.fixture
def request_fixture(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    """The pytest request (to pick a server fixture by name)."""
    return request
