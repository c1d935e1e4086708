"""Serializers and the entry codec: round trips, signing, and untrusted bytes."""

from __future__ import annotations

import json
import logging
import math
import pickle
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfprim.cache import _codec, _serializers
from perfprim.cache._codec import HEADER, MAGIC, VERSION, EntryCodec
from perfprim.cache._serializers import (
    JsonSerializer,
    PickleSerializer,
    Serializer,
    UntrustedPayload,
)
from perfprim.cache.advanced import Entry
from perfprim.exceptions import ConfigurationError, SerializationError

SECRET = b"s" * 32

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
times = st.floats(min_value=0.0, max_value=4e9)


def test_all_is_pinned() -> None:
    """The modules export exactly these names."""
    assert [
        "JsonSerializer",
        "PickleSerializer",
        "Serializer",
        "UntrustedPayload",
    ] == _serializers.__all__
    assert ["HEADER", "MAGIC", "TAGGED_VERSION", "VERSION", "EntryCodec"] == _codec.__all__


def test_serializers_satisfy_the_protocol() -> None:
    """Both serializers are Serializers with distinct format ids."""
    json_s, pickle_s = JsonSerializer(), PickleSerializer(secret=SECRET)
    assert isinstance(json_s, Serializer)
    assert isinstance(pickle_s, Serializer)
    assert 1 == json_s.format_id
    assert 2 == pickle_s.format_id


@given(value=json_values, expires=times, delta=st.floats(0.0, 100.0), extra=st.floats(0.0, 1e6))
def test_json_entry_round_trip(value: object, expires: float, delta: float, extra: float) -> None:
    """Any JSON value and its times come back exactly."""
    codec = EntryCodec(JsonSerializer())
    entry = Entry(value, expires, delta, expires + extra)
    assert entry == codec.decode(codec.encode(entry), "k")


@given(value=st.one_of(json_values, st.sets(st.integers()), st.tuples(st.integers())))
def test_pickle_entry_round_trip(value: object) -> None:
    """Pickle carries sets and tuples too, signed."""
    codec = EntryCodec(PickleSerializer(secret=SECRET))
    entry = Entry(value, 10.0, 0.5, 20.0)
    assert entry == codec.decode(codec.encode(entry), "k")


def test_header_layout() -> None:
    """The header is magic, version, serializer id, then three big-endian doubles."""
    data = EntryCodec(JsonSerializer()).encode(Entry([1], 1.5, 0.25, 3.0))
    assert 28 == HEADER.size
    assert (b"pP", 1, 1, 1.5, 0.25, 3.0) == HEADER.unpack_from(data)
    assert b"[1]" == data[HEADER.size :]


def test_none_is_a_value() -> None:
    """A cached None decodes to an Entry holding None, not to a miss."""
    codec = EntryCodec(JsonSerializer())
    decoded = codec.decode(codec.encode(Entry(None, 1.0, 0.0, 1.0)), "k")
    assert decoded is not None
    assert decoded.value is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world, not ours",
        MAGIC,
        MAGIC + bytes((VERSION, 1)) + b"\x00" * 5,  # truncated header
        MAGIC + bytes((VERSION + 1, 1)) + b"\x00" * 24 + b"1",  # unknown version
        MAGIC + bytes((VERSION, 2)) + b"\x00" * 24 + b"1",  # another serializer's payload
        MAGIC + bytes((VERSION, 1)) + b"\x00" * 24 + b"{not json",  # corrupted payload
        MAGIC + bytes((VERSION, 1)) + b"\x00" * 24 + b"\xff\xfe",  # not UTF-8
    ],
)
def test_untrusted_bytes_decode_to_none_and_are_logged(
    data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Foreign, truncated, wrong-version or corrupted bytes are a miss, logged, never raised."""
    codec = EntryCodec(JsonSerializer())
    with caplog.at_level(logging.WARNING, logger="perfprim.cache"):
        assert codec.decode(data, "the-key") is None
    assert "the-key" in caplog.text


@given(data=st.binary(max_size=64))
def test_decode_never_raises(data: bytes) -> None:
    """Whatever bytes Redis returns, decoding returns an Entry or None."""
    for serializer in (JsonSerializer(), PickleSerializer(secret=SECRET)):
        result = EntryCodec(serializer).decode(data, "k")
        assert result is None or isinstance(result, Entry)


class Bomb:
    """Unpickling this would run code: the test fails if it ever happens."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (pytest.fail, ("an unsigned payload was unpickled",))


def test_pickle_refuses_unsigned_and_foreign_payloads() -> None:
    """A pickle without our signature, or signed with another key, is never unpickled."""
    ours = PickleSerializer(secret=SECRET)
    theirs = PickleSerializer(secret=b"t" * 32)
    bomb = pickle.dumps(Bomb())
    for data in (bomb, b"\x00" * 32 + bomb, theirs.dumps(Bomb()), b"short"):
        with pytest.raises(UntrustedPayload):
            ours.loads(data)
    codec = EntryCodec(ours)
    forged = MAGIC + bytes((VERSION, 2)) + struct.pack(">ddd", 1, 0, 1) + theirs.dumps(Bomb())
    assert codec.decode(forged, "k") is None


def test_pickle_tampered_payload_is_refused() -> None:
    """Flipping one byte of a signed pickle breaks the signature."""
    ser = PickleSerializer(secret=SECRET)
    data = bytearray(ser.dumps({"a": 1}))
    data[-2] ^= 0x01
    with pytest.raises(UntrustedPayload):
        ser.loads(bytes(data))


def test_pickle_accepts_previous_secrets_for_rotation() -> None:
    """Payloads signed with an old key still read; new ones are signed with the new key."""
    old = PickleSerializer(secret=b"o" * 32)
    new = PickleSerializer(secret=SECRET, previous_secrets=(b"o" * 32,))
    assert {"x": 1} == new.loads(old.dumps({"x": 1}))
    with pytest.raises(UntrustedPayload):
        old.loads(new.dumps({"x": 1}))


@pytest.mark.parametrize("secret", [None, b"", ""])
def test_pickle_refuses_to_be_built_without_a_secret(secret: object) -> None:
    """No secret, no pickle: the message says how to make one."""
    with pytest.raises(ConfigurationError, match=r"secrets\.token_hex"):
        PickleSerializer(secret=secret)  # type: ignore[arg-type]


def test_pickle_refuses_short_or_odd_secrets() -> None:
    """Secrets shorter than 16 bytes or of another type are refused."""
    with pytest.raises(ConfigurationError, match="at least 16 bytes"):
        PickleSerializer(secret=b"short")
    with pytest.raises(ConfigurationError, match="bytes or str"):
        PickleSerializer(secret=1234567890123456789)  # type: ignore[arg-type]
    assert "PickleSerializer(secret=<16 bytes>" in repr(PickleSerializer(secret="x" * 16))


@pytest.mark.parametrize("value", [{1, 2}, object(), b"bytes", {"a": {1: "int key"}}, math])
def test_json_rejects_unencodable_values_naming_the_fix(value: object) -> None:
    """JSON refuses what it cannot carry at set time and names PickleSerializer."""
    with pytest.raises(SerializationError, match=r"PickleSerializer\(secret=\.\.\.\)") as info:
        JsonSerializer().dumps(value)
    assert isinstance(info.value, ValueError)


def test_pickle_rejects_unpicklable_values() -> None:
    """An unpicklable value (a lambda) raises SerializationError, not a pickle error."""
    with pytest.raises(SerializationError, match="picklable"):
        PickleSerializer(secret=SECRET).dumps(lambda: 1)


@pytest.mark.parametrize(
    "text",
    ['{"a":1}', ' {"a": 1} ', "[1, 2]\n", "  3", "NaN", '"x"', "", " ", "{", '{"a":1} x', "1 2"],
)
def test_json_loads_agrees_with_the_json_module(text: str) -> None:
    """The scanner fast path gives json.loads' value, or raises where json.loads raises."""
    data = text.encode()
    try:
        expected = json.loads(data)
    except ValueError:
        with pytest.raises(ValueError):
            JsonSerializer().loads(data)
    else:
        got = JsonSerializer().loads(data)
        assert repr(expected) == repr(got)


@given(st.text(alphabet=' \t\n{}[]",:0123456789.eEaNnulrtf-', max_size=30))
def test_json_loads_agrees_with_the_json_module_on_any_text(text: str) -> None:
    """Any text (mostly invalid JSON): same value or same refusal as json.loads."""
    data = text.encode()
    try:
        expected = json.loads(data)
    except ValueError:
        with pytest.raises(ValueError):
            JsonSerializer().loads(data)
    else:
        assert repr(expected) == repr(JsonSerializer().loads(data))
