"""L1 hit cost: perfprim's ``@cached`` and ``get_or_load`` against in-process peers.

Every group holds perfprim and its anchors, measured side by side in one run,
each on a warm key (one call before timing). Sync anchors:
``cachetools.cached(TTLCache, lock=threading.Lock())`` (the budget's anchor),
``cachetools.cached(TTLCache)``, ``functools.lru_cache`` (the floor: no TTL,
no lock) and dogpile.cache ``cache_on_arguments`` on its memory backend.
Async anchors: cachetools-async, cashews ``@cache`` (``mem://``) and aiocache
``@cached`` (memory).

``get_or_load`` is measured against the same anchors, with the key built
from the argument the way a service would (``f"user:{uid}"``).

The "perfprim+bus" candidates run with an invalidation bus attached (an
in-process one: the hit path is the same whatever bus is attached; the Redis
bus and its figures come with the cache-redis branch).
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import cachetools
import pytest

from perfprim.cache import AsyncTieredCache, MemoryTier, TieredCache

SYNC_CACHED = "cache: L1 hit, @cached (sync)"
SYNC_GOL = "cache: L1 hit, get_or_load (sync)"
ASYNC_CACHED = "cache: L1 hit, @cached (async)"
ASYNC_GOL = "cache: L1 hit, get_or_load (async)"

UID = 42


class _Bus:
    """Minimal InvalidationBus: started, publishes nowhere (hit path cost only)."""

    def publish(self, keys: Sequence[str]) -> None:
        pass

    def start(self, on_keys: Callable[[Sequence[str]], None], on_flush: Callable[[], None]) -> None:
        pass

    def close(self) -> None:
        pass


def _user(uid: int) -> dict[str, int]:
    return {"id": uid}


# -- sync candidates -------------------------------------------------------------------------


def _perfprim_cached(bus: bool = False) -> Callable[[int], Any]:
    cache = TieredCache(
        MemoryTier(maxsize=10_000, ttl=60.0), ttl=60.0, invalidation=_Bus() if bus else None
    )

    @cache.cached()
    def load_user(uid: int) -> dict[str, int]:
        return _user(uid)

    load_user(UID)
    return load_user


def _perfprim_get_or_load(bus: bool = False) -> Callable[[int], Any]:
    cache = TieredCache(
        MemoryTier(maxsize=10_000, ttl=60.0), ttl=60.0, invalidation=_Bus() if bus else None
    )
    get_or_load = cache.get_or_load

    def load_user(uid: int) -> Any:
        return get_or_load(f"user:{uid}", lambda: _user(uid))

    load_user(UID)
    return load_user


def _cachetools(lock: bool) -> Callable[[int], Any]:
    kwargs: dict[str, Any] = {"lock": threading.Lock()} if lock else {}

    @cachetools.cached(cachetools.TTLCache(maxsize=10_000, ttl=60.0), **kwargs)
    def load_user(uid: int) -> dict[str, int]:
        return _user(uid)

    load_user(UID)
    return load_user


def _lru() -> Callable[[int], Any]:
    @functools.lru_cache(maxsize=10_000)
    def load_user(uid: int) -> dict[str, int]:
        return _user(uid)

    load_user(UID)
    return load_user


def _dogpile() -> Callable[[int], Any]:
    from dogpile.cache import make_region

    region = make_region().configure("dogpile.cache.memory", expiration_time=60)

    @region.cache_on_arguments()
    def load_user(uid: int) -> dict[str, int]:
        return _user(uid)

    load_user(UID)
    return load_user


SYNC_ANCHORS: dict[str, Callable[[], Callable[[int], Any]]] = {
    "cachetools.cached+lock": lambda: _cachetools(lock=True),
    "cachetools.cached": lambda: _cachetools(lock=False),
    "functools.lru_cache": _lru,
    "dogpile.cache_on_arguments": _dogpile,
}


@pytest.mark.parametrize("group", [SYNC_CACHED, SYNC_GOL])
@pytest.mark.parametrize("candidate", list(SYNC_ANCHORS))
def test_sync_anchor(compare: Any, group: str, candidate: str) -> None:
    fn = SYNC_ANCHORS[candidate]()
    assert {"id": UID} == compare(group, candidate, fn, UID)


@pytest.mark.parametrize("bus", [False, True], ids=["nobus", "bus"])
def test_sync_cached_perfprim(compare: Any, bus: bool) -> None:
    fn = _perfprim_cached(bus)
    name = "perfprim+bus" if bus else "perfprim"
    assert {"id": UID} == compare(SYNC_CACHED, name, fn, UID)


@pytest.mark.parametrize("bus", [False, True], ids=["nobus", "bus"])
def test_sync_get_or_load_perfprim(compare: Any, bus: bool) -> None:
    fn = _perfprim_get_or_load(bus)
    name = "perfprim+bus" if bus else "perfprim"
    assert {"id": UID} == compare(SYNC_GOL, name, fn, UID)


# -- async candidates ------------------------------------------------------------------------


async def _auser(uid: int) -> dict[str, int]:
    return {"id": uid}


def _aperfprim_cached() -> Callable[[int], Any]:
    cache = AsyncTieredCache(MemoryTier(maxsize=10_000, ttl=60.0), ttl=60.0)

    @cache.cached()
    async def load_user(uid: int) -> dict[str, int]:
        return await _auser(uid)

    return load_user


def _aperfprim_get_or_load() -> Callable[[int], Any]:
    cache = AsyncTieredCache(MemoryTier(maxsize=10_000, ttl=60.0), ttl=60.0)
    get_or_load = cache.get_or_load

    def load_user(uid: int) -> Any:
        return get_or_load(f"user:{uid}", lambda: _auser(uid))

    return load_user


def _cachetools_async() -> Callable[[int], Any]:
    import cachetools_async

    @cachetools_async.cached(cachetools.TTLCache(maxsize=10_000, ttl=60.0))
    async def load_user(uid: int) -> dict[str, int]:
        return await _auser(uid)

    return load_user  # type: ignore[no-any-return]


def _cashews() -> Callable[[int], Any]:
    from cashews import Cache

    cache = Cache()
    cache.setup("mem://")

    @cache(ttl=60)
    async def load_user(uid: int) -> dict[str, int]:
        return await _auser(uid)

    return load_user  # type: ignore[no-any-return]


def _aiocache() -> Callable[[int], Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from aiocache import cached

    @cached(ttl=60)
    async def load_user(uid: int) -> dict[str, int]:
        return await _auser(uid)

    return load_user  # type: ignore[no-any-return]


ASYNC_ANCHORS: dict[str, Callable[[], Callable[[int], Any]]] = {
    "cachetools-async": _cachetools_async,
    "cashews": _cashews,
    "aiocache": _aiocache,
}


@pytest.mark.parametrize("group", [ASYNC_CACHED, ASYNC_GOL])
@pytest.mark.parametrize("candidate", list(ASYNC_ANCHORS))
def test_async_anchor(compare_async: Any, group: str, candidate: str) -> None:
    fn = ASYNC_ANCHORS[candidate]()
    compare_async(group, candidate, lambda: fn(UID))


def test_async_cached_perfprim(compare_async: Any) -> None:
    fn = _aperfprim_cached()
    compare_async(ASYNC_CACHED, "perfprim", lambda: fn(UID))


def test_async_get_or_load_perfprim(compare_async: Any) -> None:
    fn = _aperfprim_get_or_load()
    compare_async(ASYNC_GOL, "perfprim", lambda: fn(UID))


# -- two arguments (the generic key path), no budget: shown for honesty ------------------------

SYNC_TWO = "cache: L1 hit, @cached with two arguments (sync)"


def _two_perfprim() -> Callable[[int, str], Any]:
    cache = TieredCache(MemoryTier(maxsize=10_000, ttl=60.0), ttl=60.0)

    @cache.cached()
    def load(uid: int, region: str) -> dict[str, int]:
        return _user(uid)

    return load


def _two_cachetools() -> Callable[[int, str], Any]:
    @cachetools.cached(cachetools.TTLCache(maxsize=10_000, ttl=60.0), lock=threading.Lock())
    def load(uid: int, region: str) -> dict[str, int]:
        return _user(uid)

    return load


def _two_lru() -> Callable[[int, str], Any]:
    @functools.lru_cache(maxsize=10_000)
    def load(uid: int, region: str) -> dict[str, int]:
        return _user(uid)

    return load


@pytest.mark.parametrize(
    ("candidate", "make"),
    [
        ("perfprim", _two_perfprim),
        ("cachetools.cached+lock", _two_cachetools),
        ("functools.lru_cache", _two_lru),
    ],
)
def test_sync_two_arguments(compare: Any, candidate: str, make: Any) -> None:
    fn = make()
    fn(UID, "eu")
    assert {"id": UID} == compare(SYNC_TWO, candidate, fn, UID, "eu")
