"""HdrHistogram interval logs (``.hlog``): a writer and a reader.

The format is Java HdrHistogram's ``HistogramLogWriter`` version 1.3, which
``HistogramLogProcessor``, the C, Go and Rust readers and the online plotters
read::

    #[Histogram log format version 1.3]
    #[StartTime: 1441812279.474 (seconds since epoch), Wed Sep 09 15:24:39 UTC 2015]
    #[BaseTime: 1441812279.474 (seconds since epoch)]
    "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
    0.127,1.007,2.769,HISTFAAAAEV42pNpmSz...
    Tag=db,0.127,1.007,0.310,HISTFAAAAEV42pNpmSz...

Timestamps are seconds relative to ``BaseTime``; ``Interval_Max`` is the
interval's max divided by ``max_value_unit`` (milliseconds by default, as in
Java).

The reader also reads the logs of older writers, as Java's
``HistogramLogReader`` does: format 1.01-1.2 (jHiccup 2.0.1-2.0.7, YCSB), whose
legend says ``"EndTimestamp"`` for what is the interval length, and whose
histograms are V0 or V1 encodings (see ``_codec``).

The hdrhistogram package's writer gets three things wrong, fixed here: its
``StartTime`` line crashes (``datetime.fromtimestamp`` on milliseconds,
then ``iso_format``), it floors ``Interval_Max`` with ``//``, and it never
writes the ``Tag=`` prefix.
"""

from __future__ import annotations

import math
import os
import re
import time as _time
from collections.abc import Iterable, Iterator
from typing import TextIO

from perfprim import _validate as v
from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError, HistogramFormatError
from perfprim.histogram._histogram import LatencyHistogram, check_unit

__all__ = ["HistogramLogReader", "HistogramLogWriter", "check_tag"]

LOG_FORMAT_VERSION = "1.3"
LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
_START = re.compile(r"#\[StartTime:\s*([-+\d.eE]+)")
_BASE = re.compile(r"#\[BaseTime:\s*([-+\d.eE]+)")
_VERSION = re.compile(r"#\[Histogram log format version\s*([^\]\s]+)")
_MAX_TIME = 1e15  # seconds: 30 million years, past any real timestamp
_YEAR = 365 * 24 * 3600.0


def check_tag(tag: object) -> str | None:
    """Validate an interval tag: HdrHistogram forbids commas, spaces and line breaks.

    Args:
        tag: The tag, or None.

    Returns:
        The tag.

    Raises:
        ConfigurationError: If the tag holds a forbidden character or is empty.
    """
    if tag is None:
        return None
    if not isinstance(tag, str) or not tag or any(c in tag for c in ", \t\r\n"):
        msg = f"tag must be a non-empty string without commas, spaces or line breaks, got {tag!r}"
        raise ConfigurationError(msg)
    return tag


class HistogramLogWriter:
    """Write interval histograms to a text stream in the HdrHistogram ``.hlog`` format.

    Args:
        out: A text stream (``open(path, "w")``, ``io.StringIO()``).
        max_value_unit: Seconds per unit of the ``Interval_Max`` column
            (1e-3: milliseconds, Java's default).

    Raises:
        ConfigurationError: If ``max_value_unit`` is not positive.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> log = HistogramLogWriter(out)
        >>> log.write_header(start_time=1_700_000_000.0)
        >>> h = LatencyHistogram()
        >>> h.record(0.0125)
        >>> h.start_time, h.end_time, h.tag = 1_700_000_000.5, 1_700_000_001.5, "api"
        >>> log.write_interval(h)
        >>> out.getvalue().splitlines()[-1][:32]  # Interval_Max: the max's bucket, in ms
        'Tag=api,0.500,1.000,12.503,HISTF'
    """

    def __init__(self, out: TextIO, *, max_value_unit: float = 1e-3) -> None:
        if not callable(getattr(out, "write", None)):
            raise v.fail("out", "a text stream with a write() method", out, "open(path, 'w')")
        self._out = out
        self._max_unit = to_seconds(
            max_value_unit, name="max_value_unit", example="1e-3 = milliseconds"
        )
        self.base_time = 0.0

    def write_header(
        self, *, start_time: float | None = None, base_time: float | None = None
    ) -> None:
        """Write the version, ``StartTime`` and ``BaseTime`` comments and the legend.

        Args:
            start_time: When recording started, seconds since the epoch
                (default: now).
            base_time: What interval timestamps are relative to (default:
                ``start_time``). Pass 0.0 to write absolute timestamps.

        Raises:
            ConfigurationError: If a time is not a finite number of seconds
                in ``[0, 1e15]``.
        """
        start = _time.time() if start_time is None else _timestamp(start_time, "start_time")
        base = start if base_time is None else _timestamp(base_time, "base_time")
        when = _time.strftime("%a %b %d %H:%M:%S UTC %Y", _time.gmtime(start))
        self.write_comment(f"[Histogram log format version {LOG_FORMAT_VERSION}]")
        self.write_comment(f"[StartTime: {start:.3f} (seconds since epoch), {when}]")
        self.write_comment(f"[BaseTime: {base:.3f} (seconds since epoch)]")
        self._out.write(LEGEND + "\n")
        self.base_time = base

    def write_comment(self, text: str) -> None:
        """Write a ``#`` comment line.

        Args:
            text: The comment, one line.

        Raises:
            ConfigurationError: If the text holds a line break.
        """
        v.text(text, "text", allow_empty=True)
        if "\n" in text or "\r" in text:
            msg = "a log comment must be one line: remove the line breaks"
            raise ConfigurationError(msg)
        self._out.write(f"#{text}\n")

    def write_interval(
        self,
        histogram: LatencyHistogram,
        *,
        start_time: float | None = None,
        end_time: float | None = None,
        tag: str | None = None,
    ) -> None:
        """Write one interval line.

        Args:
            histogram: The interval's histogram (from :meth:`IntervalRecorder.interval`).
            start_time: Interval start, seconds since the epoch (default: the
                histogram's ``start_time``).
            end_time: Interval end (default: the histogram's ``end_time``).
            tag: The line's tag (default: the histogram's ``tag``).

        Raises:
            ConfigurationError: If ``histogram`` is not a ``LatencyHistogram``,
                no start or end time is known, a time is not finite, the end
                is before the start, or the tag is invalid.
        """
        v.instance(histogram, "histogram", LatencyHistogram, "a LatencyHistogram")
        start = histogram.start_time if start_time is None else start_time
        end = histogram.end_time if end_time is None else end_time
        if start is None or end is None:
            msg = (
                "the interval needs start and end times: pass start_time= and end_time=, "
                "or use histograms from IntervalRecorder.interval()"
            )
            raise ConfigurationError(msg)
        start = _timestamp(start, "start_time")
        end = _timestamp(end, "end_time")
        if end < start:
            msg = (
                f"end_time {end!r} is before start_time {start!r}: an interval's length "
                "cannot be negative"
            )
            raise ConfigurationError(msg)
        label = check_tag(histogram.tag if tag is None else tag)
        prefix = f"Tag={label}," if label else ""
        max_value = histogram.max / self._max_unit
        self._out.write(
            f"{prefix}{start - self.base_time:.3f},{end - start:.3f},{max_value:.3f},"
            f"{histogram.encode()}\n"
        )


class HistogramLogReader:
    """Read interval histograms from an HdrHistogram ``.hlog`` text stream.

    Iterate it to get one :class:`LatencyHistogram` per interval line, with
    absolute ``start_time`` and ``end_time`` (seconds since the epoch) and
    ``tag``. Base time follows Java's rule: the ``BaseTime`` comment if
    present, else 0 when timestamps look absolute, else ``StartTime`` (a first
    timestamp more than a year before ``StartTime`` means relative ones).

    Logs of every version Java reads are read: format 1.3 and 1.2 with V2
    histograms, and the older 1.01-1.1 logs of jHiccup 2.0.1-2.0.6 and YCSB,
    whose histograms are V0 or V1 encodings. :attr:`format_version` holds the
    version the log declared.

    Args:
        source: A text stream (``open(path)``, ``io.StringIO(text)``) or any
            iterable of lines.
        unit: Seconds per integer value in the encoded histograms.

    Raises:
        ConfigurationError: If ``source`` is a path or text rather than a
            stream, or ``unit`` is invalid.
    """

    def __init__(self, source: TextIO | Iterable[str], *, unit: float = 1e-6) -> None:
        if isinstance(source, (str, bytes, os.PathLike)) or not isinstance(source, Iterable):
            raise v.fail(
                "source",
                "an open text stream or an iterable of lines",
                source,
                "pass open(path) or io.StringIO(text)",
            )
        self._source = source
        self._unit = check_unit(unit)
        self.start_time: float | None = None
        self.base_time: float | None = None
        self.format_version: str | None = None

    def __iter__(self) -> Iterator[LatencyHistogram]:
        """Yield the interval histograms in file order.

        Raises:
            HistogramFormatError: On a malformed line (the message names it).
        """
        for number, item in enumerate(self._source, start=1):
            raw: object = item  # a stream opened in binary mode yields bytes
            if not isinstance(raw, str):
                msg = (
                    f"line {number}: expected text, got {v.show(raw)}: open the log in text "
                    "mode (open(path), not open(path, 'rb'))"
                )
                raise HistogramFormatError(msg)
            line = raw.strip()
            if not line:
                continue
            if line.startswith("#"):
                self._comment(line)
                continue
            if line.startswith('"StartTimestamp"'):
                continue
            yield self._interval(line, number)

    def _comment(self, line: str) -> None:
        match = _VERSION.match(line)
        if match:
            self.format_version = match.group(1)
            return
        for pattern, attribute in ((_START, "start_time"), (_BASE, "base_time")):
            match = pattern.match(line)
            if match:
                try:
                    value = float(match.group(1))
                except ValueError:
                    value = math.nan
                if not (math.isfinite(value) and abs(value) <= _MAX_TIME):
                    msg = f"{line[:60]!r}: the time is not a number of seconds since the epoch"
                    raise HistogramFormatError(msg)
                setattr(self, attribute, value)
                return

    def _interval(self, line: str, number: int) -> LatencyHistogram:
        tag = None
        if line.startswith("Tag="):
            tag, _, line = line[4:].partition(",")
        fields = line.split(",")
        if len(fields) != 4:
            msg = f"line {number}: expected [Tag=x,]start,length,max,histogram, got {line[:60]!r}"
            raise HistogramFormatError(msg)
        try:
            stamp, length, _max = float(fields[0]), float(fields[1]), float(fields[2])
        except ValueError as exc:
            msg = f"line {number}: timestamps must be numbers: {line[:60]!r}"
            raise HistogramFormatError(msg) from exc
        if not all(math.isfinite(x) and abs(x) <= _MAX_TIME for x in (stamp, length, _max)):
            msg = f"line {number}: timestamps must be finite numbers of seconds: {line[:60]!r}"
            raise HistogramFormatError(msg)
        if length < 0:
            msg = f"line {number}: the interval length is negative: {line[:60]!r}"
            raise HistogramFormatError(msg)
        if self.start_time is None:
            self.start_time = stamp
        if self.base_time is None:
            self.base_time = self.start_time if stamp < self.start_time - _YEAR else 0.0
        try:
            histogram = LatencyHistogram.decode(fields[3], unit=self._unit)
        except HistogramFormatError as exc:
            version = f" (log format version {self.format_version})" if self.format_version else ""
            msg = f"line {number}{version}: {exc}"
            raise HistogramFormatError(msg) from exc
        histogram.start_time = self.base_time + stamp
        histogram.end_time = histogram.start_time + length
        histogram.tag = tag or None
        return histogram


def _timestamp(value: object, name: str) -> float:
    """A log time: finite seconds in [0, 1e15] (epoch seconds, or relative ones)."""
    return v.number(value, name, low=0.0, high=_MAX_TIME, hint="seconds since the epoch")
