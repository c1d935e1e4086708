"""Cache keys: the URL (primary key) and the ``Vary`` variant (secondary key).

Primary key (RFC 9111 §4.1: "the request target URI"), method-independent so
that HEAD is answered from the GET entry: ``scheme://host[:port]path[?query]``
after these normalisations, each meaning-preserving by RFC 3986 §6.2.2 for
any server:

- scheme and host lowercased; the default port (80 for http, 443 for https)
  dropped; an empty path becomes ``/``;
- percent-encoding: escapes of unreserved characters (``A-Z a-z 0-9 - . _ ~``)
  decoded, the hex digits of every other escape uppercased (``%7e`` -> ``~``,
  ``%2f`` -> ``%2F``); a ``%`` not followed by two hex digits is escaped as ``%25`` (it means
  the same, and a decoded neighbour cannot turn it into another escape:
  ``/%%300`` becomes ``/%2500``, never ``/%00``);
- query: split on ``&``, empty parameters dropped, then sorted by parameter
  name with a *stable* sort, so ``?b=2&a=1`` and ``?a=1&b=2`` share a key
  while ``?a=1&a=2`` and ``?a=2&a=1`` (where the order is data) do not.

Not normalised, because an application may tell them apart: ``+`` versus
``%20``, escapes of reserved characters (``%2F`` versus ``/``), dot segments
(``/a/../b``), repeated or trailing slashes, the case of the path, ``;`` as a
separator, parameters without a value (``?a`` versus ``?a=``), and the
fragment (never sent). A key longer than 1,024 characters keeps its first
256 and ends with a BLAKE2b digest of the whole. Keys are memoised (1,024
of them) only for targets under 1,024 characters, so that a client sending
megabyte query strings cannot make the memo hold them.

Secondary key (§4.1): the response's ``Vary`` names request fields; the
request's values for those fields, each with whitespace trimmed and removed
around commas (the §4.1 "adding or removing whitespace" and "combining field
lines" rules), are digested together with the field names. An absent field
differs from an empty one. Field names compare case-insensitively; values
are compared as sent otherwise (no case folding, no reordering).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

__all__ = [
    "normalise_query",
    "parse_vary",
    "primary_key",
    "same_origin_key",
    "variant_key",
    "vary_digest",
]

_MAX_KEY = 1024
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def primary_key(scheme: str, host: str, path: str, query: str = "") -> str:
    """The method-independent key of a request target (normalised as the module says).

    Args:
        scheme: ``http`` or ``https``.
        host: The ``Host`` field value (or the server name), port included if any.
        path: The path as received, still percent-encoded (ASGI ``raw_path``,
            WSGI ``RAW_URI``/``REQUEST_URI`` or the re-quoted ``PATH_INFO``).
        query: The query string as received, without the ``?``.

    Returns:
        The key.

    >>> primary_key("HTTPS", "Example.COM:443", "/a%7eb", "z=1&a=%2f&a=0")
    'https://example.com/a~b?a=%2F&a=0&z=1'
    """
    if len(host) + len(path) + len(query) > _MAX_KEY:  # not memoised: a slot would keep it alive
        return _compute_primary_key(scheme, host, path, query)
    return _primary_key(scheme, host, path, query)


@lru_cache(maxsize=1024)
def _primary_key(scheme: str, host: str, path: str, query: str) -> str:
    return _compute_primary_key(scheme, host, path, query)


def _compute_primary_key(scheme: str, host: str, path: str, query: str) -> str:
    scheme = scheme.lower()
    host = host.lower()
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port is not None and host.endswith(default_port):
        host = host[: -len(default_port)]
    path = _normalise_escapes(path) if "%" in path else path
    key = f"{scheme}://{host}{path or '/'}"
    if query:
        query = normalise_query(query)
        if query:
            key = f"{key}?{query}"
    if len(key) > _MAX_KEY:
        key = f"{key[:256]}~{_digest(key.encode('utf-8', 'surrogateescape'))}"
    return key


def normalise_query(query: str) -> str:
    """Normalise a query string: escapes, empty parameters, stable sort by name.

    >>> normalise_query("b=2&&a=1&b=1&A=%7e")
    'A=~&a=1&b=2&b=1'
    """
    if "%" in query:
        query = _normalise_escapes(query)
    if "&" not in query:
        return query
    params = [p for p in query.split("&") if p]
    params.sort(key=_param_name)
    return "&".join(params)


def _param_name(param: str) -> str:
    return param.partition("=")[0]


def _normalise_escapes(text: str) -> str:
    """Decode escapes of unreserved characters, uppercase the others (RFC 3986 §6.2.2)."""
    pieces = text.split("%")
    out = [pieces[0]]
    for piece in pieces[1:]:
        if len(piece) >= 2 and piece[0] in _HEX and piece[1] in _HEX:
            char = chr(int(piece[:2], 16))
            if char in _UNRESERVED:
                out.append(char + piece[2:])
            else:
                out.append("%" + piece[:2].upper() + piece[2:])
        else:  # a bare "%": escaped, so a decoded neighbour never forms a new escape
            out.append("%25" + piece)
    return "".join(out)


def parse_vary(value: str | None) -> tuple[str, ...]:
    """The field names of a ``Vary`` value: lowercased, unique, sorted; ``("*",)`` for ``*``.

    >>> parse_vary("Accept-Encoding, accept ,Accept-Encoding")
    ('accept', 'accept-encoding')
    >>> parse_vary("Accept, *")
    ('*',)
    """
    if not value:
        return ()
    names = {n.strip(" \t").lower() for n in value.split(",")}
    names.discard("")
    if "*" in names:
        return ("*",)
    return tuple(sorted(names))


def vary_digest(vary: tuple[str, ...], headers: Mapping[str, str]) -> str:
    """A digest of the request's values for the ``Vary`` field names (the secondary key).

    Args:
        vary: The normalised field names (:func:`parse_vary`).
        headers: The request fields, lowercase names, lines joined with ``", "``.

    Returns:
        22 base64url characters; requests that match by RFC 9111 §4.1 (as
        normalised here) give the same digest.

    >>> spaced = vary_digest(("accept",), {"accept": "a/b,  c/d"})
    >>> spaced == vary_digest(("accept",), {"accept": "a/b,c/d "})
    True
    >>> vary_digest(("accept",), {}) == vary_digest(("accept",), {"accept": ""})
    False
    """
    parts: list[str] = []
    for name in vary:
        value = headers.get(name)
        if value is None:
            parts.append(f"{name}\x00")  # absent: differs from every present value
        else:
            parts.append(f"{name}\x01{_normalise_whitespace(value)}")
    return _digest("\x02".join(parts).encode("utf-8", "surrogateescape"))


def variant_key(primary: str, epoch: str, digest: str) -> str:
    """The key of one variant: ``primary + "#" + epoch + "." + digest``.

    Args:
        primary: The primary key.
        epoch: The vary index's epoch (a new one after each invalidation, so
            variants stored before it are never reached again).
        digest: :func:`vary_digest` of the request.

    Returns:
        The key.
    """
    return f"{primary}#{epoch}.{digest}"


def _normalise_whitespace(value: str) -> str:
    value = value.strip(" \t")
    if "," in value:
        return ",".join(p.strip(" \t") for p in value.split(","))
    return value


def same_origin_key(reference: str, scheme: str, host: str, path: str, query: str) -> str | None:
    """The primary key of ``reference`` (``Location``, ``Content-Location``) if same-origin.

    RFC 9111 §4.4: a cache MUST NOT invalidate a URI whose origin differs
    from the target's. A relative reference is resolved against the target.

    Args:
        reference: The field value.
        scheme: The request's scheme.
        host: The request's host (port included if any).
        path: The request's path.
        query: The request's query string.

    Returns:
        The key to invalidate, or ``None`` when the origin differs or the
        reference cannot be parsed.

    >>> same_origin_key("/items/7", "https", "api.example", "/items", "")
    'https://api.example/items/7'
    >>> same_origin_key("https://elsewhere.example/x", "https", "api.example", "/items", "") is None
    True
    """
    reference = reference.strip()
    if not reference:
        return None
    base = f"{scheme}://{host}{path or '/'}" + (f"?{query}" if query else "")
    try:
        target = urlsplit(urljoin(base, reference))
        port = target.port
    except ValueError:
        return None
    origin = (scheme.lower(), _origin_host(host.lower(), scheme.lower()))
    target_host = (target.hostname or "") + (f":{port}" if port is not None else "")
    if target.netloc.startswith("[") and target.hostname:  # keep IPv6 brackets
        target_host = f"[{target.hostname}]" + (f":{port}" if port is not None else "")
    if (target.scheme, _origin_host(target_host, target.scheme)) != origin:
        return None
    return primary_key(target.scheme, target_host, target.path, target.query)


def _origin_host(host: str, scheme: str) -> str:
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port is not None and host.endswith(default_port):
        return host[: -len(default_port)]
    return host


def _digest(material: bytes) -> str:
    raw = hashlib.blake2b(material, digest_size=16).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
