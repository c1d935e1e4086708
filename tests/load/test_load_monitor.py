"""The monitor: totals, sliding windows, abort, progress, lossless multi-process merge."""

from __future__ import annotations

import io

import pytest

from perfprim.histogram import HistogramLogReader, HistogramLogWriter
from perfprim.load import Progress, Stage, parse_threshold
from perfprim.load._monitor import Monitor, Sample, new_histogram
from perfprim.load._schedule import Schedule


def sample(index: int, latencies: list[float], *, errors: int = 0, base: float = 0.0) -> Sample:
    """An interval sample holding these latencies."""
    latency = new_histogram()
    lateness = new_histogram()
    for v in latencies:
        latency.record(v)
        lateness.record(0.0001)
    latency.start_time, latency.end_time = 1000.0 + index, 1001.0 + index
    lateness.start_time, lateness.end_time = latency.start_time, latency.end_time
    return Sample(
        index=index,
        offset=index + 1.0 + base,
        seconds=1.0,
        latency=latency,
        lateness=lateness,
        sent=len(latencies),
        completed=len(latencies),
        errors=errors,
        error_kinds={"http 500": errors} if errors else {},
    )


def monitor(*thresholds: str, **options: object) -> Monitor:
    """A monitor over a 10 s, 100/s plan with 1 s intervals."""
    return Monitor(
        [parse_threshold(t) for t in thresholds],
        schedule=Schedule([Stage(10, 100)]),
        interval=1.0,
        **options,  # type: ignore[arg-type]
    )


def test_totals_add_up_every_sample() -> None:
    """Counts, error kinds and histograms are the sums of the samples."""
    m = monitor()
    for i in range(3):
        m.add(sample(i, [0.001] * 10, errors=1))
    assert (30, 30, 3) == (m.sent, m.completed, m.errors)
    assert {"http 500": 3} == m.error_kinds
    assert 30 == m.latency.count
    assert 3.0 == m.duration


def test_windowed_threshold_fails_on_the_bad_window_only() -> None:
    """A 2 s window over 1 s intervals: one slow second fails the windows that hold it."""
    m = monitor("p(99) < 100ms over 2s", "p(99) < 100ms")
    m.add(sample(0, [0.001] * 100))
    m.add(sample(1, [0.001] * 100))
    m.add(sample(2, [0.5] * 100))
    m.add(sample(3, [0.001] * 100))
    windowed, whole = m.verdicts(4.0)
    assert not windowed.passed
    assert 0.5 == pytest.approx(windowed.observed, rel=1e-3)
    assert 1.0 == windowed.window_start  # the window [1 s, 3 s) was the first to fail
    assert not whole.passed  # 100 of 400 at 0.5 s: p99 is 0.5 s overall too


def test_windowed_threshold_catches_what_the_whole_run_hides() -> None:
    """A 1 s burst of errors fails 'error_rate < 5% over 1s' but not the whole-run one."""
    m = monitor("error_rate < 5% over 1s", "error_rate < 5%")
    for i in range(20):
        m.add(sample(i, [0.001] * 100, errors=50 if i == 7 else 0))
    windowed, whole = m.verdicts(20.0)
    assert (False, True) == (windowed.passed, whole.passed)
    assert 0.5 == windowed.observed


def test_abort_threshold_returns_true_once() -> None:
    """An 'abort' threshold makes add() return True at the first failing window."""
    m = monitor("p(99) < 100ms over 1s abort")
    assert not m.add(sample(0, [0.001] * 10))
    assert m.add(sample(1, [0.3] * 10))
    assert m.aborted_by is not None
    assert "p(99) < 100ms over 1s abort" == m.aborted_by.expression


def test_window_longer_than_the_run_has_no_data() -> None:
    """A window never filled gives no verdict, which fails (a gate must not pass on nothing)."""
    m = monitor("p(99) < 100ms over 30s")
    m.add(sample(0, [0.001] * 10))
    (result,) = m.verdicts(1.0)
    assert not result.passed
    assert "no data" in result.describe()


def test_progress_snapshot_each_interval() -> None:
    """on_progress gets a Progress per sample with rate, totals and percentiles so far."""
    seen: list[Progress] = []
    m = monitor(on_progress=seen.append)
    m.add(sample(0, [0.002] * 50))
    m.add(sample(1, [0.002] * 70))
    assert [50.0, 70.0] == [p.rate for p in seen]
    last = seen[-1]
    assert (120, 120, 2.0, 100.0) == (last.sent, last.completed, last.elapsed, last.planned_rate)
    assert 0.002 == pytest.approx(last.p99, rel=1e-3)
    assert "rate" in last.line()


def test_encoded_samples_merge_losslessly() -> None:
    """Samples sent through the pipe format and merged equal the sum of the originals."""
    a = sample(0, [0.001 * k for k in range(1, 200)], errors=2)
    b = sample(0, [0.0005 * k for k in range(1, 300)], errors=1)
    expected = new_histogram()
    expected.merge(a.latency)
    expected.merge(b.latency)
    merged = Sample.from_message(a.to_message())
    merged.merge(Sample.from_message(b.to_message()))
    assert (498, 498, 3) == (merged.sent, merged.completed, merged.errors)
    assert {"http 500": 3} == merged.error_kinds
    assert expected.count == merged.latency.count
    bounds = [0.0001 * k for k in range(1, 2000)]
    assert expected.cumulative_counts(bounds) == merged.latency.cumulative_counts(bounds)
    ps = (1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0)
    assert expected.percentiles(ps) == merged.latency.percentiles(ps)


def test_intervals_are_written_to_the_hlog() -> None:
    """Each interval becomes two .hlog lines: latency untagged, lateness tagged."""
    out = io.StringIO()
    log = HistogramLogWriter(out)
    log.write_header(start_time=1000.0)
    m = monitor(log=log)
    m.add(sample(0, [0.001] * 5))
    m.add(sample(1, [0.002] * 7))
    out.seek(0)
    read = list(HistogramLogReader(out))
    assert [(None, 5), ("lateness", 5), (None, 7), ("lateness", 7)] == [
        (h.tag, h.count) for h in read
    ]
    assert 1001.0 == read[2].start_time
