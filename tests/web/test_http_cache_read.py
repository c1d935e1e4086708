"""The read side of the HTTP caching core.

The read side: hits, 304s, request directives, stale serving, variants, collapsed
requests (RFC 9111 §4, §5.2.1; RFC 9110 §13, §15.4.5; RFC 5861; RFC 9211).
"""

from __future__ import annotations

import pytest
from hishel._core._headers import Headers as HishelHeaders
from hishel._core._spec import vary_headers_match
from hishel._core.models import Entry as HishelEntry
from hishel._core.models import Request as HishelRequest
from hishel._core.models import Response as HishelResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.web._http_cache_core import (
    CacheRequest,
    ReadAction,
    decide_collapsed,
    decide_on_error,
    decide_read,
    decide_store,
    plan_request,
)
from perfprim.web._http_cache_dates import format_http_date
from perfprim.web._http_cache_keys import parse_vary, vary_digest
from perfprim.web._http_cache_policy import HttpCachePolicy
from perfprim.web._http_cache_validators import body_etag

from .http_cache_support import (
    T0,
    FakeCache,
    Outcome,
    cache_status_params,
    header,
    names,
    read,
    request,
    serve,
)

DEFAULT = HttpCachePolicy()


def app_with(
    fields: dict[str, str], body: bytes = b"hello", status: int = 200
):  # -> App, list of requests seen
    """An application answering every request the same way, recording what it saw."""
    seen: list[CacheRequest] = []

    def app(req: CacheRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        seen.append(req)
        return status, list(fields.items()), body

    return app, seen


def primed(
    fields: dict[str, str], policy: HttpCachePolicy = DEFAULT, **request_kwargs: object
) -> tuple[FakeCache, object]:
    """A cache holding the app's answer to one GET, and that app."""
    cache = FakeCache()
    app, _ = app_with(fields)
    first = serve(cache, request(**request_kwargs), app, policy)  # type: ignore[arg-type]
    assert first.stored is not None
    assert first.stored.entry is not None, first.stored.refusal
    return cache, app


def test_hit_carries_age_and_cache_status() -> None:
    """A fresh hit carries Age and Cache-Status.

    A fresh hit is served without calling the app, with Age (§5.1) and
    ``Cache-Status: perfprim; hit; ttl=N`` (RFC 9211).
    """
    cache, app = primed({"cache-control": "max-age=60", "content-type": "text/plain"})
    cache.now = T0 + 12.7
    out = serve(cache, request(), app)  # type: ignore[arg-type]
    assert (200, b"hello", False) == (out.status, out.body, out.app_called)
    assert "12" == header(out.headers, "age")
    assert {"hit": True, "ttl": 47} == cache_status_params(out.headers)
    assert "text/plain" == header(out.headers, "content-type")


def test_head_is_answered_from_the_get_entry_without_body() -> None:
    """RFC 9110 §9.3.2: HEAD gets the GET's header fields and no body."""
    cache, app = primed({"cache-control": "max-age=60"})
    out = serve(cache, request("HEAD"), app)  # type: ignore[arg-type]
    assert (200, b"", False, "5") == (
        out.status,
        out.body,
        out.app_called,
        header(out.headers, "content-length"),
    )


def test_head_miss_is_forwarded_and_not_stored() -> None:
    """A HEAD miss goes to the application; its (bodiless) answer is not stored."""
    cache = FakeCache()
    app, seen = app_with({"cache-control": "max-age=60"}, body=b"")
    out = serve(cache, request("HEAD"), app)
    assert (True, "head", {}) == (
        out.app_called,
        cache_status_params(out.headers)["detail"],
        cache.data,
    )
    assert ["HEAD"] == [r.method for r in seen]


def test_not_modified_by_etag_carries_the_rfc_fields() -> None:
    """A 304 carries exactly the fields RFC 9110 §15.4.5 names.

    If-None-Match with our tag: 304 with exactly the fields RFC 9110 §15.4.5 names
    (Cache-Control, Content-Location, Date, ETag, Expires, Vary), plus Age and
    Cache-Status; no body; Last-Modified left out because there is an ETag.
    """
    fields = {
        "cache-control": "max-age=60",
        "content-type": "text/plain",
        "content-location": "/r.txt",
        "expires": format_http_date(T0 + 60),
        "vary": "accept-encoding",
        "last-modified": format_http_date(T0 - 99),
        "x-custom": "1",
    }
    cache, app = primed(fields)
    etag = body_etag(b"hello", content_type="text/plain")
    out = serve(cache, request(headers={"if-none-match": f'"zzz", W/{etag}'}), app)  # type: ignore[arg-type]
    assert (304, b"", False) == (out.status, out.body, out.app_called)
    assert [
        "cache-control",
        "content-location",
        "expires",
        "vary",
        "etag",
        "date",
        "age",
        "cache-status",
    ] == names(out.headers)
    assert etag == header(out.headers, "etag")


def test_not_modified_by_date_when_no_etag() -> None:
    """If-Modified-Since answers 304 when no ETag is stored.

    If-Modified-Since (§13.1.3) against Last-Modified; the 304 then carries
    Last-Modified (no ETag to guide the client).
    """
    policy = HttpCachePolicy(generate_etag=False)
    last_modified = format_http_date(T0 - 3600)
    cache, app = primed({"cache-control": "max-age=60", "last-modified": last_modified}, policy)
    same = serve(cache, request(headers={"if-modified-since": last_modified}), app, policy)  # type: ignore[arg-type]
    older = serve(
        cache,
        request(headers={"if-modified-since": format_http_date(T0 - 7200)}),
        app,
        policy,  # type: ignore[arg-type]
    )
    invalid = serve(cache, request(headers={"if-modified-since": "yesterday"}), app, policy)  # type: ignore[arg-type]
    assert (304, 200, 200) == (same.status, older.status, invalid.status)
    assert last_modified == header(same.headers, "last-modified")


def test_if_none_match_takes_precedence_over_if_modified_since() -> None:
    """§13.1.3: If-Modified-Since is ignored when If-None-Match is present."""
    cache, app = primed({"cache-control": "max-age=60"})
    out = serve(
        cache,
        request(headers={"if-none-match": '"other"', "if-modified-since": format_http_date(T0)}),
        app,  # type: ignore[arg-type]
    )
    assert 200 == out.status


def test_if_modified_since_without_last_modified_uses_date() -> None:
    """RFC 9111 §4.3.2: without Last-Modified the stored Date stands in."""
    policy = HttpCachePolicy(generate_etag=False)
    cache, app = primed({"cache-control": "max-age=60"}, policy)
    out = serve(cache, request(headers={"if-modified-since": format_http_date(T0)}), app, policy)  # type: ignore[arg-type]
    assert 304 == out.status


REQUEST_DIRECTIVES = [
    # (request cache-control, seconds after storing, expected (app called, fwd, detail))
    ("no-cache", 1, (True, "request", "no-cache")),
    ("max-age=0", 0, (True, "request", "max-age")),
    ("max-age=10", 5, (False, None, None)),
    ("max-age=10", 11, (True, "request", "max-age")),
    ("min-fresh=30", 20, (False, None, None)),
    ("min-fresh=30", 31, (True, "request", "min-fresh")),
    ("max-stale=30", 80, (False, None, "max-stale")),
    ("max-stale", 599, (False, None, "max-stale")),
    ("max-stale=30", 91, (True, "stale", None)),
    ("max-stale", 661, (True, "uri-miss", None)),  # kept for max-age + stale-if-error only
    ("no-store", 1, (True, "request", "no-store")),
]


@pytest.mark.parametrize(("cc", "after", "expected"), REQUEST_DIRECTIVES)
def test_request_directives(
    cc: str, after: float, expected: tuple[bool, str | None, str | None]
) -> None:
    """Request directives (RFC 9111 §5.2.1).

    RFC 9111 §5.2.1 on an entry stored with max-age=60 (kept 600 s more for
    stale-if-error, so that max-stale has something to serve).
    """
    cache, app = primed({"cache-control": "max-age=60, stale-if-error=600"})
    cache.now = T0 + after
    out = serve(cache, request(headers={"cache-control": cc}), app)  # type: ignore[arg-type]
    params = cache_status_params(out.headers)
    assert expected == (out.app_called, params.get("fwd"), params.get("detail"))


def test_request_directives_can_be_ignored() -> None:
    """``honor_request_cache_control=False``: clients cannot force calls to the app."""
    policy = HttpCachePolicy(honor_request_cache_control=False)
    cache, app = primed({"cache-control": "max-age=60"}, policy)
    out = serve(cache, request(headers={"cache-control": "no-cache, no-store"}), app, policy)  # type: ignore[arg-type]
    assert (False, True) == (out.app_called, cache_status_params(out.headers)["hit"])


@pytest.mark.parametrize(
    ("response_cc", "fwd"),
    [
        ("max-age=60, must-revalidate", "uri-miss"),  # no stale window: not even kept
        ("max-age=60, proxy-revalidate", "uri-miss"),
        ("s-maxage=60, stale-if-error=600", "stale"),  # kept for errors, not for max-stale
    ],
)
def test_max_stale_refused_when_the_response_forbids_it(response_cc: str, fwd: str) -> None:
    """§4.2.4: must-revalidate, proxy-revalidate and s-maxage forbid serving stale."""
    cache, app = primed({"cache-control": response_cc})
    cache.now = T0 + 61
    out = serve(cache, request(headers={"cache-control": "max-stale=100"}), app)  # type: ignore[arg-type]
    assert (True, fwd) == (out.app_called, cache_status_params(out.headers)["fwd"])


def test_only_if_cached() -> None:
    """§5.2.1.7: a miss (or an unusable stale entry) answers 504 without calling the app."""
    cache = FakeCache()
    app, seen = app_with({"cache-control": "max-age=60"})
    miss = serve(cache, request(headers={"cache-control": "only-if-cached"}), app)
    serve(cache, request(), app)
    hit = serve(cache, request(headers={"cache-control": "only-if-cached"}), app)
    cache.now = T0 + 61
    stale = serve(cache, request(headers={"cache-control": "only-if-cached"}), app)
    assert (504, 200, 504) == (miss.status, hit.status, stale.status)
    assert 1 == len(seen)
    assert {"detail": "only-if-cached"} == cache_status_params(miss.headers)


def test_authorization() -> None:
    """Requests with Authorization and shareable entries (§3.5).

    §3.5: a request with Authorization is not answered from an entry stored without
    public/s-maxage/must-revalidate; with public it is.
    """
    cache, app = primed({"cache-control": "max-age=60"})
    authorized = serve(cache, request(headers={"authorization": "Bearer b"}), app)  # type: ignore[arg-type]
    assert (True, "authorization") == (
        authorized.app_called,
        cache_status_params(authorized.headers)["detail"],
    )
    cache, app = primed({"cache-control": "public, max-age=60"})
    shared = serve(cache, request(headers={"authorization": "Bearer b"}), app)  # type: ignore[arg-type]
    assert not shared.app_called


def test_stale_while_revalidate_window() -> None:
    """stale-while-revalidate serves stale and asks for one refresh.

    RFC 5861 §3: within the window a stale entry is served and one background
    revalidation asked for; past it the request is forwarded.
    """
    cache, app = primed({"cache-control": "max-age=60, stale-while-revalidate=30"})
    cache.now = T0 + 75
    inside = serve(cache, request(), app)  # type: ignore[arg-type]
    assert inside.decision is not None
    assert (False, True, 200) == (inside.app_called, inside.decision.revalidate, inside.status)
    assert {"hit": True, "ttl": -15, "detail": "stale-while-revalidate"} == cache_status_params(
        inside.headers
    )
    cache.now = T0 + 90.5  # past the window; the tier dropped the entry at T0 + 90
    outside = serve(cache, request(), app)  # type: ignore[arg-type]
    assert (True, "uri-miss") == (outside.app_called, cache_status_params(outside.headers)["fwd"])


def test_stale_past_the_window_is_forwarded_as_stale() -> None:
    """Past the SWR window but kept for errors: forwarded as stale.

    Stale and past stale-while-revalidate, but still kept for stale-if-error: forwarded
    with ``fwd=stale``, the entry ready to stand in for an error.
    """
    cache, _ = primed({"cache-control": "max-age=60, stale-while-revalidate=10, stale-if-error=60"})
    plan = plan_request(request(), DEFAULT)
    decision = decide_read(plan, cache.get(plan.key), now=T0 + 75, policy=DEFAULT)
    assert (ReadAction.FORWARD, "stale", True) == (
        decision.action,
        decision.fwd,
        decision.entry is not None,
    )


def test_revalidation_request_drops_the_clients_conditionals() -> None:
    """A background revalidation drops the client's conditionals.

    The background revalidation must get a full answer to store: the decision says
    to strip If-None-Match (the client itself still gets its 304).
    """
    cache, app = primed({"cache-control": "max-age=60, stale-while-revalidate=30"})
    cache.now = T0 + 70
    out = serve(cache, request(headers={"if-none-match": "*"}), app)  # type: ignore[arg-type]
    assert out.decision is not None
    assert (304, True, True) == (
        out.status,
        out.decision.revalidate,
        out.decision.strip_conditionals,
    )


@pytest.mark.parametrize(
    ("after", "status", "served"),
    [(61, None, True), (61, 503, True), (61, 500, True), (61, 404, False), (661, None, False)],
)
def test_stale_if_error(after: float, status: int | None, served: bool) -> None:
    """stale-if-error stands in for errors within its window.

    RFC 5861 §4: an exception or a 500/502/503/504 within the window is answered with
    the stale entry; other statuses are answers; past the window the error passes.
    """
    cache, _ = primed({"cache-control": "max-age=60, stale-if-error=600"})
    cache.now = T0 + after
    plan = plan_request(request(), DEFAULT)
    decision = read(cache, plan, DEFAULT)
    assert ReadAction.FORWARD is decision.action
    fallback = decide_on_error(plan, decision, now=cache.now, policy=DEFAULT, status=status)
    assert served == (fallback is not None)
    if fallback is not None:
        expected = {"fwd": "stale", "ttl": -1, "detail": "stale-if-error"}
        if status is not None:
            expected["fwd-status"] = status
        assert expected == cache_status_params(fallback.headers)
        assert (200, b"hello") == (fallback.status, fallback.body)


def test_no_stale_if_error_without_a_window() -> None:
    """Without stale-if-error an error is passed on, even with a stored entry."""
    cache, _ = primed({"cache-control": "max-age=60"})
    cache.now = T0 + 61
    plan = plan_request(request(), DEFAULT)
    decision = read(cache, plan, DEFAULT)
    assert None is decide_on_error(plan, decision, now=cache.now, policy=DEFAULT)


def test_variants_coexist_and_cost_two_reads() -> None:
    """§4.1: each Accept value gets its own variant; a variant hit costs two reads."""
    cache = FakeCache()

    def app(req: CacheRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        accept = req.headers.get("accept", "none")
        return 200, [("cache-control", "max-age=60"), ("vary", "Accept")], accept.encode()

    html = serve(cache, request(headers={"accept": "text/html"}), app)
    json = serve(cache, request(headers={"accept": "application/json"}), app)
    assert ("uri-miss", "vary-miss") == (
        cache_status_params(html.headers)["fwd"],
        cache_status_params(json.headers)["fwd"],
    )
    cache.reads = 0
    again = serve(cache, request(headers={"accept": " text/html "}), app)
    assert (b"text/html", False, 2) == (again.body, again.app_called, cache.reads)
    absent = serve(cache, request(), app)
    assert (b"none", True) == (absent.body, absent.app_called)


def test_variant_hit_matches_hishel_vary_matching() -> None:
    """Our variant keys agree with hishel's Vary matching.

    Where hishel's vary_headers_match says two requests match, our secondary keys agree
    (ours also forgives whitespace, so the converse is not checked).
    """
    pairs = [("text/html", "text/html"), ("a, b", "a, b"), ("a", "b"), ("a,b", "a, b")]
    for stored, incoming in pairs:
        original = HishelRequest("GET", "https://h/", HishelHeaders({"accept": stored}))
        response = HishelResponse(200, HishelHeaders({"vary": "Accept"}))
        entry = HishelEntry(id=None, request=original, response=response)  # type: ignore[arg-type]
        new = HishelRequest("GET", "https://h/", HishelHeaders({"accept": incoming}))
        vary = parse_vary("Accept")
        if vary_headers_match(new, entry):
            assert vary_digest(vary, {"accept": stored}) == vary_digest(vary, {"accept": incoming})


def test_invalidation_makes_every_variant_unreachable() -> None:
    """Invalidation makes every earlier variant unreachable.

    After a POST invalidates the URL (the index deleted), a variant stored before is
    never served again, even when a new index with the same Vary is written.
    """
    cache = FakeCache()
    version = {"n": 1}

    def app(req: CacheRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        if req.method == "POST":
            version["n"] += 1
            return 204, [], b""
        body = f"{req.headers.get('accept')} v{version['n']}".encode()
        return 200, [("cache-control", "max-age=60"), ("vary", "Accept")], body

    serve(cache, request(headers={"accept": "a"}), app)
    serve(cache, request(headers={"accept": "b"}), app)
    serve(cache, request("POST"), app)
    serve(cache, request(headers={"accept": "b"}), app)  # new index, same Vary
    old_variant = serve(cache, request(headers={"accept": "a"}), app)
    assert (b"a v2", True) == (old_variant.body, old_variant.app_called)


def test_vary_star_is_never_served() -> None:
    """§4.1: a response with Vary: * is not stored, so never served from the cache."""
    cache = FakeCache()
    app, seen = app_with({"cache-control": "max-age=60", "vary": "*"})
    serve(cache, request(), app)
    serve(cache, request(), app)
    assert 2 == len(seen)


def test_a_vary_index_where_a_variant_was_expected_is_a_miss() -> None:
    """Reading an index at the variant key (a corrupt store) forwards, never loops."""
    plan = plan_request(request(), DEFAULT)
    index = ["perfprim.vary/1", ["accept"], "e"]
    first = decide_read(plan, index, now=T0, policy=DEFAULT)
    second = decide_read(plan, index, now=T0, policy=DEFAULT, vary_index=first.vary_index)
    assert (ReadAction.LOOKUP_VARIANT, ReadAction.FORWARD, "vary-miss") == (
        first.action,
        second.action,
        second.fwd,
    )


@pytest.mark.parametrize(
    ("method", "fields", "fwd", "detail", "lookup"),
    [
        ("OPTIONS", {}, "method", None, False),
        ("POST", {}, "method", None, False),
        ("GET", {"range": "bytes=0-9"}, "request", "range", False),
        ("GET", {"if-match": '"x"'}, "request", "precondition", False),
        ("GET", {"if-unmodified-since": format_http_date(T0)}, "request", "precondition", False),
        ("get", {}, "method", None, False),  # RFC 9110 §9.1: methods are case-sensitive
        ("GET", {}, None, None, True),
    ],
)
def test_plan(
    method: str, fields: dict[str, str], fwd: str | None, detail: str | None, lookup: bool
) -> None:
    """What is looked up and what is forwarded at once.

    What is looked up: GET and HEAD, unless a Range or an origin-only precondition
    sends the request on (RFC 9111 §4.3.2).
    """
    plan = plan_request(request(method, headers=fields), DEFAULT)
    assert (fwd, detail, lookup) == (plan.fwd, plan.detail, plan.lookup)


def test_collapsed_requests_get_the_leaders_entry() -> None:
    """Collapsed requests get the leader's entry.

    A request that waited for another's forward is answered from the entry the other
    stored, with ``collapsed`` in Cache-Status; another variant is not used.
    """
    cache = FakeCache()
    plan = plan_request(request(headers={"accept": "a"}), DEFAULT)
    decision = decide_read(plan, None, now=T0, policy=DEFAULT)
    app, _ = app_with({"cache-control": "max-age=60", "vary": "accept"}, body=b"A")
    leader = serve(cache, request(headers={"accept": "a"}), app)
    assert leader.stored is not None
    assert leader.stored.entry is not None
    follower = decide_collapsed(plan, decision, leader.stored.entry, now=T0 + 1, policy=DEFAULT)
    assert follower is not None
    assert {"fwd": "uri-miss", "collapsed": True, "ttl": 59} == cache_status_params(
        follower.headers
    )
    other = plan_request(request(headers={"accept": "b"}), DEFAULT)
    assert None is decide_collapsed(other, decision, leader.stored.entry, now=T0, policy=DEFAULT)
    assert None is decide_collapsed(plan, decision, None, now=T0, policy=DEFAULT)


def test_cache_status_key_is_shown_when_configured() -> None:
    """``cache_status_key=True`` adds ``key="..."`` (RFC 9211 §2.7)."""
    policy = HttpCachePolicy(cache_status_key=True, cache_status_name="edge-1")
    cache, app = primed({"cache-control": "max-age=60"}, policy)
    out = serve(cache, request(query="b=1&a=2"), app, policy)  # type: ignore[arg-type]
    value = header(out.headers, "cache-status")
    assert value is not None
    assert value.startswith("edge-1; ")
    assert 'key="https://api.example/r?a=2&b=1"' in value


# -- a model: the entry is never served past its lifetime plus the allowed staleness --------

_RESPONSE_CC = st.tuples(
    st.integers(min_value=0, max_value=30),  # max-age
    st.none() | st.integers(min_value=0, max_value=20),  # stale-while-revalidate
    st.none() | st.integers(min_value=0, max_value=60),  # stale-if-error
    st.booleans(),  # must-revalidate
)
_ADVANCE = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0]) | st.floats(0, 40)
_REQUEST_CC = st.sampled_from(
    [None, "no-cache", "max-age=0", "max-age=30", "min-fresh=10", "max-stale=20", "max-stale"]
)


@settings(max_examples=300, deadline=None)
@given(
    _RESPONSE_CC,
    st.lists(st.tuples(_ADVANCE, _REQUEST_CC), max_size=30),
)
def test_never_served_past_lifetime_plus_allowed_staleness(
    response: tuple[int, int | None, int | None, bool],
    steps: list[tuple[float, str | None]],
) -> None:
    """Nothing is served past its lifetime plus the allowed staleness.

    With a moving fake clock and random request directives, every response served
    from the cache is within max-age, or within the staleness the response (SWR) or the
    request (max-stale, unless must-revalidate) allows; and a ``no-cache`` request
    is never answered from the cache.
    """
    max_age, swr, sie, must_revalidate = response
    cc = f"max-age={max_age}"
    if swr is not None:
        cc += f", stale-while-revalidate={swr}"
    if sie is not None:
        cc += f", stale-if-error={sie}"
    if must_revalidate:
        cc += ", must-revalidate"
    cache = FakeCache()
    stored_at: list[float] = []

    def app(req: CacheRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        stored_at.append(cache.now)
        return 200, [("cache-control", cc)], b"x"

    for advance, request_cc in steps:
        cache.now += advance
        fields = {"cache-control": request_cc} if request_cc else {}
        out: Outcome = serve(cache, request(headers=fields), app)
        if out.app_called:
            continue
        assert request_cc not in ("no-cache", "max-age=0")
        age = cache.now - stored_at[-1]
        allowed = 0.0 if must_revalidate else float(swr or 0)
        if request_cc and request_cc.startswith("max-stale") and not must_revalidate:
            allowed = max(allowed, float(request_cc.partition("=")[2] or 1e12))
        assert age <= max_age + allowed
        assert str(int(age)) == header(out.headers, "age")


@pytest.mark.parametrize(
    ("after", "action", "detail"),
    [
        (59.999, ReadAction.SERVE, None),  # fresh: lifetime > age
        (60.0, ReadAction.SERVE, "stale-while-revalidate"),  # §4.2: age == lifetime is stale
        (70.0, ReadAction.SERVE, "stale-while-revalidate"),  # staleness 10 <= 10
        (70.001, ReadAction.FORWARD, None),  # past the window (kept for stale-if-error)
    ],
)
def test_freshness_boundaries(after: float, action: ReadAction, detail: str | None) -> None:
    """Fresh, stale-while-revalidate and forward at the exact boundaries.

    RFC 9111 §4.2: ``response_is_fresh = (freshness_lifetime > current_age)``; RFC 5861
    §3: stale for at most the window's seconds.
    """
    cache, _ = primed({"cache-control": "max-age=60, stale-while-revalidate=10, stale-if-error=99"})
    plan = plan_request(request(), DEFAULT)
    decision = decide_read(plan, cache.get(plan.key), now=T0 + after, policy=DEFAULT)
    assert (action, detail) == (decision.action, decision.detail)
    assert (detail is not None) == decision.revalidate


def test_background_revalidation_of_a_variant_keeps_its_siblings() -> None:
    """A background revalidation of a variant keeps the URL's other variants.

    Serving a stale variant (SWR) hands back the vary index, so the refresh's
    store reuses the epoch.
    """
    cache = FakeCache()
    app_calls: list[str] = []

    def app(req: CacheRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        accept = req.headers.get("accept", "")
        app_calls.append(accept)
        cc = "max-age=60, stale-while-revalidate=600"
        return 200, [("cache-control", cc), ("vary", "Accept")], accept.encode()

    serve(cache, request(headers={"accept": "a"}), app)
    serve(cache, request(headers={"accept": "b"}), app)
    cache.now = T0 + 70
    plan = plan_request(request(headers={"accept": "a"}), DEFAULT)
    stale = read(cache, plan, DEFAULT)
    assert (True, True) == (stale.revalidate, stale.vary_index is not None)
    status, headers, body = app(request(headers={"accept": "a"}))  # the background call
    refreshed = decide_store(
        plan, stale, status=status, headers=headers, body=body, now=cache.now, policy=DEFAULT
    )
    cache.apply(refreshed)
    sibling = serve(cache, request(headers={"accept": "b"}), app)
    assert (False, b"b") == (sibling.app_called, sibling.body)
    assert ["a", "b", "a"] == app_calls
