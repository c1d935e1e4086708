"""Django settings of the real-server cache tests: the cache middleware, its cache by path."""

from __future__ import annotations

SECRET_KEY = "perfprim-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.web.apps.djangocache.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
MIDDLEWARE = ["perfprim.web.django.CacheMiddleware"]
USE_TZ = True
PERFPRIM_CACHE = "tests.web.apps.djangocache.urls.CACHE"
PERFPRIM_HTTP_CACHE = {"default_ttl": 30}
LOGGING_CONFIG = None
