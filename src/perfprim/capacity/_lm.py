"""A small bounded Levenberg-Marquardt solver for non-linear least squares.

Written by hand on purpose: perfprim is pure Python with no numpy/scipy runtime
dependency, and the fits it needs (USL: 3 parameters; exponential trend: 2) are
tiny. ``scipy.optimize.least_squares`` would pull in ~100 MB of compiled code
for a 3x3 linear solve per iteration.

The method is Marquardt's (1963): each step solves
``(JᵀJ + mu·diag(JᵀJ)) delta = -Jᵀr``, which is invariant to the scale of each
parameter (USL's lambda is ~1e3 while kappa is ~1e-4). Bounds are handled by
an active set: a parameter sitting on a bound whose gradient pushes it
outwards is held fixed for that step; every trial point is projected onto the
box. A step is accepted when it lowers the sum of squares; ``mu`` shrinks
after a success and grows after a failure (Nielsen's schedule).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["LMResult", "ResidualsAndJacobian", "least_squares"]

ResidualsAndJacobian = Callable[[Sequence[float]], tuple[list[float], list[list[float]]]]
"""``fn(params) -> (residuals, jacobian)``; ``jacobian[i][j]`` is d residual_i / d param_j."""


@dataclass(frozen=True, slots=True)
class LMResult:
    """Outcome of :func:`least_squares`.

    Attributes:
        params: The parameters at the best point found.
        residuals: The residuals at ``params``.
        cost: The sum of squared residuals at ``params``.
        iterations: Accepted steps taken.
        converged: True if a convergence test passed before ``max_iterations``.
    """

    params: tuple[float, ...]
    residuals: tuple[float, ...]
    cost: float
    iterations: int
    converged: bool


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float] | None:
    """Solve a small dense system by Gaussian elimination with partial pivoting."""
    size = len(rhs)
    a = [[*row, rhs[i]] for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(a[r][col]))
        if a[pivot][col] == 0.0 or not math.isfinite(a[pivot][col]):
            return None
        a[col], a[pivot] = a[pivot], a[col]
        inv = 1.0 / a[col][col]
        for row in range(col + 1, size):
            factor = a[row][col] * inv
            if factor:
                for k in range(col, size + 1):
                    a[row][k] -= factor * a[col][k]
    out = [0.0] * size
    for row in range(size - 1, -1, -1):
        acc = a[row][size] - sum(a[row][k] * out[k] for k in range(row + 1, size))
        out[row] = acc / a[row][row]
    return out


def _clip(params: Sequence[float], lower: Sequence[float], upper: Sequence[float]) -> list[float]:
    return [min(max(p, lo), hi) for p, lo, hi in zip(params, lower, upper, strict=True)]


def least_squares(
    fn: ResidualsAndJacobian,
    start: Sequence[float],
    *,
    lower: Sequence[float],
    upper: Sequence[float],
    max_iterations: int = 500,
    tolerance: float = 1e-15,
) -> LMResult:
    """Minimise ``sum(r_i(p)**2)`` for ``lower <= p <= upper`` (bounded Levenberg-Marquardt).

    Args:
        fn: Returns the residuals and their Jacobian at a parameter vector.
        start: The initial guess (projected onto the bounds).
        lower: Lower bound per parameter (``-math.inf`` for none).
        upper: Upper bound per parameter (``math.inf`` for none).
        max_iterations: Bound on accepted plus rejected steps.
        tolerance: Relative change in cost and in parameters below which the
            fit has converged.

    Returns:
        The best point found, its residuals and cost, and whether it converged.
    """
    size = len(start)
    params = _clip(start, lower, upper)
    residuals, jac = fn(params)
    cost = math.fsum(r * r for r in residuals)
    mu = -1.0
    nu = 2.0
    accepted = 0
    converged = False
    for _ in range(max_iterations):
        if cost == 0.0:
            converged = True
            break
        # Normal equations A = JᵀJ, g = Jᵀr.
        a = [[0.0] * size for _ in range(size)]
        g = [0.0] * size
        for row, r in zip(jac, residuals, strict=True):
            for j in range(size):
                rj = row[j]
                g[j] += rj * r
                a_j = a[j]
                for k in range(j, size):
                    a_j[k] += rj * row[k]
        for j in range(size):
            for k in range(j):
                a[j][k] = a[k][j]
        # Active set: parameters on a bound that the descent direction pushes outwards.
        free = [
            j
            for j in range(size)
            if not (
                (params[j] <= lower[j] and g[j] > 0.0) or (params[j] >= upper[j] and g[j] < 0.0)
            )
        ]
        if not free or max(abs(g[j]) for j in free) == 0.0:
            converged = True
            break
        diag = [a[j][j] for j in free]
        floor = max(diag) * 1e-15 or 1.0
        scale = [max(d, floor) for d in diag]
        if mu < 0.0:
            mu = 1e-3
        improved = False
        while not improved and accepted < max_iterations:
            lhs = [
                [a[j][k] + (mu * scale[x] if x == y else 0.0) for y, k in enumerate(free)]
                for x, j in enumerate(free)
            ]
            step = _solve(lhs, [-g[j] for j in free])
            if step is None:
                mu *= nu
                nu *= 2.0
                if mu > 1e30:
                    break
                continue
            trial = params[:]
            for x, j in enumerate(free):
                trial[j] += step[x]
            trial = _clip(trial, lower, upper)
            trial_residuals, trial_jac = fn(trial)
            trial_cost = math.fsum(r * r for r in trial_residuals)
            if math.isfinite(trial_cost) and trial_cost < cost:
                improved = True
                moved = max(
                    abs(t - p) / (abs(p) + 1e-300) if p else abs(t)
                    for t, p in zip(trial, params, strict=True)
                )
                drop = (cost - trial_cost) / cost
                params, residuals, jac, cost = trial, trial_residuals, trial_jac, trial_cost
                accepted += 1
                mu = max(mu / 3.0, 1e-20)
                nu = 2.0
                if drop <= tolerance or moved <= tolerance:
                    converged = True
            else:
                mu *= nu
                nu *= 2.0
                if mu > 1e30:
                    break
        if not improved:
            # No step lowers the cost any more: a (bounded) minimum to machine precision.
            converged = True
            break
        if converged:
            break
    return LMResult(tuple(params), tuple(residuals), cost, accepted, converged)
