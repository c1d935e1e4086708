"""Snapshot sources: SLO trackers (real ``perfprim.slo.SLOTracker``) and dataclasses exported."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest

from perfprim.exceptions import ConfigurationError
from perfprim.slo import SLO, LatencySLO, SLOTracker
from perfprim.telemetry import TelemetryRegistry, dataclass_points, slo_points, timed
from perfprim.telemetry._sources import window_label


class Clock:
    """A settable clock in seconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _scrape(registry: TelemetryRegistry) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    from perfprim.telemetry import register_prometheus

    prom = CollectorRegistry()
    register_prometheus(registry, prometheus_registry=prom)
    return generate_latest(prom).decode()


def test_window_label() -> None:
    """Windows are labelled in the largest whole unit."""
    assert ["5m", "1h", "6h", "3d", "90s", "0.5s"] == [
        window_label(s) for s in (300, 3600, 21600, 259200, 90, 0.5)
    ]


def test_slo_tracker_exported_with_burn_rates_and_alerts() -> None:
    """An SLO tracker fed by @timed is exported: budget, per-window burn rate, firing alerts."""
    clock = Clock()
    tracker = SLOTracker(SLO(target=0.99, window=30 * 86400), clock=clock)
    registry = TelemetryRegistry()
    registry.add_slo("slo.checkout", tracker)

    @timed(name="checkout", slo=tracker, registry=registry)
    def checkout(ok: bool) -> None:
        if not ok:
            raise RuntimeError("declined")

    for i in range(100):
        with contextlib.suppress(RuntimeError):
            checkout(i % 5 != 0)  # 20% errors: burns far faster than 14.4x
    points = {(p.name, p.labels): p for p in slo_points("s", tracker.snapshot())}
    assert 0.99 == points[("s.objective", ())].value
    assert pytest.approx(0.2) == points[("s.error", (("window", "5m"),))].value
    assert pytest.approx(20.0) == points[("s.burn_rate", (("window", "1h"),))].value
    firing = {labels: p.value for (name, labels), p in points.items() if name == "s.alert_firing"}
    assert 4 == len(firing)
    assert 1.0 == firing[(("severity", "page"), ("long_window", "1h"), ("short_window", "5m"))]
    text = _scrape(registry)
    assert "slo_checkout_objective_ratio 0.99" in text
    assert 'slo_checkout_burn_rate{window="1h"} 20.0' in text
    assert 'slo_checkout_error_ratio{window="5m"} 0.2' in text
    assert (
        'slo_checkout_alert_firing{long_window="1h",severity="page",short_window="5m"} 1.0' in text
    )


def test_latency_slo_gets_record_latency() -> None:
    """A LatencySLO tracker counts a returned run by its duration (an injected clock)."""
    tracker = SLOTracker(LatencySLO(threshold=10.0, target=0.9, window=28 * 86400), clock=Clock())

    ticks = iter([0, 2_000_000_000, 0, 20_000_000_000])  # a 2 s run, then a 20 s run

    @timed(name="fast", slo=tracker, registry=TelemetryRegistry(), clock=lambda: next(ticks))
    def fast() -> None:
        return None

    fast()
    fast()
    status = tracker.snapshot().windows[0]
    assert (1, 2) == (status.good, status.total)


def test_no_traffic_omits_undefined_ratios() -> None:
    """Without traffic, the SLI and error ratios are absent rather than NaN."""
    tracker = SLOTracker(SLO(target=0.999, window=86400 * 28), clock=Clock())
    names = {p.name for p in slo_points("s", tracker.snapshot())}
    assert "s.sli" not in names
    assert "s.error" not in names
    assert "s.error_budget_remaining" in names


def test_dataclass_points() -> None:
    """Numeric fields become points; bools and strings are skipped; counters are named."""

    @dataclass(frozen=True)
    class Snap:
        size: int
        hits: int
        ratio: float
        healthy: bool
        name: str

    points = dataclass_points("q", Snap(3, 10, 0.5, True, "x"), counters=("hits",))
    assert [("q.size", "gauge", 3), ("q.hits", "counter", 10), ("q.ratio", "gauge", 0.5)] == [
        (p.name, p.kind, p.value) for p in points
    ]
    with pytest.raises(ConfigurationError):
        dataclass_points("q", {"size": 1})


def test_source_registration_errors() -> None:
    """A duplicate source name or an object without snapshot()/stats() fails fast."""
    registry = TelemetryRegistry()
    registry.add_source("a", lambda: 1, lambda n, s: [])
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.add_source("a", lambda: 1, lambda n, s: [])
    registry.remove_source("a")
    registry.add_source("a", lambda: 1, lambda n, s: [])
    with pytest.raises(ConfigurationError, match="snapshot"):
        registry.add_slo("b", object())
    with pytest.raises(ConfigurationError, match="stats"):
        registry.add_cache("c", object())
