"""Key building: stable, distinct per argument, bounded, cluster-slot friendly."""

from __future__ import annotations

import enum
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfprim.cache._keys import body_of, encode_arg, key_prefix, safe_body
from perfprim.exceptions import ConfigurationError

scalars = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.text(max_size=20), st.booleans(), st.none()
)


class Color(enum.Enum):
    RED = 1


def test_look_alike_scalars_encode_differently() -> None:
    """1, 1.0, "1" and True (equal or look-alike in Python) give four different keys."""
    encoded = {encode_arg(v) for v in (1, 1.0, "1", True)}
    assert 4 == len(encoded)


@given(scalars, scalars)
def test_encoding_is_injective_on_scalars(a: object, b: object) -> None:
    """Two scalars share an encoding only if they are the same type and value."""
    if encode_arg(a) == encode_arg(b):
        assert (type(a), repr(a)) == (type(b), repr(b))


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=6))
def test_dict_and_kwargs_order_do_not_matter(mapping: dict[str, int]) -> None:
    """A dict argument and keyword arguments encode the same in any insertion order."""
    reversed_mapping = dict(reversed(list(mapping.items())))
    assert encode_arg(mapping) == encode_arg(reversed_mapping)
    assert body_of("f(", (), mapping, 200) == body_of("f(", (), reversed_mapping, 200)


def test_containers_are_distinguished() -> None:
    """A tuple, a list, a set and a frozenset of the same items differ."""
    encoded = {encode_arg(v) for v in ((1, 2), [1, 2], {1, 2}, frozenset({1, 2}))}
    assert 4 == len(encoded)


def test_enum_members_encode_by_name() -> None:
    """Enum members encode by qualified name, not by their value."""
    assert encode_arg(Color.RED).endswith("Color.RED")
    assert encode_arg(Color.RED) != encode_arg(1)


def test_object_with_default_repr_is_refused() -> None:
    """An object whose repr holds a memory address cannot make a stable key."""
    with pytest.raises(ConfigurationError, match="noself=True"):
        encode_arg(object())


@given(st.text(max_size=600))
def test_safe_body_is_bounded_and_brace_free(body: str) -> None:
    """A safe body never has braces and never exceeds the bound (+ digest)."""
    safe = safe_body(body, 100)
    assert "{" not in safe
    assert "}" not in safe
    assert len(safe) <= 100 or len(safe) <= 48 + 1 + 32


def test_safe_body_keeps_short_bodies_and_digests_long_ones() -> None:
    """Short, brace-free bodies are kept verbatim; long ones become prefix#digest."""
    assert "user:42" == safe_body("user:42")
    long = "x" * 500
    digested = safe_body(long)
    assert digested.startswith("x" * 48 + "#")
    assert safe_body(long) == digested
    assert safe_body(long + "y") != digested


def test_full_key_shape_puts_the_body_in_a_hash_tag() -> None:
    """namespace:generation:{body}: a suffix such as ':lock' keeps the same hash tag."""
    key = key_prefix("shop", "3.1") + safe_body("mod.f(1)") + "}"
    assert "shop:3.1:{mod.f(1)}" == key
    tag = key[key.index("{") + 1 : key.index("}")]
    lock = key + ":lock"
    assert tag == lock[lock.index("{") + 1 : lock.index("}")]


def test_keys_are_stable_across_processes() -> None:
    """The same arguments give the same body in a fresh interpreter (no salted hash())."""
    code = (
        "from perfprim.cache._keys import body_of;"
        "args = ('a', 1, 2.5, (None, True), frozenset({'x', 'y'}));"
        "print(body_of('m.f(', args, {'k': 'v'}, 200))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PYTHONPATH": ":".join(sys.path)},
        ).stdout
        for seed in (1, 2)
    }
    assert 1 == len(runs)
