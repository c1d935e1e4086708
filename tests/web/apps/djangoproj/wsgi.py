"""WSGI entry point of the Django test project."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.web.apps.djangoproj.settings")
application = get_wsgi_application()
