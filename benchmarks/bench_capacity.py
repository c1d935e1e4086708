"""Capacity math: a USL fit of 100 points and Erlang C staffing at 5,000 Erlangs.

Anchors (optional, bench group only): ``scipy.optimize.curve_fit`` on the same
data with the same bounds (sigma in [0, 1], kappa >= 0), and a vectorised
``scipy.stats.poisson`` Erlang C evaluated over every candidate staffing at
once. The issue's absolute budget (both well under 50 ms) is checked through
recorded metrics: median milliseconds over repeated runs in this process.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from perfprim.capacity import ErlangC, USLModel, fit_usl

TRUTH = USLModel(sigma=0.02, kappa=0.0005, lambda_=1000.0)
_rng = random.Random(20261124)
POINTS = [(n, TRUTH.throughput(n) * (1.0 + _rng.gauss(0.0, 0.02))) for n in range(1, 101)]

# 5,000 Erlangs: 5000/180 arrivals per second, 180 s handling, 80% within 20 s.
RATE = 5000 / 180
SERVICE = 180.0
WAIT = 20.0
LEVEL = 0.8
EXPECTED_SERVERS = 5013


def _median_ms(fn: Callable[[], Any], runs: int = 30) -> float:
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


def scipy_fit() -> tuple[float, float, float]:
    import numpy as np
    from scipy.optimize import curve_fit

    n = np.array([p[0] for p in POINTS], dtype=float)
    x = np.array([p[1] for p in POINTS], dtype=float)

    def usl(nn: Any, sigma: float, kappa: float, lam: float) -> Any:
        return lam * nn / (1 + sigma * (nn - 1) + kappa * nn * (nn - 1))

    params, _ = curve_fit(
        usl,
        n,
        x,
        p0=(0.1, 0.01, float(np.max(x / n))),
        bounds=([0.0, 0.0, 0.0], [1.0, np.inf, np.inf]),
    )
    return float(params[0]), float(params[1]), float(params[2])


def scipy_servers_needed() -> int:
    import numpy as np
    from scipy.stats import poisson

    load = RATE * SERVICE
    first = math.floor(load) + 1
    c = np.arange(first, first + int(10 * math.sqrt(load)) + 50)
    # Erlang B = P(X = c) / P(X <= c) for X ~ Poisson(A); C from B.
    b = np.exp(poisson.logpmf(c, load) - poisson.logcdf(c, load))
    p_wait = c * b / (c - load * (1 - b))
    level = 1 - p_wait * np.exp(-(c - load) * WAIT / SERVICE)
    return int(c[np.argmax(level >= LEVEL)])


def test_fit_usl_100_perfprim(compare: Callable[..., Any]) -> None:
    model = compare("capacity: fit_usl 100 points", "perfprim", fit_usl, POINTS)
    assert model.converged
    assert pytest.approx(TRUTH.sigma, abs=0.005) == model.sigma


def test_fit_usl_100_scipy(compare: Callable[..., Any]) -> None:
    pytest.importorskip("scipy")
    sigma, kappa, lam = compare("capacity: fit_usl 100 points", "scipy.curve_fit", scipy_fit)
    ours = fit_usl(POINTS)
    # Same optimum: the comparison is like for like.
    assert pytest.approx(ours.sigma, rel=1e-4) == sigma
    assert pytest.approx(ours.kappa, rel=1e-4) == kappa
    assert pytest.approx(ours.lambda_, rel=1e-4) == lam


def test_servers_needed_5000_perfprim(compare: Callable[..., Any]) -> None:
    servers = compare(
        "capacity: servers_needed 5000 Erlangs",
        "perfprim",
        ErlangC.servers_needed,
        RATE,
        SERVICE,
        target_wait=WAIT,
        service_level=LEVEL,
    )
    assert EXPECTED_SERVERS == servers


def test_servers_needed_5000_scipy(compare: Callable[..., Any]) -> None:
    pytest.importorskip("scipy")
    servers = compare(
        "capacity: servers_needed 5000 Erlangs", "scipy.stats.poisson", scipy_servers_needed
    )
    assert EXPECTED_SERVERS == servers


def test_absolute_budgets(record_metric: Callable[..., None]) -> None:
    fit_ms = _median_ms(lambda: fit_usl(POINTS))
    staff_ms = _median_ms(
        lambda: ErlangC.servers_needed(RATE, SERVICE, target_wait=WAIT, service_level=LEVEL)
    )
    record_metric("capacity.fit_usl.100_points.median_ms", fit_ms, unit="ms", note="issue: < 50")
    record_metric(
        "capacity.servers_needed.5000_erlangs.median_ms", staff_ms, unit="ms", note="issue: < 50"
    )
