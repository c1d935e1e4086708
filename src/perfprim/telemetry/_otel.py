"""OpenTelemetry metrics export, two ways, both read the registry at collection time.

The OTel API has no asynchronous histogram instrument. So:

1. :func:`otel_histogram_exporter` wraps a ``MetricExporter`` (OTLP, ...) and
   adds to every export one explicit-bucket cumulative ``Histogram`` per timer
   (``<name>.duration``, unit ``s``, with exemplars) and its ``<name>.errors``
   sum: what an OTel backend expects of a latency metric.
2. :func:`register_otel_instruments` registers observable instruments on a
   meter, for readers you do not control (pull readers, the OTel Prometheus
   exporter). Per timer ``<name>`` (attributes = the timer's labels):

   ===============================  ====================  ===========  ================
   instrument                       kind                  unit         extra attributes
   ===============================  ====================  ===========  ================
   ``<name>.calls``                 ObservableCounter     ``{call}``
   ``<name>.errors``                ObservableCounter     ``{error}``  ``error.type``
   ``<name>.duration.sum``          ObservableCounter     ``s``
   ``<name>.duration.bucket``       ObservableCounter     ``{call}``   ``le`` (cumulative)
   ``<name>.duration.quantile``     ObservableGauge       ``s``        ``quantile``
   ===============================  ====================  ===========  ================

Nothing here is ever an exponential histogram, which the OTel Prometheus
exporter cannot render. Snapshot sources become observable counters and
gauges named after their points.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from perfprim._optional import require
from perfprim.telemetry._conventions import (
    ERROR_TYPE,
    otel_attribute,
    otel_base,
    otel_timer_base,
)
from perfprim.telemetry._registry import (
    MetricPoint,
    TelemetryRegistry,
    Timer,
    TimerView,
    default_registry,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter

_FEATURE = "perfprim.telemetry OpenTelemetry metrics"
METER_NAME = "perfprim.telemetry"

_UNITS = {"seconds": "s", "ratio": "1", "": "1"}


def _bound(value: float) -> str:
    return repr(float(value))


def attributes_of(names: tuple[str, ...], values: tuple[str, ...]) -> dict[str, str]:
    """OTel attributes of a series; an empty ``error.type`` (no error) is left out."""
    attributes = dict(zip(names, values, strict=True))
    if attributes.get(ERROR_TYPE) == "":
        del attributes[ERROR_TYPE]
    return attributes


class OtelExport:
    """The instruments created for one registry on one meter (:func:`register_otel_instruments`)."""

    def __init__(self, registry: TelemetryRegistry, meter: Any, observation: Any) -> None:
        self.registry = registry
        self.meter = meter
        self._observation = observation
        self.instrument_names: list[str] = []
        self._source_names: set[str] = set()

    def _obs(self, value: float, attributes: dict[str, str]) -> Any:
        return self._observation(value, attributes)

    def add_timer(self, timer: Timer) -> None:
        """Create the observable instruments of ``timer``."""
        base = otel_timer_base(timer.name)
        names = tuple(otel_attribute(n) for n in timer.label_names)

        def view() -> TimerView:
            return timer.view(copy=False)

        def attrs(labels: tuple[str, ...]) -> dict[str, str]:
            return attributes_of(names, labels)

        def calls(_options: Any) -> Iterable[Any]:
            return [self._obs(s.histogram.count, attrs(s.labels)) for s in view().series]

        def errors(_options: Any) -> Iterable[Any]:
            return [
                self._obs(n, {**attrs(s.labels), ERROR_TYPE: kind})
                for s in view().series
                for kind, n in sorted(s.errors.items())
            ]

        def total(_options: Any) -> Iterable[Any]:
            return [self._obs(s.total, attrs(s.labels)) for s in view().series]

        def buckets(_options: Any) -> Iterable[Any]:
            out: list[Any] = []
            for s in view().series:
                labels = attrs(s.labels)
                counts = s.histogram.cumulative_counts([*timer.buckets, math.inf])
                for bound, n in zip(timer.buckets, counts, strict=False):
                    out.append(self._obs(n, {**labels, "le": _bound(bound)}))
                out.append(self._obs(counts[-1], {**labels, "le": "+Inf"}))
            return out

        def quantiles(_options: Any) -> Iterable[Any]:
            out: list[Any] = []
            for s in view().series:
                if not s.histogram.count:
                    continue
                values = s.histogram.percentiles([q * 100 for q in timer.quantiles])
                labels = attrs(s.labels)
                out.extend(
                    self._obs(values[q * 100], {**labels, "quantile": repr(q)})
                    for q in timer.quantiles
                )
            return out

        description = timer.description or f"Duration of {timer.name}."
        meter = self.meter
        meter.create_observable_counter(
            f"{base}.calls", [calls], unit="{call}", description=f"Calls of {timer.name}."
        )
        meter.create_observable_counter(
            f"{base}.errors",
            [errors],
            unit="{error}",
            description=f"Errors raised by {timer.name}, by error.type.",
        )
        meter.create_observable_counter(
            f"{base}.duration.sum", [total], unit="s", description=description
        )
        meter.create_observable_counter(
            f"{base}.duration.bucket",
            [buckets],
            unit="{call}",
            description=f"Calls of {timer.name} lasting at most 'le' seconds (cumulative).",
        )
        created = [f"{base}.calls", f"{base}.errors", f"{base}.duration.sum"]
        created.append(f"{base}.duration.bucket")
        if timer.quantiles:
            meter.create_observable_gauge(
                f"{base}.duration.quantile",
                [quantiles],
                unit="s",
                description=f"Quantiles of the duration of {timer.name} (HDR histogram).",
            )
            created.append(f"{base}.duration.quantile")
        self.instrument_names.extend(created)

    def add_points(self, points: Iterable[MetricPoint]) -> None:
        """Create instruments for source points not seen yet."""
        for point in points:
            name = otel_base(point.name)
            if name in self._source_names:
                continue
            self._source_names.add(name)
            callback = self._point_callback(point.name)
            create: Callable[..., Any] = (
                self.meter.create_observable_counter
                if point.kind == "counter"
                else self.meter.create_observable_gauge
            )
            create(
                name,
                [callback],
                unit=_UNITS.get(point.unit, point.unit),
                description=point.description or point.name,
            )
            self.instrument_names.append(name)

    def _point_callback(self, point_name: str) -> Callable[[Any], Iterable[Any]]:
        def observe(_options: Any) -> Iterable[Any]:
            return [
                self._obs(p.value, dict(p.labels))
                for p in self.registry.source_points()
                if p.name == point_name
            ]

        return observe


def register_otel_instruments(
    registry: TelemetryRegistry | None = None,
    *,
    meter_provider: object | None = None,
) -> OtelExport:
    """Export a registry's timers and sources through OTel observable instruments.

    Timers created later are added as they appear; sources are read once now
    to learn their metric names (call again after ``add_source`` to add new
    ones: already registered names are skipped).

    Args:
        registry: The registry to export; :func:`default_registry` if None.
        meter_provider: An OTel ``MeterProvider``; the global one if None.

    Returns:
        The export handle (its ``instrument_names`` lists what was created).

    Raises:
        MissingDependencyError: If ``opentelemetry-api`` is not installed.
    """
    metrics = require(
        "opentelemetry.metrics", package="opentelemetry-api", extra="otel", feature=_FEATURE
    )
    registry = registry if registry is not None else default_registry()
    provider: Any = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    meter = provider.get_meter(METER_NAME)
    export = OtelExport(registry, meter, metrics.Observation)
    for timer in registry.timers():
        export.add_timer(timer)
    registry.on_new_timer(export.add_timer)
    export.add_points(registry.source_points())
    return export


def timer_metrics(views: Iterable[TimerView], *, now_unix_nano: int) -> list[Any]:
    """Build OTel SDK ``Metric`` objects (explicit-bucket histograms and error sums).

    Per timer: ``<name>.duration`` (a cumulative ``Histogram`` in ``s`` with the
    timer's bounds, its min, max and exemplars) and ``<name>.errors`` (a
    monotonic cumulative ``Sum`` by ``error.type``).

    Args:
        views: Timer views (e.g. ``registry.timer_views(copy=False)``).
        now_unix_nano: The collection time.

    Returns:
        The metrics; series without any recorded value are left out.
    """
    export = require(
        "opentelemetry.sdk.metrics.export",
        package="opentelemetry-sdk",
        extra="otel",
        feature=_FEATURE,
    )
    sdk_metrics = require(
        "opentelemetry.sdk.metrics", package="opentelemetry-sdk", extra="otel", feature=_FEATURE
    )
    cumulative = export.AggregationTemporality.CUMULATIVE
    metrics: list[Any] = []
    for view in views:
        base = otel_timer_base(view.name)
        names = tuple(otel_attribute(n) for n in view.label_names)
        start = view.start_time_unix_nano or now_unix_nano
        points = []
        error_points = []
        for series in view.series:
            histogram = series.histogram
            counts = histogram.cumulative_counts([*view.buckets, math.inf])
            count = counts[-1]
            attributes = attributes_of(names, series.labels)
            for kind, n in sorted(series.errors.items()):
                error_points.append(
                    export.NumberDataPoint(
                        attributes={**attributes, ERROR_TYPE: kind},
                        start_time_unix_nano=start,
                        time_unix_nano=now_unix_nano,
                        value=n,
                    )
                )
            if not count:
                continue
            per_bucket = [counts[0]] + [b - a for a, b in itertools.pairwise(counts)]
            exemplars = [
                sdk_metrics.Exemplar(
                    filtered_attributes={},
                    value=e.value,
                    time_unix_nano=int(e.timestamp * 1e9),
                    span_id=int(e.span_id, 16),
                    trace_id=int(e.trace_id, 16),
                )
                for e in series.exemplars
                if e is not None
            ]
            points.append(
                export.HistogramDataPoint(
                    attributes=attributes,
                    start_time_unix_nano=start,
                    time_unix_nano=now_unix_nano,
                    count=count,
                    sum=series.total,
                    bucket_counts=per_bucket,
                    explicit_bounds=list(view.buckets),
                    min=histogram.min,
                    max=histogram.max,
                    exemplars=exemplars,
                )
            )
        if points:
            metrics.append(
                export.Metric(
                    name=f"{base}.duration",
                    description=view.description or f"Duration of {view.name}.",
                    unit="s",
                    data=export.Histogram(data_points=points, aggregation_temporality=cumulative),
                )
            )
        if error_points:
            metrics.append(
                export.Metric(
                    name=f"{base}.errors",
                    description=f"Errors raised by {view.name}, by error.type.",
                    unit="{error}",
                    data=export.Sum(
                        data_points=error_points,
                        aggregation_temporality=cumulative,
                        is_monotonic=True,
                    ),
                )
            )
    return metrics


def with_timer_metrics(metrics_data: Any, registry: TelemetryRegistry) -> Any:
    """Return ``metrics_data`` plus the registry's timers, as the scope ``perfprim.telemetry``."""
    export = require(
        "opentelemetry.sdk.metrics.export",
        package="opentelemetry-sdk",
        extra="otel",
        feature=_FEATURE,
    )
    instrumentation = require(
        "opentelemetry.sdk.util.instrumentation",
        package="opentelemetry-sdk",
        extra="otel",
        feature=_FEATURE,
    )
    metrics = timer_metrics(registry.timer_views(copy=False), now_unix_nano=time.time_ns())
    if not metrics:
        return metrics_data
    scope = export.ScopeMetrics(
        scope=instrumentation.InstrumentationScope(METER_NAME), metrics=metrics, schema_url=""
    )
    resource_metrics = list(metrics_data.resource_metrics)
    if resource_metrics:
        first = resource_metrics[0]
        resource_metrics[0] = export.ResourceMetrics(
            resource=first.resource,
            scope_metrics=[*first.scope_metrics, scope],
            schema_url=first.schema_url,
        )
    else:
        resources = require(
            "opentelemetry.sdk.resources",
            package="opentelemetry-sdk",
            extra="otel",
            feature=_FEATURE,
        )
        resource_metrics.append(
            export.ResourceMetrics(
                resource=resources.Resource.create(), scope_metrics=[scope], schema_url=""
            )
        )
    return export.MetricsData(resource_metrics=resource_metrics)


@functools.cache
def _exporter_class() -> Callable[[MetricExporter, TelemetryRegistry], MetricExporter]:
    export = require(
        "opentelemetry.sdk.metrics.export",
        package="opentelemetry-sdk",
        extra="otel",
        feature=_FEATURE,
    )
    base: type[MetricExporter] = export.MetricExporter

    class HistogramExporter(base):  # type: ignore[misc,valid-type]
        """Adds the registry's timers (explicit-bucket histograms) to every export."""

        def __init__(self, inner: MetricExporter, registry: TelemetryRegistry) -> None:
            super().__init__(
                preferred_temporality=getattr(inner, "_preferred_temporality", None),
                preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
            )
            self.inner = inner
            self.registry = registry

        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
            data = with_timer_metrics(metrics_data, self.registry)
            return self.inner.export(data, timeout_millis=timeout_millis, **kwargs)

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return self.inner.force_flush(timeout_millis=timeout_millis)

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)

    factory: Callable[[MetricExporter, TelemetryRegistry], MetricExporter] = HistogramExporter
    return factory


def otel_histogram_exporter(
    exporter: MetricExporter, registry: TelemetryRegistry | None = None
) -> MetricExporter:
    """Wrap an OTel ``MetricExporter`` so each export also carries the registry's timers.

    The OTel API has no asynchronous histogram, so instead of instruments this
    adds, at every export, one explicit-bucket cumulative ``Histogram`` per
    timer (``<name>.duration``, unit ``s``, the timer's bucket bounds, min,
    max and exemplars) and its ``<name>.errors`` sum, built from the HDR
    histograms at that moment. Never an exponential histogram. Use it with a
    push reader::

        reader = PeriodicExportingMetricReader(otel_histogram_exporter(OTLPMetricExporter()))
        MeterProvider(metric_readers=[reader])

    Choose this or :func:`register_otel_instruments` for a registry, not both
    (both would export ``<name>.errors``).

    Args:
        exporter: The exporter to wrap (OTLP, console, ...).
        registry: The registry to export; :func:`default_registry` if None.

    Returns:
        A ``MetricExporter`` that delegates to ``exporter``.

    Raises:
        MissingDependencyError: If ``opentelemetry-sdk`` is not installed.
    """
    registry = registry if registry is not None else default_registry()
    return _exporter_class()(exporter, registry)
