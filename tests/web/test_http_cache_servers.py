"""The cache middleware against real servers: gunicorn, 2 workers, FastAPI, Flask, Django.

FastAPI runs on uvicorn workers, Flask on threaded workers, Django on sync
workers, all on a private redis-server.

What only real processes show: ETags equal across workers, hits and
invalidations shared through Redis, 100 concurrent requests calling the app
once across two workers, Redis hung by SIGSTOP while requests run. Each
server is started once for the module; the rule-by-rule tests run in
process (``test_http_cache_asgi.py``, ``_wsgi``, ``_django``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from perfprim.testing import RedisServer
from tests.web.servers import Server, gunicorn, request, serve, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for this module (paused by the last test)."""
    if not RedisServer.available():
        pytest.fail("redis-server is not on PATH")
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def counter(redis_server: RedisServer) -> redis.Redis:
    """A client of the private server: the apps count their calls there."""
    return redis.Redis.from_url(redis_server.url, socket_timeout=5)


def _serve(tmp: Path, argv: list[str], redis_server: RedisServer, **env: str) -> Iterator[Server]:
    with serve(argv, tmp, REDIS_URL=redis_server.url, **env) as server:
        yield server


@pytest.fixture(scope="module")
def fastapi_server(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Server]:
    """gunicorn, 2 uvicorn workers, FastAPI behind the ASGI CacheMiddleware."""
    argv = gunicorn(
        "tests.web.apps.cache_fastapi_app:app",
        workers=2,
        worker_class="uvicorn_worker.UvicornWorker",
    )
    yield from _serve(
        tmp_path_factory.mktemp("fastapi"), argv, redis_server, PERFPRIM_HTTP_NAMESPACE="fa"
    )


@pytest.fixture(scope="module")
def flask_server(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Server]:
    """gunicorn, 2 threaded workers (16 threads each), Flask behind the WSGI CacheMiddleware."""
    argv = gunicorn("tests.web.apps.cache_flask_app:app", workers=2, worker_class="gthread")
    argv += ["--threads", "16"]
    yield from _serve(
        tmp_path_factory.mktemp("flask"), argv, redis_server, PERFPRIM_HTTP_NAMESPACE="fl"
    )


@pytest.fixture(scope="module")
def django_server(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Server]:
    """gunicorn, 2 sync workers, Django with the cache middleware from its settings."""
    argv = gunicorn("tests.web.apps.djangocache.wsgi:application", workers=2)
    yield from _serve(
        tmp_path_factory.mktemp("django"),
        argv,
        redis_server,
        PERFPRIM_HTTP_NAMESPACE="dj",
        DJANGO_SETTINGS_MODULE="tests.web.apps.djangocache.settings",
    )


def calls(counter: redis.Redis, path: str) -> int:
    """How often the apps (all workers) were called for ``path``."""
    return int(counter.get(f"calls:{path}") or 0)


def etags_by_worker(port: int, path: str) -> dict[str, str]:
    """Worker pid -> the ETag it generated for ``path`` (memory-only caches), two workers."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while len(seen) < 2 and time.monotonic() < deadline:
        status, headers, _ = request(port, path)
        assert 200 == status
        seen[headers["x-pid"]] = headers["etag"]
    assert 2 == len(seen), "requests never reached the second worker"
    return seen


@pytest.mark.parametrize("server", ["fastapi_server", "flask_server", "django_server"])
def test_etags_are_equal_across_workers(
    request_fixture: pytest.FixtureRequest, server: str
) -> None:
    """Each worker digests the body itself: the same ETag in both (fastapi-cache #400)."""
    port = request_fixture.getfixturevalue(server).port
    path = "/local/a" if server != "django_server" else "/products/5"
    etags = etags_by_worker(port, path)
    assert 1 == len(set(etags.values())), etags


@pytest.fixture
def request_fixture(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    """The ``request`` fixture under a name that does not shadow the HTTP helper."""
    return request


def test_fastapi_hits_304_and_invalidation_across_workers(
    fastapi_server: Server, counter: redis.Redis
) -> None:
    """One app call for many GETs on two workers; a 304 with its headers; a POST invalidates."""
    port = fastapi_server.port
    answers = [request(port, "/products/1") for _ in range(10)]
    assert 1 == calls(counter, "/products/1")
    assert {200} == {status for status, _, _ in answers}
    status, headers, _ = answers[-1]
    assert headers["cache-status"].startswith("perfprim; hit")
    assert "cache-tag" not in headers
    status, headers, body = request(port, "/products/1", headers={"If-None-Match": headers["etag"]})
    assert (304, b"") == (status, body)
    assert {"etag", "cache-control", "date", "age", "cache-status"} <= set(headers)
    assert "content-type" not in headers
    assert 204 == request(port, "/products/1", method="POST")[0]
    assert wait_until(lambda: request(port, "/products/1") and calls(counter, "/products/1") == 2)
    for _ in range(6):
        request(port, "/products/1")
    assert 2 == calls(counter, "/products/1")


def _storm(port: int, path: str, n: int = 100) -> list[int]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return [f.result()[0] for f in [pool.submit(request, port, path) for _ in range(n)]]


@pytest.mark.parametrize(("server", "path"), [
    ("fastapi_server", "/products/7?sleep=0.5"),
    ("flask_server", "/products/7?sleep=0.5"),
])  # fmt: skip
def test_100_concurrent_misses_call_the_app_once(
    request_fixture: pytest.FixtureRequest, counter: redis.Redis, server: str, path: str
) -> None:
    """Stampede: 100 concurrent requests, two workers, one app call (single-flight + Redis lock)."""
    port = request_fixture.getfixturevalue(server).port
    before = calls(counter, "/products/7")
    assert [200] * 100 == _storm(port, path)
    assert before + 1 == calls(counter, "/products/7")


def test_flask_vary_and_cookie_refusal(flask_server: Server, counter: redis.Redis) -> None:
    """Vary variants coexist across workers; Set-Cookie and Authorization: never stored."""
    port = flask_server.port
    for lang in ("en", "fr", "en", "fr", "en"):
        _, _, body = request(port, "/products/3", headers={"Accept-Language": lang})
        assert f'"lang": "{lang}"'.encode() in body
    assert 2 == calls(counter, "/products/3")
    for _ in range(2):
        _, headers, _ = request(port, "/private")
        assert "set-cookie" in headers["cache-status"]
    assert 2 == calls(counter, "/private")
    for token in ("a", "b"):  # user A's answer is never served to user B (fastapi-cache #103)
        _, headers, body = request(port, "/products/4", headers={"Authorization": token})
        assert "detail=authorization" in headers["cache-status"]
    assert 2 == calls(counter, "/products/4")


def test_django_default_ttl_and_304(django_server: Server) -> None:
    """PERFPRIM_HTTP_CACHE default_ttl stores a response without Cache-Control; 304s follow.

    Whichever worker answers (a hit, or a miss whose stored answer the cache then
    compares), the ETag is the same, so the answer is a 304 every time.
    """
    port = django_server.port
    _, first, _ = request(port, "/products/9")
    assert "stored; ttl=30" in first["cache-status"]
    for _ in range(6):
        status, headers, body = request(
            port, "/products/9", headers={"If-None-Match": first["etag"]}
        )
        assert (304, b"", first["etag"]) == (status, body, headers["etag"])


def test_redis_hung_by_sigstop_degrades_to_the_app(
    fastapi_server: Server, flask_server: Server, redis_server: RedisServer
) -> None:
    """Redis SIGSTOPped during requests: every answer is a 200 in bounded time, L1 keeps serving."""
    for server in (fastapi_server, flask_server):
        request(server.port, "/products/11")
    redis_server.pause()
    try:
        for server in (fastapi_server, flask_server):
            for path in ("/products/11", "/products/12", "/products/13"):
                start = time.monotonic()
                status, _, _ = request(server.port, path, timeout=20)
                assert 200 == status
                assert time.monotonic() - start < 10
    finally:
        redis_server.resume()
