"""URLs of the Django test project: an include() prefix, a 404, a failing view, a stream."""

from __future__ import annotations

import time

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import include, path


def product(request: HttpRequest, product_id: int) -> JsonResponse:
    """A product; ``?delay=`` seconds of sleep first."""
    delay = float(request.GET.get("delay", "0"))
    if delay:
        time.sleep(delay)
    return JsonResponse({"product": product_id})


def boom(request: HttpRequest) -> HttpResponse:
    """A view that raises."""
    raise ValueError("boom")


def missing(request: HttpRequest, thing: str) -> HttpResponse:
    """A view that raises Http404."""
    raise Http404(thing)


def stream(request: HttpRequest) -> StreamingHttpResponse:
    """A 1 s streaming response (4 chunks, 0.25 s apart)."""

    def chunks() -> object:
        for i in range(4):
            yield f"chunk {i}\n"
            time.sleep(0.25)

    return StreamingHttpResponse(chunks(), content_type="text/plain")


shop = [path("products/<int:product_id>", product)]

urlpatterns = [
    path("shop/", include(shop)),
    path("boom", boom),
    path("missing/<str:thing>", missing),
    path("stream", stream),
]
