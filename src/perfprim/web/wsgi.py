"""WSGI middleware (Flask, any WSGI app): ``app.wsgi_app = MetricsMiddleware(app.wsgi_app)``.

Imports no framework; ``/metrics`` needs ``prometheus-client``
(``pip install 'perfprim[web]'``).
"""

from __future__ import annotations

from perfprim.web._wsgi_metrics import MetricsMiddleware

__all__ = ["MetricsMiddleware"]
