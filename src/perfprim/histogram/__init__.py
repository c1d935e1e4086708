"""HDR latency histograms: fast recording in float seconds, HdrHistogram wire format.

See ``docs/histogram.md``.

- :class:`LatencyHistogram` records values in seconds with HdrHistogram's
  precision guarantee, is thread safe, pickles, merges, and encodes to the
  HdrHistogram V2 format that the Java, C, Go and JavaScript implementations
  read.
- :class:`IntervalRecorder` hands out the histogram of each interval,
  losing nothing under concurrent writers.
- :class:`HistogramLogWriter` and :class:`HistogramLogReader` write and read
  HdrHistogram interval logs (``.hlog``).
"""

from __future__ import annotations

from perfprim.histogram._histogram import LatencyHistogram
from perfprim.histogram._layout import Layout
from perfprim.histogram._log import HistogramLogReader, HistogramLogWriter
from perfprim.histogram._recorder import IntervalRecorder

__all__ = [
    "HistogramLogReader",
    "HistogramLogWriter",
    "IntervalRecorder",
    "LatencyHistogram",
    "Layout",
]
