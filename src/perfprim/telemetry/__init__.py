"""Telemetry decorators and exporters: spans, latency histograms and error counts.

- :func:`traced`: one OpenTelemetry span per call; a fast path when no SDK is
  configured.
- :func:`timed`: a latency distribution (an HDR histogram) and error counts
  per call, aggregated in process and exported at collection time.
- :func:`instrument`: both in one wrapper.
- :class:`TelemetryRegistry`: where timers and snapshot sources live;
  :func:`default_registry` is the one the decorators use unless told.
- :class:`PrometheusCollector` / :func:`register_prometheus`,
  :func:`otel_histogram_exporter` and :func:`register_otel_instruments`: the
  exporters.
- :class:`MultiProcessWriter` / :class:`MultiProcessCollector`: pre-fork
  servers (each worker writes its encoded histograms; the scrape merges).

``import perfprim.telemetry`` imports neither ``opentelemetry`` nor
``prometheus_client``; they are imported when a feature needs them.
"""

from __future__ import annotations

from perfprim.telemetry._cardinality import CardinalityWarning, LabelGuard
from perfprim.telemetry._conventions import error_type
from perfprim.telemetry._multiprocess import (
    MultiProcessCollector,
    MultiProcessWriter,
    read_directory,
)
from perfprim.telemetry._otel import OtelExport, otel_histogram_exporter, register_otel_instruments
from perfprim.telemetry._prometheus import PrometheusCollector, register_prometheus
from perfprim.telemetry._registry import (
    DEFAULT_BUCKETS,
    Exemplar,
    MetricPoint,
    Series,
    SeriesView,
    Source,
    TelemetryRegistry,
    Timer,
    TimerView,
    default_registry,
)
from perfprim.telemetry._sources import cache_stats_points, dataclass_points, slo_points
from perfprim.telemetry._timed import SLORecorder, instrument, timed
from perfprim.telemetry._traced import traced

__all__ = [
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
]
