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

import itertools
import logging
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

logger = logging.getLogger("perfprim.telemetry")
_CLASHES: set[str] = set()


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
        # A timer that carries error_type as a label (the HTTP request
        # duration) records errors in its series, not in a separate counter.
        count_errors = PROMETHEUS_ERROR_TYPE not in labels
        errors = core.CounterMetricFamily(
            f"{base}_errors",
            f"Errors raised by {view.name}, by error type.",
            labels=[*labels, PROMETHEUS_ERROR_TYPE] if count_errors else labels,
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
            if count_errors:
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


def unique_families(families: Iterable[Any]) -> Iterator[Any]:
    """Yield each family name once; a second family of a taken name is dropped and logged once.

    Prometheus rejects an exposition that repeats a family (``# TYPE`` twice),
    so a clash (a source point named like a timer) must not break the scrape.
    """
    seen: set[str] = set()
    for family in families:
        if family.name in seen:
            if family.name not in _CLASHES:
                _CLASHES.add(family.name)
                logger.warning(
                    "perfprim: two metric families are named %r; the second is dropped. "
                    "Rename one of the timers or sources",
                    family.name,
                )
            continue
        seen.add(family.name)
        yield family


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
        """Yield the metric families (called by prometheus_client on every scrape).

        While a :class:`MultiProcessWriter` runs for the registry in this
        process, this writes the process's own file first and yields the
        merge of every worker's file (timers and shared sources) plus the
        registry's local sources: each family once, never the in-process
        timers beside their merged copy.
        """
        writer = self.registry.multiprocess_writer
        if writer is None:
            families: Iterable[Any] = itertools.chain(
                timer_families(self.registry.timer_views(copy=False), namespace=self.namespace),
                point_families(self.registry.source_points(), namespace=self.namespace),
            )
        else:
            from perfprim.telemetry._multiprocess import merged_families

            writer.flush()
            families = merged_families(
                writer.directory, registry=self.registry, namespace=self.namespace
            )
        yield from unique_families(families)

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
