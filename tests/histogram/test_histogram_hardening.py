"""Histograms under bad input, older HdrHistogram logs, and counts the wire format cannot carry."""

from __future__ import annotations

import base64
import io
import math
import struct
import zlib
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from perfprim.exceptions import ConfigurationError, HistogramFormatError, HistogramRangeError
from perfprim.histogram import HistogramLogReader, HistogramLogWriter, LatencyHistogram
from perfprim.histogram._histogram import MAX_COUNT

DATA = Path(__file__).parent / "data"


def _interval_max_column(path: Path) -> list[str]:
    """The Interval_Max column as the Java writer printed it (milliseconds, 3 decimals)."""
    return [line.split(",")[2] for line in path.read_text().splitlines() if line[:1].isdigit()]


def test_v2_log_maxima_match_the_java_writers_interval_max() -> None:
    """Each interval's max (at the histogram's precision) is what jHiccup 2.0.7 wrote for it."""
    path = DATA / "jHiccup-2.0.7S.logV2.hlog"
    with path.open() as source:
        reader = HistogramLogReader(source, unit=1e-9)
        intervals = list(reader)
    assert "1.2" == reader.format_version
    assert _interval_max_column(path) == [f"{h.max * 1e3:.3f}" for h in intervals]


def test_v0_log_of_jhiccup_2_0_3_is_read_as_java_reads_it() -> None:
    """A format 1.01 log of V0 histograms loads; each interval's max is in the bucket Java wrote.

    jHiccup 2.0.3 wrote the lowest value of the max's bucket, in milliseconds;
    the column of the "EndTimestamp" legend is the interval length, as Java reads it.
    """
    path = DATA / "hiccup.140623.1028.10646.hlog"
    with path.open() as source:
        reader = HistogramLogReader(source, unit=1e-9)
        intervals = list(reader)
    assert ("1.01", 11) == (reader.format_version, len(intervals))
    lowest_of_max = [
        h.layout.lowest_equivalent(h.layout.index_of(round(h.max * 1e9))) / 1e6 for h in intervals
    ]
    assert _interval_max_column(path) == [f"{value:.3f}" for value in lowest_of_max]
    assert 4683 == intervals[0].count  # the V0 header's own total count
    assert pytest.approx(1403476110.183 + 0.042) == intervals[0].start_time
    assert pytest.approx(5.004) == intervals[0].end_time - intervals[0].start_time
    assert 2 == intervals[0].significant_figures


def test_merged_max_is_reported_at_the_histograms_precision() -> None:
    """After merging every interval, max is the top bucket's highest value, as percentile(100)."""
    with (DATA / "jHiccup-2.0.7S.logV2.hlog").open() as source:
        intervals = list(HistogramLogReader(source, unit=1e-9))
    merged = intervals[0].copy()
    for h in intervals[1:]:
        merged.merge(h)
    assert merged.percentile(100) == merged.max
    assert max(h.max for h in intervals) == merged.max
    assert 985.661 == round(merged.max * 1e3, 3)  # the largest Interval_Max in the log


def test_merge_across_layouts_reports_max_in_the_receiving_layout() -> None:
    """A 2-digit histogram merged into a 3-digit one: max == percentile(100) there, as in Java."""
    coarse = LatencyHistogram(significant_figures=2)
    coarse.record(0.123456)
    fine = LatencyHistogram()
    fine.record(0.001)
    fine.merge(coarse)
    assert fine.percentile(100) == fine.max
    package = HdrHistogram(1, 3_600_000_000, 3)  # Java's add(): the bucket's lowest value
    package.record_value(coarse.layout.lowest_equivalent(coarse.layout.index_of(123456)))
    assert package.get_max_value() / 1e6 == fine.max


def _legacy_blob(version: int, word: int, counts: dict[int, int]) -> str:
    """A compressed V0 or V1 histoblob built from Java's documented byte layout, not perfprim's."""
    layout = HdrHistogram(1, 3_600_000_000, 3)
    size = max(counts) + 1
    fmt = {2: "h", 4: "i", 8: "q"}[word]
    payload = struct.pack(f">{size}{fmt}", *(counts.get(i, 0) for i in range(size)))
    if version == 1:
        inner = struct.pack(
            ">iiiiqqd", 0x1C849301 | word << 4, len(payload), 0, 3, 1, 3_600_000_000, 1.0
        )
        outer = 0x1C849302 | word << 4
    else:
        inner = struct.pack(
            ">iiqqq", 0x1C849308 | word << 4, 3, 1, 3_600_000_000, sum(counts.values())
        )
        outer = 0x1C849309 | word << 4
    assert layout.counts_len >= size
    body = zlib.compress(inner + payload)
    return base64.b64encode(struct.pack(">ii", outer, len(body)) + body).decode()


@pytest.mark.parametrize(("version", "word"), [(1, 2), (1, 4), (1, 8), (0, 8), (0, 4)])
def test_v0_and_v1_histoblobs_decode_with_every_word_size(version: int, word: int) -> None:
    """Counts placed at the package's index of a value come back at that value."""
    package = HdrHistogram(1, 3_600_000_000, 3)
    values = {12_345: 7, 2_000_000: 3, 1: 1}
    counts = {package._counts_index_for(value): count for value, count in values.items()}
    decoded = LatencyHistogram.decode(_legacy_blob(version, word, counts), unit=1e-6)
    assert 11 == decoded.count
    assert [1, 8, 11] == decoded.cumulative_counts([1e-6, 0.0124, 2.1])


def test_unsupported_encodings_say_what_was_found() -> None:
    """An uncompressed V1 blob and junk get messages naming the cookie; none ends in '()'."""
    raw = struct.pack(">iiiiqqd", 0x1C849381, 0, 0, 3, 1, 1000, 1.0)
    with pytest.raises(HistogramFormatError, match="found an uncompressed V1 histogram"):
        LatencyHistogram.decode(base64.b64encode(raw).decode())
    with pytest.raises(HistogramFormatError, match="found no HdrHistogram cookie") as info:
        LatencyHistogram.decode("not a histogram at all")
    assert not str(info.value).endswith("()")
    with pytest.raises(HistogramFormatError, match="cookie 0x1c849304") as info:
        LatencyHistogram.decode("HISTBAAAAAAA")
    assert not str(info.value).endswith("()")


def test_counts_the_wire_format_cannot_carry_are_refused() -> None:
    """count=2**62 used to encode as 0 and 2**63 to abort the interpreter: both are refused now."""
    h = LatencyHistogram()
    with pytest.raises(ConfigurationError, match="count must be an int in"):
        h.record(0.01, count=2**63)
    h.record(0.01, count=MAX_COUNT)
    assert MAX_COUNT == LatencyHistogram.decode(h.encode()).count
    with pytest.raises(ConfigurationError, match="2\\*\\*62 - 1"):
        h.record(0.01, count=2)
    with pytest.raises(ConfigurationError, match="2\\*\\*62 - 1"):
        h.record_corrected(0.05, expected_interval=0.01, count=2)
    assert MAX_COUNT == h.count
    other = LatencyHistogram()
    other.record(0.02, count=MAX_COUNT)
    with pytest.raises(ConfigurationError, match="2\\*\\*62 - 1"):
        h.merge(other)
    assert MAX_COUNT == other.count


@pytest.mark.parametrize("bad", [True, False, "1", None, [0.1], math.nan])
def test_record_refuses_what_is_not_a_duration(bad: object) -> None:
    """record(True) used to record one second; booleans, strings and None are refused."""
    h = LatencyHistogram()
    with pytest.raises((ConfigurationError, HistogramRangeError)):
        h.record(bad)  # type: ignore[arg-type]
    assert 0 == h.count


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda h: h.percentile("1"), "percentile must be a finite number in"),
        (lambda h: h.percentile(math.nan), "percentile must be"),
        (lambda h: h.percentiles(None), "ps must be an iterable"),
        (lambda h: h.cumulative_counts(["0.1"]), r"bounds\[0\] must be a number"),
        (lambda h: h.cumulative_counts(None), "bounds must be an iterable"),
        (lambda h: h.merge(1), "other must be a LatencyHistogram"),
        (lambda h: h.merge(LatencyHistogram), r"pass an instance, LatencyHistogram\(...\)"),
        (
            lambda h: h.percentile_distribution(ticks_per_half_distance=10**9),
            "ticks_per_half_distance",
        ),
        (lambda h: LatencyHistogram(clamp="abc"), "clamp must be True or False"),
        (lambda h: LatencyHistogram(clock=None), "clock must be a callable"),
        (lambda h: LatencyHistogram.decode(None), "text must be the base64 text"),
        (lambda h: LatencyHistogram.decode(h.encode(), clamp=1), "clamp must be True or False"),
        (
            lambda h: LatencyHistogram(highest=10**400),
            "highest must be a positive, finite duration",
        ),
    ],
)
def test_nonsense_arguments_are_refused(call: object, match: str) -> None:
    """Each used to be accepted or to raise a bare builtin error; now a named ConfigurationError."""
    h = LatencyHistogram()
    h.record(0.01)
    with pytest.raises(ConfigurationError, match=match):
        call(h)  # type: ignore[operator]


def test_log_writer_refuses_nan_times_and_negative_intervals() -> None:
    """The writer used to print 'nan' timestamps and negative lengths; it refuses them now."""
    out = io.StringIO()
    log = HistogramLogWriter(out)
    h = LatencyHistogram()
    h.record(0.01)
    with pytest.raises(ConfigurationError, match="start_time must be a finite number"):
        log.write_header(start_time=math.nan)
    with pytest.raises(ConfigurationError, match=r"end_time 9\.0 is before start_time 10\.0"):
        log.write_interval(h, start_time=10.0, end_time=9.0)
    with pytest.raises(ConfigurationError, match="start_time must be a finite number"):
        log.write_interval(h, start_time=math.inf, end_time=1.0)
    with pytest.raises(ConfigurationError, match="histogram must be a LatencyHistogram"):
        log.write_interval(None, start_time=1.0, end_time=2.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="out must be a text stream"):
        HistogramLogWriter(None)  # type: ignore[arg-type]
    assert "" == out.getvalue()


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (["nan,1.0,1.0,HISTF\n"], "finite numbers of seconds"),
        (["1.0,-5.0,1.0,HISTF\n"], "interval length is negative"),
        ([b"1.0,1.0,1.0,HISTF\n"], "open the log in text mode"),
        (["#[StartTime: 1e999 (seconds since epoch)]\n"], "not a number of seconds"),
    ],
)
def test_log_reader_refuses_impossible_lines(lines: list[object], match: str) -> None:
    """Non-finite times, negative lengths and bytes lines are format errors naming the line."""
    with pytest.raises(HistogramFormatError, match=match):
        list(HistogramLogReader(lines))  # type: ignore[arg-type]


def test_log_reader_wants_a_stream_not_a_path() -> None:
    """A path or the log's text passed as source gets the hint to open it."""
    with pytest.raises(ConfigurationError, match=r"open\(path\)"):
        HistogramLogReader(str(DATA / "jHiccup-2.0.7S.logV2.hlog"))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"open\(path\)"):
        HistogramLogReader(DATA / "jHiccup-2.0.7S.logV2.hlog")  # type: ignore[arg-type]
