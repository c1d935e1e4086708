"""Cache keys: URL normalisation, Vary secondary keys, same-origin invalidation targets."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfprim.web._http_cache_keys import (
    normalise_query,
    parse_vary,
    primary_key,
    same_origin_key,
    variant_key,
    vary_digest,
)

KEYS = [
    # ((scheme, host, path, query), key, why)
    (("http", "example.com", "/a", ""), "http://example.com/a", "plain"),
    (("HTTP", "Example.COM", "/a", ""), "http://example.com/a", "RFC 3986 §6.2.2.1: case"),
    (("http", "example.com:80", "/a", ""), "http://example.com/a", "§6.2.3: default port"),
    (("https", "example.com:443", "/", ""), "https://example.com/", "§6.2.3: default port"),
    (("http", "example.com:8080", "/", ""), "http://example.com:8080/", "other port kept"),
    (("https", "example.com:80", "/", ""), "https://example.com:80/", "80 is not https's"),
    (("http", "h", "", ""), "http://h/", "§6.2.3: empty path is /"),
    (("http", "h", "/%7euser", ""), "http://h/~user", "§6.2.2.2: unreserved decoded"),
    (("http", "h", "/a%2fb", ""), "http://h/a%2Fb", "§6.2.2.1: reserved kept, hex upper"),
    (("http", "h", "/a%zz", ""), "http://h/a%25zz", "a bare % is escaped (same meaning)"),
    (("http", "h", "/%%300", ""), "http://h/%2500", "a decoded escape never joins a bare %"),
    (("http", "h", "/A/./b/../c//", ""), "http://h/A/./b/../c//", "dot segments kept"),
    (("http", "h", "/", "b=2&a=1"), "http://h/?a=1&b=2", "params sorted by name"),
    (("http", "h", "/", "a=2&a=1"), "http://h/?a=2&a=1", "same name: order kept"),
    (("http", "h", "/", "b=1&a=2&b=0"), "http://h/?a=2&b=1&b=0", "stable sort"),
    (("http", "h", "/", "&&a=1&"), "http://h/?a=1", "empty params dropped"),
    (("http", "h", "/", "&"), "http://h/", "an empty query is no query"),
    (("http", "h", "/", "q=a+b"), "http://h/?q=a+b", "+ kept"),
    (("http", "h", "/", "q=a%20b"), "http://h/?q=a%20b", "%20 kept (not +)"),
    (("http", "h", "/", "q=%41%2f"), "http://h/?q=A%2F", "escapes normalised in the query"),
]


@pytest.mark.parametrize(("parts", "key", "why"), KEYS, ids=[k[2] for k in KEYS])
def test_primary_key_table(parts: tuple[str, str, str, str], key: str, why: str) -> None:
    """Each URL normalises to the key RFC 3986 §6.2.2-§6.2.3 gives, and no further."""
    assert key == primary_key(*parts), why


def test_long_keys_are_bounded() -> None:
    """A key over 1,024 characters keeps its first 256 and a digest of the whole."""
    key_a = primary_key("http", "h", "/" + "a" * 5000, "")
    key_b = primary_key("http", "h", "/" + "a" * 4999 + "b", "")
    assert (True, True, True) == (len(key_a) < 300, key_a != key_b, key_a.startswith("http://h/"))


_NAME = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
_VALUE = st.text(alphabet="abc019%2F7E+-", max_size=6)


@given(st.lists(st.tuples(_NAME, _VALUE), max_size=6, unique_by=lambda p: p[0]), st.randoms())
def test_key_stable_under_parameter_order(params: list[tuple[str, str]], rnd: object) -> None:
    """Any order of parameters with distinct names gives the same key."""
    shuffled = list(params)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    query_a = "&".join(f"{n}={v}" for n, v in params)
    query_b = "&".join(f"{n}={v}" for n, v in shuffled)
    assert primary_key("http", "h", "/p", query_a) == primary_key("http", "h", "/p", query_b)


@given(st.lists(st.tuples(_NAME, _VALUE), max_size=8))
def test_normalised_query_means_the_same_to_parse_qsl(params: list[tuple[str, str]]) -> None:
    """Query normalisation keeps what parse_qsl reads.

    What a framework reads (``urllib.parse.parse_qsl``) is unchanged, up to the
    documented stable reordering by name: nothing is merged, lost or reordered within
    a name.
    """
    query = "&".join(f"{n}={v}" for n, v in params)
    before = parse_qsl(query, keep_blank_values=True)
    after = parse_qsl(normalise_query(query), keep_blank_values=True)
    assert sorted(before, key=lambda p: p[0]) == after  # sorted() is stable


@given(st.text(alphabet="abc/%0123456789ABCDEFabcdef~-._", max_size=20))
def test_path_normalisation_preserves_meaning(path: str) -> None:
    """Decoding the normalised path gives what decoding the original gives."""
    key = primary_key("http", "h", "/" + path, "")
    assert unquote("/" + path) == unquote(key.removeprefix("http://h"))


VARY = [
    ("Accept-Encoding", ("accept-encoding",)),
    ("accept, Accept-Language ,ACCEPT", ("accept", "accept-language")),
    ("", ()),
    (None, ()),
    (" , ", ()),
    ("Accept, *", ("*",)),
    ("*", ("*",)),
]


@pytest.mark.parametrize(("value", "names"), VARY)
def test_parse_vary(value: str | None, names: tuple[str, ...]) -> None:
    """RFC 9110 §12.5.5: case-insensitive field names; ``*`` anywhere means ``*``."""
    assert names == parse_vary(value)


def test_vary_digest_whitespace_rules() -> None:
    """Secondary keys forgive whitespace only (RFC 9111 §4.1).

    RFC 9111 §4.1: whitespace around list separators and at the ends does not matter;
    case, order and absence do.
    """
    vary = ("accept", "accept-language")

    def d(**fields: str) -> str:
        return vary_digest(vary, {k.replace("_", "-"): v for k, v in fields.items()})

    base = d(accept="text/html, application/json", accept_language="en")
    assert base == d(accept=" text/html ,application/json ", accept_language="en ")
    assert base != d(accept="application/json, text/html", accept_language="en")
    assert base != d(accept="TEXT/HTML, application/json", accept_language="en")
    assert base != d(accept="text/html, application/json")  # language absent
    assert d(accept="x") != d(accept="x", accept_language="")  # absent differs from empty


def test_variant_key_layout() -> None:
    """A variant key is the primary key, ``#``, the epoch, ``.``, the digest."""
    assert "http://h/#e1.d2" == variant_key("http://h/", "e1", "d2")


SAME_ORIGIN = [
    ("/items/7", "https://api.example/items/7"),
    ("7", "https://api.example/items/7"),  # relative to /items/
    ("https://api.example:443/x?b=1&a=2", "https://api.example/x?a=2&b=1"),
    ("//api.example/y", "https://api.example/y"),
    ("https://other.example/x", None),  # §4.4: another origin is never invalidated
    ("http://api.example/x", None),  # another scheme is another origin
    ("https://api.example:8443/x", None),  # another port is another origin
    ("", None),
    ("http://[::1", None),  # unparseable
]


@pytest.mark.parametrize(("reference", "key"), SAME_ORIGIN)
def test_same_origin_key(reference: str, key: str | None) -> None:
    """Same-origin Location/Content-Location keys (RFC 9111 §4.4).

    RFC 9111 §4.4: Location/Content-Location resolve against the target; only the same
    origin (scheme, host, port; RFC 9110 §4.3.1) is invalidated.
    """
    assert key == same_origin_key(reference, "https", "api.example", "/items/", "")
