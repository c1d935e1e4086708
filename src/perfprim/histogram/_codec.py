"""HdrHistogram wire format: V2 through the hdrhistogram package's codec, V0/V1 read here.

The package's encoder (a C extension for the ZigZag LEB128 varints, zlib and
base64) is correct and interoperable; only its histogram class is slow. So the
counts are copied into a package histogram of the same layout and encoded there,
and decoding reads the package's counts array back into a list.
"""

from __future__ import annotations

import array
import base64
import binascii
import ctypes
import struct
import zlib

from hdrh.codec import HdrCookieException, HdrLengthException  # type: ignore[import-untyped]
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from perfprim.exceptions import HistogramFormatError
from perfprim.histogram._layout import Layout, layout_for

__all__ = ["decode", "encode", "to_package"]


def to_package(layout: Layout, counts: list[int], count: int, low: int, high: int) -> HdrHistogram:
    """Return an ``hdrh`` histogram holding these counts (min/max in integer units)."""
    package = HdrHistogram(layout.lowest, layout.highest, layout.significant_figures)
    if package.counts_len != layout.counts_len:  # pragma: no cover - guarded by tests
        msg = f"layout mismatch with hdrhistogram: {package.counts_len} != {layout.counts_len}"
        raise AssertionError(msg)
    if count:
        # Copy only up to the highest non-empty slot, as machine words (much
        # faster than assigning a list into a ctypes array item by item).
        last = layout.index_of(high) + 1
        words = array.array("Q", counts[:last]).tobytes()
        ctypes.memmove(package.counts, words, len(words))
        package.total_count = count
        package.min_value = low
        package.max_value = high
    return package


def encode(layout: Layout, counts: list[int], count: int, low: int, high: int) -> str:
    """Encode counts of ``layout`` as a V2 base64 histoblob."""
    encoded: bytes = to_package(layout, counts, count, low, high).encode()
    return encoded.decode("ascii")


_V2_COMPRESSED = 0x1C849304
_V1_COMPRESSED = 0x1C849302
_V0_COMPRESSED = 0x1C849309
_V1_PLAIN = 0x1C849301
_V0_PLAIN = 0x1C849308
_COOKIES = {
    0x1C849303: "an uncompressed V2 histogram",
    _V1_PLAIN: "an uncompressed V1 histogram",
    _V0_PLAIN: "an uncompressed V0 histogram",
}
_V1_HEADER = struct.Struct(">iiiiqqd")  # cookie, payload, offset, digits, lowest, highest, ratio
_V0_HEADER = struct.Struct(">iiqqq")  # cookie, digits, lowest, highest, total count
_WORDS = {2: "h", 4: "i", 8: "q"}
MAX_COUNT = (1 << 62) - 1


def _format_error(detail: str) -> HistogramFormatError:
    return HistogramFormatError(f"cannot decode the HdrHistogram histoblob: {detail}")


def decode(text: str | bytes) -> tuple[Layout, list[int]]:
    """Decode a base64 compressed histoblob, V2 (today's) or V0/V1 (older logs).

    V2 goes through the hdrhistogram package's codec. The V0 and V1
    encodings, which jHiccup 2.0.1-2.0.6 and YCSB wrote and Java
    HdrHistogram still reads, are decoded here as Java's
    ``decodeFromCompressedByteBuffer`` does: a zlib stream holding a
    big-endian header (32 bytes for V0, 40 for V1) and one fixed-size word
    per counts slot (2, 4 or 8 bytes, named in the cookie).

    Raises:
        HistogramFormatError: If the text is not a compressed histogram of
            one of these versions; the message names what was found.
    """
    try:
        head = base64.b64decode(text[:12], validate=True) if len(text) >= 12 else b""
    except (binascii.Error, ValueError, TypeError):
        head = b""
    cookie = struct.unpack(">i", head[:4])[0] & ~0xF0 if len(head) >= 4 else None
    if cookie in (_V0_COMPRESSED, _V1_COMPRESSED):
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _format_error(f"the text is not base64 ({exc})") from exc
        return _decode_legacy(raw, cookie)
    if cookie in _COOKIES:
        raise _format_error(
            f"found {_COOKIES[cookie]} (cookie {cookie:#x}); HdrHistogram logs and "
            "histoblobs hold compressed histograms (encodeIntoCompressedByteBuffer)"
        )
    try:
        package = HdrHistogram.decode(text)
        layout = layout_for(
            int(package.lowest_trackable_value),
            int(package.highest_trackable_value),
            int(package.significant_figures),
        )
        words = array.array("Q")
        words.frombytes(bytes(package.counts))
        counts = words.tolist()
    except (
        HdrCookieException,
        HdrLengthException,
        binascii.Error,
        zlib.error,
        ValueError,
        TypeError,
        IndexError,
        RuntimeError,
    ) as exc:
        found = f"cookie {cookie:#x}" if cookie is not None else "no HdrHistogram cookie"
        detail = str(exc) or type(exc).__name__
        raise _format_error(
            f"expected a base64 compressed histogram (V2, as encode() and "
            f"HdrHistogram's encodeIntoCompressedByteBuffer write, or V0/V1 from older "
            f"logs), found {found} ({detail})"
        ) from exc
    return layout, counts


def _decode_legacy(raw: bytes, cookie: int) -> tuple[Layout, list[int]]:
    """Decode a compressed V0 or V1 histogram (``raw`` is the decoded base64)."""
    version = "V0" if cookie == _V0_COMPRESSED else "V1"
    if len(raw) < 8:
        raise _format_error(f"a compressed {version} histogram is cut short ({len(raw)} bytes)")
    (length,) = struct.unpack_from(">i", raw, 4)
    header = _V0_HEADER if version == "V0" else _V1_HEADER
    inflater = zlib.decompressobj()
    try:
        head = inflater.decompress(raw[8 : 8 + length], header.size)
    except zlib.error as exc:
        raise _format_error(f"the {version} histogram's zlib stream is corrupt ({exc})") from exc
    if len(head) < header.size:
        raise _format_error(f"the {version} histogram's header is cut short")
    fields = header.unpack(head)
    inner = fields[0]
    word = ((inner & 0xF0) >> 4) & 0xE
    expected = _V0_PLAIN if version == "V0" else _V1_PLAIN
    if inner & ~0xF0 != expected or word not in _WORDS:
        raise _format_error(
            f"the {version} histogram's inner cookie {inner:#x} is not a {version} "
            "histogram with 2, 4 or 8-byte counts"
        )
    if version == "V0":
        _, digits, lowest, highest, _total = fields
        payload = None
    else:
        _, payload, offset, digits, lowest, highest, _ratio = fields
        if offset:
            raise _format_error(
                f"the V1 histogram has normalizingIndexOffset {offset} (a shifted "
                "histogram); perfprim reads only unshifted ones"
            )
    try:
        layout = layout_for(lowest, highest, digits)
    except ValueError as exc:
        raise _format_error(f"the {version} histogram's header is invalid: {exc}") from exc
    size = layout.counts_len * word
    if payload is not None:
        size = min(size, max(payload, 0))
    try:
        body = inflater.decompress(inflater.unconsumed_tail, size)
    except zlib.error as exc:
        raise _format_error(f"the {version} histogram's zlib stream is corrupt ({exc})") from exc
    body = body[: len(body) - len(body) % word]
    counts = list(struct.unpack(f">{len(body) // word}{_WORDS[word]}", body))
    if any(c < 0 for c in counts):
        raise _format_error(f"the {version} histogram holds a negative count")
    if sum(counts) > MAX_COUNT:
        raise _format_error(f"the {version} histogram holds more than 2**62 - 1 values")
    return layout, counts + [0] * (layout.counts_len - len(counts))
