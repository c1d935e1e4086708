r"""Validators and conditional requests (RFC 9110 §8.8, §13).

- :func:`body_etag` makes a strong entity tag from the representation: a
  BLAKE2b-128 digest (:mod:`hashlib`) of ``Content-Type``, ``Content-Encoding``
  and the body, base64url without padding, quoted. The same bytes give the
  same tag in every process, worker and host (never Python's salted
  :func:`hash`). The two metadata fields are part of the input because a
  strong validator must change when metadata that changes the representation
  changes (§8.8.3): the same bytes gzip-encoded or as another media type are
  another representation. The exact input is::

      blake2b(content_type + "\n" + content_encoding + "\n" + body, digest_size=16)

  with the two field values as latin-1 bytes (empty when absent).
- :func:`none_match` evaluates ``If-None-Match`` with the weak comparison
  (§13.1.2), including ``*`` and lists; entity tags may contain commas, so the
  list is parsed, not split. Only the first :data:`MAX_ENTITY_TAGS` entries
  are compared (a match further on gets the full response, which is always
  a correct answer), so a hostile list costs bounded work.
- :func:`modified_since` evaluates ``If-Modified-Since`` (§13.1.3).
- :func:`weak_match` and :func:`strong_match` are the two comparison
  functions of §8.8.3.2.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from itertools import islice

MAX_ENTITY_TAGS = 64
"""How many entries of an ``If-None-Match`` list :func:`none_match` compares."""

__all__ = [
    "MAX_ENTITY_TAGS",
    "body_etag",
    "modified_since",
    "none_match",
    "opaque_tag",
    "parse_entity_tags",
    "strong_match",
    "weak_match",
]


def body_etag(body: bytes, *, content_type: str = "", content_encoding: str = "") -> str:
    """A strong entity tag for a representation, identical in every process.

    Args:
        body: The representation data (the response body as sent).
        content_type: The ``Content-Type`` field value, ``""`` when absent.
        content_encoding: The ``Content-Encoding`` field value, ``""`` when absent.

    Returns:
        The quoted tag: 22 base64url characters between double quotes.

    >>> body_etag(b"hello", content_type="text/plain")
    '"af2wwzXnlaQypefj0NRHTQ"'
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(content_type.encode("latin-1", "replace"))
    digest.update(b"\n")
    digest.update(content_encoding.encode("latin-1", "replace"))
    digest.update(b"\n")
    digest.update(body)
    return '"' + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii") + '"'


def opaque_tag(tag: str) -> tuple[str, bool]:
    """Split an entity tag into its opaque part (with quotes) and whether it is weak.

    An unquoted tag (invalid, but some clients send them) is quoted, so that
    ``abc`` compares equal to ``"abc"``.

    >>> opaque_tag('W/"x"')
    ('"x"', True)
    """
    weak = tag[:2] in ("W/", "w/")
    if weak:
        tag = tag[2:]
    if not (len(tag) >= 2 and tag[0] == '"' and tag[-1] == '"'):
        tag = f'"{tag}"'
    return tag, weak


def weak_match(a: str, b: str) -> bool:
    """The weak comparison (RFC 9110 §8.8.3.2): opaque tags equal, weakness ignored.

    >>> weak_match('W/"1"', '"1"'), weak_match('"1"', '"2"')
    (True, False)
    """
    return opaque_tag(a)[0] == opaque_tag(b)[0]


def strong_match(a: str, b: str) -> bool:
    """The strong comparison (RFC 9110 §8.8.3.2): both strong and opaque tags equal.

    >>> strong_match('"1"', '"1"'), strong_match('W/"1"', '"1"')
    (True, False)
    """
    opaque_a, weak_a = opaque_tag(a)
    opaque_b, weak_b = opaque_tag(b)
    return not weak_a and not weak_b and opaque_a == opaque_b


def parse_entity_tags(value: str) -> tuple[str, ...]:
    """Parse an ``If-None-Match``/``If-Match`` list into its entity tags.

    ``*`` comes back as ``("*",)``. Quoted tags may contain commas. An
    element that is not a valid entity tag is kept as written (stripped), so
    that a client that drops the quotes still gets its match; nothing here
    raises.

    >>> parse_entity_tags('"a", W/"b,c" ,"d"')
    ('"a"', 'W/"b,c"', '"d"')
    """
    return tuple(_entity_tags(value))


def _entity_tags(value: str) -> Iterator[str]:
    """The entity tags of a list, one at a time (see :func:`parse_entity_tags`)."""
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t,":
            i += 1
        if i >= n:
            break
        start = i
        if value.startswith(("W/", "w/"), i):
            i += 2
        if i < n and value[i] == '"':
            end = value.find('"', i + 1)
            if end < 0:  # unterminated: take the rest as one (non-matching) element
                yield value[start:].strip()
                return
            i = end + 1
            yield value[start:i]
            while i < n and value[i] != ",":  # junk after the tag belongs to no tag
                i += 1
        else:
            end = value.find(",", i)
            i = n if end < 0 else end
            element = value[start:i].strip()
            if element:
                yield element


def none_match(if_none_match: str, etag: str | None) -> bool:
    """Whether ``If-None-Match`` *matches*, i.e. its condition is false (§13.1.2).

    For GET and HEAD a match means "answer 304 Not Modified". ``*`` matches
    any current representation; a list matches when one of its tags matches
    ``etag`` by the weak comparison.

    Args:
        if_none_match: The request's field value (lines joined with ``", "``).
        etag: The selected representation's entity tag, ``None`` when it has none.

    Returns:
        ``True`` when the client's copy is current (send 304).

    >>> none_match('"x", W/"abc"', '"abc"'), none_match('*', '"z"'), none_match('"x"', None)
    (True, True, False)
    """
    if etag is None:
        return if_none_match.strip() == "*"
    if if_none_match == etag:  # the common case: the client echoes our tag
        return True
    target = opaque_tag(etag)[0]
    for tag in islice(_entity_tags(if_none_match), MAX_ENTITY_TAGS):
        if tag == "*" or opaque_tag(tag)[0] == target:
            return True
    return False


def modified_since(if_modified_since: float | None, last_modified: float | None) -> bool:
    """Whether ``If-Modified-Since`` is true, i.e. the full response must be sent (§13.1.3).

    The caller parses the field (an invalid date or a list is ignored, which
    is what ``None`` means here) and ignores it when ``If-None-Match`` is
    present.

    Args:
        if_modified_since: The parsed field value, ``None`` if absent or invalid.
        last_modified: The representation's last modification time (for a
            stored response: ``Last-Modified``, else its ``Date``, else when it
            was stored; RFC 9111 §4.3.2).

    Returns:
        ``False`` when the representation was not modified since (send 304).

    >>> modified_since(100.0, 100.0), modified_since(100.0, 101.0), modified_since(None, 5.0)
    (False, True, True)
    """
    if if_modified_since is None or last_modified is None:
        return True
    return last_modified > if_modified_since
