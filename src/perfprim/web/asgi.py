"""ASGI middleware (Starlette, FastAPI, any ASGI 3 app): ``app.add_middleware(MetricsMiddleware)``.

- :class:`MetricsMiddleware`: per-route latency, SLOs and ``/metrics``
  (``/metrics`` needs ``prometheus-client``: ``pip install 'perfprim[web]'``);
- :class:`CacheMiddleware`: the HTTP response cache (RFC 9111) on an
  :class:`~perfprim.cache.AsyncTieredCache` (``docs/http_cache.md``).

Imports no framework.
"""

from __future__ import annotations

from perfprim.web._asgi_cache import CacheMiddleware
from perfprim.web._asgi_metrics import MetricsMiddleware

__all__ = ["CacheMiddleware", "MetricsMiddleware"]
