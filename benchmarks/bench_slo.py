"""SLO tracking costs: SLOTracker.record and window queries against their anchors.

Groups:
- "slo: record event": ``SLOTracker.record(good)`` (clock read, lock, two
  counters) against a plain two-counter increment (the floor: no clock, no
  lock, no windows) and prometheus_client ``Counter.inc`` (what a service
  pays today to count requests for Prometheus to compute the SLO).
- "slo: record latency": ``SLOTracker.record_latency`` against
  prometheus_client ``Histogram.observe``.
- "slo: decorated call": a function under ``@SLOTracker.track`` against the
  same function under prometheus_client ``@Histogram.time()``.
- "slo: window query": ``SLOTracker.burn_rate(1 h)`` against reading a
  prometheus_client counter's value (``Counter._value.get()``, the cheapest
  read it has) and against a naive deque scan of the last 1,000 events.
- "slo: snapshot": ``SLOTracker.snapshot()`` (7 windows, budget, alerts),
  occurrences and timeslices (a month of one-minute slices), against
  ``prometheus_client.generate_latest`` of a registry holding two counters
  (one scrape).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import prometheus_client
import pytest

from perfprim.slo import SLO, LatencySLO, SLOTracker, Timeslices


class PlainCounter:
    def __init__(self) -> None:
        self.total = 0
        self.bad = 0

    def record(self, good: bool) -> None:
        self.total += 1
        if not good:
            self.bad += 1


@pytest.fixture
def tracker() -> SLOTracker:
    tracker = SLOTracker(SLO(target=0.999))
    for i in range(10_000):
        tracker.record(i % 100 != 0)
    return tracker


def test_record_perfprim(compare: Callable[..., Any], tracker: SLOTracker) -> None:
    compare("slo: record event", "perfprim", tracker.record, True)


def test_record_plain_counter(compare: Callable[..., Any]) -> None:
    counter = PlainCounter()
    compare("slo: record event", "plain counter", counter.record, True)


def test_record_prometheus_client(compare: Callable[..., Any]) -> None:
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("requests", "requests", registry=registry)
    compare("slo: record event", "prometheus_client Counter.inc", counter.inc)


def test_record_latency_perfprim(compare: Callable[..., Any]) -> None:
    tracker = SLOTracker(LatencySLO(threshold=0.3, target=0.99))
    compare("slo: record latency", "perfprim", tracker.record_latency, 0.12)


def test_record_latency_prometheus_client(compare: Callable[..., Any]) -> None:
    registry = prometheus_client.CollectorRegistry()
    histogram = prometheus_client.Histogram("latency_seconds", "latency", registry=registry)
    compare("slo: record latency", "prometheus_client Histogram.observe", histogram.observe, 0.12)


def test_query_perfprim(compare: Callable[..., Any], tracker: SLOTracker) -> None:
    compare("slo: window query", "perfprim", tracker.burn_rate, 3600)


def test_query_prometheus_client(compare: Callable[..., Any]) -> None:
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("requests", "requests", registry=registry)
    counter.inc(10_000)
    compare("slo: window query", "prometheus_client Counter value", counter._value.get)


def test_query_deque_scan(compare: Callable[..., Any]) -> None:
    events: deque[tuple[float, bool]] = deque(maxlen=1000)
    now = time.monotonic()
    for i in range(1000):
        events.append((now - i, i % 100 != 0))

    def error_ratio() -> float:
        start = time.monotonic() - 3600
        total = bad = 0
        for stamp, good in events:
            if stamp >= start:
                total += 1
                bad += not good
        return bad / total

    compare("slo: window query", "deque scan of 1000 events", error_ratio)


def test_snapshot_perfprim(compare: Callable[..., Any], tracker: SLOTracker) -> None:
    compare("slo: snapshot", "perfprim", tracker.snapshot)


def test_snapshot_perfprim_timeslices(compare: Callable[..., Any]) -> None:
    now = [0.0]
    slo = SLO(target=0.999, budgeting=Timeslices(slice_target=0.95, slice_duration=60))
    tracker = SLOTracker(slo, clock=lambda: now[0])
    for minute in range(43_200):  # a full month of one-minute slices
        tracker.record_counts(good=99 if minute % 7 else 90, total=100)
        now[0] += 60
    compare("slo: snapshot", "perfprim timeslices", tracker.snapshot)


def test_snapshot_prometheus_client(compare: Callable[..., Any]) -> None:
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("requests", "requests", registry=registry).inc(10_000)
    prometheus_client.Counter("errors", "errors", registry=registry).inc(100)
    compare(
        "slo: snapshot",
        "prometheus_client generate_latest",
        prometheus_client.generate_latest,
        registry,
    )


def test_track_perfprim(compare: Callable[..., Any]) -> None:
    tracker = SLOTracker(SLO(target=0.999))

    @tracker.track
    def handler(x: int) -> int:
        return x + 1

    compare("slo: decorated call", "perfprim", handler, 1)


def test_track_prometheus_client(compare: Callable[..., Any]) -> None:
    registry = prometheus_client.CollectorRegistry()
    histogram = prometheus_client.Histogram("latency_seconds", "latency", registry=registry)

    @histogram.time()
    def handler(x: int) -> int:
        return x + 1

    compare("slo: decorated call", "prometheus_client Histogram.time", handler, 1)


def test_tracker_memory(record_metric: Callable[..., None]) -> None:
    now = [0.0]
    tracker = SLOTracker(SLO(target=0.999), clock=lambda: now[0])
    rings = (tracker._fine, tracker._coarse)

    def size() -> int:
        return sum(r.total.itemsize * len(r.total) * 2 for r in rings)

    before = size()
    for _ in range(2000):
        for _ in range(100):
            tracker.record(True)
        now[0] += 61
    assert before == size()
    record_metric(
        "slo.tracker.ring_bytes",
        size(),
        unit="bytes",
        note="99.9%/30d, default policy and resolutions; same after 200k events",
    )
