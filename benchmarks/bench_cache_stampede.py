"""Stampede experiments (issue 4): loads per stampede, across threads, tasks and processes.

Experiment 1: 100 threads, and 100 asyncio tasks, miss one key at once; the
loader sleeps 50 ms. Loads are counted for perfprim and its peers.
Experiment 2: 5 processes x 10 callers on one key with Redis as L2; loads,
wall time and Redis commands (``INFO commandstats`` on a throwaway server).
Experiment 3: see ``bench_cache_stampede_storm.py``.

All results go through ``record_metric``; limits are in
``benchmarks/budgets/cache_stampede.toml``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import cachetools
import pytest

from _redis_support import pinned_redis_server
from perfprim.cache import AsyncTieredCache, MemoryTier, TieredCache
from perfprim.testing import RedisServer

LOADER_S = 0.05
N = 100
HERE = Path(__file__).parent


class Counter:
    """A thread-safe count of loader calls."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.n += 1


def stampede_threads(get: Callable[[], Any], n: int = N) -> list[Any]:
    """Let n threads, released by one barrier call ``get()`` once each."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait(30)
        value = get()
        with lock:
            results.append(value)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def stampede_tasks(get: Callable[[], Awaitable[Any]], n: int = N) -> list[Any]:
    """Let n asyncio tasks, started together, await ``get()`` once each."""

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(get() for _ in range(n))))

    return asyncio.run(main())


# -- Experiment 1, threads --------------------------------------------------


def perfprim_threads(counter: Counter) -> Callable[[], Any]:
    """Return perfprim's TieredCache (L1 only) read through get_or_load."""

    def loader() -> str:
        counter.add()
        time.sleep(LOADER_S)
        return "v"

    cache = TieredCache(MemoryTier(maxsize=100), ttl=60.0, namespace="exp1")
    return lambda: cache.get_or_load("k", loader)


def cachetools_threads(counter: Counter, variant: str) -> Callable[[], Any]:
    lock = threading.RLock() if variant == "condition" else threading.Lock()
    kwargs: dict[str, Any] = {}
    if variant == "lock":
        kwargs["lock"] = lock
    if variant == "condition":
        cond = threading.Condition(lock)  # type: ignore[arg-type]
        kwargs["lock"] = cond
        kwargs["condition"] = cond

    @cachetools.cached(cachetools.TTLCache(maxsize=100, ttl=60), **kwargs)
    def get() -> str:
        counter.add()
        time.sleep(LOADER_S)
        return "v"

    return get


def lru_threads(counter: Counter) -> Callable[[], Any]:
    @functools.lru_cache(maxsize=100)
    def get() -> str:
        counter.add()
        time.sleep(LOADER_S)
        return "v"

    return get


def dogpile_threads(counter: Counter) -> Callable[[], Any]:
    from dogpile.cache import make_region

    region = make_region().configure("dogpile.cache.memory", expiration_time=60)

    def creator() -> str:
        counter.add()
        time.sleep(LOADER_S)
        return "v"

    return lambda: region.get_or_create("k", creator)


THREAD_CANDIDATES: dict[str, Callable[[Counter], Callable[[], Any]]] = {
    "perfprim": perfprim_threads,
    "functools.lru_cache": lru_threads,
    "cachetools.cached": lambda c: cachetools_threads(c, "plain"),
    "cachetools.cached+lock": lambda c: cachetools_threads(c, "lock"),
    "cachetools.cached+condition": lambda c: cachetools_threads(c, "condition"),
    "dogpile.cache": dogpile_threads,
}


@pytest.mark.parametrize("candidate", list(THREAD_CANDIDATES))
def test_exp1_threads(candidate: str, record_metric: Callable[..., None]) -> None:
    """Experiment 1: 100 threads miss one key at once; count loader calls."""
    counter = Counter()
    get = THREAD_CANDIDATES[candidate](counter)
    results = stampede_threads(get)
    assert ["v"] * N == results
    record_metric(
        f"cache.stampede.exp1.threads.{candidate}.loads",
        counter.n,
        unit="loads",
        note=f"{N} threads, cold key, loader {LOADER_S * 1000:.0f} ms",
    )
    if candidate == "perfprim":
        assert 1 == counter.n


# -- Experiment 1, asyncio tasks --------------------------------------------


def perfprim_tasks(counter: Counter) -> Callable[[], Awaitable[Any]]:
    """Return perfprim's AsyncTieredCache (L1 only) read through get_or_load."""

    async def loader() -> str:
        counter.add()
        await asyncio.sleep(LOADER_S)
        return "v"

    cache = AsyncTieredCache(MemoryTier(maxsize=100), ttl=60.0, namespace="exp1")
    return lambda: cache.get_or_load("k", loader)


def cashews_tasks(counter: Counter) -> Callable[[], Awaitable[Any]]:
    from cashews import Cache

    cache = Cache()
    cache.setup("mem://")

    @cache(ttl=60)
    async def get() -> str:
        counter.add()
        await asyncio.sleep(LOADER_S)
        return "v"

    return get


def aiocache_tasks(counter: Counter) -> Callable[[], Awaitable[Any]]:
    from aiocache import cached

    @cached(ttl=60)
    async def get() -> str:
        counter.add()
        await asyncio.sleep(LOADER_S)
        return "v"

    return get


TASK_CANDIDATES: dict[str, Callable[[Counter], Callable[[], Awaitable[Any]]]] = {
    "perfprim": perfprim_tasks,
    "cashews": cashews_tasks,
    "aiocache": aiocache_tasks,
}


@pytest.mark.parametrize("candidate", list(TASK_CANDIDATES))
def test_exp1_tasks(candidate: str, record_metric: Callable[..., None]) -> None:
    """Experiment 1: 100 asyncio tasks miss one key at once; count loader calls."""
    counter = Counter()
    get = TASK_CANDIDATES[candidate](counter)
    results = stampede_tasks(get)
    assert ["v"] * N == results
    record_metric(
        f"cache.stampede.exp1.tasks.{candidate}.loads",
        counter.n,
        unit="loads",
        note=f"{N} asyncio tasks, cold key, loader {LOADER_S * 1000:.0f} ms",
    )
    if candidate == "perfprim":
        assert 1 == counter.n


# -- Experiment 2: processes --------------------------------------------------

PROCESSES = 5
CALLERS = 10
REPEATS = 3
IGNORED_COMMANDS = {"config|resetstat", "info", "client|setinfo", "flushall", "hello", "select"}


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """A throwaway Redis for Experiment 2, so INFO commandstats counts only this run."""
    if not RedisServer.available():
        pytest.skip("redis-server is not on PATH")
    with RedisServer() as srv:
        yield srv


def command_counts(server: RedisServer) -> dict[str, int]:
    raw = (server.command("INFO", "commandstats") or b"").decode()
    counts: dict[str, int] = {}
    for line in raw.splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line[len("cmdstat_") :].partition(":")
            calls = int(rest.split(",")[0].split("=")[1])
            if name not in IGNORED_COMMANDS:
                counts[name] = calls
    return counts


def run_processes(server: RedisServer, candidate: str) -> dict[str, Any]:
    """5 worker processes x 10 callers, released at one wall-clock instant once all are ready."""
    server.command("FLUSHALL")
    key = f"exp2:{{{uuid.uuid4().hex[:8]}}}"
    if candidate.startswith("cashews"):
        key = key.replace("{", "").replace("}", "")  # cashews reads braces as a template
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), *sys.path])}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_stampede_worker.py"),
                candidate,
                server.url,
                key,
                str(CALLERS),
                str(LOADER_S),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    outs = []
    try:
        for proc in procs:  # each has built its cache and warmed its connection
            assert proc.stdout is not None
            assert "ready" == proc.stdout.readline().strip()
        server.command("CONFIG", "RESETSTAT")  # count only the stampede itself
        start_at = time.time() + 0.2
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start_at!r}\n")
            proc.stdin.flush()
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()
    counts = command_counts(server)
    return {
        "loads": sum(o["loads"] for o in outs),
        "wall_ms": (max(o["end"] for o in outs) - start_at) * 1000,
        "ok": all(o["ok"] for o in outs),
        "commands": sum(counts.values()),
        "by_command": counts,
    }


EXP2 = ["perfprim", "perfprim-nolock", "dogpile-distributed_lock", "cashews-lock"]


@pytest.mark.parametrize("candidate", EXP2)
def test_exp2_processes(
    candidate: str, server: RedisServer, record_metric: Callable[..., None]
) -> None:
    """Experiment 2: 5 processes x 10 callers on one cold key with Redis; loads, wall, commands."""
    runs = [run_processes(server, candidate) for _ in range(REPEATS)]
    assert all(r["ok"] for r in runs)
    walls = sorted(r["wall_ms"] for r in runs)
    median = runs[[r["wall_ms"] for r in runs].index(walls[len(walls) // 2])]
    prefix = f"cache.stampede.exp2.{candidate}"
    note = (
        f"{PROCESSES} processes x {CALLERS} callers, loader {LOADER_S * 1000:.0f} ms; "
        f"{REPEATS} runs, walls {[round(w) for w in walls]} ms"
    )
    record_metric(f"{prefix}.loads", max(r["loads"] for r in runs), unit="loads (worst run)")
    record_metric(
        f"{prefix}.wall_ms", round(walls[len(walls) // 2], 1), unit="ms (median)", note=note
    )
    record_metric(
        f"{prefix}.redis_commands",
        median["commands"],
        unit="commands (server-side, Lua-internal included)",
        note=json.dumps(median["by_command"], sort_keys=True),
    )


# -- Hit-path cost of the freshness decision (timed) --------------------------


def test_decide_cost_perfprim(compare: Callable[..., Any]) -> None:
    """XFetch on the hit path: decide() with beta=1 and a fresh entry (draws no ln when far)."""
    from perfprim.cache._xfetch import decide_lazy, uniform_open_closed
    from perfprim.cache.advanced import Entry

    entry = Entry("v", expires_at=time.time() + 3600, delta=0.05, stale_until=time.time() + 3700)

    def check() -> object:
        return decide_lazy(entry, time.time(), beta=1.0, source=uniform_open_closed)

    compare("cache: freshness check per hit", "perfprim (XFetch)", check)


def test_decide_cost_plain_ttl(compare: Callable[..., Any]) -> None:
    """Anchor: the plain TTL check every cache does (``now < expires_at``)."""
    expires_at = time.time() + 3600

    def check() -> object:
        return time.time() < expires_at

    compare("cache: freshness check per hit", "plain TTL compare", check)


# -- Timed: the price of the lock on a miss through L2 ----------------------------------


@pytest.fixture(scope="module")
def miss_server() -> Iterator[RedisServer]:
    """A throwaway Redis for the miss-path timings."""
    if not RedisServer.available():
        pytest.skip("redis-server is not on PATH")
    with pinned_redis_server() as srv:
        yield srv


def _miss_caller(server: RedisServer, **options: Any) -> Callable[[], Any]:
    from perfprim.cache import RedisTier, StampedeOptions

    cache = TieredCache(
        MemoryTier(maxsize=1000),
        RedisTier.from_url(server.url),
        ttl=60.0,
        namespace=f"miss-{uuid.uuid4().hex[:6]}",
        invalidate_l1=False,
        stampede=StampedeOptions(**options),
    )
    counter = iter(range(10**9))
    value = {"id": 1, "name": "x" * 50}
    return lambda: cache.get_or_load(f"k{next(counter)}", lambda: value)


def test_miss_perfprim_lock(compare: Callable[..., Any], miss_server: RedisServer) -> None:
    """A miss through L2 with the defaults: GET, SET NX (+ read back), SET, release."""
    compare("cache: miss through L2 (sync)", "perfprim", _miss_caller(miss_server))


def test_miss_perfprim_nolock(compare: Callable[..., Any], miss_server: RedisServer) -> None:
    """A miss through L2 with lock=False: GET, SET."""
    compare(
        "cache: miss through L2 (sync)",
        "perfprim lock=False",
        _miss_caller(miss_server, lock=False),
    )


def test_miss_raw_redis(compare: Callable[..., Any], miss_server: RedisServer) -> None:
    """Anchor: raw redis-py GET (a miss) then SET of the encoded value, fresh key each time."""
    import redis

    client = redis.Redis.from_url(miss_server.url)
    counter = iter(range(10**9))
    payload = json.dumps({"id": 1, "name": "x" * 50}).encode()

    def miss() -> None:
        key = f"raw:k{next(counter)}"
        if client.get(key) is None:
            client.set(key, payload, px=60_000)

    compare("cache: miss through L2 (sync)", "redis-py GET+SET", miss)


def test_miss_perfprim_bare(compare: Callable[..., Any], miss_server: RedisServer) -> None:
    """A miss through L2 with lock=False and single_flight=False (issue 3's cache-aside alone)."""
    compare(
        "cache: miss through L2 (sync)",
        "perfprim lock=False single_flight=False",
        _miss_caller(miss_server, lock=False, single_flight=False),
    )
