"""Lifecycle: what a cache starts, it stops; nothing leaks over many create/use/close cycles.

Against a real redis-server: every cache here has a Redis tier, its own
invalidation bus (two threads and a pub/sub connection) and the load lock.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier, RedisTier, TieredCache
from perfprim.cache.advanced import RedisInvalidationBus
from perfprim.testing import RedisServer

pytestmark = pytest.mark.redis
CYCLES = 100
SETTLE = 10.0  # upper bound for threads to end after close (never a timing assertion)


def open_fds() -> int:
    """File descriptors this process has open (sockets included)."""
    return len(os.listdir("/proc/self/fd"))


def wait_for(condition: Callable[[], bool], timeout: float = SETTLE) -> bool:
    """Poll ``condition`` until it holds (bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def perfprim_threads() -> list[threading.Thread]:
    """The threads perfprim started (bus, lock watchdog, refresh pool)."""
    return [t for t in threading.enumerate() if t.name.startswith("perfprim")]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds in /proc")
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_create_use_close_cycles_leak_nothing(kind: str, redis_url: str, namespace: str) -> None:
    """100 cycles of build, miss, hit, set, delete, tags, close: threads and fds as before."""

    def cycle(i: int) -> None:
        if kind == "sync":
            with TieredCache(
                MemoryTier(maxsize=10), RedisTier.from_url(redis_url), namespace=namespace
            ) as cache:
                assert i == cache.get_or_load(f"k{i}", lambda: i, tags=["t"])
                assert i == cache.get(f"k{i}")
                cache.set("s", i)
                cache.delete("s")
                cache.invalidate_tags("t")
        else:

            async def use() -> None:
                async with AsyncTieredCache(
                    MemoryTier(maxsize=10), AsyncRedisTier.from_url(redis_url), namespace=namespace
                ) as cache:

                    async def load() -> int:
                        return i

                    assert i == await cache.get_or_load(f"k{i}", load, tags=["t"])
                    assert i == await cache.get(f"k{i}")
                    await cache.set("s", i)
                    await cache.delete("s")
                    await cache.invalidate_tags("t")

            asyncio.run(use())

    cycle(-1)  # warm-up: lazy imports, logging handlers, the first asyncio loop
    gc.collect()
    threads, fds = threading.active_count(), open_fds()
    for i in range(CYCLES):
        cycle(i)
    gc.collect()
    assert wait_for(lambda: threads == threading.active_count()), perfprim_threads()
    assert wait_for(lambda: fds == open_fds())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_dropped_cache_stops_its_bus(kind: str, redis_url: str, namespace: str) -> None:
    """A cache dropped without close(): its bus threads end (they held it only weakly).

    Before, a test suite that never closed its caches kept dozens of bus
    threads alive, reconnecting and logging for the rest of the process.
    """
    before = set(perfprim_threads())
    tier_class: Any = RedisTier if kind == "sync" else AsyncRedisTier
    cls: Any = TieredCache if kind == "sync" else AsyncTieredCache
    cache = cls(MemoryTier(), tier_class.from_url(redis_url), namespace=namespace)
    started = set(perfprim_threads()) - before
    assert 2 <= len(started)  # the bus's listener and sender
    del cache
    gc.collect()
    assert wait_for(lambda: not any(t.is_alive() for t in started))


def test_close_is_idempotent_and_stops_threads(redis_url: str, namespace: str) -> None:
    """close() twice is fine; after it no thread of the cache is left."""
    before = set(perfprim_threads())
    cache = TieredCache(MemoryTier(), RedisTier.from_url(redis_url), namespace=namespace)
    cache.get_or_load("k", lambda: 1)
    started = set(perfprim_threads()) - before
    cache.close()
    cache.close()
    assert cache.closed
    assert not any(t.is_alive() for t in started)


def test_an_outage_is_logged_once_at_start_and_once_at_end(
    redis_server_factory: Callable[[], RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """The bus retries every few hundred ms while Redis is away, but logs the outage twice."""
    server = redis_server_factory()
    bus = RedisInvalidationBus(server.url, channel="outage", reconnect_min=0.01, reconnect_max=0.05)
    subscriptions: list[int] = []
    with caplog.at_level(logging.DEBUG, logger="perfprim.cache"):
        bus.start(lambda keys: None, lambda: subscriptions.append(1))
        assert bus.wait_subscribed(SETTLE)
        server.kill()
        assert wait_for(lambda: not bus.subscribed)
        time.sleep(0.5)  # the outage lasts: ten or more reconnect attempts
        server.start()
        assert wait_for(lambda: 2 <= len(subscriptions))
        bus.close()
    listener = [
        r for r in caplog.records if "outage" in r.getMessage() and r.levelno >= logging.INFO
    ]
    messages = [r.getMessage() for r in listener]
    assert 1 == sum("subscription lost" in m for m in messages), messages
    assert 1 == sum("subscribed again" in m for m in messages), messages
    retries = [r for r in caplog.records if "still failing" in r.getMessage()]
    assert 1 <= len(retries)  # it did retry, quietly
