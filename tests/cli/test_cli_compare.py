"""The interval math behind ``hist diff``: binomial order statistics, checked independently."""

from __future__ import annotations

import random
from fractions import Fraction
from math import comb

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.cli._compare import binomial_ranks, compare, quantile_interval
from perfprim.histogram import LatencyHistogram


def _exact_cdf(n: int, q: Fraction, k: int) -> Fraction:
    return sum((comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(k + 1)), Fraction(0))


@pytest.mark.parametrize(
    ("n", "ranks"),
    [(10, (2, 9)), (20, (6, 15)), (100, (40, 61))],
)
def test_median_ranks_match_le_boudec_table(n: int, ranks: tuple[int, int]) -> None:
    """95% intervals for the median: Le Boudec 2010, Table A.1 (n=10: X2..X9; 100: X40..X61)."""
    assert ranks == binomial_ranks(n, 0.5, 0.05)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=5, max_value=150),
    q=st.sampled_from([0.1, 0.5, 0.9, 0.99]),
    alpha=st.sampled_from([0.01, 0.05, 0.2]),
)
def test_ranks_are_the_tightest_with_alpha_over_2_each_side(n: int, q: float, alpha: float) -> None:
    """Against the exact binomial CDF: F(l-1) <= a/2 < F(l), F(u-2) < 1-a/2 <= F(u-1)."""
    lower, upper = binomial_ranks(n, q, alpha)
    exact_q = Fraction(q)
    half = Fraction(alpha) / 2
    if lower >= 1:
        assert _exact_cdf(n, exact_q, lower - 1) <= half * (1 + Fraction(1, 10**9))
    assert _exact_cdf(n, exact_q, lower) > half * (1 - Fraction(1, 10**9))
    if upper <= n:
        assert _exact_cdf(n, exact_q, upper - 1) >= (1 - half) * (1 - Fraction(1, 10**9))
        if upper >= 2:
            assert _exact_cdf(n, exact_q, upper - 2) < (1 - half) * (1 + Fraction(1, 10**9))


def test_ranks_for_a_billion_values_are_fast_and_centred() -> None:
    """N = 1e9 at p99: the ranks sit about 1.96 sd either side of n q."""
    n, q = 10**9, 0.99
    lower, upper = binomial_ranks(n, q, 0.05)
    sd = (n * q * (1 - q)) ** 0.5
    assert (n * q - lower) / sd == pytest.approx(1.96, abs=0.01)
    assert (upper - n * q) / sd == pytest.approx(1.96, abs=0.01)


def test_interval_covers_the_true_quantile_at_its_level() -> None:
    """Uniform(0, 1), 300 values: the 90% interval of the median covers 0.5 in >= ~90% of runs."""
    rng = random.Random(7)
    covered = 0
    trials = 300
    for _ in range(trials):
        h = LatencyHistogram()
        for _ in range(300):
            h.record(rng.random())
        low, high = quantile_interval(h, 50.0, 0.9)
        covered += low <= 0.5 <= high
    assert 0.86 <= covered / trials  # binomial sd of the rate is ~1.7% at 300 trials


def test_family_wise_false_alarms_stay_under_alpha() -> None:
    """Pairs of runs of one distribution: a regression is reported in far fewer than 5% of pairs."""
    rng = random.Random(11)
    alarms = 0
    pairs = 60
    for _ in range(pairs):
        a, b = LatencyHistogram(), LatencyHistogram()
        for _ in range(2000):
            a.record(rng.expovariate(100.0))
            b.record(rng.expovariate(100.0))
        changes = compare(a, b, (50.0, 90.0, 99.0), confidence=0.95)
        alarms += any(c.verdict == "regressed" for c in changes)
    assert alarms <= 3  # at most alpha = 5% of 60 pairs, by the Bonferroni bound


def test_bucket_edges_make_the_interval_conservative() -> None:
    """All values in one HDR bucket: the interval spans that bucket's edges."""
    h = LatencyHistogram()
    h.record(0.0123, count=1000)
    low, high = quantile_interval(h, 50.0, 0.95)
    assert low <= 0.0123 <= high
    assert h.percentile(50) == high
    assert (high - low) / high < 1e-3  # one bucket at 3 significant figures
