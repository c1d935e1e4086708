"""Pre-fork: gunicorn with 3 workers; one scrape of any worker covers all of them, exactly.

The FastAPI app combines the middleware, a ``@timed`` view with its own SLO
and a tiered cache source (the documented FastAPI recipe) with the gunicorn
recipe (a ``MultiProcessWriter`` per worker, started in ``post_fork``): every
scrape must show each family once and the counts of every worker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


@pytest.fixture(scope="module")
def prefork(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """gunicorn, 3 UvicornWorkers, FastAPI, a writer per worker into a fresh directory."""
    tmp = tmp_path_factory.mktemp("prefork")
    directory = tmp / "multiproc"
    argv = gunicorn(
        "tests.web.apps.fastapi_app:app",
        workers=3,
        worker_class="uvicorn_worker.UvicornWorker",
        config=str(APPS / "gunicorn_conf.py"),
    )
    with serve(argv, tmp, PERFPRIM_MULTIPROC_DIR=str(directory)) as server:
        # Every worker has booted and written its file.
        assert wait_until(lambda: len(list(directory.glob("perfprim-*.json"))) >= 3, timeout=30)
        yield server, directory


def _pids(directory: Path, route: str) -> set[int]:
    """The workers whose file counts requests of ``route``."""
    pids = set()
    for path in directory.glob("perfprim-*.json"):
        data = json.loads(path.read_text())
        for timer in data["timers"]:
            if timer["name"] == "http.server.request.duration" and any(
                route in s["labels"] for s in timer["series"]
            ):
                pids.add(data["pid"])
    return pids


def test_one_scrape_covers_every_worker_exactly(prefork: tuple[Server, Path]) -> None:
    """Requests spread over the workers: every scrape, on any worker, counts all of them."""
    server, directory = prefork
    port = server.port
    route = "/products/{product_id}"
    sent = 0
    # Concurrent connections, in batches until at least two workers served
    # some (which worker accepts is the kernel's choice; bounded).
    for _ in range(8):
        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(lambda i: request(port, f"/products/{i}")[0], range(30)))
        assert [200] * 30 == statuses
        sent += 30
        if wait_until(lambda: len(_pids(directory, route)) >= 2, timeout=2):
            break
    labels = {
        "error_type": "",
        "http_request_method": "GET",
        "http_response_status_code": "200",
        "http_route": route,
    }

    def complete(text: str) -> bool:
        # A worker's file is as of its last write: wait until one scrape holds every request
        # in each merged series (timers, the SLO window, the SLO counter), then check more.
        return (
            sent
            == value(text, f"{DURATION}_count", **labels)
            == value(text, "http_server_slo_window_events", http_route=route, window="5m")
            == value(text, "http_server_slo_events_total", http_route=route)
        )

    text = wait_until(lambda: t if complete(t := scrape(port)) else None, timeout=30)
    assert text, "the scrape never covered every worker"
    pids = _pids(directory, route)
    assert len(pids) >= 2, f"all requests reached one worker ({pids}): nothing was merged"
    for _ in range(6):  # new connections: the scrapes land on different workers
        text = scrape(port)
        assert sent == value(text, f"{DURATION}_count", **labels)
        assert sent == value(text, "http_server_slo_window_events", http_route=route, window="5m")
        assert sent == value(text, "http_server_slo_events_total", http_route=route)


def test_slo_and_cache_stats_merge_across_workers(prefork: tuple[Server, Path]) -> None:
    """A @timed view's SLO tracker and a cache's stats add up over the workers."""
    server, _ = prefork
    port = server.port
    before = scrape(port)
    users = 30
    for i in range(1, users + 1):
        assert 200 == request(port, f"/users/{i}")[0]
    assert 404 == request(port, "/users/0")[0]  # excluded from the SLO by client_error

    def merged() -> str | None:
        text = scrape(port)
        loads = value(text, "cache_users_loads_total") - value(before, "cache_users_loads_total")
        events = value(text, "slo_get_user_window_events", window="5m") - value(
            before, "slo_get_user_window_events", window="5m"
        )
        return text if loads == users and events == users else None

    text = wait_until(merged, timeout=30)
    assert text, "cache loads or SLO events did not add up over the workers"
    for _ in range(4):
        again = scrape(port)
        assert value(text, "cache_users_loads_total") == value(again, "cache_users_loads_total")
        assert users == value(again, "slo_get_user_window_good_events", window="5m") - value(
            before, "slo_get_user_window_good_events", window="5m"
        )
        # circuit state gauges count the live workers (a memory tier has no breaker: none)
        assert 0 == total(again, "cache_users_circuit_state")


def test_each_family_once_and_promtool_accepts(prefork: tuple[Server, Path]) -> None:
    """The combined FastAPI + gunicorn recipes print each # TYPE once; promtool agrees."""
    server, _ = prefork
    port = server.port
    request(port, "/users/5")
    for _ in range(3):
        text = scrape(port)
        types = re.findall(r"^# TYPE (\S+)", text, re.M)
        assert sorted(set(types)) == sorted(types)
        assert "http_get_user_seconds" in types
        assert "http_server_request_duration_seconds" in types
        promtool_check(text)
        openmetrics = scrape(port, openmetrics=True)
        assert openmetrics.rstrip().endswith("# EOF")
