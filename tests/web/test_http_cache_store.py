"""The write side of the HTTP caching core.

The write side: what is stored, for how long, what is refused and why (RFC 9111 §3,
§4.2.1, §4.2.3, §4.4; RFC 5861), and the entry's storage format.
"""

from __future__ import annotations

import base64

import pytest
from hishel._core._headers import Headers as HishelHeaders
from hishel._core._spec import get_freshness_lifetime
from hishel._core.models import Response as HishelResponse
from hypothesis import given
from hypothesis import strategies as st

from perfprim.exceptions import ConfigurationError
from perfprim.web._http_cache_core import (
    ReadAction,
    decide_read,
    decide_store,
    plan_request,
    storable,
)
from perfprim.web._http_cache_dates import format_http_date
from perfprim.web._http_cache_entry import HttpCacheEntry, VaryIndex, decode_stored
from perfprim.web._http_cache_policy import HttpCachePolicy
from perfprim.web._http_cache_validators import body_etag

from .http_cache_support import JSON, T0, cache_status_params, header, names, request

DATE = format_http_date(T0)
DEFAULT = HttpCachePolicy()


def store(
    status: int = 200,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | None = b"hello",
    *,
    method: str = "GET",
    request_headers: dict[str, str] | None = None,
    policy: HttpCachePolicy = DEFAULT,
    now: float = T0,
):  # -> StoreDecision
    """Store one response to a fresh request (no lookup found anything)."""
    plan = plan_request(request(method, headers=request_headers), policy)
    decision = decide_read(plan, None, now=now, policy=policy) if plan.lookup else None
    lines = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    return decide_store(
        plan, decision, status=status, headers=lines, body=body, now=now, policy=policy
    )


REFUSALS = [
    # (why, kwargs for store(), expected refusal)
    ("RFC 9111 §3: only GET is stored", {"method": "POST"}, "method"),
    ("HEAD answers come from GET entries", {"method": "HEAD"}, "head"),
    ("§5.2.1.5 request no-store", {"request_headers": {"cache-control": "no-store"}}, "no-store"),
    (
        "§3.2: a Range request's answer",
        {"request_headers": {"range": "bytes=0-1"}, "status": 206},
        "status",
    ),
    ("§3: 206 is never stored", {"status": 206}, "status"),
    ("§3: 304 is never stored", {"status": 304}, "status"),
    ("§5.2.2.5 no-store", {"headers": {"cache-control": "max-age=60, no-store"}}, "no-store"),
    ("§5.2.2.7 private", {"headers": {"cache-control": "max-age=60, private"}}, "private"),
    ("§5.2.2.4 no-cache", {"headers": {"cache-control": "max-age=60, no-cache"}}, "no-cache"),
    ("§4.1 Vary: *", {"headers": {"cache-control": "max-age=60", "vary": "*"}}, "vary-star"),
    (
        "Set-Cookie (policy: refuse)",
        {"headers": {"cache-control": "max-age=60", "set-cookie": "s=1"}},
        "set-cookie",
    ),
    (
        "§3.5 Authorization",
        {
            "headers": {"cache-control": "max-age=60"},
            "request_headers": {"authorization": "Bearer x"},
        },
        "authorization",
    ),
    ("no freshness, no default_ttl", {"headers": {"content-type": "text/plain"}}, "no-freshness"),
    (
        "§4.2.1 max-age=0 and no stale window",
        {"headers": {"cache-control": "max-age=0"}},
        "stale",
    ),
    (
        "§4.2.3 older than its lifetime",
        {"headers": {"cache-control": "max-age=60", "age": "61"}},
        "stale",
    ),
    (
        "§5.3 invalid Expires is in the past",
        {"headers": {"expires": "0", "date": DATE}},
        "stale",
    ),
    (
        "streaming: no body buffered",
        {"headers": {"cache-control": "max-age=60"}, "body": None},
        "streaming",
    ),
    (
        "max_body_bytes",
        {
            "headers": {"cache-control": "max-age=60"},
            "body": b"x" * 11,
            "policy": HttpCachePolicy(max_body_bytes=10),
        },
        "too-large",
    ),
    (
        "max_header_count",
        {
            "headers": [("cache-control", "max-age=60")] + [("x-a", "1")] * 3,
            "policy": HttpCachePolicy(max_header_count=3),
        },
        "too-many-headers",
    ),
    (
        "max_tags",
        {
            "headers": {"cache-control": "max-age=60", "cache-tag": "a b c"},
            "policy": HttpCachePolicy(max_tags=2),
        },
        "tags",
    ),
    (
        "max_tag_length",
        {
            "headers": {"cache-control": "max-age=60", "cache-tag": "a" * 9},
            "policy": HttpCachePolicy(max_tag_length=8),
        },
        "tags",
    ),
    (
        "status_codes",
        {
            "headers": {"cache-control": "max-age=60"},
            "status": 404,
            "policy": HttpCachePolicy(status_codes=frozenset({200})),
        },
        "status",
    ),
    (
        "§4.2.2 heuristic freshness only for heuristically cacheable codes",
        {"status": 302, "policy": HttpCachePolicy(default_ttl=60)},
        "status",
    ),
]


@pytest.mark.parametrize(("why", "kwargs", "refusal"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals(why: str, kwargs: dict[str, object], refusal: str) -> None:
    """Each refused response stores nothing and says why in Cache-Status ``detail``."""
    result = store(**kwargs)  # type: ignore[arg-type]
    assert (refusal, None, ()) == (result.refusal, result.entry, result.writes), why
    params = cache_status_params(result.headers)
    assert refusal == params["detail"]
    assert "stored" not in params


STORED = [
    # (why, kwargs, expected lifetime)
    ("§4.2.1 s-maxage first", {"headers": {"cache-control": "max-age=5, s-maxage=50"}}, 50.0),
    (
        "§4.2.1 then max-age",
        {"headers": {"cache-control": "max-age=5", "expires": format_http_date(T0 + 500)}},
        5.0,
    ),
    (
        "§4.2.1 then Expires - Date",
        {"headers": {"expires": format_http_date(T0 + 500), "date": format_http_date(T0 - 100)}},
        600.0,
    ),
    (
        "Expires without Date: Expires - now",
        {"headers": {"expires": format_http_date(T0 + 30)}},
        30.0,
    ),
    ("then default_ttl", {"policy": HttpCachePolicy(default_ttl=7)}, 7.0),
    (
        "default_ttl for a heuristic status (404)",
        {"status": 404, "policy": HttpCachePolicy(default_ttl=7)},
        7.0,
    ),
    (
        "explicit freshness: any final status (302)",
        {"status": 302, "headers": {"cache-control": "max-age=9"}},
        9.0,
    ),
    (
        "§3.5 Authorization with public",
        {
            "headers": {"cache-control": "public, max-age=5"},
            "request_headers": {"authorization": "x"},
        },
        5.0,
    ),
    (
        "§3.5 Authorization with s-maxage",
        {"headers": {"cache-control": "s-maxage=5"}, "request_headers": {"authorization": "x"}},
        5.0,
    ),
    (
        "store_authorized",
        {
            "headers": {"cache-control": "max-age=5"},
            "request_headers": {"authorization": "x"},
            "policy": HttpCachePolicy(store_authorized=True),
        },
        5.0,
    ),
    (
        "store_private",
        {
            "headers": {"cache-control": "private, max-age=5"},
            "policy": HttpCachePolicy(store_private=True),
        },
        5.0,
    ),
    (
        "max-age=0 with stale-if-error",
        {"headers": {"cache-control": "max-age=0, stale-if-error=60"}},
        0.0,
    ),
]


@pytest.mark.parametrize(("why", "kwargs", "lifetime"), STORED, ids=[s[0] for s in STORED])
def test_stored_with_lifetime(why: str, kwargs: dict[str, object], lifetime: float) -> None:
    """Freshness lifetime by RFC 9111 §4.2.1's first matching rule.

    Storable responses get the freshness lifetime of RFC 9111 §4.2.1's first rule that
    applies, and Cache-Status says ``stored``.
    """
    result = store(**kwargs)  # type: ignore[arg-type]
    assert result.entry is not None, result.refusal
    assert lifetime == result.entry.lifetime, why
    params = cache_status_params(result.headers)
    assert (True, "uri-miss") == (params["stored"], params["fwd"])


@pytest.mark.parametrize(
    "cache_control",
    ["max-age=120", "s-maxage=30, max-age=120", "max-age=0", "public, max-age=86400"],
)
def test_lifetime_agrees_with_hishel(cache_control: str) -> None:
    """Hishel's get_freshness_lifetime (shared cache) gives the same lifetime."""
    result = store(headers={"cache-control": cache_control},
                   policy=HttpCachePolicy(default_stale_if_error=1))  # fmt: skip
    hishel = HishelResponse(200, HishelHeaders({"cache-control": cache_control}))
    assert result.entry is not None
    assert get_freshness_lifetime(hishel, is_cache_shared=True) == result.entry.lifetime


def test_expires_lifetime_agrees_with_hishel() -> None:
    """Expires minus Date: hishel computes the same lifetime."""
    fields = {"expires": format_http_date(T0 + 3600), "date": format_http_date(T0)}
    result = store(headers=fields)
    assert result.entry is not None
    hishel = HishelResponse(200, HishelHeaders(fields))
    assert get_freshness_lifetime(hishel, is_cache_shared=True) == result.entry.lifetime


def test_initial_age_from_date_and_age() -> None:
    """§4.2.3: corrected initial age is max(now - Date, Age), the delay being nil here."""
    old_date = store(headers={"cache-control": "max-age=60", "date": format_http_date(T0 - 10)})
    with_age = store(
        headers={"cache-control": "max-age=60", "date": format_http_date(T0 - 10), "age": "25"}
    )
    future_date = store(headers={"cache-control": "max-age=60", "date": format_http_date(T0 + 9)})
    assert (10.0, 25.0, 0.0) == tuple(
        r.entry.initial_age if r.entry else None for r in (old_date, with_age, future_date)
    )
    assert 50 == cache_status_params(old_date.headers)["ttl"]


def test_stored_headers() -> None:
    """What is stored of the response's header fields.

    Hop-by-hop fields, Age and the tag field are not stored; Date, Content-Length and a
    generated ETag are added; the client sees the ETag but not the tags.
    """
    result = store(
        headers=[
            ("Cache-Control", "max-age=60"),
            ("Connection", "x-hop"),
            ("X-Hop", "1"),
            ("Transfer-Encoding", "chunked"),
            ("Keep-Alive", "5"),
            ("Age", "0"),
            ("Cache-Tag", "product:42, list:products"),
            ("Content-Type", "text/plain"),
        ]
    )
    entry = result.entry
    assert entry is not None
    etag = body_etag(b"hello", content_type="text/plain")
    assert ["cache-control", "content-type", "etag", "date", "content-length"] == names(
        entry.headers
    )
    assert (etag, "5", format_http_date(T0)) == (
        header(entry.headers, "etag"),
        header(entry.headers, "content-length"),
        header(entry.headers, "date"),
    )
    assert ("product:42", "list:products") == entry.tags
    assert result.writes[0].tags == entry.tags
    assert etag == header(result.headers, "etag")
    assert None is header(result.headers, "cache-tag")


def test_application_etag_and_last_modified_are_kept() -> None:
    """An application's own ETag is never replaced; Last-Modified is precomputed."""
    last_modified = format_http_date(T0 - 3600)
    result = store(
        headers={"cache-control": "max-age=60", "etag": 'W/"v7"', "last-modified": last_modified}
    )
    assert result.entry is not None
    assert ('W/"v7"', T0 - 3600) == (result.entry.etag, result.entry.last_modified)
    assert ["etag"] == [n for n in names(result.headers) if n == "etag"]


def test_generate_etag_off() -> None:
    """With ``generate_etag=False`` an entry without ETag keeps none."""
    result = store(
        headers={"cache-control": "max-age=60"}, policy=HttpCachePolicy(generate_etag=False)
    )
    assert result.entry is not None
    assert (None, None) == (result.entry.etag, header(result.headers, "etag"))


def test_set_cookie_strip() -> None:
    """``set_cookie="strip"``: stored without the cookie; this client still gets it."""
    result = store(
        headers={"cache-control": "max-age=60", "set-cookie": "s=1"},
        policy=HttpCachePolicy(set_cookie="strip"),
    )
    assert result.entry is not None
    stored, sent = header(result.entry.headers, "set-cookie"), header(result.headers, "set-cookie")
    assert (None, "s=1") == (stored, sent)


def test_qualified_private_and_no_cache_drop_their_fields() -> None:
    """§5.2.2.4/§5.2.2.7 qualified forms: the named fields are not stored, the rest is."""
    result = store(
        headers={
            "cache-control": 'max-age=60, private="x-user", no-cache="set-cookie"',
            "x-user": "alice",
            "set-cookie": "s=1",
            "x-keep": "1",
        }
    )
    assert result.entry is not None
    stored = names(result.entry.headers)
    assert (False, False, True) == ("x-user" in stored, "set-cookie" in stored, "x-keep" in stored)


STALE_WINDOWS = [
    # (cache-control, policy, expected (swr, sie, max_stale_ok))
    ("max-age=60, stale-while-revalidate=30, stale-if-error=600", DEFAULT, (30.0, 600.0, True)),
    (
        "max-age=60",
        HttpCachePolicy(default_stale_while_revalidate=5, default_stale_if_error=9),
        (5.0, 9.0, True),
    ),
    ("max-age=60, stale-while-revalidate=30, must-revalidate", DEFAULT, (0.0, 0.0, False)),
    ("max-age=60, stale-if-error=30, proxy-revalidate", DEFAULT, (0.0, 0.0, False)),
    ("s-maxage=60", HttpCachePolicy(default_stale_while_revalidate=5), (0.0, 0.0, False)),
    ("s-maxage=1, stale-while-revalidate=59", DEFAULT, (59.0, 0.0, False)),
]


@pytest.mark.parametrize(("cache_control", "policy", "expected"), STALE_WINDOWS)
def test_stale_windows(
    cache_control: str, policy: HttpCachePolicy, expected: tuple[float, float, bool]
) -> None:
    """Stale windows from the response or the policy.

    RFC 5861 windows from the response, else the policy's defaults; §4.2.4:
    must-revalidate and proxy-revalidate forbid stale serving; s-maxage implies
    proxy-revalidate for the defaults, but explicit RFC 5861 directives still apply.
    """
    result = store(headers={"cache-control": cache_control}, policy=policy)
    entry = result.entry
    assert entry is not None
    assert expected == (entry.stale_while_revalidate, entry.stale_if_error, entry.max_stale_ok)


def test_write_ttl_covers_the_stale_window_and_max_ttl() -> None:
    """A write lasts freshness plus the longer stale window, bounded by ``max_ttl``."""
    cc = {"cache-control": "max-age=60, stale-if-error=600"}
    assert 660.0 == store(headers=cc).writes[0].ttl
    assert 100.0 == store(headers=cc, policy=HttpCachePolicy(max_ttl=100)).writes[0].ttl


INVALIDATIONS = [
    ("POST", 201, {"location": "/r/7"}, ("https://api.example/r", "https://api.example/r/7")),
    (
        "PUT",
        204,
        {"content-location": "https://api.example/x?b=2&a=1"},
        ("https://api.example/r", "https://api.example/x?a=1&b=2"),
    ),
    ("DELETE", 200, {}, ("https://api.example/r",)),
    ("PATCH", 303, {"location": "https://evil.example/r"}, ("https://api.example/r",)),
    ("FROBNICATE", 200, {}, ("https://api.example/r",)),  # unknown methods are unsafe
    ("POST", 404, {"location": "/r/7"}, ()),  # §4.4: only non-error statuses
    ("POST", 500, {}, ()),
    ("OPTIONS", 200, {}, ()),  # safe
    ("GET", 200, {"location": "/r/7"}, ()),
]


@pytest.mark.parametrize(("method", "status", "fields", "deletes"), INVALIDATIONS)
def test_invalidation_targets(
    method: str, status: int, fields: dict[str, str], deletes: tuple[str, ...]
) -> None:
    """Unsafe methods invalidate their targets (RFC 9111 §4.4).

    RFC 9111 §4.4: a 2xx/3xx to an unsafe method invalidates the target and its
    same-origin Location/Content-Location; nothing is stored for it.
    """
    result = store(status, fields, method=method)
    assert deletes == result.deletes
    if method != "GET":
        assert () == result.writes


def test_storable_precheck_agrees_with_decide_store() -> None:
    """The header-only check an adapter runs before buffering gives the same refusals."""
    for why, kwargs, refusal in REFUSALS:
        if refusal in ("streaming", "too-large"):
            continue
        policy = kwargs.get("policy", DEFAULT)
        plan = plan_request(
            request(str(kwargs.get("method", "GET")), headers=kwargs.get("request_headers")),  # type: ignore[arg-type]
            policy,  # type: ignore[arg-type]
        )
        raw = kwargs.get("headers") or {}
        lines = list(raw.items()) if isinstance(raw, dict) else raw
        assert refusal == storable(
            plan,
            kwargs.get("status", 200),
            lines,
            now=T0,
            policy=policy,  # type: ignore[arg-type]
        ), why
    ok = plan_request(request(), DEFAULT)
    assert None is storable(ok, 200, [("cache-control", "max-age=1")], now=T0, policy=DEFAULT)


def test_vary_writes_the_variant_then_the_index() -> None:
    """A Vary response writes its variant, then the index.

    With Vary: the variant under primary#epoch.digest, then the index under the
    primary key; an existing index with the same names keeps its epoch.
    """
    policy = DEFAULT
    plan = plan_request(request(headers={"accept": "text/html"}), policy)
    fields = [("cache-control", "max-age=60"), ("vary", "Accept")]
    first = decide_store(plan, decide_read(plan, None, now=T0, policy=policy), status=200,
                         headers=fields, body=b"<p>", now=T0, policy=policy,
                         new_epoch=lambda: "E1")  # fmt: skip
    assert [f"{plan.key}#E1.", plan.key] == [
        first.writes[0].key[: len(plan.key) + 4],
        first.writes[1].key,
    ]
    assert VaryIndex("perfprim.vary/1", ("accept",), "E1") == decode_stored(first.writes[1].value)
    found = decide_read(plan, first.writes[1].value, now=T0, policy=policy)
    assert ReadAction.LOOKUP_VARIANT is found.action
    miss = decide_read(plan, None, now=T0, policy=policy, vary_index=found.vary_index)
    again = decide_store(plan, miss, status=200, headers=fields, body=b"<p>", now=T0, policy=policy,
                         new_epoch=lambda: "E2")  # fmt: skip
    assert "E1" == decode_stored(again.writes[1].value).epoch  # type: ignore[union-attr]


def test_conditional_miss_is_answered_after_storing() -> None:
    """A conditional miss is answered after storing.

    A miss with If-None-Match: the app is asked without it (strip_conditionals), the
    answer is stored, and the client gets a 304 if its tag matches the new entry.
    """
    policy = DEFAULT
    etag = body_etag(b"hello")
    plan = plan_request(request(headers={"if-none-match": etag}), policy)
    decision = decide_read(plan, None, now=T0, policy=policy)
    assert decision.strip_conditionals
    result = decide_store(plan, decision, status=200, headers=[("cache-control", "max-age=9")],
                          body=b"hello", now=T0, policy=policy)  # fmt: skip
    assert (304, False, True) == (result.status, result.send_body, result.entry is not None)
    assert ["cache-control", "etag", "cache-status"] == names(result.headers)


def test_memory_tier_form_is_the_object_itself() -> None:
    """What an L1 returns (the object written) decodes to itself: a hit decodes nothing."""
    result = store(headers={"cache-control": "max-age=60", "vary": "accept"})
    entry, index = result.writes[0].value, result.writes[1].value
    assert (True, True) == (decode_stored(entry) is entry, decode_stored(index) is index)
    assert (b"hello", "u") == (entry.body, entry.body_kind)  # type: ignore[union-attr]


def test_entry_round_trips_through_json() -> None:
    """Text and binary bodies survive the JSON serializer; text is stored as text."""
    for body in (b'{"a": "\xc3\xa9"}', bytes(range(256))):
        result = store(headers={"cache-control": "max-age=60", "vary": "accept"}, body=body)
        data = result.writes[0].value
        decoded = decode_stored(JSON.loads(JSON.dumps(data)))
        assert result.entry == decoded
        assert ("u" if body[0] == ord("{") else "b") == data[3]
    assert isinstance(_VALID, list)
    text = store(headers={"cache-control": "max-age=60"}, body=b"plain").writes[0].value
    assert "plain" == text[4]
    binary = store(headers={"cache-control": "max-age=60"}, body=b"\xff").writes[0].value
    assert base64.b64encode(b"\xff").decode() == binary[4]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=17) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=40,
)


@given(_JSON)
def test_decode_stored_never_raises(value: object) -> None:
    """Decoding any stored value never raises.

    Whatever a tier returns (foreign values, old formats, junk), decoding gives an
    entry, an index or None; never an exception.
    """
    assert decode_stored(value) is None or isinstance(
        decode_stored(value), (HttpCacheEntry, VaryIndex)
    )


_SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
_VALID = JSON.loads(
    JSON.dumps(store(headers={"cache-control": "max-age=60", "vary": "accept"}).writes[0].value)
)


@given(st.integers(min_value=1, max_value=16), _SCALAR | st.lists(_SCALAR, max_size=3))
def test_decode_stored_rejects_malformed_entries(position: int, junk: object) -> None:
    """A malformed entry is a miss, never an error.

    A valid entry's data form with any one field replaced by junk decodes to an entry
    or to None (a miss), never raises.
    """
    data = list(_VALID)
    data[position] = junk
    decoded = decode_stored(data)
    assert decoded is None or isinstance(decoded, HttpCacheEntry)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"default_ttl": 0}, "default_ttl"),
        ({"max_ttl": -1}, "max_ttl"),
        ({"default_stale_if_error": -1}, "default_stale_if_error"),
        ({"status_codes": frozenset({304})}, "status_codes"),
        ({"status_codes": frozenset({"200"})}, "status_codes"),
        ({"set_cookie": "keep"}, "set_cookie"),
        ({"max_body_bytes": -1}, "max_body_bytes"),
        ({"tag_header": "cache tag"}, "tag_header"),
        ({"cache_status_name": ""}, "cache_status_name"),
    ],
)
def test_policy_validation(kwargs: dict[str, object], message: str) -> None:
    """A wrong option fails at construction with a message naming it."""
    with pytest.raises(ConfigurationError, match=message):
        HttpCachePolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_accepts_timedelta_and_normalises() -> None:
    """Durations accept timedelta (converted once); the tag header name is lowercased."""
    from datetime import timedelta

    policy = HttpCachePolicy(default_ttl=timedelta(minutes=1), tag_header=" Surrogate-Key ")  # type: ignore[arg-type]
    assert (60.0, "surrogate-key", "perfprim") == (
        policy.default_ttl,
        policy.tag_header,
        policy.status_token,
    )
