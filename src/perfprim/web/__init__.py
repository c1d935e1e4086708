"""perfprim in a web app: per-route latency, SLOs and ``/metrics`` for ASGI, WSGI and Django.

Framework-free: this package imports no web framework. The middleware live
in one submodule per kind of application, each importing only what it wraps:

- :mod:`perfprim.web.asgi`: ``MetricsMiddleware`` for Starlette, FastAPI and
  any ASGI app;
- :mod:`perfprim.web.wsgi`: ``MetricsMiddleware`` for Flask and any WSGI app;
- :mod:`perfprim.web.django`: ``MetricsMiddleware`` for Django's ``MIDDLEWARE``.

Each also has a ``CacheMiddleware``: the HTTP response cache (RFC 9111) on
the tiered cache, configured by :class:`HttpCachePolicy`
(``docs/http_cache.md``).

Here live the pieces they share: :class:`RouteSLO` (a route's latency and
availability objective) and :func:`client_error` (the ``exclude=``
predicate that keeps 4xx exceptions out of a decorator's SLO). See
``docs/web.md``.
"""

from __future__ import annotations

from perfprim.web._http_cache_policy import HttpCachePolicy
from perfprim.web._metrics_core import (
    CLIENT_DISCONNECT,
    OTHER_METHOD,
    UNMATCHED_ROUTE,
    RouteSLO,
    client_error,
)

__all__ = [
    "CLIENT_DISCONNECT",
    "OTHER_METHOD",
    "UNMATCHED_ROUTE",
    "HttpCachePolicy",
    "RouteSLO",
    "client_error",
]
