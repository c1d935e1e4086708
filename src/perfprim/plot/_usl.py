"""The Universal Scalability Law fit: measurements, curve, peak and knee."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from perfprim.plot._core import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from perfprim.capacity import USLModel

__all__ = ["usl_fit"]

_CURVE_POINTS = 200


def usl_fit(
    model: USLModel,
    points: Iterable[tuple[float, float]],
    *,
    title: str = "Throughput by concurrency (USL fit)",
    unit: str = "per second",
) -> Figure:
    """Measured throughput, the fitted USL curve, linear scaling, the peak and the knee.

    Args:
        model: The fitted model (:func:`perfprim.capacity.fit_usl`).
        points: The measured ``(concurrency, throughput)`` pairs.
        title: The plot's title.
        unit: The throughput unit for the y label.

    Returns:
        The figure. Lines, in order: measured (markers), USL fit, linear
        scaling; then the peak and knee markers when they are finite.

    Raises:
        MissingDependencyError: Without matplotlib (``pip install 'perfprim[plot]'``).
    """
    measured = sorted((float(n), float(x)) for n, x in points)
    n_max = max([n for n, _ in measured] or [1.0])
    peak, knee = model.peak_concurrency, model.knee_concurrency
    right = n_max * 1.25
    if math.isfinite(peak):
        right = max(right, min(peak * 1.5, n_max * 4))
    figure, axes = new_figure(title)
    axes.plot(
        [n for n, _ in measured],
        [x for _, x in measured],
        linestyle="none",
        marker="o",
        color="black",
        label="measured",
    )
    ns = [right * (k + 1) / _CURVE_POINTS for k in range(_CURVE_POINTS)]
    fitted = [model.throughput(n) for n in ns]
    label = f"USL: sigma={model.sigma:.4g}, kappa={model.kappa:.3g}, lambda={model.lambda_:.4g}"
    axes.plot(ns, fitted, color="tab:blue", linewidth=1.8, label=label)
    top = max(*fitted, *(x for _, x in measured))
    linear_end = min(right, top * 1.1 / model.lambda_)
    axes.plot(
        [0.0, linear_end],
        [0.0, model.lambda_ * linear_end],
        color="gray",
        linestyle=":",
        label="linear scaling",
    )
    if math.isfinite(peak) and 0 < peak <= right:
        x_peak = model.throughput(peak)
        axes.plot(
            [peak],
            [x_peak],
            marker="^",
            markersize=10,
            linestyle="none",
            color="crimson",
            label=f"peak: N={peak:.3g}, X={x_peak:.4g}",
        )
    if math.isfinite(knee) and 0 < knee <= right:
        x_knee = model.throughput(knee)
        axes.plot(
            [knee],
            [x_knee],
            marker="D",
            markersize=8,
            linestyle="none",
            color="darkorange",
            label=f"knee: N={knee:.3g}, X={x_knee:.4g}",
        )
    axes.set_xlim(0.0, right)
    axes.set_ylim(0.0, top * 1.15)
    axes.set_xlabel("Concurrency (N)")
    axes.set_ylabel(f"Throughput ({unit})")
    axes.legend(loc="lower right")
    return figure
