"""Which percentiles moved between two runs, with distribution-free confidence intervals.

For one run of ``n`` values, the ``p``-quantile ``x_p`` lies between the
order statistics ``X_(l)`` and ``X_(u)`` with probability
``P(l <= B <= u - 1)``, ``B ~ Binomial(n, p)``, whatever the distribution
(J.-Y. Le Boudec, *Performance Evaluation of Computer and Communication
Systems*, EPFL Press 2010, section 2.2.1 and Theorem 2.1; W. J. Conover,
*Practical Nonparametric Statistics*, 3rd ed., Wiley 1999, section 3.2).
``l`` and ``u`` are chosen with ``alpha / 2`` of the binomial on each side,
from its exact CDF (summed in log space around the mean, so ``n`` may be
in the billions). A histogram knows a value only to its bucket, so the
interval is widened to the lower edge of ``X_(l)``'s bucket and the upper
edge of ``X_(u)``'s: still conservative.

Two runs are independent, so when each interval holds with probability
``c``, both do with probability ``c ** 2`` and the change ``x_p(new) -
x_p(base)`` lies in ``[new_low - base_high, new_high - base_low]``. Each run's
level is ``c = sqrt(1 - alpha / m)`` for ``m`` percentiles (Bonferroni), so
all ``m`` intervals of the change hold together with probability at least
``1 - alpha``: a percentile is reported as moved only when its interval
excludes zero (beyond the tolerance), and the chance of any false report on
two runs of the same system is at most ``alpha``.

The assumption is that the values are independent draws. Latencies of one
load test are correlated in time (a GC pause slows a burst of requests), so
the intervals are narrower than the truth; run-to-run noise of the machine is
not sampling noise at all. Use ``tolerance`` for the change that matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perfprim.histogram import LatencyHistogram

__all__ = ["PercentileChange", "binomial_ranks", "compare", "quantile_interval"]

_WINDOW_SDS = 12.0


def binomial_ranks(n: int, q: float, alpha: float) -> tuple[int, int]:
    """Order-statistic ranks ``(l, u)`` of a ``1 - alpha`` interval for the ``q``-quantile.

    ``P(X_(l) <= x_q <= X_(u)) >= 1 - alpha`` for ``n`` independent values
    of a continuous distribution.

    Args:
        n: Number of values, ``>= 1``.
        q: The quantile, in (0, 1).
        alpha: The error probability, in (0, 1).

    Returns:
        1-based ranks; ``l == 0`` means no lower bound below the minimum
        exists at this level and ``u == n + 1`` that none above the maximum
        does (too few values for this quantile).
    """
    mean = n * q
    sd = math.sqrt(n * q * (1.0 - q))
    lo = max(0, math.floor(mean - _WINDOW_SDS * sd - 25))
    hi = min(n, math.ceil(mean + _WINDOW_SDS * sd + 25))
    log_q, log_1q = math.log(q), math.log1p(-q)
    base = math.lgamma(n + 1)
    half = alpha / 2.0
    cdf = 0.0  # the mass below `lo` is below 1e-30 and ignored
    lower_k = -1  # largest k with F(k) <= alpha/2
    upper_k = n  # smallest k with F(k) >= 1 - alpha/2
    for k in range(lo, hi + 1):
        cdf += math.exp(
            base - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_q + (n - k) * log_1q
        )
        if cdf <= half:
            lower_k = k
        if cdf >= 1.0 - half:
            upper_k = k
            break
    return lower_k + 1, upper_k + 1


def _edges(histogram: LatencyHistogram, rank: int) -> tuple[float, float]:
    """The lower and upper edge (seconds) of the bucket holding the ``rank``-th value."""
    n = histogram.count
    high = histogram.percentile(min(100.0, 100.0 * rank / n))
    layout = histogram.layout
    units = round(high / histogram.unit)
    low = layout.lowest_equivalent(layout.index_of(units)) * histogram.unit
    return low, high


def quantile_interval(
    histogram: LatencyHistogram, percentile: float, confidence: float
) -> tuple[float, float]:
    """A distribution-free interval (seconds) for a run's percentile at ``confidence``.

    Returns:
        ``(low, high)``; ``low`` is 0.0 and ``high`` is ``inf`` where the run
        has too few values to bound the percentile on that side.
    """
    n = histogram.count
    lower, upper = binomial_ranks(n, percentile / 100.0, 1.0 - confidence)
    low = _edges(histogram, lower)[0] if lower >= 1 else 0.0
    high = _edges(histogram, upper)[1] if upper <= n else math.inf
    return low, high


@dataclass(frozen=True, slots=True)
class PercentileChange:
    """How one percentile moved from the base run to the new run (seconds).

    Attributes:
        percentile: The percentile, in (0, 100).
        base: The base run's value.
        new: The new run's value.
        change: ``new / base - 1`` (``inf`` when base is 0 and new is not).
        low: Lower bound of the change ``new - base`` at the family confidence.
        high: Upper bound of the change (``inf`` with too few values).
        verdict: ``"regressed"``, ``"improved"``, ``"no change detected"`` or
            ``"too few values"``.
    """

    percentile: float
    base: float
    new: float
    change: float
    low: float
    high: float
    verdict: str


def compare(
    base: LatencyHistogram,
    new: LatencyHistogram,
    percentiles: tuple[float, ...],
    *,
    confidence: float = 0.95,
    tolerance: float = 0.0,
) -> list[PercentileChange]:
    """Compare two runs percentile by percentile (see the module docstring).

    Args:
        base: The reference run.
        new: The run under test.
        percentiles: Percentiles in (0, 100).
        confidence: Family-wise confidence over all the percentiles.
        tolerance: A relative change (0.05: 5%) below which a significant
            move is not reported.

    Returns:
        One :class:`PercentileChange` per percentile, in order.
    """
    m = len(percentiles)
    per_run = math.sqrt(1.0 - (1.0 - confidence) / m)
    changes = []
    for p in percentiles:
        b, n = base.percentile(p), new.percentile(p)
        b_low, b_high = quantile_interval(base, p, per_run)
        n_low, n_high = quantile_interval(new, p, per_run)
        low, high = n_low - b_high, n_high - b_low
        margin = tolerance * b
        if math.isinf(low) or math.isinf(high):
            verdict = "too few values"
        elif low > margin:
            verdict = "regressed"
        elif high < -margin:
            verdict = "improved"
        else:
            verdict = "no change detected"
        change = n / b - 1.0 if b > 0 else (0.0 if n == 0 else math.inf)
        changes.append(PercentileChange(p, b, n, change, low, high, verdict))
    return changes
