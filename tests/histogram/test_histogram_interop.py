"""Wire format, interval logs and .hgrm text: interoperable with HdrHistogram."""

from __future__ import annotations

import io
import itertools
import math
import random
import re
import subprocess
import sys
import threading

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader as PackageLogReader
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.exceptions import ConfigurationError, HistogramFormatError
from perfprim.histogram import (
    HistogramLogReader,
    HistogramLogWriter,
    IntervalRecorder,
    LatencyHistogram,
)

# A latency capture from wrk2, which uses the C implementation (hdr_histogram.c):
# microseconds, range 1 us..24 h, 3 digits; counts as [bucket, [sub_bucket, count, ...]],
# and the percentile lines wrk2 printed (value in ms, percentile level). Published in
# the hdrhistogram package's tests as a cross-implementation reference.
WRK2_BUCKET_6 = [1295, 1392, 1432, 1435, 1489, 1493, 1536, 1553, 1560, 1574, 1591, 1615]
WRK2_BUCKET_6 += [1672, 1706, 1738, 1812, 1896]
WRK2_COUNTS = [
    (6, [x for sub in WRK2_BUCKET_6 for x in (sub, 1)]),
    (7, [1559, 1, 1590, 1, 1638, 1]),
]
WRK2_PERCENTILES = [
    (82.943, 0.0), (89.151, 0.1), (91.903, 0.2), (95.615, 0.3), (99.455, 0.4),
    (100.799, 0.5), (101.887, 0.55), (103.423, 0.6), (107.071, 0.65), (109.247, 0.7),
    (111.295, 0.75), (116.031, 0.775), (116.031, 0.8), (121.407, 0.825), (121.407, 0.85),
    (199.679, 0.875), (199.679, 0.8875), (199.679, 0.9), (199.679, 0.9125),
    (203.647, 0.925), (203.647, 0.9375), (203.647, 0.94375), (203.647, 0.95),
    (203.647, 0.95625), (209.791, 1.0),
]  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.integers(min_value=0, max_value=10**9), max_size=300),
    digits=st.integers(min_value=1, max_value=5),
)
def test_encode_decodes_in_the_package_with_identical_counts(
    values: list[int], digits: int
) -> None:
    """What encode() writes, the hdrhistogram package reads back with the same counts."""
    ours = LatencyHistogram(highest=3600.0, significant_figures=digits)
    for v in values:
        ours.record(v / 1e6)
    theirs = HdrHistogram.decode(ours.encode())
    counts, count, *_ = ours._state()
    assert count == theirs.get_total_count()
    assert counts == list(theirs.counts)[: len(counts)]
    assert (1, 3_600_000_000, digits) == (
        theirs.lowest_trackable_value,
        theirs.highest_trackable_value,
        theirs.significant_figures,
    )


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.integers(min_value=0, max_value=10**9), max_size=300))
def test_decode_reads_what_the_package_encodes(values: list[int]) -> None:
    """decode() reads the package's histoblobs: same counts and percentiles."""
    theirs = HdrHistogram(1, 3_600_000_000, 3)
    for v in values:
        theirs.record_value(v)
    ours = LatencyHistogram.decode(theirs.encode())
    assert list(theirs.counts) == ours._state()[0]
    assert theirs.get_total_count() == ours.count
    if values:
        expected = theirs.get_percentile_to_value_dict([50, 99, 100])
        assert expected == {p: round(v * 1e6) for p, v in ours.percentiles([50, 99, 100]).items()}
        assert theirs.get_max_value() == round(ours.max * 1e6)
        assert theirs.get_min_value() == round(ours.min * 1e6)
        assert not ours.total_is_exact


def wrk2_histogram() -> LatencyHistogram:
    """The wrk2 capture, recorded into a LatencyHistogram."""
    h = LatencyHistogram(highest=24 * 3600.0)
    for bucket, pairs in WRK2_COUNTS:
        for sub_bucket, count in zip(pairs[::2], pairs[1::2], strict=True):
            h.record((sub_bucket << bucket) * 1e-6, count)
    return h


def test_percentiles_match_the_c_implementation() -> None:
    """On wrk2's capture every percentile wrk2 (hdr_histogram.c) printed is reproduced.

    Level 0 is left out: wrk2's table prints the highest equivalent value
    there, while value-at-percentile 0 is the lowest (Java and the package).
    """
    h = wrk2_histogram()
    for value_ms, level in WRK2_PERCENTILES[1:]:
        assert value_ms == pytest.approx(h.percentile(level * 100) * 1e3, abs=5e-4)


def test_percentile_distribution_matches_the_c_implementation() -> None:
    """The .hgrm rows have wrk2's percentile levels, and Java's value rule.

    Java's PercentileIterator reports, for each level, the first bucket whose
    cumulative share reaches it exactly (wrk2's old C iterator rounds the
    count instead, so its 91.25% row shows 199.679 where 18/20 = 90%).
    """
    text = wrk2_histogram().percentile_distribution(output_unit=1e-3)
    rows = [line.split() for line in text.splitlines()[2:] if not line.startswith("#")]
    assert [level for _, level in WRK2_PERCENTILES] == [round(float(r[1]), 6) for r in rows]
    values = sorted(
        ((sub << bucket) + (1 << bucket) - 1) / 1e3
        for bucket, pairs in WRK2_COUNTS
        for sub in pairs[::2]
    )
    for row in rows:
        level = float(row[1])
        first = next(i for i in range(20) if (i + 1) / 20 >= level)
        assert values[first] == float(row[0])


@pytest.mark.parametrize(
    "junk", ["", "not base64!", "SElTVA==", LatencyHistogram().encode()[:-8], b"\x00\x01"]
)
def test_decode_rejects_junk_with_a_format_error(junk: str | bytes) -> None:
    """Malformed histoblobs raise HistogramFormatError, not a random low-level error."""
    with pytest.raises(HistogramFormatError, match="V2"):
        LatencyHistogram.decode(junk)


def test_decode_with_a_nanosecond_unit() -> None:
    """The unit says what the encoded integers mean: 1e-9 reads nanosecond histograms."""
    theirs = HdrHistogram(1, 3_600_000_000_000, 3)
    theirs.record_value(2_500_000)  # 2.5 ms in ns
    ours = LatencyHistogram.decode(theirs.encode(), unit=1e-9)
    assert 2.5e-3 == pytest.approx(ours.percentile(50), rel=1e-3)
    assert 3600.0 == ours.highest


def test_encode_decode_round_trip_keeps_percentiles() -> None:
    """A round trip through the wire format keeps every count and percentile."""
    rng = random.Random(11)
    h = LatencyHistogram(highest=60.0, significant_figures=2)
    for _ in range(10_000):
        h.record(min(rng.lognormvariate(-4, 1), 60.0))
    back = LatencyHistogram.decode(h.encode())
    ps = [0, 10, 50, 90, 99, 99.9, 100]
    assert h.percentiles(ps) == back.percentiles(ps)
    assert h.count == back.count
    assert h.total == pytest.approx(back.total, rel=1e-2)


def test_histograms_merge_across_processes() -> None:
    """A histogram pickled in another process merges exactly into this one."""
    code = (
        "import pickle, sys\n"
        "from perfprim.histogram import LatencyHistogram\n"
        "h = LatencyHistogram()\n"
        "for i in range(1, 1001): h.record(i / 1e4)\n"
        "sys.stdout.buffer.write(pickle.dumps(h))\n"
    )
    import os
    import pickle

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    blob = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, timeout=60, env=env
    ).stdout
    other = pickle.loads(blob)
    mine = LatencyHistogram()
    for i in range(1001, 2001):
        mine.record(i / 1e4)
    mine.merge(other)
    assert 2000 == mine.count
    assert sum(range(1, 2001)) * 100 == mine._state()[2]
    assert 1e-4 == mine.min


def test_interval_recorder_partitions_values_under_concurrent_writers() -> None:
    """Sum of intervals == everything recorded, while 4 writers run and a reader takes intervals."""
    rec = IntervalRecorder()
    per_writer = 50_000
    start = threading.Barrier(5)
    done = threading.Event()
    intervals: list[LatencyHistogram] = []

    def writer(k: int) -> None:
        start.wait(timeout=30)
        for i in range(per_writer):
            if i % 3:
                rec.record((k + 1) * 1e-3)
            else:
                rec.record_ns((k + 1) * 1_000_000)

    def reader() -> None:
        start.wait(timeout=30)
        for _ in range(10_000):
            intervals.append(rec.interval())
            if done.is_set():
                break

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    reading = threading.Thread(target=reader)
    reading.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    reading.join(timeout=120)
    intervals.append(rec.interval())
    total = LatencyHistogram()
    for snapshot in intervals:
        total.merge(snapshot)
    assert 4 * per_writer == total.count
    assert [per_writer * (k + 1) for k in range(4)] == total.cumulative_counts(
        [(k + 1) * 1e-3 for k in range(4)]
    )
    assert sum(per_writer * (k + 1) * 1000 for k in range(4)) == total._state()[2]
    assert len(intervals) > 1
    stamps = [(s.start_time, s.end_time) for s in intervals]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(stamps))


def test_interval_recorder_stamps_and_tags() -> None:
    """Intervals carry the wall-clock bounds and the recorder's tag; a bad tag fails fast."""
    times = iter([10.0, 20.0, 35.0])
    rec = IntervalRecorder(tag="checkout", wall_clock=lambda: next(times))
    rec.record(0.25, count=3)
    first = rec.interval()
    second = rec.interval()
    assert (3, 10.0, 20.0, "checkout") == (first.count, first.start_time, first.end_time, first.tag)
    assert (0, 20.0, 35.0) == (second.count, second.start_time, second.end_time)
    with pytest.raises(ConfigurationError):
        IntervalRecorder(tag="has space")


def make_log(start: float = 1_700_000_000.0) -> tuple[str, list[LatencyHistogram]]:
    """Write a two-interval log; return its text and the interval histograms."""
    times = iter([start, start + 1.0, start + 2.5])
    rec = IntervalRecorder(wall_clock=lambda: next(times))
    rec.record(0.0125, count=4)
    rec.record(0.2)
    first = rec.interval()
    rec.record(0.003)
    second = rec.interval()
    second.tag = "db"
    out = io.StringIO()
    log = HistogramLogWriter(out)
    log.write_header(start_time=start)
    log.write_interval(first)
    log.write_interval(second)
    return out.getvalue(), [first, second]


def test_log_format_matches_java() -> None:
    """The header, legend and interval lines follow Java's HistogramLogWriter 1.3 format."""
    text, _ = make_log()
    lines = text.splitlines()
    assert "#[Histogram log format version 1.3]" == lines[0]
    assert re.fullmatch(
        r"#\[StartTime: 1700000000\.000 \(seconds since epoch\), \w{3} \w{3} \d\d "
        r"\d\d:\d\d:\d\d UTC \d{4}\]",
        lines[1],
    )
    assert "#[BaseTime: 1700000000.000 (seconds since epoch)]" == lines[2]
    assert (
        '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
        == lines[3]
    )
    # Interval_Max is Java's getMaxValue() / 1e3: the highest value of the
    # max's bucket (200 ms lies in [199.936, 200.063] ms, 3 ms in [3.000, 3.001]).
    assert lines[4].startswith("0.000,1.000,200.063,HISTF")
    assert lines[5].startswith("Tag=db,1.000,1.500,3.001,HISTF")


def test_log_round_trip_through_our_reader() -> None:
    """Our reader returns the written histograms, absolute times and tags."""
    text, written = make_log()
    read = list(HistogramLogReader(io.StringIO(text)))
    assert [w.count for w in written] == [r.count for r in read]
    assert [(w.start_time, w.end_time) for w in written] == [
        (pytest.approx(r.start_time), pytest.approx(r.end_time)) for r in read
    ]
    assert [None, "db"] == [r.tag for r in read]
    assert written[0].percentiles([50, 100]) == read[0].percentiles([50, 100])


def test_log_is_readable_by_the_package_reader(tmp_path: pytest.TempPathFactory) -> None:
    """The hdrhistogram package's log reader reads our log: counts, start times and tag."""
    text, written = make_log()
    path = tmp_path / "latency.hlog"  # type: ignore[operator]
    path.write_text(text)
    reader = PackageLogReader(str(path), HdrHistogram(1, 3_600_000_000, 3))
    first = reader.get_next_interval_histogram()
    second = reader.get_next_interval_histogram()
    reader.input_file.close()
    assert written[0].count == first.get_total_count()
    assert written[1].count == second.get_total_count()
    assert 1_700_000_001.0 * 1000 == pytest.approx(second.get_start_time_stamp())
    assert "db" == second.get_tag()


def test_reader_infers_base_time_like_java() -> None:
    """Without BaseTime, absolute timestamps stay absolute and old-looking ones are relative."""
    blob = LatencyHistogram().encode()
    absolute = (
        f"#[StartTime: 1000000000.000 (seconds since epoch), x]\n1000000005.000,1.0,0.0,{blob}\n"
    )
    relative = f"#[StartTime: 1000000000.000 (seconds since epoch), x]\n5.000,1.0,0.0,{blob}\n"
    (a,) = HistogramLogReader(io.StringIO(absolute))
    (r,) = HistogramLogReader(io.StringIO(relative))
    assert 1_000_000_005.0 == a.start_time
    assert 1_000_000_005.0 == r.start_time


@pytest.mark.parametrize("line", ["1.0,2.0,HISTF", "a,b,c,HISTF", "1.0,2.0,3.0,!!!"])
def test_reader_names_the_bad_line(line: str) -> None:
    """A malformed interval line raises HistogramFormatError naming its line number."""
    with pytest.raises(HistogramFormatError, match="line 2"):
        list(HistogramLogReader(io.StringIO(f"#comment\n{line}\n")))


def test_writer_needs_interval_times() -> None:
    """A histogram without start/end times cannot be logged without explicit times."""
    log = HistogramLogWriter(io.StringIO())
    with pytest.raises(ConfigurationError, match="start_time"):
        log.write_interval(LatencyHistogram())
    with pytest.raises(ConfigurationError):
        HistogramLogWriter(io.StringIO(), max_value_unit=0)


def test_percentile_distribution_follows_java() -> None:
    """The .hgrm table has Java's header, tick spacing, 100% line and scaled footer."""
    h = LatencyHistogram()
    for i in range(1, 1001):
        h.record(i * 1e-4)  # 0.1 ms .. 100 ms
    text = h.percentile_distribution()
    lines = text.splitlines()
    assert "       Value     Percentile TotalCount 1/(1-Percentile)" == lines[0]
    rows = [line.split() for line in lines[2:] if not line.startswith("#")]
    levels = [float(r[1]) for r in rows]
    assert [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55] == levels[:7]
    assert 1.0 == levels[-1]
    assert 3 == len(rows[-1])
    assert float(rows[-1][0]) == pytest.approx(100.0, rel=1e-3)
    footer = lines[-3:]
    mean = float(re.search(r"Mean\s+=\s+([\d.]+)", footer[0]).group(1))  # type: ignore[union-attr]
    stdev = float(re.search(r"StdDeviation\s+=\s+([\d.]+)", footer[0]).group(1))  # type: ignore[union-attr]
    assert 50.05 == pytest.approx(mean, abs=1e-3)
    assert math.sqrt((1000**2 - 1) / 12) / 10 == pytest.approx(stdev, rel=1e-3)
    assert footer[1].endswith("Total count    =         1000]")
    assert "#[Buckets =           22, SubBuckets     =         2048]" == footer[2]


def test_percentile_distribution_of_an_empty_histogram() -> None:
    """An empty histogram prints the header and a zero footer."""
    text = LatencyHistogram().percentile_distribution(output_unit=1.0)
    assert "Total count    =            0]" in text
    with pytest.raises(ConfigurationError):
        LatencyHistogram().percentile_distribution(output_unit=0.0)
