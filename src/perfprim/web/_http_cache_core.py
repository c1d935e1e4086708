"""The HTTP response cache's decisions, as pure functions over plain data (RFC 9111).

No I/O, no framework, no cache calls: the ASGI, WSGI and Django adapters
translate a request into a :class:`CacheRequest`, ask these functions what to
do, and carry it out. Time is an argument (``now``, wall-clock epoch seconds
from the adapter's injectable clock).

The flow an adapter runs (at most two cache reads on a hit)::

    plan = plan_request(request, policy)
    decision = None
    if plan.lookup:
        decision = decide_read(plan, cache.get(plan.key), now=now, policy=policy)
        if decision.action is ReadAction.LOOKUP_VARIANT:           # the URL varies
            decision = decide_read(plan, cache.get(decision.key), now=now,
                                   policy=policy, vary_index=decision.vary_index)
    if decision is not None and decision.action is not ReadAction.FORWARD:
        send(decision.status, decision.headers, decision.body)    # hit, 304, 504
        if decision.revalidate:                                   # stale-while-revalidate
            start_background(call_app_then(decide_store, plan, decision))
    else:
        # forward to the application (without If-None-Match/If-Modified-Since
        # when decision.strip_conditionals), buffering the body when storable()
        try:
            status, headers, body = call_app(...)
        except Exception:
            fallback = decide_on_error(plan, decision, now=now, policy=policy)
            ...  # send the fallback, or re-raise when it is None
        if status in (500, 502, 503, 504):
            fallback = decide_on_error(plan, decision, now=now, policy=policy,
                                       status=status)
            ...  # send the fallback when it is not None
        result = decide_store(plan, decision, status=status, headers=headers,
                              body=body, now=now, policy=policy)
        for write in result.writes:
            cache.set(write.key, write.value, ttl=write.ttl, tags=write.tags)
        for key in result.deletes:
            cache.delete(key)
        send(result.status, result.headers, body if result.send_body else b"")
"""

from __future__ import annotations

import enum
import math
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple

from perfprim.web._http_cache_dates import format_http_date, parse_http_date
from perfprim.web._http_cache_directives import (
    EMPTY_DIRECTIVES,
    CacheDirectives,
    parse_cache_control,
)
from perfprim.web._http_cache_entry import VARY_FORMAT, HttpCacheEntry, VaryIndex, decode_stored
from perfprim.web._http_cache_keys import (
    parse_vary,
    primary_key,
    same_origin_key,
    variant_key,
    vary_digest,
)
from perfprim.web._http_cache_policy import HEURISTIC_STATUSES, HttpCachePolicy
from perfprim.web._http_cache_status import cache_status
from perfprim.web._http_cache_validators import body_etag, modified_since, none_match

__all__ = [
    "AsgiHeaders",
    "CacheRequest",
    "CacheWrite",
    "HeaderPairs",
    "Headers",
    "ReadAction",
    "ReadDecision",
    "RequestPlan",
    "StoreDecision",
    "collect_headers",
    "decide_collapsed",
    "decide_on_error",
    "decide_read",
    "decide_store",
    "plan_request",
    "response_headers",
    "storable",
]

Headers = tuple[tuple[str, str], ...]
"""Header lines as ``(lowercase name, value)`` text pairs (latin-1, as WSGI has them)."""

HeaderPairs = Iterable[tuple[bytes | str, bytes | str]]
"""Header lines as a server hands them over: ASGI bytes pairs or WSGI/Django text pairs."""

_LOOKED_UP = frozenset({"GET", "HEAD"})
_SAFE_UNCACHED = frozenset({"OPTIONS", "TRACE"})  # safe, but never answered from the cache
# Request fields that send a GET to the application: the cache makes no partial responses,
# and these preconditions are the origin's to evaluate (RFC 9111 §4.3.2).
_ORIGIN_ONLY = (
    ("range", "range"),
    ("if-match", "precondition"),
    ("if-unmodified-since", "precondition"),
)
_SERVER_ERRORS = frozenset({500, 502, 503, 504})  # RFC 5861 §4: what "an error" is
# Fields a 304 carries (RFC 9110 §15.4.5); Last-Modified only without an ETag.
_NOT_MODIFIED_FIELDS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "vary"}
)
# Never stored (RFC 9111 §3.1: hop-by-hop fields; Age and Cache-Status are per response).
_UNSTORED_FIELDS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authentication-info",
        "age",
    }
)


def collect_headers(pairs: HeaderPairs) -> dict[str, str]:
    """Fold header lines into a mapping: lowercase name to value, repeated lines joined.

    Bytes are decoded as latin-1 (lossless; what WSGI does). Repeated lines
    are joined with ``", "`` (RFC 9110 §5.3), ``Cookie`` lines with ``"; "``.

    >>> collect_headers([(b"Accept", b"a"), ("accept", "b"), (b"cookie", b"x"), ("Cookie", "y")])
    {'accept': 'a, b', 'cookie': 'x; y'}
    """
    out: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name = (raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name).lower()
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
        previous = out.get(name)
        if previous is None:
            out[name] = value
        else:
            out[name] = f"{previous}{'; ' if name == 'cookie' else ', '}{value}"
    return out


class AsgiHeaders(Mapping[str, str]):
    """Request fields as an ASGI server hands them over, decoded only when read.

    ASGI gives lowercase ``bytes`` names; a request has a dozen or more lines
    and the cache reads about seven of them, so folding them lazily costs a
    C-level ``dict()`` plus one decode per field read, instead of two decodes
    and a ``lower()`` per line (:func:`collect_headers`). Repeated lines are
    joined as :func:`collect_headers` joins them.

    >>> h = AsgiHeaders([(b"accept", b"a"), (b"accept", b"b"), (b"cache-control", b"no-cache")])
    >>> h.get("accept"), "cache-control" in h, h.get("range")
    ('a, b', True, None)
    """

    __slots__ = ("_raw",)

    def __init__(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        lines = pairs if isinstance(pairs, list) else list(pairs)
        raw: dict[bytes, bytes] = dict(lines)
        if len(raw) != len(lines):  # repeated names: join them in order
            raw = {}
            for name, value in lines:
                previous = raw.get(name)
                if previous is None:
                    raw[name] = value
                else:
                    raw[name] = previous + (b"; " if name == b"cookie" else b", ") + value
        self._raw = raw

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The field's value, or ``default``."""
        value = self._raw.get(key.encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    def __getitem__(self, key: str) -> str:
        return self._raw[key.encode("latin-1")].decode("latin-1")

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.encode("latin-1") in self._raw

    def __iter__(self) -> Iterator[str]:
        return (name.decode("latin-1") for name in self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return f"AsgiHeaders({dict(self.items())!r})"


def response_headers(pairs: HeaderPairs) -> Headers:
    """Header lines as :data:`Headers`: lowercase text names, text values, order kept.

    >>> response_headers([(b"Content-Type", b"text/plain"), ("ETag", '"x"')])
    (('content-type', 'text/plain'), ('etag', '"x"'))
    """
    return tuple(
        (
            (n.decode("latin-1") if isinstance(n, bytes) else n).lower(),
            v.decode("latin-1") if isinstance(v, bytes) else v,
        )
        for n, v in pairs
    )


class CacheRequest(NamedTuple):
    """A request as the cache sees it.

    Attributes:
        method: The method, case-sensitive (RFC 9110 §9.1): ``GET``, ``HEAD``...
        scheme: ``http`` or ``https``.
        host: The ``Host`` value (or server name), port included if any.
        path: The path as received, still percent-encoded.
        query: The query string without ``?``, as received.
        headers: The request fields (:func:`collect_headers`).
    """

    method: str
    scheme: str
    host: str
    path: str
    query: str
    headers: Mapping[str, str]

    @classmethod
    def build(
        cls,
        method: str,
        *,
        scheme: str,
        host: str,
        path: str,
        query: str = "",
        headers: HeaderPairs = (),
    ) -> CacheRequest:
        """Build a request from header pairs as a server hands them over."""
        return cls(method, scheme, host, path, query, collect_headers(headers))


class RequestPlan(NamedTuple):
    """What the cache will do with a request before any read (:func:`plan_request`).

    Attributes:
        request: The request.
        key: The primary key (:func:`~perfprim.web._http_cache_keys.primary_key`).
        directives: The request's ``Cache-Control`` (empty when absent or ignored).
        lookup: Read the cache (GET and HEAD, unless the request forbids it).
        may_store: The response may be stored, as far as the request goes.
        invalidates: An unsafe method: a 2xx/3xx answer invalidates (RFC 9111 §4.4).
        head: A HEAD request: answered without a body.
        authorized: The request carries ``Authorization``.
        fwd: The ``Cache-Status`` ``fwd`` reason when there is no lookup.
        detail: Why, when there is no lookup or no storing.
    """

    request: CacheRequest
    key: str
    directives: CacheDirectives
    lookup: bool
    may_store: bool
    invalidates: bool
    head: bool
    authorized: bool
    fwd: str | None
    detail: str | None


_plan = RequestPlan._make  # positional, without keyword handling: the per-request path


class ReadAction(enum.Enum):
    """What the adapter does after a read (:attr:`ReadDecision.action`)."""

    SERVE = "serve"
    """Send ``status``, ``headers``, ``body`` (the stored response; no body for HEAD)."""
    NOT_MODIFIED = "not-modified"
    """Send the 304 in ``status``/``headers`` (RFC 9110 §15.4.5)."""
    GATEWAY_TIMEOUT = "gateway-timeout"
    """Send the 504 in ``status``/``headers``: ``only-if-cached`` and nothing usable."""
    LOOKUP_VARIANT = "lookup-variant"
    """Read ``key`` and call :func:`decide_read` again with ``vary_index``."""
    FORWARD = "forward"
    """Call the application, then :func:`decide_store` (or :func:`decide_on_error`)."""


class ReadDecision(NamedTuple):
    """The outcome of :func:`decide_read`.

    Attributes:
        action: What to do.
        status: The status to send (SERVE, NOT_MODIFIED, GATEWAY_TIMEOUT).
        headers: The complete header lines to send (with ``Age`` and ``Cache-Status``).
        body: The body to send (``b""`` for HEAD, 304 and 504).
        revalidate: Also refresh the entry with one background request
            (stale-while-revalidate); its answer goes through :func:`decide_store`.
        entry: The entry served, or for FORWARD the stored entry that may
            stand in for an error (:func:`decide_on_error`).
        key: LOOKUP_VARIANT: the variant key to read next.
        vary_index: The URL's vary index, when it has one (a background
            revalidation's :func:`decide_store` reuses its epoch).
        fwd: FORWARD: the ``Cache-Status`` ``fwd`` reason.
        detail: Why (``Cache-Status`` ``detail``), if there is more to say.
        strip_conditionals: FORWARD: remove ``If-None-Match`` and
            ``If-Modified-Since`` from the request the application sees, so
            that it answers in full and the answer can be stored;
            :func:`decide_store` then answers the client's condition itself.
    """

    action: ReadAction
    status: int = 0
    headers: Headers = ()
    body: bytes = b""
    revalidate: bool = False
    entry: HttpCacheEntry | None = None
    key: str | None = None
    vary_index: VaryIndex | None = None
    fwd: str | None = None
    detail: str | None = None
    strip_conditionals: bool = False


_decision = ReadDecision._make


class CacheWrite(NamedTuple):
    """One ``cache.set`` to perform.

    Attributes:
        key: The cache key.
        value: The entry or the vary index: JSON-able as it is (a NamedTuple of
            JSON types), so ``cache.set(key, value)`` works with the JSON
            serializer, and the memory tier keeps the object itself.
        ttl: Seconds to keep it (freshness plus the longer stale window, bounded
            by ``max_ttl``).
        tags: Cache tags for ``set(..., tags=)``.
    """

    key: str
    value: HttpCacheEntry | VaryIndex
    ttl: float
    tags: tuple[str, ...] = ()


class StoreDecision(NamedTuple):
    """The outcome of :func:`decide_store`: what to store, delete and send.

    Attributes:
        entry: The stored entry, or ``None``.
        refusal: Why nothing was stored (a ``Cache-Status`` detail token such
            as ``private``), ``None`` when stored.
        writes: The ``cache.set`` calls, in order (a variant before its index).
        deletes: Keys to invalidate (an unsafe method's success, RFC 9111 §4.4).
        status: The status to send (the application's, or 304).
        headers: The header lines to send (tag field stripped, generated ETag
            and ``Cache-Status`` added).
        send_body: Whether to send the body (not for HEAD or 304).
    """

    entry: HttpCacheEntry | None
    refusal: str | None
    writes: tuple[CacheWrite, ...]
    deletes: tuple[str, ...]
    status: int
    headers: Headers
    send_body: bool


# -- the request ---------------------------------------------------------------------------


def plan_request(request: CacheRequest, policy: HttpCachePolicy) -> RequestPlan:
    """Decide, before any read, whether to look up and whether the answer may be stored.

    - GET and HEAD are looked up; only GET responses are stored (HEAD is
      answered from the GET entry, RFC 9111 §4.3.5 aside).
    - ``no-store`` in the request: no lookup, nothing stored (``fwd=request``).
    - ``Range``, ``If-Match``, ``If-Unmodified-Since``: forwarded, because
      the cache does not produce partial responses and those preconditions
      are for the origin (RFC 9111 §4.3.2); a full 200 may still be stored.
    - OPTIONS and TRACE: forwarded (``fwd=method``); any other method is
      unsafe and invalidates on success (RFC 9111 §4.4).

    Args:
        request: The request.
        policy: The configuration.

    Returns:
        The plan.
    """
    headers = request.headers
    key = primary_key(request.scheme, request.host, request.path, request.query)
    raw_cc = headers.get("cache-control")
    directives = (
        parse_cache_control(raw_cc)
        if raw_cc is not None and policy.honor_request_cache_control
        else EMPTY_DIRECTIVES
    )
    method = request.method
    authorized = "authorization" in headers
    if method in _LOOKED_UP:
        head = method == "HEAD"
        if directives.no_store:
            return RequestPlan(
                request, key, directives, False, False, False, head, authorized, "request",
                "no-store",
            )  # fmt: skip
        for field, detail in _ORIGIN_ONLY:
            if field in headers:
                return RequestPlan(
                    request, key, directives, False, not head, False, head, authorized,
                    "request", detail,
                )  # fmt: skip
        return _plan((request, key, directives, True, not head, False, head, authorized, None,
                      "head" if head else None))  # fmt: skip
    return RequestPlan(
        request, key, directives, False, False, method not in _SAFE_UNCACHED, False, authorized,
        "method", None,
    )  # fmt: skip


# -- the read side -------------------------------------------------------------------------


def decide_read(
    plan: RequestPlan,
    stored: object,
    *,
    now: float,
    policy: HttpCachePolicy,
    vary_index: VaryIndex | None = None,
) -> ReadDecision:
    """Decide what to answer from what the cache returned for the plan's key.

    Call it with the value read under ``plan.key``; when it answers
    LOOKUP_VARIANT, read ``decision.key`` and call it again with
    ``vary_index=decision.vary_index``.

    Order of the rules (RFC 9111 §4 and §5.2.1, RFC 5861):

    1. nothing usable stored: FORWARD ``uri-miss`` (``vary-miss`` for a
       missing variant), or 504 for ``only-if-cached``;
    2. request with ``Authorization`` and an entry not marked shareable
       (§3.5): FORWARD ``request``;
    3. request ``no-cache``, ``max-age=0``, ``max-age`` below the age,
       ``min-fresh`` above the remaining freshness: FORWARD ``request``
       (504 with ``only-if-cached``);
    4. fresh: SERVE, or NOT_MODIFIED when ``If-None-Match`` (else
       ``If-Modified-Since``) says the client's copy is current;
    5. stale within the request's ``max-stale`` (unless the response forbade
       it): SERVE stale;
    6. stale within ``stale-while-revalidate``: SERVE stale and revalidate in
       the background;
    7. otherwise FORWARD ``stale`` (the entry kept for ``stale-if-error``),
       or 504 for ``only-if-cached``.

    Args:
        plan: From :func:`plan_request` (with ``plan.lookup`` true).
        stored: The value ``cache.get`` returned (``None`` on a miss).
        now: The current time, epoch seconds.
        policy: The configuration.
        vary_index: The vary index from the first read, on the second read.

    Returns:
        The decision.
    """
    found = decode_stored(stored)
    directives = plan.directives
    index = vary_index
    if isinstance(found, VaryIndex):
        if index is None:
            digest = vary_digest(found.vary, plan.request.headers)
            return ReadDecision(
                ReadAction.LOOKUP_VARIANT,
                key=variant_key(plan.key, found.epoch, digest),
                vary_index=found,
            )
        found = None  # an index where a variant was expected: nothing usable
    if found is None:
        fwd = "uri-miss" if index is None else "vary-miss"
        if directives.only_if_cached:
            return _gateway_timeout(plan, policy, "only-if-cached")
        return _forward(plan, fwd, None, index, None)
    entry = found
    if plan.authorized and not entry.authorized_ok and not policy.store_authorized:
        return _forward(plan, "request", "authorization", index, None)
    age = entry.age(now)
    ttl = entry.lifetime - age
    if directives is not EMPTY_DIRECTIVES:
        refused = _request_refuses(directives, age, ttl)
        if refused is not None:
            if directives.only_if_cached:
                return _gateway_timeout(plan, policy, refused)
            return _forward(plan, "request", refused, index, entry)
    if ttl > 0.0:
        return _serve(plan, entry, now=now, policy=policy, vary_index=index)
    staleness = -ttl
    max_stale = directives.max_stale
    if max_stale is not None and entry.max_stale_ok and staleness <= max_stale:
        return _serve(plan, entry, now=now, policy=policy, detail="max-stale", vary_index=index)
    if staleness <= entry.stale_while_revalidate:
        return _serve(
            plan,
            entry,
            now=now,
            policy=policy,
            detail="stale-while-revalidate",
            revalidate=True,
            vary_index=index,
        )
    if directives.only_if_cached:
        return _gateway_timeout(plan, policy, "only-if-cached")
    return _forward(plan, "stale", None, index, entry)


def _request_refuses(directives: CacheDirectives, age: float, ttl: float) -> str | None:
    """Which request directive (RFC 9111 §5.2.1) refuses the stored response, if any."""
    if directives.no_cache:
        return "no-cache"
    max_age = directives.max_age
    if max_age is not None and (max_age == 0 or age > max_age):
        return "max-age"
    min_fresh = directives.min_fresh
    if min_fresh is not None and ttl < min_fresh:
        return "min-fresh"
    return None


def decide_on_error(
    plan: RequestPlan,
    decision: ReadDecision | None,
    *,
    now: float,
    policy: HttpCachePolicy,
    status: int | None = None,
) -> ReadDecision | None:
    """After the application failed, decide whether a stored response stands in.

    RFC 5861 §4: within ``stale-if-error`` of its expiry, a stored response
    may answer instead of an error: an exception (``status=None``) or a 500,
    502, 503 or 504. Other statuses are answers, not errors.

    Args:
        plan: The request's plan.
        decision: The FORWARD decision that led to the call (``None`` when
            there was no lookup).
        now: The current time, after the failure.
        policy: The configuration.
        status: The application's status, ``None`` when it raised.

    Returns:
        A SERVE or NOT_MODIFIED decision with the stored response, or
        ``None``: pass the error on.
    """
    if decision is None or decision.action is not ReadAction.FORWARD or decision.entry is None:
        return None
    if status is not None and status not in _SERVER_ERRORS:
        return None
    entry = decision.entry
    age = entry.age(now)
    ttl = entry.lifetime - age
    if entry.stale_if_error <= 0.0 or -ttl > entry.stale_if_error:
        return None
    return _serve(
        plan,
        entry,
        now=now,
        policy=policy,
        detail="stale-if-error",
        fwd=decision.fwd,
        fwd_status=status,
        vary_index=decision.vary_index,
    )


def decide_collapsed(
    plan: RequestPlan,
    decision: ReadDecision,
    stored: object,
    *,
    now: float,
    policy: HttpCachePolicy,
) -> ReadDecision | None:
    """Answer a request that waited for another request's forward (single-flight).

    Args:
        plan: The waiting request's plan.
        decision: Its FORWARD decision.
        stored: The entry the other request stored (``StoreDecision.entry``)
            or its data form as read from the cache.
        now: The current time.
        policy: The configuration.

    Returns:
        SERVE or NOT_MODIFIED with ``Cache-Status: ...; fwd=<reason>;
        collapsed``, or ``None`` when nothing usable was stored (forward this
        request itself).
    """
    entry = decode_stored(stored)
    if not isinstance(entry, HttpCacheEntry):
        return None
    if plan.authorized and not entry.authorized_ok and not policy.store_authorized:
        return None
    if entry.vary and vary_digest(entry.vary, plan.request.headers) != entry.variant:
        return None  # the other request stored another variant
    age = entry.age(now)
    ttl = entry.lifetime - age
    if ttl <= 0.0:
        return None
    return _serve(plan, entry, now=now, policy=policy, fwd=decision.fwd, collapsed=True)


def _forward(
    plan: RequestPlan,
    fwd: str,
    detail: str | None,
    index: VaryIndex | None,
    entry: HttpCacheEntry | None,
) -> ReadDecision:
    return ReadDecision(
        ReadAction.FORWARD,
        entry=entry,
        vary_index=index,
        fwd=fwd,
        detail=detail,
        strip_conditionals=plan.may_store and _has_conditionals(plan.request.headers),
    )


def _has_conditionals(headers: Mapping[str, str]) -> bool:
    return "if-none-match" in headers or "if-modified-since" in headers


def _gateway_timeout(plan: RequestPlan, policy: HttpCachePolicy, detail: str) -> ReadDecision:
    status = cache_status(policy.status_token, detail=detail, key=_shown_key(plan, policy))
    return ReadDecision(
        ReadAction.GATEWAY_TIMEOUT,
        status=504,
        headers=(("content-length", "0"), ("cache-status", status)),
        detail=detail,
    )


def _shown_key(plan: RequestPlan, policy: HttpCachePolicy) -> str | None:
    return plan.key if policy.cache_status_key else None


def _serve(
    plan: RequestPlan,
    entry: HttpCacheEntry,
    *,
    now: float,
    policy: HttpCachePolicy,
    detail: str | None = None,
    revalidate: bool = False,
    fwd: str | None = None,
    fwd_status: int | None = None,
    collapsed: bool = False,
    vary_index: VaryIndex | None = None,
) -> ReadDecision:
    age = entry.age(now)
    ttl = entry.lifetime - age
    if fwd is None and detail is None and not policy.cache_status_key:  # the plain hit
        status_value = f"{policy.status_token}; hit; ttl={math.floor(ttl)}"
    else:
        status_value = cache_status(
            policy.status_token,
            hit=fwd is None,
            fwd=fwd,
            fwd_status=fwd_status,
            collapsed=collapsed,
            ttl=ttl,
            key=_shown_key(plan, policy),
            detail=detail,
        )
    age_value = str(int(age)) if age < 2_147_483_648 else "2147483648"
    headers = plan.request.headers
    if _not_modified(headers, entry.etag, entry.last_modified, entry.status, now):
        lines = (
            *_not_modified_headers(entry.headers, entry.etag),
            ("age", age_value),
            ("cache-status", status_value),
        )
        # positional: a NamedTuple built from a tuple skips the keyword handling
        return _decision((ReadAction.NOT_MODIFIED, 304, lines, b"", revalidate, entry,
                          None, vary_index, None, detail, revalidate))  # fmt: skip
    lines = (*entry.headers, ("age", age_value), ("cache-status", status_value))
    body = b"" if plan.head else entry.body
    strip = revalidate and _has_conditionals(headers)
    return _decision((ReadAction.SERVE, entry.status, lines, body, revalidate, entry,
                      None, vary_index, None, detail, strip))  # fmt: skip


def _not_modified(
    headers: Mapping[str, str],
    etag: str | None,
    last_modified: float | None,
    status: int,
    now: float,
) -> bool:
    """Whether the request's validators say the client's copy is current (RFC 9110 §13.2.2)."""
    if not 200 <= status < 300 or status == 206:  # RFC 9110 §13.2.1: only for a 2xx
        return False
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return none_match(if_none_match, etag)
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    return not modified_since(parse_http_date(if_modified_since, now=now), last_modified)


def _not_modified_headers(headers: Headers, etag: str | None) -> Headers:
    """The fields a 304 carries (RFC 9110 §15.4.5): Last-Modified only without an ETag."""
    keep = _NOT_MODIFIED_FIELDS if etag is not None else _NOT_MODIFIED_FIELDS | {"last-modified"}
    return tuple(line for line in headers if line[0] in keep)


# -- the write side ------------------------------------------------------------------------


def storable(
    plan: RequestPlan,
    status: int,
    headers: HeaderPairs,
    *,
    now: float,
    policy: HttpCachePolicy,
) -> str | None:
    """Whether a response could be stored, judged on its status and headers alone.

    For adapters deciding, before the body arrives, whether to buffer it:
    ``None`` means "buffer it (up to ``max_body_bytes``) and call
    :func:`decide_store`", a string is the refusal :func:`decide_store` would
    give whatever the body.

    Args:
        plan: The request's plan.
        status: The application's status.
        headers: The application's header lines.
        now: The current time.
        policy: The configuration.

    Returns:
        ``None``, or the refusal token.
    """
    lines = response_headers(headers)
    refusal = _judge(plan, status, lines, collect_headers(lines), now=now, policy=policy)[0]
    if refusal is None and policy.tag_header is not None:
        for name, value in lines:
            if name == policy.tag_header:
                refusal = _tags(value, policy)[1]
    return refusal


def decide_store(
    plan: RequestPlan,
    decision: ReadDecision | None,
    *,
    status: int,
    headers: HeaderPairs,
    body: bytes | None,
    now: float,
    policy: HttpCachePolicy,
    new_epoch: Callable[[], str] | None = None,
) -> StoreDecision:
    """Decide what to store, invalidate and send after the application answered.

    Storing follows RFC 9111 §3 with the policy's choices; the refusals, in
    the order they are checked (the first one is reported):

    ==================  ==========================================================
    refusal             when
    ==================  ==========================================================
    (plan's detail)     the request forbids it (method, ``no-store``, HEAD, Range)
    ``status``          206, 304, 1xx; or not in ``policy.status_codes``; or, with
                        no explicit freshness, not heuristically cacheable
    ``no-store``        response ``no-store`` (§5.2.2.5)
    ``private``         response ``private`` (§5.2.2.7), unless ``store_private``
    ``no-cache``        response ``no-cache`` without field names (§5.2.2.4)
    ``vary-star``       ``Vary: *`` (§4.1: never matches)
    ``set-cookie``      ``Set-Cookie`` with ``set_cookie="refuse"``
    ``authorization``   request ``Authorization`` without ``public``, ``s-maxage``
                        or ``must-revalidate`` (§3.5), unless ``store_authorized``
    ``no-freshness``    no ``s-maxage``/``max-age``/``Expires`` and no ``default_ttl``
    ``stale``           already stale, with no stale window to serve it in
    ``streaming``       ``body`` is ``None`` (not buffered)
    ``too-large``       body over ``max_body_bytes``
    ``too-many-headers``  more than ``max_header_count`` lines, or a ``Vary``
                        naming more fields than that
    ``tags``            more than ``max_tags`` tags or one over ``max_tag_length``
    ==================  ==========================================================

    Freshness lifetime (§4.2.1, first match): ``s-maxage``, ``max-age``,
    ``Expires`` minus ``Date`` (an invalid ``Expires`` is in the past),
    ``default_ttl``. Initial age (§4.2.3, simplified for a cache in the
    application's own process, where the response delay is nil):
    ``max(now - Date, Age)``, 0 without either.

    Args:
        plan: The request's plan.
        decision: The read decision (``None`` when there was no lookup).
        status: The application's status.
        headers: The application's header lines.
        body: The whole body, or ``None`` when it was not buffered (streamed).
        now: The current time (when the response was received).
        policy: The configuration.
        new_epoch: Makes a new vary-index epoch (random by default).

    Returns:
        The decision.
    """
    lines = response_headers(headers)
    fields = collect_headers(lines)
    refusal, judged = _judge(plan, status, lines, fields, now=now, policy=policy)
    tags: tuple[str, ...] = ()
    tag_header = policy.tag_header
    if tag_header is not None and tag_header in fields:
        tags, tag_refusal = _tags(fields[tag_header], policy)
        refusal = refusal or tag_refusal
        lines = tuple(line for line in lines if line[0] != tag_header)
    if refusal is None:
        if body is None:
            refusal = "streaming"
        elif len(body) > policy.max_body_bytes:
            refusal = "too-large"
    entry: HttpCacheEntry | None = None
    writes: tuple[CacheWrite, ...] = ()
    client_lines = lines
    if refusal is None and judged is not None and body is not None:
        entry = _entry(
            plan,
            lines,
            fields,
            body,
            status=status,
            judged=judged,
            tags=tags,
            now=now,
            policy=policy,
        )
        writes = _writes(
            plan, decision, entry, now=now, policy=policy, new_epoch=new_epoch or _random_epoch
        )
        if entry.etag is not None and "etag" not in fields:
            client_lines = (*lines, ("etag", entry.etag))
    deletes = _invalidations(plan, status, fields)
    fwd = (decision.fwd if decision is not None else None) or plan.fwd or "miss"
    status_value = cache_status(
        policy.status_token,
        fwd=fwd,
        fwd_status=status,
        stored=entry is not None,
        ttl=entry.ttl(now) if entry is not None else None,
        key=_shown_key(plan, policy),
        detail=refusal or (decision.detail if decision is not None else plan.detail),
    )
    send_status, send_body = status, not plan.head
    if decision is not None and decision.strip_conditionals:
        etag = entry.etag if entry is not None else fields.get("etag")
        if entry is not None:
            last_modified = entry.last_modified
        else:
            raw = fields.get("last-modified")
            last_modified = parse_http_date(raw, now=now) if raw is not None else None
        if _not_modified(plan.request.headers, etag, last_modified, status, now):
            send_status, send_body = 304, False
            client_lines = _not_modified_headers(client_lines, etag)
    return StoreDecision(
        entry=entry,
        refusal=refusal,
        writes=writes,
        deletes=deletes,
        status=send_status,
        headers=(*client_lines, ("cache-status", status_value)),
        send_body=send_body,
    )


class _Judged(NamedTuple):
    """What :func:`_judge` learned about a storable response."""

    directives: CacheDirectives
    lifetime: float
    initial_age: float
    date: float | None
    stale_while_revalidate: float
    stale_if_error: float
    drop: frozenset[str]


def _judge(
    plan: RequestPlan,
    status: int,
    lines: Headers,
    fields: Mapping[str, str],
    *,
    now: float,
    policy: HttpCachePolicy,
) -> tuple[str | None, _Judged | None]:
    """The header-only storability rules; ``(refusal, None)`` or ``(None, judged)``."""
    if not plan.may_store:
        return plan.detail or plan.fwd or "request", None
    if status < 200 or status in (206, 304) or status > 599:
        return "status", None
    directives = parse_cache_control(fields.get("cache-control"))
    if directives.no_store:
        return "no-store", None
    if directives.private and not policy.store_private:
        return "private", None
    if directives.no_cache:
        return "no-cache", None
    vary = parse_vary(fields.get("vary"))
    if vary == ("*",):
        return "vary-star", None
    if len(vary) > policy.max_header_count:  # each named field is read from every request
        return "too-many-headers", None
    drop: set[str] = set(directives.no_cache_fields)
    if not policy.store_private:
        drop.update(directives.private_fields)
    if "set-cookie" in fields and "set-cookie" not in drop:
        if policy.set_cookie == "refuse":
            return "set-cookie", None
        if policy.set_cookie == "strip":
            drop.add("set-cookie")
    if (
        plan.authorized
        and not policy.store_authorized
        and not (directives.public or directives.must_revalidate or directives.s_maxage is not None)
    ):
        return "authorization", None
    date_raw = fields.get("date")
    date = parse_http_date(date_raw, now=now) if date_raw is not None else None
    lifetime = _explicit_lifetime(directives, fields, date, now)
    allowed = policy.status_codes
    if lifetime is None:
        if policy.default_ttl is None:
            return "no-freshness", None
        if status not in (HEURISTIC_STATUSES if allowed is None else allowed):
            return "status", None
        lifetime = policy.default_ttl
    elif allowed is not None and status not in allowed:
        return "status", None
    initial_age = max(now - date, 0.0) if date is not None else 0.0
    age_raw = fields.get("age")
    if age_raw is not None:
        age_value = age_raw.strip()
        if age_value.isascii() and age_value.isdigit():
            initial_age = max(initial_age, float(min(int(age_value), 2_147_483_648)))
    if directives.must_revalidate or directives.proxy_revalidate:
        swr = sie = 0.0  # §4.2.4: an explicit directive forbids serving stale
    else:
        # s-maxage implies proxy-revalidate (§5.2.2.10), so the policy's default windows do
        # not apply to it; the response's own RFC 5861 directives still do (see the docs).
        implied = directives.s_maxage is not None
        swr = _window(directives.stale_while_revalidate, policy.default_stale_while_revalidate)
        sie = _window(directives.stale_if_error, policy.default_stale_if_error)
        if implied:
            swr = float(directives.stale_while_revalidate or 0)
            sie = float(directives.stale_if_error or 0)
    if lifetime - initial_age + max(swr, sie) <= 0.0:
        return "stale", None
    if len(lines) > policy.max_header_count:
        return "too-many-headers", None
    return None, _Judged(directives, lifetime, initial_age, date, swr, sie, frozenset(drop))


def _window(directive: int | None, default: float) -> float:
    return float(directive) if directive is not None else default


def _explicit_lifetime(
    directives: CacheDirectives,
    fields: Mapping[str, str],
    date: float | None,
    now: float,
) -> float | None:
    """§4.2.1: ``s-maxage``, then ``max-age``, then ``Expires - Date``; ``None`` if none."""
    if directives.s_maxage is not None:
        return float(directives.s_maxage)
    if directives.max_age is not None:
        return float(directives.max_age)
    expires_raw = fields.get("expires")
    if expires_raw is None:
        return None
    expires = parse_http_date(expires_raw, now=now)  # two differing lines join to an invalid date
    if expires is None:
        return 0.0  # §5.3: an invalid Expires (such as "0") is in the past
    return max(expires - (date if date is not None else now), 0.0)


def _entry(
    plan: RequestPlan,
    lines: Headers,
    fields: Mapping[str, str],
    body: bytes,
    *,
    status: int,
    judged: _Judged,
    tags: tuple[str, ...],
    now: float,
    policy: HttpCachePolicy,
) -> HttpCacheEntry:
    drop = judged.drop
    stored = [line for line in lines if line[0] not in _UNSTORED_FIELDS and line[0] not in drop]
    connection = fields.get("connection")
    if connection:  # fields named by Connection are hop-by-hop too (RFC 9110 §7.6.1)
        named = {n.strip().lower() for n in connection.split(",")}
        stored = [line for line in stored if line[0] not in named]
    etag = fields.get("etag")
    if etag is None and policy.generate_etag:
        etag = body_etag(
            body,
            content_type=fields.get("content-type", ""),
            content_encoding=fields.get("content-encoding", ""),
        )
        stored.append(("etag", etag))
    date = judged.date
    if "date" not in fields:
        stored.append(("date", format_http_date(now)))
    if "content-length" not in fields:
        stored.append(("content-length", str(len(body))))
    last_modified_raw = fields.get("last-modified")
    last_modified = parse_http_date(last_modified_raw, now=now) if last_modified_raw else None
    if last_modified is None:
        last_modified = date if date is not None else float(int(now))
    directives = judged.directives
    vary = parse_vary(fields.get("vary"))
    return HttpCacheEntry.create(
        status=status,
        headers=tuple(stored),
        body=body,
        stored_at=now,
        initial_age=judged.initial_age,
        lifetime=judged.lifetime,
        stale_while_revalidate=judged.stale_while_revalidate,
        stale_if_error=judged.stale_if_error,
        etag=etag,
        last_modified=last_modified,
        authorized_ok=directives.public
        or directives.must_revalidate
        or directives.s_maxage is not None,
        max_stale_ok=not (
            directives.must_revalidate
            or directives.proxy_revalidate
            or directives.s_maxage is not None
        ),
        vary=vary,
        variant=vary_digest(vary, plan.request.headers) if vary else "",
        tags=tags,
    )


def _writes(
    plan: RequestPlan,
    decision: ReadDecision | None,
    entry: HttpCacheEntry,
    *,
    now: float,
    policy: HttpCachePolicy,
    new_epoch: Callable[[], str],
) -> tuple[CacheWrite, ...]:
    ttl = entry.retention(now)
    if policy.max_ttl is not None and ttl > policy.max_ttl:
        ttl = policy.max_ttl
    if not entry.vary:
        return (CacheWrite(plan.key, entry, ttl, entry.tags),)
    index = decision.vary_index if decision is not None else None
    if index is None or index.vary != entry.vary:
        index = VaryIndex(VARY_FORMAT, entry.vary, new_epoch())
    key = variant_key(plan.key, index.epoch, entry.variant)
    return (
        CacheWrite(key, entry, ttl, entry.tags),
        CacheWrite(plan.key, index, ttl),
    )


def _random_epoch() -> str:
    return secrets.token_urlsafe(6)


def _tags(value: str, policy: HttpCachePolicy) -> tuple[tuple[str, ...], str | None]:
    """Split a tag field on commas and whitespace; ``(tags, "tags")`` when over the bounds."""
    tags = tuple(dict.fromkeys(value.replace(",", " ").split()))
    if len(tags) > policy.max_tags or any(len(t) > policy.max_tag_length for t in tags):
        return (), "tags"
    return tags, None


def _invalidations(plan: RequestPlan, status: int, fields: Mapping[str, str]) -> tuple[str, ...]:
    """RFC 9111 §4.4: the target, ``Location`` and ``Content-Location`` when same-origin."""
    if not plan.invalidates or not 200 <= status < 400:
        return ()
    keys = [plan.key]
    request = plan.request
    for name in ("location", "content-location"):
        reference = fields.get(name)
        if reference is not None:
            key = same_origin_key(
                reference, request.scheme, request.host, request.path, request.query
            )
            if key is not None and key not in keys:
                keys.append(key)
    return tuple(keys)
