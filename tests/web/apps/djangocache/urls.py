"""URLs of the Django cache test project: a product cached by default_ttl."""

from __future__ import annotations

import os

from django.http import HttpRequest, JsonResponse
from django.urls import path

from tests.web.apps.cache_common import count_call, local_sync_cache

CACHE = local_sync_cache()  # memory only: each worker computes its own ETag
PID = str(os.getpid())


def product(request: HttpRequest, product_id: int) -> JsonResponse:
    """A product with no Cache-Control: stored for PERFPRIM_HTTP_CACHE's default_ttl."""
    count_call(request.path)
    response = JsonResponse({"product": product_id})
    response["X-Pid"] = PID
    return response


urlpatterns = [path("products/<int:product_id>", product)]
