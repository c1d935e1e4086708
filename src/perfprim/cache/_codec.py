"""The entry codec: an :class:`~perfprim.cache.Entry` in one Redis string.

Layout (big-endian, 28-byte header, then the serializer's payload)::

    offset  size  field
    0       2     magic b"pP"
    2       1     codec version (1; 2 for a tagged entry)
    3       1     serializer format_id (1 = JSON, 2 = signed pickle)
    4       8     expires_at   (float64, wall-clock seconds)
    12      8     delta        (float64, seconds)
    20      8     stale_until  (float64, wall-clock seconds)
    28      ...   payload

A tagged entry (version 2) has, between header and payload, a 4-byte length
and that many bytes of UTF-8 text: ``key NUL version NUL key NUL version``
(the tag counter keys and the versions they had when the value was
computed; a tag never contains NUL). An untagged entry is written as
version 1, byte for byte as before tags existed. The text form is what the
read script (``lua/read_tagged.lua``) and the decoder split cheaply.

Decoding never raises: foreign bytes, a truncated header, an unknown version,
another serializer's payload or a payload the serializer does not trust all
decode to ``None`` (a miss), and the caller counts it.
"""

from __future__ import annotations

import logging
import struct

from perfprim.cache._entry import Entry
from perfprim.cache._serializers import Serializer

__all__ = ["HEADER", "MAGIC", "TAGGED_VERSION", "VERSION", "EntryCodec"]

MAGIC = b"pP"
VERSION = 1
TAGGED_VERSION = 2
HEADER = struct.Struct(">2sBBddd")
_SIZE = HEADER.size
_TIMES = struct.Struct(">ddd")  # the header's three times, at offset 4
_TAGS_LENGTH = struct.Struct(">I")

_log = logging.getLogger("perfprim.cache")


class EntryCodec:
    """Encodes entries for one serializer and decodes them back, safely.

    Args:
        serializer: The value serializer.
    """

    __slots__ = (
        "_format_id",
        "_loads",
        "_pack",
        "_prefix",
        "_tagged_prefix",
        "_times_from",
        "serializer",
    )

    def __init__(self, serializer: Serializer) -> None:
        self.serializer = serializer
        self._format_id = serializer.format_id
        self._prefix = MAGIC + bytes((VERSION, serializer.format_id))
        self._tagged_prefix = MAGIC + bytes((TAGGED_VERSION, serializer.format_id))
        self._pack = HEADER.pack
        self._times_from = _TIMES.unpack_from
        self._loads = serializer.loads

    def encode(self, entry: Entry) -> bytes:
        """Return the header and payload of ``entry`` as one bytes object.

        Raises:
            SerializationError: If the serializer cannot encode the value.
        """
        payload = self.serializer.dumps(entry.value)
        if not entry.tags:
            return (
                self._pack(
                    MAGIC,
                    VERSION,
                    self._format_id,
                    entry.expires_at,
                    entry.delta,
                    entry.stale_until,
                )
                + payload
            )
        tags = "\0".join(f"{key}\0{version}" for key, version in entry.tags).encode()
        return b"".join(
            (
                self._pack(
                    MAGIC,
                    TAGGED_VERSION,
                    self._format_id,
                    entry.expires_at,
                    entry.delta,
                    entry.stale_until,
                ),
                _TAGS_LENGTH.pack(len(tags)),
                tags,
                payload,
            )
        )

    def decode(self, data: bytes, key: str) -> Entry | None:
        """Return the entry in ``data``, or ``None`` if it cannot be trusted.

        Args:
            data: The raw Redis string.
            key: The key it was read from (for the log line only).
        """
        if data[:4] == self._prefix and len(data) >= _SIZE:
            try:
                value = self._loads(data[_SIZE:])
            except Exception as exc:  # untrusted bytes must never raise to the caller
                _log.warning(
                    "perfprim cache: ignoring an untrusted Redis value under %r (%s: %s); "
                    "treated as a miss",
                    key,
                    type(exc).__name__,
                    exc,
                )
                return None
            expires_at, delta, stale_until = self._times_from(data, 4)
            return Entry(value, expires_at, delta, stale_until)
        if data[:4] == self._tagged_prefix:
            return self._decode_tagged(data, key)
        _log.warning(
            "perfprim cache: ignoring a foreign or corrupted Redis value under %r "
            "(bad header: %r); treated as a miss",
            key,
            bytes(data[:4]),
        )
        return None

    def _decode_tagged(self, data: bytes, key: str) -> Entry | None:
        try:
            (length,) = _TAGS_LENGTH.unpack_from(data, _SIZE)
            start = _SIZE + _TAGS_LENGTH.size
            parts = data[start : start + length].decode().split("\0")
            tags = tuple(zip(parts[::2], map(int, parts[1::2]), strict=True))
            value = self._loads(data[start + length :])
        except Exception as exc:  # untrusted bytes must never raise to the caller
            _log.warning(
                "perfprim cache: ignoring an untrusted tagged Redis value under %r (%s: %s); "
                "treated as a miss",
                key,
                type(exc).__name__,
                exc,
            )
            return None
        expires_at, delta, stale_until = self._times_from(data, 4)
        return Entry(value, expires_at, delta, stale_until, tags)
