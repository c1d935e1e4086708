"""LatencySLO: the SLI from Prometheus cumulative buckets and from a perfprim histogram."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfprim.exceptions import ConfigurationError
from perfprim.slo import SLO, LatencySLO

BUCKETS = {"0.05": 400, "0.1": 700, "0.3": 990, "1": 998, "+Inf": 1000}


def test_sli_from_label_strings() -> None:
    """The bucket whose le is the threshold gives the good count; +Inf the total."""
    slo = LatencySLO(threshold=0.3, target=0.99)
    assert (990, 1000) == slo.counts_from_buckets(BUCKETS)
    assert 0.99 == slo.sli_from_buckets(BUCKETS)


def test_sli_from_float_pairs_in_any_order() -> None:
    """Bounds may be floats, given as unordered pairs."""
    slo = LatencySLO(threshold=timedelta(milliseconds=100), target=0.99)
    pairs = [(math.inf, 10.0), (0.1, 7.0), (0.05, 3.0)]
    assert 0.7 == slo.sli_from_buckets(pairs)


def test_threshold_must_be_a_bucket_bound() -> None:
    """A threshold between bounds is refused with the bounds listed."""
    slo = LatencySLO(threshold=0.25, target=0.99)
    with pytest.raises(ConfigurationError, match=r"not a bucket bound \(0.05, 0.1, 0.3, 1, inf\)"):
        slo.sli_from_buckets(BUCKETS)


def test_threshold_matches_despite_float_noise() -> None:
    """0.1 + 0.2 matches the 0.3 bound (relative tolerance 1e-9)."""
    assert 0.99 == LatencySLO(threshold=0.1 + 0.2, target=0.99).sli_from_buckets(BUCKETS)


@pytest.mark.parametrize(
    ("buckets", "match"),
    [
        ({"0.3": 5}, r"\+Inf"),
        ({}, r"\+Inf"),
        ({"0.3": 5, "0.1": 7, "+Inf": 9}, "cumulative"),
        ({"fast": 5, "+Inf": 9}, "not a number"),
        ({"0.3": -1, "+Inf": 9}, "non-negative"),
    ],
)
def test_malformed_buckets(buckets: dict[str, float], match: str) -> None:
    """Missing +Inf, non-cumulative counts, bad bounds and negative counts are refused."""
    with pytest.raises(ConfigurationError, match=match):
        LatencySLO(threshold=0.3, target=0.99).counts_from_buckets(buckets)


def test_empty_histogram_buckets_have_no_sli() -> None:
    """All-zero buckets: no traffic, SLI None."""
    assert LatencySLO(threshold=0.3, target=0.99).sli_from_buckets({"0.3": 0, "+Inf": 0}) is None


def test_latency_slo_is_an_slo_with_a_threshold() -> None:
    """LatencySLO shares the SLO math and differs from an SLO by its threshold."""
    slo = LatencySLO(threshold=0.3, target=0.99)
    assert isinstance(slo, SLO)
    assert 0.01 == slo.error_budget
    assert slo != SLO(target=0.99)
    assert slo == LatencySLO(threshold=0.3, target=0.99)
    assert hash(slo) == hash(LatencySLO(threshold=0.3, target=0.99))
    assert "LatencySLO(threshold=0.3, target=0.99, window=2592000.0)" == repr(slo)
    assert slo.is_good(0.3)
    assert not slo.is_good(0.31)
    with pytest.raises(ConfigurationError, match="threshold"):
        LatencySLO(threshold=0, target=0.99)


@given(latencies=st.lists(st.floats(0, 10), max_size=200))
def test_buckets_agree_with_counting(latencies: list[float]) -> None:
    """Buckets built from raw latencies give the same SLI as counting them."""
    slo = LatencySLO(threshold=0.3, target=0.99)
    bounds = [0.1, 0.3, 1.0, math.inf]
    buckets = {b: sum(1 for x in latencies if x <= b) for b in bounds}
    expected = slo.sli(sum(1 for x in latencies if slo.is_good(x)), len(latencies))
    assert expected == slo.sli_from_buckets(buckets)
