"""Stampede protection through the real caches with Redis tiers (server and cluster)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from perfprim.cache import (
    AsyncRedisTier,
    AsyncTieredCache,
    MemoryTier,
    RedisTier,
    StampedeOptions,
    TieredCache,
)
from perfprim.cache.advanced import MISSING
from perfprim.testing import RedisCluster, RedisServer
from tests.cache.conformance import FakeClock

pytestmark = pytest.mark.redis
WAIT = 10.0


@pytest.fixture(params=["standalone", "cluster"])
def tier_factory(request: pytest.FixtureRequest, redis_url: str) -> Callable[[], RedisTier]:
    """Builds independent RedisTiers (one per simulated process) on a server or the cluster."""
    if request.param == "standalone":
        return lambda: RedisTier.from_url(redis_url, socket_timeout=1.0)
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    return lambda: RedisTier.from_url(cluster.url, cluster=True, socket_timeout=1.0)


def test_processes_stampede_loads_once_with_the_lock(
    tier_factory: Callable[[], RedisTier], namespace: str
) -> None:
    """Eight caches (own L1, own client: eight 'processes') x 5 threads miss one key: 1 load."""
    calls: list[int] = []
    count_lock = threading.Lock()

    def load() -> dict[str, int]:
        with count_lock:
            calls.append(1)
        time.sleep(0.05)
        return {"v": 1}

    caches = [
        TieredCache(MemoryTier(maxsize=100), tier_factory(), ttl=60.0, namespace=namespace)
        for _ in range(8)
    ]
    barrier = threading.Barrier(40)
    results: list[object] = []

    def worker(cache: TieredCache) -> None:
        barrier.wait(WAIT)
        results.append(cache.get_or_load("hot", load))

    threads = [threading.Thread(target=worker, args=(c,)) for c in caches for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert 1 == len(calls)
    assert [{"v": 1}] * 40 == results
    stats = [c.stats() for c in caches]
    assert 0 == sum(s.lock_timeouts for s in stats)
    # At most 4 waiters per process joined a flight (a late thread may find L1 filled).
    assert 0 < sum(s.coalesced for s in stats) <= 32
    for cache in caches:
        cache.close()


def test_without_the_lock_each_process_loads(
    tier_factory: Callable[[], RedisTier], namespace: str
) -> None:
    """lock=False: single-flight still holds per process, so up to one load per process."""
    calls: list[int] = []
    barrier = threading.Barrier(4)

    def load() -> str:
        calls.append(1)
        return "v"

    caches = [
        TieredCache(
            MemoryTier(maxsize=100),
            tier_factory(),
            ttl=60.0,
            namespace=namespace,
            stampede=StampedeOptions(lock=False),
        )
        for _ in range(4)
    ]

    def worker(cache: TieredCache) -> None:
        barrier.wait(WAIT)
        cache.get_or_load("hot", load)

    threads = [threading.Thread(target=worker, args=(c,)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert 1 <= len(calls) <= 4
    assert all(c._dlock is None for c in caches)
    for cache in caches:
        cache.close()


def test_stale_refresh_runs_in_one_process_only(
    tier_factory: Callable[[], RedisTier], namespace: str
) -> None:
    """Two caches read a stale entry: both serve it, the refresh token elects one refresher."""
    clock = FakeClock(time.time())
    calls: list[str] = []

    def make(name: str) -> TieredCache:
        return TieredCache(
            tier_factory(),
            ttl=10.0,
            namespace=namespace,
            clock=clock,
            stampede=StampedeOptions(beta=0.0, stale_ttl=50.0),
        )

    a, b = make("a"), make("b")
    a.get_or_load("k", lambda: "old")
    clock.advance(20.0)  # stale for the caches; Redis keeps it until stale_until (60 s)
    release = threading.Event()

    def load() -> str:
        calls.append("new")
        release.wait(WAIT)
        return "new"

    assert "old" == a.get_or_load("k", load)  # a wins the refresh token; its load blocks
    deadline = time.monotonic() + WAIT
    while not calls and time.monotonic() < deadline:
        time.sleep(0.005)
    assert "old" == b.get_or_load("k", load)  # b serves stale; its refresh loses the token
    b._drain(WAIT)
    release.set()
    a._drain(WAIT)
    assert ["new"] == calls
    assert (1, 0) == (a.stats().background_refreshes, b.stats().background_refreshes)
    assert 1 == b._dlock.stats().refresh_lost
    assert "new" == b.get_or_load("k", load)
    a.close()
    b.close()


def test_lock_is_skipped_while_the_circuit_is_open(
    redis_server_factory: Callable[[], RedisServer], namespace: str
) -> None:
    """With Redis down the cache still loads (no lock round trips once the circuit is open)."""
    server = redis_server_factory()
    tier = RedisTier.from_url(server.url, failure_threshold=1, cooldown=60.0)
    cache = TieredCache(MemoryTier(maxsize=100), tier, ttl=60.0, namespace=namespace)
    server.kill()
    assert "v" == cache.get_or_load("k1", lambda: "v")  # opens the circuit
    assert "closed" != tier.circuit_state
    lock_stats_before = cache._dlock.stats()
    assert "w" == cache.get_or_load("k2", lambda: "w")
    assert lock_stats_before == cache._dlock.stats()  # the lock was not even tried
    cache.close()


async def test_async_processes_stampede_loads_once(redis_url: str, namespace: str) -> None:
    """Six AsyncTieredCaches (own clients) x 5 tasks miss one key: exactly one load."""
    calls: list[int] = []

    async def load() -> str:
        calls.append(1)
        await asyncio.sleep(0.05)
        return "v"

    caches = [
        AsyncTieredCache(
            MemoryTier(maxsize=100),
            AsyncRedisTier.from_url(redis_url, socket_timeout=1.0),
            ttl=60.0,
            namespace=namespace,
        )
        for _ in range(6)
    ]
    try:
        results = await asyncio.gather(
            *(c.get_or_load("hot", load) for c in caches for _ in range(5))
        )
        assert ["v"] * 30 == results
        assert 1 == len(calls)
        assert 24 == sum(c.stats().coalesced for c in caches)
    finally:  # a failure must not leave 6 clients' sockets to the next test's gc
        for cache in caches:
            await cache.close()


def test_lock_slices_fit_the_tier_socket_timeout(tier_factory: Callable[[], RedisTier]) -> None:
    """The lock's BLPOP slices stay below the tier client's socket timeout (no false timeouts)."""
    tier = tier_factory()
    cache = TieredCache(tier, namespace="slices")
    assert cache._dlock is not None
    assert cache._dlock._slice < 1.0
    cache.close()


def test_dead_loader_process_lock_expires_through_the_cache(redis_url: str, namespace: str) -> None:
    """A lock left by a dead holder (no watchdog) expires; the cache's next caller loads."""
    import redis as redis_py

    from perfprim.cache._lock_common import lock_keys

    cache = TieredCache(
        RedisTier.from_url(redis_url, socket_timeout=1.0),
        ttl=60.0,
        namespace=namespace,
        stampede=StampedeOptions(lock_wait_timeout=WAIT),
    )
    fk = cache._full_key("k", cache._clock())
    client: Any = redis_py.Redis.from_url(redis_url)
    client.set(lock_keys(fk)[0], "dead-holder", px=300)  # as if its process were killed
    assert "v" == cache.get_or_load("k", lambda: "v")
    stats = cache.stats()
    assert (1, 0, 1) == (stats.lock_waits, stats.lock_timeouts, stats.loads)
    client.close()
    cache.close()


@pytest.mark.cluster
async def test_async_cluster_stampede_loads_once(
    redis_cluster: RedisCluster, namespace: str
) -> None:
    """Four AsyncTieredCaches on the real cluster x 5 tasks: exactly one load."""
    calls: list[int] = []

    async def load() -> str:
        calls.append(1)
        await asyncio.sleep(0.05)
        return "v"

    caches = [
        AsyncTieredCache(
            MemoryTier(maxsize=100),
            AsyncRedisTier.from_url(redis_cluster.url, cluster=True, socket_timeout=1.0),
            ttl=60.0,
            namespace=namespace,
        )
        for _ in range(4)
    ]
    # First use of each client one at a time: redis-py 8.1's asyncio cluster client races
    # in its lazy initialize() when several tasks send its first commands at once
    # (AttributeError 'NoneType' has no 'writelines', raised through AsyncRedisTier).
    for cache in caches:
        await cache.get("warm-up")
    results = await asyncio.gather(*(c.get_or_load("hot", load) for c in caches for _ in range(5)))
    assert ["v"] * 20 == results
    assert 1 == len(calls)
    for cache in caches:
        await cache.close()


def _commands(server: RedisServer) -> dict[str, int]:
    """Client commands by name from INFO commandstats (connection set-up left out)."""
    raw = (server.command("INFO", "commandstats") or b"").decode()
    counts: dict[str, int] = {}
    for line in raw.splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line[len("cmdstat_") :].partition(":")
            counts[name] = int(rest.split(",")[0].split("=")[1])
    for name in ("config|resetstat", "info", "client|setinfo", "hello", "script|load"):
        counts.pop(name, None)
    return counts


def test_a_locked_miss_costs_three_round_trips(
    redis_server_factory: Callable[[], RedisServer], namespace: str
) -> None:
    """With one Redis tier and the lock, a miss is GET, the acquire script, store+release script."""
    server = redis_server_factory()
    cache = TieredCache(
        MemoryTier(maxsize=100),
        RedisTier.from_url(server.url),
        namespace=namespace,
        invalidate_l1=False,
    )
    cache.get_or_load("warm-up", lambda: 0)  # generations read, scripts loaded
    server.command("CONFIG", "RESETSTAT")
    assert "v" == cache.get_or_load("k", lambda: "v")
    counts = _commands(server)
    assert 2 == counts["evalsha"]
    # Both SETs ran inside the scripts (SET NX of the lock, SET of the value): the client
    # sent no SET of its own, and the value is stored.
    assert 2 == counts["set"]
    assert 1 == counts["exists"]
    assert 2 == cache.stats().loads  # the warm-up and this one
    assert "v" == cache.get_or_load("k", lambda: "other")
    cache.close()


@pytest.mark.parametrize("failure", ["raises", "unencodable", "uncached-none"])
def test_a_failed_locked_load_releases_the_lock(
    redis_url: str, namespace: str, failure: str
) -> None:
    """A load that stores nothing (error, unencodable value, uncached None) releases its lock."""
    import redis as redis_py

    from perfprim.cache._lock_common import lock_keys
    from perfprim.exceptions import SerializationError

    cache = TieredCache(
        MemoryTier(maxsize=100),
        RedisTier.from_url(redis_url),
        namespace=namespace,
        stampede=StampedeOptions(cache_none=False),
    )

    def load() -> object:
        if failure == "raises":
            raise RuntimeError("db down")
        if failure == "unencodable":
            return object()
        return None

    expected: type[BaseException] | None = {
        "raises": RuntimeError,
        "unencodable": SerializationError,
        "uncached-none": None,
    }[failure]
    if expected is None:
        assert cache.get_or_load("k", load) is None
    else:
        with pytest.raises(expected):
            cache.get_or_load("k", load)
    fk = cache._full_key("k", cache._clock())
    client: Any = redis_py.Redis.from_url(redis_url)
    assert 0 == client.exists(lock_keys(fk)[0])
    assert 1 == cache._dlock.stats().acquired
    client.close()
    cache.close()


async def test_async_locked_miss_and_failure_release(redis_url: str, namespace: str) -> None:
    """The asyncio fused path: a miss loads once and stores; a failing load frees the lock."""
    import redis as redis_py

    from perfprim.cache._lock_common import lock_keys

    cache = AsyncTieredCache(
        MemoryTier(maxsize=100), AsyncRedisTier.from_url(redis_url), namespace=namespace
    )

    async def ok() -> str:
        return "v"

    async def bad() -> str:
        raise KeyError("gone")

    assert "v" == await cache.get_or_load("k", ok)
    with pytest.raises(KeyError):
        await cache.get_or_load("other", bad)
    fk = await cache._full_key("other", cache._clock())
    client: Any = redis_py.Redis.from_url(redis_url)
    assert 0 == client.exists(lock_keys(fk)[0])
    cache._l1.clear()
    assert "v" == await cache.get_or_load("k", bad)  # served from Redis, no load
    client.close()
    await cache.close()


LONG_LOAD_CHILD = r"""
import asyncio, sys, redis
from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier, RedisTier, TieredCache

url, kind, ns = sys.argv[1:4]
raw = redis.Redis.from_url(url)

def start():
    print("ready", flush=True)
    raw.blpop([ns + ":go"], timeout=30)

if kind == "sync":
    import time
    cache = TieredCache(MemoryTier(), RedisTier.from_url(url), ttl=60.0, namespace=ns)
    cache.get("warm-up")
    def load():
        raw.incr(ns + ":loads")
        time.sleep(0.5)
        return "v"
    start()
    value = cache.get_or_load("k", load)
    stats = cache.stats()
    cache.close()
else:
    async def main():
        cache = AsyncTieredCache(MemoryTier(), AsyncRedisTier.from_url(url), ttl=60.0, namespace=ns)
        await cache.get("warm-up")
        async def load():
            raw.incr(ns + ":loads")
            await asyncio.sleep(0.5)
            return "v"
        await asyncio.to_thread(start)
        value = await cache.get_or_load("k", load)
        stats = cache.stats()
        await cache.close()
        return value, stats
    value, stats = asyncio.run(main())
print(value, stats.lock_waits, stats.lock_timeouts, stats.lock_errors, flush=True)
"""


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_long_load_is_one_load_across_processes(
    kind: str, redis_server_factory: Callable[[], RedisServer], namespace: str
) -> None:
    """Bug: a load longer than ~0.16 s ran twice in two processes (the lock failed open).

    The waiter's BLPOP slice (0.8 x the 0.2 s socket timeout) is answered by
    the server up to one timer tick (0.1 s at hz 10) late, so the client timed
    out first and the waiter loaded too. Two processes, a 0.5 s loader, three
    rounds: one load per round, no lock timeout or error.
    """
    import subprocess
    import sys
    from pathlib import Path

    import redis as redis_py

    server = redis_server_factory()
    raw: Any = redis_py.Redis.from_url(server.url)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    try:
        for round_ in range(3):
            ns = f"{namespace}-{round_}"
            children = [
                subprocess.Popen(
                    [sys.executable, "-c", LONG_LOAD_CHILD, server.url, kind, ns],
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
                for _ in range(2)
            ]
            for child in children:
                assert child.stdout is not None
                assert "ready" == child.stdout.readline().strip()
            raw.rpush(f"{ns}:go", 1, 1)
            outputs = [child.communicate(timeout=60)[0].split() for child in children]
            assert 1 == int(raw.get(f"{ns}:loads")), outputs
            assert ["v", "v"] == [o[0] for o in outputs]
            assert [0, 1] == sorted(int(o[1]) for o in outputs)  # one waited for the other
            assert [["0", "0"], ["0", "0"]] == [o[2:] for o in outputs]  # no fail-open
    finally:
        raw.close()


def test_load_once_runs_one_load_across_processes(redis_url: str, namespace: str) -> None:
    """load_once: four 'processes' at once, one load; the others read what it stored."""
    calls: list[int] = []
    caches = [
        TieredCache(MemoryTier(), RedisTier.from_url(redis_url), ttl=60.0, namespace=namespace)
        for _ in range(4)
    ]
    barrier = threading.Barrier(4)
    results: list[object] = []

    def worker(cache: TieredCache) -> None:
        def load() -> str:
            calls.append(1)
            time.sleep(0.1)
            cache.set("page", "stored")
            return "loaded"

        def read() -> object:
            value = cache.get("page")
            return MISSING if value is None else value

        barrier.wait(WAIT)
        results.append(cache.load_once("page", load, read=read))

    threads = [threading.Thread(target=worker, args=(c,)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert (1, ["loaded", "stored", "stored", "stored"]) == (len(calls), sorted(results))
    for cache in caches:
        cache.close()


async def test_load_once_without_redis_loads_at_once(namespace: str) -> None:
    """load_once with no lock tier (memory only): the load runs, read is never called."""
    cache = AsyncTieredCache(MemoryTier(), namespace=namespace)

    async def load() -> str:
        return "loaded"

    async def read() -> object:
        raise AssertionError("no other process to wait for")

    assert "loaded" == await cache.load_once("page", load, read=read)
    await cache.close()
