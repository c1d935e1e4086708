"""The ASGI CacheMiddleware in process, rule by rule (httpx's ASGITransport, a fake clock).

The real-server tests (``test_http_cache_servers.py``) repeat the main
rules over real HTTP; here each rule of ``docs/http_cache.md`` has its test.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier
from perfprim.exceptions import ConfigurationError
from perfprim.web import HttpCachePolicy
from perfprim.web.asgi import CacheMiddleware
from tests.web.cache_apps import AsgiApp, Clock
from tests.web.http_cache_support import cache_status_params


def url(path: str = "/r", *headers: str, **params: str) -> str:
    """A path whose query asks the test app for these header lines and parameters."""
    query = [f"h={quote(h)}" for h in headers] + [f"{k}={quote(v)}" for k, v in params.items()]
    return path + ("?" + "&".join(query) if query else "")


def status_of(response: httpx.Response) -> dict[str, object]:
    """The Cache-Status parameters, parsed by an independent structured-field parser."""
    return cache_status_params(tuple(response.headers.items()))


class Harness:
    """The test app behind the middleware, a memory cache, a fake clock and a client."""

    def __init__(self, **options: object) -> None:
        self.clock = Clock()
        self.app = AsgiApp()
        self.cache = AsyncTieredCache(MemoryTier(), namespace="http", clock=self.clock)
        self.middleware = CacheMiddleware(
            self.app,
            cache=options.pop("cache", self.cache),  # type: ignore[arg-type]
            clock=self.clock,
            **options,  # type: ignore[arg-type]
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.middleware), base_url="http://shop.example"
        )

    def calls(self, path: str = "/r") -> int:
        """How often the app answered ``path``."""
        return self.app.calls[path]


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    """The default harness."""
    harness = Harness()
    yield harness
    await harness.client.aclose()
    await harness.cache.close()


MAX60 = "cache-control:max-age=60"


async def test_miss_then_hit_with_age_etag_and_cache_status(h: Harness) -> None:
    """A stored GET is answered from the cache, with Age and the same body and ETag."""
    first = await h.client.get(url("/r", MAX60))
    h.clock.advance(7)
    second = await h.client.get(url("/r", MAX60))
    assert 1 == h.calls()
    assert first.content == second.content
    assert {"fwd": "uri-miss", "fwd-status": 200, "stored": True, "ttl": 60} == status_of(first)
    assert {"hit": True, "ttl": 53} == status_of(second)
    assert "7" == second.headers["age"]
    assert first.headers["etag"] == second.headers["etag"]
    assert first.headers["etag"].startswith('"')


async def test_head_is_answered_from_the_get_entry_without_a_body(h: Harness) -> None:
    """HEAD after GET is a hit without a body; a HEAD miss is forwarded and not stored."""
    await h.client.get(url("/r", MAX60))
    head = await h.client.head(url("/r", MAX60))
    assert (200, b"", True) == (head.status_code, head.content, status_of(head).get("hit"))
    head_miss = await h.client.head(url("/other", MAX60))
    assert "stored" not in status_of(head_miss)
    await h.client.get(url("/other", MAX60))
    assert 2 == h.calls("/other")


async def test_if_none_match_is_answered_with_a_304_without_calling_the_app(h: Harness) -> None:
    """A matching If-None-Match (also weak, in a list, or *) gets a 304 with RFC 9110 headers."""
    first = await h.client.get(url("/r", MAX60, "vary:accept-encoding"))
    etag = first.headers["etag"]
    for value in (etag, f'"other", W/{etag}', "*"):
        response = await h.client.get(
            url("/r", MAX60, "vary:accept-encoding"), headers={"if-none-match": value}
        )
        assert 304 == response.status_code, value
        assert b"" == response.content
        assert etag == response.headers["etag"]
        assert "max-age=60" == response.headers["cache-control"]
        assert "accept-encoding" == response.headers["vary"]
        assert {"date", "age", "cache-status"} <= set(response.headers)
        assert "content-type" not in response.headers
    miss = await h.client.get(
        url("/r", MAX60, "vary:accept-encoding"), headers={"if-none-match": '"nope"'}
    )
    assert 200 == miss.status_code
    assert 1 == h.calls()


async def test_if_modified_since_against_last_modified(h: Harness) -> None:
    """If-Modified-Since at or after Last-Modified is a 304; before it, the full response."""
    last = "Wed, 21 Oct 2015 07:28:00 GMT"
    await h.client.get(url("/r", MAX60, f"last-modified:{last}"))
    same = await h.client.get(url("/r", MAX60, f"last-modified:{last}"),
                              headers={"if-modified-since": last})  # fmt: skip
    older = await h.client.get(
        url("/r", MAX60, f"last-modified:{last}"),
        headers={"if-modified-since": "Tue, 20 Oct 2015 07:28:00 GMT"},
    )
    assert (304, 200) == (same.status_code, older.status_code)
    assert 1 == h.calls()


async def test_conditional_miss_is_stored_and_answered_by_the_cache(h: Harness) -> None:
    """On a miss the app sees no If-None-Match; the cache answers the client's condition."""
    first = await h.client.get(url("/r", MAX60, size="10"))
    await h.cache.clear()
    again = await h.client.get(
        url("/r", MAX60, size="10"), headers={"if-none-match": first.headers["etag"]}
    )
    assert 304 == again.status_code
    assert "if-none-match" not in h.app.seen_headers[-1]
    assert 2 == h.calls()


async def test_vary_variants_coexist(h: Harness) -> None:
    """Two Accept-Language variants of one URL are stored side by side."""
    path = url("/r", MAX60, "vary:accept-language")
    en = await h.client.get(path, headers={"accept-language": "en"})
    fr = await h.client.get(path, headers={"accept-language": "fr"})
    en2 = await h.client.get(path, headers={"accept-language": "en"})
    fr2 = await h.client.get(path, headers={"accept-language": "fr"})
    assert 2 == h.calls()
    assert ("en", "fr") == (en.json()["lang"], fr.json()["lang"])
    assert (en.content, fr.content) == (en2.content, fr2.content)
    assert "vary-miss" == status_of(fr)["fwd"]
    assert (True, True) == (status_of(en2).get("hit"), status_of(fr2).get("hit"))


@pytest.mark.parametrize(
    ("lines", "request_headers", "detail"),
    [
        ((MAX60, "vary:*"), {}, "vary-star"),
        ((MAX60, "set-cookie:session=1"), {}, "set-cookie"),
        ((MAX60,), {"authorization": "Bearer a"}, "authorization"),
        (("cache-control:private, max-age=60",), {}, "private"),
        (("cache-control:no-store",), {}, "no-store"),
        ((), {}, "no-freshness"),
    ],
)
async def test_refusals_are_not_stored_and_say_why(
    h: Harness, lines: tuple[str, ...], request_headers: dict[str, str], detail: str
) -> None:
    """Vary: *, Set-Cookie, Authorization, private, no-store, no freshness: never stored."""
    first = await h.client.get(url("/r", *lines), headers=request_headers)
    await h.client.get(url("/r", *lines), headers=request_headers)
    assert 2 == h.calls()
    assert detail == status_of(first)["detail"]
    assert "stored" not in status_of(first)


async def test_authorization_with_public_is_stored_and_shared(h: Harness) -> None:
    """RFC 9111 §3.5: `public` lets a response to an authorized request be stored."""
    lines = ("cache-control:public, max-age=60",)
    await h.client.get(url("/r", *lines), headers={"authorization": "Bearer a"})
    other = await h.client.get(url("/r", *lines), headers={"authorization": "Bearer b"})
    assert (1, True) == (h.calls(), status_of(other).get("hit"))


async def test_default_ttl_stores_what_states_no_freshness() -> None:
    """default_ttl=30 stores a response without Cache-Control, for 30 s."""
    h = Harness(default_ttl=30)
    first = await h.client.get(url("/r"))
    await h.client.get(url("/r"))
    assert (1, 30) == (h.calls(), status_of(first)["ttl"])
    await h.client.aclose()


@pytest.mark.parametrize(
    ("directive", "calls", "detail"),
    [("no-cache", 2, "no-cache"), ("max-age=0", 2, "max-age"), ("no-store", 2, "no-store")],
)
async def test_request_directives_call_the_app(
    h: Harness, directive: str, calls: int, detail: str
) -> None:
    """Request no-cache and max-age=0 revalidate, no-store bypasses."""
    await h.client.get(url("/r", MAX60))
    response = await h.client.get(url("/r", MAX60), headers={"cache-control": directive})
    assert (calls, detail) == (h.calls(), status_of(response)["detail"])


async def test_only_if_cached_miss_is_a_504(h: Harness) -> None:
    """only-if-cached with nothing stored: 504, the app not called."""
    response = await h.client.get(url("/r", MAX60), headers={"cache-control": "only-if-cached"})
    assert (504, 0) == (response.status_code, h.calls())


async def test_stale_while_revalidate_serves_stale_and_refreshes_once(h: Harness) -> None:
    """Within the SWR window: stale answers, and one background request refreshes the entry."""
    path = url("/r", "cache-control:max-age=10, stale-while-revalidate=30")
    await h.client.get(path)
    h.clock.advance(15)
    stale = await asyncio.gather(*(h.client.get(path) for _ in range(5)))
    await h.middleware.drain()
    assert {1} == {r.json()["call"] for r in stale}
    assert "stale-while-revalidate" == status_of(stale[0])["detail"]
    assert 2 == h.calls()
    fresh = await h.client.get(path)
    assert (2, True) == (fresh.json()["call"], status_of(fresh).get("hit"))


async def test_stale_if_error_stands_in_for_an_exception_and_a_503(h: Harness) -> None:
    """Within stale-if-error the stale entry answers an exception or a 503; past it, the error."""
    lines = ("cache-control:max-age=10, stale-if-error=60",)
    first = await h.client.get(url("/r", *lines))
    h.clock.advance(20)
    h.app.overrides = {"raise": "1"}
    raised = await h.client.get(url("/r", *lines))
    h.app.overrides = {"status": "503"}
    unavailable = await h.client.get(url("/r", *lines))
    assert (200, first.content) == (raised.status_code, raised.content)
    assert (200, first.content) == (unavailable.status_code, unavailable.content)
    assert "stale-if-error" == status_of(unavailable)["detail"]
    assert 503 == status_of(unavailable)["fwd-status"]
    h.clock.advance(100)
    h.app.overrides = {"raise": "1"}
    with pytest.raises(RuntimeError, match="the application failed"):
        await h.client.get(url("/r", *lines))


async def test_error_timeout_answers_with_the_stale_entry() -> None:
    """error_timeout: a forward slower than it is answered from the stale-if-error entry."""
    h = Harness(error_timeout=0.05)
    lines = ("cache-control:max-age=10, stale-if-error=60",)
    await h.client.get(url("/r", *lines))
    h.clock.advance(20)
    h.app.overrides = {"sleep": "5"}
    slow = await h.client.get(url("/r", *lines))
    assert (200, "stale-if-error") == (slow.status_code, status_of(slow)["detail"])
    await h.client.aclose()


async def test_stampede_100_concurrent_misses_call_the_app_once(h: Harness) -> None:
    """100 concurrent requests for a cold URL: one app call, the others collapsed onto it."""
    path = url("/r", MAX60, sleep="0.05")
    responses = await asyncio.gather(*(h.client.get(path) for _ in range(100)))
    assert 1 == h.calls()
    assert {200} == {r.status_code for r in responses}
    assert {1} == {r.json()["call"] for r in responses}
    assert 99 == sum(1 for r in responses if status_of(r).get("collapsed"))


async def test_unsafe_method_invalidates_its_url_and_location(h: Harness) -> None:
    """A successful POST invalidates its URL and its same-origin Location."""
    await h.client.get(url("/items", MAX60))
    await h.client.get(url("/items/7", MAX60))
    h.app.overrides = {"h": "location:" + url("/items/7", MAX60), "status": "201"}
    posted = await h.client.post(url("/items", MAX60))
    assert ("method", 201) == (status_of(posted)["fwd"], status_of(posted)["fwd-status"])
    h.app.overrides = {}
    await h.client.get(url("/items", MAX60))
    await h.client.get(url("/items/7", MAX60))
    assert (2, 2) == (h.app.calls["GET /items"], h.app.calls["GET /items/7"])


async def test_failed_unsafe_method_invalidates_nothing(h: Harness) -> None:
    """A 4xx answer to a POST leaves the stored GET alone."""
    await h.client.get(url("/r", MAX60))
    await h.client.post(url("/r", status="409"))
    await h.client.get(url("/r", MAX60))
    assert 1 == h.app.calls["GET /r"]


async def test_cache_tag_is_stripped_and_invalidates_by_tag(h: Harness) -> None:
    """Cache-Tag never reaches the client; invalidate_tags retires the response."""
    path = url("/r", MAX60, "cache-tag:product:42 list:products")
    first = await h.client.get(path)
    assert "cache-tag" not in first.headers
    await h.cache.invalidate_tags("product:42")
    again = await h.client.get(path)
    assert (2, "uri-miss") == (h.calls(), status_of(again)["fwd"])
    assert "cache-tag" not in again.headers


async def test_bodies_over_the_limit_pass_through_unstored() -> None:
    """A body over max_body_bytes is sent whole and not stored (too-large)."""
    h = Harness(policy=HttpCachePolicy(max_body_bytes=1000))
    response = await h.client.get(url("/r", MAX60, size="5000"))
    assert (5000, "too-large") == (len(response.content), status_of(response)["detail"])
    await h.client.get(url("/r", MAX60, size="5000"))
    assert 2 == h.calls()
    await h.client.aclose()


async def test_streaming_passes_through_unless_configured() -> None:
    """A streamed body passes through untouched; with store_streaming it is stored."""
    h = Harness()
    streamed = await h.client.get(url("/r", MAX60, stream="1"))
    assert "streaming" == status_of(streamed)["detail"]
    assert streamed.json()["call"] == 1
    await h.client.aclose()
    stored = Harness(policy=HttpCachePolicy(store_streaming=True))
    await stored.client.get(url("/r", MAX60, stream="1"))
    again = await stored.client.get(url("/r", MAX60, stream="1"))
    assert (1, True) == (stored.calls(), status_of(again).get("hit"))
    await stored.client.aclose()


async def test_paths_limits_the_cache_to_some_routes() -> None:
    """The per-route form: only the named prefixes are cached, the rest untouched."""
    h = Harness(paths=["/products"])
    for _ in range(2):
        await h.client.get(url("/products/1", MAX60))
        other = await h.client.get(url("/users/1", MAX60))
    assert (1, 2) == (h.calls("/products/1"), h.calls("/users/1"))
    assert "cache-status" not in other.headers
    await h.client.aclose()


async def test_app_exception_without_entry_propagates_unchanged(h: Harness) -> None:
    """The middleware never swallows or changes the app's own exception."""
    with pytest.raises(RuntimeError, match="the application failed"):
        await h.client.get(url("/r", MAX60, **{"raise": "1"}))


async def test_a_failing_cache_degrades_to_the_app(
    h: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache that raises on read and write: every request still gets the app's answer."""

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("broken cache")

    monkeypatch.setattr(h.cache, "get", broken)
    monkeypatch.setattr(h.cache, "set", broken)
    with caplog.at_level(logging.ERROR, "perfprim.web.http_cache"):
        responses = [await h.client.get(url("/r", MAX60)) for _ in range(3)]
    assert [200, 200, 200] == [r.status_code for r in responses]
    assert 3 == h.calls()
    assert "broken cache" in caplog.text


async def test_unreachable_redis_degrades_to_the_app() -> None:
    """Redis down (nothing listening): answers come from the app, never an error."""
    from perfprim.testing import free_port

    tier = AsyncRedisTier.from_url(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.2)
    cache = AsyncTieredCache(MemoryTier(), tier, namespace="http")
    h = Harness(cache=cache)
    responses = [await h.client.get(url("/r", MAX60)) for _ in range(3)]
    assert [200, 200, 200] == [r.status_code for r in responses]
    assert 1 == h.calls()  # the L1 keeps serving
    await h.client.aclose()
    await cache.close()


async def test_non_http_scopes_pass_through(h: Harness) -> None:
    """Lifespan (and websocket) scopes reach the app untouched."""
    sent: list[dict[str, object]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, object]:
        return next(messages)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await h.middleware({"type": "lifespan"}, receive, send)
    assert ["lifespan.startup.complete", "lifespan.shutdown.complete"] == [m["type"] for m in sent]


def test_bad_options_fail_fast() -> None:
    """A sync cache, a bad prefix or policy: ConfigurationError naming the fix."""
    from perfprim.cache import TieredCache

    with pytest.raises(ConfigurationError, match="AsyncTieredCache"):
        CacheMiddleware(AsgiApp(), cache=TieredCache(MemoryTier()))  # type: ignore[arg-type]
    cache = AsyncTieredCache(MemoryTier())
    with pytest.raises(ConfigurationError, match="paths"):
        CacheMiddleware(AsgiApp(), cache=cache, paths=["products"])
    with pytest.raises(ConfigurationError, match="policy"):
        CacheMiddleware(AsgiApp(), cache=cache, policy={"default_ttl": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="default_ttl"):
        CacheMiddleware(AsgiApp(), cache=cache, default_ttl=-1)


async def test_a_failed_background_refresh_keeps_the_stale_entry(h: Harness) -> None:
    """RFC 5861 §3: a 5xx from the background request leaves the stale entry in place."""
    path = url("/r", "cache-control:max-age=10, stale-while-revalidate=30")
    first = await h.client.get(path)
    h.clock.advance(15)
    h.app.overrides = {"status": "503"}
    await h.client.get(path)
    await h.middleware.drain()
    h.app.overrides = {}
    again = await h.client.get(path)
    assert (first.content, "stale-while-revalidate") == (again.content, status_of(again)["detail"])


async def test_head_miss_on_a_stream_sends_no_body(h: Harness) -> None:
    """A HEAD miss passes the app's streamed answer through without its body."""
    head = await h.client.head(url("/r", MAX60, stream="1"))
    assert (200, b"") == (head.status_code, head.content)


async def test_uncacheable_answer_to_a_conditional_miss_is_a_304(h: Harness) -> None:
    """The app's own ETag matches the client's on a private response: a 304, nothing stored."""
    lines = ("cache-control:private, max-age=60", 'etag:"v1"')
    response = await h.client.get(url("/r", *lines), headers={"if-none-match": '"v1"'})
    assert (304, b"", "private") == (
        response.status_code,
        response.content,
        status_of(response)["detail"],
    )
    assert "if-none-match" not in h.app.seen_headers[-1]
