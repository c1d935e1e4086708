"""Django middleware: put ``"perfprim.web.django.MetricsMiddleware"`` first in ``MIDDLEWARE``.

Configured by the ``PERFPRIM_WEB`` setting (a dict of the middleware's
options); needs Django (``pip install 'perfprim[django]'``).
"""

from __future__ import annotations

from perfprim.web._django_metrics import MetricsMiddleware

__all__ = ["MetricsMiddleware"]
