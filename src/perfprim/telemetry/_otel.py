"""OpenTelemetry metrics export: observable instruments read the registry at collection time.

Per timer ``<name>`` (dotted, attributes = the timer's labels):

===============================  ====================  ========  =====================
instrument                       kind                  unit      extra attributes
===============================  ====================  ========  =====================
``<name>.calls``                 ObservableCounter     ``{call}``
``<name>.errors``                ObservableCounter     ``{error}`` ``error.type``
``<name>.duration.sum``          ObservableCounter     ``s``
``<name>.duration.bucket``       ObservableCounter     ``{call}`` ``le`` (cumulative)
``<name>.duration.quantile``     ObservableGauge       ``s``     ``quantile``
===============================  ====================  ========  =====================

The OTel API has no asynchronous histogram instrument, so the distribution is
exported as cumulative bucket counters (as Prometheus does) plus quantile
gauges; nothing here is ever an exponential histogram, which the OTel
Prometheus exporter cannot render. Snapshot sources become observable
counters and gauges named after their points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from perfprim._optional import require
from perfprim.telemetry._conventions import ERROR_TYPE, otel_base
from perfprim.telemetry._registry import (
    MetricPoint,
    TelemetryRegistry,
    Timer,
    TimerView,
    default_registry,
)

_FEATURE = "perfprim.telemetry OpenTelemetry metrics"
METER_NAME = "perfprim.telemetry"

_UNITS = {"seconds": "s", "ratio": "1", "": "1"}


def _bound(value: float) -> str:
    return repr(float(value))


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
        base = otel_base(timer.name)
        names = timer.label_names

        def view() -> TimerView:
            return timer.view(copy=False)

        def attrs(labels: tuple[str, ...]) -> dict[str, str]:
            return dict(zip(names, labels, strict=True))

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
