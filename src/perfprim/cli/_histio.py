"""Histogram files: interval logs (``.hlog``), base64 V2 histoblobs, ``.hgrm`` tables.

The format is recognised from the content, not the name:

- an HdrHistogram interval log (``#[...]`` comments, the legend line, or
  ``[Tag=x,]start,length,max,HISTF...`` lines): every interval is merged;
- a base64 V2 histoblob (one ``HISTF...`` token), as ``encode()`` writes;
- a percentile distribution table (``Value Percentile TotalCount ...``,
  what Java's ``outputPercentileDistribution``, wrk2 and
  ``percentile_distribution()`` print). A table is a summary: its histogram is
  rebuilt with each line's count at the line's value, so percentiles read
  back are the table's values, and it cannot be merged losslessly.

Values in a histoblob or log are integers in a unit the file does not name:
microseconds by default (``--unit``). A table's values are in milliseconds by
default.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from perfprim.cli._output import InputError

if TYPE_CHECKING:
    from perfprim.histogram import LatencyHistogram

__all__ = ["UNITS", "HistogramFile", "read_histogram", "write_histogram"]

UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
_LOG_LINE = re.compile(r"^(Tag=[^,]*,)?[-+\d.eE]+,[-+\d.eE]+,[-+\d.eE]+,\S+$")
_HGRM_LINE = re.compile(r"^\s*([-+\d.eE]+)\s+([-+\d.eE]+)\s+(\d+)(\s+[-+\d.eEinfINF]+)?\s*$")


@dataclass(slots=True)
class HistogramFile:
    """A histogram read from a file, with where it came from."""

    path: str
    format: str  # "hlog", "histoblob" or "hgrm"
    histogram: LatencyHistogram
    intervals: int
    lossy: bool


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read {path!r}: {exc.strerror or exc}"
        raise InputError(msg) from exc
    except UnicodeDecodeError as exc:
        msg = f"{path!r} is not a text file (.hlog, a base64 histoblob, or .hgrm)"
        raise InputError(msg) from exc


def _detect(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "empty"
    head = lines[0].split()
    if head[:3] == ["Value", "Percentile", "TotalCount"]:
        return "hgrm"
    if any(
        line.startswith(("#[", '"StartTimestamp"')) or _LOG_LINE.match(line) for line in lines[:8]
    ):
        return "hlog"
    if len(lines) == 1 and len(head) == 1:
        return "histoblob"
    return "unknown"


def _from_log(path: str, text: str, unit: float) -> tuple[LatencyHistogram, int]:
    from perfprim.exceptions import HistogramError
    from perfprim.histogram import HistogramLogReader

    merged = None
    intervals = 0
    tagged = 0
    try:
        for histogram in HistogramLogReader(io.StringIO(text), unit=unit):
            if histogram.tag is not None:
                # Another series (perfprim load's "lateness"): the untagged intervals are the
                # log's histogram, as in HdrHistogram's HistogramLogProcessor without -tag.
                tagged += 1
                continue
            intervals += 1
            if merged is None:
                merged = histogram
            else:
                _check_same_layout(path, merged, histogram, what="its intervals")
                merged.merge(histogram)
    except HistogramError as exc:
        msg = f"{path}: {exc}"
        raise InputError(msg) from exc
    if merged is None:
        msg = f"{path}: the interval log holds no interval" + (
            f" without a tag ({tagged} tagged ones are another series)" if tagged else ""
        )
        raise InputError(msg)
    return merged, intervals


def _from_hgrm(path: str, text: str, unit: float) -> LatencyHistogram:
    from perfprim.exceptions import PerfprimError
    from perfprim.histogram import LatencyHistogram

    points: list[tuple[float, int]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "Value")):
            continue
        match = _HGRM_LINE.match(line)
        if match is None:
            msg = (
                f"{path}: line {number} is not 'value percentile totalcount [1/(1-p)]': "
                f"{line[:60]!r}"
            )
            raise InputError(msg)
        points.append((float(match.group(1)) * unit, int(match.group(3))))
    if not points:
        msg = f"{path}: the percentile table has no rows"
        raise InputError(msg)
    top = max(value for value, _ in points)
    histogram = LatencyHistogram(highest=max(3600.0, 2 * top), clamp=False)
    previous = 0
    try:
        for value, cumulative in points:
            if cumulative < previous:
                msg = f"{path}: TotalCount decreases ({cumulative} after {previous})"
                raise InputError(msg)
            if cumulative > previous:
                histogram.record(value, cumulative - previous)
            previous = cumulative
    except PerfprimError as exc:
        msg = f"{path}: {exc}"
        raise InputError(msg) from exc
    return histogram


def read_histogram(path: str, *, unit: str | None = None) -> HistogramFile:
    """Read a histogram file of any of the three formats.

    Args:
        path: The file.
        unit: The unit of the file's values (``ns``, ``us``, ``ms``, ``s``);
            ``us`` for logs and histoblobs and ``ms`` for tables by default.

    Returns:
        The histogram and its provenance.

    Raises:
        InputError: If the file cannot be read or is in none of the formats.
    """
    from perfprim.exceptions import HistogramError
    from perfprim.histogram import LatencyHistogram

    text = _read_text(path)
    kind = _detect(text)
    if kind == "hlog":
        histogram, intervals = _from_log(path, text, UNITS[unit or "us"])
        return HistogramFile(path, "hlog", histogram, intervals, lossy=False)
    if kind == "hgrm":
        return HistogramFile(path, "hgrm", _from_hgrm(path, text, UNITS[unit or "ms"]), 1, True)
    if kind == "histoblob":
        try:
            histogram = LatencyHistogram.decode(text.strip(), unit=UNITS[unit or "us"])
        except HistogramError as exc:
            msg = f"{path}: {exc}"
            raise InputError(msg) from exc
        return HistogramFile(path, "histoblob", histogram, 1, lossy=False)
    if kind == "empty":
        msg = f"{path} is empty: expected an .hlog, a base64 histoblob or an .hgrm table"
        raise InputError(msg)
    msg = (
        f"{path} is not a histogram file: expected an HdrHistogram interval log (.hlog), a "
        "base64 V2 histoblob (HISTF...), or a percentile table (.hgrm)"
    )
    raise InputError(msg)


def _check_same_layout(
    path: str, first: LatencyHistogram, other: LatencyHistogram, *, what: str
) -> None:
    if first.layout != other.layout or first.unit != other.unit:
        msg = (
            f"{path}: {what} differ in range or precision ({_layout(first)} vs "
            f"{_layout(other)}); merging would move values between buckets, so it is not "
            "lossless: merge histograms recorded with the same settings"
        )
        raise InputError(msg)


def _layout(histogram: LatencyHistogram) -> str:
    return (
        f"{histogram.lowest:g}..{histogram.highest:g} s, "
        f"{histogram.significant_figures} digits, unit {histogram.unit:g} s"
    )


def merge_files(files: list[HistogramFile]) -> LatencyHistogram:
    """Merge histograms losslessly: same range, precision and unit, counts added exactly.

    Raises:
        InputError: For a table (.hgrm) or histograms with different layouts.
    """
    for item in files:
        if item.lossy:
            msg = (
                f"{item.path} is a percentile table (.hgrm), a summary that cannot be merged "
                "losslessly: merge the .hlog or histoblobs it was printed from"
            )
            raise InputError(msg)
    merged = files[0].histogram.copy()
    for item in files[1:]:
        _check_same_layout(item.path, merged, item.histogram, what="the histograms")
        merged.merge(item.histogram)
    return merged


def write_histogram(histogram: LatencyHistogram, path: str, *, unit: str = "us") -> str:
    """Write ``histogram`` to ``path`` in the format its suffix names.

    ``.hlog``: a one-interval log; ``.hgrm``: the percentile table
    (milliseconds); anything else: the base64 histoblob.

    Returns:
        The format written.

    Raises:
        InputError: If the file cannot be written.
    """
    from perfprim.histogram import HistogramLogWriter

    suffix = Path(path).suffix.lower()
    out = io.StringIO()
    if suffix == ".hlog":
        start = histogram.start_time if histogram.start_time is not None else 0.0
        end = histogram.end_time if histogram.end_time is not None else start
        writer = HistogramLogWriter(out)
        writer.write_header(start_time=start)
        writer.write_comment(f"[perfprim hist merge, values in {unit}]")
        writer.write_interval(histogram, start_time=start, end_time=end)
        kind = "hlog"
    elif suffix == ".hgrm":
        out.write(histogram.percentile_distribution(output_unit=1e-3))
        kind = "hgrm"
    else:
        out.write(histogram.encode() + "\n")
        kind = "histoblob"
    try:
        Path(path).write_text(out.getvalue(), encoding="utf-8")
    except OSError as exc:
        msg = f"cannot write {path!r}: {exc.strerror or exc}"
        raise InputError(msg) from exc
    return kind


def finite_or_none(value: float) -> float | None:
    """``value``, or None when it is not finite (for JSON)."""
    return value if math.isfinite(value) else None
