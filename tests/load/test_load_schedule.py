"""The planner: stages, planned send times, worker shares (pure, Hypothesis invariants)."""

from __future__ import annotations

import itertools
import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.exceptions import ConfigurationError
from perfprim.load import Stage
from perfprim.load._schedule import Schedule


def plans_something(stages: list[Stage]) -> bool:
    """Whether some stage of positive length has a positive rate at either end."""
    previous = stages[0].rate
    for s in stages:
        if s.duration > 0 and (previous > 0 or s.rate > 0):
            return True
        previous = s.rate
    return False


stages_strategy = st.lists(
    st.builds(
        Stage,
        duration=st.floats(0.0, 20.0, allow_nan=False),
        # 0 or a real rate: a subnormal one (5e-324/s) offers 0.0 requests in
        # floating point, which Schedule rightly refuses as planning nothing
        rate=st.one_of(st.just(0.0), st.floats(1e-6, 300.0)),
    ),
    min_size=1,
    max_size=5,
).filter(lambda ss: sum(s.duration for s in ss) > 0.01 and plans_something(ss))


def integral(stages: list[Stage], a: float, b: float) -> float:
    """Integral of the piecewise-linear rate over [a, b], by the trapezoid rule on each piece."""
    total = 0.0
    t = 0.0
    previous = stages[0].rate
    for s in stages:
        if s.duration > 0:
            lo, hi = max(a, t), min(b, t + s.duration)
            if hi > lo:

                def rate(x: float, t0: float = t, r0: float = previous, st_: Stage = s) -> float:
                    return r0 + (st_.rate - r0) * (x - t0) / st_.duration

                total += (rate(lo) + rate(hi)) * (hi - lo) / 2.0
            t += s.duration
        previous = s.rate
    return total


def test_constant_rate_is_wrk2s_start_plus_i_over_rate() -> None:
    """A constant stage plans request i at exactly i / rate."""
    assert [i / 8 for i in range(16)] == list(Schedule([Stage(2, 8)]))


def test_ramp_follows_the_integral() -> None:
    """0 -> 4/s over 2 s: N(t) = t^2, so request i is at sqrt(i)."""
    times = list(Schedule([Stage(0, 0), Stage(2, 4)]))
    assert [math.sqrt(i) for i in range(4)] == pytest.approx(times)


def test_first_stage_holds_its_own_rate_and_later_ones_ramp() -> None:
    """The issue's example: 200/s for 10 s, ramp to 1000 over 20 s, hold 30 s."""
    s = Schedule([Stage(10, 200), Stage(20, 1000), Stage(30, 1000)])
    assert 200.0 == s.rate_at(5.0)
    assert 600.0 == pytest.approx(s.rate_at(20.0))
    assert 1000.0 == s.rate_at(45.0)
    assert 2000 + 12000 + 30000 == s.planned
    assert 60.0 == s.duration


def test_timedelta_durations_are_accepted() -> None:
    """Durations are float seconds or timedelta."""
    assert Stage(90, 1) == Stage(timedelta(minutes=1.5), 1)


@pytest.mark.parametrize(
    ("duration", "rate"),
    [(-1, 10), (10, -1), (10, math.nan), (10, math.inf), (10, "100"), (10, True), ("10", 1)],
)
def test_bad_stages_fail_fast(duration: object, rate: object) -> None:
    """Negative, NaN, infinite or non-numeric values raise ConfigurationError."""
    with pytest.raises(ConfigurationError):
        Stage(duration, rate)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stages", "words"),
    [([], "last some time"), ([Stage(0, 5)], "last some time"), ([Stage(5, 0)], "rate 0"),
     ([(5, 10)], "Stage objects"), ([Stage(1, 0), Stage(0, 5)], "plan no request")],
)  # fmt: skip
def test_bad_stage_lists_say_what_to_do(stages: list[object], words: str) -> None:
    """Empty, zero-length, all-zero-rate or non-Stage lists are refused with a hint."""
    with pytest.raises(ConfigurationError, match=words):
        Schedule(stages)  # type: ignore[arg-type]


@given(stages_strategy)
@settings(max_examples=150, deadline=None)
def test_planned_times_are_monotone_and_inside_the_run(stages: list[Stage]) -> None:
    """Planned offsets never decrease and lie in [0, duration]."""
    s = Schedule(stages)
    times = list(s)
    assert s.planned == len(times)
    assert all(a <= b for a, b in itertools.pairwise(times))
    assert all(0.0 <= t <= s.duration + 1e-9 for t in times)


@given(stages_strategy)
@settings(max_examples=150, deadline=None)
def test_sends_per_stage_equal_the_integral_of_the_rate(stages: list[Stage]) -> None:
    """Each stage holds the integral of its rate in sends, to within one (rounding)."""
    s = Schedule(stages)
    times = list(s)
    t = 0.0
    for stage in stages:
        if stage.duration == 0:
            continue
        end = t + stage.duration
        inside = sum(1 for x in times if t <= x < end)
        assert abs(inside - integral(stages, t, end)) <= 1.0 + 1e-6
        t = end
    assert abs(len(times) - integral(stages, 0.0, s.duration)) < 1.0 + 1e-9


@given(stages_strategy, st.integers(1, 4))
@settings(max_examples=100, deadline=None)
def test_worker_shares_interleave_into_the_whole_plan(stages: list[Stage], workers: int) -> None:
    """The W workers' shares together are exactly the single plan; sizes differ by <= 1."""
    whole = list(Schedule(stages))
    shares = [list(Schedule(stages, worker=k, workers=workers)) for k in range(workers)]
    assert whole == sorted(t for share in shares for t in share)
    sizes = [len(x) for x in shares]
    assert max(sizes) - min(sizes) <= 1


@given(stages_strategy, st.data())
@settings(max_examples=100, deadline=None)
def test_time_of_agrees_with_iteration_and_inverts_offered_until(
    stages: list[Stage], data: st.DataObject
) -> None:
    """time_of(i) is the i-th offset, and N(time_of(i)) == i."""
    s = Schedule(stages)
    i = data.draw(st.integers(0, s.planned - 1))
    times = list(s)
    assert times[i] == pytest.approx(s.time_of(i), abs=1e-9)
    assert i == pytest.approx(s.offered_until(s.time_of(i)), abs=1e-6)


def test_worker_arguments_are_validated() -> None:
    """Worker must lie in [0, workers)."""
    with pytest.raises(ConfigurationError, match="worker must be"):
        Schedule([Stage(1, 1)], worker=2, workers=2)
    with pytest.raises(ConfigurationError, match="workers must be"):
        Schedule([Stage(1, 1)], workers=0)
