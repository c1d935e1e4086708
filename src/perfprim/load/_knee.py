"""``find_knee``: step the concurrency (closed loop per step), fit the USL, report the peak.

The Universal Scalability Law describes throughput against *concurrency*
(N. J. Gunther, *Guerrilla Capacity Planning*, 2007), so each step runs a
closed loop of ``N`` users that send a request as soon as the previous one
answers: the only load in which ``N`` is the concurrency. The steps'
``(N, throughput)`` pairs are fitted with :func:`perfprim.capacity.fit_usl`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from perfprim._durations import to_seconds
from perfprim.capacity import USLModel, fit_usl
from perfprim.exceptions import ConfigurationError
from perfprim.histogram import LatencyHistogram
from perfprim.load._engine import closed_loop
from perfprim.load._run import positive_int, refuse_running_loop, run_event_loop
from perfprim.load._targets import HttpTarget, Target, check_target, open_sender

__all__ = ["GOOD_FIT_R_SQUARED", "KneeResult", "KneeStep", "find_knee"]

GOOD_FIT_R_SQUARED = 0.9
"""R^2 at or above this is a good fit."""
GOOD_FIT_RELATIVE_ERROR = 0.05
"""A residual standard error at or below this fraction of the mean throughput is a good fit.

R^2 alone misjudges a flat curve (a saturated bottleneck): its total variance
is only noise, so even a perfect fit explains little of it. A fit is good
when either test passes."""
MIN_STEPS = 6  # fit_usl's minimum: three parameters and a quality figure


@dataclass(frozen=True, slots=True)
class KneeStep:
    """One concurrency step of :func:`find_knee`.

    Attributes:
        concurrency: Users in the closed loop.
        throughput: Completed requests per second.
        completed: Requests completed in the measured span.
        errors: Of those, failures.
        latency: Response times in the step (closed loop: from send).
    """

    concurrency: int
    throughput: float
    completed: int
    errors: int
    latency: LatencyHistogram = field(repr=False)


@dataclass(frozen=True, slots=True)
class KneeResult:
    """What :func:`find_knee` found.

    Attributes:
        steps: The measured steps, in the order run.
        model: The fitted USL model, or None when the data cannot support a
            fit (see :attr:`verdict`).
        peak_concurrency: Concurrency of peak throughput: the model's
            ``N* = sqrt((1 - sigma) / kappa)`` (``inf`` without a coherency
            penalty), or the best measured step when there is no model.
        peak_throughput: The model's ``X(N*)`` (its ceiling ``lambda/sigma``
            when ``kappa == 0``), or the best measured throughput.
        r_squared: The fit's R^2 (NaN without a model).
        relative_error: The fit's residual standard error over the mean
            measured throughput (NaN without a model).
        verdict: One sentence on what the data supports.
    """

    steps: tuple[KneeStep, ...]
    model: USLModel | None
    peak_concurrency: float
    peak_throughput: float
    r_squared: float
    relative_error: float
    verdict: str

    @property
    def fit_ok(self) -> bool:
        """Whether a model was fitted with ``R^2 >= 0.9`` or a residual error <= 5% of the mean."""
        return self.model is not None and _good(self.r_squared, self.relative_error)

    @property
    def measured_peak(self) -> KneeStep:
        """The step with the highest measured throughput."""
        return max(self.steps, key=lambda s: s.throughput)

    def report(self) -> str:
        """Return a human summary: the steps, the fit and the verdict."""
        lines = ["concurrency  throughput/s  p50 ms  p99 ms  errors"]
        for s in self.steps:
            p = s.latency.percentiles((50.0, 99.0))
            lines.append(
                f"{s.concurrency:>11d}  {s.throughput:>12.1f}  {p[50.0] * 1e3:>6.2f}  "
                f"{p[99.0] * 1e3:>6.2f}  {s.errors:>6d}"
            )
        if self.model is not None:
            m = self.model
            lines.append(
                f"USL fit: sigma={m.sigma:.4g} kappa={m.kappa:.4g} lambda={m.lambda_:.4g}/s "
                f"R^2={self.r_squared:.3f} residual error {self.relative_error:.1%} of the mean"
            )
        lines.append(
            f"peak: {self.peak_throughput:.1f} req/s at concurrency {self.peak_concurrency:.1f}"
        )
        lines.append(self.verdict)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        m = self.model
        return {
            "steps": [
                {
                    "concurrency": s.concurrency,
                    "throughput": s.throughput,
                    "completed": s.completed,
                    "errors": s.errors,
                    "p50": s.latency.percentile(50.0),
                    "p99": s.latency.percentile(99.0),
                }
                for s in self.steps
            ],
            "model": None
            if m is None
            else {"sigma": m.sigma, "kappa": m.kappa, "lambda": m.lambda_},
            "peak_concurrency": _finite_or_none(self.peak_concurrency),
            "peak_throughput": _finite_or_none(self.peak_throughput),
            "r_squared": _finite_or_none(self.r_squared),
            "relative_error": _finite_or_none(self.relative_error),
            "fit_ok": self.fit_ok,
            "verdict": self.verdict,
        }


def _good(r_squared: float, relative_error: float) -> bool:
    return r_squared >= GOOD_FIT_R_SQUARED or relative_error <= GOOD_FIT_RELATIVE_ERROR


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def analyse(steps: Sequence[KneeStep]) -> KneeResult:
    """Fit the USL to measured steps and say what the data supports (pure).

    Args:
        steps: The measured steps.

    Returns:
        The result, with ``model=None`` when no fit is possible.
    """
    steps = tuple(steps)
    usable = [s for s in steps if s.throughput > 0.0]
    best = max(steps, key=lambda s: s.throughput)
    levels = {s.concurrency for s in usable}
    if len(usable) < MIN_STEPS or len(levels) < 3:
        verdict = (
            f"no fit: {len(usable)} steps with throughput at {len(levels)} concurrency levels "
            f"cannot support a USL fit (it needs at least {MIN_STEPS} steps at 3 or more "
            "levels); the peak shown is the best step measured. Measure more levels, e.g. "
            "concurrency=[1, 2, 4, 8, 16, 32, 64]"
        )
        return KneeResult(
            steps, None, best.concurrency, best.throughput, math.nan, math.nan, verdict
        )
    model = fit_usl([(s.concurrency, s.throughput) for s in usable])
    mean = math.fsum(s.throughput for s in usable) / len(usable)
    r_squared, residual = model.r_squared, model.residual_standard_error
    # A fitted model carries both.
    assert r_squared is not None
    assert residual is not None
    relative_error = residual / mean
    top = max(levels)
    peak_n = model.peak_concurrency
    peak_x = model.peak_throughput
    if peak_n < 1.0:
        # sigma == 1 with kappa > 0 puts N* below one user (USLModel then says 0):
        # throughput only falls from N = 1, so one user is the peak.
        peak_n, peak_x = 1.0, model.throughput(1.0)
    if not _good(r_squared, relative_error):
        verdict = (
            f"poor fit (R^2 = {r_squared:.2f}, residual error {relative_error:.0%} of the "
            "mean): the throughput does not follow the USL (noise, errors, or a changing "
            "system); do not trust the modelled peak, the best step measured was "
            f"{best.throughput:.1f} req/s at concurrency {best.concurrency}"
        )
    elif peak_n == 1.0 and model.kappa > 0.0:
        verdict = (
            f"throughput is highest with one user ({peak_x:.1f} req/s) and falls as "
            "concurrency grows: the work is serial and concurrency only adds overhead"
        )
    elif math.isinf(peak_n):
        verdict = (
            f"no retrograde region (kappa = 0): throughput approaches "
            f"{peak_x:.1f} req/s as concurrency grows; more concurrency buys nothing past "
            "that ceiling"
            if math.isfinite(peak_x)
            else "throughput still grows linearly: no bottleneck seen up to concurrency "
            f"{top}; measure higher concurrency"
        )
    elif peak_n > top:
        verdict = (
            f"the modelled peak lies beyond the highest concurrency measured ({peak_n:.1f} > "
            f"{top}): an extrapolation; measure up to about {math.ceil(peak_n * 1.5)} to confirm"
        )
    else:
        verdict = (
            f"throughput peaks at {peak_x:.1f} req/s near concurrency {peak_n:.1f} and falls "
            "beyond it (coherency cost)"
        )
    return KneeResult(steps, model, peak_n, peak_x, r_squared, relative_error, verdict)


def find_knee(
    target: Target,
    *,
    concurrency: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
    duration: float | timedelta = 5.0,
    warmup: float | timedelta = 0.0,
    timeout: float | timedelta = 10.0,
    progress: Callable[[KneeStep], object] | None = None,
) -> KneeResult:
    """Step the concurrency, measure throughput per step, fit the USL and find the peak.

    Args:
        target: As for :func:`perfprim.load.run`.
        concurrency: Users per step (closed loop), each ``>= 1``; at least 6
            steps at 3 levels are needed for a fit.
        duration: Measured seconds per step.
        warmup: Seconds run before each step's measurement.
        timeout: HTTP request timeout, and grace for each step's last requests.
        progress: Called with each :class:`KneeStep` as it is measured.

    Returns:
        The :class:`KneeResult`; its ``model`` is None and its ``verdict``
        says why when the data cannot support a fit.

    Raises:
        ConfigurationError: For invalid options, or when called from a
            running event loop.
    """
    levels = list(concurrency)
    if not levels:
        msg = "concurrency must list at least one level, e.g. [1, 2, 4, 8, 16, 32, 64]"
        raise ConfigurationError(msg)
    levels = [positive_int(n, "each concurrency level", "e.g. [1, 2, 4, 8]") for n in levels]
    seconds = to_seconds(duration, name="duration", example="5 seconds per step")
    warm = to_seconds(warmup, name="warmup", allow_zero=True, example="1 second")
    grace = to_seconds(timeout, name="timeout", example="10 seconds")
    checked = check_target(target)
    hook: object = progress  # checked at runtime: callers may not be type-checked
    if hook is not None and not callable(hook):
        msg = f"progress must be a callable taking a KneeStep, got {progress!r}"
        raise ConfigurationError(msg)
    refuse_running_loop("find_knee")
    steps = run_event_loop(
        _steps(
            target=checked,
            levels=levels,
            duration=seconds,
            warmup=warm,
            timeout=grace,
            progress=progress,
        )
    )
    return analyse(steps)


async def _steps(
    *,
    target: HttpTarget | Callable[[], object],
    levels: list[int],
    duration: float,
    warmup: float,
    timeout: float,
    progress: Callable[[KneeStep], object] | None,
) -> list[KneeStep]:
    steps = []
    async with open_sender(target, connections=max(levels), timeout=timeout) as sender:
        for n in levels:
            m = await closed_loop(
                sender.call, concurrency=n, duration=duration, warmup=warmup, timeout=timeout
            )
            step = KneeStep(n, m.completed / m.seconds, m.completed, m.errors, m.latency)
            steps.append(step)
            if progress is not None:
                progress(step)
    return steps
