"""Before/after: the cache's hit and miss paths of two source trees, measured in one run.

Usage::

    git worktree add --detach /tmp/perfprim-before de932a1
    python benchmarks/compare_trees.py /tmp/perfprim-before/src src

Each round runs one subprocess per tree, alternating (before, after, before,
...), on one private redis-server; each subprocess measures perfprim and the
same anchor interleaved (``_interleave``) and prints the ratios. The medians
over the rounds are printed per tree, so a ratio can be compared across the
two trees although the machine's load changes between subprocesses.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

PROBE = r"""
import asyncio, json, statistics, sys, threading, time, uuid
sys.path.insert(0, sys.argv[2])
import cachetools, redis, redis.asyncio
import perfprim.cache as pc
from _interleave import interleaved, interleaved_async

url = sys.argv[1]
run = uuid.uuid4().hex[:8]  # fresh keys per probe: a miss must stay a miss in later rounds
new_api = hasattr(pc, "StampedeOptions")
VALUE = {"id": 42, "name": "Ada Lovelace", "roles": ["admin", "dev"], "active": True}
out = {}

def us(fn, n=200, reps=7):
    # median microseconds per call of fn over reps batches (the absolute figures)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(times)

async def aus(fn, n=200, reps=7):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(n):
            await fn()
        times.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(times)

def nolock():
    return {"stampede": pc.StampedeOptions(lock=False)} if new_api else {"lock": False}

def acache(*tiers, **kw):
    if new_api or isinstance(tiers[0], pc.MemoryTier):
        return pc.AsyncTieredCache(*tiers, **kw)
    return pc.AsyncTieredCache(None, *tiers, **kw)

# L1 hits against cachetools.cached with a lock
cache = pc.TieredCache(pc.MemoryTier(maxsize=10_000, ttl=60.0), ttl=60.0)
@cache.cached()
def ours(uid):
    return VALUE
@cachetools.cached(cachetools.TTLCache(maxsize=10_000, ttl=60.0), lock=threading.Lock())
def anchor(uid):
    return VALUE
ours(42); anchor(42)
out["l1 @cached (sync) / cachetools.cached+lock"] = interleaved(
    lambda: ours(42), lambda: anchor(42))
load = lambda: VALUE
out["l1 get_or_load (sync) / cachetools.cached+lock"] = interleaved(
    lambda: cache.get_or_load(f"user:{42}", load), lambda: anchor(42))

# L2 hit with a cold L1 (a cache without L1) against raw GET + json.loads
client = redis.Redis.from_url(url)
client.set("raw:user:42", json.dumps(VALUE))
raw = lambda: json.loads(client.get("raw:user:42"))
cold = pc.TieredCache(pc.RedisTier.from_url(url), ttl=3600.0, namespace="cmp-cold")
cold.get_or_load("user:42", load)
out["l2 hit cold L1 (sync) / GET+decode"] = interleaved(
    lambda: cold.get_or_load("user:42", load), raw)
out["  raw GET+decode (sync), us"] = us(raw)
out["  l2 hit cold L1 (sync), us"] = us(lambda: cold.get_or_load("user:42", load))

# a tagged L2 hit (tags checked in the read's round trip), as bench_cache_tags.py
tagged = pc.TieredCache(pc.RedisTier.from_url(url), namespace=f"cmp-tags-{run}",
                        invalidate_l1=False)
tagged.get_or_load("user:42", load, tags=["user:42", "users"])
out["l2 hit with tags (sync) / GET+decode"] = interleaved(
    lambda: tagged.get_or_load("user:42", load, tags=["user:42"]), raw)
out["  l2 hit with tags (sync), us"] = us(
    lambda: tagged.get_or_load("user:42", load, tags=["user:42"]))

# miss through L2 (plain cache-aside, lock off) against raw GET + SET
full = pc.TieredCache(pc.MemoryTier(maxsize=100_000), pc.RedisTier.from_url(url), ttl=3600.0,
                      namespace=f"cmp-miss-{run}", invalidate_l1=False, **nolock())
n = iter(range(10**9)); m = iter(range(10**9))
def raw_miss():
    k = f"raw-miss-{run}:{next(m)}"
    if client.get(k) is None:
        client.set(k, json.dumps(VALUE), ex=3600)
out["miss via L2 (sync, lock off) / GET+SET"] = interleaved(
    lambda: full.get_or_load(f"k{next(n)}", load), raw_miss)
out["  raw GET+SET (sync), us"] = us(raw_miss)
out["  miss via L2 (sync), us"] = us(lambda: full.get_or_load(f"k{next(n)}", load))

async def async_part():
    aclient = redis.asyncio.Redis.from_url(url)
    await aclient.set("raw:user:42", json.dumps(VALUE))
    async def araw():
        return json.loads(await aclient.get("raw:user:42"))
    async def aload():
        return VALUE
    acold = acache(pc.AsyncRedisTier.from_url(url), ttl=3600.0, namespace="cmp-acold")
    await acold.get_or_load("user:42", aload)
    out["l2 hit cold L1 (async) / GET+decode"] = await interleaved_async(
        lambda: acold.get_or_load("user:42", aload), araw)
    out["  raw GET+decode (async), us"] = await aus(araw)
    out["  l2 hit cold L1 (async), us"] = await aus(lambda: acold.get_or_load("user:42", aload))
    atagged = acache(pc.AsyncRedisTier.from_url(url), namespace=f"cmp-atags-{run}",
                     invalidate_l1=False)
    await atagged.get_or_load("user:42", aload, tags=["user:42", "users"])
    out["l2 hit with tags (async) / GET+decode"] = await interleaved_async(
        lambda: atagged.get_or_load("user:42", aload, tags=["user:42"]), araw)
    out["  l2 hit with tags (async), us"] = await aus(
        lambda: atagged.get_or_load("user:42", aload, tags=["user:42"]))
    afull = acache(pc.MemoryTier(maxsize=100_000), pc.AsyncRedisTier.from_url(url), ttl=3600.0,
                   namespace=f"cmp-amiss-{run}", invalidate_l1=False, **nolock())
    an = iter(range(10**9)); am = iter(range(10**9))
    async def araw_miss():
        k = f"araw-miss-{run}:{next(am)}"
        if await aclient.get(k) is None:
            await aclient.set(k, json.dumps(VALUE), ex=3600)
    out["miss via L2 (async, lock off) / GET+SET"] = await interleaved_async(
        lambda: afull.get_or_load(f"k{next(an)}", aload), araw_miss)
    out["  raw GET+SET (async), us"] = await aus(araw_miss)
    out["  miss via L2 (async), us"] = await aus(lambda: afull.get_or_load(f"k{next(an)}", aload))
    # async L1 hit against cachetools-async
    import cachetools_async
    l1 = acache(pc.MemoryTier(maxsize=10_000, ttl=60.0), ttl=60.0)
    @l1.cached()
    async def aours(uid):
        return VALUE
    @cachetools_async.cached(cachetools.TTLCache(maxsize=10_000, ttl=60.0))
    async def aanchor(uid):
        return VALUE
    await aours(42); await aanchor(42)
    out["l1 @cached (async) / cachetools-async"] = await interleaved_async(
        lambda: aours(42), lambda: aanchor(42))
    await acold.close(); await atagged.close(); await afull.close(); await l1.close()
    await aclient.aclose()

asyncio.run(async_part())
cold.close(); tagged.close(); full.close(); cache.close(); client.close()
print(json.dumps(out))
"""


def main(argv: list[str]) -> int:
    """Run ``rounds`` alternating probes of the two trees and print the median ratios."""
    if len(argv) < 2:
        print(__doc__)
        return 2
    before, after = (str(Path(p).resolve()) for p in argv[:2])
    rounds = int(argv[2]) if len(argv) > 2 else 3
    sys.path.insert(0, str(HERE.parent / "src"))
    from perfprim.testing import RedisServer

    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with RedisServer() as server:
        for _ in range(rounds):
            for label, src in (("before", before), ("after", after)):
                env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(HERE)])}
                done = subprocess.run(
                    [sys.executable, "-c", PROBE, server.url, src],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=True,
                    timeout=600,
                )
                results[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
    names = list(results["after"][0])
    print(f"{'path / anchor':50s} {'before':>8s} {'after':>8s}   (median of {rounds} rounds)")
    for name in names:
        b = statistics.median(r[name] for r in results["before"])
        a = statistics.median(r[name] for r in results["after"])
        print(f"{name:50s} {b:8.3f} {a:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
