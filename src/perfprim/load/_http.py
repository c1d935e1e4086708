"""The HTTP client behind URL targets: pyqwest (Rust's reqwest/hyper), one pool per run.

Chosen by measurement against aiohttp, aiosonic and httpx
(``benchmarks/bench_load_clients.py``; the figures are in ``docs/load.md``):
what decides a load driver's capacity is how many sends per second it
keeps on time, and in the open loop pyqwest's per-request cost left the
driver on time at rates where aiohttp's left most sends late; httpx was an
order of magnitude behind both under concurrency. pyqwest is young (0.x)
but a thin binding over hyper and reqwest, which are among the most used
and best kept HTTP stacks there are. This module is the only one that
imports it: another client is a change here only.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from perfprim._optional import require
from perfprim.load._engine import Call
from perfprim.load._targets import HttpStatusError, HttpTarget

__all__ = ["http_call"]


@contextlib.asynccontextmanager
async def http_call(target: HttpTarget, *, connections: int, timeout: float) -> AsyncIterator[Call]:
    """Yield a call that sends ``target`` once and reads the whole answer.

    Args:
        target: The request.
        connections: Connections per address, at most (one per request in flight).
        timeout: Seconds for one request, connect to last byte.

    Yields:
        The call; it raises :class:`HttpStatusError` for a status >= 400 and
        the client's ``ConnectionError``/``TimeoutError`` subclasses for
        transport failures.

    Raises:
        MissingDependencyError: If pyqwest is not installed.
    """
    pyqwest = require("pyqwest", package="pyqwest", extra="load", feature="perfprim.load HTTP")
    transport = pyqwest.HTTPTransport(
        timeout=timeout,
        connect_timeout=timeout,
        max_connections_per_address=connections,
        follow_redirects=False,  # measure what was asked; a 3xx is an answer
        enable_gzip=False,  # no decompression work in the driver
        enable_brotli=False,
        enable_zstd=False,
        enable_otel=False,  # no spans or metrics per request
    )
    execute = pyqwest.Client(transport).execute
    method, url, body = target.method, target.url, target.body
    headers = dict(target.headers) or None

    async def call() -> None:
        response = await execute(method, url, headers, body)
        if response.status >= 400:
            raise HttpStatusError(response.status)

    try:
        yield call
    finally:
        await transport.aclose()
