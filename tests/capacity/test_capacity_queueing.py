"""Erlang B/C, staffing and M/M/c response times: exact oracles, peers' figures, invariants."""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.capacity import (
    ErlangC,
    erlang_b,
    erlang_c,
    knee_utilization,
    response_time_at_utilization,
)
from perfprim.exceptions import ConfigurationError, InfeasibleError


def exact_erlang_c(servers: int, load: Fraction) -> Fraction:
    """Erlang C from the textbook factorial formula, in exact rational arithmetic."""
    top = load**servers / math.factorial(servers) * Fraction(servers) / (servers - load)
    bottom = sum(load**k / math.factorial(k) for k in range(servers)) + top
    return top / bottom


def exact_erlang_b(servers: int, load: Fraction) -> Fraction:
    """Erlang B from its factorial formula, exactly."""
    terms = [load**k / math.factorial(k) for k in range(servers + 1)]
    return terms[-1] / sum(terms)


def log_space_erlang_c(servers: int, load: float) -> float:
    """Erlang C through log-sum-exp of Poisson terms (lgamma): an independent large-c oracle."""
    logs = [k * math.log(load) - math.lgamma(k + 1) for k in range(servers + 1)]
    top = max(logs)
    b = math.exp(logs[-1] - top) / math.fsum(math.exp(x - top) for x in logs)
    return servers * b / (servers - load * (1 - b))


def test_call_centre_example_matches_pyworkforce() -> None:
    """100 calls / 30 min, 3 min handling, 14 agents: pyworkforce's published figures.

    pyworkforce tests/test_queing.py: raw_positions 14, service_level 0.888 (its target
    is 0.33 min = 19.8 s), occupancy 0.714, waiting_probability 0.174.
    """
    q = erlang_c(servers=14, arrival_rate=100 / 1800, service_time=180)
    assert pytest.approx(10.0) == q.offered_load
    assert 0.174 == round(q.probability_of_waiting, 3)
    assert 0.888 == round(q.service_level(19.8), 3)
    assert 0.714 == round(q.occupancy, 3)
    assert 14 == ErlangC.servers_needed(
        100 / 1800, 180, target_wait=19.8, service_level=0.8, max_occupancy=0.85
    )


def test_erlang_c_matches_exact_formula() -> None:
    """The recursion agrees with the exact factorial formula to 1e-12 for small pools."""
    for servers in (1, 2, 3, 7, 14, 30):
        for load in (Fraction(1, 10), Fraction(1, 2), Fraction(9, 10)):
            a = load * servers
            q = erlang_c(servers=servers, arrival_rate=float(a), service_time=1.0)
            assert pytest.approx(float(exact_erlang_c(servers, a)), rel=1e-12, abs=1e-300) == (
                q.probability_of_waiting
            )
            assert pytest.approx(float(exact_erlang_b(servers, a)), rel=1e-12) == erlang_b(
                servers=servers, offered_load=float(a)
            )


def test_mm1_closed_forms() -> None:
    """One server: C = rho, W_q = rho S / (1 - rho), W = S / (1 - rho)."""
    q = erlang_c(servers=1, arrival_rate=0.8, service_time=1.0)
    assert pytest.approx(0.8) == q.probability_of_waiting
    assert pytest.approx(4.0) == q.average_wait
    assert pytest.approx(5.0) == q.average_response_time
    assert pytest.approx(3.2) == q.average_queue_length
    assert pytest.approx(5.0) == response_time_at_utilization(0.8)
    assert pytest.approx(0.5) == response_time_at_utilization(0.75, service_time=0.125)


def test_mm2_response_time_closed_form() -> None:
    """Two servers: R / S = 1 / (1 - rho^2)."""
    for rho in (0.1, 0.5, 0.9, 0.99):
        assert pytest.approx(1 / (1 - rho**2)) == response_time_at_utilization(rho, servers=2)


def test_service_level_and_wait_quantile_invert_each_other() -> None:
    """wait_quantile(q) is the wait at which service_level reaches q; under 1 - C it is 0."""
    q = erlang_c(servers=14, arrival_rate=100 / 1800, service_time=timedelta(minutes=3))
    for quantile in (0.9, 0.95, 0.99):
        assert pytest.approx(quantile) == q.service_level(q.wait_quantile(quantile))
    assert 0.0 == q.wait_quantile(0.5)
    assert pytest.approx(1 - q.probability_of_waiting) == q.service_level(0)
    assert q.service_level(timedelta(seconds=20)) == q.service_level(20.0)


def test_thousands_of_servers_do_not_overflow() -> None:
    """5,000 Erlangs on 5,100 servers: no factorial overflow, a sane probability."""
    q = erlang_c(servers=5100, arrival_rate=5000.0, service_time=1.0)
    assert pytest.approx(log_space_erlang_c(5100, 5000.0), rel=1e-9) == q.probability_of_waiting
    assert 0.0 < q.probability_of_waiting < 1.0
    big = erlang_c(servers=100_000, arrival_rate=99_000.0, service_time=1.0)
    assert 0.0 <= big.probability_of_waiting < 1e-3
    assert 5013 == ErlangC.servers_needed(5000 / 180, 180, target_wait=20, service_level=0.8)


def test_unstable_queue_raises_infeasible_with_the_fix() -> None:
    """Unstable (servers <= offered load) raises InfeasibleError naming the minimum staffing."""
    with pytest.raises(InfeasibleError, match=r"unstable.*at least 11 servers"):
        erlang_c(servers=10, arrival_rate=100 / 1800, service_time=180)
    with pytest.raises(InfeasibleError, match="unstable"):
        erlang_c(servers=5, arrival_rate=6.0, service_time=1.0)
    with pytest.raises(InfeasibleError, match="unbounded"):
        response_time_at_utilization(1.0)


@settings(max_examples=80, deadline=None)
@given(
    load=st.floats(0.01, 3000.0),
    target_wait=st.floats(0.0, 600.0),
    level=st.floats(0.05, 0.999),
    service_time=st.floats(0.001, 3600.0),
)
def test_servers_needed_is_the_smallest_meeting_the_target(
    load: float, target_wait: float, level: float, service_time: float
) -> None:
    """The answer meets the target, is stable, and one server fewer does not meet it."""
    rate = load / service_time
    c = ErlangC.servers_needed(rate, service_time, target_wait=target_wait, service_level=level)
    q = erlang_c(servers=c, arrival_rate=rate, service_time=service_time)
    assert c > q.offered_load
    assert q.service_level(target_wait) >= level
    if c - 1 > q.offered_load:
        fewer = erlang_c(servers=c - 1, arrival_rate=rate, service_time=service_time)
        assert fewer.service_level(target_wait) < level


def test_servers_needed_honours_max_occupancy() -> None:
    """An occupancy cap can raise the staffing above what the service level alone needs."""
    alone = ErlangC.servers_needed(1.0, 100.0, target_wait=60, service_level=0.5)
    capped = ErlangC.servers_needed(
        1.0, 100.0, target_wait=60, service_level=0.5, max_occupancy=0.8
    )
    assert alone < capped
    assert 125 == capped
    assert 100 / capped <= 0.8


@settings(max_examples=80, deadline=None)
@given(load=st.floats(0.01, 500.0), extra=st.integers(1, 50), wait=st.floats(0.0, 100.0))
def test_erlang_c_is_monotone_in_servers(load: float, extra: int, wait: float) -> None:
    """Adding a server never raises the probability of waiting nor lowers the service level."""
    first = math.floor(load) + 1
    prev = None
    for c in range(first, first + extra + 1):
        q = erlang_c(servers=c, arrival_rate=load, service_time=1.0)
        assert 0.0 <= q.probability_of_waiting <= 1.0
        if prev is not None:
            assert q.probability_of_waiting <= prev.probability_of_waiting
            assert q.service_level(wait) >= prev.service_level(wait)
            assert q.average_wait <= prev.average_wait
        prev = q


def test_knee_of_mm1_and_mm2() -> None:
    """Kleinrock's power peaks at rho = 1/2 for M/M/1 and 1/sqrt(3) for M/M/2."""
    assert pytest.approx(0.5, abs=1e-6) == knee_utilization()
    assert pytest.approx(1 / math.sqrt(3), abs=1e-6) == knee_utilization(servers=2)


def test_knee_moves_towards_one_with_more_servers() -> None:
    """Bigger pools can run hotter: the knee rises with the number of servers."""
    knees = [knee_utilization(servers=c) for c in (1, 2, 4, 16, 64)]
    assert knees == sorted(knees)
    assert knees[-1] > 0.85


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: erlang_c(servers=0, arrival_rate=1.0, service_time=1.0), "servers"),
        (lambda: erlang_c(servers=2.5, arrival_rate=1.0, service_time=1.0), "int"),  # type: ignore[arg-type]
        (lambda: erlang_c(servers=3, arrival_rate=-1.0, service_time=1.0), "arrival_rate"),
        (lambda: erlang_c(servers=3, arrival_rate=1.0, service_time=0.0), "service_time"),
        (
            lambda: erlang_c(servers=3, arrival_rate=1.0, service_time=1.0).service_level(-1),
            "target_wait",
        ),
        (
            lambda: erlang_c(servers=3, arrival_rate=1.0, service_time=1.0).wait_quantile(1.0),
            "quantile",
        ),
        (lambda: ErlangC.servers_needed(1.0, 1.0, service_level=1.0), "service_level"),
        (lambda: ErlangC.servers_needed(1.0, 1.0, max_occupancy=0.0), "max_occupancy"),
        (lambda: ErlangC.servers_needed(-1.0, 1.0), "arrival_rate"),
        (lambda: erlang_b(servers=-1, offered_load=1.0), "servers"),
        (lambda: erlang_b(servers=1, offered_load=-1.0), "offered_load"),
        (lambda: response_time_at_utilization(-0.1), "utilization"),
        (lambda: knee_utilization(servers=0), "servers"),
    ],
)
def test_invalid_queue_arguments_raise_configuration_error(call: object, match: str) -> None:
    """Negative rates, zero servers and fractions out of range fail fast with the fix."""
    with pytest.raises(ConfigurationError, match=match):
        call()  # type: ignore[operator]
