"""The WSGI adapter of the HTTP metrics: Flask, any WSGI application.

It only translates: the status from ``start_response``, the first body chunk
(time to first byte), the end of the body iterable (the last byte: the
server asks for the next chunk only once it wrote the previous one), the
server's ``close()`` (work after the response, such as Flask's
``call_on_close``, is timed apart), a ``close()`` before the end (the client
left) and what the app raised. The route template comes from the matched URL
rule of a Werkzeug request (Flask), read while the app calls
``start_response``, or from a ``route=`` function of the environ; the
decisions are the core's. When the environ shows no routing at that point
(no matched rule and no routing failure: Flask never saw the request because
a response cache answered it, or Flask is done with it because a response
cache calls ``start_response`` after the app returned), the path is matched
against the URL map of the Flask app the middleware wraps, found through the
wrapped apps' ``app`` and bound-method ``__self__`` attributes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

from perfprim.telemetry import TelemetryRegistry, error_type
from perfprim.web._metrics_core import SERVER_ERROR, UNMATCHED_ROUTE, RouteSLO, request_outcome
from perfprim.web._metrics_recorder import DEFAULT_BUCKETS, MetricsRecorder

__all__ = ["MetricsMiddleware"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
RouteOf = Callable[[Mapping[str, Any]], "str | None"]

_now = time.perf_counter_ns
_ERROR_KEY = "perfprim.web.error_type"

_STATUS_CODES: Mapping[str, int] = MappingProxyType(
    {f"{s.value} {phrase}": s.value for s in HTTPStatus for phrase in (s.phrase, s.phrase.upper())}
)
"""Status line -> code for the standard reason phrases (Werkzeug's are upper case): one dict
lookup instead of parsing the code of each response's status line."""


def werkzeug_route(environ: Mapping[str, Any], script_name: str) -> str | None:
    """The matched URL rule of the Werkzeug request in ``environ`` (Flask), mounts included.

    Args:
        environ: The request's environ, while the app handles it.
        script_name: ``SCRIPT_NAME`` when the request reached the middleware;
            what a dispatcher added since is a mount prefix.

    Returns:
        The rule (``/products/<int:product_id>``), or None when no rule matched.
    """
    request = environ.get("werkzeug.request")
    rule = getattr(getattr(request, "url_rule", None), "rule", None)
    if not isinstance(rule, str):
        return None
    mounted = str(environ.get("SCRIPT_NAME", ""))
    prefix = mounted[len(script_name) :] if mounted.startswith(script_name) else ""
    return prefix + rule


def find_url_map(app: Any) -> Any:
    """The Werkzeug URL map of the Flask app that ``app`` wraps (or is), 32 deep; None if none.

    Follows ``app`` attributes (middleware) and ``__self__`` (``flask_app.wsgi_app``).
    """
    seen = 0
    while app is not None and seen < 32:
        url_map = getattr(app, "url_map", None)
        if url_map is not None and callable(getattr(url_map, "bind_to_environ", None)):
            return url_map
        inner = getattr(app, "__self__", None)
        app = inner if inner is not None else getattr(app, "app", None)
        seen += 1
    return None


def url_map_route(url_map: Any, environ: Mapping[str, Any]) -> str | None:
    """The rule of ``url_map`` that the request in ``environ`` matches, or None."""
    try:
        rule, _ = url_map.bind_to_environ(environ).match(return_rule=True)
    except Exception:  # NotFound, MethodNotAllowed, RequestRedirect: no rule
        return None
    template = getattr(rule, "rule", None)
    return template if isinstance(template, str) else None


class _Response:
    """One request as the adapter sees it, and the body iterable handed to the server.

    A list or tuple body is written whole by the server before it calls
    ``close()``, so its end is the ``close()``; any other body is timed by
    the generator in ``__iter__`` (first chunk, exhaustion).
    """

    __slots__ = (
        "body",
        "end",
        "environ",
        "first_byte",
        "method",
        "middleware",
        "recorded",
        "route",
        "script_name",
        "server_start_response",
        "start",
        "status",
    )

    def __init__(
        self,
        environ: Environ,
        start: int,
        middleware: MetricsMiddleware,
        server_start_response: StartResponse,
    ) -> None:
        self.environ = environ
        self.start = start
        self.middleware = middleware
        self.server_start_response = server_start_response
        self.method: str = environ.get("REQUEST_METHOD", "GET")
        self.script_name: str = environ.get("SCRIPT_NAME", "")
        self.status: int | None = None
        self.route: str | None = None
        self.first_byte: int | None = None
        self.end: int | None = None
        self.recorded = False
        self.body: Iterable[bytes] = ()

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        """The ``start_response`` the app calls: notes the status and the route, then the server's.

        A bound method rather than a closure made per request: this runs on
        every request.
        """
        try:
            self.status = _STATUS_CODES.get(status) or int(status[:3])
            middleware = self.middleware
            route_of = middleware.route_of
            environ = self.environ
            if route_of is not None:
                self.route = route_of(environ)
            else:  # werkzeug_route(), inlined
                request = environ.get("werkzeug.request")
                rule = getattr(getattr(request, "url_rule", None), "rule", None)
                if isinstance(rule, str):
                    script_name = self.script_name
                    self.route = (
                        rule
                        if environ.get("SCRIPT_NAME", "") == script_name
                        else werkzeug_route(environ, script_name)
                    )
                elif getattr(request, "routing_exception", None) is None:
                    # No router matched or failed to match: Flask never saw the
                    # request (a cache hit), or it is done with it (a cache
                    # calls start_response after the app returned).
                    self.route = middleware._unrouted(environ)
        except Exception as exc:
            self.middleware.recorder.log_once("reading the route", exc)
        if exc_info is None:
            return self.server_start_response(status, headers)
        return self.server_start_response(status, headers, exc_info)

    def __iter__(self) -> Iterator[bytes]:
        body = self.body
        if type(body) in (list, tuple):
            self.first_byte = _now()
            return iter(body)
        return self._timed(body)

    def _timed(self, body: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for chunk in body:
                if self.first_byte is None:
                    self.first_byte = _now()
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.middleware._done(self, exc, _now(), None)
            raise
        self.end = _now()

    def close(self) -> None:
        closed = _now()
        body = self.body
        if self.end is None and type(body) in (list, tuple):
            self.end = closed
        close = getattr(body, "close", None)
        raised: BaseException | None = None
        try:
            if close is not None:
                close()
        except BaseException as exc:
            raised = exc
            raise
        finally:
            returned = _now()
            end = self.end
            status = self.status
            if (
                raised is None
                and end is not None
                and status is not None
                and status < SERVER_ERROR
                and not self.recorded
            ):
                # MetricsMiddleware._done() for a completed non-5xx response, inlined:
                # this runs on every request.
                self.recorded = True
                recorder = self.middleware.recorder
                try:
                    method = self.method
                    route = self.route or UNMATCHED_ROUTE
                    recorder.request(method, route, status, "", self.start, self.first_byte, end)
                    if returned - closed >= recorder.background_threshold_ns:
                        recorder.after_response(method, route, "", returned - closed)
                except Exception as exc:
                    recorder.log_once("recording a WSGI request", exc)
            else:
                self.middleware._done(self, raised, closed, returned)


class MetricsMiddleware:
    """WSGI middleware: per-route latency, TTFB, SLOs and ``/metrics`` for any WSGI app.

    Records the same metrics as the ASGI middleware
    (``http_server_request_duration_seconds`` with ``http_request_method``,
    ``http_route``, ``http_response_status_code``, ``error_type``; time to
    first byte; work after the response; an ``SLOTracker`` per route with an
    SLO), timed to the last body byte of streamed responses. For Flask the
    route is the URL rule (``/products/<int:product_id>``) and the type of an
    exception Flask turned into a 500 is recorded (the middleware wraps the
    app's ``handle_exception``, which Flask calls only for such exceptions).

    An error in perfprim's own code is logged once and the request goes on;
    the app's exceptions propagate unchanged.

    Args:
        app: The WSGI application (a Flask app or its ``wsgi_app``).
        slos: Route template -> :class:`~perfprim.web.RouteSLO`.
        default_slo: The SLO of every other matched route (None: none).
        metrics_path: Where to serve the Prometheus exposition; None serves nothing.
        route: A function of the environ returning the route template (for
            apps that are not Werkzeug-based), called when the app starts its
            response; None uses the Werkzeug request's URL rule.
        registry: The telemetry registry; the default one if None.
        buckets: Export bucket bounds, seconds (the SLO thresholds are added).
        max_routes: Distinct route labels kept; later ones fold into ``other``.
        background_threshold: Work in ``close()`` after the last body byte is
            recorded when it lasts at least this long (1 ms).
        exemplars: Keep the sampled span active at the end of a request as the
            exemplar of its bucket (None: when a global tracer provider is set).
        prometheus_registry: Serve this ``prometheus_client.CollectorRegistry``.

    Raises:
        ConfigurationError: If an option is invalid.

    Example (Flask)::

        app.wsgi_app = MetricsMiddleware(
            app.wsgi_app,
            slos={"/products/<int:product_id>": RouteSLO(threshold=0.2, target=0.99)},
        )
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        slos: Mapping[str, RouteSLO] | None = None,
        default_slo: RouteSLO | None = None,
        metrics_path: str | None = "/metrics",
        route: RouteOf | None = None,
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
        self.route_of = route
        self._url_map: Any = None
        self._url_map_searched = False
        self._watch_flask(app)

    def _watch_flask(self, app: object) -> None:
        # Flask turns a view's unhandled exception into a 500 itself, in its
        # public handle_exception(); wrapping it notes the exception's type
        # and costs nothing on requests that do not fail (a teardown_request
        # function would be called on every request).
        flask_app: Any = getattr(app, "__self__", app)
        handle = getattr(flask_app, "handle_exception", None)
        if not callable(handle) or not hasattr(flask_app, "wsgi_app"):
            return

        def handle_exception(exc: Exception) -> Any:
            try:
                from flask import request

                request.environ[_ERROR_KEY] = error_type(exc)
            except Exception as error:
                self.recorder.log_once("noting a Flask view's exception", error)
            return handle(exc)

        flask_app.handle_exception = handle_exception

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if (
            self.metrics_path is not None
            and environ.get("PATH_INFO") == self.metrics_path
            and environ.get("REQUEST_METHOD") in ("GET", "HEAD")
        ):
            return self._metrics(environ, start_response)
        response = _Response(environ, _now(), self, start_response)
        try:
            response.body = self.app(environ, response.start_response)
        except BaseException as exc:
            self._done(response, exc, _now(), None)
            raise
        return response

    def _unrouted(self, environ: Environ) -> str | None:
        """The rule of a request no Werkzeug router saw, from the wrapped Flask app's URL map."""
        if not self._url_map_searched:
            self._url_map = find_url_map(self.app)
            self._url_map_searched = True
        url_map = self._url_map
        return None if url_map is None else url_map_route(url_map, environ)

    def _done(
        self,
        response: _Response,
        raised: BaseException | None,
        closed: int,
        returned: int | None,
    ) -> None:
        """Record a request once its body is closed (or the app raised), once."""
        if response.recorded:
            return
        response.recorded = True
        try:
            end = response.end
            status = response.status
            if end is not None and status is not None and status < SERVER_ERROR:
                kind = ""  # request_outcome()'s answer for a completed non-5xx response
            else:
                completed = end is not None
                error = None
                if raised is not None and not completed:
                    error = error_type(raised) if isinstance(raised, Exception) else None
                elif status is not None and status >= 500:
                    error = response.environ.get(_ERROR_KEY)  # noted by Flask's handle_exception
                status, kind = request_outcome(
                    status=status,
                    completed=completed,
                    # close() before the last chunk: the server stopped writing.
                    disconnected=raised is None and not completed,
                    error=error,
                )
            route = response.route or UNMATCHED_ROUTE
            recorder = self.recorder
            recorder.request(
                response.method,
                route,
                status,
                kind,
                response.start,
                response.first_byte,
                closed if end is None else end,
            )
            if returned is not None and end is not None:
                late = error_type(raised) if isinstance(raised, Exception) else ""
                if late or returned - closed >= recorder.background_threshold_ns:
                    recorder.after_response(response.method, route, late, returned - closed)
        except Exception as exc:
            self.recorder.log_once("recording a WSGI request", exc)

    def _metrics(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            body, content_type = self.recorder.render(environ.get("HTTP_ACCEPT", ""))
            status = "200 OK"
        except Exception as exc:
            self.recorder.log_once("rendering /metrics", exc)
            body, content_type = b"perfprim: /metrics failed, see the log\n", "text/plain"
            status = "500 Internal Server Error"
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]

    def prometheus_rules(self, *, service: str, labels: Mapping[str, str] | None = None) -> str:
        """Prometheus rules for the configured route SLOs (see the ASGI middleware's).

        Args:
            service: The service name (label ``slo_service``).
            labels: Extra labels on every rule.

        Returns:
            The rule file, YAML.
        """
        return self.recorder.prometheus_rules(service=service, labels=labels)
