"""WSGI entry point of the Django cache test project."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.web.apps.djangocache.settings")
application = get_wsgi_application()
