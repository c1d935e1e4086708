"""Telemetry decorators and exporters: spans, latency histograms and error counts.

- :func:`traced`: one OpenTelemetry span per call; a fast path when no SDK is
  configured.
- :func:`timed`: a latency distribution (an HDR histogram) and error counts
  per call, aggregated in process and exported at collection time.
- :func:`instrument`: both in one wrapper.
- :class:`TelemetryRegistry`: where timers and snapshot sources live;
  :func:`default_registry` is the one the decorators use unless told.
- :class:`PrometheusCollector`, :func:`register_otel_instruments`: the exporters.

``import perfprim.telemetry`` imports neither ``opentelemetry`` nor
``prometheus_client``; they are imported when a feature needs them.
"""

from __future__ import annotations

from perfprim.telemetry._cardinality import CardinalityWarning, LabelGuard
from perfprim.telemetry._traced import traced

__all__ = [
    "CardinalityWarning",
    "LabelGuard",
    "traced",
]
