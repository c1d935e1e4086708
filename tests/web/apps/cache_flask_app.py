"""A Flask app behind perfprim's WSGI CacheMiddleware, for the real-server cache tests."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, request

from perfprim.web.wsgi import CacheMiddleware
from tests.web.apps.cache_common import count_call, local_sync_cache, sync_cache

app = Flask(__name__)
PID = str(os.getpid())


@app.get("/products/<int:product_id>")
def product(product_id: int) -> Response:
    """A product for 60 s, varying on Accept-Language; ``?sleep=`` seconds first."""
    count_call(request.path)
    time.sleep(float(request.args.get("sleep", "0")))
    response = Response(
        f'{{"product": {product_id}, "lang": "{request.headers.get("Accept-Language")}"}}',
        mimetype="application/json",
    )
    response.headers["Cache-Control"] = "max-age=60"
    response.headers["Vary"] = "Accept-Language"
    response.headers["X-Pid"] = PID
    return response


@app.post("/products/<int:product_id>")
def edit(product_id: int) -> Response:
    """An edit: invalidates the product's URL."""
    return Response(status=204)


@app.get("/private")
def private() -> Response:
    """Sets a cookie: never stored."""
    count_call(request.path)
    response = Response("mine")
    response.headers["Cache-Control"] = "max-age=60"
    response.set_cookie("session", "abc")
    return response


@app.get("/local/<name>")
def local(name: str) -> Response:
    """The same body in every worker; X-Pid says which worker made it."""
    response = Response(f'{{"name": "{name}"}}', mimetype="application/json")
    response.headers["Cache-Control"] = "max-age=60"
    response.headers["X-Pid"] = PID
    return response


_shared = CacheMiddleware(
    app.wsgi_app, cache=sync_cache(), paths=lambda p: not p.startswith("/local")
)
app.wsgi_app = CacheMiddleware(_shared, cache=local_sync_cache(), paths=["/local"])  # type: ignore[method-assign]
