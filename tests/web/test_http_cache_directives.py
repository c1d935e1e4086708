"""Cache-Control parsing, checked against hishel and cachecontrol.

Cache-Control parsing (RFC 9111 §5.2, §1.2.2, §4.2.1; RFC 5861), with hishel and
cachecontrol as independent parsers.
"""

from __future__ import annotations

import pytest
from cachecontrol.controller import CacheController
from hishel._core._headers import parse_cache_control as hishel_parse
from hypothesis import given
from hypothesis import strategies as st

from perfprim.web._http_cache_directives import (
    DELTA_SECONDS_MAX,
    EMPTY_DIRECTIVES,
    CacheDirectives,
    parse_cache_control,
)

CASES = [
    # (field value, expected directives, RFC reference)
    (None, EMPTY_DIRECTIVES, "absent field"),
    ("", EMPTY_DIRECTIVES, "empty field"),
    ("max-age=60", CacheDirectives(max_age=60), "§5.2.2.1"),
    ("MAX-AGE=60", CacheDirectives(max_age=60), "§5.2: names are case-insensitive"),
    ('max-age="60"', CacheDirectives(max_age=60), "§5.2: accept the quoted form too"),
    ("max-age=abc", CacheDirectives(max_age=0, invalid=("max-age",)), "§4.2.1: invalid -> stale"),
    ("max-age", CacheDirectives(max_age=0, invalid=("max-age",)), "§5.2.2.1: argument required"),
    ("max-age=-1", CacheDirectives(max_age=0, invalid=("max-age",)), "§1.2.2: 1*DIGIT"),
    ("max-age=1.5", CacheDirectives(max_age=0, invalid=("max-age",)), "§1.2.2: 1*DIGIT"),
    (
        "max-age=60, max-age=120",
        CacheDirectives(max_age=0, invalid=("max-age",)),
        "§4.2.1: conflicting duplicates -> stale",
    ),
    ("max-age=60, max-age=60", CacheDirectives(max_age=60), "equal duplicates agree"),
    (
        "max-age=99999999999999",
        CacheDirectives(max_age=DELTA_SECONDS_MAX),
        "§1.2.2: cap at 2147483648",
    ),
    ("s-maxage=10, max-age=5", CacheDirectives(s_maxage=10, max_age=5), "§5.2.2.10"),
    ("s-maxage=x", CacheDirectives(s_maxage=0, invalid=("s-maxage",)), "§4.2.1: invalid -> stale"),
    ("max-stale", CacheDirectives(max_stale=DELTA_SECONDS_MAX), "§5.2.1.2: no value = any"),
    ("max-stale=30", CacheDirectives(max_stale=30), "§5.2.1.2"),
    ("max-stale=x", CacheDirectives(invalid=("max-stale",)), "invalid optional: ignored"),
    ("min-fresh=5", CacheDirectives(min_fresh=5), "§5.2.1.3"),
    (
        "stale-while-revalidate=30, stale-if-error=600",
        CacheDirectives(stale_while_revalidate=30, stale_if_error=600),
        "RFC 5861 §3, §4",
    ),
    (
        "stale-while-revalidate=soon",
        CacheDirectives(invalid=("stale-while-revalidate",)),
        "invalid window: no stale serving",
    ),
    ("no-cache", CacheDirectives(no_cache=True), "§5.2.1.4 / §5.2.2.4"),
    (
        'no-cache="Set-Cookie, X-User"',
        CacheDirectives(no_cache_fields=("set-cookie", "x-user")),
        "§5.2.2.4 qualified form: a comma inside the quoted string",
    ),
    (
        'private="Set-Cookie", public',
        CacheDirectives(private_fields=("set-cookie",), public=True),
        "§5.2.2.7 qualified form",
    ),
    ("private", CacheDirectives(private=True), "§5.2.2.7"),
    (
        "no-store, must-revalidate, proxy-revalidate, only-if-cached, immutable",
        CacheDirectives(
            no_store=True,
            must_revalidate=True,
            proxy_revalidate=True,
            only_if_cached=True,
            immutable=True,
        ),
        "flags",
    ),
    ("  , ,max-age=5 ,, ", CacheDirectives(max_age=5), "RFC 9110 §5.6.1: empty list elements"),
    ('ext="a,b\\"c", max-age=5', CacheDirectives(max_age=5), "§5.2.3: extension with quotes"),
    ('private="unterminated, max-age=5', EMPTY_DIRECTIVES, "unterminated quote: rest dropped"),
    ("foo bar=1, max-age=2", CacheDirectives(max_age=2), "a non-token name is dropped"),
]


@pytest.mark.parametrize(("value", "expected", "rfc"), CASES, ids=[c[2] for c in CASES])
def test_parse_table(value: str | None, expected: CacheDirectives, rfc: str) -> None:
    """Each field value parses to the directives its RFC section gives."""
    assert expected == parse_cache_control(value), rfc


@given(st.binary(max_size=300))
def test_parser_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    """Any header bytes (latin-1, as servers hand them over) parse without an exception."""
    result = parse_cache_control(raw.decode("latin-1"))
    assert isinstance(result, CacheDirectives)
    for seconds in (result.max_age, result.s_maxage, result.max_stale, result.min_fresh):
        assert seconds is None or 0 <= seconds <= DELTA_SECONDS_MAX


@given(st.text(alphabet='=",; \tamx-0123456789\\', max_size=80))
def test_parser_never_raises_on_delimiter_soup(value: str) -> None:
    """Quotes, escapes and separators in any order never make the parser raise."""
    assert isinstance(parse_cache_control(value), CacheDirectives)


# -- cross-check with hishel (an independent RFC 9111 implementation) ----------------------

_SECONDS = st.integers(min_value=0, max_value=10**6)
_VALUED = ["max-age", "s-maxage", "max-stale", "min-fresh", "stale-while-revalidate",
           "stale-if-error"]  # fmt: skip
_FLAGS = ["no-store", "no-cache", "private", "public", "must-revalidate", "proxy-revalidate",
          "only-if-cached", "immutable"]  # fmt: skip


@st.composite
def _valid_fields(draw: st.DrawFn) -> str:
    """Valid Cache-Control values: each directive at most once, random case and quoting."""
    names = draw(st.lists(st.sampled_from(_VALUED + _FLAGS), unique=True, max_size=8))
    parts = []
    for name in names:
        shown = name.upper() if draw(st.booleans()) else name
        if name in _VALUED:
            number = draw(_SECONDS)
            parts.append(f'{shown}="{number}"' if draw(st.booleans()) else f"{shown}={number}")
        else:
            parts.append(shown)
    return draw(st.sampled_from([", ", ",", " , "])).join(parts)


@given(_valid_fields())
def test_agrees_with_hishel_on_valid_fields(value: str) -> None:
    """On valid fields without duplicates, hishel parses every directive as we do."""
    ours = parse_cache_control(value)
    theirs = hishel_parse(value)
    assert (
        theirs.max_age,
        theirs.s_maxage,
        theirs.max_stale,
        theirs.min_fresh,
        theirs.stale_while_revalidate,
        theirs.stale_if_error,
        bool(theirs.no_cache),
        bool(theirs.private),
        theirs.no_store,
        theirs.public,
        theirs.must_revalidate,
        theirs.proxy_revalidate,
        theirs.only_if_cached,
        theirs.immutable,
    ) == (
        ours.max_age,
        ours.s_maxage,
        ours.max_stale,
        ours.min_fresh,
        ours.stale_while_revalidate,
        ours.stale_if_error,
        ours.no_cache,
        ours.private,
        ours.no_store,
        ours.public,
        ours.must_revalidate,
        ours.proxy_revalidate,
        ours.only_if_cached,
        ours.immutable,
    )


@given(_valid_fields())
def test_agrees_with_cachecontrol_on_lowercase_unquoted_fields(value: str) -> None:
    """Cachecontrol (lowercase names, no quotes only) reads max-age/s-maxage as we do."""
    value = value.lower().replace('"', "")
    ours = parse_cache_control(value)
    theirs = CacheController().parse_cache_control({"cache-control": value})
    assert (theirs.get("max-age"), theirs.get("s-maxage"), "no-store" in theirs) == (
        ours.max_age,
        ours.s_maxage,
        ours.no_store,
    )


# Where the independent implementations differ from us, and who follows the RFC.
DIFFERENCES = [
    # (value, hishel max-age, cachecontrol max-age, ours, why ours)
    ("max-age=60, max-age=120", 120, 120, 0, "§4.2.1: first occurrence or stale; last is neither"),
    ("max-age=abc", None, None, 0, "§4.2.1: invalid freshness information -> stale"),
    ("max-age=99999999999", 2147483647, 99999999999, 2147483648, "§1.2.2: 2147483648"),
    ("MAX-AGE=5", 5, None, 5, "§5.2: directive names are case-insensitive"),
    ('max-age="7"', 7, None, 7, "§5.2: recipients accept the quoted-string form"),
]


@pytest.mark.parametrize(
    ("value", "hishel", "cachecontrol", "ours", "why"),
    DIFFERENCES,
    ids=[d[4] for d in DIFFERENCES],
)
def test_documented_differences(
    value: str, hishel: int | None, cachecontrol: int | None, ours: int, why: str
) -> None:
    """The known disagreements, pinned: if a peer changes, this test says so."""
    assert hishel == hishel_parse(value).max_age
    assert cachecontrol == CacheController().parse_cache_control({"cache-control": value}).get(
        "max-age"
    )
    assert ours == parse_cache_control(value).max_age, why


def test_qualified_field_names_agree_with_hishel() -> None:
    """``private="..."`` with a comma inside the quotes: hishel finds the same two names."""
    value = 'private="Set-Cookie, X-User", max-age=5'
    theirs = hishel_parse(value)
    ours = parse_cache_control(value)
    assert [name.lower() for name in theirs.private] == list(ours.private_fields)
    assert theirs.max_age == ours.max_age


def test_cachecontrol_splits_inside_quoted_strings() -> None:
    """The cachecontrol parser splits inside quoted strings; we do not.

    Cachecontrol splits at the comma inside the quotes: the qualified ``no-cache``
    loses its field names and reads as the unqualified (stricter) directive.

    RFC 9111 §5.2 lets arguments be quoted strings, which may hold commas;
    §5.2.2.4's qualified form only restricts the named fields.
    """
    value = 'no-cache="set-cookie, x-user", no-store'
    theirs = CacheController().parse_cache_control({"cache-control": value})
    assert {"no-cache": None, "no-store": None} == theirs
    ours = parse_cache_control(value)
    assert (False, ("set-cookie", "x-user"), True) == (
        ours.no_cache,
        ours.no_cache_fields,
        ours.no_store,
    )
