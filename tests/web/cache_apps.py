"""Test applications for the HTTP response cache middleware: one ASGI, one WSGI.

Both answer what the query asks for, so each test states its response:
``?h=cache-control:max-age=60`` (repeatable) adds a header line,
``?status=503`` sets the status, ``?stream=1`` sends the body in two chunks
of unknown length, ``?raise=1`` raises, ``?sleep=0.05`` waits first,
``?size=N`` sends N bytes. ``app.overrides`` (a dict) adds parameters
without changing the URL (the cache key). The body is JSON with the call number and the
request's ``Accept-Language``; the apps count their calls per path.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl


class Clock:
    """A settable wall clock (epoch seconds)."""

    def __init__(self, now: float = 1_780_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


def _answer(
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    calls: Counter[str],
    overrides: dict[str, str],
) -> tuple[int, list[tuple[str, str]], list[bytes], dict[str, str]]:
    pairs = parse_qsl(query) + list(overrides.items())
    params = dict(pairs)
    lines = [
        (name, value) for key, raw in pairs if key == "h" for name, _, value in [raw.partition(":")]
    ]
    calls[path] += 1
    calls[f"{method} {path}"] += 1
    size = int(params.get("size", "0"))
    if size:
        body = b"x" * size
    else:
        body = json.dumps(
            {
                "call": calls[path],
                "lang": headers.get("accept-language"),
                "inm": headers.get("if-none-match"),
            }
        ).encode()
    lines.insert(0, ("content-type", "application/json"))
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]] if "stream" in params else [body]
    if "stream" not in params:
        lines.append(("content-length", str(len(body))))
    return int(params.get("status", "200")), lines, chunks, params


class AsgiApp:
    """The ASGI test application (HTTP only; lifespan accepted)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seen_headers: list[dict[str, str]] = []
        self.overrides: dict[str, str] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen_headers.append(headers)
        status, lines, chunks, params = _answer(
            scope["method"],
            scope["path"],
            scope["query_string"].decode(),
            headers,
            self.calls,
            self.overrides,
        )
        if "sleep" in params:
            await asyncio.sleep(float(params["sleep"]))
        if "raise" in params:
            raise RuntimeError("the application failed")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(n.encode(), v.encode()) for n, v in lines],
            }
        )
        for i, chunk in enumerate(chunks):
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1}
            )


class WsgiApp:
    """The WSGI test application."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seen_headers: list[dict[str, str]] = []
        self.overrides: dict[str, str] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        self.seen_headers.append(headers)
        status, lines, chunks, params = _answer(
            environ["REQUEST_METHOD"],
            environ["PATH_INFO"],
            environ.get("QUERY_STRING", ""),
            headers,
            self.calls,
            self.overrides,
        )
        if "sleep" in params:
            time.sleep(float(params["sleep"]))
        if "raise" in params:
            raise RuntimeError("the application failed")
        start_response(f"{status} X", lines)
        if "stream" in params:
            return iter(chunks)
        return chunks
