"""What the HTTP response cache stores: a response entry, or a URL's vary index.

Both are :class:`~typing.NamedTuple` s of JSON types only, so one object serves
every tier: the memory tier keeps it as is (an L1 hit decodes nothing), and
the tiered cache's default JSON serializer writes it to Redis as a JSON array
(a tuple is an array), which :func:`decode_stored` turns back into the
object. Anything :func:`decode_stored` does not recognise (a foreign value,
an older format, a damaged one) is ``None``: a miss, never an error.

Why a NamedTuple and not a frozen dataclass: building a 17-field frozen
dataclass costs one ``object.__setattr__`` per field (about 4x a NamedTuple
here, measured in ``benchmarks/bench_http_cache_core.py``), and a dataclass is
not JSON: it would need converting on every write and every hit.

Data form of an entry (a JSON array, fields in this order)::

    ["perfprim.http/1", status, [[name, value], ...], body_kind, body_text,
     stored_at, initial_age, lifetime, stale_while_revalidate, stale_if_error,
     etag, last_modified, authorized_ok, max_stale_ok, [vary names], variant,
     [tags]]

``body_kind`` is ``"u"`` when the body is valid UTF-8 (``body_text`` is the
text: no size overhead for text and JSON bodies) or ``"b"`` (base64).
``etag`` and ``last_modified`` may be ``null``.

Data form of a vary index (stored under the primary key when the response
has ``Vary``)::

    ["perfprim.vary/1", [vary names], epoch]
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = ["ENTRY_FORMAT", "VARY_FORMAT", "HttpCacheEntry", "VaryIndex", "decode_stored"]

ENTRY_FORMAT = "perfprim.http/1"
VARY_FORMAT = "perfprim.vary/1"
_DECODE_ERRORS = (TypeError, ValueError, AttributeError, OverflowError, binascii.Error)


class HttpCacheEntry(NamedTuple):
    """One stored response, with the figures the read path needs precomputed.

    Times are wall-clock epoch seconds (shared across processes through Redis).
    Build one with :meth:`create`.

    Attributes:
        format: :data:`ENTRY_FORMAT`.
        status: The status code.
        headers: The stored header lines, lowercase names, latin-1 text
            values, in order, as sent on a hit (without ``Age``,
            ``Cache-Status`` and the tag field, which are per response).
        body_kind: ``"u"`` (``body_text`` is UTF-8 text) or ``"b"`` (base64).
        body_text: The body as text; :attr:`body` gives the bytes.
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

    format: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body_kind: str
    body_text: str
    stored_at: float
    initial_age: float
    lifetime: float
    stale_while_revalidate: float
    stale_if_error: float
    etag: str | None
    last_modified: float | None
    authorized_ok: bool
    max_stale_ok: bool
    vary: tuple[str, ...]
    variant: str
    tags: tuple[str, ...]

    @classmethod
    def create(
        cls,
        *,
        status: int,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
        stored_at: float,
        initial_age: float,
        lifetime: float,
        stale_while_revalidate: float = 0.0,
        stale_if_error: float = 0.0,
        etag: str | None = None,
        last_modified: float | None = None,
        authorized_ok: bool = False,
        max_stale_ok: bool = True,
        vary: tuple[str, ...] = (),
        variant: str = "",
        tags: tuple[str, ...] = (),
    ) -> HttpCacheEntry:
        """Build an entry from a body in bytes (stored as text when it is UTF-8)."""
        try:
            body_kind, body_text = "u", body.decode("utf-8")
        except UnicodeDecodeError:
            body_kind, body_text = "b", base64.b64encode(body).decode("ascii")
        return cls(
            ENTRY_FORMAT,
            status,
            headers,
            body_kind,
            body_text,
            stored_at,
            initial_age,
            lifetime,
            stale_while_revalidate,
            stale_if_error,
            etag,
            last_modified,
            authorized_ok,
            max_stale_ok,
            vary,
            variant,
            tags,
        )

    @property
    def body(self) -> bytes:
        """The body in bytes (encoded from :attr:`body_text` on each access)."""
        if self.body_kind == "u":
            return self.body_text.encode("utf-8")
        return base64.b64decode(self.body_text)

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


class VaryIndex(NamedTuple):
    """What the primary key holds when the URL's responses vary.

    Attributes:
        format: :data:`VARY_FORMAT`.
        vary: The normalised ``Vary`` field names the variants are keyed by.
        epoch: A token renewed whenever the index is created afresh, part of
            every variant key: after the URL is invalidated (the index
            deleted), variants stored before are never reached again.
    """

    format: str
    vary: tuple[str, ...]
    epoch: str


def decode_stored(value: object) -> HttpCacheEntry | VaryIndex | None:
    """Turn a value read from the cache back into an entry or an index.

    The objects themselves (an L1 hit) come back as they are; their JSON form
    (a list, from Redis) is checked and converted; anything else, including a
    damaged data form, gives ``None`` (a miss).

    Args:
        value: What ``cache.get`` returned (``None`` on a miss).

    Returns:
        The entry, the vary index, or ``None``.
    """
    cls = value.__class__
    if cls is HttpCacheEntry or cls is VaryIndex:
        return value  # type: ignore[return-value]  # narrowed by the class check
    if cls is not list:
        return None
    data: list[Any] = value  # type: ignore[assignment]
    try:
        if len(data) == 17 and data[0] == ENTRY_FORMAT:
            return _entry(data)
        if len(data) == 3 and data[0] == VARY_FORMAT:
            return _vary_index(data)
    except _DECODE_ERRORS:
        return None
    return None


def _vary_index(data: Sequence[Any]) -> VaryIndex:
    _, vary, epoch = data
    "".join(vary)  # raises TypeError unless every name is a str
    if epoch.__class__ is not str:
        raise TypeError("a vary index epoch is a str")
    return VaryIndex(VARY_FORMAT, tuple(vary), epoch)


def _entry(data: Sequence[Any]) -> HttpCacheEntry:
    fields = list(data)
    headers = tuple(map(tuple, fields[2]))
    for line in headers:
        if len(line) != 2:
            raise ValueError("a header line is a [name, value] pair")
    "".join(name + value for name, value in headers)  # TypeError unless all are str
    if fields[3] not in ("u", "b") or fields[4].__class__ is not str:
        raise ValueError("unknown body kind")
    if fields[3] == "b":
        base64.b64decode(fields[4], validate=True)
    etag, variant = fields[10], fields[15]
    if (etag is not None and etag.__class__ is not str) or variant.__class__ is not str:
        raise TypeError("etag and variant are str")
    vary, tags = tuple(fields[14]), tuple(fields[16])
    "".join(vary + tags)
    fields[1] = int(fields[1])
    fields[2] = headers
    for i in (5, 6, 7, 8, 9):
        fields[i] = float(fields[i])
    if fields[11] is not None:
        fields[11] = float(fields[11])
    fields[12], fields[13] = bool(fields[12]), bool(fields[13])
    fields[14], fields[16] = vary, tags
    return HttpCacheEntry._make(fields)
