"""HdrHistogram's percentile distribution plot, with latency limits."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from perfprim.exceptions import ConfigurationError
from perfprim.plot._core import latency_unit, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from perfprim.histogram import LatencyHistogram

__all__ = ["LatencyLimit", "latency_percentiles", "percentile_curve"]

_POINTS_PER_DECADE = 40
_MAX_NINES = 6


@dataclass(frozen=True, slots=True)
class LatencyLimit:
    """A latency objective to draw: ``percentile`` percent of requests within ``seconds``.

    Attributes:
        seconds: The latency bound.
        percentile: The percentile it applies to, in (0, 100).
    """

    seconds: float
    percentile: float

    def __post_init__(self) -> None:
        if not (self.seconds > 0 and math.isfinite(self.seconds)):
            msg = f"seconds must be a positive latency, got {self.seconds!r}"
            raise ConfigurationError(msg)
        if not 0 < self.percentile < 100:
            msg = f"percentile must be in (0, 100), such as 99.9, got {self.percentile!r}"
            raise ConfigurationError(msg)


def _x(percentile: float) -> float:
    return 1.0 / (1.0 - percentile / 100.0)


def _label(nines: int) -> str:
    return "0%" if nines == 0 else f"{100 - 10.0 ** (2 - nines):.{max(0, nines - 2)}f}%"


def percentile_curve(histogram: LatencyHistogram, max_x: float) -> tuple[list[float], list[float]]:
    """Points ``(1/(1-p), value)`` of a run, 40 per decade of ``1/(1-p)``, up to ``max_x``.

    Returns:
        The x values and the latencies in seconds.
    """
    steps = max(1, math.ceil(math.log10(max_x) * _POINTS_PER_DECADE))
    xs = [10.0 ** (k / _POINTS_PER_DECADE) for k in range(steps + 1)]
    xs[-1] = max_x
    ps = [100.0 * (1.0 - 1.0 / x) for x in xs]
    values = histogram.percentiles(ps)
    return xs, [values[p] for p in ps]


def latency_percentiles(
    runs: Mapping[str, LatencyHistogram] | Iterable[tuple[str, LatencyHistogram]],
    *,
    limits: Sequence[LatencyLimit] = (),
    title: str = "Latency by percentile",
) -> Figure:
    """The percentile distribution of one or more runs, as HdrHistogram's plotter draws it.

    The x axis is ``1/(1-p)`` on a log scale, ticks labelled 0%, 90%, 99%,
    99.9%, ...; each run is drawn up to its own last meaningful percentile
    (``1 - 1/count``, at most 99.9999%). Limits are drawn as a step line: a
    run meets them when its curve stays under the line up to each limit's
    percentile.

    Args:
        runs: Label -> histogram (a mapping or pairs), e.g. ``{"base": h1, "new": h2}``.
        limits: Latency objectives to draw.
        title: The plot's title.

    Returns:
        The figure (save it with :func:`save`).

    Raises:
        ConfigurationError: If no run has values.
        MissingDependencyError: Without matplotlib (``pip install 'perfprim[plot]'``).
    """
    pairs = list(runs.items()) if isinstance(runs, Mapping) else list(runs)
    pairs = [(label, h) for label, h in pairs if h.count]
    if not pairs:
        msg = "latency_percentiles needs at least one histogram with values"
        raise ConfigurationError(msg)
    top = max([h.max for _, h in pairs] + [limit.seconds for limit in limits])
    unit, scale = latency_unit(top)
    figure, axes = new_figure(title)
    widest = 1.0
    for label, histogram in pairs:
        max_x = min(float(histogram.count), 10.0**_MAX_NINES)
        max_x = max(max_x, 10.0)
        xs, values = percentile_curve(histogram, max_x)
        widest = max(widest, max_x)
        axes.plot(xs, [v * scale for v in values], label=label, linewidth=1.6)
    ordered = sorted(limits, key=lambda limit: limit.percentile)
    if ordered:
        xs_limit: list[float] = [1.0]
        ys_limit: list[float] = [ordered[0].seconds * scale]
        for index, limit in enumerate(ordered):
            x = _x(limit.percentile)
            widest = max(widest, x)
            xs_limit += [x]
            ys_limit += [limit.seconds * scale]
            if index + 1 < len(ordered):
                xs_limit += [x]
                ys_limit += [ordered[index + 1].seconds * scale]
        label = "SLO " + ", ".join(
            f"{limit.seconds * scale:g}{unit}@{limit.percentile:g}%" for limit in ordered
        )
        axes.plot(xs_limit, ys_limit, color="crimson", linestyle="--", linewidth=1.2, label=label)
        axes.plot(
            [_x(limit.percentile) for limit in ordered],
            [limit.seconds * scale for limit in ordered],
            linestyle="none",
            marker="o",
            color="crimson",
        )
        axes.axvline(xs_limit[-1], color="crimson", linestyle="--", linewidth=1.2)
    nines = min(_MAX_NINES, max(1, math.ceil(math.log10(widest) - 1e-9)))
    axes.set_xscale("log")
    axes.set_xlim(1.0, 10.0**nines)
    axes.set_xticks([10.0**k for k in range(nines + 1)], [_label(k) for k in range(nines + 1)])
    axes.minorticks_off()
    axes.set_ylim(bottom=0.0)
    axes.set_xlabel("Percentile")
    axes.set_ylabel(f"Latency ({unit})")
    axes.legend(loc="upper left")
    return figure
