"""XFetch and freshness decisions: checked against the formula exactly."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfprim.cache._xfetch import (
    MAX_NEG_LN_RAND,
    before_window,
    check_beta,
    decide_lazy,
    expected_extra_recomputations,
    uniform_open_closed,
)
from perfprim.cache.advanced import Decision, Entry, decide, early_probability
from perfprim.exceptions import ConfigurationError

times = st.floats(min_value=0.0, max_value=1e9, allow_nan=False)
spans = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)
betas = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)
rands = st.floats(min_value=5e-324, max_value=1.0, exclude_min=False)


def reference(entry: Entry | None, now: float, beta: float, rand: float) -> Decision:
    """The issue's rules written as plainly as possible."""
    if entry is None:
        return Decision.MISS
    if now >= entry.expires_at:
        if now < entry.stale_until:
            return Decision.STALE
        return Decision.MISS
    early = beta > 0 and entry.delta > 0
    if early and now - entry.delta * beta * math.log(rand) >= entry.expires_at:
        return Decision.REFRESH_EARLY
    return Decision.FRESH


@given(expires=times, delta=spans, stale=spans, offset=st.floats(-1e4, 1e4), beta=betas, rand=rands)
def test_decide_matches_the_formula(
    expires: float, delta: float, stale: float, offset: float, beta: float, rand: float
) -> None:
    """decide() equals the XFetch rule and the stale window for any entry, time, beta, rand."""
    entry = Entry("v", expires_at=expires, delta=delta, stale_until=expires + stale)
    now = expires + offset
    assert reference(entry, now, beta, rand) == decide(entry, now, beta=beta, rand=rand)


@given(
    expires=times,
    delta=spans,
    stale=spans,
    offset=st.floats(-1e4, 1e4),
    beta=betas,
    rand=st.floats(min_value=2.0**-53, max_value=1.0),
)
def test_lazy_decision_equals_the_exact_one(
    expires: float, delta: float, stale: float, offset: float, beta: float, rand: float
) -> None:
    """decide_lazy (skips the draw far from expiry) answers exactly as decide for rand >= 2**-53."""
    entry = Entry("v", expires_at=expires, delta=delta, stale_until=expires + stale)
    now = expires + offset
    assert decide(entry, now, beta=beta, rand=rand) == decide_lazy(
        entry, now, beta=beta, source=lambda: rand
    )


@given(
    expires=times,
    delta=spans,
    offset=st.floats(-1e4, 1e4),
    beta=betas,
    rand=st.floats(min_value=2.0**-53, max_value=1.0),
)
def test_before_window_means_fresh_whatever_the_draw(
    expires: float, delta: float, offset: float, beta: float, rand: float
) -> None:
    """before_window() is True only where the exact rule answers FRESH for every draw."""
    entry = Entry("v", expires_at=expires, delta=delta, stale_until=expires)
    now = expires + offset
    if before_window(entry, now, beta):
        assert Decision.FRESH == reference(entry, now, beta, rand)
    else:
        assert now >= expires or now + delta * beta * MAX_NEG_LN_RAND >= expires


def test_lazy_decision_draws_only_near_expiry() -> None:
    """Far from expiry decide_lazy draws nothing; inside delta*beta*36.7 it draws once."""
    draws: list[float] = []

    def source() -> float:
        draws.append(1.0)
        return 2.0**-53  # the smallest value uniform_open_closed can return

    entry = Entry("v", expires_at=1000.0, delta=1.0, stale_until=1000.0)
    far = 1000.0 - MAX_NEG_LN_RAND - 0.01
    assert Decision.FRESH == decide_lazy(entry, far, beta=1.0, source=source)
    assert [] == draws
    near = 1000.0 - MAX_NEG_LN_RAND + 0.01
    assert Decision.REFRESH_EARLY == decide_lazy(entry, near, beta=1.0, source=source)
    assert [1.0] == draws


@given(now=times, beta=betas, rand=rands)
def test_no_entry_is_a_miss(now: float, beta: float, rand: float) -> None:
    """Without an entry the answer is always MISS."""
    assert Decision.MISS == decide(None, now, beta=beta, rand=rand)


@given(expires=times, delta=spans, before=spans, rand=rands)
def test_beta_zero_disables_early_refresh(
    expires: float, delta: float, before: float, rand: float
) -> None:
    """With beta=0 an entry is FRESH until its expiry, whatever rand is."""
    entry = Entry("v", expires_at=expires, delta=delta, stale_until=expires)
    now = expires - before - 1e-3
    assert Decision.FRESH == decide(entry, now, beta=0.0, rand=rand)


@given(expires=st.floats(1e3, 1e6), delta=st.floats(1e-3, 10), left=st.floats(0, 100), r=rands)
def test_smaller_rand_refreshes_at_least_as_early(
    expires: float, delta: float, left: float, r: float
) -> None:
    """If rand r triggers an early refresh, every smaller rand does too (monotone in rand)."""
    entry = Entry("v", expires_at=expires, delta=delta, stale_until=expires)
    now = expires - left
    if decide(entry, now, beta=1.0, rand=r) is Decision.REFRESH_EARLY:
        assert Decision.REFRESH_EARLY == decide(entry, now, beta=1.0, rand=max(r / 2, 5e-324))


def test_boundaries_of_expiry_and_stale_window() -> None:
    """Expiry is exclusive for FRESH, stale_until exclusive for STALE."""
    entry = Entry("v", expires_at=100.0, delta=0.0, stale_until=105.0)
    assert Decision.FRESH == decide(entry, 99.999, beta=1.0, rand=0.5)
    assert Decision.STALE == decide(entry, 100.0, beta=1.0, rand=0.5)
    assert Decision.STALE == decide(entry, 104.999, beta=1.0, rand=0.5)
    assert Decision.MISS == decide(entry, 105.0, beta=1.0, rand=0.5)


def test_early_refresh_rate_follows_exp_law() -> None:
    """With a seeded uniform source, the share of early refreshes is exp(-x / (delta*beta))."""
    rng = random.Random(1234)
    entry = Entry("v", expires_at=100.0, delta=2.0, stale_until=100.0)
    n = 20_000
    for left in (0.5, 2.0, 5.0):
        hits = sum(
            decide(entry, 100.0 - left, beta=1.0, rand=1.0 - rng.random()) is Decision.REFRESH_EARLY
            for _ in range(n)
        )
        expected = early_probability(left, delta=2.0, beta=1.0)
        assert math.exp(-left / 2.0) == pytest.approx(expected)
        assert expected == pytest.approx(hits / n, abs=0.015)


def test_uniform_source_is_in_open_closed_interval() -> None:
    """The default random source never returns 0 (ln(0) would fail) and stays <= 1."""
    values = [uniform_open_closed() for _ in range(10_000)]
    assert all(0.0 < v <= 1.0 for v in values)


def test_expected_extra_recomputations() -> None:
    """e^(1/beta) - 1: about 1.72 for beta=1, 0.65 for beta=2."""
    assert math.e - 1 == pytest.approx(expected_extra_recomputations(1.0))
    assert math.exp(0.5) - 1 == pytest.approx(expected_extra_recomputations(2.0))
    with pytest.raises(ConfigurationError, match="beta must be > 0"):
        expected_extra_recomputations(0.0)


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan, "1", True])
def test_check_beta_rejects_bad_values(bad: object) -> None:
    """A negative, infinite, NaN or non-numeric beta fails fast with a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="beta must be"):
        check_beta(bad)  # type: ignore[arg-type]


def test_early_probability_edges() -> None:
    """Without delta or beta there is no early refresh; at expiry the probability is 1."""
    assert 0.0 == early_probability(1.0, delta=0.0, beta=1.0)
    assert 1.0 == early_probability(0.0, delta=0.0, beta=1.0)
    assert 1.0 == early_probability(0.0, delta=1.0, beta=1.0)
