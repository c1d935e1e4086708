"""Which HTTP client perfprim.load uses: candidates side by side on loopback (issue 14).

Each candidate runs a closed loop of 32 concurrent requests against the
loopback server for a few seconds, in one process pinned to one CPU (the
server on the other), on the event loop perfprim.load runs (uvloop where
installed); rounds interleave the candidates so that they see the same
machine load. Figures: requests per second, and ratios to aiohttp. The
candidates are aiohttp, httpx, aiosonic, pyqwest (Rust's reqwest and hyper,
perfprim.load's client before it had its own) and perfprim.load's own.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from _load_support import DRIVER_CPU, SERVER_CPU, pinned, short_mode
from perfprim.load._run import run_event_loop
from perfprim.load.testing import LoopbackServer

CONCURRENCY = 32
Factory = Callable[
    [str], Awaitable[tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]]]
]


async def aiohttp_client(url: str) -> tuple[Any, Any]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def call() -> None:
        async with session.get(url) as r:
            await r.read()

    return call, session.close


async def httpx_client(url: str) -> tuple[Any, Any]:
    import httpx

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    client = httpx.AsyncClient(limits=limits)

    async def call() -> None:
        (await client.get(url)).read()

    return call, client.aclose


async def aiosonic_client(url: str) -> tuple[Any, Any]:
    import aiosonic

    client = aiosonic.HTTPClient(
        aiosonic.TCPConnector(pool_configs={":default": {"size": CONCURRENCY * 2}})
    )

    async def call() -> None:
        await (await client.get(url)).content()

    return call, client.aclose


async def perfprim_client(url: str) -> tuple[Any, Any]:
    from perfprim.load import HttpTarget
    from perfprim.load._http import HttpClient

    client = HttpClient(HttpTarget(url), timeout=10.0)
    return client.call, client.aclose


async def pyqwest_client(url: str) -> tuple[Any, Any]:
    import pyqwest

    transport = pyqwest.HTTPTransport(enable_otel=False, enable_gzip=False)
    client = pyqwest.Client(transport)

    async def call() -> None:
        (await client.get(url)).content  # noqa: B018

    return call, transport.aclose


CANDIDATES: dict[str, Factory] = {
    "perfprim (perfprim.load)": perfprim_client,
    "pyqwest": pyqwest_client,
    "aiohttp": aiohttp_client,
    "aiosonic": aiosonic_client,
    "httpx": httpx_client,
}


async def closed_rate(factory: Factory, url: str, seconds: float) -> float:
    call, close = await factory(url)
    for _ in range(20):
        await call()
    n = 0
    end = time.perf_counter() + seconds

    async def user() -> None:
        nonlocal n
        while time.perf_counter() < end:
            await call()
            n += 1

    began = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - began
    await close()
    return n / elapsed


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.timeout(900)
def test_http_client_candidates(
    request: pytest.FixtureRequest, record_metric: Callable[..., None]
) -> None:
    """Requests/s per core of each async client against the same loopback server."""
    short = short_mode(request)
    seconds, rounds = (0.3, 1) if short else (3.0, 3)
    rates: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    with LoopbackServer(cpu=SERVER_CPU) as server, pinned(DRIVER_CPU):
        for _ in range(rounds):
            for name, factory in CANDIDATES.items():
                rates[name].append(run_event_loop(closed_rate(factory, server.url, seconds)))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    note = f"closed loop, {CONCURRENCY} concurrent, {seconds} s x {rounds} interleaved rounds"
    for name, rate in medians.items():
        key = name.split(" ")[0]
        record_metric(f"load.clients.{key}.req_per_s", round(rate), "req/s", note)
        record_metric(
            f"load.clients.{key}.over_aiohttp", round(rate / medians["aiohttp"], 2), "x", note
        )
    assert all(rate > 0 for rate in medians.values())


class _Aiohttp:
    """aiohttp as a coroutine target for perfprim.load.run.

    The session opens lazily on run()'s own event loop and is left to the
    garbage collector when that loop ends (hence the ignored warnings).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.session: Any = None

    async def __call__(self) -> None:
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        async with self.session.get(self.url) as r:
            await r.read()
            r.raise_for_status()


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_http_client_in_the_open_loop(
    request: pytest.FixtureRequest, record_metric: Callable[..., None]
) -> None:
    """Late sends of the open-loop driver at a fixed rate: its own client vs aiohttp."""
    from perfprim.load import Stage, run

    short = short_mode(request)
    rate, seconds, rounds = (200, 0.3, 1) if short else (5000, 4.0, 3)
    late: dict[str, list[float]] = {"perfprim": [], "aiohttp": []}
    with LoopbackServer(cpu=SERVER_CPU) as server, pinned(DRIVER_CPU):
        for _ in range(rounds):
            for name, fractions in late.items():
                target: Any = server.url if name == "perfprim" else _Aiohttp(server.url)
                result = run(target, stages=[Stage(seconds, rate)], progress=False)
                fractions.append(result.late_fraction)
    note = f"open loop, {rate} req/s for {seconds} s, one core, {rounds} interleaved rounds"
    for name, fractions in late.items():
        record_metric(
            f"load.clients.open_loop.{name}.late_percent",
            round(100 * statistics.median(fractions), 2),
            "%",
            note,
        )
    assert all(0.0 <= f <= 1.0 for fs in late.values() for f in fs)
