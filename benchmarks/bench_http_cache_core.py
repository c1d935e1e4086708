"""The HTTP response cache's pure decisions: ns per decision, against hishel's RFC 9111 core.

What is timed is what an adapter runs per request besides moving bytes and
talking to the cache: header folding, the plan (primary key, request
``Cache-Control``), decoding the stored data form, freshness, validators,
``Age`` and ``Cache-Status``. The request carries 10 header lines as an ASGI
server hands them over (bytes pairs).

Groups:
- "http cache: fresh hit decision": ``plan_request`` + ``decide_read`` on the
  stored data form of a 1 KiB response, against hishel's sans-I/O
  ``IdleClient.next`` choosing the same stored response (hishel 2's core: it
  re-parses the stored response's headers on every lookup).
- "http cache: store decision": ``decide_store`` of a 1 KiB cacheable
  response (ETag digest included), against hishel's ``CacheMiss.next``.
- "http cache: 304 decision", "http cache: variant hit decision (two reads)",
  "http cache: request with Cache-Control": perfprim alone, for the ns figure
  (hishel is a client cache and answers no 304s; its Vary matching is a
  per-entry scan).

The end-to-end budget of issue 13 (an L1 hit through the middleware <= 0.5x
the cheapest anchor's hit: fastapi-cache2, cashews) is measured with the
adapters; these figures are the core's share of it.
"""

from __future__ import annotations

import time
import uuid

import pytest
from hishel._core._headers import Headers as HishelHeaders
from hishel._core._spec import CacheMiss, IdleClient
from hishel._core.models import Entry as HishelEntry
from hishel._core.models import Request as HishelRequest
from hishel._core.models import Response as HishelResponse

from perfprim.cache import JsonSerializer
from perfprim.web._http_cache_core import (
    AsgiHeaders,
    CacheRequest,
    ReadAction,
    decide_read,
    decide_store,
    plan_request,
)
from perfprim.web._http_cache_dates import format_http_date
from perfprim.web._http_cache_policy import HttpCachePolicy

T0 = 1_780_000_000.0
BODY = b'{"id": 42, "name": "' + b"x" * 1000 + b'"}'
POLICY = HttpCachePolicy()
REQUEST_LINES = [
    (b"host", b"api.example"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) bench/1.0"),
    (b"accept", b"application/json"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"accept-language", b"en-GB,en;q=0.9"),
    (b"connection", b"keep-alive"),
    (b"x-request-id", b"4bf92f3577b34da6a3ce929d0e0e4736"),
    (b"sec-fetch-mode", b"cors"),
    (b"sec-fetch-site", b"same-origin"),
    (b"referer", b"https://api.example/"),
]
RESPONSE_LINES = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"public, max-age=60"),
    (b"date", format_http_date(T0).encode()),
    (b"content-length", str(len(BODY)).encode()),
    (b"x-app", b"bench"),
]


def _request(extra: list[tuple[bytes, bytes]] = ()) -> CacheRequest:  # type: ignore[assignment]
    # what an ASGI adapter builds per request: the server's lines, decoded lazily
    headers = AsgiHeaders([*REQUEST_LINES, *extra])
    return CacheRequest("GET", "https", "api.example", "/items/42", "b=2&a=1", headers)


def _stored(lines: list[tuple[bytes, bytes]] = RESPONSE_LINES, request_lines=()) -> object:  # type: ignore[assignment]
    plan = plan_request(_request(list(request_lines)), POLICY)
    decision = decide_read(plan, None, now=T0, policy=POLICY)
    result = decide_store(
        plan, decision, status=200, headers=lines, body=BODY, now=T0, policy=POLICY
    )
    assert result.entry is not None
    return result.writes[0].value


DATA = _stored()  # what the memory tier (L1) returns: the entry object itself
REDIS_FORM = JsonSerializer().loads(JsonSerializer().dumps(DATA))  # what Redis (L2) returns


def perfprim_hit() -> ReadAction:
    plan = plan_request(_request(), POLICY)
    return decide_read(plan, DATA, now=T0 + 5, policy=POLICY).action


def perfprim_hit_from_redis_form() -> ReadAction:
    plan = plan_request(_request(), POLICY)
    return decide_read(plan, REDIS_FORM, now=T0 + 5, policy=POLICY).action


def _hishel_state() -> tuple[IdleClient, HishelRequest, list[HishelEntry]]:
    headers = {k.decode(): v.decode() for k, v in REQUEST_LINES}
    request = HishelRequest("GET", "https://api.example/items/42?b=2&a=1", HishelHeaders(headers))
    fields = {k.decode(): v.decode() for k, v in RESPONSE_LINES}
    fields["date"] = format_http_date(time.time())  # hishel reads the wall clock for the age
    response = HishelResponse(200, HishelHeaders(fields))
    entry = HishelEntry(id=uuid.uuid4(), request=request, response=response)
    return IdleClient(options={}), request, [entry]


def test_fresh_hit_perfprim(compare) -> None:
    assert ReadAction.SERVE is perfprim_hit()
    compare("http cache: fresh hit decision", "perfprim", perfprim_hit)


def test_fresh_hit_from_redis_form_perfprim(compare) -> None:
    assert ReadAction.SERVE is perfprim_hit_from_redis_form()
    compare(
        "http cache: fresh hit decision, JSON form (L2)", "perfprim", perfprim_hit_from_redis_form
    )


def test_fresh_hit_hishel(compare) -> None:
    client, _, entries = _hishel_state()
    headers = {k.decode(): v.decode() for k, v in REQUEST_LINES}

    def hishel_hit() -> object:
        # the same work per request as ours: the request is built from the server's lines
        request = HishelRequest(
            "GET", "https://api.example/items/42?b=2&a=1", HishelHeaders(dict(headers))
        )
        return client.next(request, entries)

    assert "FromCache" == type(hishel_hit()).__name__
    compare("http cache: fresh hit decision", "hishel", hishel_hit)


def perfprim_store() -> object:
    plan = plan_request(_request(), POLICY)
    decision = decide_read(plan, None, now=T0, policy=POLICY)
    return decide_store(
        plan, decision, status=200, headers=RESPONSE_LINES, body=BODY, now=T0, policy=POLICY
    ).entry


def test_store_perfprim(compare) -> None:
    assert perfprim_store() is not None
    compare("http cache: store decision", "perfprim", perfprim_store)


def test_store_hishel(compare) -> None:
    headers = {k.decode(): v.decode() for k, v in REQUEST_LINES}
    response_headers = {k.decode(): v.decode() for k, v in RESPONSE_LINES}

    def hishel_store() -> object:
        request = HishelRequest(
            "GET", "https://api.example/items/42?b=2&a=1", HishelHeaders(dict(headers))
        )
        response = HishelResponse(200, HishelHeaders(dict(response_headers)))
        return CacheMiss(request=request, options={}).next(response)

    assert "StoreAndUse" == type(hishel_store()).__name__
    compare("http cache: store decision", "hishel", hishel_store)


def test_not_modified_perfprim(compare) -> None:
    extra = [(b"if-none-match", DATA.etag.encode())]  # type: ignore[union-attr]

    def decide() -> ReadAction:
        plan = plan_request(_request(extra), POLICY)
        return decide_read(plan, DATA, now=T0 + 5, policy=POLICY).action

    assert ReadAction.NOT_MODIFIED is decide()
    compare("http cache: 304 decision", "perfprim", decide)


def test_variant_hit_perfprim(compare) -> None:
    lines = [*RESPONSE_LINES, (b"vary", b"Accept-Encoding, Accept")]
    plan = plan_request(_request(), POLICY)
    result = decide_store(
        plan,
        decide_read(plan, None, now=T0, policy=POLICY),
        status=200,
        headers=lines,
        body=BODY,
        now=T0,
        policy=POLICY,
    )
    store = {w.key: w.value for w in result.writes}

    def decide() -> ReadAction:
        plan = plan_request(_request(), POLICY)
        first = decide_read(plan, store.get(plan.key), now=T0 + 5, policy=POLICY)
        return decide_read(
            plan, store.get(first.key), now=T0 + 5, policy=POLICY, vary_index=first.vary_index
        ).action

    assert ReadAction.SERVE is decide()
    compare("http cache: variant hit decision (two reads)", "perfprim", decide)


@pytest.mark.parametrize("value", [b"max-age=0", b"max-stale=30"])
def test_request_cache_control_perfprim(compare, value: bytes) -> None:
    extra = [(b"cache-control", value)]

    def decide() -> ReadAction:
        plan = plan_request(_request(extra), POLICY)
        return decide_read(plan, DATA, now=T0 + 5, policy=POLICY).action

    decide()
    compare(f"http cache: request with Cache-Control: {value.decode()}", "perfprim", decide)
