"""Exporters: a real prometheus_client registry (classic and OpenMetrics) and the real OTel SDK."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.telemetry import (
    MetricPoint,
    PrometheusCollector,
    TelemetryRegistry,
    instrument,
    register_otel_instruments,
    register_prometheus,
    timed,
)


class FetchError(Exception):
    """A domain error."""


def _populated(registry: TelemetryRegistry) -> None:
    series = registry.timer(
        "db.load_user", label_names=("route",), buckets=(0.001, 0.01, 0.1), quantiles=True
    ).series({"route": "/u"})
    for ns in (500_000, 2_000_000, 5_000_000, 50_000_000, 2_000_000_000):
        series.record_ns(ns)
    series.count_error("TimeoutError")


def _scrape(registry: TelemetryRegistry) -> tuple[str, str]:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    prom = CollectorRegistry()
    register_prometheus(registry, prometheus_registry=prom)
    return generate_latest(prom).decode(), generate_openmetrics(prom).decode()


def test_classic_text_histogram_buckets_sum_count() -> None:
    """The classic exposition has _bucket/_sum/_count with the chosen bounds and +Inf."""
    from prometheus_client.parser import text_string_to_metric_families

    registry = TelemetryRegistry()
    _populated(registry)
    classic, _ = _scrape(registry)
    families = {f.name: f for f in text_string_to_metric_families(classic)}
    histogram = families["db_load_user_seconds"]
    assert "histogram" == histogram.type
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert {"0.001": 1.0, "0.01": 3.0, "0.1": 4.0, "+Inf": 5.0} == buckets
    (count,) = [s.value for s in histogram.samples if s.name.endswith("_count")]
    (total,) = [s.value for s in histogram.samples if s.name.endswith("_sum")]
    assert 5.0 == count
    assert pytest.approx(2.0575, rel=1e-3) == total
    errors = families["db_load_user_errors"]
    assert [({"route": "/u", "error_type": "TimeoutError"}, 1.0)] == [
        (s.labels, s.value) for s in errors.samples
    ]
    summary = families["db_load_user_quantiles_seconds"]
    assert "summary" == summary.type
    quantiles = {s.labels["quantile"]: s.value for s in summary.samples if "quantile" in s.labels}
    assert ["0.5", "0.9", "0.99"] == list(quantiles)
    assert pytest.approx(0.005, rel=1e-2) == quantiles["0.5"]


def test_openmetrics_has_exemplars_with_the_trace_id(
    tracer_provider: Any, span_exporter: Any
) -> None:
    """A sampled span makes a bucket exemplar carrying its trace id in OpenMetrics output."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    registry = TelemetryRegistry()

    @instrument(name="api.get", registry=registry, tracer_provider=tracer_provider)
    def get() -> int:
        return 1

    get()
    classic, openmetrics = _scrape(registry)
    assert "# {" not in classic  # classic text has no exemplars
    assert openmetrics.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(openmetrics)}
    exemplars = [s.exemplar for s in families["api_get_seconds"].samples if s.exemplar]
    assert 1 == len(exemplars)
    (span,) = span_exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == exemplars[0].labels["trace_id"]


def test_metric_names_pass_promtool() -> None:
    """Promtool (the Prometheus linter) accepts the exposition: names end in _seconds/_total."""
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not on PATH")
    registry = TelemetryRegistry()
    _populated(registry)
    classic, _ = _scrape(registry)
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=classic, capture_output=True, text=True, check=False
    )
    assert "" == result.stdout + result.stderr.replace("\n", "")
    assert 0 == result.returncode


def test_collector_reads_timers_created_after_registration() -> None:
    """The collector reads the registry at scrape time: later timers appear."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = TelemetryRegistry()
    prom = CollectorRegistry()
    prom.register(PrometheusCollector(registry, namespace="app"))  # type: ignore[arg-type]

    @timed(name="late", registry=registry)
    def late() -> None:
        return None

    late()
    assert "app_late_seconds_count 1.0" in generate_latest(prom).decode()


def test_sources_become_counters_and_gauges() -> None:
    """A snapshot source's points are exported with _total and unit suffixes."""
    registry = TelemetryRegistry()
    state = {"hits": 3}

    def adapter(name: str, snap: dict[str, int]) -> list[MetricPoint]:
        return [
            MetricPoint(f"{name}.hits", "counter", snap["hits"], (("tier", "l1"),)),
            MetricPoint(f"{name}.hit_ratio", "gauge", 0.75, unit="ratio"),
        ]

    registry.add_source("cache.users", lambda: dict(state), adapter)
    classic, _ = _scrape(registry)
    assert 'cache_users_hits_total{tier="l1"} 3.0' in classic
    assert "cache_users_hit_ratio 0.75" in classic
    state["hits"] = 5
    classic, _ = _scrape(registry)
    assert 'cache_users_hits_total{tier="l1"} 5.0' in classic


def _otel_metrics(reader: Any) -> dict[str, Any]:
    data = reader.get_metrics_data()
    return {
        m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }


def test_otel_observable_instruments_with_in_memory_reader() -> None:
    """The real SDK InMemoryMetricReader sees calls, errors, sum, buckets and quantiles."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import Gauge, InMemoryMetricReader, Sum

    registry = TelemetryRegistry()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    export = register_otel_instruments(registry, meter_provider=provider)
    _populated(registry)  # created after registration: picked up by the listener
    metrics = _otel_metrics(reader)
    assert set(export.instrument_names) == set(metrics)
    assert all(isinstance(m.data, (Sum, Gauge)) for m in metrics.values())  # no exp. histogram
    (calls,) = metrics["db.load_user.calls"].data.data_points
    assert 5 == calls.value
    assert {"route": "/u"} == dict(calls.attributes)
    assert "s" == metrics["db.load_user.duration.sum"].unit
    (errors,) = metrics["db.load_user.errors"].data.data_points
    assert {"route": "/u", "error.type": "TimeoutError"} == dict(errors.attributes)
    buckets = {
        p.attributes["le"]: p.value
        for p in metrics["db.load_user.duration.bucket"].data.data_points
    }
    assert {"0.001": 1, "0.01": 3, "0.1": 4, "+Inf": 5} == buckets
    quantiles = metrics["db.load_user.duration.quantile"].data.data_points
    assert ["0.5", "0.9", "0.99"] == [p.attributes["quantile"] for p in quantiles]
    provider.shutdown()


def test_otel_sources() -> None:
    """Source points become observable counters and gauges."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    registry = TelemetryRegistry()
    registry.add_source(
        "cache.users",
        lambda: 7,
        lambda name, n: [
            MetricPoint(f"{name}.hits", "counter", n),
            MetricPoint(f"{name}.size", "gauge", 2),
        ],
    )
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    register_otel_instruments(registry, meter_provider=provider)
    metrics = _otel_metrics(reader)
    assert 7 == metrics["cache.users.hits"].data.data_points[0].value
    assert metrics["cache.users.hits"].data.is_monotonic
    assert 2 == metrics["cache.users.size"].data.data_points[0].value
    provider.shutdown()


def test_import_loads_no_exporter_library() -> None:
    """A fresh ``import perfprim.telemetry`` loads neither OTel nor prometheus_client."""
    code = "import sys, json, perfprim.telemetry;print(json.dumps(sorted(m for m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    heavy = [
        m for m in json.loads(out) if m.split(".")[0] in {"opentelemetry", "prometheus_client"}
    ]
    assert [] == heavy


def test_missing_prometheus_client_names_the_extra() -> None:
    """Without prometheus_client the collector raises MissingDependencyError naming the extra."""
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from perfprim.telemetry import PrometheusCollector\n"
        "try:\n    PrometheusCollector()\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'perfprim[prometheus]'" in out


def test_exported_members() -> None:
    """The public surface of perfprim.telemetry is pinned."""
    import perfprim.telemetry as telemetry

    assert [
        "DEFAULT_BUCKETS",
        "CardinalityWarning",
        "Exemplar",
        "LabelGuard",
        "MetricPoint",
        "MultiProcessCollector",
        "MultiProcessWriter",
        "OtelExport",
        "PrometheusCollector",
        "SLORecorder",
        "Series",
        "SeriesView",
        "Source",
        "TelemetryRegistry",
        "Timer",
        "TimerView",
        "cache_stats_points",
        "dataclass_points",
        "default_registry",
        "error_type",
        "instrument",
        "otel_histogram_exporter",
        "read_directory",
        "register_otel_instruments",
        "register_prometheus",
        "slo_points",
        "timed",
        "traced",
    ] == telemetry.__all__


def test_without_opentelemetry_timed_works_and_traced_names_the_extra() -> None:
    """With OTel unimportable, @timed records (no exemplars); @traced names the pip extra."""
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from perfprim.telemetry import TelemetryRegistry, timed, traced\n"
        "r = TelemetryRegistry()\n"
        "f = timed(name='x', registry=r)(lambda: 1)\n"
        "f(); print(r.timer_views()[0].series[0].histogram.count)\n"
        "try:\n    traced(lambda: 1)\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "1" == out[0]
    assert "pip install 'perfprim[otel]'" in out[1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=20_000_000_000), max_size=200))
def test_exported_buckets_are_cumulative(values: list[int]) -> None:
    """Invariant: exported buckets never decrease, +Inf equals _count, _sum is the sum."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.parser import text_string_to_metric_families

    registry = TelemetryRegistry()
    series = registry.timer("inv", buckets=(0.001, 0.01, 0.1, 1.0, 10.0)).series()
    for ns in values:
        series.record_ns(ns)
    prom = CollectorRegistry()
    register_prometheus(registry, prometheus_registry=prom)
    from prometheus_client import generate_latest

    (family,) = [
        f
        for f in text_string_to_metric_families(generate_latest(prom).decode())
        if f.name == "inv_seconds"
    ]
    buckets = [s.value for s in family.samples if s.name.endswith("_bucket")]
    (count,) = [s.value for s in family.samples if s.name.endswith("_count")]
    (total,) = [s.value for s in family.samples if s.name.endswith("_sum")]
    assert buckets == sorted(buckets)
    assert float(len(values)) == buckets[-1] == count
    assert pytest.approx(sum(values) / 1e9, rel=1e-3, abs=1e-6 * len(values) + 1e-9) == total


def test_otel_histogram_exporter_adds_explicit_bucket_histograms(tracer_provider: Any) -> None:
    """A real push reader and console exporter receive a cumulative explicit-bucket histogram."""
    import io

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )

    from perfprim.telemetry import otel_histogram_exporter

    registry = TelemetryRegistry()
    series = registry.timer("db.load_user", label_names=("route",), buckets=(0.001, 0.01)).series(
        {"route": "/u"}
    )
    for ns in (500_000, 2_000_000, 5_000_000, 50_000_000):
        series.record_ns(ns)
    series.count_error("TimeoutError")

    @instrument(name="api.get", registry=registry, tracer_provider=tracer_provider)
    def get() -> None:
        return None

    get()
    out = io.StringIO()
    exporter = otel_histogram_exporter(ConsoleMetricExporter(out=out), registry)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("app").create_counter("app.requests").add(1)
    reader.force_flush()
    provider.shutdown()
    exported, _ = json.JSONDecoder().raw_decode(out.getvalue())  # the first export
    scopes = {
        sm["scope"]["name"]: sm["metrics"]
        for rm in exported["resource_metrics"]
        for sm in rm["scope_metrics"]
    }
    assert {"app", "perfprim.telemetry"} <= set(scopes)
    metrics = {m["name"]: m for m in scopes["perfprim.telemetry"]}
    duration = metrics["db.load_user.duration"]
    assert "s" == duration["unit"]
    (point,) = duration["data"]["data_points"]
    assert {"route": "/u"} == point["attributes"]
    assert [0.001, 0.01] == point["explicit_bounds"]
    assert [1, 2, 1] == point["bucket_counts"]  # per bucket, the last one is +Inf
    assert 4 == point["count"]
    assert pytest.approx(0.0575, rel=1e-3) == point["sum"]
    assert 2 == duration["data"]["aggregation_temporality"]  # CUMULATIVE
    (errors,) = metrics["db.load_user.errors"]["data"]["data_points"]
    assert {"route": "/u", "error.type": "TimeoutError"} == errors["attributes"]
    (api_point,) = metrics["api.get.duration"]["data"]["data_points"]
    assert 1 == len(api_point["exemplars"])  # the sampled span of the call


def test_otel_histogram_exporter_without_other_metrics() -> None:
    """With no SDK instrument at all, the export still carries the timers."""
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        ConsoleMetricExporter,
        MetricsData,
    )

    from perfprim.telemetry import otel_histogram_exporter

    registry = TelemetryRegistry()
    registry.timer("x").series().record_ns(1_000_000)
    seen: list[Any] = []
    console = ConsoleMetricExporter(formatter=lambda data: seen.append(data) or "")
    exporter = otel_histogram_exporter(console, registry)
    exporter.export(MetricsData(resource_metrics=[]))
    ((resource_metrics,),) = [d.resource_metrics for d in seen]
    (metric,) = resource_metrics.scope_metrics[0].metrics
    assert "x.duration" == metric.name
    assert AggregationTemporality.CUMULATIVE == metric.data.aggregation_temporality
    assert exporter.force_flush()
