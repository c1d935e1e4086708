"""Django middleware: ``"perfprim.web.django.MetricsMiddleware"`` and ``"...CacheMiddleware"``.

- :class:`MetricsMiddleware` (put it first in ``MIDDLEWARE``), configured by the
  ``PERFPRIM_WEB`` setting (a dict of the middleware's options);
- :class:`CacheMiddleware`, the HTTP response cache (RFC 9111) on the
  :class:`~perfprim.cache.TieredCache` named by the ``PERFPRIM_CACHE`` setting,
  with options in ``PERFPRIM_HTTP_CACHE``; :func:`cache_response` is its
  per-view form (``docs/http_cache.md``).

Needs Django (``pip install 'perfprim[django]'``).
"""

from __future__ import annotations

from perfprim.web._django_cache import CacheMiddleware, cache_response
from perfprim.web._django_metrics import MetricsMiddleware

__all__ = ["CacheMiddleware", "MetricsMiddleware", "cache_response"]
