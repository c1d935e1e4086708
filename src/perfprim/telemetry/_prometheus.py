"""Prometheus export: a custom collector that reads the registry at scrape time.

Per timer ``<name>`` (label values as given, ``error.type`` as ``error_type``):

- ``<name>_seconds`` histogram (``_bucket``, ``_sum``, ``_count``), buckets
  from the HDR histogram at the timer's bounds; in OpenMetrics output each
  bucket carries the latest exemplar (``trace_id``, ``span_id``) recorded in
  a sampled span;
- ``<name>_errors_total{error_type}`` counter;
- ``<name>_quantiles_seconds`` summary (``quantile`` samples from the HDR
  histogram, plus ``_sum``/``_count``) when the timer asks for quantiles.

Snapshot sources become counters (``_total``) and gauges, suffixed with their
unit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any, cast

from perfprim._optional import require
from perfprim.telemetry._conventions import (
    PROMETHEUS_ERROR_TYPE,
    prometheus_base,
    prometheus_seconds,
)
from perfprim.telemetry._registry import (
    MetricPoint,
    TelemetryRegistry,
    TimerView,
    default_registry,
)

_FEATURE = "perfprim.telemetry Prometheus export"


def _prom() -> tuple[Any, Any, Any]:
    core = require(
        "prometheus_client.core", package="prometheus-client", extra="prometheus", feature=_FEATURE
    )
    samples = require(
        "prometheus_client.samples",
        package="prometheus-client",
        extra="prometheus",
        feature=_FEATURE,
    )
    utils = require(
        "prometheus_client.utils", package="prometheus-client", extra="prometheus", feature=_FEATURE
    )
    return core, samples, utils


def _prefixed(namespace: str, name: str) -> str:
    return f"{namespace}_{name}" if namespace else name


def timer_families(views: Iterable[TimerView], *, namespace: str = "") -> Iterator[Any]:
    """Yield prometheus_client metric families for timer views.

    Args:
        views: Timer views (from a registry or merged from worker files).
        namespace: A prefix joined with ``_``.

    Yields:
        ``HistogramMetricFamily``, ``CounterMetricFamily`` and
        ``GaugeMetricFamily`` objects.
    """
    core, samples, utils = _prom()
    exemplar_cls = samples.Exemplar
    sample_cls = samples.Sample
    go = utils.floatToGoString
    for view in views:
        hist_name = prometheus_seconds(_prefixed(namespace, view.name))
        base = hist_name.removesuffix("_seconds")
        labels = list(view.label_names)
        histogram = core.HistogramMetricFamily(
            hist_name,
            view.description or f"Duration of {view.name}.",
            labels=labels,
            unit="seconds",
        )
        errors = core.CounterMetricFamily(
            f"{base}_errors",
            f"Errors raised by {view.name}, by error type.",
            labels=[*labels, PROMETHEUS_ERROR_TYPE],
        )
        quantiles = core.SummaryMetricFamily(
            f"{base}_quantiles_seconds",
            f"Quantiles of the duration of {view.name} since start (HDR histogram).",
            labels=labels,
            unit="seconds",
        )
        bounds = [go(b) for b in view.buckets] + ["+Inf"]
        for series in view.series:
            snap = series.histogram
            # One call, one set of prefix sums: the buckets and +Inf (= count)
            # agree even while other threads keep recording.
            cumulative = snap.cumulative_counts([*view.buckets, math.inf])
            count = cumulative[-1]
            buckets: list[tuple[Any, ...]] = []
            for bound, value, exemplar in zip(bounds, cumulative, series.exemplars, strict=True):
                if exemplar is None:
                    buckets.append((bound, value))
                else:
                    buckets.append(
                        (
                            bound,
                            value,
                            exemplar_cls(
                                {"trace_id": exemplar.trace_id, "span_id": exemplar.span_id},
                                exemplar.value,
                                exemplar.timestamp,
                            ),
                        )
                    )
            label_values = list(series.labels)
            histogram.add_metric(label_values, buckets, series.total)
            for kind, n in sorted(series.errors.items()):
                errors.add_metric([*label_values, kind], n)
            if view.quantiles and count:
                values = snap.percentiles([q * 100 for q in view.quantiles])
                label_map = dict(zip(labels, label_values, strict=True))
                quantiles.samples.extend(
                    sample_cls(quantiles.name, {**label_map, "quantile": go(q)}, values[q * 100])
                    for q in view.quantiles
                )
                quantiles.add_metric(label_values, count, series.total)
        yield histogram
        if errors.samples:
            yield errors
        if quantiles.samples:
            yield quantiles


def point_families(points: Iterable[MetricPoint], *, namespace: str = "") -> Iterator[Any]:
    """Yield prometheus_client families for snapshot-source points.

    Counters are named ``<name>[_<unit>]_total``, gauges ``<name>[_<unit>]``.

    Args:
        points: Points from :meth:`TelemetryRegistry.source_points`.
        namespace: A prefix joined with ``_``.

    Yields:
        ``CounterMetricFamily`` and ``GaugeMetricFamily`` objects.
    """
    core, _, _ = _prom()
    families: dict[tuple[str, str], Any] = {}
    for point in points:
        name = prometheus_base(_prefixed(namespace, point.name))
        if point.unit and not name.endswith(f"_{point.unit}"):
            name = f"{name}_{point.unit}"
        key = (name, point.kind)
        family = families.get(key)
        if family is None:
            cls = core.CounterMetricFamily if point.kind == "counter" else core.GaugeMetricFamily
            family = cls(
                name,
                point.description or point.name,
                labels=[k for k, _ in point.labels],
                unit=point.unit,
            )
            families[key] = family
        family.add_metric([v for _, v in point.labels], point.value)
    yield from families.values()


class PrometheusCollector:
    """A prometheus_client collector reading a :class:`TelemetryRegistry` at scrape time.

    Register it with ``prometheus_client.REGISTRY.register(collector)`` or use
    :func:`register_prometheus`. Each scrape copies each histogram once and
    computes the buckets from it; nothing happens per call.

    Args:
        registry: The registry to export; :func:`default_registry` if None.
        namespace: A prefix joined to every metric name with ``_``.
    """

    def __init__(self, registry: TelemetryRegistry | None = None, *, namespace: str = "") -> None:
        _prom()  # fail now, with the pip command, if prometheus_client is missing
        self.registry = registry if registry is not None else default_registry()
        self.namespace = prometheus_base(namespace) if namespace else ""

    def collect(self) -> Iterator[Any]:
        """Yield the metric families (called by prometheus_client on every scrape)."""
        yield from timer_families(self.registry.timer_views(copy=False), namespace=self.namespace)
        yield from point_families(self.registry.source_points(), namespace=self.namespace)

    def describe(self) -> list[Any]:
        """Return no descriptions: the metrics appear as timers are created."""
        return []


def register_prometheus(
    registry: TelemetryRegistry | None = None,
    *,
    prometheus_registry: object | None = None,
    namespace: str = "",
) -> PrometheusCollector:
    """Create a :class:`PrometheusCollector` and register it.

    Args:
        registry: The telemetry registry to export; :func:`default_registry` if None.
        prometheus_registry: A ``prometheus_client.CollectorRegistry``; the
            global ``prometheus_client.REGISTRY`` if None.
        namespace: A prefix joined to every metric name with ``_``.

    Returns:
        The registered collector (``unregister`` it to stop exporting).

    Raises:
        MissingDependencyError: If ``prometheus-client`` is not installed.
    """
    collector = PrometheusCollector(registry, namespace=namespace)
    if prometheus_registry is None:
        prometheus_registry = require(
            "prometheus_client", package="prometheus-client", extra="prometheus", feature=_FEATURE
        ).REGISTRY
    cast("Any", prometheus_registry).register(collector)
    return collector
