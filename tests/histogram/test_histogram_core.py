"""LatencyHistogram: recording, queries, range handling, merge, copy, pickle, timing."""

from __future__ import annotations

import asyncio
import math
import pickle
import random
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

import perfprim.histogram
from perfprim.exceptions import ConfigurationError, HistogramRangeError
from perfprim.histogram import LatencyHistogram
from perfprim.histogram._layout import layout_for


class FakeClock:
    """A nanosecond clock that advances only when told to."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def test_public_names_are_pinned() -> None:
    """The public module exports exactly these names."""
    assert [
        "HistogramLogReader",
        "HistogramLogWriter",
        "IntervalRecorder",
        "LatencyHistogram",
        "Layout",
    ] == perfprim.histogram.__all__


@pytest.mark.parametrize(
    ("lowest", "highest", "digits"),
    [
        (1, 3_600_000_000, 3),
        (1, 3_600_000_000, 2),
        (1, 1000, 1),
        (1000, 3_600_000_000_000, 3),
        (7, 10**12, 5),
        (1, 2, 3),
        (2**20, 2**40, 4),
        (1, (1 << 62) - 1, 3),
    ],
)
def test_layout_matches_the_hdrhistogram_package(lowest: int, highest: int, digits: int) -> None:
    """The counts array has the package's length and every index the package's values."""
    ours = layout_for(lowest, highest, digits)
    theirs = HdrHistogram(lowest, highest, digits)
    assert theirs.counts_len == ours.counts_len
    assert theirs.bucket_count == ours.bucket_count
    rng = random.Random(lowest + highest + digits)
    values = [0, 1, lowest, highest, *(rng.randrange(0, highest + 1) for _ in range(300))]
    values += [int(2 ** rng.uniform(0, math.log2(highest))) for _ in range(300)]
    for v in values:
        index = ours.index_of(v)
        assert theirs._counts_index_for(v) == index
        assert theirs.get_highest_equivalent_value(v) == ours.highest_equivalent(index)
        assert theirs.get_lowest_equivalent_value(v) == ours.lowest_equivalent(index)
        assert ours.lowest_equivalent(index) <= v <= ours.highest_equivalent(index)


def _package_extremes(units: list[int], highest: int = 3_600_000_000) -> tuple[float, float]:
    """Min and max in seconds as the hdrhistogram package (like Java) reports them."""
    package = HdrHistogram(1, highest, 3)
    for value in units:
        package.record_value(value)
    return package.get_min_value() / 1e6, package.get_max_value() / 1e6


def test_basic_statistics() -> None:
    """Count, total and mean are exact at the unit resolution; min and max as Java reports them."""
    h = LatencyHistogram()
    h.record(0.0123)
    h.record(0.002, count=5)
    assert 6 == h.count
    assert 0.0223 == pytest.approx(h.total, abs=1e-15)
    assert _package_extremes([12300, 2000]) == (h.min, h.max)
    assert 0.012303 == h.max  # the highest value of 12300's bucket (width 8 us)
    assert h.percentile(100) == h.max
    assert 0.0223 / 6 == pytest.approx(h.mean, rel=1e-12)


def test_empty_histogram_answers_zero() -> None:
    """An empty histogram reports zeros rather than raising."""
    h = LatencyHistogram()
    assert (0, 0.0, 0.0, 0.0, 0.0, 0.0) == (h.count, h.total, h.min, h.max, h.mean, h.stdev)
    assert 0.0 == h.percentile(99)
    assert {50.0: 0.0} == h.percentiles([50])
    assert [0, 0] == h.cumulative_counts([0.1, math.inf])


def test_percentiles_within_the_hdr_guarantee_of_exact_values() -> None:
    """On 200,000 lognormal samples every percentile is within 0.1% (+1 unit) of exact."""
    rng = random.Random(5)
    samples = [min(rng.lognormvariate(-5, 1.5), 3000.0) for _ in range(200_000)]
    h = LatencyHistogram()
    for s in samples:
        h.record(s)
    rounded = sorted(round(s * 1e6) for s in samples)
    for p in (0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0):
        rank = max(int(p * len(rounded) / 100 + 0.5), 1)  # HDR's nearest rank
        exact = rounded[rank - 1] / 1e6
        got = h.percentile(p)
        assert exact == pytest.approx(got, rel=1e-3, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(min_value=0, max_value=3_600_000_000), min_size=1, max_size=200),
    ps=st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=6),
)
def test_differential_against_the_hdrhistogram_package(values: list[int], ps: list[float]) -> None:
    """Same integer inputs give the package's percentiles, counts, min and max buckets."""
    ours = LatencyHistogram()
    theirs = HdrHistogram(1, 3_600_000_000, 3)
    for v in values:
        ours.record(v / 1e6)
        theirs.record_value(v)
    expected = theirs.get_percentile_to_value_dict(ps)
    got = ours.percentiles(ps)
    for p in ps:
        assert expected[p] == round(got[p] * 1e6)
    assert theirs.get_total_count() == ours.count
    assert list(theirs.counts) == ours._state()[0]
    assert theirs.get_mean_value() / 1e6 == pytest.approx(ours.mean, rel=1e-3, abs=1e-6)
    assert theirs.get_stddev() / 1e6 == pytest.approx(ours.stdev, rel=1e-9, abs=1e-12)


def test_out_of_range_raises_by_default() -> None:
    """Values above highest, negative or NaN raise HistogramRangeError; nothing is recorded."""
    h = LatencyHistogram(highest=10.0)
    for bad in (10.5, -1.0, math.inf, -math.inf, math.nan):
        with pytest.raises(HistogramRangeError):
            h.record(bad)
    with pytest.raises(HistogramRangeError):
        h.record_ns(11 * 10**9)
    assert 0 == h.count


def test_clamp_counts_what_it_clamps() -> None:
    """With clamp=True, out-of-range values land at the edges and are counted in clamped."""
    h = LatencyHistogram(highest=10.0, clamp=True)
    h.record(50.0, count=2)
    h.record(-1.0)
    h.record_ns(20 * 10**9)
    h.record(1.0)
    assert 4 == h.clamped
    assert 5 == h.count
    assert _package_extremes([10_000_000, 0], highest=10_000_000)[1] == h.max
    assert 0.0 == h.min
    with pytest.raises(HistogramRangeError):
        h.record(math.nan)


@pytest.mark.parametrize("count", [0, -3, 1.5, 2.0, "2"])
def test_bad_count_is_a_configuration_error(count: object) -> None:
    """A count that is not a positive int fails fast and records nothing."""
    h = LatencyHistogram()
    with pytest.raises(ConfigurationError):
        h.record(0.1, count)  # type: ignore[arg-type]
    assert 0 == h.count


@pytest.mark.parametrize(
    "kwargs",
    [
        {"significant_figures": 0},
        {"significant_figures": 6},
        {"lowest": 1e-7},
        {"highest": 1e-6},
        {"unit": 0.0},
        {"unit": -1e-6},
        {"lowest": math.inf},
        {"significant_figures": 2.5},
    ],
)
def test_invalid_settings_fail_fast(kwargs: dict[str, object]) -> None:
    """Impossible ranges and precisions raise ConfigurationError naming the fix."""
    with pytest.raises(ConfigurationError, match="must"):
        LatencyHistogram(**kwargs)  # type: ignore[arg-type]


def test_record_ns_rounds_to_the_unit() -> None:
    """record_ns rounds nanoseconds to the nearest unit, exactly, in integers."""
    h = LatencyHistogram()
    h.record_ns(1_499)
    h.record_ns(1_500)
    assert 1e-6 == h.min
    assert 2e-6 == h.max
    ns = LatencyHistogram(lowest=1e-9, unit=1e-9, highest=10.0)
    ns.record_ns(123_456_789)
    assert 123_456_789 == ns._state()[2]


def test_cumulative_counts_never_miss_values_at_or_below_the_bound() -> None:
    """Each bound counts every value <= it, and nothing beyond its own bucket."""
    h = LatencyHistogram()
    rng = random.Random(7)
    values = [rng.uniform(0, 5) for _ in range(5_000)]
    for v in values:
        h.record(v)
    bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.inf]
    got = h.cumulative_counts(bounds)
    for bound, count in zip(bounds, got, strict=True):
        exact_le = sum(1 for v in values if v <= bound)
        within_bucket = sum(1 for v in values if v <= bound * 1.001 + 1e-6)
        assert exact_le <= count <= within_bucket
    assert 5_000 == got[-1]
    assert [0] == h.cumulative_counts([-1.0])


def test_percentile_argument_is_checked() -> None:
    """Percentiles outside [0, 100] or NaN fail fast."""
    h = LatencyHistogram()
    h.record(0.1)
    for bad in (-1.0, 100.5, math.nan):
        with pytest.raises(ConfigurationError):
            h.percentile(bad)


@pytest.mark.parametrize(
    ("value", "interval"),
    [(100_000, 10_000), (2_000_000, 1_000), (500, 1_000), (7_777, 333), (10_000, 10_000)],
)
def test_record_corrected_matches_java_hdrhistogram(value: int, interval: int) -> None:
    """Coordinated-omission correction back-fills value - k*interval while >= interval.

    That is Java HdrHistogram's recordValueWithExpectedInterval; the Python
    package also records the first value below the interval, so the reference
    here is Java's loop, written out.
    """
    ours = LatencyHistogram()
    reference = LatencyHistogram()
    ours.record_corrected(value / 1e6, expected_interval=interval / 1e6, count=2)
    reference.record(value / 1e6, 2)
    missing = value - interval
    while missing >= interval:
        reference.record(missing / 1e6, 2)
        missing -= interval
    assert reference._state()[0] == ours._state()[0]
    assert (reference.count, reference._state()[2], reference.min, reference.max) == (
        ours.count,
        ours._state()[2],
        ours.min,
        ours.max,
    )


def test_record_corrected_rejects_a_zero_interval() -> None:
    """The expected interval must be at least one unit."""
    ours = LatencyHistogram()
    with pytest.raises(ConfigurationError):
        ours.record_corrected(1.0, expected_interval=0.0)


def test_record_corrected_is_bounded_by_buckets_not_by_the_ratio() -> None:
    """A one-hour stall at a 1 us interval back-fills 3.6e9 values without looping over them."""
    h = LatencyHistogram()
    h.record_corrected(3600.0, expected_interval=1e-6)
    assert 3_600_000_000 == h.count
    n = 3_600_000_000
    assert n * (n + 1) // 2 == h._state()[2]


def test_merge_adds_counts_exactly() -> None:
    """Merging equals recording everything into one histogram."""
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    rng = random.Random(3)
    for i in range(3_000):
        v = rng.expovariate(20)
        (a if i % 2 else b).record(v)
        both.record(v)
    a.merge(b)
    assert both._state()[0] == a._state()[0]
    assert (both.count, both.total, both.min, both.max) == (a.count, a.total, a.min, a.max)
    assert both.percentiles([50, 99]) == a.percentiles([50, 99])


def test_merge_across_layouts_respects_the_range() -> None:
    """A wider histogram merges bucket by bucket and refuses values that do not fit."""
    narrow = LatencyHistogram(highest=10.0)
    wide = LatencyHistogram(highest=100.0, significant_figures=2)
    wide.record(0.5)
    narrow.merge(wide)
    assert 1 == narrow.count
    assert 0.5 == pytest.approx(narrow.percentile(50), rel=1e-2)
    wide.record(50.0)
    with pytest.raises(HistogramRangeError):
        narrow.merge(wide)
    assert 1 == narrow.count


def test_copy_and_reset_are_independent() -> None:
    """A copy keeps the values after the original is reset."""
    h = LatencyHistogram()
    h.record(0.25, count=3)
    h.tag = "api"
    c = h.copy()
    h.reset()
    assert (0, 3) == (h.count, c.count)
    assert _package_extremes([250_000])[1] == c.max
    assert "api" == c.tag
    assert 0.0 == h.percentile(50)
    h.record(0.125)
    assert _package_extremes([125_000])[1] == h.max
    assert 0.125 == pytest.approx(h.percentile(100), rel=1e-3)


def test_pickle_round_trip() -> None:
    """Histograms pickle with counts, stats, settings and tag, and stay usable."""
    h = LatencyHistogram(highest=60.0, clamp=True)
    h.record(0.01, count=4)
    h.record(100.0)
    h.tag = "db"
    clone = pickle.loads(pickle.dumps(h))
    assert (5, 1, "db", True) == (clone.count, clone.clamped, clone.tag, clone.clamp)
    assert h.percentiles([10, 90]) == clone.percentiles([10, 90])
    clone.record(0.5)
    assert 6 == clone.count


def test_exact_counts_under_eight_threads() -> None:
    """8 threads x 100,000 records end with an exact count, sum and counts."""
    h = LatencyHistogram()
    barrier = threading.Barrier(8)

    def work(k: int) -> None:
        barrier.wait(timeout=30)
        value = (k + 1) * 1e-3
        for _ in range(100_000):
            h.record(value)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert 800_000 == h.count
    assert 800_000 == sum(h._state()[0])
    assert sum(100_000 * (k + 1) * 1000 for k in range(8)) == h._state()[2]
    assert [100_000 * (k + 1) for k in range(8)] == h.cumulative_counts(
        [(k + 1) * 1e-3 for k in range(8)]
    )


def test_timed_records_sync_async_and_generators() -> None:
    """@h.timed times the run of functions, coroutines and generators, also when they raise."""
    clock = FakeClock()
    h = LatencyHistogram(clock=clock)

    @h.timed
    def work() -> int:
        clock.now += 2_000_000
        return 1

    @h.timed
    async def awork() -> int:
        await asyncio.sleep(0)
        clock.now += 3_000_000
        return 2

    @h.timed
    def gen() -> Iterator[int]:
        clock.now += 4_000_000
        yield 1

    @h.timed
    async def agen() -> AsyncIterator[int]:
        clock.now += 5_000_000
        yield 1

    @h.timed
    def fails() -> None:
        clock.now += 6_000_000
        raise KeyError

    async def consume() -> list[int]:
        return [x async for x in agen()]

    assert 1 == work()
    coro = awork()
    clock.now += 100_000_000  # creating the coroutine is not timed
    assert 2 == asyncio.run(coro)
    assert [1] == list(gen())
    assert [1] == asyncio.run(consume())
    with pytest.raises(KeyError):
        fails()
    assert 5 == h.count
    assert [0.002, 0.003, 0.004, 0.005, 0.006] == pytest.approx(
        [h.percentile(p) for p in (20.0, 40.0, 60.0, 80.0, 100.0)], rel=1e-3
    )
    assert 0.02 == pytest.approx(h.total, abs=1e-15)
    assert asyncio.iscoroutinefunction(awork)
    assert "work" == work.__name__


def test_time_context_manager_and_decorator() -> None:
    """h.time() works as a context manager (sync and async) and as a decorator."""
    clock = FakeClock()
    h = LatencyHistogram(clock=clock)
    with h.time():
        clock.now += 1_000

    def fail() -> None:
        with h.time():
            clock.now += 2_000
            raise ValueError

    with pytest.raises(ValueError):
        fail()

    async def block() -> None:
        async with h.time():
            clock.now += 3_000

    asyncio.run(block())

    @h.time()
    def f() -> None:
        clock.now += 4_000

    f()
    assert 4 == h.count
    assert 1e-5 == pytest.approx(h.total, abs=1e-18)
    assert 4e-6 == h.max


@pytest.mark.parametrize("bad", [1.5e6, "100", None, True])
def test_record_ns_refuses_non_integers(bad: object) -> None:
    """record_ns takes integer nanoseconds only; nothing else reaches the pending values."""
    h = LatencyHistogram()
    with pytest.raises(ConfigurationError, match="integer nanoseconds"):
        h.record_ns(bad)  # type: ignore[arg-type]
    h.record_ns(2_000)
    assert (1, 2e-6) == (h.count, h.max)


def test_record_ns_accepts_integer_likes() -> None:
    """An int subclass or an object with __index__ is recorded as its integer value."""

    class Ticks(int):
        pass

    class Index:
        def __index__(self) -> int:
            return 3_000

    h = LatencyHistogram()
    h.record_ns(Ticks(1_000))
    h.record_ns(Index())  # type: ignore[arg-type]
    assert (2, 1e-6, 3e-6) == (h.count, h.min, h.max)


def test_pending_values_are_folded_before_every_read() -> None:
    """Values below the fold threshold are visible to every query at once."""
    h = LatencyHistogram()
    for i in range(1, 11):
        h.record(i * 1e-3)
        assert i == h.count
    assert _package_extremes([10_000])[1] == h.max
    assert 0.055 == pytest.approx(h.total, abs=1e-15)
    for _ in range(3_000):  # crosses the fold threshold several times
        h.record_ns(7_000)
    assert 3_010 == h.count
    assert [3_000, 3_010] == h.cumulative_counts([7e-6, 1.0])


@settings(max_examples=40, deadline=None)
@given(
    a=st.lists(st.integers(min_value=0, max_value=10**8), max_size=50),
    b=st.lists(st.integers(min_value=0, max_value=10**8), max_size=50),
    c=st.lists(st.integers(min_value=0, max_value=10**8), max_size=50),
)
def test_merge_is_associative_and_commutative(a: list[int], b: list[int], c: list[int]) -> None:
    """(a + b) + c == a + (c + b): counts, count, sum, min and max."""

    def hist(values: list[int]) -> LatencyHistogram:
        h = LatencyHistogram()
        for v in values:
            h.record_ns(v * 1000)
        return h

    left = hist(a)
    left.merge(hist(b))
    left.merge(hist(c))
    right_tail = hist(c)
    right_tail.merge(hist(b))
    right = hist(a)
    right.merge(right_tail)
    assert left._state() == right._state()


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0, max_value=3600), min_size=1, max_size=100),
    ps=st.lists(st.floats(min_value=0, max_value=100), min_size=2, max_size=8),
)
def test_percentiles_are_monotone_and_bracketed(values: list[float], ps: list[float]) -> None:
    """Percentiles grow with p and lie within one bucket of [min, max]."""
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    got = [h.percentile(p) for p in sorted(ps)]
    assert got == sorted(got)
    assert h.min * (1 - 1e-3) - 1e-6 <= got[0]
    assert got[-1] <= h.max * (1 + 1e-3) + 1e-6


def test_importing_the_module_is_cheap() -> None:
    """Importing perfprim.histogram does not load the hdrhistogram package."""
    import subprocess
    import sys

    code = "import sys, perfprim.histogram; print('hdrh' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert "False" == out


def test_coarse_lowest_matches_the_package() -> None:
    """With lowest above the unit (1 ms at 1 us), buckets still match the package's."""
    rng = random.Random(21)
    values = [rng.randrange(0, 10**9) for _ in range(3_000)] + [0, 1, 999, 1000, 2047 * 1024]
    ours = LatencyHistogram(lowest=1e-3)
    theirs = HdrHistogram(1000, 3_600_000_000, 3)
    for v in values:
        ours.record(v / 1e6)
        theirs.record_value(v)
    assert list(theirs.counts) == ours._state()[0]
    ps = [0.0, 1.0, 50.0, 99.0, 100.0]
    assert theirs.get_percentile_to_value_dict(ps) == {
        p: round(v * 1e6) for p, v in ours.percentiles(ps).items()
    }


def test_record_corrected_clamps_infinity() -> None:
    """A clamping histogram corrects an infinite value as a value at highest."""
    h = LatencyHistogram(highest=1.0, clamp=True)
    h.record_corrected(math.inf, expected_interval=0.25)
    assert (4, 1) == (h.count, h.clamped)
    assert _package_extremes([1_000_000], highest=1_000_000)[1] == h.max


def test_readers_during_writes_see_consistent_growing_counts() -> None:
    """Queries, copies and pickles while 4 threads write never fail, and the end is exact."""
    h = LatencyHistogram()
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        for i in range(40_000):
            h.record_ns(1_000 + i % 5_000)

    def reader() -> None:
        try:
            while not stop.is_set() and len(seen) < 100_000:
                snapshot = pickle.loads(pickle.dumps(h))
                seen.append(snapshot.count)
                assert sum(snapshot._state()[0]) == snapshot.count
                h.percentiles([50, 99])
                h.cumulative_counts([0.001, 0.01])
        except BaseException as exc:  # reported below
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer) for _ in range(4)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(timeout=120)
    stop.set()
    for t in readers:
        t.join(timeout=120)
    assert [] == errors
    assert 160_000 == h.count
    assert 160_000 == sum(h._state()[0])


def test_decorator_fast_path_still_checks_the_range() -> None:
    """The callback used with perf_counter_ns records in range and refuses values above it."""
    h = LatencyHistogram(highest=1.0)
    h._record_elapsed(5_000)
    with pytest.raises(HistogramRangeError):
        h._record_elapsed(2 * 10**9)
    assert (1, 5e-6) == (h.count, h.max)

    @h.timed
    def work() -> int:
        return 7

    assert 7 == work()
    assert 2 == h.count
