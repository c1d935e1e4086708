"""Redis tiers against raw redis-py and the Redis paths of dogpile.cache, cashews, aiocache.

One throwaway ``redis-server`` per module (``perfprim.testing.RedisServer``),
every candidate reading the same value (a small JSON-able dict) from it:

- ``perfprim``: ``RedisTier.get`` / ``AsyncRedisTier.get`` (header + JSON decode)
- ``redis-py GET+decode``: ``client.get`` + ``json.loads`` (the floor, the budget's anchor)
- ``dogpile.cache``, ``cashews``, ``aiocache``: their Redis-backed ``get``

A hung server (SIGSTOP) run records the first call's latency and the median of
the next 20 calls (the circuit opens after 3 failures), and a two-process run
records the invalidation bus's delivery delay (publish -> other process's
``on_keys``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from _interleave import NOTE, interleaved, interleaved_async
from _redis_support import pinned_redis_server
from perfprim.cache import AsyncRedisTier, RedisTier
from perfprim.cache.advanced import Entry
from perfprim.exceptions import BackendError
from perfprim.testing import RedisServer

# The anchors use deprecated redis-py calls (dogpile: setex; aiocache: its own API).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

VALUE = {"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "tags": ["a", "b", "c"]}
RAW = json.dumps(VALUE, separators=(",", ":")).encode()
KEY = "bench:0:{user:42}"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with pinned_redis_server() as srv:
        yield srv


def entry() -> Entry:
    now = time.time()
    return Entry(VALUE, now + 3600, 0.0, now + 3600)


# -- sync get hit -------------------------------------------------------------------------


def test_get_perfprim(compare: Callable[..., Any], server: RedisServer) -> None:
    tier = RedisTier.from_url(server.url)
    tier.set(KEY, entry(), now=time.time())
    assert VALUE == tier.get(KEY).value  # type: ignore[union-attr]
    compare("cache_redis: get hit", "perfprim", tier.get, KEY)
    tier.close()


def test_get_raw(compare: Callable[..., Any], server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url)
    client.set("raw:user:42", RAW)
    loads, get = json.loads, client.get

    def raw_get() -> object:
        return loads(get("raw:user:42"))

    assert VALUE == raw_get()
    compare("cache_redis: get hit", "redis-py GET+decode", raw_get)
    client.close()


def test_get_dogpile(compare: Callable[..., Any], server: RedisServer) -> None:
    from dogpile.cache import make_region

    region = make_region().configure(
        "dogpile.cache.redis",
        arguments={"url": server.url, "redis_expiration_time": 3600},
    )
    region.set("dogpile:user:42", VALUE)
    assert VALUE == region.get("dogpile:user:42")
    compare("cache_redis: get hit", "dogpile.cache", region.get, "dogpile:user:42")
    region.backend.writer_client.close()


# -- sync set -----------------------------------------------------------------------------


def test_set_perfprim(compare: Callable[..., Any], server: RedisServer) -> None:
    tier = RedisTier.from_url(server.url)
    stored = entry()
    now = time.time()
    compare("cache_redis: set", "perfprim", lambda: tier.set(KEY, stored, now=now))
    tier.close()


def test_set_raw(compare: Callable[..., Any], server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url)
    dumps, set_ = json.dumps, client.set

    def raw_set() -> None:
        set_("raw:user:42", dumps(VALUE, separators=(",", ":")).encode(), px=3_600_000)

    compare("cache_redis: set", "redis-py SET+encode", raw_set)
    client.close()


def test_set_dogpile(compare: Callable[..., Any], server: RedisServer) -> None:
    from dogpile.cache import make_region

    region = make_region().configure(
        "dogpile.cache.redis",
        arguments={"url": server.url, "redis_expiration_time": 3600},
    )
    compare("cache_redis: set", "dogpile.cache", region.set, "dogpile:user:42", VALUE)
    region.backend.writer_client.close()


# -- async --------------------------------------------------------------------------------


class Op:
    """An async operation for ``compare_async`` that prepares and cleans up in its loop.

    The harness owns the event loop; the first call captures it and awaits
    ``prepare()`` there, and :meth:`close` awaits ``closer()`` in the same loop
    after the measurement, so no connection outlives its loop.
    """

    def __init__(self, op: Callable[[], Any], prepare: Callable[[], Any] | None = None) -> None:
        self.op = op
        self.prepare = prepare
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self) -> Any:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            if self.prepare is not None:
                await self.prepare()
        return await self.op()

    def close(self, closer: Callable[[], Any]) -> None:
        assert self.loop is not None
        self.loop.run_until_complete(closer())


def test_async_get_perfprim(compare_async: Callable[..., Any], server: RedisServer) -> None:
    tier = AsyncRedisTier.from_url(server.url)
    op = Op(lambda: tier.get(KEY), lambda: tier.set(KEY, entry(), now=time.time()))
    compare_async("cache_redis: async get hit", "perfprim", op)
    op.close(tier.close)


def test_async_get_raw(compare_async: Callable[..., Any], server: RedisServer) -> None:
    client = redis.asyncio.Redis.from_url(server.url)
    loads = json.loads

    async def raw_get() -> object:
        return loads(await client.get("raw:user:42"))

    op = Op(raw_get, lambda: client.set("raw:user:42", RAW))
    compare_async("cache_redis: async get hit", "redis-py GET+decode", op)
    op.close(client.aclose)


def test_async_get_cashews(compare_async: Callable[..., Any], server: RedisServer) -> None:
    from cashews import Cache

    cache = Cache()
    cache.setup(server.url)
    op = Op(
        lambda: cache.get("cashews:user:42"),
        lambda: cache.set("cashews:user:42", VALUE, expire=3600),
    )
    compare_async("cache_redis: async get hit", "cashews", op)
    op.close(cache.close)


def test_async_get_aiocache(compare_async: Callable[..., Any], server: RedisServer) -> None:
    from aiocache import RedisCache

    cache = RedisCache(endpoint=server.host, port=server.port)
    op = Op(
        lambda: cache.get("aiocache:user:42"),
        lambda: cache.set("aiocache:user:42", VALUE, ttl=3600),
    )
    compare_async("cache_redis: async get hit", "aiocache", op)
    op.close(cache.close)


def test_async_set_perfprim(compare_async: Callable[..., Any], server: RedisServer) -> None:
    tier = AsyncRedisTier.from_url(server.url)
    stored = entry()
    now = time.time()
    op = Op(lambda: tier.set(KEY, stored, now=now))
    compare_async("cache_redis: async set", "perfprim", op)
    op.close(tier.close)


def test_async_set_raw(compare_async: Callable[..., Any], server: RedisServer) -> None:
    client = redis.asyncio.Redis.from_url(server.url)
    dumps = json.dumps
    op = Op(
        lambda: client.set(
            "raw:user:42", dumps(VALUE, separators=(",", ":")).encode(), px=3_600_000
        )
    )
    compare_async("cache_redis: async set", "redis-py SET+encode", op)
    op.close(client.aclose)


# -- hung server --------------------------------------------------------------------------


def hung_run(call: Callable[[], Any]) -> tuple[float, float]:
    """Seconds of the first call to a paused server, and median of the next 20."""
    samples = []
    for _ in range(21):
        start = time.perf_counter()
        with contextlib.suppress(BackendError):
            call()
        samples.append(time.perf_counter() - start)
    return samples[0], statistics.median(samples[1:])


def test_hung_server(record_metric: Callable[..., None]) -> None:
    with RedisServer() as srv:
        tier = RedisTier.from_url(srv.url)
        tier.set(KEY, entry(), now=time.time())
        srv.pause()
        try:
            first, later = hung_run(lambda: tier.get(KEY))
        finally:
            srv.resume()
        assert "open" == tier.circuit_state
        tier.close()
    note = (
        "RedisTier defaults: socket_timeout 0.2 s, no driver retries, a timeout opens the breaker"
    )
    record_metric("cache_redis.hung.first_call_s", first, unit="s", note=note)
    record_metric("cache_redis.hung.open_call_median_s", later, unit="s", note="next 20 calls")


def test_hung_server_async(record_metric: Callable[..., None]) -> None:
    with RedisServer() as srv:
        loop = asyncio.new_event_loop()
        tier = AsyncRedisTier.from_url(srv.url)
        loop.run_until_complete(tier.set(KEY, entry(), now=time.time()))
        srv.pause()
        try:
            first, later = hung_run(lambda: loop.run_until_complete(tier.get(KEY)))
        finally:
            srv.resume()
        loop.run_until_complete(tier.close())
        loop.close()
    record_metric("cache_redis.hung.async_first_call_s", first, unit="s", note="AsyncRedisTier")
    record_metric(
        "cache_redis.hung.async_open_call_median_s", later, unit="s", note="next 20 calls"
    )


# -- invalidation delay -------------------------------------------------------------------

CHILD = r"""
import sys, time
from perfprim.cache.advanced import RedisInvalidationBus
bus = RedisInvalidationBus(sys.argv[1], channel="bench")
bus.start(lambda keys: print(f"{time.time()!r} {keys[0]}", flush=True), lambda: None)
bus.wait_subscribed(10)
print("ready", flush=True)
sys.stdin.readline()
bus.close()
"""


def test_invalidation_delay(record_metric: Callable[..., None], server: RedisServer) -> None:
    from perfprim.cache.advanced import RedisInvalidationBus

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, server.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    assert child.stdin is not None
    assert "ready" == child.stdout.readline().strip()
    bus = RedisInvalidationBus(server.url, channel="bench")
    bus.start(lambda keys: None, lambda: None)
    bus.wait_subscribed(10)
    delays = []
    publish_cost = []
    for i in range(200):
        sent = time.time()
        start = time.perf_counter()
        bus.publish([f"k{i}"])
        publish_cost.append(time.perf_counter() - start)
        stamp, key = child.stdout.readline().split()
        assert f"k{i}" == key
        delays.append(float(stamp) - sent)
    child.stdin.write("quit\n")
    child.stdin.flush()
    child.wait(timeout=10)
    child.stdin.close()
    child.stdout.close()
    bus.close()
    delays.sort()
    record_metric(
        "cache_redis.invalidation.delay_median_ms",
        statistics.median(delays) * 1e3,
        unit="ms",
        note="publish() -> on_keys in another process, 200 messages",
    )
    record_metric(
        "cache_redis.invalidation.delay_p99_ms", delays[197] * 1e3, unit="ms", note="99th of 200"
    )
    record_metric(
        "cache_redis.invalidation.publish_median_us",
        statistics.median(publish_cost) * 1e6,
        unit="us",
        note="caller's cost of publish() (a queue put)",
    )


# -- interleaved ratios (see _interleave.py) ----------------------------------------


def test_interleaved_ratios(record_metric: Callable[..., None], server: RedisServer) -> None:
    stored, now = entry(), time.time()
    tier = RedisTier.from_url(server.url)
    client = redis.Redis.from_url(server.url)
    tier.set(KEY, stored, now=now)
    client.set("raw:user:42", RAW)
    loads, dumps = json.loads, json.dumps

    def raw_set() -> None:
        client.set("raw:user:42", dumps(VALUE, separators=(",", ":")).encode(), px=3_600_000)

    get_ratio = interleaved(lambda: tier.get(KEY), lambda: loads(client.get("raw:user:42")))
    set_ratio = interleaved(lambda: tier.set(KEY, stored, now=now), raw_set)
    tier.close()
    client.close()

    async def run_async() -> tuple[float, float]:
        atier = AsyncRedisTier.from_url(server.url)
        aclient = redis.asyncio.Redis.from_url(server.url)

        async def raw_get() -> object:
            return loads(await aclient.get("raw:user:42"))

        async def araw_set() -> None:
            await aclient.set(
                "raw:user:42", dumps(VALUE, separators=(",", ":")).encode(), px=3_600_000
            )

        try:
            await atier.set(KEY, stored, now=now)
            return (
                await interleaved_async(lambda: atier.get(KEY), raw_get),
                await interleaved_async(lambda: atier.set(KEY, stored, now=now), araw_set),
            )
        finally:
            await atier.close()
            await aclient.aclose()

    async_get, async_set = asyncio.run(run_async())
    note = NOTE
    record_metric("cache_redis.interleaved.get_ratio", get_ratio, unit="x", note=note)
    record_metric("cache_redis.interleaved.set_ratio", set_ratio, unit="x", note=note)
    record_metric("cache_redis.interleaved.async_get_ratio", async_get, unit="x", note=note)
    record_metric("cache_redis.interleaved.async_set_ratio", async_set, unit="x", note=note)
