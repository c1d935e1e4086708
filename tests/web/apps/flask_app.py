"""A Flask app behind perfprim's WSGI middleware, for the real-server tests."""

from __future__ import annotations

import time

from flask import Flask, Response, abort, request

from perfprim.web import RouteSLO
from perfprim.web.wsgi import MetricsMiddleware

app = Flask(__name__)


@app.get("/products/<int:product_id>")
def product(product_id: int) -> dict[str, int]:
    """A product; ``?delay=`` seconds of sleep first."""
    delay = float(request.args.get("delay", "0"))
    if delay:
        time.sleep(delay)
    return {"product": product_id}


@app.get("/boom")
def boom() -> str:
    """A view that raises."""
    raise ValueError("boom")


@app.get("/missing/<thing>")
def missing(thing: str) -> str:
    """A view that aborts with 404."""
    abort(404)


@app.get("/stream")
def stream() -> Response:
    """A 1 s streaming response."""

    def chunks() -> object:
        for i in range(4):
            yield f"chunk {i}\n"
            time.sleep(0.25)

    return Response(chunks(), mimetype="text/plain")


@app.get("/slow-stream")
def slow_stream() -> Response:
    """A 5 s stream, for client disconnects."""

    def chunks() -> object:
        for i in range(50):
            yield f"chunk {i}\n" * 20_000
            time.sleep(0.1)

    return Response(chunks(), mimetype="text/plain")


app.wsgi_app = MetricsMiddleware(  # type: ignore[method-assign]
    app.wsgi_app,
    slos={"/products/<int:product_id>": RouteSLO(threshold=0.2, target=0.99)},
)
