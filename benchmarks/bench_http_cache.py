"""What a cached HTTP response costs: perfprim's CacheMiddleware against the caches users pick.

One FastAPI endpoint, ``GET /products/42`` returning a small JSON document
(no ``Cache-Control`` of its own: each cache is told to keep it 1 h), called
in process with a prepared ASGI request (no network), every candidate in
batches interleaved round by round (the load of a shared machine moves
between rounds, not between candidates); per-request time, median of rounds:

- ``uncached``: the endpoint with no cache;
- ``perfprim-l1``: perfprim's ASGI ``CacheMiddleware`` on an
  ``AsyncTieredCache`` whose memory L1 holds the response (a hit);
- ``perfprim-l2``: the same middleware on a cache with no L1, so every hit
  reads the private redis-server (an L2 hit with a cold L1);
- ``fastapi-cache2-memory`` / ``fastapi-cache2-redis``: fastapi-cache2's
  ``@cache`` decorator on the endpoint, ``InMemoryBackend`` / ``RedisBackend``;
- ``cashews``: cashews' ``@cache`` on the endpoint with its FastAPI
  middleware (``CacheRequestControlMiddleware`` + ``CacheEtagMiddleware``),
  in memory.

And a 304 for ``If-None-Match`` with the current ETag: perfprim (L1),
fastapi-cache2 (memory) and cashews. Before timing, each candidate is
checked to answer from its cache (the endpoint is not called again).

Budget (``budgets/http_cache.toml``): a perfprim L1 hit costs <= 0.5x the
cheapest anchor's hit.

End to end: every candidate behind its own uvicorn process, all started at
once, driven in turns at a fixed arrival rate by the bounded client of
``bench_web_metrics.py`` (latency from the planned send time); reported: the
server's CPU time per request (from /proc) and latency percentiles, no
budget (the network stack and the machine's noise dominate).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from perfprim.testing import RedisServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
PATH = "/products/42"
DOCUMENT = {"id": 42, "name": "Ada Lovelace", "price": 1999, "tags": ["a", "b", "c"]}


def _scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"bench"),
            (b"accept", b"*/*"),
            *headers,
        ],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "state": {},
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class _Seen:
    """A send that keeps the last status and headers."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}


async def _discard(message: dict[str, Any]) -> None:
    return None


class Candidate:
    """An ASGI app, the request it is sent, the endpoint's call counter."""

    def __init__(
        self,
        app: Any,
        calls: list[int],
        headers: list[tuple[bytes, bytes]] | None = None,
        before: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.calls = calls
        self.headers = list(headers or [])
        self.before = before

    async def once(self) -> _Seen:
        if self.before is not None:
            self.before()
        seen = _Seen()
        scope = _scope(self.headers)
        await self.app(scope, _receive, seen)
        return seen

    def batch(self, loop: asyncio.AbstractEventLoop, n: int) -> Callable[[], float]:
        app, headers, before = self.app, self.headers, self.before

        async def run_batch() -> None:
            for _ in range(n):
                await app(_scope(headers), _receive, _discard)

        def run() -> float:
            if before is not None:
                before()
            start = time.perf_counter()
            loop.run_until_complete(run_batch())
            return (time.perf_counter() - start) / n

        return run


def _fastapi(calls: list[int], decorate: Callable[[Any], Any] | None = None) -> Any:
    app = FastAPI()

    async def product() -> dict[str, object]:
        calls.append(1)
        return DOCUMENT

    endpoint = decorate(product) if decorate is not None else product
    app.get(PATH)(endpoint)
    return app


def _perfprim(calls: list[int], cache: Any) -> Any:
    from perfprim.web.asgi import CacheMiddleware

    app = _fastapi(calls)
    app.add_middleware(CacheMiddleware, cache=cache, default_ttl=3600)
    return app


def _fastapi_cache2(calls: list[int], backend: Any) -> tuple[Any, Callable[[], None]]:
    from fastapi_cache import FastAPICache
    from fastapi_cache.decorator import cache

    def use() -> None:  # FastAPICache is one global: set this candidate's backend
        FastAPICache.reset()
        FastAPICache.init(backend, prefix="bench")

    use()
    return _fastapi(calls, cache(expire=3600)), use


def _cashews(calls: list[int]) -> Any:
    from cashews import Cache
    from cashews.contrib.fastapi import CacheEtagMiddleware, CacheRequestControlMiddleware

    store = Cache()
    store.setup("mem://")
    app = _fastapi(calls, store(ttl="1h"))
    app.add_middleware(CacheEtagMiddleware, cache_instance=store)
    app.add_middleware(CacheRequestControlMiddleware, cache_instance=store)
    return app


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the Redis-backed candidates."""
    with RedisServer() as server:
        yield server


NAMES = (
    "uncached",
    "perfprim-l1",
    "perfprim-l2",
    "fastapi-cache2-memory",
    "fastapi-cache2-redis",
    "cashews",
)
ANCHORS = ("fastapi-cache2-memory", "fastapi-cache2-redis", "cashews")


def _build(name: str, redis_url: str, closers: list[Callable[[], Any]]) -> Candidate:
    """One candidate app, by name."""
    import redis.asyncio
    from fastapi_cache.backends.inmemory import InMemoryBackend
    from fastapi_cache.backends.redis import RedisBackend

    from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier

    calls: list[int] = []
    if name == "uncached":
        return Candidate(_fastapi(calls), calls)
    if name == "perfprim-l1":
        l1 = AsyncTieredCache(MemoryTier(), namespace="bench-l1")
        closers.append(l1.close)
        return Candidate(_perfprim(calls, l1), calls)
    if name == "perfprim-l2":
        l2 = AsyncTieredCache(AsyncRedisTier.from_url(redis_url), namespace="bench-l2")
        closers.append(l2.close)
        return Candidate(_perfprim(calls, l2), calls)
    if name == "fastapi-cache2-memory":
        app, use = _fastapi_cache2(calls, InMemoryBackend())
        return Candidate(app, calls, before=use)
    if name == "fastapi-cache2-redis":
        client = redis.asyncio.Redis.from_url(redis_url)
        closers.append(client.aclose)
        app, use = _fastapi_cache2(calls, RedisBackend(client))
        return Candidate(app, calls, before=use)
    if name == "cashews":
        return Candidate(_cashews(calls), calls)
    raise ValueError(f"unknown candidate {name!r}")


def server_app() -> Any:
    """Uvicorn factory (``--factory``): the candidate named by ``PERFPRIM_BENCH_CANDIDATE``."""
    candidate = _build(os.environ["PERFPRIM_BENCH_CANDIDATE"], os.environ["REDIS_URL"], [])
    return candidate.app


def _interleave(batches: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Per-request seconds of each candidate, per round; the order rotates each round."""
    for run in batches.values():
        run()
    names = list(batches)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(batches[name]())
    return times


def _check_hits(
    loop: asyncio.AbstractEventLoop, candidates: dict[str, Candidate]
) -> dict[str, str]:
    """Warm every cache; then a request must not reach the endpoint. Returns each ETag."""
    etags: dict[str, str] = {}
    for name, candidate in candidates.items():
        loop.run_until_complete(candidate.once())
        before = len(candidate.calls)
        seen = loop.run_until_complete(candidate.once())
        assert 200 == seen.status, (name, seen.status)
        if name != "uncached":
            assert before == len(candidate.calls), f"{name} did not answer from its cache"
        if "etag" in seen.headers:
            etags[name] = seen.headers["etag"]
    return etags


def test_http_cache_hit_and_304_in_process(
    record_metric: Callable[..., None], request: pytest.FixtureRequest, redis_server: RedisServer
) -> None:
    """A cache hit and a 304: perfprim (L1, L2) against fastapi-cache2 and cashews, interleaved."""
    smoke = bool(request.config.getoption("benchmark_disable", False))
    loop = asyncio.new_event_loop()
    closers: list[Callable[[], Any]] = []
    try:
        candidates = {name: _build(name, redis_server.url, closers) for name in NAMES}
        etags = _check_hits(loop, candidates)
        for name in ("perfprim-l1", "fastapi-cache2-memory", "cashews"):
            assert name in etags, f"{name} sent no ETag"
            base = candidates[name]
            candidates[f"{name}/304"] = Candidate(
                base.app, base.calls, [(b"if-none-match", etags[name].encode())], base.before
            )
            seen = loop.run_until_complete(candidates[f"{name}/304"].once())
            assert 304 == seen.status, (name, seen.status)
        n = 10 if smoke else 200
        batches = {name: c.batch(loop, n) for name, c in candidates.items()}
        times = _interleave(batches, 2 if smoke else 21)
    finally:
        for close in closers:
            loop.run_until_complete(close())
        loop.close()
    us = {name: statistics.median(series) * 1e6 for name, series in times.items()}
    note = "FastAPI GET /products/42 in process; median of interleaved rounds"
    for name, value in us.items():
        record_metric(f"http_cache.inprocess.{name.replace('/', '.')}_us", value, "us", note)
    cheapest = min(us[name] for name in ANCHORS)
    record_metric(
        "http_cache.inprocess.perfprim_l1_hit_over_cheapest_anchor_hit",
        us["perfprim-l1"] / cheapest,
        "x",
        "perfprim L1 hit / the cheapest anchor's hit (budget 0.5)",
    )
    record_metric(
        "http_cache.inprocess.perfprim_l2_hit_over_fastapi_cache2_redis_hit",
        us["perfprim-l2"] / us["fastapi-cache2-redis"],
        "x",
        "perfprim L2 hit (no L1) / fastapi-cache2 Redis hit",
    )
    cheapest_304 = min(us["fastapi-cache2-memory/304"], us["cashews/304"])
    record_metric(
        "http_cache.inprocess.perfprim_304_over_cheapest_anchor_304",
        us["perfprim-l1/304"] / cheapest_304,
        "x",
        "perfprim 304 / the cheapest anchor's 304",
    )
    record_metric(
        "http_cache.inprocess.perfprim_l1_hit_over_uncached",
        us["perfprim-l1"] / us["uncached"],
        "x",
        "perfprim L1 hit / the uncached endpoint",
    )


def test_http_cache_hit_end_to_end(
    record_metric: Callable[..., None],
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    """Every candidate behind uvicorn, driven in turns at a fixed rate: server CPU and latency."""
    import bench_web_metrics as web

    smoke = bool(request.config.getoption("benchmark_disable", False))
    rate = 100.0 if smoke else 300.0
    duration = 0.3 if smoke else 2.0
    rounds = 1 if smoke else 3
    cpu: dict[str, list[float]] = {n: [] for n in NAMES}
    lat: dict[str, list[float]] = {n: [] for n in NAMES}
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                web._server(
                    "asgi",
                    name,
                    tmp_path / f"{name}.log",
                    factory="bench_http_cache:server_app",
                    env_extra={
                        "REDIS_URL": redis_server.url,
                        "PYTHONPATH": os.pathsep.join(
                            [str(ROOT / "benchmarks"), str(ROOT), str(ROOT / "src")]
                        ),
                    },
                )
            )
            for name in NAMES
        }
        for port, _ in servers.values():  # warm up: the first request fills each cache
            asyncio.run(web._fixed_rate(port, 50, 0.2, 2))
        for r in range(rounds):
            for name in NAMES[r % len(NAMES) :] + NAMES[: r % len(NAMES)]:
                port, proc = servers[name]
                before = web._cpu_seconds(proc.pid)
                latencies = asyncio.run(web._fixed_rate(port, rate, duration, 8))
                cpu[name].append((web._cpu_seconds(proc.pid) - before) / len(latencies))
                lat[name].extend(latencies)
    note = f"uvicorn, {rate:g} req/s, {duration:g} s x {rounds} turns, 8 keep-alive connections"
    cpu_us = {name: statistics.median(cpu[name]) * 1e6 for name in NAMES}
    for name in NAMES:
        ordered = sorted(lat[name])
        record_metric(f"http_cache.e2e.{name}.cpu_us_per_request", cpu_us[name], "us", note)
        record_metric(f"http_cache.e2e.{name}.p50_ms", ordered[len(ordered) // 2] * 1e3, "ms", note)
        record_metric(
            f"http_cache.e2e.{name}.p99_ms", ordered[int(len(ordered) * 0.99)] * 1e3, "ms", note
        )
    record_metric(
        "http_cache.e2e.perfprim_l1_cpu_over_cheapest_anchor_cpu",
        cpu_us["perfprim-l1"] / min(cpu_us[name] for name in ANCHORS),
        "x",
        "server CPU per request, perfprim L1 hit / the cheapest anchor's hit (no budget)",
    )
