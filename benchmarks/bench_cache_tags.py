"""Tags: invalidating a group of 10,000 keys, and what tags cost on the L1 and L2 hit paths.

- **Invalidate a tag over 10,000 keys**, three ways on one private redis-server,
  interleaved over rounds (medians): perfprim's ``invalidate_tags`` (one INCR),
  the hand-written ``SCAN MATCH user_list:* ... DEL`` users write today, and
  cashews' tags (``delete_tags``: SPOP 100 keys, DEL them, repeat). Wall time
  and the commands the server counted.
- **L2 hit with tags**: a cache without L1 reading a tagged entry (the read
  checks the tags in the same round trip), interleaved with a raw redis-py
  ``GET`` + ``json.loads``. Budget: <= 1.15x. Also, without a budget, against
  the same ``GET`` sent on one held redis-py connection: the tier sends its
  commands on connections it keeps, without redis-py's per-command wrapper
  and pool checkout, so this is the floor that shows the cache's own cost.
- **L1 hit with tags**: the same ``get_or_load`` on a tagged and an untagged
  entry, interleaved: tags cost the hit path nothing.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from _interleave import NOTE, interleaved, interleaved_async
from _redis_support import pinned_redis_server
from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier, RedisTier, TieredCache
from perfprim.testing import RedisServer

# cashews (the anchor) closes its redis-py client with a call redis-py deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")

KEYS = 10_000
ROUNDS = 3
VALUE = {"id": 42, "name": "Ada Lovelace", "roles": ["admin", "dev"], "active": True}


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """A private redis-server for this module."""
    if not RedisServer.available():
        pytest.skip("redis-server is not on PATH")
    with pinned_redis_server() as srv:
        yield srv


def command_count(client: Any) -> int:
    """Commands the server ran since the last CONFIG RESETSTAT (Lua's own included)."""
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if "config" not in k)


def perfprim_round(url: str, n: int) -> tuple[float, int]:
    cache = TieredCache(
        MemoryTier(maxsize=KEYS + 10), RedisTier.from_url(url), namespace=f"tags{n}"
    )
    cache.set_many({f"user_list:{i}": VALUE for i in range(KEYS)}, tags=["user_list"])
    client = redis.Redis.from_url(url)
    time.sleep(1.0)  # the bus's sender publishes set_many's keys meanwhile: not ours to count
    client.config_resetstat()
    start = time.perf_counter()
    cache.invalidate_tags("user_list")
    elapsed = time.perf_counter() - start
    commands = command_count(client)
    reader = TieredCache(RedisTier.from_url(url), namespace=f"tags{n}", invalidate_l1=False)
    assert {} == reader.get_many([f"user_list:{i}" for i in range(0, KEYS, 97)])
    reader.close()
    cache.close()
    client.close()
    return elapsed, commands


def scan_del_round(url: str, n: int) -> tuple[float, int]:
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    for i in range(KEYS):
        pipe.set(f"sd{n}:user_list:{i}", json.dumps(VALUE), ex=3600)
    pipe.execute()
    client.config_resetstat()
    start = time.perf_counter()
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"sd{n}:user_list:*", count=1000):
        batch.append(key)
        if len(batch) == 500:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)
    elapsed = time.perf_counter() - start
    commands = command_count(client)
    assert 0 == sum(1 for _ in client.scan_iter(match=f"sd{n}:user_list:*", count=1000))
    client.close()
    return elapsed, commands


def cashews_round(url: str, n: int) -> tuple[float, int]:
    from cashews import Cache

    async def run() -> tuple[float, int]:
        cache = Cache()
        cache.setup(url)
        cache.register_tag("user_list", f"cw{n}:user_list:{{id}}")
        for i in range(KEYS):
            await cache.set(f"cw{n}:user_list:{i}", VALUE, expire=3600, tags=["user_list"])
        client = redis.Redis.from_url(url)
        client.config_resetstat()
        start = time.perf_counter()
        await cache.delete_tags("user_list")
        elapsed = time.perf_counter() - start
        commands = command_count(client)
        assert None is await cache.get(f"cw{n}:user_list:1")
        client.close()
        await cache.close()
        return elapsed, commands

    return asyncio.run(run())


def test_invalidate_a_tag_over_10k_keys(server: RedisServer, record_metric: Any) -> None:
    """Perfprim, SCAN+DEL and cashews in interleaved rounds: medians of wall time and commands."""
    runs: dict[str, list[tuple[float, int]]] = {"perfprim": [], "scan+del": [], "cashews": []}
    for n in range(ROUNDS):
        runs["perfprim"].append(perfprim_round(server.url, n))
        runs["scan+del"].append(scan_del_round(server.url, n))
        runs["cashews"].append(cashews_round(server.url, n))
        redis.Redis.from_url(server.url).flushall()
    med = {name: statistics.median(t for t, _ in r) for name, r in runs.items()}
    cmds = {name: statistics.median(c for _, c in r) for name, r in runs.items()}
    note = f"{KEYS} keys, median of {ROUNDS} interleaved rounds"
    for name in runs:
        label = name.replace("+", "_")
        record_metric(f"cache_tags.invalidate_10k.{label}_ms", med[name] * 1e3, "ms", note)
        record_metric(f"cache_tags.invalidate_10k.{label}_commands", cmds[name], "", note)
    record_metric(
        "cache_tags.invalidate_10k.ratio_vs_scan_del", med["perfprim"] / med["scan+del"], "", note
    )
    record_metric(
        "cache_tags.invalidate_10k.ratio_vs_cashews", med["perfprim"] / med["cashews"], "", note
    )


def _raw_get(url: str) -> tuple[Callable[[], Any], Any]:
    client = redis.Redis.from_url(url)
    client.set("raw:user:42", json.dumps(VALUE))
    loads, get = json.loads, client.get
    return (lambda: loads(get("raw:user:42"))), client


def test_l2_hit_with_tags_interleaved(server: RedisServer, record_metric: Any) -> None:
    """A tagged L2 hit (tags checked in the read's round trip) against raw GET + decode."""
    cache = TieredCache(RedisTier.from_url(server.url), namespace="l2t", invalidate_l1=False)

    def load() -> dict[str, Any]:
        return VALUE

    cache.get_or_load("user:42", load, tags=["user:42", "users"])
    raw, client = _raw_get(server.url)
    ratio = interleaved(lambda: cache.get_or_load("user:42", load, tags=["user:42"]), raw)
    record_metric("cache_tags.interleaved.l2_hit_ratio", ratio, "x", NOTE + ", vs GET+decode")
    # The floor, no budget: the same GET + decode sent on one held redis-py connection
    # (no pool checkout, no command wrapper), which is how the tier sends its read.
    conn = client.connection_pool.get_connection()
    loads = json.loads

    def floor() -> Any:
        conn.send_command("GET", "raw:user:42")
        return loads(conn.read_response())

    ratio = interleaved(lambda: cache.get_or_load("user:42", load, tags=["user:42"]), floor)
    record_metric(
        "cache_tags.interleaved.l2_hit_vs_connection_ratio",
        ratio,
        "x",
        NOTE + ", vs GET+decode on one held connection (the floor; no budget)",
    )
    client.connection_pool.release(conn)
    assert cache.stats().tiers[0].hits > 0
    cache.close()
    client.close()


def test_async_l2_hit_with_tags_interleaved(server: RedisServer, record_metric: Any) -> None:
    """The asyncio twin, against redis.asyncio GET + decode."""
    import redis.asyncio

    async def run() -> float:
        cache = AsyncTieredCache(
            AsyncRedisTier.from_url(server.url), namespace="l2ta", invalidate_l1=False
        )

        async def load() -> dict[str, Any]:
            return VALUE

        await cache.get_or_load("user:42", load, tags=["user:42", "users"])
        client = redis.asyncio.Redis.from_url(server.url)
        await client.set("raw:user:42", json.dumps(VALUE))
        loads, get = json.loads, client.get

        async def raw() -> Any:
            return loads(await get("raw:user:42"))

        ratio = await interleaved_async(
            lambda: cache.get_or_load("user:42", load, tags=["user:42"]), raw
        )
        await cache.close()
        await client.aclose()
        return ratio

    ratio = asyncio.run(run())
    record_metric("cache_tags.interleaved.async_l2_hit_ratio", ratio, "x", NOTE + ", vs GET+decode")


def test_l1_hit_with_tags_interleaved(record_metric: Any) -> None:
    """@cached L1 hit of a tagged function vs an untagged one: the hit path is the same code.

    (Tags are computed on a miss only.) ``get_or_load(..., tags=T)`` pays the
    keyword argument itself, measured too.
    """
    cache = TieredCache(MemoryTier(maxsize=100), ttl=3600.0, namespace="l1t")

    @cache.cached(tags=lambda uid: [f"user:{uid}"])
    def tagged(uid: int) -> dict[str, Any]:
        return VALUE

    @cache.cached()
    def plain(uid: int) -> dict[str, Any]:
        return VALUE

    tagged(42)
    plain(42)
    ratio = interleaved(lambda: tagged(42), lambda: plain(42))
    record_metric("cache_tags.interleaved.l1_hit_ratio", ratio, "x", NOTE + ", tagged/untagged")

    def load() -> dict[str, Any]:
        return VALUE

    tags = ("user:42",)
    cache.get_or_load("tagged", load, tags=tags)
    cache.get_or_load("plain", load)
    ratio = interleaved(
        lambda: cache.get_or_load("tagged", load, tags=tags),
        lambda: cache.get_or_load("plain", load),
    )
    record_metric(
        "cache_tags.interleaved.l1_get_or_load_ratio", ratio, "x", NOTE + ", tagged/untagged"
    )
