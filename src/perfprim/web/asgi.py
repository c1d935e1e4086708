"""ASGI middleware (Starlette, FastAPI, any ASGI 3 app): ``app.add_middleware(MetricsMiddleware)``.

Imports no framework; ``/metrics`` needs ``prometheus-client``
(``pip install 'perfprim[web]'``).
"""

from __future__ import annotations

from perfprim.web._asgi_metrics import MetricsMiddleware

__all__ = ["MetricsMiddleware"]
