"""A conformance suite for the cache itself: subclass it once per lower tier.

Each test runs against ``TieredCache`` and ``AsyncTieredCache`` (the ``kind``
fixture), with a ``MemoryTier`` L1 (ttl 5 s) in front of the tier that
``make_lower`` returns (``None``: memory only). ``tests/cache/test_cache_tiered.py``
runs :class:`CacheConformance` with no L2 and :class:`LowerTierConformance`
(which adds the tests about an L2) with a ``MemoryTier`` L2;
``tests/cache/test_cache_e2e_conformance.py`` runs :class:`LowerTierConformance`
with ``RedisTier`` (sync) or ``AsyncRedisTier`` (async) as the L2, on a real
server and on a real cluster, with a real invalidation bus attached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from perfprim.cache import MemoryTier
from tests.cache.conformance import FakeClock
from tests.cache.helpers import Driver, build


class Loader:
    """A loader that counts calls and returns the next value of a sequence."""

    def __init__(self, *values: Any) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.values[min(self.calls, len(self.values)) - 1]


class CacheConformance:
    """Behaviour every tier combination must show, sync and async alike."""

    @pytest.fixture(params=["sync", "async"])
    def kind(self, request: pytest.FixtureRequest) -> str:
        """Run each test against TieredCache and AsyncTieredCache."""
        return str(request.param)

    @pytest.fixture
    def clock(self) -> FakeClock:
        """The injected wall clock."""
        return FakeClock()

    @pytest.fixture
    def make_lower(self, kind: str, clock: FakeClock) -> Callable[[], Any]:
        """Return a factory of the L2 for ``kind`` (a sync tier is adapted for async), or None."""
        raise NotImplementedError

    @pytest.fixture
    def cache(
        self, kind: str, clock: FakeClock, make_lower: Callable[[], Any], namespace: str
    ) -> Driver:
        """The cache under test: MemoryTier(ttl=5) L1 over ``make_lower()``."""
        return build(
            kind, clock, l1=MemoryTier(maxsize=100, ttl=5.0), l2=make_lower(), namespace=namespace
        )

    async def test_miss_loads_once_then_hits(self, cache: Driver) -> None:
        """The first get_or_load runs the loader; the second is an L1 hit."""
        load = Loader("v")
        assert "v" == await cache("get_or_load", "k", cache.loader(load))
        assert "v" == await cache("get_or_load", "k", cache.loader(load))
        stats = cache.cache.stats()
        assert (1, 1, 1) == (load.calls, stats.loads, stats.tiers[0].hits)

    async def test_none_is_cached_like_any_value(self, cache: Driver) -> None:
        """A loader returning None runs once; get tells a cached None from a miss."""
        load = Loader(None)
        sentinel = object()
        assert None is await cache("get_or_load", "k", cache.loader(load))
        assert None is await cache("get_or_load", "k", cache.loader(load))
        assert 1 == load.calls
        assert None is await cache("get", "k", sentinel)
        assert sentinel is await cache("get", "other", sentinel)

    async def test_loader_exception_propagates_and_is_not_cached(self, cache: Driver) -> None:
        """A raising loader's exception reaches the caller; the next call loads again."""

        def boom() -> Any:
            raise LookupError("db down")

        with pytest.raises(LookupError, match="db down"):
            await cache("get_or_load", "k", cache.loader(boom))
        assert 7 == await cache("get_or_load", "k", cache.loader(lambda: 7))
        assert (1, 1) == (cache.cache.stats().load_errors, cache.cache.stats().loads)

    async def test_delta_is_measured_and_stored(self, cache: Driver, clock: FakeClock) -> None:
        """The entry records how long the loader ran (on the cache clock) and expires at now+ttl."""

        def slow() -> str:
            clock.advance(0.25)
            return "v"

        start = clock()
        await cache("get_or_load", "k", cache.loader(slow), ttl=10.0)
        (record,) = cache.l1._records.values()
        assert 0.25 == pytest.approx(record[2].delta)
        assert start + 0.25 + 10.0 == pytest.approx(record[2].expires_at)

    async def test_expiry_reloads(self, cache: Driver, clock: FakeClock) -> None:
        """After the ttl the value is reloaded."""
        load = Loader(1, 2)
        assert 1 == await cache("get_or_load", "k", cache.loader(load), ttl=10.0)
        clock.advance(9.9)
        assert 1 == await cache("get_or_load", "k", cache.loader(load), ttl=10.0)
        clock.advance(0.2)
        assert 2 == await cache("get_or_load", "k", cache.loader(load), ttl=10.0)

    async def test_set_get_delete(self, cache: Driver) -> None:
        """Set stores, get reads, delete removes."""
        await cache("set", "k", {"x": 1})
        assert {"x": 1} == await cache("get", "k")
        await cache("delete", "k")
        assert None is await cache("get", "k")

    async def test_keys_with_braces_and_long_keys_round_trip(self, cache: Driver) -> None:
        """Keys that cannot sit in a hash tag verbatim are digested but still work."""
        keys = ["a{b}c", "}{", "x" * 1000, "ключ"]
        for i, key in enumerate(keys):
            await cache("set", key, i)
        assert list(range(len(keys))) == [await cache("get", k) for k in keys]
        assert all(len(k) < 260 for k in cache.l1._records)

    async def test_clear_is_one_incr_and_hides_everything(self, cache: Driver) -> None:
        """clear() bumps the namespace generation on the last tier; old keys become unreachable."""
        await cache("set", "k", 1)
        await cache("clear")
        assert None is await cache("get", "k")
        counter_tier = cache.l2 if cache.l2 is not None else cache.l1
        assert 1 == await cache.on_tier(
            counter_tier, "read_counter", f"{cache.cache.namespace}:#gen"
        )
        assert 0 == len(cache.l1)

    # -- the cached decorator -------------------------------------------------------------------

    async def test_cached_distinguishes_look_alike_arguments(self, cache: Driver) -> None:
        """1, 1.0, "1" and True are four different cache entries."""
        calls: list[object] = []
        fn = cache.cached(lambda x: calls.append(x) or repr(x), "mod.ident")
        for arg in (1, 1.0, "1", True, 1):
            await cache.call(fn, arg)
        assert [1, 1.0, "1", True] == calls

    async def test_cached_keyword_order_and_binding_do_not_matter(self, cache: Driver) -> None:
        """f(1, b=2), f(a=1, b=2) and f(b=2, a=1) share cache entry."""
        calls = []

        def body(a: int, b: int = 0) -> int:
            calls.append((a, b))
            return a + b

        if cache.is_async:

            async def add(a: int, b: int = 0) -> int:
                return body(a, b)

        else:

            def add(a: int, b: int = 0) -> int:  # type: ignore[misc]
                return body(a, b)

        fn = cache.cache.cached()(add)
        results = [
            await cache.call(fn, 1, b=2),
            await cache.call(fn, a=1, b=2),
            await cache.call(fn, b=2, a=1),
            await cache.call(fn, 1, 2),
        ]
        assert [3, 3, 3, 3] == results
        assert [(1, 2)] == calls
        assert add.__name__ == fn.__name__
        assert add is fn.__wrapped__

    async def test_cached_invalidate_drops_one_entry(self, cache: Driver) -> None:
        """fn.invalidate(args) recomputes that entry only."""
        calls: list[int] = []
        fn = cache.cached(lambda x: calls.append(x) or x * 10, "mod.times10")
        await cache.call(fn, 1)
        await cache.call(fn, 2)
        await cache.call(fn.invalidate, 1)
        await cache.call(fn, 1)
        await cache.call(fn, 2)
        assert [1, 2, 1] == calls

    async def test_cached_invalidate_all_drops_only_that_function(self, cache: Driver) -> None:
        """invalidate_all bumps the function's generation; other functions keep their entries."""
        calls: list[str] = []
        f = cache.cached(lambda x: calls.append(f"f{x}") or x, "mod.f")
        g = cache.cached(lambda x: calls.append(f"g{x}") or x, "mod.g")
        await cache.call(f, 1)
        await cache.call(g, 1)
        await cache.call(f.invalidate_all)
        await cache.call(f, 1)
        await cache.call(g, 1)
        assert ["f1", "g1", "f1"] == calls

    async def test_cached_method_with_noself(self, cache: Driver) -> None:
        """noself=True leaves self out of the key: instances share entries."""
        calls: list[int] = []

        class Repo:
            def __repr__(self) -> str:
                raise AssertionError("self must not be encoded")

        fn = cache.cached(lambda self, x: calls.append(x) or x, "mod.Repo.get", noself=True)
        a, b = Repo(), Repo()
        await cache.call(fn, a, 5)
        await cache.call(fn, b, 5)
        assert [5] == calls

    async def test_cached_custom_key(self, cache: Driver) -> None:
        """key= builds the body; calls mapping to the same body share an entry."""
        calls: list[str] = []
        fn = cache.cached(
            lambda user: calls.append(user) or user.upper(), "mod.norm", key=lambda u: u.lower()
        )
        assert "BOB" == await cache.call(fn, "bob")
        assert "BOB" == await cache.call(fn, "BOB")
        assert ["bob"] == calls

    async def test_cached_varargs_function(self, cache: Driver) -> None:
        """Functions taking *args/**kwargs use the generic wrapper with the same key rules."""
        calls: list[tuple[Any, ...]] = []
        fn = cache.cached(lambda *a, **k: calls.append((a, k)) or len(a), "mod.var")
        await cache.call(fn, 1, 2, z=1, y=2)
        await cache.call(fn, 1, 2, y=2, z=1)
        await cache.call(fn, 1, 2)
        assert 2 == len(calls)
        await cache.call(fn.invalidate, 1, 2)
        await cache.call(fn, 1, 2)
        assert 3 == len(calls)

    async def test_cached_ttl_and_none(self, cache: Driver, clock: FakeClock) -> None:
        """The decorator's ttl applies, and a None result is cached."""
        calls: list[int] = []
        fn = cache.cached(calls.append, "mod.none", ttl=2.0)
        assert None is await cache.call(fn, 1)
        assert None is await cache.call(fn, 1)
        clock.advance(2.5)
        await cache.call(fn, 1)
        assert [1, 1] == calls


class LowerTierConformance(CacheConformance):
    """The suite plus what needs a lower tier (L2): subclass it for every real L2."""

    async def test_l2_hit_backfills_l1_with_remaining_life(
        self, cache: Driver, clock: FakeClock
    ) -> None:
        """An L2 hit back-fills L1 for min(L1 ttl, remaining life)."""
        await cache("set", "short", "s", ttl=3.0)
        await cache("set", "long", "l", ttl=100.0)
        cache.l1.clear()
        assert "s" == await cache("get", "short")
        assert "l" == await cache("get", "long")
        fresh = {k.split("{")[1]: r[0] - clock() for k, r in cache.l1._records.items()}
        assert {"short}": pytest.approx(3.0), "long}": pytest.approx(5.0)} == fresh
        stats = cache.cache.stats()
        assert [(0, 2), (2, 0)] == [(t.hits, t.misses) for t in stats.tiers]

    async def test_l1_expiry_falls_back_to_l2_not_the_loader(
        self, cache: Driver, clock: FakeClock
    ) -> None:
        """Once the L1 copy's ttl passes, the value comes from L2 without a load."""
        load = Loader("v")
        await cache("get_or_load", "k", cache.loader(load))
        clock.advance(6.0)
        assert "v" == await cache("get_or_load", "k", cache.loader(load))
        assert 1 == load.calls
        assert 1 == cache.cache.stats().tiers[1].hits
