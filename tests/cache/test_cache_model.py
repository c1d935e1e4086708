"""Invariants: the cache over L1 + L2 behaves like a dict, and its hit paths do not suspend."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from perfprim.cache import AsyncTieredCache, MemoryTier, TieredCache
from tests.cache.conformance import FakeClock

keys = st.sampled_from(["a", "b", "c{", "ключ", "x" * 300])
values = st.one_of(st.none(), st.integers(), st.text(max_size=5))


class CacheModel(RuleBasedStateMachine):
    """Random set/delete/get_or_load/clear/L1 flush sequences against a dict model.

    The clock never moves, so nothing expires: what the cache returns must be
    exactly what the dict holds, whichever tier answers.
    """

    def __init__(self) -> None:
        super().__init__()
        clock = FakeClock()
        self.l1 = MemoryTier(maxsize=3, ttl=10.0)
        self.l2 = MemoryTier(maxsize=1000, timer=clock)
        self.cache = TieredCache(self.l1, self.l2, ttl=60.0, clock=clock)
        self.model: dict[str, Any] = {}

    @rule(key=keys, value=values)
    def set(self, key: str, value: Any) -> None:
        self.cache.set(key, value)
        self.model[key] = value

    @rule(key=keys)
    def delete(self, key: str) -> None:
        self.cache.delete(key)
        self.model.pop(key, None)

    @rule(key=keys, value=values)
    def get_or_load(self, key: str, value: Any) -> None:
        expected = self.model.setdefault(key, value)
        assert expected == self.cache.get_or_load(key, lambda: value)

    @rule()
    def clear(self) -> None:
        self.cache.clear()
        self.model.clear()

    @rule()
    def lose_l1(self) -> None:
        self.l1.clear()

    @invariant()
    def reads_match_the_model(self) -> None:
        missing = object()
        for key in ["a", "b", "c{", "ключ", "x" * 300]:
            assert self.model.get(key, missing) == self.cache.get(key, missing)
        assert self.model == self.cache.get_many(list(self.model))


TestCacheModel = CacheModel.TestCase
TestCacheModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_async_l1_hits_complete_without_suspending() -> None:
    """An L1 hit of the async cache finishes on the first send(): no await, no Task."""
    acache = AsyncTieredCache(MemoryTier(), ttl=60.0)

    @acache.cached()
    async def price(sku: str) -> int:
        await asyncio.sleep(0)  # a load suspends once
        return 5

    async def load() -> int:
        await asyncio.sleep(0)
        return 7

    async def fill() -> None:
        await price("A")
        await acache.get_or_load("k", load)

    asyncio.run(fill())
    for coro, expected in ((price("A"), 5), (acache.get_or_load("k", load), 7)):
        with pytest.raises(StopIteration) as done:  # a suspension would return instead
            coro.send(None)
        assert expected == done.value.value


def test_import_cache_imports_no_redis() -> None:
    """Import perfprim.cache (in a fresh interpreter) loads neither redis nor hdrhistogram."""
    code = "import sys, json, perfprim.cache;print(json.dumps(sorted(m for m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": ":".join(sys.path)},
    ).stdout
    heavy = [m for m in json.loads(out) if m.split(".")[0] in {"redis", "hdrhistogram"}]
    assert [] == heavy


def test_threads_hammering_one_cache_stay_consistent() -> None:
    """4 threads mixing loads, sets, deletes and clears: no error, values always valid."""
    import threading

    cache = TieredCache(MemoryTier(maxsize=64, ttl=5.0), MemoryTier(maxsize=256), ttl=60.0)
    errors: list[BaseException] = []
    seen: set[object] = set()

    def work(seed: int) -> None:
        try:
            for i in range(1500):
                key = f"k{(i * 7 + seed) % 40}"
                if i % 97 == 0:
                    cache.clear()
                elif i % 5 == 0:
                    cache.set(key, ("set", key))
                elif i % 11 == 0:
                    cache.delete(key)
                else:
                    seen.add(cache.get_or_load(key, lambda key=key: ("load", key)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [] == errors
    assert all(kind in ("set", "load") and isinstance(k, str) for kind, k in seen)
    stats = cache.stats()
    assert stats.loads >= 1
    assert len(cache._l1) <= 64
