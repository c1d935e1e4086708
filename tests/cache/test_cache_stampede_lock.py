"""Distributed load lock against a real Redis server and a real Redis Cluster."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from perfprim.cache._lock_common import lock_keys
from perfprim.cache.advanced import MISSING, AsyncRedisLock, LockStats, RedisLock
from perfprim.exceptions import BackendError, ConfigurationError, LockTimeoutError
from perfprim.testing import RedisCluster, RedisServer

pytestmark = pytest.mark.redis
WAIT = 10.0


@pytest.fixture(params=["standalone", "cluster"])
def client(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Any]:
    """A sync redis-py client on a real server, or on the real local cluster."""
    if request.param == "standalone":
        c: Any = redis.Redis.from_url(redis_url, socket_timeout=2.0)
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        c = redis.cluster.RedisCluster(host=cluster.host, port=cluster.ports[0], socket_timeout=2.0)
    yield c
    c.close()


@pytest.fixture(params=["standalone", "cluster"])
async def aclient(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Any]:
    """An asyncio redis-py client on a real server, or on the real local cluster."""
    if request.param == "standalone":
        c: Any = redis.asyncio.Redis.from_url(redis_url, socket_timeout=2.0)
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        c = redis.asyncio.cluster.RedisCluster(
            host=cluster.host, port=cluster.ports[0], socket_timeout=2.0
        )
        # redis-py 8.1: concurrent first commands on a not yet initialized asyncio
        # cluster client race in its lazy initialize() ('NoneType' has no 'writelines').
        await c.initialize()
    yield c
    await c.aclose()


def key_for(namespace: str) -> str:
    """A full key as the cache builds them: namespace, generation, hash-tagged body."""
    return f"{namespace}:0:{{user:1}}"


def test_lock_keys_share_the_value_slot(namespace: str) -> None:
    """The lock, its waiter keys and the refresh token hash to the value's cluster slot."""
    from redis.crc import key_slot

    key = key_for(namespace)
    slots = {key_slot(k.encode()) for k in (key, *lock_keys(key))}
    assert 1 == len(slots)
    bare = {key_slot(k.encode()) for k in lock_keys("no-tag")}
    assert 1 == len(bare)


def test_acquire_is_exclusive_and_token_owned(client: Any, namespace: str) -> None:
    """One holder at a time; only the owner's token releases; then the lock is free again."""
    a = RedisLock(client, ttl=5.0, watchdog=False)
    b = RedisLock(client, ttl=5.0, watchdog=False)
    key = key_for(namespace)
    lease = a.acquire(key)
    assert lease is not None
    assert b.acquire(key) is None
    forged = type(lease)(key, "not-the-token")
    assert b.release(forged) is False
    assert client.exists(lock_keys(key)[0]) == 1
    assert a.release(lease) is True
    second = b.acquire(key)
    assert second is not None
    assert b.release(second) is True
    assert 0 == client.exists(lock_keys(key)[0])


def test_release_after_expiry_reports_a_lost_lock(client: Any, namespace: str) -> None:
    """A lease whose lock expired and was taken over neither deletes nor wakes (counted lost)."""
    a = RedisLock(client, ttl=5.0, watchdog=False)
    b = RedisLock(client, ttl=5.0, watchdog=False)
    key = key_for(namespace)
    lease = a.acquire(key)
    assert lease is not None
    client.delete(lock_keys(key)[0])  # as if the ttl ran out
    other = b.acquire(key)
    assert other is not None
    assert a.release(lease) is False
    assert lease.lost
    assert 1 == a.stats().lost
    assert 1 == client.exists(lock_keys(key)[0])
    assert b.release(other) is True


def test_watchdog_keeps_a_long_load_locked(client: Any, namespace: str) -> None:
    """A load lasting several lock ttls keeps its lock: the watchdog extends it."""
    lock = RedisLock(client, ttl=0.3)
    other = RedisLock(client, ttl=0.3, watchdog=False)
    key = key_for(namespace)
    lease = lock.acquire(key)
    assert lease is not None
    deadline = time.monotonic() + 1.0  # > 3 ttls
    while time.monotonic() < deadline:
        assert other.acquire(key) is None
        time.sleep(0.05)
    assert lock.release(lease) is True
    assert not lease.lost


def test_scripts_reload_after_script_flush(client: Any, namespace: str) -> None:
    """EVALSHA falls back to loading the script when the server lost it (NOSCRIPT)."""
    lock = RedisLock(client, watchdog=False)
    key = key_for(namespace)
    lease = lock.acquire(key)
    assert lease is not None
    client.script_flush()
    assert lock.extend(lease) is True
    assert lock.release(lease) is True


def test_waiter_is_woken_by_release(client: Any, namespace: str) -> None:
    """A waiter blocks until the holder releases, and learns the lock is free."""
    holder = RedisLock(client, watchdog=False)
    waiter = RedisLock(client, watchdog=False)
    key = key_for(namespace)
    lease = holder.acquire(key)
    assert lease is not None
    out: list[bool] = []
    t = threading.Thread(target=lambda: out.append(waiter.wait(key, timeout=WAIT)))
    t.start()
    # The waiter registers itself before blocking: wait for that, then release.
    deadline = time.monotonic() + WAIT
    while client.get(lock_keys(key)[1]) is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert holder.release(lease)
    t.join(WAIT)
    assert [True] == out


def test_wait_on_a_free_lock_returns_at_once(client: Any, namespace: str) -> None:
    """Waiting on a key nobody holds says "free" without blocking."""
    assert RedisLock(client).wait(key_for(namespace), timeout=WAIT) is True


def run_many(client_factory: Callable[[], Any], key: str, n: int) -> tuple[int, list[object]]:
    """Run cache-aside on one key from n 'processes' at once (each its own client and lock)."""
    loads = 0
    count_lock = threading.Lock()
    results: list[object] = []
    barrier = threading.Barrier(n)

    def worker() -> None:
        nonlocal loads
        c = client_factory()
        lock = RedisLock(c, wait_timeout=WAIT)

        def read() -> object:
            raw = c.get(key)
            return MISSING if raw is None else raw.decode()

        def load() -> str:
            nonlocal loads
            with count_lock:
                loads += 1
            time.sleep(0.05)
            c.set(key, "value", px=60_000)
            return "value"

        barrier.wait(WAIT)
        results.append(lock.run(key, read=read, load=load))
        c.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    return loads, results


def test_run_loads_once_across_clients(redis_url: str, namespace: str) -> None:
    """Ten independent clients missing one key: exactly one load, everyone gets the value."""
    key = key_for(namespace)
    loads, results = run_many(lambda: redis.Redis.from_url(redis_url, socket_timeout=2.0), key, 10)
    assert 1 == loads
    assert ["value"] * 10 == results


def test_run_loads_once_across_cluster_clients(redis_cluster: RedisCluster, namespace: str) -> None:
    """The same on the real Redis Cluster."""
    key = key_for(namespace)

    def factory() -> Any:
        return redis.cluster.RedisCluster(
            host=redis_cluster.host, port=redis_cluster.ports[0], socket_timeout=2.0
        )

    loads, results = run_many(factory, key, 6)
    assert 1 == loads
    assert ["value"] * 6 == results


def test_wait_bound_fails_open(client: Any, namespace: str) -> None:
    """When the holder takes longer than wait_timeout, the waiter loads by itself (counted)."""
    key = key_for(namespace)
    holder = RedisLock(client, watchdog=False)
    lease = holder.acquire(key)
    assert lease is not None
    lock = RedisLock(client, wait_timeout=0.05)
    assert "own" == lock.run(key, read=lambda: MISSING, load=lambda: "own")
    stats = lock.stats()
    assert (1, 1, 0) == (stats.waits, stats.timeouts, stats.acquired)
    strict = RedisLock(client, wait_timeout=0.05, fail_open=False)
    with pytest.raises(LockTimeoutError, match="wait_timeout"):
        strict.run(key, read=lambda: MISSING, load=lambda: "own")
    holder.release(lease)


def test_dead_holder_lock_expires_and_next_caller_loads(redis_url: str, namespace: str) -> None:
    """A holder process SIGKILLed mid-load leaves a lock that expires; the waiter then loads."""
    key = key_for(namespace)
    code = (
        "import sys, time, redis\n"
        "from perfprim.cache.advanced import RedisLock\n"
        f"c = redis.Redis.from_url({redis_url!r})\n"
        f"lease = RedisLock(c, ttl=0.6).acquire({key!r})\n"
        "print('held' if lease else 'busy', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env) as proc:
        try:
            assert proc.stdout is not None
            assert b"held\n" == proc.stdout.readline()
            time.sleep(0.5)  # the holder's watchdog has extended the lock at least once
        finally:
            proc.kill()
            proc.wait(WAIT)
    c = redis.Redis.from_url(redis_url, socket_timeout=2.0)
    lock = RedisLock(c, wait_timeout=WAIT)
    loads: list[int] = []

    def load() -> str:
        loads.append(1)
        return "fresh"

    assert "fresh" == lock.run(key, read=lambda: MISSING, load=load)
    assert [1] == loads
    stats = lock.stats()
    assert (1, 1, 0) == (stats.acquired, stats.waits, stats.timeouts)
    c.close()


def test_refresh_token_has_exactly_one_winner(client: Any, namespace: str) -> None:
    """Among ten contenders exactly one wins the refresh token."""
    key = key_for(namespace)
    locks = [RedisLock(client, refresh_ttl=5.0) for _ in range(10)]
    wins = [lock.try_refresh(key) for lock in locks]
    assert 1 == sum(wins)
    assert wins[0] is True
    assert 9 == sum(lock.stats().refresh_lost for lock in locks)


def test_redis_errors_become_backend_errors(
    redis_server_factory: Callable[[], RedisServer], namespace: str
) -> None:
    """With Redis down, lock calls raise BackendError, and run() fails open (counted)."""
    server = redis_server_factory()
    c = redis.Redis.from_url(server.url, socket_timeout=0.2, socket_connect_timeout=0.2)
    lock = RedisLock(c)
    server.kill()
    key = key_for(namespace)
    with pytest.raises(BackendError, match="acquire"):
        lock.acquire(key)
    with pytest.raises(BackendError, match="refresh"):
        lock.try_refresh(key)
    assert "loaded" == lock.run(key, read=lambda: MISSING, load=lambda: "loaded")
    assert 1 == lock.stats().errors
    strict = RedisLock(c, fail_open=False)
    with pytest.raises(BackendError):
        strict.run(key, read=lambda: MISSING, load=lambda: "loaded")
    c.close()


class TwoProcesses:
    """Two processes' locks on one server: a holder that gives up fast, and another."""

    def __init__(self, server: RedisServer) -> None:
        self.holder_client = redis.Redis.from_url(server.url, socket_timeout=0.2)
        self.other_client = redis.Redis.from_url(server.url, socket_timeout=2.0)
        self.holder = RedisLock(self.holder_client, ttl=10.0)
        self.other = RedisLock(self.other_client, ttl=10.0)

    def assert_next_call_releases(self, key: str, namespace: str) -> None:
        """The holder's next call (on any key) frees ``key`` long before its 10 s TTL; close."""
        assert self.holder.acquire(key_for(namespace + "-another")) is not None  # any call
        released = self.other.acquire(key)
        assert released is not None  # long before the 10 s TTL
        self.other.release(released)
        self.holder.close()
        self.holder_client.close()
        self.other_client.close()


def test_a_release_that_failed_is_made_at_the_next_call(
    redis_server_factory: Callable[[], RedisServer], namespace: str
) -> None:
    """A holder whose release met a hung Redis releases at its next call once Redis is back.

    Without this, the finished holder's lock stayed for its whole TTL (10 s) and every
    other process's waiter waited out its bound (5 s) behind it.
    """
    server = redis_server_factory()
    two = TwoProcesses(server)
    holder, other = two.holder, two.other
    key = key_for(namespace)
    lease = holder.acquire(key)
    assert lease is not None
    server.pause()
    try:
        with pytest.raises(BackendError, match="release"):
            holder.release(lease)
    finally:
        server.resume()
    assert other.acquire(key) is None  # still held: nothing released it yet
    two.assert_next_call_releases(key, namespace)


def test_an_acquire_that_timed_out_but_landed_is_released(
    redis_server_factory: Callable[[], RedisServer], namespace: str
) -> None:
    """An acquire that timed out against a paused Redis, but ran once it resumed, is undone.

    The SET NX sat in the socket while Redis was stopped; the client gave up,
    Redis then ran it: the lock was held under a token nobody would release,
    and every other process waited out its bound (5 s) behind it - the
    timeouts of the soak's SIGSTOP phase.
    """
    server = redis_server_factory()
    two = TwoProcesses(server)
    holder, other, other_client = two.holder, two.other, two.other_client
    key = key_for(namespace)
    warm = holder.acquire(key_for(namespace + "-warm"))  # a live connection, the script loaded
    assert warm is not None
    holder.release(warm)
    server.pause()
    try:
        with pytest.raises(BackendError, match="acquire"):
            holder.acquire(key)
    finally:
        server.resume()
    deadline = time.monotonic() + 5.0  # Redis runs the queued SET NX once it resumes
    while other_client.get(lock_keys(key)[0]) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert other_client.get(lock_keys(key)[0]) is not None  # the ghost lock, as in the soak
    assert other.acquire(key) is None
    time.sleep(0.3)  # past the retry pause of a failed release
    two.assert_next_call_releases(key, namespace)


@pytest.mark.parametrize(
    ("option", "value"), [("ttl", 0), ("wait_timeout", -1.0), ("refresh_ttl", "1")]
)
def test_bad_options_fail_fast(client: Any, option: str, value: object) -> None:
    """A duration that is not > 0 raises ConfigurationError naming the option."""
    with pytest.raises(ConfigurationError, match=option):
        RedisLock(client, **{option: value})


def test_missing_client_fails_fast() -> None:
    """No client: a ConfigurationError that names the accepted clients."""
    with pytest.raises(ConfigurationError, match="redis-py client"):
        RedisLock(None)


def test_stats_start_at_zero(client: Any) -> None:
    """A new lock reports all-zero counters."""
    assert LockStats(0, 0, 0, 0, 0, 0, 0) == RedisLock(client).stats()


# -- asyncio ---------------------------------------------------------------


async def test_async_acquire_release_and_refresh(aclient: Any, namespace: str) -> None:
    """The asyncio lock is exclusive, token-owned, and has one refresh winner."""
    key = key_for(namespace)
    a = AsyncRedisLock(aclient, ttl=0.3)
    b = AsyncRedisLock(aclient)
    lease = await a.acquire(key)
    assert lease is not None
    await asyncio.sleep(0.5)  # longer than ttl: the watchdog task keeps it
    assert await b.acquire(key) is None
    assert await a.release(lease) is True
    assert not lease.lost
    assert [True, False] == [await a.try_refresh(key), await b.try_refresh(key)]


async def test_async_run_loads_once(aclient: Any, namespace: str) -> None:
    """Ten tasks with ten independent lock objects: exactly one load."""
    key = key_for(namespace)
    loads = 0

    async def read() -> object:
        raw = await aclient.get(key)
        return MISSING if raw is None else raw.decode()

    async def load() -> str:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)
        await aclient.set(key, "value", px=60_000)
        return "value"

    locks = [AsyncRedisLock(aclient, wait_timeout=WAIT) for _ in range(10)]
    results = await asyncio.gather(*(lock.run(key, read=read, load=load) for lock in locks))
    assert 1 == loads
    assert ["value"] * 10 == results
    # Each caller either waited for the holder or took the lock after it and read the value.
    assert all(lock.stats().waits + lock.stats().acquired >= 1 for lock in locks)
    assert 0 == sum(lock.stats().timeouts for lock in locks)


async def test_async_wait_bound_fails_open(aclient: Any, namespace: str) -> None:
    """The asyncio waiter fails open after wait_timeout, or raises with fail_open=False."""
    key = key_for(namespace)
    holder = AsyncRedisLock(aclient, watchdog=False)
    lease = await holder.acquire(key)
    assert lease is not None

    async def read() -> object:
        return MISSING

    async def load() -> str:
        return "own"

    lock = AsyncRedisLock(aclient, wait_timeout=0.05)
    assert "own" == await lock.run(key, read=read, load=load)
    assert 1 == lock.stats().timeouts
    with pytest.raises(LockTimeoutError):
        await AsyncRedisLock(aclient, wait_timeout=0.05, fail_open=False).run(
            key, read=read, load=load
        )
    assert await holder.release(lease)


def test_acquire_reports_whether_the_value_exists(client: Any, namespace: str) -> None:
    """The acquire script tells the winner if the value was just written (then it reads)."""
    lock = RedisLock(client, watchdog=False)
    key = key_for(namespace)
    absent = lock.acquire(key)
    assert absent is not None
    assert absent.value_present is False
    lock.release(absent)
    client.set(key, "written", px=60_000)
    present = lock.acquire(key)
    assert present is not None
    assert present.value_present is True
    lock.release(present)
    loads: list[int] = []
    assert b"written" == lock.run(
        key, read=lambda: client.get(key) or MISSING, load=lambda: loads.append(1) or b"x"
    )
    assert [] == loads


def test_untagged_key_takes_the_plain_lock(client: Any, namespace: str) -> None:
    """A key without a hash tag gets a plain SET NX lock (no value check: other slot)."""
    lock = RedisLock(client, watchdog=False)
    lease = lock.acquire(f"{namespace}-plain")
    assert lease is not None
    assert lease.value_present is None
    assert lock.release(lease) is True


def test_one_watchdog_extends_every_held_lock(client: Any, namespace: str) -> None:
    """Three locks held at once by one RedisLock all outlive their ttl (one watchdog thread)."""
    lock = RedisLock(client, ttl=0.3)
    keys = [f"{namespace}:0:{{k{i}}}" for i in range(3)]
    leases = [lock.acquire(k) for k in keys]
    assert all(lease is not None for lease in leases)
    time.sleep(1.0)  # > 3 ttls
    assert [1, 1, 1] == [client.exists(lock_keys(k)[0]) for k in keys]
    watchdogs = [t for t in threading.enumerate() if t.name == "perfprim-lock-watchdog"]
    assert 1 <= len(watchdogs)
    for lease in leases:
        assert lease is not None
        assert lock.release(lease) is True


def test_close_stops_the_watchdog(client: Any, namespace: str) -> None:
    """close() ends the lock's watchdog thread."""
    lock = RedisLock(client, ttl=0.3)
    before = {t for t in threading.enumerate() if t.name == "perfprim-lock-watchdog"}
    lease = lock.acquire(key_for(namespace))
    assert lease is not None
    started = {t for t in threading.enumerate() if t.name == "perfprim-lock-watchdog"} - before
    assert 1 == len(started)
    (thread,) = started
    assert thread.is_alive()
    lock.release(lease)
    lock.close()
    assert not thread.is_alive()
