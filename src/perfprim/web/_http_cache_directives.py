"""``Cache-Control`` parsing (RFC 9111 §5.2, RFC 5861), for requests and responses alike.

One grammar serves both directions: ``#cache-directive`` with
``cache-directive = token [ "=" ( token / quoted-string ) ]``. The parser
never raises; it reads what it can and records what it could not.

Rules it applies, each from the RFC:

- Directive names are compared case-insensitively (§5.2); arguments may be a
  token or a quoted string for every directive, whatever form the RFC
  generates (§5.2: "recipients ought to accept both forms").
- ``delta-seconds`` is ``1*DIGIT`` (§1.2.2); a value above 2**31 is taken as
  2**31 (§1.2.2: "the cache MUST consider the value to be 2147483648").
- An invalid or missing ``max-age``/``s-maxage`` argument, or two occurrences
  with different values, makes the response stale: the value becomes ``0``
  (§4.2.1: "caches are encouraged to consider responses that have invalid
  freshness information ... to be stale"; "either the first occurrence should
  be used or the response should be considered stale"). The same rule gives a
  request ``max-age`` of ``0``: the client then always gets a revalidated
  response, the conservative reading.
- An invalid ``max-stale``, ``min-fresh``, ``stale-while-revalidate`` or
  ``stale-if-error`` argument is ignored (``None``): when in doubt, no stale
  response is served. A ``max-stale`` without argument means any staleness.
- ``no-cache`` and ``private`` accept a quoted list of field names (the
  qualified forms of §5.2.2.4 and §5.2.2.7); the names are lowercased.
- Unknown directives are ignored (§5.2.3), and so is a stray token such as a
  lone ``=`` or an unterminated quoted string.

Parsed values are cached (``functools.lru_cache``): clients send a handful of
distinct request ``Cache-Control`` values, so the per-request cost is a dict
lookup. The results are frozen and safe to share.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["DELTA_SECONDS_MAX", "EMPTY_DIRECTIVES", "CacheDirectives", "parse_cache_control"]

DELTA_SECONDS_MAX = 2_147_483_648
"""RFC 9111 §1.2.2: the value a cache uses for a ``delta-seconds`` it cannot represent."""

# Directives whose argument is delta-seconds; an invalid one makes the response stale.
_FRESHNESS = frozenset({"max-age", "s-maxage"})
# Directives whose argument is delta-seconds; an invalid one is ignored.
_OPTIONAL_SECONDS = frozenset(
    {"max-stale", "min-fresh", "stale-while-revalidate", "stale-if-error"}
)
_FLAGS = frozenset(
    {
        "no-store",
        "public",
        "must-revalidate",
        "proxy-revalidate",
        "only-if-cached",
        "immutable",
        "no-transform",
        "must-understand",
    }
)
_FIELD_LISTS = frozenset({"no-cache", "private"})
_OWS = " \t"


@dataclass(frozen=True, slots=True)
class CacheDirectives:
    """The ``Cache-Control`` directives of one request or response.

    A seconds value is ``None`` when the directive is absent (or, for the
    optional ones, invalid); see the module docstring for the rules.

    Attributes:
        max_age: ``max-age`` in seconds (§5.2.1.1, §5.2.2.1).
        s_maxage: ``s-maxage`` in seconds (§5.2.2.10), response only.
        max_stale: ``max-stale`` in seconds, :data:`DELTA_SECONDS_MAX` when
            given without a value (§5.2.1.2), request only.
        min_fresh: ``min-fresh`` in seconds (§5.2.1.3), request only.
        stale_while_revalidate: RFC 5861 §3, response only.
        stale_if_error: RFC 5861 §4 (a request may carry it too).
        no_cache: ``no-cache`` without field names (§5.2.1.4, §5.2.2.4).
        no_cache_fields: The field names of a qualified ``no-cache="..."``.
        private: ``private`` without field names (§5.2.2.7).
        private_fields: The field names of a qualified ``private="..."``.
        no_store: ``no-store`` (§5.2.1.5, §5.2.2.5).
        public: ``public`` (§5.2.2.9).
        must_revalidate: ``must-revalidate`` (§5.2.2.2).
        proxy_revalidate: ``proxy-revalidate`` (§5.2.2.8).
        only_if_cached: ``only-if-cached`` (§5.2.1.7), request only.
        immutable: ``immutable`` (RFC 8246); parsed, not acted on.
        invalid: Names of directives whose argument was invalid or given twice
            with different values, in order of appearance, without repeats.
    """

    max_age: int | None = None
    s_maxage: int | None = None
    max_stale: int | None = None
    min_fresh: int | None = None
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None
    no_cache: bool = False
    no_cache_fields: tuple[str, ...] = ()
    private: bool = False
    private_fields: tuple[str, ...] = ()
    no_store: bool = False
    public: bool = False
    must_revalidate: bool = False
    proxy_revalidate: bool = False
    only_if_cached: bool = False
    immutable: bool = False
    invalid: tuple[str, ...] = ()


EMPTY_DIRECTIVES = CacheDirectives()
"""The directives of a message without ``Cache-Control``."""


def parse_cache_control(value: str | None) -> CacheDirectives:
    """Parse a ``Cache-Control`` field value (all field lines joined with ``", "``).

    Never raises, whatever the input.

    Args:
        value: The combined field value, or ``None`` when the field is absent.

    Returns:
        The directives; :data:`EMPTY_DIRECTIVES` for ``None`` or an empty value.

    >>> d = parse_cache_control('Max-Age="60", private="Set-Cookie", max-age=60')
    >>> d.max_age, d.private, d.private_fields
    (60, False, ('set-cookie',))
    >>> parse_cache_control("max-age=60, max-age=120").max_age  # conflicting: stale
    0
    """
    if not value:
        return EMPTY_DIRECTIVES
    if len(value) > 4096:  # far beyond any real field; not worth a cache slot
        return _parse(value)
    return _parse_cached(value)


@lru_cache(maxsize=512)
def _parse_cached(value: str) -> CacheDirectives:
    return _parse(value)


def _parse(value: str) -> CacheDirectives:
    seconds: dict[str, int | None] = {}
    flags: set[str] = set()
    fields: dict[str, list[str]] = {}
    invalid: list[str] = []
    for name, arg in _directives(value):
        if name in _FRESHNESS or name in _OPTIONAL_SECONDS:
            number = _delta_seconds(arg)
            if name in seconds and seconds[name] != number:
                number = None  # two different values: treated like an invalid one
            if number is None:
                if name not in invalid:
                    invalid.append(name)
                if name == "max-stale" and arg is None and name not in seconds:
                    invalid.remove(name)
                    number = DELTA_SECONDS_MAX  # max-stale without a value: any staleness
            seconds[name] = number
        elif name in _FIELD_LISTS:
            if arg is None:
                flags.add(name)
            else:
                names = [f.strip(_OWS).lower() for f in arg.split(",")]
                fields.setdefault(name, []).extend(n for n in names if n)
        elif name in _FLAGS:
            flags.add(name)
    for name in _FRESHNESS:
        if name in seconds and seconds[name] is None:
            seconds[name] = 0  # invalid freshness information: stale (§4.2.1)
    return CacheDirectives(
        max_age=seconds.get("max-age"),
        s_maxage=seconds.get("s-maxage"),
        max_stale=seconds.get("max-stale"),
        min_fresh=seconds.get("min-fresh"),
        stale_while_revalidate=seconds.get("stale-while-revalidate"),
        stale_if_error=seconds.get("stale-if-error"),
        no_cache="no-cache" in flags,
        no_cache_fields=_unique(fields.get("no-cache", ())),
        private="private" in flags,
        private_fields=_unique(fields.get("private", ())),
        no_store="no-store" in flags,
        public="public" in flags,
        must_revalidate="must-revalidate" in flags,
        proxy_revalidate="proxy-revalidate" in flags,
        only_if_cached="only-if-cached" in flags,
        immutable="immutable" in flags,
        invalid=tuple(invalid),
    )


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _delta_seconds(arg: str | None) -> int | None:
    """``1*DIGIT`` as an int capped at 2**31, else ``None`` (RFC 9111 §1.2.2)."""
    if not arg or not arg.isascii() or not arg.isdigit():
        return None
    if len(arg) > 10:
        return DELTA_SECONDS_MAX
    return min(int(arg), DELTA_SECONDS_MAX)


def _directives(value: str) -> list[tuple[str, str | None]]:
    """Split a field value into ``(lowercased name, argument or None)`` pairs."""
    if '"' not in value:  # the common case: no quoted strings, a plain split is exact
        out: list[tuple[str, str | None]] = []
        for part in value.split(","):
            name, eq, arg = part.partition("=")
            name = name.strip(_OWS).lower()
            if name and _is_token(name):
                out.append((name, arg.strip(_OWS) if eq else None))
        return out
    return _directives_quoted(value)


def _directives_quoted(value: str) -> list[tuple[str, str | None]]:
    """The general tokenizer: quoted strings may hold commas and escaped quotes."""
    out: list[tuple[str, str | None]] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t,":
            i += 1
        start = i
        while i < n and value[i] not in "=,":
            i += 1
        name = value[start:i].strip(_OWS).lower()
        arg: str | None = None
        if i < n and value[i] == "=":
            i += 1
            while i < n and value[i] in _OWS:
                i += 1
            if i < n and value[i] == '"':
                arg, i = _quoted_string(value, i)
                if arg is None:  # unterminated: drop the rest of the field
                    break
                while i < n and value[i] != ",":  # ignore anything after the closing quote
                    i += 1
            else:
                start = i
                while i < n and value[i] != ",":
                    i += 1
                arg = value[start:i].strip(_OWS)
        if name and _is_token(name):
            out.append((name, arg))
    return out


def _quoted_string(value: str, i: int) -> tuple[str | None, int]:
    """Read the quoted string starting at ``value[i] == '"'``; ``(None, len)`` if unterminated."""
    chars: list[str] = []
    i += 1
    n = len(value)
    while i < n:
        c = value[i]
        if c == "\\" and i + 1 < n:
            chars.append(value[i + 1])
            i += 2
        elif c == '"':
            return "".join(chars), i + 1
        else:
            chars.append(c)
            i += 1
    return None, n


_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


def _is_token(name: str) -> bool:
    """RFC 9110 §5.6.2 ``token`` (on a lowercased name)."""
    return all(c in _TCHAR for c in name)
