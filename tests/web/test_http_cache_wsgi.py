"""The WSGI CacheMiddleware in process (Werkzeug's test client, a fake clock).

The rules are the core's and are covered one by one through the ASGI
adapter (``test_http_cache_asgi.py``); here each path of the sync driver
(hit, 304, HEAD, forward with stripped validators, stand-in, streaming,
single-flight across threads, background revalidation in a thread) runs once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from werkzeug.test import Client, TestResponse

from perfprim.cache import MemoryTier, RedisTier, TieredCache
from perfprim.exceptions import ConfigurationError
from perfprim.web import HttpCachePolicy
from perfprim.web.wsgi import CacheMiddleware
from tests.web.cache_apps import Clock, WsgiApp
from tests.web.http_cache_support import cache_status_params

MAX60 = "cache-control:max-age=60"


def url(path: str = "/r", *headers: str, **params: str) -> str:
    """A path whose query asks the test app for these header lines and parameters."""
    query = [f"h={quote(h)}" for h in headers] + [f"{k}={quote(v)}" for k, v in params.items()]
    return path + ("?" + "&".join(query) if query else "")


def status_of(response: TestResponse) -> dict[str, object]:
    """The Cache-Status parameters (independent parser)."""
    return cache_status_params(tuple((k.lower(), v) for k, v in response.headers.items()))


class Harness:
    """The WSGI test app behind the middleware, a memory cache, a fake clock."""

    def __init__(self, **options: object) -> None:
        self.clock = Clock()
        self.app = WsgiApp()
        self.cache = options.pop("cache", None) or TieredCache(
            MemoryTier(), namespace="http", clock=self.clock
        )
        self.middleware = CacheMiddleware(
            self.app,
            cache=self.cache,  # type: ignore[arg-type]
            clock=self.clock,
            **options,  # type: ignore[arg-type]
        )
        self.client = Client(self.middleware)

    def get(self, path: str, **headers: str) -> TestResponse:
        """GET with these request headers (underscores become dashes)."""
        return self.client.get(path, headers={k.replace("_", "-"): v for k, v in headers.items()})


@pytest.fixture
def h() -> Iterator[Harness]:
    """The default harness."""
    harness = Harness()
    yield harness
    harness.cache.close()  # type: ignore[attr-defined]


def test_hit_304_and_head(h: Harness) -> None:
    """Stored GET, then a hit with Age, a 304 for its ETag, a HEAD without a body."""
    first = h.get(url("/r", MAX60))
    h.clock.advance(3)
    hit = h.get(url("/r", MAX60))
    not_modified = h.get(url("/r", MAX60), if_none_match=first.headers["etag"])
    head = h.client.head(url("/r", MAX60))
    assert 1 == h.app.calls["/r"]
    assert (first.data, "3") == (hit.data, hit.headers["age"])
    assert (304, b"", first.headers["etag"]) == (
        not_modified.status_code,
        not_modified.data,
        not_modified.headers["etag"],
    )
    assert (200, b"") == (head.status_code, head.data)
    assert {"fwd": "uri-miss", "fwd-status": 200, "stored": True, "ttl": 60} == status_of(first)


def test_forward_strips_validators_and_answers_the_condition(h: Harness) -> None:
    """A conditional miss: the app sees no If-None-Match, the client gets the 304."""
    etag = h.get(url("/r", MAX60, size="8")).headers["etag"]
    h.cache.clear()  # type: ignore[attr-defined]
    again = h.get(url("/r", MAX60, size="8"), if_none_match=etag)
    assert 304 == again.status_code
    assert "if-none-match" not in h.app.seen_headers[-1]


def test_vary_and_refusals(h: Harness) -> None:
    """Vary variants coexist; Set-Cookie and Authorization responses are not stored."""
    path = url("/r", MAX60, "vary:accept-language")
    for lang in ("en", "fr", "en", "fr"):
        assert lang == h.get(path, accept_language=lang).json["lang"]
    assert 2 == h.app.calls["/r"]
    cookie = h.get(url("/c", MAX60, "set-cookie:s=1"))
    authorized = h.get(url("/a", MAX60), authorization="Bearer x")
    assert ("set-cookie", "authorization") == (
        status_of(cookie)["detail"],
        status_of(authorized)["detail"],
    )
    assert "s=1" == cookie.headers["set-cookie"]


def test_stale_if_error_and_error_pass_through(h: Harness) -> None:
    """An exception within stale-if-error is answered stale; without an entry it propagates."""
    lines = ("cache-control:max-age=10, stale-if-error=60",)
    first = h.get(url("/r", *lines))
    h.clock.advance(20)
    h.app.overrides = {"raise": "1"}
    assert first.data == h.get(url("/r", *lines)).data
    h.app.overrides = {"status": "502"}
    assert "stale-if-error" == status_of(h.get(url("/r", *lines)))["detail"]
    h.app.overrides = {"raise": "1"}
    with pytest.raises(RuntimeError, match="the application failed"):
        h.get(url("/other", *lines))


def test_stale_while_revalidate_refreshes_in_a_thread(h: Harness) -> None:
    """Stale within SWR: served at once, refreshed by one background thread."""
    path = url("/r", "cache-control:max-age=10, stale-while-revalidate=30")
    h.get(path)
    h.clock.advance(15)
    stale = h.get(path, if_none_match='"x"')
    h.middleware.drain()
    fresh = h.get(path)
    assert (1, 2) == (stale.json["call"], fresh.json["call"])
    assert "stale-while-revalidate" == status_of(stale)["detail"]
    assert "if-none-match" not in h.app.seen_headers[-1]


def test_unsafe_method_and_tags_invalidate(h: Harness) -> None:
    """A DELETE invalidates its URL; Cache-Tag is stripped and invalidates by tag."""
    path = url("/r", MAX60, "cache-tag:t1")
    assert "cache-tag" not in h.get(path).headers
    h.cache.invalidate_tags("t1")  # type: ignore[attr-defined]
    h.get(path)
    h.client.delete(path)
    h.get(path)
    assert 3 == h.app.calls["GET /r"]


def test_streaming_passes_through_and_large_bodies_are_sent_whole() -> None:
    """A generator body without Content-Length passes through; a large body is sent whole."""
    h = Harness(policy=HttpCachePolicy(max_body_bytes=100))
    streamed = h.get(url("/r", MAX60, stream="1"))
    large = h.get(url("/big", MAX60, size="1000"))
    assert ("streaming", 1) == (status_of(streamed)["detail"], streamed.json["call"])
    assert ("too-large", 1000) == (status_of(large)["detail"], len(large.data))


def test_threads_collapse_onto_one_app_call(h: Harness) -> None:
    """20 threads missing one URL at once: the app runs once."""
    results: list[int] = []
    barrier = threading.Barrier(20)

    def one() -> None:
        barrier.wait()
        results.append(Client(h.middleware).get(url("/r", MAX60, sleep="0.2")).json["call"])

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert ([1] * 20, 1) == (results, h.app.calls["/r"])


def test_a_failing_cache_degrades_to_the_app(
    h: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache that raises: every request still gets the app's answer, the error is logged."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("broken cache")

    monkeypatch.setattr(h.cache, "get", broken)
    with caplog.at_level(logging.ERROR, "perfprim.web.http_cache"):
        assert [200, 200] == [h.get(url("/r", MAX60)).status_code for _ in range(2)]
    assert "broken cache" in caplog.text


def test_unreachable_redis_degrades_to_the_app() -> None:
    """Redis down: the app answers, then the L1 keeps serving."""
    from perfprim.testing import free_port

    tier = RedisTier.from_url(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.2)
    cache = TieredCache(MemoryTier(), tier, namespace="http")
    h = Harness(cache=cache)
    assert [200, 200] == [h.get(url("/r", MAX60)).status_code for _ in range(2)]
    assert 1 == h.app.calls["/r"]
    cache.close()


def test_the_wrong_cache_kind_fails_fast() -> None:
    """An AsyncTieredCache for the WSGI middleware: ConfigurationError naming TieredCache."""
    from perfprim.cache import AsyncTieredCache

    with pytest.raises(ConfigurationError, match="TieredCache"):
        CacheMiddleware(WsgiApp(), cache=AsyncTieredCache(MemoryTier()))  # type: ignore[arg-type]


def test_legacy_write_callable_is_kept(h: Harness) -> None:
    """PEP 3333 write(): what the app writes comes before its iterable, and is stored."""

    def legacy(environ: dict[str, object], start_response: object) -> list[bytes]:
        headers = [("Cache-Control", "max-age=60"), ("Content-Length", "16")]
        write = start_response("200 OK", headers)  # type: ignore[operator]
        write(b"written ")
        return [b"returned"]

    client = Client(CacheMiddleware(legacy, cache=h.cache, clock=h.clock))  # type: ignore[arg-type]
    first = client.get("/legacy")
    again = client.get("/legacy")
    assert (b"written returned", b"written returned") == (first.data, again.data)
    assert status_of(again).get("hit")
