"""Echo apps for the hostile-input tests: every answer names the request it was made for.

``asgi`` and ``wsgi`` are the apps behind perfprim's metrics and cache
middleware on a memory cache, for the real servers of
``tests/web/test_hostile_servers.py``; the in-process tests wrap
:class:`EchoAsgi` and :class:`EchoWsgi` themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from perfprim.cache import AsyncTieredCache, MemoryTier, TieredCache
from perfprim.web.asgi import CacheMiddleware as AsgiCache
from perfprim.web.asgi import MetricsMiddleware as AsgiMetrics
from perfprim.web.wsgi import CacheMiddleware as WsgiCache
from perfprim.web.wsgi import MetricsMiddleware as WsgiMetrics

Headers = list[tuple[bytes, bytes]]

#: The response every echo answer carries: shareable, varying on the user's fields, tagged.
VARY = b"Cookie, Accept-Language"


def identity(path: bytes, query: bytes, headers: Headers) -> dict[str, Any]:
    """Who asked, from the raw request: what an answer must have been made for."""
    fields: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        fields.setdefault(name.lower(), []).append(value)

    def field(name: bytes) -> str | None:
        values = fields.get(name)
        return None if values is None else b"; ".join(values).decode("latin-1")

    return {
        "path": path.decode("latin-1"),
        "params": sorted(p for p in query.decode("latin-1").split("&") if p),
        "authorization": field(b"authorization"),
        "cookie": field(b"cookie"),
        "lang": field(b"accept-language"),
    }


def _answer_headers(query: bytes) -> Headers:
    lines: Headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"max-age=60"),
        (b"vary", VARY),
        (b"cache-tag", b"echo"),
    ]
    if b"manyvary" in query:  # a Vary naming hundreds of fields
        lines.append((b"vary", b", ".join(b"x-f%d" % i for i in range(500))))
    return lines


class EchoAsgi:
    """An ASGI app answering every request with its identity (never failing on odd bytes)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls += 1
        path = scope.get("raw_path") or scope["path"].encode("latin-1", "replace")
        body = json.dumps(identity(path, scope["query_string"], scope["headers"])).encode()
        headers = [*_answer_headers(scope["query_string"]), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class EchoWsgi:
    """The WSGI twin of :class:`EchoAsgi`."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        headers = [
            (k[5:].replace("_", "-").lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in environ.items()
            if k.startswith("HTTP_")
        ]
        query = environ.get("QUERY_STRING", "").encode("latin-1")
        raw_uri = environ.get("RAW_URI")  # gunicorn: the target as sent, escapes kept
        path = (raw_uri.split("?", 1)[0] if raw_uri else environ["PATH_INFO"]).encode("latin-1")
        body = json.dumps(identity(path, query, headers)).encode()
        lines = [(n.decode(), v.decode("latin-1")) for n, v in _answer_headers(query)]
        start_response("200 OK", [*lines, ("content-length", str(len(body)))])
        return [body]


asgi = AsgiMetrics(AsgiCache(EchoAsgi(), cache=AsyncTieredCache(MemoryTier(), namespace="h")))
wsgi = WsgiMetrics(WsgiCache(EchoWsgi(), cache=TieredCache(MemoryTier(), namespace="h")))
