"""The Django CacheMiddleware and cache_response in process (Django's test client).

The cache comes from the settings (``PERFPRIM_CACHE`` as a dotted path), as
in a project; the rules themselves are covered through the ASGI adapter.
"""

from __future__ import annotations

import types
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from perfprim.cache import MemoryTier, TieredCache
from perfprim.exceptions import ConfigurationError
from tests.web.cache_apps import Clock
from tests.web.http_cache_support import cache_status_params

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from perfprim.web.django import CacheMiddleware, cache_response  # noqa: E402

CALLS: Counter[str] = Counter()
CLOCK = Clock()
CACHE = TieredCache(MemoryTier(), namespace="django-http", clock=CLOCK)


def _product(request: Any, product_id: int) -> JsonResponse:
    CALLS[request.path] += 1
    response = JsonResponse({"product": product_id, "call": CALLS[request.path]})
    response["Cache-Control"] = "max-age=60, stale-while-revalidate=30"
    response["Cache-Tag"] = f"product:{product_id}"
    response["Vary"] = "Accept-Language"
    return response


def _login(request: Any) -> HttpResponse:
    CALLS[request.path] += 1
    response = HttpResponse("hello")
    response["Cache-Control"] = "max-age=60"
    response.set_cookie("session", "abc")
    return response


def _edit(request: Any, product_id: int) -> HttpResponse:
    return HttpResponse(status=204)


def _stream(request: Any) -> StreamingHttpResponse:
    CALLS[request.path] += 1
    response = StreamingHttpResponse(iter([b"a", b"b"]))
    response["Cache-Control"] = "max-age=60"
    return response


@cache_response(cache=CACHE, clock=CLOCK)
def _decorated(request: Any) -> HttpResponse:
    CALLS[request.path] += 1
    response = HttpResponse(f"call {CALLS[request.path]}")
    response["Cache-Control"] = "max-age=60"
    return response


URLS = types.ModuleType("perfprim_cache_test_urls")
URLS.urlpatterns = [  # type: ignore[attr-defined]
    path("products/<int:product_id>", _product),
    path("products/<int:product_id>/edit", _edit),
    path("login", _login),
    path("stream", _stream),
    path("decorated", _decorated),
]

if not settings.configured:
    settings.configure(
        ROOT_URLCONF=URLS,
        ALLOWED_HOSTS=["testserver", "127.0.0.1"],
        # what test_web_django_inprocess.py configures, whichever module runs first
        MIDDLEWARE=["perfprim.web.django.MetricsMiddleware"],
        PERFPRIM_WEB={},
        LOGGING_CONFIG=None,
        DEBUG=False,
    )
    django.setup()


def status_of(response: Any) -> dict[str, object]:
    """The Cache-Status parameters (independent parser)."""
    return cache_status_params(((k.lower(), v) for k, v in response.items()))  # type: ignore[arg-type]


@pytest.fixture
def client() -> Iterator[Client]:
    """A test client with the middleware configured through settings."""
    CACHE.clear()
    CALLS.clear()
    with override_settings(
        ROOT_URLCONF=URLS,
        MIDDLEWARE=["perfprim.web.django.CacheMiddleware"],
        PERFPRIM_CACHE="tests.web.test_http_cache_django.CACHE",
        PERFPRIM_HTTP_CACHE={"clock": CLOCK, "paths": ["/products", "/login", "/stream"]},
    ):
        yield Client()


def test_hit_304_vary_and_stale_refresh(client: Client) -> None:
    """Stored, hit, 304, Vary variants, stale served and refreshed in a thread."""
    first = client.get("/products/1", HTTP_ACCEPT_LANGUAGE="en")
    hit = client.get("/products/1", HTTP_ACCEPT_LANGUAGE="en")
    other = client.get("/products/1", HTTP_ACCEPT_LANGUAGE="fr")
    not_modified = client.get(
        "/products/1", HTTP_ACCEPT_LANGUAGE="en", HTTP_IF_NONE_MATCH=first["ETag"]
    )
    assert (1, 2) == (first.json()["call"], other.json()["call"])
    assert (first.content, True) == (hit.content, status_of(hit).get("hit"))
    assert (304, first["ETag"]) == (not_modified.status_code, not_modified["ETag"])
    assert "Cache-Tag" not in first
    CLOCK.advance(70)
    stale = client.get("/products/1", HTTP_ACCEPT_LANGUAGE="en")
    assert "stale-while-revalidate" == status_of(stale)["detail"]


def test_tags_and_unsafe_methods_invalidate(client: Client) -> None:
    """invalidate_tags and a POST with Location retire the stored product."""
    client.get("/products/2")
    CACHE.invalidate_tags("product:2")
    client.get("/products/2")
    assert 2 == CALLS["/products/2"]


def test_set_cookie_is_refused_and_the_cookie_kept(client: Client) -> None:
    """A response setting a cookie is not stored, and the client still gets its cookie."""
    first = client.get("/login")
    client.get("/login")
    assert (2, "set-cookie") == (CALLS["/login"], status_of(first)["detail"])
    assert "abc" == first.cookies["session"].value


def test_streaming_passes_through(client: Client) -> None:
    """A StreamingHttpResponse passes through untouched (not stored)."""
    response = client.get("/stream")
    assert b"ab" == b"".join(response.streaming_content)  # type: ignore[arg-type]
    assert "streaming" == status_of(response)["detail"]


def test_cache_response_decorator_caches_one_view(client: Client) -> None:
    """The per-view form: the decorated view's responses are cached by its own middleware."""
    with override_settings(MIDDLEWARE=[]):
        first = client.get("/decorated")
        second = client.get("/decorated")
    assert (b"call 1", b"call 1") == (first.content, second.content)
    assert status_of(second).get("hit")


def test_missing_or_wrong_cache_setting_fails_fast() -> None:
    """No PERFPRIM_CACHE, an unimportable one, an unknown option: ConfigurationError."""
    with (
        override_settings(PERFPRIM_CACHE=None),
        pytest.raises(ConfigurationError, match="PERFPRIM_CACHE"),
    ):
        CacheMiddleware(lambda r: None)
    with (
        override_settings(PERFPRIM_CACHE="nowhere.cache"),
        pytest.raises(ConfigurationError, match="importable"),
    ):
        CacheMiddleware(lambda r: None)
    with pytest.raises(ConfigurationError, match="unknown"):
        CacheMiddleware(lambda r: None, cache=CACHE, ttl=1)
