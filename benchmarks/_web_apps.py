"""The apps of the web middleware benchmark: one per candidate, same routes, same work.

ASGI: a FastAPI app with 12 routes, the one measured being
``GET /products/{product_id}`` (a small JSON body). WSGI: the same on Flask
and on Django. ``asgi_app(name)`` / ``wsgi_app(name)`` build the app of a
candidate; the servers of the end-to-end run import ``asgi_app`` /
``wsgi_app`` below, which read the candidate from ``PERFPRIM_BENCH_CANDIDATE``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

ASGI = ("none", "perfprim", "prometheus-fastapi-instrumentator", "starlette-exporter", "otel-asgi")
FLASK = ("flask", "perfprim-flask", "prometheus-flask-exporter")
DJANGO = ("django", "perfprim-django", "django-prometheus")
PATH = "/products/42"


def _fastapi() -> Any:
    from fastapi import FastAPI

    app = FastAPI()
    for i in range(10):

        @app.get(f"/other{i}/{{item_id}}")
        async def other(item_id: int) -> dict[str, int]:
            return {"item": item_id}

    @app.get("/products/{product_id}")
    async def product(product_id: int) -> dict[str, int]:
        return {"product": product_id}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"ok": "yes"}

    return app


class _NoOpSpanExporter:
    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def asgi_app(name: str) -> Any:
    """The FastAPI app of an ASGI candidate."""
    app = _fastapi()
    if name == "none":
        return app
    if name == "perfprim":
        from perfprim.telemetry import TelemetryRegistry
        from perfprim.web import RouteSLO
        from perfprim.web.asgi import MetricsMiddleware

        app.add_middleware(
            MetricsMiddleware,
            registry=TelemetryRegistry(),
            slos={"/products/{product_id}": RouteSLO(threshold=0.2, target=0.99)},
            exemplars=False,
        )
        return app
    if name == "prometheus-fastapi-instrumentator":
        from prometheus_client import CollectorRegistry
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator(registry=CollectorRegistry()).instrument(app)
        return app
    if name == "starlette-exporter":
        from starlette_exporter import PrometheusMiddleware

        app.add_middleware(PrometheusMiddleware, group_paths=True, prefix="bench")
        return app
    if name == "otel-asgi":
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(_NoOpSpanExporter()))  # type: ignore[arg-type]
        return OpenTelemetryMiddleware(
            app, tracer_provider=tracer_provider, meter_provider=MeterProvider()
        )
    raise ValueError(name)


def _flask() -> Any:
    from flask import Flask

    app = Flask(f"bench_{len(_FLASK_APPS)}")
    _FLASK_APPS.append(app)
    for i in range(10):
        app.add_url_rule(f"/other{i}/<int:item_id>", f"other{i}", lambda item_id: {"item": item_id})

    @app.get("/products/<int:product_id>")
    def product(product_id: int) -> dict[str, int]:
        return {"product": product_id}

    return app


_FLASK_APPS: list[Any] = []


def _django_settings() -> None:
    import django
    from django.conf import settings

    from perfprim.telemetry import TelemetryRegistry
    from perfprim.web import RouteSLO

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="bench-only",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=sys.modules[__name__],  # imported as _web_apps or benchmarks._web_apps
            INSTALLED_APPS=[],
            DATABASES={},
            MIDDLEWARE=[],
            USE_TZ=True,
            PERFPRIM_WEB={
                "slos": {"/products/<int:product_id>": RouteSLO(threshold=0.2, target=0.99)},
                "registry": TelemetryRegistry(),
                "exemplars": False,
            },
            LOGGING_CONFIG=None,
        )
        django.setup()


def _django_urls() -> list[Any]:
    from django.http import JsonResponse
    from django.urls import path

    def product(request: Any, product_id: int) -> JsonResponse:
        return JsonResponse({"product": product_id})

    def other(request: Any, item_id: int) -> JsonResponse:
        return JsonResponse({"item": item_id})

    return [
        *(path(f"other{i}/<int:item_id>", other) for i in range(10)),
        path("products/<int:product_id>", product),
    ]


def __getattr__(name: str) -> Any:
    # Django's ROOT_URLCONF reads urlpatterns from this module, lazily.
    if name == "urlpatterns":
        return _django_urls()
    raise AttributeError(name)


def wsgi_app(name: str) -> Any:
    """The WSGI app of a Flask or Django candidate."""
    if name in FLASK:
        app = _flask()
        if name == "perfprim-flask":
            from perfprim.telemetry import TelemetryRegistry
            from perfprim.web import RouteSLO
            from perfprim.web.wsgi import MetricsMiddleware

            app.wsgi_app = MetricsMiddleware(  # type: ignore[method-assign]
                app.wsgi_app,
                registry=TelemetryRegistry(),
                slos={"/products/<int:product_id>": RouteSLO(threshold=0.2, target=0.99)},
                exemplars=False,
            )
        elif name == "prometheus-flask-exporter":
            from prometheus_client import CollectorRegistry
            from prometheus_flask_exporter import PrometheusMetrics

            PrometheusMetrics(app, registry=CollectorRegistry())
        return app
    _django_settings()
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    middleware = {
        "django": [],
        "perfprim-django": ["perfprim.web.django.MetricsMiddleware"],
        "django-prometheus": [
            "django_prometheus.middleware.PrometheusBeforeMiddleware",
            "django_prometheus.middleware.PrometheusAfterMiddleware",
        ],
    }[name]
    with override_settings(MIDDLEWARE=middleware):
        return WSGIHandler()


def _candidate() -> str:
    return os.environ.get("PERFPRIM_BENCH_CANDIDATE", "none")


def __dir__() -> list[str]:
    return ["asgi_app", "wsgi_app"]


def server_asgi_app() -> Any:
    """Uvicorn factory (``--factory``) for the end-to-end run."""
    return asgi_app(_candidate())


def server_wsgi_app() -> Any:
    """Gunicorn entry (``benchmarks._web_apps:server_wsgi_app()``) for the end-to-end run."""
    return wsgi_app(_candidate())
