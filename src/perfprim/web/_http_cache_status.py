"""The ``Cache-Status`` response field (RFC 9211), serialised as a Structured Field list member.

One member per response, ``<cache name>; <params>``, with the parameters of
RFC 9211 §2:

======================  ====================================================
``hit``                 served from the cache without going forward (§2.1)
``fwd=<reason>``        forwarded to the application (§2.2): ``bypass``
                        (configured not to cache), ``method``, ``uri-miss``,
                        ``vary-miss``, ``miss``, ``request`` (the request's
                        directives forbade the stored response), ``stale``
``fwd-status=<int>``    the application's status code (§2.3)
``ttl=<int>``           remaining freshness in seconds, negative when stale
                        (§2.4)
``stored``              the forwarded response was stored (§2.5)
``collapsed``           answered by another request's forward (§2.6)
``key="..."``           the cache key (§2.7), only when configured
``detail=<token>``      why, e.g. ``private``, ``stale-while-revalidate`` (§2.8)
======================  ====================================================

Examples: ``perfprim; hit; ttl=57``, ``perfprim; fwd=uri-miss; fwd-status=200;
stored; ttl=60``, ``perfprim; fwd=stale; fwd-status=503; ttl=-4;
detail=stale-if-error``.
"""

from __future__ import annotations

import math

__all__ = ["cache_status", "check_cache_name", "sf_item"]

_TCHAR = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:/"
)
_TTL_BOUND = 999_999_999_999_999  # RFC 8941 §3.3.1: integers have at most 15 digits


def cache_status(
    name: str,
    *,
    hit: bool = False,
    fwd: str | None = None,
    fwd_status: int | None = None,
    ttl: float | None = None,
    stored: bool = False,
    collapsed: bool = False,
    key: str | None = None,
    detail: str | None = None,
) -> str:
    """Serialise one ``Cache-Status`` member.

    Args:
        name: The cache's name, already a valid token or quoted string (see
            :func:`check_cache_name`).
        hit: The response came from the cache.
        fwd: Why the request went forward, if it did.
        fwd_status: The status code the application answered.
        ttl: Remaining freshness in seconds (rounded down; negative when stale).
        stored: The forwarded response was stored.
        collapsed: The request was collapsed with another one.
        key: The cache key, if it is to be shown.
        detail: A token (or any text, then sent as a string) saying why.

    Returns:
        The field member, e.g. ``"perfprim; hit; ttl=57"``.

    >>> cache_status("perfprim", fwd="uri-miss", fwd_status=200, stored=True, ttl=60)
    'perfprim; fwd=uri-miss; fwd-status=200; stored; ttl=60'
    """
    out = f"{name}; hit" if hit else name
    if fwd is not None:
        out += f"; fwd={fwd}"
    if fwd_status is not None:
        out += f"; fwd-status={fwd_status}"
    if stored:
        out += "; stored"
    if collapsed:
        out += "; collapsed"
    if ttl is not None:
        out += f"; ttl={_whole_seconds(ttl)}"
    if key is not None:
        out += f"; key={_sf_string(key)}"
    if detail is not None:
        out += f"; detail={sf_item(detail)}"
    return out


def _whole_seconds(seconds: float) -> int:
    """Rounded down, within the 15 digits of an sf-integer (RFC 8941 §3.3.1); NaN is 0."""
    if seconds != seconds:  # noqa: PLR0124 - the NaN test without an import
        return 0
    return math.floor(max(-_TTL_BOUND, min(_TTL_BOUND, seconds)))


def sf_item(text: str) -> str:
    """``text`` as an sf-token when it is one (RFC 8941 §3.3.4), else as an sf-string.

    >>> sf_item("private"), sf_item("two words")
    ('private', '"two words"')
    """
    if text and (text[0].isalpha() or text[0] == "*") and text.isascii() and _is_tchars(text):
        return text
    return _sf_string(text)


def check_cache_name(name: str) -> str:
    """Return ``name`` serialised for ``Cache-Status`` (token, else string), or raise.

    Raises:
        ValueError: If ``name`` is empty or has characters an sf-string cannot carry.
    """
    if not name or not name.isascii() or not name.isprintable():
        raise ValueError(f"cache status name must be printable ASCII, got {name!r}")
    return sf_item(name)


def _is_tchars(text: str) -> bool:
    return all(c in _TCHAR for c in text)


def _sf_string(text: str) -> str:
    """RFC 8941 §3.3.3 string: printable ASCII, quote and backslash escaped, others replaced."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text)
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'
