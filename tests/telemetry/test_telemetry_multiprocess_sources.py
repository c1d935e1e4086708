"""Pre-fork merge beyond timers: SLO trackers, shared source points, one family each.

The SLO merge is checked against an independent source: one tracker that
saw every event of every worker, on the same clock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.exceptions import ConfigurationError
from perfprim.slo import SLO, AlertRule, LatencySLO, RatioTimeslices, SLOTracker, Timeslices
from perfprim.telemetry import (
    MetricPoint,
    MultiProcessWriter,
    PrometheusCollector,
    TelemetryRegistry,
    slo_points,
    timed,
)
from perfprim.telemetry._multiprocess import (
    merge_points,
    merge_slos,
    slo_from_json,
    slo_to_json,
)
from perfprim.telemetry._prometheus import unique_families

POLICY = [
    AlertRule(severity="page", budget_fraction=0.05, long_window=600, short_window=60),
    AlertRule(severity="ticket", budget_fraction=0.1, long_window=1800, short_window=300),
]


def _slo_file(tracker: SLOTracker, name: str = "slo.x") -> dict[str, Any]:
    snapshot = tracker.snapshot()
    return {
        "format": 2,
        "pid": os.getpid(),
        "slos": [
            {
                "name": name,
                "labels": [["http_route", "/a"]],
                "events": [snapshot.events, snapshot.bad_events],
                "slo": slo_to_json(tracker.slo),
                "resolution": tracker.resolution,
                "budget_resolution": tracker.budget_resolution,
                "history": [[b.start, b.end, b.total, b.bad] for b in tracker.history()],
            }
        ],
    }


def _values(points: list[MetricPoint]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(p.name, tuple(sorted(p.labels))): p.value for p in points}


events = st.lists(
    st.tuples(st.integers(0, 2), st.floats(0, 7_000), st.booleans()), min_size=0, max_size=60
)


@settings(max_examples=60, deadline=None)
@given(events=events, budgeting=st.sampled_from(["occurrences", "timeslices", "ratio"]))
def test_merged_trackers_equal_one_tracker_of_every_event(
    events: list[tuple[int, float, bool]], budgeting: str
) -> None:
    """Three workers' trackers, merged by replay, report what one tracker of every event does."""
    kinds: dict[str, Any] = {
        "occurrences": None,
        "timeslices": Timeslices(slice_target=0.9, slice_duration=60),
        "ratio": RatioTimeslices(slice_duration=60),
    }
    slo = SLO(target=0.99, window=3600, policy=POLICY, budgeting=kinds[budgeting])
    now = [1_000_000.0]
    workers = [SLOTracker(slo, clock=lambda: now[0]) for _ in range(3)]
    union = SLOTracker(slo, clock=lambda: now[0])
    for worker, offset, good in sorted(events, key=lambda e: e[1]):
        now[0] = 1_000_000.0 + offset
        workers[worker].record(good)
        union.record(good)
    now[0] = 1_000_000.0 + 7_200.0
    files = [_slo_file(w) for w in workers]
    merged = _values(merge_slos(files, clock=lambda: now[0]))
    expected = _values(
        [
            MetricPoint(p.name, p.kind, p.value, (("http_route", "/a"), *p.labels))
            for p in slo_points("slo.x", union.snapshot())
        ]
    )
    assert merged.keys() == expected.keys()
    for key, value in expected.items():
        assert value == pytest.approx(merged[key], rel=1e-9, abs=1e-12), key


def test_history_of_an_idle_tracker_is_empty() -> None:
    """A tracker without events has no history; its merge has no traffic."""
    tracker = SLOTracker(SLO(target=0.99, window=3600, policy=POLICY), clock=lambda: 50.0)
    assert () == tracker.history()
    points = _values(merge_slos([_slo_file(tracker)], clock=lambda: 60.0))
    assert 0 == points[("slo.x.window_events", (("http_route", "/a"), ("window", "1m")))]


def test_dead_workers_events_age_out_of_windows() -> None:
    """A dead worker's events leave the short windows with time (replayed, not frozen)."""
    now = [0.0]
    slo = SLO(target=0.99, window=3600, policy=POLICY)
    tracker = SLOTracker(slo, clock=lambda: now[0])
    for _ in range(5):
        tracker.record(False)
    files = [_slo_file(tracker)]
    short = ("slo.x.window_events", (("http_route", "/a"), ("window", "1m")))
    assert 5 == _values(merge_slos(files, clock=lambda: 10.0))[short]
    assert 0 == _values(merge_slos(files, clock=lambda: 200.0))[short]


@pytest.mark.parametrize(
    "slo",
    [
        SLO(target=0.999),
        LatencySLO(threshold=0.25, target=0.99, window=7 * 86400, policy=POLICY),
        SLO(
            target=0.95,
            window=3600,
            budgeting=Timeslices(slice_target=0.9, slice_duration=60),
            policy=POLICY,
        ),
    ],
)
def test_slo_json_round_trip(slo: SLO) -> None:
    """An SLO written to a worker file is rebuilt equal in the collector."""
    assert slo == slo_from_json(slo_to_json(slo))


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


def test_counters_sum_over_every_worker_gauges_over_live_ones() -> None:
    """Counters never go back (dead workers count); gauges only count live workers."""

    def file(pid: int, exited: bool, hits: float, state: float) -> dict[str, Any]:
        return {
            "format": 2,
            "pid": pid,
            "exited": exited,
            "points": [
                ["cache.u.hits", "counter", hits, [["tier", "l1"]], "", ""],
                ["cache.u.circuit_state", "gauge", state, [["state", "open"]], "", ""],
            ],
        }

    files = [
        file(os.getpid(), False, 3, 1),
        file(os.getpid(), True, 4, 1),  # exited normally
        file(_dead_pid(), False, 5, 1),  # killed
    ]
    merged = _values(merge_points(files))
    assert 12 == merged[("cache.u.hits", (("tier", "l1"),))]
    assert 1 == merged[("cache.u.circuit_state", (("state", "open"),))]


def test_registry_with_a_writer_exports_each_family_once(tmp_path: Path) -> None:
    """With a writer running, the collector serves merged files plus local sources, once each."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = TelemetryRegistry()
    registry.timer("job.run", label_names=("queue",)).series({"queue": "a"}).record_ns(2_000_000)
    tracker = SLOTracker(SLO(target=0.99, window=3600, policy=POLICY))
    tracker.record(True)
    registry.add_slo("slo.jobs", tracker, labels={"queue": "a"})
    registry.add_source("local.depth", lambda: 7, lambda name, v: [MetricPoint(name, "gauge", v)])
    # another worker's file: one more run, one more SLO event
    other = TelemetryRegistry()
    other.timer("job.run", label_names=("queue",)).series({"queue": "a"}).record_ns(3_000_000)
    other_tracker = SLOTracker(SLO(target=0.99, window=3600, policy=POLICY))
    other_tracker.record(False)
    other.add_slo("slo.jobs", other_tracker, labels={"queue": "a"})
    MultiProcessWriter(tmp_path, registry=other).flush()

    writer = MultiProcessWriter(tmp_path, registry=registry, interval=60)
    prom = CollectorRegistry()
    prom.register(PrometheusCollector(registry))  # type: ignore[arg-type]
    with writer:
        text = generate_latest(prom).decode()
    types = [line for line in text.splitlines() if line.startswith("# TYPE")]
    assert sorted(set(types)) == sorted(types)
    assert 'job_run_seconds_count{queue="a"} 2.0' in text
    assert 'slo_jobs_window_events{queue="a",window="1m"} 2.0' in text
    assert 'slo_jobs_window_good_events{queue="a",window="1m"} 1.0' in text
    assert "local_depth 7.0" in text


def test_duplicate_family_is_dropped_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Two families of one name: the second is dropped (Prometheus rejects a repeated # TYPE)."""
    from prometheus_client.core import GaugeMetricFamily

    families = [GaugeMetricFamily("clash_x", "a"), GaugeMetricFamily("clash_x", "b")]
    with caplog.at_level(logging.WARNING, logger="perfprim.telemetry"):
        kept = list(unique_families(families)) + list(unique_families(families))
    assert [families[0], families[0]] == kept
    assert 1 == sum("clash_x" in r.getMessage() for r in caplog.records)


def test_sources_of_one_name_differ_by_labels() -> None:
    """add_slo per route: one name, several label sets; the same pair twice is refused."""
    registry = TelemetryRegistry()
    slo = SLO(target=0.99, window=3600, policy=POLICY)
    registry.add_slo("http.slo", SLOTracker(slo), labels={"http_route": "/a"})
    registry.add_slo("http.slo", SLOTracker(slo), labels={"http_route": "/b"})
    with pytest.raises(ConfigurationError):
        registry.add_slo("http.slo", SLOTracker(slo), labels={"http_route": "/a"})
    routes = {
        dict(p.labels)["http_route"]
        for p in registry.source_points()
        if p.name == "http.slo.objective"
    }
    assert {"/a", "/b"} == routes
    registry.remove_source("http.slo", labels={"http_route": "/a"})
    assert ["/b"] == [dict(s.labels)["http_route"] for s in registry.sources()]


class NotFoundError(Exception):
    """A client's error."""


@pytest.mark.parametrize("exclude", [(NotFoundError,), lambda exc: isinstance(exc, NotFoundError)])
def test_timed_exclude_keeps_client_errors_out_of_the_slo(exclude: Any) -> None:
    """exclude= (types or a predicate): excluded errors are no SLO event, yet still counted."""
    registry = TelemetryRegistry()
    tracker = SLOTracker(SLO(target=0.999, window=3600, policy=POLICY), clock=lambda: 1.0)

    @timed(name="view", registry=registry, slo=tracker, exclude=exclude)
    def view(kind: str) -> str:
        if kind == "missing":
            raise NotFoundError(kind)
        if kind == "broken":
            raise ValueError(kind)
        return kind

    for kind in ("ok", "missing", "missing", "ok", "broken"):
        with contextlib.suppress(NotFoundError, ValueError):
            view(kind)
    status = tracker.window_status(60)
    assert (3, 2) == (status.total, status.good)
    (series,) = registry.timer_views()[0].series
    assert 2 == series.errors[f"{__name__}.NotFoundError"]


def test_exclude_needs_an_slo_and_a_valid_value() -> None:
    """exclude= without slo=, or of the wrong kind, fails fast."""
    with pytest.raises(ConfigurationError):
        timed(name="a", registry=TelemetryRegistry(), exclude=(NotFoundError,))
    tracker = SLOTracker(SLO(target=0.99, window=3600, policy=POLICY))
    with pytest.raises(ConfigurationError):
        timed(name="b", registry=TelemetryRegistry(), slo=tracker, exclude=("NotFound",))  # type: ignore[arg-type]


def test_otel_names_follow_the_http_conventions() -> None:
    """http.server.request.duration keeps its name; dotted attributes; no empty error.type."""
    from perfprim.telemetry._otel import timer_metrics

    registry = TelemetryRegistry()
    timer = registry.timer(
        "http.server.request.duration",
        label_names=(
            "http_request_method",
            "http_route",
            "http_response_status_code",
            "error_type",
        ),
    )
    timer.series_at(("", "GET", "200", "/a")).record_ns(1_000_000)
    timer.series_at(("ValueError", "GET", "500", "/a")).record_ns(1_000_000)
    (metric,) = timer_metrics(registry.timer_views(copy=False), now_unix_nano=1)
    assert "http.server.request.duration" == metric.name
    assert "s" == metric.unit
    attributes = sorted(
        (sorted(point.attributes.items()) for point in metric.data.data_points), key=len
    )
    assert [
        [
            ("http.request.method", "GET"),
            ("http.response.status_code", "200"),
            ("http.route", "/a"),
        ],
        [
            ("error.type", "ValueError"),
            ("http.request.method", "GET"),
            ("http.response.status_code", "500"),
            ("http.route", "/a"),
        ],
    ] == attributes
