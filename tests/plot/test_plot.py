"""perfprim.plot: figure structure (axes, labels, ticks, line data) and byte-stable output."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from perfprim.capacity import USLModel
from perfprim.exceptions import ConfigurationError
from perfprim.histogram import LatencyHistogram
from perfprim.plot import (
    LatencyLimit,
    budget_burn,
    budget_series,
    latency_percentiles,
    save,
    usl_fit,
)
from perfprim.slo import SLO


def _histogram(values: list[float]) -> LatencyHistogram:
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    return h


@pytest.fixture
def runs() -> dict[str, LatencyHistogram]:
    """Two runs of 10,000 values: 1..10,000 microseconds x1 and x2."""
    return {
        "base": _histogram([i * 1e-6 for i in range(1, 10_001)]),
        "new": _histogram([i * 2e-6 for i in range(1, 10_001)]),
    }


def test_latency_axes_are_hdrhistogram_style(runs: dict[str, LatencyHistogram]) -> None:
    """X = 1/(1-p) on a log axis with 0%..99.99% ticks; y in ms from 0; a line per run."""
    figure = latency_percentiles(runs, title="runs")
    (axes,) = figure.axes
    assert "log" == axes.get_xscale()
    assert [1, 10, 100, 1000, 10_000] == list(axes.get_xticks())
    assert ["0%", "90%", "99%", "99.9%", "99.99%"] == [t.get_text() for t in axes.get_xticklabels()]
    assert ("Percentile", "Latency (ms)", "runs") == (
        axes.get_xlabel(),
        axes.get_ylabel(),
        axes.get_title(),
    )
    assert 0.0 == axes.get_ylim()[0]
    assert ["base", "new"] == [t.get_text() for t in axes.get_legend().get_texts()]


def test_latency_lines_are_the_percentiles(runs: dict[str, LatencyHistogram]) -> None:
    """Each point (x, y) of a run's line is (1/(1-p), percentile(p) in ms)."""
    axes = latency_percentiles(runs).axes[0]
    base, new = axes.get_lines()[:2]
    xs, ys = base.get_xdata(), base.get_ydata()
    assert 1.0 == xs[0]
    assert 10_000.0 == xs[-1]  # the last meaningful percentile of 10,000 values
    for x, y in zip(xs[::20], ys[::20], strict=True):
        p = 100.0 * (1.0 - 1.0 / x)
        assert runs["base"].percentile(p) * 1e3 == pytest.approx(y)
    # the uniform 1..10,000 us run: p90 is 9 ms (x = 10)
    assert 9.0 == pytest.approx(ys[list(xs).index(10.0)], rel=1e-3)
    assert list(ys * 2) == pytest.approx(list(new.get_ydata()), rel=2e-3)


def test_latency_limits_are_a_step_line(runs: dict[str, LatencyHistogram]) -> None:
    """5ms@90 and 12ms@99.9: steps (1,5) (10,5) (10,12) (1000,12), and a marker each."""
    limits = [LatencyLimit(0.012, 99.9), LatencyLimit(0.005, 90.0)]
    axes = latency_percentiles(runs, limits=limits).axes[0]
    step = axes.get_lines()[2]
    assert [(1.0, 5.0), (10.0, 5.0), (10.0, 12.0), (1000.0, 12.0)] == [
        (pytest.approx(x), pytest.approx(y)) for x, y in step.get_xydata()
    ]
    markers = axes.get_lines()[3]
    assert [10.0, 1000.0] == pytest.approx(list(markers.get_xdata()))
    assert "SLO 5ms@90%, 12ms@99.9%" == axes.get_legend().get_texts()[2].get_text()


def test_latency_rejects_empty_runs_and_bad_limits() -> None:
    """No values to plot, or a limit at p100: ConfigurationError with the fix."""
    with pytest.raises(ConfigurationError, match="at least one histogram with values"):
        latency_percentiles({"empty": LatencyHistogram()})
    with pytest.raises(ConfigurationError, match=r"\(0, 100\)"):
        LatencyLimit(0.2, 100.0)


def test_usl_plot_marks_peak_and_knee() -> None:
    """Measured points, the fitted curve, linear scaling, peak and knee at the model's."""
    model = USLModel(sigma=0.05, kappa=0.0005, lambda_=1000.0)
    points = [(n, model.throughput(n)) for n in (1, 2, 4, 8, 16, 32, 64)]
    axes = usl_fit(model, points).axes[0]
    measured, curve, linear, peak, knee = axes.get_lines()
    assert [1, 2, 4, 8, 16, 32, 64] == list(measured.get_xdata())
    for n, x in zip(curve.get_xdata()[::25], curve.get_ydata()[::25], strict=True):
        assert model.throughput(n) == pytest.approx(x)
    assert model.lambda_ * linear.get_xdata()[-1] == pytest.approx(linear.get_ydata()[-1])
    assert [model.peak_concurrency] == pytest.approx(list(peak.get_xdata()))
    assert [model.knee_concurrency] == pytest.approx(list(knee.get_xdata()))
    labels = [t.get_text() for t in axes.get_legend().get_texts()]
    assert labels[3].startswith("peak: N=43.6")
    assert ("Concurrency (N)", "Throughput (per second)") == (axes.get_xlabel(), axes.get_ylabel())


def test_usl_plot_without_a_peak() -> None:
    """Kappa = 0 (Amdahl): no peak marker, the knee at (1 - sigma) / sigma."""
    model = USLModel(sigma=0.1, kappa=0.0, lambda_=10.0)
    axes = usl_fit(model, [(n, model.throughput(n)) for n in (1, 2, 4, 8, 16, 32)]).axes[0]
    assert 4 == len(axes.get_lines())
    assert [9.0] == pytest.approx(list(axes.get_lines()[3].get_xdata()))


def test_budget_series_rolls_over_the_window() -> None:
    """1-hour SLO at 99%: 1% errors keep the budget at 0; old bad minutes leave the window."""
    slo = SLO(target=0.99, window=3600)
    intervals = [(60.0 * (i + 1), 990.0, 1000.0) for i in range(60)]  # burn rate 1
    intervals += [(3600.0 + 60.0 * (i + 1), 1000.0, 1000.0) for i in range(30)]  # clean
    series = budget_series(slo, intervals)
    assert 0.0 == pytest.approx(series[59][1])
    # after 30 clean minutes, the window holds 30 bad minutes and 60 minutes of traffic
    assert 1.0 - (30 * 10) / (0.01 * 60_000) == pytest.approx(series[-1][1])
    with pytest.raises(ConfigurationError, match="increase"):
        budget_series(slo, [(10.0, 1, 1), (5.0, 1, 1)])


def test_budget_burn_axes_and_reference_line() -> None:
    """Remaining in percent over minutes; the burn-rate-1 line falls to 0 at one window."""
    slo = SLO(target=0.99, window=3600)
    series = budget_series(slo, [(60.0 * (i + 1), 980.0, 1000.0) for i in range(60)])
    axes = budget_burn({"run": series}, window=3600.0).axes[0]
    run, reference = axes.get_lines()[:2]
    assert [-100.0] * 3 == pytest.approx(list(run.get_ydata()[:3]))
    assert [0.0, 59.0] == pytest.approx([reference.get_xdata()[0], reference.get_xdata()[1]])
    assert 100.0 * (1 - 59 * 60 / 3600) == pytest.approx(reference.get_ydata()[1])
    assert ("Time (min)", "Error budget remaining (%)") == (axes.get_xlabel(), axes.get_ylabel())
    with pytest.raises(ConfigurationError, match="at least one"):
        budget_burn([])


@pytest.mark.parametrize("suffix", ["svg", "png"])
def test_output_is_byte_stable(
    tmp_path: Path, runs: dict[str, LatencyHistogram], suffix: str
) -> None:
    """The same figure saved twice (two figures, two files) gives the same bytes; no date in SVG."""
    paths = [tmp_path / f"a.{suffix}", tmp_path / f"b.{suffix}"]
    for path in paths:
        assert suffix == save(latency_percentiles(runs, limits=[LatencyLimit(0.01, 99)]), path)
    first, second = (p.read_bytes() for p in paths)
    assert first == second
    if suffix == "svg":
        assert b"<dc:date>" not in first


def test_save_refuses_other_formats(tmp_path: Path, runs: dict[str, LatencyHistogram]) -> None:
    """Only png and svg."""
    with pytest.raises(ConfigurationError, match="'png' or 'svg'"):
        save(latency_percentiles(runs), tmp_path / "x.pdf", format="pdf")
    assert "png" == save(latency_percentiles(runs), tmp_path / "x.unknown")
    assert math.isfinite(runs["base"].max)
