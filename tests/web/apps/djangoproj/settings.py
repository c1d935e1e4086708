"""Django settings of the real-server tests: perfprim's middleware first, no database."""

from __future__ import annotations

from perfprim.web import RouteSLO

SECRET_KEY = "perfprim-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.web.apps.djangoproj.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
MIDDLEWARE = ["perfprim.web.django.MetricsMiddleware"]
USE_TZ = True
PERFPRIM_WEB = {
    "slos": {"/shop/products/<int:product_id>": RouteSLO(threshold=0.2, target=0.99)},
}
LOGGING_CONFIG = None
