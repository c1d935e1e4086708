"""The HTTP client behind URL targets: aiohttp, one pooled session per run.

Chosen by measurement (``benchmarks/bench_load_clients.py``, figures in
``docs/load.md``): on loopback aiohttp completed several times more
requests per second per core than httpx's ``AsyncClient`` and about as many
as aiosonic, and it is the most used and longest maintained asyncio client.
This module is the only one that imports it, so another client is a change
here only.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from perfprim._optional import require
from perfprim.load._engine import Call
from perfprim.load._targets import HttpStatusError, HttpTarget

__all__ = ["http_call"]


@contextlib.asynccontextmanager
async def http_call(
    target: HttpTarget, *, connections: int, timeout: float
) -> AsyncIterator[Call]:
    """Yield a call that sends ``target`` once and reads the whole answer.

    Args:
        target: The request.
        connections: Connection pool size (one per request in flight).
        timeout: Seconds for one request, connect to last byte.

    Yields:
        The call; it raises :class:`HttpStatusError` for a status >= 400 and
        aiohttp's exceptions for transport failures.

    Raises:
        MissingDependencyError: If aiohttp is not installed.
    """
    aiohttp = require("aiohttp", package="aiohttp", extra="load", feature="perfprim.load HTTP")
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=0, ttl_dns_cache=None)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        auto_decompress=False,
    )
    request = session.request
    method, url, headers, body = target.method, target.url, target.headers or None, target.body

    async def call() -> None:
        async with request(method, url, headers=headers, data=body) as response:
            await response.read()
            if response.status >= 400:
                raise HttpStatusError(response.status)

    try:
        yield call
    finally:
        await session.close()
