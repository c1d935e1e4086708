"""USL fits against the peers' published figures, the model's formulas, and invariants."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.capacity import USLModel, amdahl_speedup, fit_usl
from perfprim.exceptions import ConfigurationError, InfeasibleError


def sig(value: float, digits: int = 4) -> str:
    """Round to ``digits`` significant figures, as text, for exact comparison."""
    return f"{value:.{digits}g}"


# SPEC SDM91 on a Sun SPARCcenter 2000: Gunther, Guerrilla Capacity Planning (2007), as
# shipped in the R package usl (data(specsdm91)). Published fit, usl 2.0 (R 3.6.2),
# tests/usl-nlxb.Rout.save: alpha (sigma) 0.0277285, beta (kappa) 0.0001044,
# gamma (lambda) 89.9952330; tests/summary.Rout.save: residual standard error 82.85
# on 4 degrees of freedom, multiple R-squared 0.9896.
SPECSDM91 = [
    (1, 64.9),
    (18, 995.9),
    (36, 1652.4),
    (72, 1853.2),
    (108, 1828.9),
    (144, 1775.0),
    (216, 1702.2),
]

# Ray tracer on an SGI Origin 2000: Gunther (2007), R package usl data(raytracer).
# Published fit, usl 2.0, tests/confint.Rout.save: alpha 0.0578, beta 0.0000 (on its
# bound), gamma 21.8488.
RAYTRACER = list(
    zip(
        [1, 4, 8, 12, 16, 20, 24, 28, 32, 48, 64],
        [20, 78, 130, 170, 190, 200, 210, 230, 260, 280, 310],
        strict=True,
    )
)

# codahale/usl (Go) model_test.go: measurements and expected Sigma 0.02671591,
# Kappa 7.690945e-4, Lambda 995.6486; X(35) = 12341.745655201905,
# R(20) = 0.0018077244276309343; built from the first 10 points,
# N(R=0.0012) = 7.230628979597649, N(R=0.0016) = 20.25106409917121,
# N(R=0.0020) = 29.88889360938781.
CODAHALE = [
    (1, 955.16),
    (2, 1878.91),
    (3, 2688.01),
    (4, 3548.68),
    (5, 4315.54),
    (6, 5130.43),
    (7, 5931.37),
    (8, 6531.08),
    (9, 7219.8),
    (10, 7867.61),
    (11, 8278.71),
    (12, 8646.7),
    (13, 9047.84),
    (14, 9426.55),
    (15, 9645.37),
    (16, 9897.24),
    (17, 10097.6),
    (18, 10240.5),
    (19, 10532.39),
    (20, 10798.52),
    (21, 11151.43),
    (22, 11518.63),
    (23, 11806),
    (24, 12089.37),
    (25, 12075.41),
    (26, 12177.29),
    (27, 12211.41),
    (28, 12158.93),
    (29, 12155.27),
    (30, 12118.04),
    (31, 12140.4),
    (32, 12074.39),
]


def test_fit_reproduces_r_usl_specsdm91() -> None:
    """The SPEC SDM91 fit matches the R package usl to 4 significant figures, quality too."""
    m = fit_usl(SPECSDM91)
    assert sig(0.0277285) == sig(m.sigma)
    assert sig(0.0001044) == sig(m.kappa)
    assert sig(89.9952330) == sig(m.lambda_)
    assert sig(82.85) == sig(m.residual_standard_error)
    assert sig(0.9896) == sig(m.r_squared)
    assert m.converged
    # R: signif(peak.scalability(u), 2) == 97
    assert sig(97, 2) == sig(m.peak_concurrency, 2)
    # R residuals(u), digits=3: -25.10 -81.66 111.09 3.05 -49.99 -46.60 56.00
    expected = [-25.10, -81.66, 111.09, 3.05, -49.99, -46.60, 56.00]
    assert expected == [round(r, 2) for r in m.residuals]


def test_fit_reproduces_r_usl_raytracer_with_kappa_on_its_bound() -> None:
    """Ray tracer: R's bounded fit puts kappa at 0; ours too, with an infinite peak."""
    m = fit_usl(RAYTRACER)
    assert 0.0 == m.kappa
    assert sig(0.0578, 3) == sig(m.sigma, 3)
    assert sig(21.8488) == sig(m.lambda_)
    assert math.inf == m.peak_concurrency
    assert m.limit_throughput == m.peak_throughput
    assert sig(21.8488 / 0.0578, 3) == sig(m.limit_throughput, 3)


def test_fit_reproduces_codahale_usl() -> None:
    """codahale/usl's data set: its (unbounded) optimum is interior, so we match it."""
    m = fit_usl(CODAHALE)
    assert sig(0.02671591) == sig(m.sigma)
    assert sig(7.690945e-4) == sig(m.kappa)
    assert sig(995.6486) == sig(m.lambda_)
    assert sig(12341.745655201905) == sig(m.throughput(35))
    assert sig(0.0018077244276309343) == sig(m.latency(20))
    assert 35 == math.floor(m.peak_concurrency)  # codahale's MaxConcurrency is the floor


def test_concurrency_at_latency_matches_codahale() -> None:
    """N(R) on the model fitted to codahale's first 10 points matches its published values."""
    m = fit_usl(CODAHALE[:10])
    assert sig(7.230628979597649) == sig(m.concurrency_at_latency(0.0012))
    assert sig(20.25106409917121) == sig(m.concurrency_at_latency(0.0016))
    assert sig(29.88889360938781) == sig(m.concurrency_at_latency(0.0020))


def test_throughput_at_latency_matches_codahale() -> None:
    """X(R) for codahale's fixed model sigma = kappa = 0.06, lambda = 40."""
    m = USLModel(sigma=0.06, kappa=0.06, lambda_=40)
    assert sig(69.38886664887109) == sig(m.throughput_at_latency(0.03))
    assert sig(82.91561975888501) == sig(m.throughput_at_latency(0.04))
    assert sig(84.06346808612327) == sig(m.throughput_at_latency(0.05))


def test_model_formulas() -> None:
    """X(N), R(N), efficiency and the peak follow Gunther's closed forms."""
    m = USLModel(sigma=0.1, kappa=0.01, lambda_=100.0)
    assert 100.0 == m.throughput(1)
    assert pytest.approx(100 * 10 / (1 + 0.9 + 0.9)) == m.throughput(10)
    assert pytest.approx(10 / m.throughput(10)) == m.latency(10)
    assert pytest.approx(m.throughput(10) / 1000) == m.efficiency(10)
    assert pytest.approx(math.sqrt(0.9 / 0.01)) == m.peak_concurrency
    assert pytest.approx(m.throughput(math.sqrt(90))) == m.peak_throughput
    assert pytest.approx(1000.0) == m.limit_throughput
    near = m.peak_concurrency
    assert m.throughput(near) > m.throughput(near * 0.99)
    assert m.throughput(near) > m.throughput(near * 1.01)


def test_concurrency_at_throughput_inverts_throughput() -> None:
    """N(X(n)) == n on the rising side; above the peak is infeasible, with a message."""
    m = fit_usl(CODAHALE)
    for n in (0.5, 1.0, 7.0, 20.0, 35.0):
        assert pytest.approx(n, rel=1e-9) == m.concurrency_at_throughput(m.throughput(n))
        assert pytest.approx(n / m.throughput(n), rel=1e-9) == m.latency_at_throughput(
            m.throughput(n)
        )
    with pytest.raises(InfeasibleError, match="above the model's peak"):
        m.concurrency_at_throughput(m.peak_throughput * 1.01)


def test_latency_round_trip_and_infeasible_latency() -> None:
    """N(R(n)) == n, and a latency below what N -> 0 gives is reported as infeasible."""
    m = USLModel(sigma=0.05, kappa=0.001, lambda_=50.0)
    for n in (1.0, 3.0, 30.0, 300.0):
        assert pytest.approx(n, rel=1e-9) == m.concurrency_at_latency(m.latency(n))
    with pytest.raises(InfeasibleError):
        m.concurrency_at_latency(0.001)
    amdahl = USLModel(sigma=0.05, kappa=0.0, lambda_=50.0)
    assert pytest.approx(10.0) == amdahl.concurrency_at_latency(amdahl.latency(10))
    flat = USLModel(sigma=0.0, kappa=0.0, lambda_=50.0)
    assert math.inf == flat.limit_throughput
    with pytest.raises(InfeasibleError, match="constant"):
        flat.concurrency_at_latency(1.0)


def test_amdahl_is_the_kappa_zero_case() -> None:
    """Amdahl's speed-up equals the USL's relative capacity with kappa = 0."""
    m = USLModel(sigma=0.05, kappa=0.0, lambda_=1.0)
    for n in (1, 2, 8, 64, 1024):
        assert pytest.approx(m.throughput(n)) == amdahl_speedup(n, serial_fraction=0.05)
    assert 1.0 == amdahl_speedup(1, serial_fraction=0.3)
    assert pytest.approx(20.0, rel=1e-3) == amdahl_speedup(1e7, serial_fraction=0.05)
    with pytest.raises(ConfigurationError, match="serial_fraction"):
        amdahl_speedup(4, serial_fraction=1.5)


def test_fit_is_order_independent() -> None:
    """Shuffled input gives the same fit; residuals follow the input order."""
    shuffled = SPECSDM91[::-1]
    a, b = fit_usl(SPECSDM91), fit_usl(shuffled)
    assert pytest.approx(a.sigma, rel=1e-8) == b.sigma
    assert pytest.approx(a.kappa, rel=1e-8) == b.kappa
    assert pytest.approx(list(a.residuals[::-1]), rel=1e-6, abs=1e-6) == list(b.residuals)


@pytest.mark.parametrize(
    ("points", "match"),
    [
        (SPECSDM91[:5], "at least 6"),
        ([], "at least 6"),
        ([(1, 10.0)] * 6, "3 distinct"),
        ([(1, 10.0), (1, 11.0), (2, 19.0), (2, 20.0), (3, 28.0), (3, 29.0)], None),
        ([*SPECSDM91[:6], (0, 5.0)], "concurrency of point 6"),
        ([*SPECSDM91[:6], (4, -5.0)], "throughput of point 6"),
        ([*SPECSDM91[:6], (4, math.nan)], "finite"),
        ([*SPECSDM91[:6], (4,)], "pair"),
    ],
)
def test_fit_rejects_bad_input(points: list[Any], match: str | None) -> None:
    """Too few points, too few levels and bad values raise ConfigurationError saying what to fix."""
    if match is None:
        assert fit_usl(points).converged  # the boundary case: 3 levels, 6 points is enough
        return
    with pytest.raises(ConfigurationError, match=match):
        fit_usl(points)


def test_fit_rejects_a_non_iterable() -> None:
    """A non-iterable argument gets a message naming the expected shape."""
    with pytest.raises(ConfigurationError, match="pairs"):
        fit_usl(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sigma": -0.1, "kappa": 0.0, "lambda_": 1.0}, "sigma"),
        ({"sigma": 1.1, "kappa": 0.0, "lambda_": 1.0}, "sigma"),
        ({"sigma": 0.1, "kappa": -1e-3, "lambda_": 1.0}, "kappa"),
        ({"sigma": 0.1, "kappa": 0.0, "lambda_": 0.0}, "lambda_"),
    ],
)
def test_model_rejects_out_of_range_coefficients(kwargs: dict[str, Any], match: str) -> None:
    """A hand-built model must respect the same bounds as a fitted one."""
    with pytest.raises(ConfigurationError, match=match):
        USLModel(**kwargs)


def test_model_rejects_non_positive_concurrency() -> None:
    """X(0) is not defined by the model; the message names the argument."""
    with pytest.raises(ConfigurationError, match="n must be a finite number > 0"):
        USLModel(sigma=0.1, kappa=0.0, lambda_=1.0).throughput(0)


def test_fit_finds_no_coherency_for_amdahl_data() -> None:
    """Amdahl data (kappa = 0) with a wobble fits kappa >= 0, never a negative coherency."""
    truth = USLModel(sigma=0.08, kappa=0.0, lambda_=10.0)
    pts = [(n, truth.throughput(n) * (1.0 + 0.002 * (-1) ** n)) for n in range(1, 30)]
    m = fit_usl(pts)
    assert m.kappa >= 0.0
    assert m.sigma >= 0.0
    assert pytest.approx(0.08, abs=0.005) == m.sigma


levels = list(range(1, 41))


@settings(max_examples=60, deadline=None)
@given(
    sigma=st.floats(0.0, 0.5),
    kappa=st.floats(0.0, 0.01),
    lam=st.floats(0.1, 1e5),
)
def test_fit_recovers_exact_parameters(sigma: float, kappa: float, lam: float) -> None:
    """Noise-free data from a known model gives back its parameters (the optimiser converges)."""
    truth = USLModel(sigma=sigma, kappa=kappa, lambda_=lam)
    m = fit_usl([(n, truth.throughput(n)) for n in levels])
    assert pytest.approx(lam, rel=1e-6) == m.lambda_
    assert pytest.approx(sigma, abs=1e-6) == m.sigma
    assert pytest.approx(kappa, abs=1e-8) == m.kappa
    assert m.r_squared > 1 - 1e-9


@settings(max_examples=60, deadline=None)
@given(
    sigma=st.floats(0.0, 0.3),
    kappa=st.floats(0.0, 0.005),
    lam=st.floats(1.0, 1e4),
    seed=st.integers(0, 2**32 - 1),
)
def test_fit_recovers_parameters_from_noisy_data(
    sigma: float, kappa: float, lam: float, seed: int
) -> None:
    """With 1% noise the fit is at least as good as the truth and stays close to it.

    The least-squares optimum cannot have a larger sum of squares than the true
    parameters (they are feasible), whatever the noise; the curve stays within
    4% of the true one over the measured range.
    """
    rng = random.Random(seed)
    truth = USLModel(sigma=sigma, kappa=kappa, lambda_=lam)
    pts = [(n, truth.throughput(n) * (1.0 + rng.gauss(0.0, 0.01))) for n in levels]
    m = fit_usl(pts)
    assert m.converged
    assert 0.0 <= m.sigma <= 1.0
    assert m.kappa >= 0.0
    sse_truth = math.fsum((x - truth.throughput(n)) ** 2 for n, x in pts)
    sse_fit = math.fsum(r * r for r in m.residuals)
    assert sse_fit <= sse_truth * (1 + 1e-9)
    for n in levels:
        assert pytest.approx(truth.throughput(n), rel=0.04) == m.throughput(n)
    assert pytest.approx(lam, rel=0.06) == m.lambda_


@pytest.mark.parametrize(
    ("sigma", "kappa"), [(0.05, 0.0005), (0.2, 0.01), (0.01, 0.0), (0.0, 0.001), (0.5, 0.05)]
)
def test_knee_concurrency_maximises_power(sigma: float, kappa: float) -> None:
    """The knee is the N maximising X(N)^2 / N (Kleinrock's power), found here by grid search."""
    model = USLModel(sigma=sigma, kappa=kappa, lambda_=100.0)
    grid = [n / 100 for n in range(1, 200_000)]
    best = max(grid, key=lambda n: model.throughput(n) ** 2 / n)
    assert best == pytest.approx(model.knee_concurrency, abs=0.01)
    assert model.knee_concurrency < model.peak_concurrency


def test_knee_of_linear_scaling_is_infinite() -> None:
    """Sigma = kappa = 0: power grows without bound, no knee."""
    assert math.inf == USLModel(sigma=0.0, kappa=0.0, lambda_=1.0).knee_concurrency
