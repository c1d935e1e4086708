"""Public surface of perfprim.cache and fail-fast configuration."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import perfprim.cache
from perfprim.cache import AsyncTieredCache, MemoryTier, TieredCache
from perfprim.exceptions import ConfigurationError
from tests.cache.helpers import AsyncAdapter


def test_exported_members() -> None:
    """perfprim.cache exports what an application uses, and nothing else (pinned)."""
    assert [
        "AsyncCachedFunction",
        "AsyncRedisTier",
        "AsyncTieredCache",
        "CacheStats",
        "CachedFunction",
        "JsonSerializer",
        "MemoryTier",
        "PickleSerializer",
        "RedisTier",
        "StampedeOptions",
        "TierStats",
        "TieredCache",
    ] == perfprim.cache.__all__


def test_advanced_exported_members() -> None:
    """perfprim.cache.advanced exports the building blocks (pinned)."""
    import perfprim.cache.advanced

    assert [
        "MISSING",
        "AsyncBoundCachedMethod",
        "AsyncLockingTier",
        "AsyncRedisLock",
        "AsyncSingleFlight",
        "AsyncTier",
        "BoundCachedMethod",
        "CircuitState",
        "Decision",
        "Entry",
        "HitPath",
        "InvalidationBus",
        "KeyScope",
        "Lease",
        "LockStats",
        "LockingTier",
        "Record",
        "RedisInvalidationBus",
        "RedisLock",
        "Serializer",
        "SingleFlight",
        "SingleFlightStats",
        "Tier",
        "decide",
        "early_probability",
    ] == perfprim.cache.advanced.__all__


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"namespace": ""}, "namespace"),
        ({"namespace": "a{b}"}, "namespace"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": "60"}, "ttl"),
        ({"generation_check_interval": -1}, "generation_check_interval"),
        ({"max_key_length": 3}, "max_key_length"),
        ({"invalidation": object()}, "InvalidationBus"),
    ],
)
def test_bad_options_fail_fast(kwargs: dict[str, Any], match: str) -> None:
    """Invalid options raise ConfigurationError naming the option."""
    with pytest.raises(ConfigurationError, match=match):
        TieredCache(MemoryTier(), MemoryTier(), **kwargs)


def test_no_tier_is_refused() -> None:
    """A cache without any tier says what to pass."""
    with pytest.raises(ConfigurationError, match=r"TieredCache\(MemoryTier\(maxsize"):
        TieredCache()
    with pytest.raises(ConfigurationError, match=r"AsyncTieredCache\(MemoryTier\(maxsize"):
        AsyncTieredCache()


def test_wrong_tier_kinds_are_refused() -> None:
    """Sync tiers in the async cache and vice versa are refused with the right hint."""
    with pytest.raises(ConfigurationError, match="belongs in AsyncTieredCache"):
        TieredCache(MemoryTier(), AsyncAdapter(MemoryTier()))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="belongs in TieredCache"):
        AsyncTieredCache(MemoryTier(), MemoryTier())
    with pytest.raises(ConfigurationError, match="not a cache tier"):
        TieredCache(MemoryTier(), object())  # type: ignore[arg-type]


def test_a_tier_class_instead_of_an_instance_is_refused() -> None:
    """Passing the class MemoryTier, not an instance, fails at construction with the fix."""
    with pytest.raises(ConfigurationError, match=r"got the class MemoryTier.*pass an instance"):
        TieredCache(MemoryTier)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"got the class MemoryTier.*pass an instance"):
        AsyncTieredCache(MemoryTier)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="got the class MemoryTier"):
        TieredCache(MemoryTier(), MemoryTier)  # type: ignore[arg-type]


async def test_async_cache_takes_its_tiers_like_the_sync_one() -> None:
    """AsyncTieredCache(*tiers): a leading MemoryTier is the L1; an async tier alone works too."""
    l1, l2 = MemoryTier(), MemoryTier()
    acache = AsyncTieredCache(l1, AsyncAdapter(l2), ttl=60.0)

    async def load() -> int:
        return 7

    assert 7 == await acache.get_or_load("k", load)
    assert (1, 1) == (len(l1), len(l2))
    lower_only = AsyncTieredCache(AsyncAdapter(MemoryTier()), ttl=60.0, invalidate_l1=False)
    assert 7 == await lower_only.get_or_load("k", load)
    assert 1 == lower_only.stats().loads
    assert "memory" == lower_only.stats().tiers[0].name


def test_decorating_the_wrong_kind_is_refused() -> None:
    """Async def on the sync cache, def on the async cache, and generators are refused."""

    async def coro(x: int) -> int:
        return x

    def plain(x: int) -> int:
        return x

    def gen(x: int) -> Any:
        yield x

    with pytest.raises(ConfigurationError, match="AsyncTieredCache"):
        TieredCache(MemoryTier()).cached()(coro)
    with pytest.raises(ConfigurationError, match="TieredCache"):
        AsyncTieredCache(MemoryTier()).cached()(plain)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="generator"):
        TieredCache(MemoryTier()).cached()(gen)


def test_non_str_key_is_refused() -> None:
    """Keys are str; an int key raises with the fix."""
    cache = TieredCache(MemoryTier())
    with pytest.raises(ConfigurationError, match="str"):
        cache.get(42)  # type: ignore[arg-type]


def test_decorated_coroutine_function_stays_one() -> None:
    """Cached keeps the kind: an async def stays a coroutine function, sync stays sync."""
    import inspect

    acache = AsyncTieredCache(MemoryTier())

    @acache.cached()
    async def fetch(x: int) -> int:
        return x

    assert inspect.iscoroutinefunction(fetch)
    assert 3 == asyncio.run(fetch(3))  # type: ignore[arg-type]


def test_unstable_argument_fails_with_the_fix() -> None:
    """An argument with a default repr raises ConfigurationError suggesting key= or noself."""
    cache = TieredCache(MemoryTier())

    @cache.cached()
    def f(obj: object) -> int:
        return 1

    with pytest.raises(ConfigurationError, match="key=callable"):
        f(object())


def test_context_manager_closes() -> None:
    """With TieredCache(...) closes its tiers and bus on exit; close() is idempotent."""
    with TieredCache(MemoryTier()) as cache:
        cache.set("k", 1)
    cache.close()
    assert cache.closed


def test_method_decoration_and_invalidate() -> None:
    """A decorated method binds like a function; invalidate takes self explicitly."""
    cache = TieredCache(MemoryTier())
    calls: list[int] = []

    class Repo:
        @cache.cached(noself=True)
        def find(self, x: int) -> int:
            calls.append(x)
            return x * 2

    repo = Repo()
    assert [2, 2, 2] == [repo.find(1), repo.find(1), Repo().find(1)]
    repo.find.invalidate(repo, 1)
    assert 2 == repo.find(1)
    assert [1, 1] == calls


async def test_cancellation_is_not_a_load_error() -> None:
    """A loader cancelled mid-load is not counted as a load error (it did not fail)."""
    acache = AsyncTieredCache(MemoryTier())
    never = asyncio.Event()

    async def slow() -> int:
        await never.wait()
        return 1

    task = asyncio.ensure_future(acache.get_or_load("k", slow))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (0, 0) == (acache.stats().load_errors, acache.stats().loads)


def test_single_argument_key_memo_is_bounded_and_consistent() -> None:
    """The per-function key memo stays bounded; huge ints and long strs still invalidate."""
    from perfprim.cache._core import FULL_KEY_MEMO_SIZE

    cache = TieredCache(MemoryTier(maxsize=100))
    calls: list[object] = []

    @cache.cached()
    def ident(x: object) -> object:
        calls.append(x)
        return x

    for i in range(FULL_KEY_MEMO_SIZE + 10):
        ident(i)
    state = cache.hit_path().scope(f"{ident.__module__}.{ident.__qualname__}")
    assert len(state.full_keys) <= FULL_KEY_MEMO_SIZE
    big, long = 10**400, "s" * 5000
    calls.clear()
    ident(big)
    ident(long)
    ident.invalidate(big)
    ident.invalidate(x=long)
    ident(big)
    ident(long)
    assert [big, long, big, long] == calls
    assert all(len(k) < 300 for k in cache.hit_path().records)


def test_memo_follows_generation_changes() -> None:
    """After invalidate_all the memoized keys of the old generation are not used."""
    cache = TieredCache(MemoryTier())
    calls: list[int] = []

    @cache.cached()
    def f(x: int) -> int:
        calls.append(x)
        return x

    f(1)
    f.invalidate_all()
    f(1)
    cache.clear()
    f(1)
    assert [1, 1, 1] == calls


def test_two_argument_memo_keeps_look_alikes_apart() -> None:
    """(1, "1"), ("1", 1), (True, 1) and (1.0, 1) are four entries; repeats are hits."""
    cache = TieredCache(MemoryTier())
    calls: list[tuple[object, object]] = []

    @cache.cached()
    def pair(a: object, b: object) -> str:
        calls.append((a, b))
        return f"{a!r}|{b!r}"

    args = [(1, "1"), ("1", 1), (True, 1), (1.0, 1), (1, "1"), ("1", 1)]
    assert ["1|'1'", "'1'|1", "True|1", "1.0|1", "1|'1'", "'1'|1"] == [pair(*a) for a in args]
    assert 4 == len(calls)
    pair.invalidate(b="1", a=1)
    pair(1, "1")
    assert (1, "1") == calls[-1]


def test_the_cache_keeps_few_instance_attributes() -> None:
    """A cache instance has at most 30 attributes (sync and async, with Redis-less tiers).

    Past 30, CPython 3.11 stops sharing instance-dict keys and every ``self._x``
    of the L1 hit path gets slower: it took ``get_or_load``'s hit from 0.30x
    to 0.36x cachetools.cached when 4 attributes were added (measured).
    """
    assert len(vars(TieredCache(MemoryTier(), MemoryTier()))) <= 30
    assert len(vars(AsyncTieredCache(MemoryTier()))) <= 30
