"""LatencySLO from a perfprim LatencyHistogram (branch ``histogram``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.histogram import LatencyHistogram
from perfprim.slo import CumulativeHistogram, LatencySLO


def test_sli_from_histogram() -> None:
    """Values at or below the threshold are good; the total is the histogram's count."""
    histogram = LatencyHistogram()
    for latency in (0.01, 0.05, 0.2, 0.3):
        histogram.record(latency)
    histogram.record(0.9, count=4)
    slo = LatencySLO(threshold=0.3, target=0.99)
    assert (4, 8) == slo.counts_from_histogram(histogram)
    assert 0.5 == slo.sli_from_histogram(histogram)


def test_empty_histogram_has_no_sli() -> None:
    """An empty histogram: no traffic, SLI None."""
    assert LatencySLO(threshold=0.3, target=0.99).sli_from_histogram(LatencyHistogram()) is None


def test_histogram_satisfies_the_protocol() -> None:
    """LatencyHistogram is what LatencySLO asks for (count, cumulative_counts)."""
    histogram: CumulativeHistogram = LatencyHistogram()
    assert 0 == histogram.count


@settings(deadline=None)
@given(latencies=st.lists(st.floats(1e-5, 10), max_size=100))
def test_histogram_sli_is_within_its_precision(latencies: list[float]) -> None:
    """Values clearly apart from the threshold are classified exactly.

    HDR rounding can count as good a value above the threshold by at most the
    histogram's relative precision (0.1% at 3 significant figures); values
    further than 0.2% from the threshold are never misclassified.
    """
    threshold = 0.3
    far = [x for x in latencies if abs(x - threshold) > 0.002 * threshold]
    histogram = LatencyHistogram()
    for x in far:
        histogram.record(x)
    slo = LatencySLO(threshold=threshold, target=0.99)
    assert (sum(1 for x in far if x <= threshold), len(far)) == slo.counts_from_histogram(histogram)


def test_value_just_above_threshold_may_count_as_good() -> None:
    """The documented edge: within one HDR bucket above the threshold counts as good."""
    histogram = LatencyHistogram()
    histogram.record(0.30001)  # 10 us above: in the same HDR bucket as 0.3
    slo = LatencySLO(threshold=0.3, target=0.99)
    assert 1.0 == slo.sli_from_histogram(histogram)
    assert pytest.approx(0.0) == slo.sli_from_buckets({"0.3": 0, "+Inf": 1})
