"""Where the adapters' measurements go: timers, per-route SLO trackers and ``/metrics``.

One :class:`MetricsRecorder` per middleware. The adapters hand it plain
values (method, route template, status, error type, nanosecond times); it
records them into a :class:`perfprim.telemetry.TelemetryRegistry`, so every
exporter (Prometheus, OpenMetrics with exemplars, OpenTelemetry, the pre-fork
merge) serves them with no code of its own:

=======================================  ===========================================
timer (OTel name)                        Prometheus family, labels
=======================================  ===========================================
``http.server.request.duration``         ``http_server_request_duration_seconds``:
                                         ``http_request_method``, ``http_route``,
                                         ``http_response_status_code``, ``error_type``
``http.server.time_to_first_byte``       ``http_server_time_to_first_byte_seconds``
                                         (same labels)
``http.server.background.duration``      ``http_server_background_duration_seconds``:
                                         ``http_request_method``, ``http_route``,
                                         ``error_type``
``http.server.websocket.duration``       ``http_server_websocket_duration_seconds``:
                                         ``http_route``, ``error_type``
=======================================  ===========================================

Per route with an SLO: an ``SLOTracker`` exported as the SLO source
``http.server.slo`` labelled ``http_route`` (``http_server_slo_sli_ratio``,
``..._burn_rate{window}``, ..., and the counters Prometheus rules read,
``http_server_slo_events_total`` and ``http_server_slo_bad_events_total``).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from perfprim._durations import to_seconds
from perfprim._optional import require
from perfprim.exceptions import ConfigurationError
from perfprim.telemetry import PrometheusCollector, TelemetryRegistry, default_registry
from perfprim.web._metrics_core import UNMATCHED_ROUTE, RouteSLO, method_label

__all__ = ["DEFAULT_BUCKETS", "MetricsRecorder"]

logger = logging.getLogger("perfprim.web")

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
"""The OpenTelemetry HTTP semantic conventions' advice for ``http.server.request.duration``."""

REQUEST_DURATION = "http.server.request.duration"
TIME_TO_FIRST_BYTE = "http.server.time_to_first_byte"
BACKGROUND_DURATION = "http.server.background.duration"
WEBSOCKET_DURATION = "http.server.websocket.duration"
SLO_SOURCE = "http.server.slo"

_METHOD = "http_request_method"
_ROUTE = "http_route"
_STATUS = "http_response_status_code"
_ERROR = "error_type"

_MAX_ENTRIES = 10_000


class _Entry:
    """What one (method, route, status, error) records into, resolved once."""

    __slots__ = ("duration", "series", "threshold_ns", "track", "ttfb", "verdict")

    def __init__(
        self,
        series: Any,
        ttfb: Any,
        track: Callable[[bool], None] | None,
        verdict: bool,
        threshold_ns: int,
    ) -> None:
        self.series = series
        self.duration: Callable[[int], None] = series.record_ns
        self.ttfb: Callable[[int], None] = ttfb.record_ns
        self.track = track
        self.verdict = verdict  # False: the status alone makes the request bad
        self.threshold_ns = threshold_ns


def _otel_trace() -> Any:
    try:
        if importlib.util.find_spec("opentelemetry") is None:
            return None
    except (ImportError, ValueError):  # pragma: no cover - broken installs
        return None
    from opentelemetry import trace

    return trace


class MetricsRecorder:
    """Records what the adapters measured; serves ``/metrics``.

    Args:
        slos: Route template -> :class:`RouteSLO`.
        default_slo: The SLO of every other matched route, or None.
        registry: The telemetry registry; :func:`perfprim.telemetry.default_registry` if None.
        buckets: Export bucket bounds in seconds (the routes' thresholds are added).
        max_routes: Distinct ``http_route`` values kept; later ones fold into ``other``.
        background_threshold: Work the app does after the last body byte
            (BackgroundTasks) is recorded when it lasts at least this long.
        exemplars: Keep the active sampled span as each bucket's exemplar:
            None (default) when OpenTelemetry is installed and a global tracer
            provider is set; True / False to force.
        prometheus_registry: Serve this ``prometheus_client.CollectorRegistry``
            at ``/metrics`` (perfprim's collector is registered into it); a
            private one if None.

    Raises:
        ConfigurationError: If an option is invalid.
    """

    def __init__(
        self,
        *,
        slos: Mapping[str, RouteSLO] | None = None,
        default_slo: RouteSLO | None = None,
        registry: TelemetryRegistry | None = None,
        buckets: Sequence[float | timedelta] = DEFAULT_BUCKETS,
        max_routes: int = 100,
        background_threshold: float | timedelta = 0.001,
        exemplars: bool | None = None,
        prometheus_registry: object | None = None,
    ) -> None:
        given: object = slos
        if given is not None and not isinstance(given, Mapping):
            msg = "slos must map route templates to RouteSLO, e.g. {'/users/{id}': RouteSLO(...)}"
            raise ConfigurationError(msg)
        self.slos: dict[str, RouteSLO] = dict(slos or {})
        given_slos: list[tuple[str, object]] = [*self.slos.items(), ("default_slo", default_slo)]
        for route, slo in given_slos:
            if slo is not None and not isinstance(slo, RouteSLO):
                msg = f"the SLO of {route!r} must be a perfprim.web.RouteSLO, got {slo!r}"
                raise ConfigurationError(msg)
        self.default_slo = default_slo
        self.max_routes = max_routes
        self.registry = registry if registry is not None else default_registry()
        thresholds = {s.threshold for s in [*self.slos.values(), default_slo] if s is not None}
        bounds = sorted({to_seconds(b, name="buckets") for b in buckets} | thresholds)
        self.background_threshold_ns = int(
            to_seconds(background_threshold, name="background_threshold", allow_zero=True) * 1e9
        )
        labels = (_METHOD, _ROUTE, _STATUS, _ERROR)
        timer = self.registry.timer
        common: dict[str, Any] = {"buckets": bounds, "max_label_values": max_routes}
        self.duration = timer(
            REQUEST_DURATION,
            description="Duration of HTTP server requests, to the last body byte sent.",
            label_names=labels,
            **common,
        )
        self.ttfb = timer(
            TIME_TO_FIRST_BYTE,
            description="Time from an HTTP request's arrival to its response's first byte.",
            label_names=labels,
            **common,
        )
        self.background = timer(
            BACKGROUND_DURATION,
            description="Work an app did after sending the response (BackgroundTasks).",
            label_names=(_METHOD, _ROUTE, _ERROR),
            **common,
        )
        self.websocket = timer(
            WEBSOCKET_DURATION,
            description="Duration of WebSocket sessions, from the handshake to the close.",
            label_names=(_ROUTE, _ERROR),
            **common,
        )
        self._entries: dict[tuple[str, str, int, str], _Entry] = {}
        self._routes: dict[str, Any] = {}
        self._routes_lock = threading.Lock()
        self._logged: set[str] = set()
        trace = _otel_trace() if exemplars is not False else None
        self._trace = trace
        self._always_exemplars = exemplars is True
        if exemplars is True and trace is None:
            require(
                "opentelemetry.trace",
                package="opentelemetry-api",
                extra="otel",
                feature="exemplars",
            )
        self._prometheus_registry = prometheus_registry
        self._collector: PrometheusCollector | None = None
        for route in self.slos:
            self._route_slo(route)

    # -- the hot path -------------------------------------------------------

    def request(  # noqa: PLR0917 - the hot path: positional arguments are cheaper
        self,
        method: str,
        route: str,
        status: int,
        error: str,
        start_ns: int,
        first_byte_ns: int | None,
        end_ns: int,
    ) -> None:
        """Record one HTTP request.

        Args:
            method: The method as received (folded into ``_OTHER`` if unknown).
            route: The route template, or :data:`UNMATCHED_ROUTE`.
            status: The status recorded (see ``request_outcome``).
            error: The error type, ``""`` for none.
            start_ns: ``perf_counter_ns()`` when the request arrived.
            first_byte_ns: When the response's first byte was sent, or None.
            end_ns: When its last body byte was sent (or the request ended).
        """
        key = (method, route, status, error)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entry(key)
        elapsed = end_ns - start_ns
        entry.duration(elapsed)
        if first_byte_ns is not None:
            entry.ttfb(first_byte_ns - start_ns)
        track = entry.track
        if track is not None:
            track(entry.verdict and elapsed <= entry.threshold_ns)
        trace = self._trace
        if trace is not None and (self._always_exemplars or trace._TRACER_PROVIDER is not None):
            context = trace.get_current_span().get_span_context()
            if context.trace_flags & 1:
                entry.series.exemplar(elapsed, context.trace_id, context.span_id)

    def after_response(self, method: str, route: str, error: str, duration_ns: int) -> None:
        """Record the app's work after the last body byte (adapters call it past the threshold).

        Args:
            method: The request's method.
            route: The route template.
            error: The error type of an exception raised by that work, ``""`` for none.
            duration_ns: From the last body byte to the app's return.
        """
        self.background.series_at((error, method_label(method), route)).record_ns(duration_ns)

    def websocket_session(self, route: str, error: str, duration_ns: int) -> None:
        """Record one WebSocket session (never an HTTP request).

        Args:
            route: The route template.
            error: The error type, ``""`` for a normal close.
            duration_ns: From the connection's arrival to its end.
        """
        self.websocket.series_at((error, route)).record_ns(duration_ns)

    # -- slow paths -------------------------------------------------------------

    def _entry(self, key: tuple[str, str, int, str]) -> _Entry:
        method, route, status, error = key
        given = {_ERROR: error, _METHOD: method_label(method), _ROUTE: route, _STATUS: str(status)}
        values = tuple(given[name] for name in self.duration.label_names)
        series = self.duration.series_at(values)
        ttfb = self.ttfb.series_at(values)
        track: Callable[[bool], None] | None = None
        verdict = True
        threshold_ns = 0
        slo = self.slo_for(route)
        if slo is not None:
            tracker = self._route_slo(route)
            if tracker is not None:
                track = tracker.record
                verdict = status not in slo.bad_status
                threshold_ns = slo.threshold_ns()
        entry = _Entry(series, ttfb, track, verdict, threshold_ns)
        if len(self._entries) < _MAX_ENTRIES:
            self._entries[key] = entry
        return entry

    def slo_for(self, route: str) -> RouteSLO | None:
        """The SLO of a route template: its own, else ``default_slo`` (None when unmatched)."""
        if route == UNMATCHED_ROUTE:
            return None
        return self.slos.get(route, self.default_slo)

    def _route_slo(self, route: str) -> Any:
        if route in self._routes:
            return self._routes[route]
        slo = self.slo_for(route)
        with self._routes_lock:
            if route in self._routes:
                return self._routes[route]
            tracker = None
            # default_slo routes are bounded like the route label
            if slo is not None and (route in self.slos or len(self._routes) < self.max_routes):
                from perfprim.slo import SLOTracker

                tracker = SLOTracker(slo.latency_slo())
                self.registry.add_slo(SLO_SOURCE, tracker, labels={_ROUTE: route})
            self._routes[route] = tracker
            return tracker

    def tracker(self, route: str) -> Any:
        """The ``SLOTracker`` of a route template (None if the route has no SLO)."""
        return self._route_slo(route)

    def log_once(self, where: str, exc: BaseException) -> None:
        """Log an error of perfprim's own code once per place; the request goes on."""
        if where in self._logged:
            return
        self._logged.add(where)
        logger.error(
            "perfprim.web: %s failed; the request proceeds unmeasured (logged once)",
            where,
            exc_info=exc,
        )

    # -- /metrics ---------------------------------------------------------------

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition for a scrape: OpenMetrics (with exemplars) if asked for, else text.

        Args:
            accept: The request's ``Accept`` header (``""`` if none).

        Returns:
            ``(body, content_type)``.

        Raises:
            MissingDependencyError: If ``prometheus-client`` is not installed.
        """
        exposition = require(
            "prometheus_client.exposition",
            package="prometheus-client",
            extra="web",
            feature="perfprim.web /metrics",
        )
        registry = self._scrape_registry()
        encoder, content_type = exposition.choose_encoder(accept)
        return encoder(registry), content_type

    def _scrape_registry(self) -> Any:
        if self._collector is None:
            with self._routes_lock:
                if self._collector is None:
                    prometheus: Any = self._prometheus_registry
                    if prometheus is None:
                        registry_module = require(
                            "prometheus_client.registry",
                            package="prometheus-client",
                            extra="web",
                            feature="perfprim.web /metrics",
                        )
                        prometheus = self._prometheus_registry = registry_module.CollectorRegistry(
                            auto_describe=False
                        )
                    collector = PrometheusCollector(self.registry)
                    prometheus.register(collector)
                    self._collector = collector
        return self._prometheus_registry

    def prometheus_rules(self, *, service: str, labels: Mapping[str, str] | None = None) -> str:
        """Prometheus recording and alerting rules for every configured route SLO, as YAML.

        One rule group pair per route of ``slos`` (the ``default_slo``'s routes
        are not known in advance), from the counters
        ``http_server_slo_bad_events_total`` and
        ``http_server_slo_events_total`` of that route: the SRE Workbook's
        multiwindow burn-rate alerts (see :meth:`perfprim.slo.SLO.prometheus_rules`),
        each rule labelled ``slo_service``, ``slo`` (the route) and ``http_route``.

        Args:
            service: The service name (label ``slo_service``).
            labels: Extra labels on every rule.

        Returns:
            The rule file, YAML (check it with ``promtool check rules``).

        Raises:
            MissingDependencyError: If PyYAML is not installed.
        """
        yaml = require("yaml", package="pyyaml", extra="yaml", feature="prometheus_rules")
        groups: list[Any] = []
        for route, slo in self.slos.items():
            selector = f'{{{_ROUTE}="{_escape(route)}"}}'
            text = slo.latency_slo().prometheus_rules(
                service=service,
                name=route,
                total=f"http_server_slo_events_total{selector}",
                errors=f"http_server_slo_bad_events_total{selector}",
                labels={**(labels or {}), _ROUTE: route},
            )
            groups.extend(yaml.safe_load(text)["groups"])
        out: str = yaml.safe_dump({"groups": groups}, sort_keys=False, width=10_000)
        return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
