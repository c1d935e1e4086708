"""The ASGI adapter of the HTTP metrics: Starlette, FastAPI, any ASGI 3 application.

It only translates: it notes when the response starts and when its last body
byte is sent, whether the client left, and what the app raised; the
decisions are the core's (:mod:`perfprim.web._metrics_core`) and the records
the recorder's. No framework is imported.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from datetime import timedelta
from typing import Any

from perfprim.telemetry import TelemetryRegistry, error_type
from perfprim.web._asgi_routes import RouteResolver
from perfprim.web._metrics_core import RouteSLO, request_outcome
from perfprim.web._metrics_recorder import DEFAULT_BUCKETS, MetricsRecorder

__all__ = ["MetricsMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_now = time.perf_counter_ns


class _Exchange:
    """What the send and receive wrappers saw of one request."""

    __slots__ = ("disconnected", "end", "first_byte", "status")

    def __init__(self) -> None:
        self.status: int | None = None
        self.first_byte: int | None = None
        self.end: int | None = None
        self.disconnected = False


class MetricsMiddleware:
    """ASGI middleware: per-route latency, TTFB, SLOs and ``/metrics`` for any ASGI app.

    Records ``http.server.request.duration`` (Prometheus
    ``http_server_request_duration_seconds``) with the OpenTelemetry HTTP
    labels ``http_request_method``, ``http_route`` (the route template, mounts
    included), ``http_response_status_code`` and ``error_type``; the time to
    the first byte; the work done after the response (BackgroundTasks) in its
    own histogram; WebSocket sessions in theirs; and, per route with an SLO,
    an ``SLOTracker``. The duration ends when the last body byte is sent, so a
    streaming response is timed to its end.

    An error in perfprim's own code is logged once and the request goes on;
    the app's exceptions propagate unchanged (recorded as 500 with their
    type).

    Args:
        app: The ASGI application to wrap.
        slos: Route template -> :class:`~perfprim.web.RouteSLO`.
        default_slo: The SLO of every other matched route (None: none).
        metrics_path: Where to serve the Prometheus exposition (OpenMetrics
            with exemplars when the scraper asks for it); None serves nothing.
            Scrapes are not recorded as requests.
        registry: The telemetry registry; the default one if None.
        buckets: Export bucket bounds, seconds (the SLO thresholds are added).
        max_routes: Distinct route labels kept; later ones fold into ``other``.
        background_threshold: Work after the last body byte is recorded in
            ``http_server_background_duration_seconds`` when it lasts at least
            this long (1 ms).
        exemplars: Keep the sampled span active at the end of a request as the
            exemplar of its bucket (None: when a global tracer provider is set).
        prometheus_registry: Serve this ``prometheus_client.CollectorRegistry``
            (perfprim's collector is registered into it).

    Raises:
        ConfigurationError: If an option is invalid.

    Example (FastAPI or Starlette)::

        app.add_middleware(
            MetricsMiddleware,
            slos={"/products/{product_id}": RouteSLO(threshold=0.2, target=0.99)},
        )
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        slos: Mapping[str, RouteSLO] | None = None,
        default_slo: RouteSLO | None = None,
        metrics_path: str | None = "/metrics",
        registry: TelemetryRegistry | None = None,
        buckets: Sequence[float | timedelta] = DEFAULT_BUCKETS,
        max_routes: int = 100,
        background_threshold: float | timedelta = 0.001,
        exemplars: bool | None = None,
        prometheus_registry: object | None = None,
    ) -> None:
        self.app = app
        self.recorder = MetricsRecorder(
            slos=slos,
            default_slo=default_slo,
            registry=registry,
            buckets=buckets,
            max_routes=max_routes,
            background_threshold=background_threshold,
            exemplars=exemplars,
            prometheus_registry=prometheus_registry,
        )
        self.metrics_path = metrics_path
        self.routes = RouteResolver(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["path"] == self.metrics_path and scope["method"] in ("GET", "HEAD"):
                await self._metrics(scope, send)
                return
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:  # lifespan and extensions pass through
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = _now()
        exchange = _Exchange()

        async def send_wrapper(message: Message) -> None:
            kind = message["type"]
            try:
                await send(message)
            except OSError:  # ASGI 2.4: a write on a closed connection
                exchange.disconnected = True
                raise
            if kind == "http.response.start":
                exchange.status = message["status"]
                exchange.first_byte = _now()
            elif kind == "http.response.body":
                if not message.get("more_body", False):
                    exchange.end = _now()
            elif kind == "http.response.pathsend":
                exchange.end = _now()

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                exchange.disconnected = True
            return message

        raised: BaseException | None = None
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except BaseException as exc:
            raised = exc
            raise
        finally:
            returned = _now()
            try:
                self._record(scope, exchange, start, returned, raised)
            except Exception as exc:
                self.recorder.log_once("recording an HTTP request", exc)

    def _record(
        self,
        scope: Scope,
        exchange: _Exchange,
        start: int,
        returned: int,
        raised: BaseException | None,
    ) -> None:
        end = exchange.end
        completed = end is not None
        if raised is not None and not isinstance(raised, Exception):
            # Cancelled before the end: the server gave up on a client that left.
            exchange.disconnected = exchange.disconnected or not completed
        error = None if raised is None or not isinstance(raised, Exception) else error_type(raised)
        status, kind = request_outcome(
            status=exchange.status,
            completed=completed,
            disconnected=exchange.disconnected,
            error=error,
        )
        route = self.routes.resolve(scope)
        method = scope["method"]
        recorder = self.recorder
        recorder.request(
            method,
            route,
            status,
            kind,
            start,
            exchange.first_byte,
            returned if end is None else end,
        )
        if end is not None:
            late = error if error is not None and status < 500 else ""
            if late or returned - end >= recorder.background_threshold_ns:
                recorder.after_response(method, route, late, returned - end)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = _now()
        error = ""
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            error = error_type(exc)
            raise
        finally:
            try:
                route = self.routes.resolve(scope)
                self.recorder.websocket_session(route, error, _now() - start)
            except Exception as exc:
                self.recorder.log_once("recording a WebSocket session", exc)

    async def _metrics(self, scope: Scope, send: Send) -> None:
        accept = ""
        for name, value in scope.get("headers", ()):
            if name == b"accept":
                accept = value.decode("latin-1")
        try:
            body, content_type = await asyncio.get_running_loop().run_in_executor(
                None, self.recorder.render, accept
            )
            status = 200
        except Exception as exc:
            self.recorder.log_once("rendering /metrics", exc)
            body, content_type, status = (
                b"perfprim: /metrics failed, see the log\n",
                "text/plain",
                500,
            )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode("latin-1")),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    def prometheus_rules(self, *, service: str, labels: Mapping[str, str] | None = None) -> str:
        """Prometheus recording and alerting rules for the configured route SLOs, as YAML.

        One group pair per route of ``slos``, read from the counters
        ``http_server_slo_events_total`` and ``http_server_slo_bad_events_total``
        of the route (see :meth:`perfprim.slo.SLO.prometheus_rules`).

        Args:
            service: The service name (label ``slo_service``).
            labels: Extra labels on every rule.

        Returns:
            The rule file, YAML.
        """
        return self.recorder.prometheus_rules(service=service, labels=labels)
