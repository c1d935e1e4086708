"""The Django adapter of the HTTP metrics: a ``MIDDLEWARE`` entry, sync and async.

It only translates: the route is ``request.resolver_match.route`` (the full
pattern, ``include()`` prefixes joined), the status the response's, the
exception type the one Django hands to ``process_exception`` (Django turns
it into a 500 itself), the end of the request the server's
``response.close()``, which both the WSGI and the ASGI handler call after the
last body byte. A request Django's resolver never saw (a response cache
answered it before the URLconf ran) is resolved here with
``django.urls.resolve``, so a cache hit is labelled with its route too. The
decisions are the core's. Configuration: the
``PERFPRIM_WEB`` setting, a dict of the options of
:class:`perfprim.web.asgi.MetricsMiddleware` (``slos``, ``default_slo``,
``metrics_path``, ``registry``, ...).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from perfprim._optional import require
from perfprim.telemetry import default_registry, error_type
from perfprim.web._metrics_core import SERVER_ERROR, UNMATCHED_ROUTE, request_outcome
from perfprim.web._metrics_recorder import MetricsRecorder

__all__ = ["MetricsMiddleware"]

_now = time.perf_counter_ns
_ERROR = "_perfprim_error_type"

_FEATURE = "perfprim.web.django.MetricsMiddleware"

_RECORDERS: dict[int, MetricsRecorder] = {}
_RECORDERS_LOCK = threading.Lock()


def _recorder(options: dict[str, Any]) -> MetricsRecorder:
    # Django may build its handler (and so this middleware) more than once in
    # a process; one recorder per registry keeps one SLO tracker per route.
    registry = options.get("registry") or default_registry()
    with _RECORDERS_LOCK:
        recorder = _RECORDERS.get(id(registry))
        if recorder is None or recorder.registry is not registry:
            recorder = MetricsRecorder(**{**options, "registry": registry})
            _RECORDERS[id(registry)] = recorder
        return recorder


_MAX_ROUTE_LABELS = 10_000  # route patterns come from the URLconf; a bound all the same


def _route(request: Any) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:  # Django's resolver never ran (a cache hit) or matched nothing
        match = _resolve(request)
    route = getattr(match, "route", None)
    if not isinstance(route, str):
        return UNMATCHED_ROUTE
    return route if route.startswith("/") else "/" + route


def _resolve(request: Any) -> Any:
    """Resolve the request's path as Django would (its URLconf), or None when nothing matches."""
    try:
        from django.urls import resolve

        return resolve(request.path_info, getattr(request, "urlconf", None))
    except Exception:  # Resolver404, or a broken URLconf: no route
        return None


class MetricsMiddleware:
    """Django middleware: per-route latency, SLOs and ``/metrics`` (put it first in ``MIDDLEWARE``).

    Records the metrics of :class:`perfprim.web.asgi.MetricsMiddleware`
    (``http_server_request_duration_seconds`` by ``http_request_method``,
    ``http_route`` such as ``/products/<int:product_id>``,
    ``http_response_status_code`` and ``error_type``; time to first byte; an
    ``SLOTracker`` per route with an SLO), timed to the server's
    ``response.close()``, after the last body byte (streaming responses
    included). Works under WSGI and ASGI. A view's exception keeps Django's
    handling (a 500 page, or 404 for ``Http404``) and its type is recorded.

    Options come from the ``PERFPRIM_WEB`` setting, for example::

        PERFPRIM_WEB = {
            "slos": {"/products/<int:product_id>": RouteSLO(threshold=0.2, target=0.99)},
            "metrics_path": "/metrics",
        }

    Args:
        get_response: The next handler (Django passes it).

    Raises:
        MissingDependencyError: If Django is not installed.
        ConfigurationError: If an option of ``PERFPRIM_WEB`` is invalid.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        conf = require("django.conf", package="django", extra="django", feature=_FEATURE)
        asgiref = require("asgiref.sync", package="django", extra="django", feature=_FEATURE)
        options = dict(getattr(conf.settings, "PERFPRIM_WEB", {}) or {})
        self.metrics_path: str | None = options.pop("metrics_path", "/metrics")
        self.recorder = _recorder(options)
        self.get_response = get_response
        # Django route pattern -> http_route label (a leading "/" added)
        self._route_labels: dict[str, str] = {}
        self.is_async = bool(asgiref.iscoroutinefunction(get_response))
        if self.is_async:
            asgiref.markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        metrics_path = self.metrics_path  # _is_scrape(), inlined: this runs on every request
        if (
            metrics_path is not None
            and request.path_info == metrics_path
            and request.method in ("GET", "HEAD")
        ):
            return self._metrics(request)
        start = _now()
        try:
            response = self.get_response(request)
        except Exception as exc:
            self._raised(request, exc, start)
            raise
        self._watch(request, response, start)
        return response

    async def _acall(self, request: Any) -> Any:
        if self._is_scrape(request):
            return self._metrics(request)
        start = _now()
        try:
            response = await self.get_response(request)
        except Exception as exc:
            self._raised(request, exc, start)
            raise
        self._watch(request, response, start)
        return response

    def process_exception(self, request: Any, exception: Exception) -> None:
        """Note the type of a view's exception (Django then answers 500 as usual)."""
        try:
            setattr(request, _ERROR, error_type(exception))
        except Exception as exc:
            self.recorder.log_once("noting a view's exception", exc)

    def _is_scrape(self, request: Any) -> bool:
        return (
            self.metrics_path is not None
            and request.path_info == self.metrics_path
            and request.method in ("GET", "HEAD")
        )

    def _raised(self, request: Any, exc: Exception, start: int) -> None:
        try:
            status, kind = request_outcome(
                status=None, completed=False, disconnected=False, error=error_type(exc)
            )
            end = _now()
            self.recorder.request(request.method, _route(request), status, kind, start, None, end)
        except Exception as error:
            self.recorder.log_once("recording a Django request", error)

    def _watch(self, request: Any, response: Any, start: int) -> None:
        """Wrap ``response.close`` to record the request when the server closes the response."""
        try:
            first_byte = _now()
            seen: dict[str, bool] | None = None  # a response that is not streamed needs no flag
            if getattr(response, "streaming", False):
                seen = {"exhausted": False}
                if not getattr(response, "is_async", False):
                    response.streaming_content = _exhausting(response.streaming_content, seen)
            response.close = _RecordOnClose(self, request, response, start, first_byte, seen)
        except Exception as exc:
            self.recorder.log_once("watching a Django response", exc)

    def _metrics(self, request: Any) -> Any:
        http = require("django.http", package="django", extra="django", feature=_FEATURE)
        try:
            body, content_type = self.recorder.render(request.headers.get("Accept", ""))
            status = 200
        except Exception as exc:
            self.recorder.log_once("rendering /metrics", exc)
            body, content_type, status = (
                b"perfprim: /metrics failed, see the log\n",
                "text/plain",
                500,
            )
        if request.method == "HEAD":
            body = b""
        return http.HttpResponse(body, content_type=content_type, status=status)

    def prometheus_rules(self, *, service: str) -> str:
        """Prometheus rules for the configured route SLOs (see the ASGI middleware's).

        Args:
            service: The service name (label ``slo_service``).

        Returns:
            The rule file, YAML.
        """
        return self.recorder.prometheus_rules(service=service)


class _RecordOnClose:
    """A response's ``close``: calls the original, then records the request (once).

    The response holds this object and this object the response: a reference
    cycle that would leave the response, its request and what they hold (40
    objects a request) to the cyclic garbage collector. The first call takes
    it off the response, which breaks the cycle (and a second ``close()`` does
    not record the request again). It runs on every request: the recording
    is inlined, no helper calls.
    """

    __slots__ = ("first_byte", "middleware", "original", "request", "response", "seen", "start")

    def __init__(  # noqa: PLR0917 - one per request: positional arguments are cheaper
        self,
        middleware: MetricsMiddleware,
        request: Any,
        response: Any,
        start: int,
        first_byte: int,
        seen: dict[str, bool] | None,
    ) -> None:
        self.middleware = middleware
        self.request = request
        self.response = response
        self.original: Callable[[], None] = response.close
        self.start = start
        self.first_byte = first_byte
        self.seen = seen

    def __call__(self) -> None:
        closed = _now()
        try:
            self.original()
        finally:
            request = self.request
            response = self.response
            middleware = self.middleware
            try:
                if response.close is self:
                    del response.close
            except Exception as exc:
                middleware.recorder.log_once("unwrapping a Django response's close()", exc)
            try:
                status = response.status_code
                seen = self.seen
                completed = seen is None or seen["exhausted"]
                if completed and status < SERVER_ERROR:
                    kind = ""  # request_outcome()'s answer for a completed non-5xx response
                else:
                    status, kind = request_outcome(
                        status=status,
                        completed=completed,
                        disconnected=not completed,
                        error=getattr(request, _ERROR, None),
                    )
                # _route(), its common case inlined: a dict of the labels seen
                labels = middleware._route_labels
                match = getattr(request, "resolver_match", None)
                route = getattr(match, "route", None) if match is not None else None
                label = labels.get(route) if route.__class__ is str else None
                if label is None:
                    label = _route(request)
                    if route.__class__ is str and len(labels) < _MAX_ROUTE_LABELS:
                        labels[route] = label
                middleware.recorder.request(
                    request.method, label, status, kind, self.start, self.first_byte, closed
                )
            except Exception as exc:
                middleware.recorder.log_once("recording a Django request", exc)


def _exhausting(content: Any, seen: dict[str, bool]) -> Iterator[bytes]:
    yield from content
    seen["exhausted"] = True
