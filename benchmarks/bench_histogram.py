"""Histogram benchmarks: perfprim's LatencyHistogram against the hdrhistogram package.

Groups (issue 5): recording one value; ``@h.timed`` against a bare timer
decorator that reads ``perf_counter_ns`` twice (sync and async); five
percentiles and mean+stdev on a histogram holding 1e6 values; V2 encode and
decode; memory per histogram. DDSketch ``add`` and prometheus_client
``observe`` join the record group for context.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from perfprim.histogram import LatencyHistogram
from perfprim.histogram._codec import to_package

PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)


def lognormal_seconds(n: int, seed: int = 5) -> list[float]:
    rng = random.Random(seed)
    return [min(rng.lognormvariate(-5, 1.5), 3000.0) for _ in range(n)]


@pytest.fixture(scope="module")
def full() -> tuple[LatencyHistogram, HdrHistogram]:
    """Both histograms holding the same 1e6 lognormal values (microsecond units)."""
    ours = LatencyHistogram()
    for v in lognormal_seconds(1_000_000):
        ours.record(v)
    counts, count, _total, low, high, _clamped = ours._state()
    theirs = to_package(ours.layout, counts, count, low, high)
    return ours, theirs


# -- record ---------------------------------------------------------------------------


def test_record_perfprim(compare: Callable[..., Any]) -> None:
    h = LatencyHistogram()
    compare("histogram: record", "perfprim", h.record, 0.0123)


def test_record_ns_perfprim(compare: Callable[..., Any]) -> None:
    h = LatencyHistogram()
    compare("histogram: record", "perfprim.record_ns", h.record_ns, 12_300_000)


def test_record_hdrhistogram(compare: Callable[..., Any]) -> None:
    h = HdrHistogram(1, 3_600_000_000, 3)
    compare("histogram: record", "hdrhistogram", h.record_value, 12_300)


def test_record_ddsketch(compare: Callable[..., Any]) -> None:
    from ddsketch import DDSketch

    sketch = DDSketch()
    compare("histogram: record", "ddsketch", sketch.add, 0.0123)


def test_record_prometheus(compare: Callable[..., Any]) -> None:
    from prometheus_client import CollectorRegistry, Histogram

    hist = Histogram("bench_seconds", "bench", registry=CollectorRegistry())
    compare("histogram: record", "prometheus_client", hist.observe, 0.0123)


# 1000 varied values per call: every value lands in its own bucket, so nothing is
# flattered by a constant value (the median is divided by 1000 in the table below
# only through the ratio: both sides run the same loop).
VARIED = lognormal_seconds(1_000, seed=9)
VARIED_US = [round(v * 1e6) for v in VARIED]
VARIED_GROUP = "histogram: record x1000 lognormal values"


def test_record_varied_perfprim(compare: Callable[..., Any]) -> None:
    h = LatencyHistogram()
    record = h.record

    def run() -> None:
        for v in VARIED:
            record(v)

    compare(VARIED_GROUP, "perfprim", run)


def test_record_varied_hdrhistogram(compare: Callable[..., Any]) -> None:
    h = HdrHistogram(1, 3_600_000_000, 3)
    record = h.record_value

    def run() -> None:
        for v in VARIED_US:
            record(v)

    compare(VARIED_GROUP, "hdrhistogram", run)


def test_record_varied_ddsketch(compare: Callable[..., Any]) -> None:
    from ddsketch import DDSketch

    record = DDSketch().add

    def run() -> None:
        for v in VARIED:
            record(v)

    compare(VARIED_GROUP, "ddsketch", run)


# -- decorators -----------------------------------------------------------------------


def bare_timer(func: Callable[..., Any]) -> Callable[..., Any]:
    """The floor: two clock reads and a store, nothing else."""
    clock = time.perf_counter_ns
    sink = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return func(*args, **kwargs)
        finally:
            sink[0] = clock() - start

    return wrapper


def bare_async_timer(func: Callable[..., Any]) -> Callable[..., Any]:
    clock = time.perf_counter_ns
    sink = [0]

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return await func(*args, **kwargs)
        finally:
            sink[0] = clock() - start

    return wrapper


def hdr_timer(func: Callable[..., Any]) -> Callable[..., Any]:
    clock = time.perf_counter_ns
    h = HdrHistogram(1, 3_600_000_000, 3)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return func(*args, **kwargs)
        finally:
            h.record_value((clock() - start + 500) // 1000)

    return wrapper


def trivial(x: int) -> int:
    return x


async def atrivial(x: int) -> int:
    return x


def test_timed_perfprim(compare: Callable[..., Any]) -> None:
    h = LatencyHistogram()
    compare("histogram: @timed sync", "perfprim", h.timed(trivial), 1)


def test_timed_bare(compare: Callable[..., Any]) -> None:
    compare("histogram: @timed sync", "bare-timer", bare_timer(trivial), 1)


def test_timed_hdrhistogram(compare: Callable[..., Any]) -> None:
    compare("histogram: @timed sync", "bare-timer+hdrhistogram", hdr_timer(trivial), 1)


def test_timed_async_perfprim(compare_async: Callable[..., Any]) -> None:
    h = LatencyHistogram()
    fn = h.timed(atrivial)
    compare_async("histogram: @timed async", "perfprim", lambda: fn(1))


def test_timed_async_bare(compare_async: Callable[..., Any]) -> None:
    fn = bare_async_timer(atrivial)
    compare_async("histogram: @timed async", "bare-timer", lambda: fn(1))


# -- queries on 1e6 values ----------------------------------------------------------------


def test_percentiles_perfprim(compare: Callable[..., Any], full: Any) -> None:
    ours, _ = full

    def cold() -> dict[float, float]:
        # Drop the cached prefix sum: measure what a query after new writes costs.
        ours._prefix_gen = -1
        return ours.percentiles(PERCENTILES)

    compare("histogram: 5 percentiles (1e6 values)", "perfprim", cold)


def test_percentiles_perfprim_cached(compare: Callable[..., Any], full: Any) -> None:
    ours, _ = full
    compare(
        "histogram: 5 percentiles (1e6 values)", "perfprim.cached", ours.percentiles, PERCENTILES
    )


def test_percentiles_hdrhistogram(compare: Callable[..., Any], full: Any) -> None:
    _, theirs = full
    compare(
        "histogram: 5 percentiles (1e6 values)",
        "hdrhistogram",
        theirs.get_percentile_to_value_dict,
        list(PERCENTILES),
    )


def test_mean_stdev_perfprim(compare: Callable[..., Any], full: Any) -> None:
    ours, _ = full
    compare("histogram: mean+stdev (1e6 values)", "perfprim", lambda: (ours.mean, ours.stdev))


def test_mean_stdev_hdrhistogram(compare: Callable[..., Any], full: Any) -> None:
    _, theirs = full
    compare(
        "histogram: mean+stdev (1e6 values)",
        "hdrhistogram",
        lambda: (theirs.get_mean_value(), theirs.get_stddev()),
    )


# -- wire format ----------------------------------------------------------------------


def test_encode_perfprim(compare: Callable[..., Any], full: Any) -> None:
    ours, _ = full
    compare("histogram: encode (1e6 values)", "perfprim", ours.encode)


def test_encode_hdrhistogram(compare: Callable[..., Any], full: Any) -> None:
    _, theirs = full
    compare("histogram: encode (1e6 values)", "hdrhistogram", theirs.encode)


def test_decode_perfprim(compare: Callable[..., Any], full: Any) -> None:
    text = full[0].encode()
    compare("histogram: decode (1e6 values)", "perfprim", LatencyHistogram.decode, text)


def test_decode_hdrhistogram(compare: Callable[..., Any], full: Any) -> None:
    text = full[0].encode()
    compare("histogram: decode (1e6 values)", "hdrhistogram", HdrHistogram.decode, text)


# -- memory ----------------------------------------------------------------------------


def allocated(make: Callable[[], object]) -> tuple[int, object]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    obj = make()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, obj


def test_memory_per_histogram(record_metric: Callable[..., None]) -> None:
    ours, _a = allocated(LatencyHistogram)
    theirs, _b = allocated(lambda: HdrHistogram(1, 3_600_000_000, 3))
    record_metric("histogram.memory.perfprim", ours / 1024, unit="KiB", note="defaults, empty")
    record_metric(
        "histogram.memory.hdrhistogram", theirs / 1024, unit="KiB", note="(1, 3.6e9, 3), empty"
    )
    record_metric("histogram.memory.ratio", ours / theirs, unit="x", note="perfprim / package")

    def filled() -> LatencyHistogram:
        # the value list is freed before the measurement ends: only the histogram counts
        h = LatencyHistogram()
        for v in lognormal_seconds(200_000, seed=3):
            h.record(v)
        h.count  # noqa: B018 - fold what is pending
        return h

    full, _c = allocated(filled)
    record_metric(
        "histogram.memory.perfprim.filled",
        full / 1024,
        unit="KiB",
        note="after 2e5 lognormal values: counts > 256 are separate int objects",
    )
