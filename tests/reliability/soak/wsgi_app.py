"""The soak's WSGI service: Flask on gunicorn's threaded workers, a TieredCache on Redis.

Behind perfprim's metrics and response-cache middleware.

``gunicorn tests.reliability.soak.wsgi_app:app -k gthread --threads 8 -w 2``
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, request

from perfprim.cache import MemoryTier, RedisTier, TieredCache
from perfprim.exceptions import BackendError
from perfprim.web.wsgi import CacheMiddleware, MetricsMiddleware
from tests.reliability.soak.common import (
    CACHE_TTL,
    INVALIDATE_L1,
    L1_TTL,
    PROBE_KEY,
    Database,
    mark_slow_request,
    process_figures,
    random_item,
    setting,
)

db = Database(setting("SOAK_DB"))
tier = RedisTier.from_url(setting("SOAK_REDIS_URL"))
cache = TieredCache(
    MemoryTier(maxsize=10_000, ttl=L1_TTL),
    tier,
    ttl=CACHE_TTL,
    namespace=setting("SOAK_NAMESPACE"),
    invalidate_l1=INVALIDATE_L1,
)
flask_app = Flask(__name__)


def read_item(number: int) -> Any:
    """The item through the cache (cache-aside over the database)."""
    return cache.get_or_load(f"item:{number}", lambda: db.read(number))


@flask_app.get("/items/any")
def any_item() -> Any:
    """A random item: the steady load."""
    return read_item(random_item())


@flask_app.route("/items/<int:number>", methods=["GET", "POST"])
def item(number: int) -> Any:
    """GET reads an item through the cache; POST writes a new version and invalidates it."""
    if request.method == "POST":
        version = db.bump(number)
        cache.delete(f"item:{number}")
        return {"id": number, "v": version}
    return read_item(number)


@flask_app.get("/redis-ok")
def redis_ok() -> Any:
    """Whether this worker's Redis tier answers now (its circuit breaker included)."""
    try:
        tier.get(PROBE_KEY)
        ok = True
    except BackendError:
        ok = False
    return {"ok": ok, **process_figures()}


@flask_app.get("/slow")
def slow() -> Any:
    """A request that lasts ``seconds`` (5): long enough to kill its worker in the middle of it."""
    mark_slow_request(setting("SOAK_STATE"))
    time.sleep(float(request.args.get("seconds", "5")))
    return {"slow": True}


# The HTTP response cache (issue 13) on the same tiered cache: every GET is looked up there
# first. The item responses carry no freshness of their own, so they are not stored
# (``default_ttl=None``); the lookups still meet every Redis fault.
app = MetricsMiddleware(CacheMiddleware(flask_app.wsgi_app, cache=cache))
