"""Entity tags and conditional requests (RFC 9110 §8.8.3, §13.1.2, §13.1.3)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.http import parse_etags

from perfprim.web._http_cache_validators import (
    body_etag,
    modified_since,
    none_match,
    parse_entity_tags,
    strong_match,
    weak_match,
)


def test_body_etag_matches_coreutils_b2sum() -> None:
    r"""The generated tag is BLAKE2b-128 of ``type \\n encoding \\n body``, as b2sum computes it."""
    b2sum = shutil.which("b2sum")
    assert b2sum is not None, "coreutils b2sum is needed as the independent digest"
    material = b"application/json\ngzip\n" + b'{"id": 42}'
    digest = subprocess.run(
        [b2sum, "-l", "128"], input=material, capture_output=True, check=True
    ).stdout.split()[0]
    expected = '"' + base64.urlsafe_b64encode(bytes.fromhex(digest.decode())).decode().rstrip("=")
    expected += '"'
    assert expected == body_etag(
        b'{"id": 42}', content_type="application/json", content_encoding="gzip"
    )


def test_body_etag_is_the_same_in_every_process() -> None:
    """Two interpreters with different hash seeds give the same tag (never ``hash()``)."""
    code = "from perfprim.web._http_cache_validators import body_etag; print(body_etag(b'x' * 99))"
    tags = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            check=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2", "random")
    }
    assert {body_etag(b"x" * 99)} == tags


def test_body_etag_changes_with_representation_metadata() -> None:
    """§8.8.3: a strong validator changes when Content-Type or Content-Encoding does."""
    tags = {
        body_etag(b"same"),
        body_etag(b"same", content_type="text/plain"),
        body_etag(b"same", content_encoding="gzip"),
        body_etag(b"other"),
    }
    assert 4 == len(tags)


ENTITY_TAG_LISTS = [
    ('"a"', ('"a"',)),
    ('"a", W/"b"', ('"a"', 'W/"b"')),
    ('"a,b" , "c"', ('"a,b"', '"c"')),  # etagc includes the comma
    ("*", ("*",)),
    ('  ,"a",,  ', ('"a"',)),
    ("abc", ("abc",)),  # unquoted (invalid): kept, so it can still match "abc"
    ('"a"junk, "b"', ('"a"', '"b"')),
    ('"unterminated, "b"', ('"unterminated, "',)),
]


@pytest.mark.parametrize(("value", "expected"), ENTITY_TAG_LISTS)
def test_parse_entity_tags(value: str, expected: tuple[str, ...]) -> None:
    """RFC 9110 §13.1.2 lists: quoted tags may hold commas; junk is skipped."""
    assert expected == parse_entity_tags(value)


_ETAGC = st.characters(min_codepoint=0x23, max_codepoint=0x7E) | st.just("!")
# Werkzeug reads the empty tag ``""`` (valid: ``*etagc``) as ``None``; it is left out of
# the cross-checks and covered by the table below.
_OPAQUE = st.text(alphabet=_ETAGC, min_size=1, max_size=12).map(lambda s: f'"{s}"')
_TAG = st.tuples(st.booleans(), _OPAQUE).map(lambda t: ("W/" if t[0] else "") + t[1])


@given(st.lists(_TAG, min_size=1, max_size=6))
def test_parse_agrees_with_werkzeug(tags: list[str]) -> None:
    """Werkzeug finds the same strong and weak opaque tags in any valid list."""
    value = ", ".join(tags)
    ours = parse_entity_tags(value)
    parsed = parse_etags(value)
    strong = {t[1:-1] for t in ours if not t.startswith("W/")}
    weak = {t[3:-1] for t in ours if t.startswith("W/")}
    assert (set(parsed._strong), set(parsed._weak)) == (strong, weak)
    assert list(ours) == tags


@given(_TAG, _TAG)
def test_comparison_laws(a: str, b: str) -> None:
    """The laws of the two entity-tag comparisons.

    §8.8.3.2: strong implies weak; both are symmetric; weak is reflexive; a weak tag
    never matches strongly; the results equal Werkzeug's.
    """
    assert weak_match(a, a)
    assert weak_match(a, b) == weak_match(b, a)
    assert strong_match(a, b) == strong_match(b, a)
    if strong_match(a, b):
        assert weak_match(a, b)
    if a.startswith("W/"):
        assert not strong_match(a, b)
    theirs = parse_etags(a)
    assert theirs.contains_weak(b.removeprefix("W/")[1:-1]) == weak_match(a, b)


COMPARISONS = [
    # (a, b, weak, strong): the table of RFC 9110 §8.8.3.2
    ('W/"1"', 'W/"1"', True, False),
    ('W/"1"', 'W/"2"', False, False),
    ('W/"1"', '"1"', True, False),
    ('"1"', '"1"', True, True),
]


@pytest.mark.parametrize(("a", "b", "weak", "strong"), COMPARISONS)
def test_rfc_comparison_table(a: str, b: str, weak: bool, strong: bool) -> None:
    """The four rows of the example table in RFC 9110 §8.8.3.2."""
    assert (weak, strong) == (weak_match(a, b), strong_match(a, b))


NONE_MATCH = [
    ('"abc"', '"abc"', True),
    ('W/"abc"', '"abc"', True),  # §13.1.2: weak comparison
    ('"abc"', 'W/"abc"', True),
    ('"x", "y", W/"abc"', '"abc"', True),
    ('"x", "y"', '"abc"', False),
    ("*", '"abc"', True),  # any current representation
    ("*", None, True),  # any stored representation, with or without a tag
    ('""', '""', True),  # the empty opaque tag is valid
    ('"abc"', None, False),
    ("abc", '"abc"', True),  # lenient: an unquoted echo of our tag
    ('"ab"', '"abc"', False),
]


@pytest.mark.parametrize(("header", "etag", "matches"), NONE_MATCH)
def test_none_match(header: str, etag: str | None, matches: bool) -> None:
    """If-None-Match matches (304) exactly when one listed tag weakly matches, or ``*``."""
    assert matches == none_match(header, etag)


def test_modified_since() -> None:
    """§13.1.3: modified when Last-Modified is later than the date; equal is not modified."""
    assert (True, False, False, True) == (
        modified_since(100.0, 101.0),
        modified_since(100.0, 100.0),
        modified_since(100.0, 99.0),
        modified_since(None, 99.0),
    )
