"""Request field folding: the lazy ASGI view reads as the generic fold does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from perfprim.web._http_cache_core import (
    AsgiHeaders,
    CacheRequest,
    ReadAction,
    collect_headers,
    decide_read,
    decide_store,
    plan_request,
)
from perfprim.web._http_cache_policy import HttpCachePolicy

from .http_cache_support import T0

_NAMES = st.sampled_from([b"accept", b"cookie", b"cache-control", b"if-none-match", b"x-a"])
_VALUES = st.binary(max_size=12)


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=12))
def test_asgi_view_equals_collect_headers(pairs: list[tuple[bytes, bytes]]) -> None:
    """For any ASGI header lines, the lazy view and the eager fold agree on every read."""
    eager = collect_headers(pairs)
    lazy = AsgiHeaders(pairs)
    assert eager == dict(lazy.items())
    assert len(eager) == len(lazy)
    for name in ("accept", "cookie", "cache-control", "if-none-match", "x-a", "range"):
        assert (eager.get(name), name in eager) == (lazy.get(name), name in lazy)
    assert 7 not in lazy  # a non-str key is never present
    assert "AsgiHeaders(" in repr(lazy)


def test_collect_headers_joins_repeats() -> None:
    """RFC 9110 §5.3: repeated lines join with ", "; Cookie lines with "; " (RFC 6265)."""
    pairs = [(b"Accept", b"a"), ("accept", "b"), (b"cookie", b"x=1"), (b"cookie", b"y=2")]
    assert {"accept": "a, b", "cookie": "x=1; y=2"} == collect_headers(pairs)


def test_a_request_built_on_the_asgi_view_is_served_like_any_other() -> None:
    """The whole miss, store, hit and 304 cycle works on AsgiHeaders."""
    policy = HttpCachePolicy()

    def plan(extra: list[tuple[bytes, bytes]]) -> object:
        headers = AsgiHeaders([(b"host", b"h"), (b"accept", b"*/*"), *extra])
        return plan_request(CacheRequest("GET", "http", "h", "/", "", headers), policy)

    miss_plan = plan([])
    miss = decide_read(miss_plan, None, now=T0, policy=policy)  # type: ignore[arg-type]
    stored = decide_store(
        miss_plan,  # type: ignore[arg-type]
        miss,
        status=200,
        headers=[(b"cache-control", b"max-age=60")],
        body=b"ok",
        now=T0,
        policy=policy,
    )
    entry = stored.writes[0].value
    hit = decide_read(plan([]), entry, now=T0 + 1, policy=policy)  # type: ignore[arg-type]
    etag = dict(hit.headers)["etag"].encode()
    revalidated = decide_read(plan([(b"if-none-match", etag)]), entry, now=T0 + 1, policy=policy)  # type: ignore[arg-type]
    assert (ReadAction.SERVE, b"ok", ReadAction.NOT_MODIFIED) == (
        hit.action,
        hit.body,
        revalidated.action,
    )
