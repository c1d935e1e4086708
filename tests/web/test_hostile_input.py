"""Hostile HTTP input to the middleware, in process (issue 17 §3; reliability.md "Hostile input").

Raw ASGI scopes and WSGI environs (so that bytes no HTTP client would send
reach the middleware), through ``MetricsMiddleware`` over ``CacheMiddleware``
over an application that echoes who asked. Two properties (Hypothesis) and a
table of single inputs:

- no 500 and no exception from perfprim: every answer is the app's own 200
  or a correct cache answer (200 from the cache, 304);
- no response served to a request it was not stored for: every body names
  the Authorization, Cookie, Accept-Language, path and query parameters of
  the request it answers (compared here on the raw values, independently of
  perfprim's key normalisation).
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfprim.cache import AsyncTieredCache, MemoryTier, TieredCache
from perfprim.web.asgi import CacheMiddleware as AsgiCache
from perfprim.web.asgi import MetricsMiddleware as AsgiMetrics
from perfprim.web.wsgi import CacheMiddleware as WsgiCache
from perfprim.web.wsgi import MetricsMiddleware as WsgiMetrics
from tests.web.apps.hostile_app import EchoAsgi, EchoWsgi, Headers, identity
from tests.web.cache_apps import Clock


class AsgiStack:
    """Metrics over cache over the echo app, called with raw scopes."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.app = EchoAsgi()
        self.cache = AsyncTieredCache(MemoryTier(), namespace="http", clock=self.clock)
        self.stack = AsgiMetrics(AsgiCache(self.app, cache=self.cache, clock=self.clock))

    async def call(
        self, method: str, path: bytes, query: bytes, headers: Headers
    ) -> tuple[int, Headers, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "server": ("shop.example", 80),
            "client": ("127.0.0.1", 5000),
            "root_path": "",
            "path": path.decode("utf-8", "replace"),
            "raw_path": path,
            "query_string": query,
            "headers": [(b"host", b"shop.example"), *headers],
        }
        sent: list[dict[str, Any]] = []
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if received:
                await asyncio.sleep(3600)
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.stack(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], list(start.get("headers", [])), body


class WsgiStack:
    """Metrics over cache over the echo app, called with raw environs."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.app = EchoWsgi()
        self.cache = TieredCache(MemoryTier(), namespace="http", clock=self.clock)
        self.stack = WsgiMetrics(WsgiCache(self.app, cache=self.cache, clock=self.clock))

    def call(
        self, method: str, path: bytes, query: bytes, headers: Headers
    ) -> tuple[int, Headers, bytes]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path.decode("latin-1"),  # PEP 3333: the raw bytes as latin-1
            "QUERY_STRING": query.decode("latin-1"),
            "SERVER_NAME": "shop.example",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "shop.example",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        for name, value in headers:
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            text = value.decode("latin-1")
            environ[key] = f"{environ[key]}, {text}" if key in environ else text
        status: list[str] = []
        lines: list[tuple[str, str]] = []

        def start_response(s: str, h: list[tuple[str, str]], exc_info: object = None) -> Any:
            status.append(s)
            lines[:] = h
            return lambda data: None

        result = self.stack(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in lines]
        return int(status[0].split()[0]), raw, body


def _names(headers: Headers) -> set[bytes]:
    return {name.lower() for name, _ in headers}


def check_answer(
    request: tuple[str, bytes, bytes, Headers], answer: tuple[int, Headers, bytes]
) -> None:
    """The two goals: a correct status, and a body made for this very request."""
    method, path, query, headers = request
    status, lines, body = answer
    assert status in (200, 304), (status, body[:200])
    assert b"cache-tag" not in _names(lines)
    if status == 200 and method == "GET":
        assert json.loads(body) == identity(path, query, headers)


# -- Hypothesis: sequences of hostile requests against one stack --------------------------------

USERS = st.sampled_from([None, b"Bearer alice", b"Bearer bob", b"Basic \xff\xfe"])
COOKIES = st.sampled_from([None, b"session=alice", b"session=bob", b"session=\xe9"])
LANGS = st.sampled_from([None, b"en", b"fr", b"", b"en, fr"])
PATH_BYTES = st.one_of(  # mostly a few paths, so that users meet on the same URL
    st.just(b"/p"),
    st.just(b"/p"),
    st.sampled_from([b"/p/\xff\xfe", b"/p/%7e"]),
    st.binary(max_size=12).map(
        lambda b: b"/p" + bytes(c for c in b if c not in b"%?#" and c > 0x20)
    ),
)
QUERY = st.lists(
    st.sampled_from([b"a=1", b"b=2", b"a=2", b"", b"c=\xff", b"d=%7e", b"e=~"]), max_size=2
).map(b"&".join)
INM = st.one_of(
    st.none(),
    st.sampled_from([b"*", b'"x"', b"W/", b'"', b'W/"a,b"', b"\xff\xfe", b", , ,"]),
    st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b"\r\n\x00")),
)


@st.composite
def hostile_request(draw: st.DrawFn) -> tuple[str, bytes, bytes, Headers]:
    """One request: a hostile path, query and header set."""
    headers: Headers = []
    for name, strategy in (
        (b"authorization", USERS),
        (b"cookie", COOKIES),
        (b"accept-language", LANGS),
        (b"if-none-match", INM),
    ):
        value = draw(strategy)
        if value is not None:
            headers.append((name, value))
    if draw(st.booleans()):
        headers.append((b"cache-tag", draw(st.sampled_from([b"echo", b"*", b"echo, other"]))))
    if draw(st.booleans()):
        headers.append(
            (b"x-junk", draw(st.binary(max_size=64)).replace(b"\r", b"").replace(b"\n", b""))
        )
    method = draw(st.sampled_from(["GET", "GET", "GET", "HEAD", "POST"]))
    return method, draw(PATH_BYTES), draw(QUERY), headers


SEQUENCES = st.lists(hostile_request(), min_size=2, max_size=8)
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(SEQUENCES)
def test_asgi_answers_only_what_was_stored_for_the_request(
    requests: list[tuple[str, bytes, bytes, Headers]],
) -> None:
    """ASGI: no 500, no answer made for another user, variant, path or query."""

    async def run() -> None:
        stack = AsgiStack()
        for request in requests + requests:  # the second pass is answered from the cache
            check_answer(request, await stack.call(*request))
            stack.clock.advance(1)
        await stack.cache.close()

    asyncio.run(run())


@PROPERTY
@given(SEQUENCES)
def test_wsgi_answers_only_what_was_stored_for_the_request(
    requests: list[tuple[str, bytes, bytes, Headers]],
) -> None:
    """WSGI: no 500, no answer made for another user, variant, path or query."""
    stack = WsgiStack()
    for request in requests + requests:
        check_answer(request, stack.call(*request))
        stack.clock.advance(1)
    stack.cache.close()


# -- the table: one hostile input each, through both stacks -----------------------------------

GOOD = (b"cookie", b"session=alice")

#: (id, path, query, header lines): each must be answered 200/304 with its own identity.
TABLE: list[tuple[str, bytes, bytes, Headers]] = [
    ("huge-header-64k", b"/t", b"", [(b"x-junk", b"a" * 65536)]),
    ("thousand-header-lines", b"/t", b"", [(b"x-l%d" % i, b"v") for i in range(1000)]),
    ("header-name-not-a-token", b"/t", b"", [(b"x y\xff(", b"v"), (b"", b"empty-name")]),
    ("header-value-8bit", b"/t", b"", [(b"accept-language", b"\xff\xfe\x80"), GOOD]),
    ("huge-cookie", b"/t", b"", [(b"cookie", b"s=" + b"c" * 32768)]),
    ("if-none-match-garbage", b"/t", b"", [(b"if-none-match", b'W/"\x00, "unterminated, ,,W/')]),
    (
        "if-none-match-10k-tags",
        b"/t",
        b"",
        [(b"if-none-match", b", ".join(b'"t%d"' % i for i in range(10000)))],
    ),
    ("if-none-match-star-list", b"/t", b"", [(b"if-none-match", b'"a", *, W/"b"')]),
    (
        "if-modified-since-garbage",
        b"/t",
        b"",
        [(b"if-modified-since", b"Wed, 99 Foo 99999 99:99:99 GMT")],
    ),
    (
        "cache-control-garbage",
        b"/t",
        b"",
        [(b"cache-control", b'max-age=abc, max-stale=99999999999999999999999, no-cache="')],
    ),
    ("cache-control-huge", b"/t", b"", [(b"cache-control", b"x, " * 20000)]),
    ("query-1mb", b"/t", b"q=" + b"x" * 1_048_576, []),
    ("query-100k-params", b"/t", b"&".join(b"p%d=1" % i for i in range(100_000)), []),
    ("query-bad-escapes", b"/t", b"a=%zz&b=%&c=%f&d=%FF%fe", []),
    ("path-non-utf8", b"/t/\xff\xfe\xc3\x28", b"", []),
    ("path-escaped-non-utf8", b"/t/%FF%fe%C3%28", b"", []),
    ("path-64k", b"/t/" + b"p" * 65536, b"", []),
    ("vary-500-fields", b"/t", b"manyvary=1", [(b"x-f1", b"a")]),
    ("host-garbage", b"/t", b"", [(b"x-forwarded-host", b"[::1"), (b"forwarded", b"for=\xff")]),
]


def _table_answer_ok(
    path: bytes, query: bytes, headers: Headers, answer: tuple[int, Headers, bytes]
) -> None:
    status, lines, body = answer
    assert status in (200, 304), status
    assert b"cache-tag" not in _names(lines)
    if status == 200:
        assert json.loads(body) == identity(path, query, headers)


@pytest.mark.parametrize("case", TABLE, ids=[c[0] for c in TABLE])
async def test_asgi_table(case: tuple[str, bytes, bytes, Headers]) -> None:
    """ASGI: each hostile input is answered by the app or correctly from the cache, twice."""
    _, path, query, headers = case
    stack = AsgiStack()
    for _ in range(2):
        _table_answer_ok(path, query, headers, await stack.call("GET", path, query, headers))
        stack.clock.advance(1)
    await stack.cache.close()


@pytest.mark.parametrize("case", TABLE, ids=[c[0] for c in TABLE])
def test_wsgi_table(case: tuple[str, bytes, bytes, Headers]) -> None:
    """WSGI: each hostile input is answered by the app or correctly from the cache, twice."""
    _, path, query, headers = case
    stack = WsgiStack()
    for _ in range(2):
        _table_answer_ok(path, query, headers, stack.call("GET", path, query, headers))
        stack.clock.advance(1)
    stack.cache.close()


# -- who may read what ------------------------------------------------------------------------


async def test_asgi_cookie_and_authorization_never_cross_users() -> None:
    """A variant stored for one Cookie is never served to another; Authorization is never shared."""
    stack = AsgiStack()
    alice, bob = [(b"cookie", b"session=alice")], [(b"cookie", b"session=bob")]
    for who in (alice, bob, alice, bob):
        _table_answer_ok(b"/u", b"", who, await stack.call("GET", b"/u", b"", who))
    assert 2 == stack.app.calls  # each cookie's variant stored once, then served to its owner
    for token in (b"Bearer alice", b"Bearer bob", b"Bearer alice"):
        who = [(b"authorization", token), *alice]
        _table_answer_ok(b"/u", b"", who, await stack.call("GET", b"/u", b"", who))
    assert 5 == stack.app.calls  # max-age without public: never stored nor served (RFC 9111 §3.5)
    await stack.cache.close()


def test_wsgi_cookie_and_authorization_never_cross_users() -> None:
    """The WSGI twin of the ASGI test."""
    stack = WsgiStack()
    alice, bob = [(b"cookie", b"session=alice")], [(b"cookie", b"session=bob")]
    for who in (alice, bob, alice, bob):
        _table_answer_ok(b"/u", b"", who, stack.call("GET", b"/u", b"", who))
    assert 2 == stack.app.calls
    for token in (b"Bearer alice", b"Bearer bob", b"Bearer alice"):
        who = [(b"authorization", token), *alice]
        _table_answer_ok(b"/u", b"", who, stack.call("GET", b"/u", b"", who))
    assert 5 == stack.app.calls


async def test_asgi_client_cache_tag_is_neither_a_tag_nor_an_invalidation() -> None:
    """A Cache-Tag sent by a client tags nothing and invalidates nothing; the app's is stripped."""
    stack = AsgiStack()
    injected = [(b"cache-tag", b"injected, echo")]
    await stack.call("GET", b"/a", b"", injected)
    await stack.call("POST", b"/b", b"", injected)  # unsafe method elsewhere, same header
    await stack.cache.invalidate_tags("injected")
    status, lines, _ = await stack.call("GET", b"/a", b"", [])
    assert (200, 2) == (status, stack.app.calls)  # GET /a and POST /b: /a still from the cache
    assert b"cache-tag" not in _names(lines)
    await stack.cache.invalidate_tags("echo")  # control: the app's own tag does invalidate
    await stack.call("GET", b"/a", b"", [])
    assert 3 == stack.app.calls
    await stack.cache.close()


def test_wsgi_client_cache_tag_is_neither_a_tag_nor_an_invalidation() -> None:
    """The WSGI twin of the ASGI test."""
    stack = WsgiStack()
    injected = [(b"cache-tag", b"injected, echo")]
    stack.call("GET", b"/a", b"", injected)
    stack.call("POST", b"/b", b"", injected)
    stack.cache.invalidate_tags("injected")
    status, lines, _ = stack.call("GET", b"/a", b"", [])
    assert (200, 2) == (status, stack.app.calls)
    assert b"cache-tag" not in _names(lines)
    stack.cache.invalidate_tags("echo")
    stack.call("GET", b"/a", b"", [])
    assert 3 == stack.app.calls


# -- the limits -------------------------------------------------------------------------------


def test_key_memo_does_not_keep_huge_targets() -> None:
    """Keys of long targets are not memoised: 20 distinct 256 KB queries leave < 1 MB behind."""
    import gc
    import tracemalloc

    from perfprim.web._http_cache_keys import primary_key

    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20):
            key = primary_key("http", "shop.example", "/t", f"q{i}=" + "x" * 262_144)
            assert len(key) <= 1024
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 1_000_000, kept


def test_vary_naming_more_fields_than_max_header_count_is_not_stored() -> None:
    """A Vary over more fields than ``max_header_count`` is refused (``too-many-headers``)."""
    stack = WsgiStack()
    for _ in range(2):
        status, lines, _ = stack.call("GET", b"/t", b"manyvary=1", [])
        assert 200 == status
    assert 2 == stack.app.calls
    assert "too-many-headers" in dict(lines)[b"cache-status"].decode()


def test_if_none_match_considers_the_first_entries_only() -> None:
    """Up to 64 entity tags of If-None-Match are compared; a match further on gets the full 200."""
    from perfprim.web._http_cache_validators import MAX_ENTITY_TAGS, none_match

    fillers = [f'"f{i}"' for i in range(MAX_ENTITY_TAGS - 1)]
    assert none_match(", ".join([*fillers, '"e"']), '"e"')
    assert not none_match(", ".join([*fillers, '"g"', '"e"']), '"e"')
    assert 64 == MAX_ENTITY_TAGS


def test_wsgi_path_info_beyond_latin1_is_answered() -> None:
    """A server that hands over PATH_INFO with characters beyond latin-1 (against PEP 3333)."""
    stack = WsgiStack()
    environ_path = "/t/\u20ac"
    calls: list[str] = []

    def ok_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("cache-control", "max-age=60")])
        return [b"ok"]

    def call() -> int:
        captured: list[str] = []
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": environ_path, "QUERY_STRING": "",
            "SERVER_NAME": "shop.example", "SERVER_PORT": "80", "HTTP_HOST": "shop.example",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        }  # fmt: skip
        app = WsgiCache(ok_app, cache=stack.cache, clock=stack.clock)
        b"".join(app(environ, lambda s, h, e=None: captured.append(s)))
        return int(captured[0].split()[0])

    assert [200, 200] == [call(), call()]
    assert [environ_path] == calls  # stored, then served from the cache
    stack.cache.close()
