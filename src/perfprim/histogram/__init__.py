"""HDR latency histograms: fast recording in float seconds, HdrHistogram wire format.

See ``docs/histogram.md``. :class:`LatencyHistogram` records values in seconds
with HdrHistogram's precision guarantee, is thread safe, pickles, merges, and
encodes to the HdrHistogram V2 format that the Java, C, Go and JavaScript
implementations read.
"""

from __future__ import annotations

from perfprim.histogram._histogram import LatencyHistogram
from perfprim.histogram._layout import Layout

__all__ = ["LatencyHistogram", "Layout"]
