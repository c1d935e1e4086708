"""Error budget remaining over time, for tracker snapshots or a load-test run."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from perfprim.exceptions import ConfigurationError
from perfprim.plot._core import new_figure, time_unit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from perfprim.slo import SLO

__all__ = ["budget_burn", "budget_series"]

Series = Sequence[tuple[float, float]]


def budget_series(
    slo: SLO, intervals: Iterable[tuple[float, float, float]]
) -> list[tuple[float, float]]:
    """Budget remaining after each interval, over the SLO's rolling window.

    Each interval is ``(end, good, total)``: its end in seconds (from any
    origin, increasing) and its event counts, as a load test's per-interval
    histograms give (good = values within a latency threshold) or periodic
    reads of a counter. At each end, the intervals that ended within the last
    ``slo.window`` seconds are summed and ``slo.budget_remaining(good,
    total)`` is taken (occurrences budgeting).

    Args:
        slo: The SLO.
        intervals: ``(end, good, total)`` per interval, in time order.

    Returns:
        ``(end, remaining)`` pairs; ``remaining`` is 1.0 for an untouched
        budget and negative once the SLO is missed.

    Raises:
        ConfigurationError: For counts the SLO refuses or ends out of order.
    """
    window: deque[tuple[float, float, float]] = deque()
    good_sum = total_sum = 0.0
    last = -math.inf
    out = []
    for end, good, total in intervals:
        if end < last:
            msg = f"interval ends must increase, got {end!r} after {last!r}"
            raise ConfigurationError(msg)
        last = end
        slo.budget_consumed(good, total)  # validates the pair
        window.append((end, good, total))
        good_sum += good
        total_sum += total
        while window and window[0][0] <= end - slo.window:
            _, old_good, old_total = window.popleft()
            good_sum -= old_good
            total_sum -= old_total
        out.append((end, slo.budget_remaining(min(good_sum, total_sum), max(total_sum, 0.0))))
    return out


def budget_burn(
    series: Series | Mapping[str, Series],
    *,
    window: float | None = None,
    title: str = "Error budget remaining",
) -> Figure:
    """Plot budget remaining over time: one line per series, 0% marked.

    Args:
        series: ``(seconds, remaining)`` pairs (from :func:`budget_series`,
            or ``(t, tracker.snapshot().budget_remaining)`` taken over time),
            or a mapping of label -> such pairs. Time from any origin; the
            plot starts at the first point.
        window: The SLO window in seconds; when given, the line of a steady
            burn rate of 1 (the whole budget spent in exactly one window) is
            drawn for reference.
        title: The plot's title.

    Returns:
        The figure.

    Raises:
        ConfigurationError: If there is no point to plot.
        MissingDependencyError: Without matplotlib (``pip install 'perfprim[plot]'``).
    """
    named = dict(series) if isinstance(series, Mapping) else {"budget remaining": series}
    named = {label: list(points) for label, points in named.items() if len(points)}
    if not named:
        msg = "budget_burn needs at least one (seconds, remaining) point"
        raise ConfigurationError(msg)
    start = min(points[0][0] for points in named.values())
    end = max(points[-1][0] for points in named.values())
    unit, scale = time_unit(max(end - start, 1e-9))
    figure, axes = new_figure(title)
    low = 0.0
    for label, points in named.items():
        xs = [(t - start) * scale for t, _ in points]
        ys = [remaining * 100.0 for _, remaining in points]
        low = min(low, *ys)
        axes.plot(xs, ys, linewidth=1.8, label=label)
    if window is not None:
        span = end - start
        axes.plot(
            [0.0, span * scale],
            [100.0, 100.0 * (1.0 - span / window)],
            color="gray",
            linestyle=":",
            label="burn rate 1 (budget lasts one window)",
        )
    axes.axhline(0.0, color="crimson", linewidth=1.0)
    axes.set_ylim(min(-5.0, low * 1.1), 105.0)
    axes.set_xlim(0.0, max((end - start) * scale, 1e-9))
    axes.set_xlabel(f"Time ({unit})")
    axes.set_ylabel("Error budget remaining (%)")
    axes.legend(loc="lower left")
    return figure
