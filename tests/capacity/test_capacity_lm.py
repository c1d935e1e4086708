"""The hand-written bounded Levenberg-Marquardt solver behind the USL and trend fits."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from perfprim.capacity._lm import least_squares

INF = math.inf


def rosenbrock(p: Sequence[float]) -> tuple[list[float], list[list[float]]]:
    """Rosenbrock's valley as least squares: r = (10 (y - x^2), 1 - x)."""
    x, y = p
    return [10.0 * (y - x * x), 1.0 - x], [[-20.0 * x, 10.0], [-1.0, 0.0]]


def test_solves_rosenbrock_from_the_classic_start() -> None:
    """From (-1.2, 1) the solver walks the curved valley to the minimum (1, 1)."""
    result = least_squares(rosenbrock, [-1.2, 1.0], lower=(-INF, -INF), upper=(INF, INF))
    assert result.converged
    assert pytest.approx([1.0, 1.0], abs=1e-8) == list(result.params)
    assert result.cost < 1e-20


def test_stops_on_an_active_bound() -> None:
    """With x <= 0.5 the constrained minimum sits on the bound: x = 0.5, y = 0.25."""
    result = least_squares(rosenbrock, [-1.2, 1.0], lower=(-INF, -INF), upper=(0.5, INF))
    assert result.converged
    assert pytest.approx([0.5, 0.25], abs=1e-9) == list(result.params)
    assert pytest.approx(0.25) == result.cost


def test_start_outside_the_box_is_projected() -> None:
    """A start outside the bounds is clipped first; every iterate stays feasible."""
    seen: list[tuple[float, ...]] = []

    def fn(p: Sequence[float]) -> tuple[list[float], list[list[float]]]:
        seen.append(tuple(p))
        return rosenbrock(p)

    least_squares(fn, [5.0, 5.0], lower=(0.0, 0.0), upper=(2.0, 2.0))
    assert all(0.0 <= x <= 2.0 and 0.0 <= y <= 2.0 for x, y in seen)


def test_linear_problem_matches_normal_equations() -> None:
    """On y = a + b t the solver agrees with the closed-form least-squares line."""
    ts = [0.0, 1.0, 2.0, 3.0, 4.0]
    ys = [1.0, 2.9, 5.2, 7.1, 8.8]

    def fn(p: Sequence[float]) -> tuple[list[float], list[list[float]]]:
        a, b = p
        return [a + b * t - y for t, y in zip(ts, ys, strict=True)], [[1.0, t] for t in ts]

    result = least_squares(fn, [0.0, 0.0], lower=(-INF, -INF), upper=(INF, INF))
    mt, my = sum(ts) / 5, sum(ys) / 5
    b = sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / sum(
        (t - mt) ** 2 for t in ts
    )
    assert pytest.approx([my - b * mt, b], rel=1e-10) == list(result.params)


def test_reports_non_convergence_when_out_of_iterations() -> None:
    """One step is not enough for Rosenbrock: the result says so instead of pretending."""
    result = least_squares(
        rosenbrock, [-1.2, 1.0], lower=(-INF, -INF), upper=(INF, INF), max_iterations=1
    )
    assert not result.converged
    assert 1 >= result.iterations


def test_singular_jacobian_is_survived() -> None:
    """A parameter with no influence (zero Jacobian column) does not break the solve."""

    def fn(p: Sequence[float]) -> tuple[list[float], list[list[float]]]:
        a, _unused = p
        return [a - 3.0, a - 5.0], [[1.0, 0.0], [1.0, 0.0]]

    result = least_squares(fn, [0.0, 7.0], lower=(-INF, -INF), upper=(INF, INF))
    assert pytest.approx(4.0) == result.params[0]
    assert 7.0 == result.params[1]
