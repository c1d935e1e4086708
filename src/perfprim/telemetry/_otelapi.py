"""Lazy access to the OpenTelemetry API, and the per-decorator tracer cache.

Nothing here imports ``opentelemetry`` at module import time: :func:`otel_api`
imports it (through :func:`perfprim._optional.require`) the first time a
decorator needs it.

No-SDK fast path
----------------
``opentelemetry.trace.get_tracer_provider()`` checks ``os.environ`` on every
call while no provider is set, which costs more than the decorated call. The
decorators instead compare the module global that holds the provider
(``opentelemetry.trace._TRACER_PROVIDER``) by identity with the one they saw
last: one attribute load per call. When it changes (an SDK was installed
later) the tracer is looked up again. A test pins that this global exists.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

from perfprim._optional import require
from perfprim.telemetry._conventions import ERROR_TYPE, status_description

TRACER_NAME = "perfprim.telemetry"
SENTINEL: Any = object()


class OtelApi:
    """The OpenTelemetry API objects the decorators use, imported once."""

    __slots__ = (
        "Status",
        "StatusCode",
        "attach",
        "detach",
        "get_current_span",
        "noop_tracer",
        "set_span_in_context",
        "trace",
    )

    def __init__(self) -> None:
        trace: ModuleType = require(
            "opentelemetry.trace", package="opentelemetry-api", extra="otel", feature="@traced"
        )
        context: ModuleType = require(
            "opentelemetry.context", package="opentelemetry-api", extra="otel", feature="@traced"
        )
        self.trace = trace
        self.attach = context.attach
        self.detach = context.detach
        self.set_span_in_context = trace.set_span_in_context
        self.get_current_span = trace.get_current_span
        self.Status = trace.Status
        self.StatusCode = trace.StatusCode
        self.noop_tracer = trace.NoOpTracer


@functools.cache
def otel_api() -> OtelApi:
    """Return the lazily imported OpenTelemetry API (raises MissingDependencyError)."""
    return OtelApi()


class TracerState:
    """The tracer one decorated function uses, refreshed when the global provider changes.

    ``provider`` is the value of ``opentelemetry.trace._TRACER_PROVIDER`` seen
    last; ``tracer`` is ``None`` while no SDK is configured (the fast path).
    """

    __slots__ = ("api", "fixed_provider", "provider", "tracer")

    def __init__(self, api: OtelApi, fixed_provider: Any = None) -> None:
        self.api = api
        self.fixed_provider = fixed_provider
        self.provider: Any = SENTINEL
        self.tracer: Any = None
        if fixed_provider is not None:
            self.tracer = self._tracer_of(fixed_provider)

    def refresh(self, provider: Any) -> None:
        """Record ``provider`` as the current global and pick the tracer to use."""
        if self.fixed_provider is not None:
            self.provider = provider
            return
        if provider is None:
            # No provider set in code; the API may still load one named by the
            # OTEL_PYTHON_TRACER_PROVIDER environment variable, which sets the
            # global (and the next call refreshes).
            resolved = self.api.trace.get_tracer_provider()
            if self.api.trace._TRACER_PROVIDER is not None:
                provider = self.api.trace._TRACER_PROVIDER
                self.tracer = self._tracer_of(resolved)
            else:
                self.tracer = None
        else:
            self.tracer = self._tracer_of(provider)
        self.provider = provider

    def _tracer_of(self, provider: Any) -> Any:
        tracer = provider.get_tracer(TRACER_NAME)
        if isinstance(tracer, self.api.noop_tracer):
            return None
        return tracer


def record_error(api: OtelApi, span: Any, exc: BaseException, error_type: str) -> None:
    """Mark ``span`` failed by ``exc`` per the OTel conventions.

    Sets ``error.type``, adds the ``exception`` event and sets status ERROR
    with a description.
    """
    span.set_attribute(ERROR_TYPE, error_type)
    span.record_exception(exc)
    span.set_status(api.Status(api.StatusCode.ERROR, status_description(exc)))
