"""The whole cache over a real Redis: ``TieredCache`` / ``AsyncTieredCache`` against peers.

One throwaway ``redis-server`` per module; every candidate reads the same
small JSON-able dict. All perfprim candidates go through the cache object,
never a tier alone.

- **L2 hit, cold L1**: a cache *without* an L1 (``TieredCache(RedisTier)``,
  ``AsyncTieredCache(AsyncRedisTier)``), so every call takes the L1-miss
  path and reads Redis, and nothing else differs from the production path
  (evicting before each call would time the eviction too; a tiny L1 would
  time its LRU churn). Anchors: raw redis-py ``GET`` + ``json.loads`` (the
  budget), dogpile.cache's redis backend, cashews (``redis://``) and aiocache
  ``RedisCache``.
- **miss through L2**: ``get_or_load`` with a trivial loader on a fresh key
  each call, through ``MemoryTier`` + Redis (``perfprim``) and through Redis
  alone (``perfprim (no L1)``): ``GET`` (a miss) + loader + ``SET PX`` + L1
  fill. Anchor: raw ``GET`` + ``json.dumps`` + ``SET PX``.
- **L1 hit with invalidation on**: the cache with its real
  ``RedisInvalidationBus`` running, against cashews ``client_side`` (async).
  redis-py client-side caching (RESP3 ``cache_config``) needs Redis >= 7.4
  and this machine's server is 7.0, so the sync group's anchor is a network
  ``GET`` + ``json.loads`` (what a client-side-cache hit cost in ANCHORS.md).
- **hung Redis** (SIGSTOP) through the cache: the first ``get_or_load`` and the
  median of the next 20 (fresh keys: each needs the loader).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from _interleave import NOTE, interleaved, interleaved_async
from _redis_support import pinned_redis_server
from perfprim.cache import (
    AsyncRedisTier,
    AsyncTieredCache,
    MemoryTier,
    RedisTier,
    StampedeOptions,
    TieredCache,
)
from perfprim.testing import RedisServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

VALUE = {"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "tags": ["a", "b", "c"]}
RAW = json.dumps(VALUE, separators=(",", ":")).encode()
KEY = "user:42"

L2_HIT = "cache_tiered: L2 hit, cold L1 (sync)"
MISS = "cache_tiered: miss through L2 (sync)"
L1_HIT = "cache_tiered: L1 hit, invalidation on (sync)"
AL2_HIT = "cache_tiered: L2 hit, cold L1 (async)"
AMISS = "cache_tiered: miss through L2 (async)"
AL1_HIT = "cache_tiered: L1 hit, invalidation on (async)"
L1_CACHED = "cache_tiered: L1 hit via @cached, invalidation on (sync)"
AL1_CACHED = "cache_tiered: L1 hit via @cached, invalidation on (async)"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with pinned_redis_server() as srv:
        yield srv


def bus_for(tier: Any, namespace: str = "bench") -> Any:
    """The invalidation bus a cache in ``namespace`` would build on ``tier`` (close it after).

    Passed as ``invalidation=``, so the benchmark can wait for its subscription:
    the first subscription flushes L1, which must not land inside a timing.
    """
    return tier.invalidation_bus(channel=f"perfprim:invalidate:{namespace}")


def load_value() -> dict[str, Any]:
    return VALUE


async def aload_value() -> dict[str, Any]:
    return VALUE


class Op:
    """An async operation for ``compare_async`` that prepares and cleans up in its loop.

    ``__call__`` is a plain function returning the operation's awaitable, so a
    timed call costs what ``lambda: cache.get(k)`` would; only the first call
    goes through a coroutine that captures the harness's loop and awaits
    ``prepare()`` there. :meth:`close` awaits ``closer()`` in the same loop.
    """

    def __init__(self, op: Callable[[], Any], prepare: Callable[[], Any] | None = None) -> None:
        self.op = op
        self.prepare = prepare
        self.loop: asyncio.AbstractEventLoop | None = None

    def __call__(self) -> Any:
        if self.loop is None:
            return self._first()
        return self.op()

    async def _first(self) -> Any:
        self.loop = asyncio.get_running_loop()
        if self.prepare is not None:
            await self.prepare()
        return await self.op()

    def close(self, closer: Callable[[], Any]) -> None:
        assert self.loop is not None
        self.loop.run_until_complete(closer())


def fresh_keys(prefix: str) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}:{next(counter)}"


# -- sync: L2 hit with a cold L1 ---------------------------------------------------------


def test_l2_hit_perfprim(compare: Callable[..., Any], server: RedisServer) -> None:
    cache = TieredCache(RedisTier.from_url(server.url), ttl=3600.0, namespace="bench")
    cache.set(KEY, VALUE)
    assert VALUE == cache.get_or_load(KEY, load_value)
    compare(L2_HIT, "perfprim", cache.get_or_load, KEY, load_value)
    assert 0 == cache.stats().loads
    cache.close()


def test_l2_hit_raw(compare: Callable[..., Any], server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url)
    client.set("raw:user:42", RAW)
    loads, get = json.loads, client.get

    def raw_get() -> object:
        return loads(get("raw:user:42"))

    assert VALUE == raw_get()
    compare(L2_HIT, "redis-py GET+decode", raw_get)
    client.close()


def test_l2_hit_dogpile(compare: Callable[..., Any], server: RedisServer) -> None:
    from dogpile.cache import make_region

    region = make_region().configure(
        "dogpile.cache.redis", arguments={"url": server.url, "redis_expiration_time": 3600}
    )
    region.set("dogpile:user:42", VALUE)
    assert VALUE == region.get("dogpile:user:42")
    compare(L2_HIT, "dogpile.cache", region.get, "dogpile:user:42")
    region.backend.writer_client.close()


# -- sync: miss through L2 ---------------------------------------------------------------


# The plain cache-aside miss (``lock=False``: GET, load, SET, the raw path's two round
# trips) carries issue 3's budget; the default ``lock=True`` adds the distributed load
# lock's round trip (GET, acquire, SET+release) and has its own budget.
MISS_VARIANTS = {
    "perfprim": {"l1": True, "lock": False},
    "perfprim (no L1)": {"l1": False, "lock": False},
    "perfprim (lock, default)": {"l1": True, "lock": True},
}


@pytest.mark.parametrize("candidate", list(MISS_VARIANTS))
def test_miss_perfprim(compare: Callable[..., Any], server: RedisServer, candidate: str) -> None:
    l1, lock = MISS_VARIANTS[candidate]["l1"], MISS_VARIANTS[candidate]["lock"]
    tiers: list[Any] = [MemoryTier(maxsize=10_000, ttl=60.0)] if l1 else []
    cache = TieredCache(
        *tiers,
        RedisTier.from_url(server.url),
        ttl=3600.0,
        namespace="bench",
        stampede=StampedeOptions(lock=lock),
    )
    key = fresh_keys(f"miss-{l1}-{lock}")

    def miss() -> object:
        return cache.get_or_load(key(), load_value)

    compare(MISS, candidate, miss)
    assert cache.stats().loads > 0
    assert 0 == cache.stats().backend_errors
    cache.close()


def test_miss_raw(compare: Callable[..., Any], server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url)
    key = fresh_keys("rawmiss")
    get, set_, dumps, loads = client.get, client.set, json.dumps, json.loads

    def raw_miss() -> object:
        k = key()
        raw = get(k)
        if raw is not None:
            return loads(raw)
        value = load_value()
        set_(k, dumps(value, separators=(",", ":")).encode(), px=3_600_000)
        return value

    compare(MISS, "redis-py GET+SET", raw_miss)
    client.close()


# -- sync: L1 hit with cross-process invalidation on ---------------------------------------


def test_l1_hit_perfprim(compare: Callable[..., Any], server: RedisServer) -> None:
    tier = RedisTier.from_url(server.url)
    bus = bus_for(tier)
    cache = TieredCache(
        MemoryTier(maxsize=10_000, ttl=60.0), tier, ttl=3600.0, namespace="bench", invalidation=bus
    )
    assert bus.wait_subscribed(10)
    cache.get_or_load(KEY, load_value)
    compare(L1_HIT, "perfprim", cache.get_or_load, KEY, load_value)
    assert cache.stats().tiers[0].hits > 0
    cache.close()
    bus.close()


def test_l1_hit_raw(compare: Callable[..., Any], server: RedisServer) -> None:
    # redis-py client-side caching (RESP3 cache_config) refuses servers older than 7.4
    # ("client-side caching is supported by Redis 7.4 or later"); this machine runs 7.0.
    # A network GET + decode stands in: ANCHORS.md measured client-side-cache hits at
    # ~70 us, the cost of a GET.
    client = redis.Redis.from_url(server.url)
    client.set("raw:user:42", RAW)
    loads, get = json.loads, client.get

    def raw_get() -> object:
        return loads(get("raw:user:42"))

    compare(L1_HIT, "redis-py GET+decode", raw_get)
    client.close()


def test_l1_cached_perfprim(compare: Callable[..., Any], server: RedisServer) -> None:
    tier = RedisTier.from_url(server.url)
    bus = bus_for(tier)
    cache = TieredCache(
        MemoryTier(maxsize=10_000, ttl=60.0), tier, namespace="bc", invalidation=bus
    )
    assert bus.wait_subscribed(10)

    @cache.cached(ttl=3600.0)
    def user(uid: int) -> dict[str, Any]:
        return VALUE

    user(42)
    compare(L1_CACHED, "perfprim", user, 42)
    cache.close()
    bus.close()


def test_l1_cached_raw(compare: Callable[..., Any], server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url)
    client.set("raw:user:42", RAW)
    loads, get = json.loads, client.get

    def user(uid: int) -> object:
        return loads(get(f"raw:user:{uid}"))

    compare(L1_CACHED, "redis-py GET+decode", user, 42)
    client.close()


# -- async: L2 hit with a cold L1 ----------------------------------------------------------


def test_async_l2_hit_perfprim(compare_async: Callable[..., Any], server: RedisServer) -> None:
    cache = AsyncTieredCache(AsyncRedisTier.from_url(server.url), ttl=3600.0, namespace="b")
    op = Op(lambda: cache.get_or_load(KEY, aload_value), lambda: cache.set(KEY, VALUE))
    compare_async(AL2_HIT, "perfprim", op)
    assert 0 == cache.stats().loads
    op.close(cache.close)


def test_async_l2_hit_raw(compare_async: Callable[..., Any], server: RedisServer) -> None:
    client = redis.asyncio.Redis.from_url(server.url)
    loads = json.loads

    async def raw_get() -> object:
        return loads(await client.get("raw:user:42"))

    op = Op(raw_get, lambda: client.set("raw:user:42", RAW))
    compare_async(AL2_HIT, "redis-py GET+decode", op)
    op.close(client.aclose)


def test_async_l2_hit_cashews(compare_async: Callable[..., Any], server: RedisServer) -> None:
    from cashews import Cache

    cache = Cache()
    cache.setup(server.url)
    op = Op(
        lambda: cache.get("cashews:user:42"),
        lambda: cache.set("cashews:user:42", VALUE, expire=3600),
    )
    compare_async(AL2_HIT, "cashews", op)
    op.close(cache.close)


def test_async_l2_hit_aiocache(compare_async: Callable[..., Any], server: RedisServer) -> None:
    from aiocache import RedisCache

    cache = RedisCache(endpoint=server.host, port=server.port)
    op = Op(
        lambda: cache.get("aiocache:user:42"),
        lambda: cache.set("aiocache:user:42", VALUE, ttl=3600),
    )
    compare_async(AL2_HIT, "aiocache", op)
    op.close(cache.close)


# -- async: miss through L2 ----------------------------------------------------------------


@pytest.mark.parametrize("candidate", list(MISS_VARIANTS))
def test_async_miss_perfprim(
    compare_async: Callable[..., Any], server: RedisServer, candidate: str
) -> None:
    l1, lock = MISS_VARIANTS[candidate]["l1"], MISS_VARIANTS[candidate]["lock"]
    tiers: list[Any] = [MemoryTier(maxsize=10_000, ttl=60.0)] if l1 else []
    cache = AsyncTieredCache(
        *tiers,
        AsyncRedisTier.from_url(server.url),
        ttl=3600.0,
        namespace="bench",
        stampede=StampedeOptions(lock=lock),
    )
    key = fresh_keys(f"amiss-{l1}-{lock}")
    op = Op(lambda: cache.get_or_load(key(), aload_value))
    compare_async(AMISS, candidate, op)
    assert 0 == cache.stats().backend_errors
    op.close(cache.close)


def test_async_miss_raw(compare_async: Callable[..., Any], server: RedisServer) -> None:
    client = redis.asyncio.Redis.from_url(server.url)
    key = fresh_keys("arawmiss")
    dumps, loads = json.dumps, json.loads

    async def raw_miss() -> object:
        k = key()
        raw = await client.get(k)
        if raw is not None:
            return loads(raw)
        value = await aload_value()
        await client.set(k, dumps(value, separators=(",", ":")).encode(), px=3_600_000)
        return value

    op = Op(raw_miss)
    compare_async(AMISS, "redis-py GET+SET", op)
    op.close(client.aclose)


# -- async: L1 hit with cross-process invalidation on --------------------------------------


def test_async_l1_hit_perfprim(compare_async: Callable[..., Any], server: RedisServer) -> None:
    tier = AsyncRedisTier.from_url(server.url)
    bus = bus_for(tier)
    cache = AsyncTieredCache(
        MemoryTier(maxsize=10_000, ttl=60.0), tier, ttl=3600.0, namespace="bench", invalidation=bus
    )
    assert bus.wait_subscribed(10)

    async def prepare() -> None:
        await cache.get_or_load(KEY, aload_value)

    op = Op(lambda: cache.get_or_load(KEY, aload_value), prepare)
    compare_async(AL1_HIT, "perfprim", op)
    assert cache.stats().tiers[0].hits > 0
    op.close(cache.close)
    bus.close()


def test_async_l1_hit_cashews_client_side(
    compare_async: Callable[..., Any], server: RedisServer
) -> None:
    from cashews import Cache

    cache = Cache()
    cache.setup(server.url, client_side=True)

    async def prepare() -> None:
        await cache.set("cs:user:42", VALUE, expire=3600)
        await cache.get("cs:user:42")

    op = Op(lambda: cache.get("cs:user:42"), prepare)
    compare_async(AL1_HIT, "cashews client_side", op)
    op.close(cache.close)


def test_async_l1_cached_perfprim(compare_async: Callable[..., Any], server: RedisServer) -> None:
    tier = AsyncRedisTier.from_url(server.url)
    bus = bus_for(tier)
    cache = AsyncTieredCache(
        MemoryTier(maxsize=10_000, ttl=60.0), tier, namespace="bc", invalidation=bus
    )
    assert bus.wait_subscribed(10)

    @cache.cached(ttl=3600.0)
    async def user(uid: int) -> dict[str, Any]:
        return VALUE

    op = Op(lambda: user(42))
    compare_async(AL1_CACHED, "perfprim", op)
    op.close(cache.close)
    bus.close()


def test_async_l1_cached_cashews_client_side(
    compare_async: Callable[..., Any], server: RedisServer
) -> None:
    from cashews import Cache

    cache = Cache()
    cache.setup(server.url, client_side=True)

    @cache(ttl=3600)
    async def user(uid: int) -> dict[str, Any]:
        return VALUE

    op = Op(lambda: user(42))
    compare_async(AL1_CACHED, "cashews client_side", op)
    op.close(cache.close)


# -- hung Redis through the cache ----------------------------------------------------------


def hung_run(call: Callable[[str], Any]) -> tuple[float, float]:
    """Seconds of the first call with the server paused, and the median of the next 20."""
    samples = []
    for i in range(21):
        start = time.perf_counter()
        call(f"hung:{i}")
        samples.append(time.perf_counter() - start)
    return samples[0], statistics.median(samples[1:])


def test_hung_redis_through_the_cache(record_metric: Callable[..., None]) -> None:
    with RedisServer() as srv:
        cache = TieredCache(
            MemoryTier(maxsize=1000, ttl=60.0), RedisTier.from_url(srv.url), namespace="hung"
        )
        cache.get_or_load("warm", load_value)  # a running service: generations already read
        srv.pause()
        try:
            first, later = hung_run(lambda key: cache.get_or_load(key, load_value))
            stats = cache.stats()
        finally:
            srv.resume()
        cache.close()
    assert "open" == stats.tiers[1].circuit_state
    assert 21 + 1 == stats.loads
    note = "TieredCache(MemoryTier, RedisTier.from_url) defaults: 0.2 s timeout opens the breaker"
    record_metric("cache_tiered.hung.first_call_s", first, unit="s", note=note)
    record_metric("cache_tiered.hung.later_median_s", later, unit="s", note="next 20 calls")


def test_hung_redis_through_the_async_cache(record_metric: Callable[..., None]) -> None:
    with RedisServer() as srv:
        loop = asyncio.new_event_loop()
        cache = AsyncTieredCache(
            MemoryTier(maxsize=1000, ttl=60.0), AsyncRedisTier.from_url(srv.url), namespace="hung"
        )
        loop.run_until_complete(cache.get_or_load("warm", aload_value))
        srv.pause()
        try:
            first, later = hung_run(
                lambda key: loop.run_until_complete(cache.get_or_load(key, aload_value))
            )
            stats = cache.stats()
        finally:
            srv.resume()
        with contextlib.suppress(Exception):
            loop.run_until_complete(cache.close())
        loop.close()
    assert "open" == stats.tiers[1].circuit_state
    note = "AsyncTieredCache(MemoryTier, AsyncRedisTier.from_url) defaults"
    record_metric("cache_tiered.hung.async_first_call_s", first, unit="s", note=note)
    record_metric("cache_tiered.hung.async_later_median_s", later, unit="s", note="next 20")


# -- interleaved ratios (see _interleave.py) ----------------------------------------


def test_interleaved_ratios(record_metric: Callable[..., None], server: RedisServer) -> None:
    loads, dumps = json.loads, json.dumps
    cold = TieredCache(RedisTier.from_url(server.url), ttl=3600.0, namespace="il")
    full = TieredCache(
        MemoryTier(maxsize=10_000, ttl=60.0),
        RedisTier.from_url(server.url),
        ttl=3600.0,
        namespace="il",
        stampede=StampedeOptions(lock=False),  # the plain cache-aside miss, as raw does it
    )
    client = redis.Redis.from_url(server.url)
    cold.set(KEY, VALUE)
    client.set("raw:user:42", RAW)
    ours_key, raw_key = fresh_keys("il-miss"), fresh_keys("il-rawmiss")

    def raw_miss() -> object:
        k = raw_key()
        raw = client.get(k)
        if raw is not None:
            return loads(raw)
        client.set(k, dumps(VALUE, separators=(",", ":")).encode(), px=3_600_000)
        return VALUE

    hit = interleaved(
        lambda: cold.get_or_load(KEY, load_value), lambda: loads(client.get("raw:user:42"))
    )
    miss = interleaved(lambda: full.get_or_load(ours_key(), load_value), raw_miss)
    cold.close()
    full.close()
    client.close()

    async def run_async() -> tuple[float, float]:
        acold = AsyncTieredCache(AsyncRedisTier.from_url(server.url), namespace="il")
        afull = AsyncTieredCache(
            MemoryTier(maxsize=10_000, ttl=60.0),
            AsyncRedisTier.from_url(server.url),
            namespace="il",
            stampede=StampedeOptions(lock=False),  # the plain cache-aside miss, as raw does it
        )
        aclient = redis.asyncio.Redis.from_url(server.url)
        akey, araw_key = fresh_keys("il-amiss"), fresh_keys("il-arawmiss")

        async def raw_get() -> object:
            return loads(await aclient.get("raw:user:42"))

        async def araw_miss() -> object:
            k = araw_key()
            raw = await aclient.get(k)
            if raw is not None:
                return loads(raw)
            await aclient.set(k, dumps(VALUE, separators=(",", ":")).encode(), px=3_600_000)
            return VALUE

        try:
            await acold.set(KEY, VALUE)
            return (
                await interleaved_async(lambda: acold.get_or_load(KEY, aload_value), raw_get),
                await interleaved_async(lambda: afull.get_or_load(akey(), aload_value), araw_miss),
            )
        finally:
            await acold.close()
            await afull.close()
            await aclient.aclose()

    ahit, amiss = asyncio.run(run_async())
    note = NOTE
    record_metric("cache_tiered.interleaved.l2_hit_ratio", hit, unit="x", note=note)
    record_metric("cache_tiered.interleaved.miss_ratio", miss, unit="x", note=note)
    record_metric("cache_tiered.interleaved.async_l2_hit_ratio", ahit, unit="x", note=note)
    record_metric("cache_tiered.interleaved.async_miss_ratio", amiss, unit="x", note=note)


# -- invalidation delay through the cache ----------------------------------------------------

CHILD = r"""
import sys, time
from perfprim.cache import MemoryTier, RedisTier, TieredCache

class Stamped:
    # The tier's own RedisInvalidationBus; prints when the cache has dropped the keys.
    def __init__(self, bus):
        self.bus = bus
    def publish(self, keys):
        self.bus.publish(keys)
    def start(self, on_keys, on_flush):
        def keys(changed):
            on_keys(changed)
            print(f"{time.time()!r} {changed[0]}", flush=True)
        self.bus.start(keys, on_flush)
    def close(self):
        self.bus.close()

tier = RedisTier.from_url(sys.argv[1])
bus = Stamped(tier.invalidation_bus(channel="perfprim:invalidate:delay"))  # the cache default
cache = TieredCache(MemoryTier(maxsize=1000, ttl=300.0), tier, namespace="delay", invalidation=bus)
bus.bus.wait_subscribed(10)
print("ready", flush=True)
sys.stdin.readline()
cache.close()
bus.close()
"""


def test_invalidation_delay_through_the_cache(
    record_metric: Callable[..., None], server: RedisServer
) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, server.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert child.stdout is not None
    assert child.stdin is not None
    assert "ready" == child.stdout.readline().strip()
    tier = RedisTier.from_url(server.url)
    bus = bus_for(tier, "delay")
    cache = TieredCache(
        MemoryTier(maxsize=1000, ttl=300.0), tier, namespace="delay", invalidation=bus
    )
    assert bus.wait_subscribed(10)
    delays, set_cost = [], []
    for i in range(200):
        sent = time.time()
        start = time.perf_counter()
        cache.set(f"k{i}", i)
        set_cost.append(time.perf_counter() - start)
        stamp, key = child.stdout.readline().split()
        assert key.endswith(f"{{k{i}}}")
        delays.append(float(stamp) - sent)
    child.stdin.write("quit\n")
    child.stdin.flush()
    child.wait(timeout=10)
    child.stdin.close()
    child.stdout.close()
    cache.close()
    bus.close()
    delays.sort()
    note = "cache.set() here -> other process's L1 copy dropped, 200 sets"
    record_metric(
        "cache_tiered.invalidation.delay_median_ms",
        statistics.median(delays) * 1e3,
        unit="ms",
        note=note,
    )
    record_metric(
        "cache_tiered.invalidation.delay_p99_ms", delays[197] * 1e3, unit="ms", note="99th of 200"
    )
    record_metric(
        "cache_tiered.set_median_us",
        statistics.median(set_cost) * 1e6,
        unit="us",
        note="cache.set() with L1 + Redis + bus publish (one SET round trip)",
    )
