"""A Starlette app for the load driver's HTTP client tests (served by uvicorn in a subprocess).

Each endpoint exercises one way an HTTP/1.1 answer can be framed; the app
checks what the client sent and answers 400 when it is wrong, so a success
in the driver's counts means the bytes were right both ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

CLIENT_PORTS: set[int] = set()  # the client ports seen: one per connection
BODY = b'{"order": 7, "items": ["a", "b"]}'


def _seen(request: Request) -> None:
    if request.client is not None:
        CLIENT_PORTS.add(request.client.port)


async def plain(request: Request) -> Response:
    """The plain answer, with a length (HEAD: the same headers and no body)."""
    _seen(request)
    return PlainTextResponse("ok")  # HEAD gets the headers with Content-Length: 2 and no body


async def chunked(request: Request) -> Response:
    """A streamed answer with no length: chunked transfer encoding."""
    _seen(request)

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(50):
            yield f"piece {i}\n".encode() * 20
            if i % 10 == 0:
                await asyncio.sleep(0.001)

    return StreamingResponse(pieces(), media_type="text/plain")  # no length: chunked


async def large(request: Request) -> Response:
    """A 1 MB body: many reads for one answer."""
    _seen(request)
    return Response(b"x" * 1_000_000, media_type="application/octet-stream")


async def echo(request: Request) -> Response:
    """200 when method, X-Test header and body are exactly the expected ones, else 400."""
    _seen(request)
    body = await request.body()
    ok = body == BODY and request.headers.get("x-test") == "yes" and request.method == "POST"
    return PlainTextResponse("ok" if ok else "wrong", status_code=200 if ok else 400)


async def close(request: Request) -> Response:
    """An answer that closes its connection (Connection: close)."""
    _seen(request)
    return PlainTextResponse("bye", headers={"Connection": "close"})


async def slow(request: Request) -> Response:
    """An answer after ``s`` seconds (default 5)."""
    await asyncio.sleep(float(request.query_params.get("s", "5")))
    return PlainTextResponse("late")


async def connections(request: Request) -> Response:
    """How many client connections (ports) were seen since the last reset."""
    return PlainTextResponse(str(len(CLIENT_PORTS)))


async def reset(request: Request) -> Response:
    """Forget the connections seen."""
    CLIENT_PORTS.clear()
    return PlainTextResponse("0")


app = Starlette(
    routes=[
        Route("/", plain, methods=["GET", "HEAD"]),
        Route("/chunked", chunked),
        Route("/large", large),
        Route("/echo", echo, methods=["POST"]),
        Route("/close", close),
        Route("/slow", slow),
        Route("/connections", connections),
        Route("/reset", reset),
    ]
)
