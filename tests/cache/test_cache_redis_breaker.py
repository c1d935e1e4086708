"""The circuit breaker state machine, driven by a fake clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfprim.cache import _breaker
from perfprim.cache._breaker import CircuitBreaker, CircuitState
from perfprim.exceptions import ConfigurationError


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 3, cooldown: float = 5.0) -> tuple[CircuitBreaker, FakeClock]:
    """A breaker on a fake clock."""
    clock = FakeClock()
    return CircuitBreaker(failure_threshold=threshold, cooldown=cooldown, clock=clock), clock


def test_all_is_pinned() -> None:
    """The module exports exactly these names."""
    assert ["CircuitBreaker", "CircuitState"] == _breaker.__all__


def test_opens_after_threshold_consecutive_failures() -> None:
    """N-1 failures keep it closed; the Nth opens it and calls are refused."""
    breaker, _ = make(threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    assert CircuitState.CLOSED is breaker.state
    assert breaker.allow()
    breaker.record_failure()
    assert CircuitState.OPEN is breaker.state
    assert not breaker.allow()


def test_a_timeout_opens_at_once() -> None:
    """One timeout opens the circuit below the threshold: it already cost the whole timeout."""
    breaker, clock = make(threshold=3, cooldown=5.0)
    breaker.record_failure(timeout=True)
    assert CircuitState.OPEN is breaker.state
    assert not breaker.allow()
    clock.now += 5.0
    assert breaker.allow()  # the probe
    assert CircuitState.HALF_OPEN is breaker.state


def test_a_timeout_only_counts_when_open_on_timeout_is_off() -> None:
    """With open_on_timeout=False a timeout is one failure like any other."""
    breaker = CircuitBreaker(failure_threshold=2, open_on_timeout=False, clock=FakeClock())
    breaker.record_failure(timeout=True)
    assert CircuitState.CLOSED is breaker.state
    breaker.record_failure(timeout=True)
    assert CircuitState.OPEN is breaker.state


def test_success_resets_the_count() -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    breaker, _ = make(threshold=2)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert CircuitState.CLOSED is breaker.state
    assert 1 == breaker.consecutive_failures


def test_half_open_lets_exactly_one_probe_through() -> None:
    """After the cool-down one caller probes; others are refused while it runs."""
    breaker, clock = make(threshold=1, cooldown=5.0)
    breaker.record_failure()
    clock.now += 4.999
    assert not breaker.allow()
    clock.now += 0.001
    assert breaker.allow()
    assert CircuitState.HALF_OPEN is breaker.state
    assert not breaker.allow()
    assert not breaker.allow()


def test_probe_success_closes() -> None:
    """A successful probe closes the circuit and every caller passes again."""
    breaker, clock = make(threshold=1, cooldown=2.0)
    breaker.record_failure()
    clock.now += 2.0
    assert breaker.allow()
    breaker.record_success()
    assert CircuitState.CLOSED is breaker.state
    assert breaker.allow()
    assert 0 == breaker.consecutive_failures


def test_probe_failure_reopens_for_a_new_cooldown() -> None:
    """A failed probe opens the circuit again, counting the cool-down from the failure."""
    breaker, clock = make(threshold=3, cooldown=2.0)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 2.0
    assert breaker.allow()
    clock.now += 0.5
    breaker.record_failure()
    assert CircuitState.OPEN is breaker.state
    clock.now += 1.9
    assert not breaker.allow()
    assert 0.1 == pytest.approx(breaker.retry_after())
    clock.now += 0.1
    assert breaker.allow()


def test_a_stragglers_failure_while_open_does_not_restart_the_cooldown() -> None:
    """Calls admitted before the circuit opened and failing later leave the probe's time alone."""
    breaker, clock = make(threshold=3, cooldown=3.0)
    for _ in range(3):
        breaker.record_failure()
    for _ in range(4):  # four slow calls, admitted while closed, fail over the next 2.8 s
        clock.now += 0.7
        breaker.record_failure()
    assert CircuitState.OPEN is breaker.state
    assert 7 == breaker.consecutive_failures
    assert 0.2 == pytest.approx(breaker.retry_after())
    clock.now += 0.2
    assert breaker.allow()  # 3 s after the opening, not after the last straggler
    breaker.record_success()
    assert CircuitState.CLOSED is breaker.state


def test_a_silent_probe_is_replaced_after_a_cooldown() -> None:
    """A probe that never reports (cancelled) does not leave the breaker half-open forever."""
    breaker, clock = make(threshold=1, cooldown=1.0)
    breaker.record_failure()
    clock.now += 1.0
    assert breaker.allow()
    clock.now += 0.5
    assert not breaker.allow()
    clock.now += 0.5
    assert breaker.allow()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_rejects_bad_threshold(bad: object) -> None:
    """failure_threshold must be an int >= 1."""
    with pytest.raises(ConfigurationError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=bad)  # type: ignore[arg-type]


def test_cooldown_accepts_timedelta_and_zero_and_rejects_the_rest() -> None:
    """Cooldown is float seconds or a timedelta, 0 allowed; negative, inf, NaN refused."""
    assert 2.0 == CircuitBreaker(cooldown=timedelta(seconds=2)).cooldown
    assert 0.0 == CircuitBreaker(cooldown=0).cooldown
    for bad in (-1.0, float("inf"), float("nan"), "1", None):
        with pytest.raises(ConfigurationError, match="cooldown must be a non-negative, finite"):
            CircuitBreaker(cooldown=bad)  # type: ignore[arg-type]


def test_state_is_a_short_label() -> None:
    """The state reads as a plain string in stats."""
    assert "half_open" == str(CircuitState.HALF_OPEN)
    assert "closed" == CircuitState.CLOSED


# The model: what the breaker must do for any sequence of events.
events = st.lists(
    st.one_of(
        st.just(("fail", 0.0)),
        st.just(("ok", 0.0)),
        st.just(("allow", 0.0)),
        st.tuples(st.just("tick"), st.floats(min_value=0.0, max_value=10.0)),
    ),
    max_size=60,
)


@given(
    threshold=st.integers(min_value=1, max_value=5),
    cooldown=st.floats(min_value=0.0, max_value=5.0),
    script=events,
)
def test_matches_a_reference_model(threshold: int, cooldown: float, script: list) -> None:
    """For any event sequence the breaker agrees with a straightforward model of the pattern."""
    breaker, clock = make(threshold=threshold, cooldown=cooldown)
    state, failures, since = "closed", 0, 0.0
    for kind, amount in script:
        if kind == "tick":
            clock.now += amount
        elif kind == "fail":
            failures += 1
            if state != "open" and (state == "half_open" or failures >= threshold):
                state, since = "open", clock.now  # while open: a straggler's, only counted
            breaker.record_failure()
        elif kind == "ok":
            state, failures = "closed", 0
            breaker.record_success()
        else:
            expected = state == "closed" or clock.now - since >= cooldown
            if state != "closed" and expected:
                state, since = "half_open", clock.now
            assert expected == breaker.allow()
        assert state == breaker.state.value
        assert failures == breaker.consecutive_failures


@given(threshold=st.integers(min_value=1, max_value=10))
def test_never_opens_before_threshold(threshold: int) -> None:
    """Fewer than threshold consecutive failures never refuse a call."""
    breaker, _ = make(threshold=threshold)
    for _ in range(threshold - 1):
        breaker.record_failure()
        assert breaker.allow()
    breaker.record_failure()
    assert not breaker.allow()


@given(st.lists(st.sampled_from(["fail", "timeout", "ok", "allow", "wait"]), max_size=40))
def test_quiet_is_exactly_closed_without_failures(ops: list[str]) -> None:
    """``quiet`` (the tiers' hot-path shortcut) holds iff closed with no failure counted."""
    breaker, clock = make(threshold=3, cooldown=5.0)
    for op in ops:
        if op == "fail":
            breaker.record_failure()
        elif op == "timeout":
            breaker.record_failure(timeout=True)
        elif op == "ok":
            breaker.record_success()
        elif op == "allow":
            breaker.allow()
        else:
            clock.now += 5.0
        expected = breaker.state is CircuitState.CLOSED and breaker.consecutive_failures == 0
        assert expected == breaker.quiet
