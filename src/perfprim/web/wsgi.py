"""WSGI middleware (Flask, any WSGI app): ``app.wsgi_app = MetricsMiddleware(app.wsgi_app)``.

- :class:`MetricsMiddleware`: per-route latency, SLOs and ``/metrics``
  (``/metrics`` needs ``prometheus-client``: ``pip install 'perfprim[web]'``);
- :class:`CacheMiddleware`: the HTTP response cache (RFC 9111) on a
  :class:`~perfprim.cache.TieredCache` (``docs/http_cache.md``).

Imports no framework.
"""

from __future__ import annotations

from perfprim.web._wsgi_cache import CacheMiddleware
from perfprim.web._wsgi_metrics import MetricsMiddleware

__all__ = ["CacheMiddleware", "MetricsMiddleware"]
