"""What the HTTP response cache stores: a response entry, or a URL's vary index.

Both are plain frozen dataclasses with a JSON-able *data form* for the
tiered cache (whose default Redis serializer is JSON), and :func:`decode_stored`
turns whatever a tier returns back into one of them, or ``None`` for anything
it does not recognise (a foreign value, an older format): a miss, never an
error.

Data form of an entry (a JSON array; the first element names the format)::

    ["perfprim.http/1", status, [name, value, name, value, ...],
     body_kind, body, stored_at, initial_age, lifetime,
     stale_while_revalidate, stale_if_error, etag, last_modified,
     flags, [vary names], variant, [tags]]

``body_kind`` is ``"u"`` when the body is valid UTF-8 (stored as the text,
no size overhead for the common text and JSON bodies) or ``"b"`` (base64).
``etag`` and ``last_modified`` may be ``null``. ``flags`` is a bit set:
``1`` = the response may answer requests carrying ``Authorization`` (RFC 9111
§3.5), ``2`` = it may be served stale when a client's ``max-stale`` asks.

Data form of a vary index (stored under the primary key when the response
has ``Vary``)::

    ["perfprim.vary/1", [vary names], epoch]
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ENTRY_FORMAT", "VARY_FORMAT", "HttpCacheEntry", "VaryIndex", "decode_stored"]

ENTRY_FORMAT = "perfprim.http/1"
VARY_FORMAT = "perfprim.vary/1"
_AUTH_OK, _STALE_OK = 1, 2
_ENTRY_FIELDS = 16


@dataclass(frozen=True, slots=True)
class HttpCacheEntry:
    """One stored response, with the figures the read path needs precomputed.

    Times are wall-clock epoch seconds (shared across processes through Redis).

    Attributes:
        status: The status code.
        headers: The stored header lines, lowercase names, latin-1 text
            values, in order, as sent on a hit (without ``Age``,
            ``Cache-Status`` and the tag field, which are per response).
        body: The body (sent for GET, not for HEAD or 304).
        stored_at: When the entry was stored (the cache's ``response_time``).
        initial_age: The response's age when stored (RFC 9111 §4.2.3
            ``corrected_initial_age``).
        lifetime: The freshness lifetime in seconds (RFC 9111 §4.2.1).
        stale_while_revalidate: Seconds after expiry it may be served while
            one background request refreshes it (RFC 5861 §3); 0 if not.
        stale_if_error: Seconds after expiry it may stand in for an error
            (RFC 5861 §4); 0 if not.
        etag: The ``ETag`` value (the application's or a generated one).
        last_modified: ``Last-Modified`` parsed, else ``Date``, else
            ``stored_at``: what ``If-Modified-Since`` is compared with
            (RFC 9111 §4.3.2).
        authorized_ok: It may answer requests with ``Authorization`` (§3.5).
        max_stale_ok: A client's ``max-stale`` may have it served stale (no
            ``must-revalidate``, ``proxy-revalidate`` or ``s-maxage``; §4.2.4).
        vary: The normalised ``Vary`` field names.
        variant: The digest of the storing request's values for ``vary``
            (:func:`~perfprim.web._http_cache_keys.vary_digest`); ``""``
            without ``Vary``.
        tags: The cache tags.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stored_at: float
    initial_age: float
    lifetime: float
    stale_while_revalidate: float
    stale_if_error: float
    etag: str | None
    last_modified: float | None
    authorized_ok: bool
    max_stale_ok: bool
    vary: tuple[str, ...] = ()
    variant: str = ""
    tags: tuple[str, ...] = ()

    def age(self, now: float) -> float:
        """``current_age`` at ``now`` (RFC 9111 §4.2.3): initial age plus resident time."""
        resident = now - self.stored_at
        return self.initial_age + (resident if resident > 0.0 else 0.0)

    def ttl(self, now: float) -> float:
        """Remaining freshness at ``now`` in seconds; negative once stale."""
        return self.lifetime - self.age(now)

    def retention(self, now: float) -> float:
        """How long a tier should keep it from ``now``: freshness plus the longer stale window."""
        return self.ttl(now) + max(self.stale_while_revalidate, self.stale_if_error)

    def to_data(self) -> list[object]:
        """The JSON-able data form (see the module docstring)."""
        try:
            body_kind, body = "u", self.body.decode("utf-8")
        except UnicodeDecodeError:
            body_kind, body = "b", base64.b64encode(self.body).decode("ascii")
        flat: list[str] = []
        for name, value in self.headers:
            flat.append(name)
            flat.append(value)
        flags = (_AUTH_OK if self.authorized_ok else 0) | (_STALE_OK if self.max_stale_ok else 0)
        return [
            ENTRY_FORMAT,
            self.status,
            flat,
            body_kind,
            body,
            self.stored_at,
            self.initial_age,
            self.lifetime,
            self.stale_while_revalidate,
            self.stale_if_error,
            self.etag,
            self.last_modified,
            flags,
            list(self.vary),
            self.variant,
            list(self.tags),
        ]


@dataclass(frozen=True, slots=True)
class VaryIndex:
    """What the primary key holds when the URL's responses vary.

    Attributes:
        vary: The normalised ``Vary`` field names the variants are keyed by.
        epoch: A token renewed whenever the index is created afresh, part of
            every variant key: after the URL is invalidated (the index
            deleted), variants stored before are never reached again.
    """

    vary: tuple[str, ...]
    epoch: str

    def to_data(self) -> list[object]:
        """The JSON-able data form (see the module docstring)."""
        return [VARY_FORMAT, list(self.vary), self.epoch]


def decode_stored(value: object) -> HttpCacheEntry | VaryIndex | None:
    """Turn a value read from the cache back into an entry or an index.

    Accepts the data form (a list, or a tuple) and the objects themselves;
    anything else, including a malformed data form, gives ``None`` (a miss).

    Args:
        value: What ``cache.get`` returned (``None`` on a miss).

    Returns:
        The entry, the vary index, or ``None``.
    """
    if isinstance(value, (list, tuple)):
        try:
            if len(value) == _ENTRY_FIELDS and value[0] == ENTRY_FORMAT:
                return _entry(value)
            if len(value) == 3 and value[0] == VARY_FORMAT:
                return _vary_index(value)
        except (TypeError, ValueError, AttributeError, OverflowError, binascii.Error):
            return None
        return None
    if isinstance(value, (HttpCacheEntry, VaryIndex)):
        return value
    return None


def _vary_index(data: Sequence[Any]) -> VaryIndex:
    _, vary, epoch = data
    if type(epoch) is not str or not all(type(n) is str for n in vary):
        raise TypeError("a vary index holds str names and a str epoch")
    return VaryIndex(tuple(vary), epoch)


def _entry(data: Sequence[Any]) -> HttpCacheEntry:
    _, status, flat, body_kind, body, stored_at, initial_age, lifetime, swr, sie = data[:10]
    etag, last_modified, flags, vary, variant, tags = data[10:]
    if body_kind == "u":
        raw = body.encode("utf-8")
    elif body_kind == "b":
        raw = base64.b64decode(body, validate=True)
    else:
        raise ValueError("unknown body kind")
    if len(flat) % 2:
        raise ValueError("header names and values come in pairs")
    it = iter(flat)
    headers = tuple(zip(it, it, strict=True))
    for name, value in headers:
        if type(name) is not str or type(value) is not str:
            raise TypeError("header names and values must be str")
    if (etag is not None and type(etag) is not str) or type(variant) is not str:
        raise TypeError("etag and variant must be str")
    return HttpCacheEntry(
        status=int(status),
        headers=headers,
        body=raw,
        stored_at=float(stored_at),
        initial_age=float(initial_age),
        lifetime=float(lifetime),
        stale_while_revalidate=float(swr),
        stale_if_error=float(sie),
        etag=etag,
        last_modified=None if last_modified is None else float(last_modified),
        authorized_ok=bool(int(flags) & _AUTH_OK),
        max_stale_ok=bool(int(flags) & _STALE_OK),
        vary=tuple(str(n) for n in vary),
        variant=variant,
        tags=tuple(str(t) for t in tags),
    )
