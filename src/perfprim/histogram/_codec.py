"""HdrHistogram V2 wire format, through the hdrhistogram package's codec.

The package's encoder (a C extension for the ZigZag LEB128 varints, zlib and
base64) is correct and interoperable; only its histogram class is slow. So the
counts are copied into a package histogram of the same layout and encoded there,
and decoding reads the package's counts array back into a list.
"""

from __future__ import annotations

import array
import binascii
import ctypes
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


def decode(text: str | bytes) -> tuple[Layout, list[int]]:
    """Decode a V2 base64 histoblob into its layout and counts.

    Raises:
        HistogramFormatError: If the text is not a V2 histogram.
    """
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
        msg = (
            "cannot decode the HdrHistogram histoblob: expected the base64 V2 format "
            f"that encode() and HdrHistogram's encodeIntoCompressedByteBuffer write ({exc})"
        )
        raise HistogramFormatError(msg) from exc
    return layout, counts
