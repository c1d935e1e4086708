"""One process of Experiment 2 (stampede across processes); run by bench_cache_stampede.py.

Usage: python _stampede_worker.py CANDIDATE REDIS_URL KEY CALLERS LOADER_S

Builds the candidate's cache, warms it up (its connection, and for the sync
caches a miss on another key), prints ``ready``, reads the start time (wall clock, shared by all
processes) from stdin, sleeps until then, lets ``CALLERS`` threads (or tasks)
read ``KEY`` at once and prints one JSON line: loads run in this process, the
start time, the time the last caller got its value, and whether every caller
got the right value.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

VALUE = {"user": 42, "name": "x" * 100}


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()

    def add(self) -> None:
        with self.lock:
            self.n += 1


def slow_value(counter: Counter, loader_s: float) -> dict[str, Any]:
    counter.add()
    time.sleep(loader_s)
    return dict(VALUE)


# -- candidates: each returns a zero-argument "get" for threads (or an async one) --


def perfprim_cache(url: str, key: str, counter: Counter, loader_s: float, lock: bool) -> Any:
    """The real TieredCache (MemoryTier L1 + RedisTier L2, default options)."""
    from perfprim.cache import MemoryTier, RedisTier, StampedeOptions, TieredCache

    tier = RedisTier.from_url(url, socket_timeout=1.0)
    cache = TieredCache(
        MemoryTier(maxsize=1000),
        tier,
        ttl=60.0,
        namespace="exp2",
        stampede=StampedeOptions(lock=lock),
    )
    get = lambda: cache.get_or_load(key, lambda: slow_value(counter, loader_s))  # noqa: E731

    def warm() -> None:
        # The invalidation bus subscribes in its own thread and flushes once connected
        # (generations are re-read after a flush): let that happen before the start.
        cache.get_or_load("warm-up", lambda: 0)  # a miss: connection and scripts ready
        time.sleep(0.5)
        cache.get("warm-up")

    return get, warm


def dogpile_distributed(url: str, key: str, counter: Counter, loader_s: float) -> Any:
    from dogpile.cache import make_region

    region = make_region().configure(
        "dogpile.cache.redis",
        expiration_time=60,
        arguments={"url": url, "distributed_lock": True, "redis_expiration_time": 120},
    )
    get = lambda: region.get_or_create(key, lambda: slow_value(counter, loader_s))  # noqa: E731
    return get, lambda: region.get_or_create("warm-up", lambda: 0)


def cashews_lock(url: str, key: str, counter: Counter, loader_s: float) -> Any:
    from cashews import Cache

    cache = Cache()
    cache.setup(url)

    @cache(ttl=60, lock=True, key=key)
    async def get() -> Any:
        counter.add()
        await asyncio.sleep(loader_s)
        return dict(VALUE)

    async def warm() -> None:
        await cache.get("warm-up")

    return get, warm


def wait_start() -> float:
    print("ready", flush=True)
    return float(sys.stdin.readline())


def run_threads(
    get: Callable[[], Any], callers: int, warm: Callable[[], Any]
) -> tuple[float, bool]:
    warm()
    results: list[Any] = []
    ends: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        go.wait(30)  # threads exist before the start
        time.sleep(max(0.0, start_at - time.time()))
        value = get()
        end = time.time()
        with lock:
            results.append(value)
            ends.append(end)

    go = threading.Event()
    start_at = 0.0
    threads = [threading.Thread(target=worker) for _ in range(callers)]
    for t in threads:
        t.start()
    start_at = wait_start()
    go.set()
    for t in threads:
        t.join(30)
    return max(ends), len(results) == callers and all(r == VALUE for r in results)


def run_tasks(get: Callable[[], Any], callers: int, warm: Callable[[], Any]) -> tuple[float, bool]:
    async def main() -> tuple[float, bool]:
        await warm()
        start_at = await asyncio.get_running_loop().run_in_executor(None, wait_start)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        ends: list[float] = []

        async def one() -> Any:
            value = await get()
            ends.append(time.time())
            return value

        results = await asyncio.gather(*(one() for _ in range(callers)))
        return max(ends), all(r == VALUE for r in results)

    return asyncio.run(main())


def main(argv: list[str]) -> None:
    candidate, url, key, callers_s, loader_s_s = argv
    callers, loader_s = int(callers_s), float(loader_s_s)
    counter = Counter()
    if candidate in ("perfprim", "perfprim-nolock"):
        get, warm = perfprim_cache(url, key, counter, loader_s, candidate == "perfprim")
        end, ok = run_threads(get, callers, warm)
    elif candidate == "dogpile-distributed_lock":
        get, warm = dogpile_distributed(url, key, counter, loader_s)
        end, ok = run_threads(get, callers, warm)
    elif candidate == "cashews-lock":
        aget, awarm = cashews_lock(url, key, counter, loader_s)
        end, ok = run_tasks(aget, callers, awarm)
    else:
        raise SystemExit(f"unknown candidate {candidate}")
    print(json.dumps({"loads": counter.n, "end": end, "ok": ok}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
