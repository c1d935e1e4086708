"""The HTTP response cache's configuration: one frozen object, validated once.

Every refusal the RFC leaves to the cache's judgement is a field here, with the
RFC's behaviour as the default; ``docs/http_cache.md`` lists them as a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError
from perfprim.web._http_cache_status import check_cache_name

__all__ = ["HEURISTIC_STATUSES", "HttpCachePolicy"]

HEURISTIC_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
"""Status codes "heuristically cacheable" by default (RFC 9110 §15.1): only these get
``default_ttl`` when the response carries no explicit freshness."""

SetCookieRule = Literal["refuse", "strip", "store"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpCachePolicy:
    """What the HTTP response cache stores, serves and refuses.

    Args:
        default_ttl: Freshness lifetime in seconds for a response with no
            ``s-maxage``, ``max-age`` or ``Expires`` and a heuristically
            cacheable status (:data:`HEURISTIC_STATUSES`); ``None`` stores only
            what the response's own headers allow (RFC 9111 §4.2.2 permits
            such a heuristic).
        max_ttl: Keep no entry longer than this many seconds, whatever its
            headers say (a ``max-age=31536000`` then lives at most
            ``max_ttl``); ``None`` for no bound.
        status_codes: Store only responses with these statuses; ``None``
            follows RFC 9111 §3: any final status except 206 and 304 with
            explicit freshness, and :data:`HEURISTIC_STATUSES` with
            ``default_ttl``.
        store_private: Store responses marked ``private`` (RFC 9111 §5.2.2.7
            forbids it for a shared cache; enable only when the response
            cache is per user). The qualified form ``private="Set-Cookie"`` is
            always honoured by dropping the named fields from the stored copy.
        set_cookie: A response that sets a cookie is ``"refuse"``-d (default,
            the cookie is usually per user), stored with the ``Set-Cookie``
            lines ``"strip"``-ped (the current client still gets its cookie), or
            ``"store"``-d as is (every client then gets the same cookie).
        store_authorized: Store responses to requests with ``Authorization``
            and serve stored responses to such requests even when the
            response does not carry ``public``, ``s-maxage`` or
            ``must-revalidate`` (RFC 9111 §3.5 requires one of them). Enable
            only when the response never depends on the credentials.
        honor_request_cache_control: Act on the request's ``Cache-Control``
            (``no-cache``/``max-age=0`` call the application, ``no-store``
            bypasses, ``only-if-cached`` answers 504 on a miss,
            ``max-stale``/``min-fresh``). Disable to keep clients from forcing
            calls to the application.
        default_stale_while_revalidate: Seconds a stale entry may be served
            while one background request refreshes it, for responses without
            a ``stale-while-revalidate`` directive (RFC 5861 §3; an
            "out-of-band contract" of RFC 9111 §4.2.4). ``0`` disables.
        default_stale_if_error: Seconds a stale entry may stand in for an
            application error (exception, 500, 502, 503, 504), for responses
            without ``stale-if-error`` (RFC 5861 §4). ``0`` disables.
        generate_etag: Give a stored response without ``ETag`` a strong ETag
            from a digest of its body.
        max_body_bytes: Larger bodies are passed through, not stored.
        max_header_count: Responses with more header lines are not stored.
        store_streaming: Buffer streaming responses (up to
            ``max_body_bytes``) to store them; by default they pass through.
        tag_header: The response field carrying cache tags (``Cache-Tag:
            product:42 list:products``), stripped before the client sees it;
            ``None`` reads no tags.
        max_tags: A response with more tags is not stored (its invalidation
            would be incomplete).
        max_tag_length: A response with a longer tag is not stored.
        cache_status_name: The cache's name in ``Cache-Status`` (RFC 9211).
        cache_status_key: Show the cache key in ``Cache-Status`` (``key=``).

    Raises:
        ConfigurationError: If a value is out of range; the message names the
            option and the valid form.
    """

    default_ttl: float | None = None
    max_ttl: float | None = None
    status_codes: frozenset[int] | None = None
    store_private: bool = False
    set_cookie: SetCookieRule = "refuse"
    store_authorized: bool = False
    honor_request_cache_control: bool = True
    default_stale_while_revalidate: float = 0.0
    default_stale_if_error: float = 0.0
    generate_etag: bool = True
    max_body_bytes: int = 1_048_576
    max_header_count: int = 64
    store_streaming: bool = False
    tag_header: str | None = "cache-tag"
    max_tags: int = 64
    max_tag_length: int = 128
    cache_status_name: str = "perfprim"
    cache_status_key: bool = False
    status_token: str = field(init=False, repr=False, compare=False, default="")
    """``cache_status_name`` serialised for the field (computed once)."""

    def __post_init__(self) -> None:
        put = object.__setattr__
        if self.default_ttl is not None:
            put(self, "default_ttl", to_seconds(self.default_ttl, name="default_ttl"))
        if self.max_ttl is not None:
            put(self, "max_ttl", to_seconds(self.max_ttl, name="max_ttl"))
        for name in ("default_stale_while_revalidate", "default_stale_if_error"):
            put(self, name, to_seconds(getattr(self, name), name=name, allow_zero=True))
        if self.status_codes is not None:
            codes: frozenset[object] = frozenset(self.status_codes)
            if not all(_final_status(c) for c in codes):
                raise ConfigurationError(
                    "status_codes must be final status codes (200-599) other than 206 and 304, "
                    f"e.g. frozenset({{200, 404}}); got {sorted(map(repr, codes))}"
                )
            put(self, "status_codes", codes)
        if self.set_cookie not in ("refuse", "strip", "store"):
            raise ConfigurationError(
                f"set_cookie must be 'refuse', 'strip' or 'store', got {self.set_cookie!r}"
            )
        for name in ("max_body_bytes", "max_header_count", "max_tags", "max_tag_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"{name} must be a non-negative int, got {value!r}")
        if self.tag_header is not None:
            tag_header = self.tag_header.strip().lower()
            if not tag_header or not tag_header.isascii() or " " in tag_header:
                raise ConfigurationError(
                    f"tag_header must be a field name such as 'cache-tag', got {self.tag_header!r}"
                )
            put(self, "tag_header", tag_header)
        try:
            put(self, "status_token", check_cache_name(self.cache_status_name))
        except ValueError as exc:
            raise ConfigurationError(f"cache_status_name: {exc}, e.g. 'perfprim'") from exc


def _final_status(code: object) -> bool:
    return (
        isinstance(code, int)
        and not isinstance(code, bool)
        and 200 <= code <= 599
        and code not in (206, 304)
    )
