"""The cache itself, sync and async from one parametrized fixture: cache-aside across tiers."""

from __future__ import annotations

from typing import Any

import pytest

from perfprim.cache import MemoryTier
from perfprim.exceptions import BackendError
from tests.cache.conformance import FakeClock
from tests.cache.helpers import Driver, FailingTier, LoggingMemoryTier, build


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Run each test against TieredCache and AsyncTieredCache."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    """The injected wall clock."""
    return FakeClock()


@pytest.fixture
def one(kind: str, clock: FakeClock) -> Driver:
    """A memory-only cache."""
    return build(kind, clock, l1=MemoryTier(maxsize=100))


@pytest.fixture
def two(kind: str, clock: FakeClock) -> Driver:
    """L1 (ttl 5 s) in front of an L2 MemoryTier on the same clock."""
    return build(
        kind, clock, l1=MemoryTier(maxsize=100, ttl=5.0), l2=MemoryTier(maxsize=100, timer=clock)
    )


class Loader:
    """A loader that counts calls and returns the next value of a sequence."""

    def __init__(self, *values: Any) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.values[min(self.calls, len(self.values)) - 1]


async def test_miss_loads_once_then_hits(one: Driver) -> None:
    """The first get_or_load runs the loader; the second is an L1 hit."""
    load = Loader("v")
    assert "v" == await one("get_or_load", "k", one.loader(load))
    assert "v" == await one("get_or_load", "k", one.loader(load))
    stats = one.cache.stats()
    assert (1, 1, 1) == (load.calls, stats.loads, stats.tiers[0].hits)


async def test_none_is_cached_like_any_value(one: Driver) -> None:
    """A loader returning None runs once; get tells a cached None from a miss."""
    load = Loader(None)
    sentinel = object()
    assert None is await one("get_or_load", "k", one.loader(load))
    assert None is await one("get_or_load", "k", one.loader(load))
    assert 1 == load.calls
    assert None is await one("get", "k", sentinel)
    assert sentinel is await one("get", "other", sentinel)


async def test_loader_exception_propagates_and_is_not_cached(one: Driver) -> None:
    """A raising loader's exception reaches the caller; the next call loads again."""

    def boom() -> Any:
        raise LookupError("db down")

    with pytest.raises(LookupError, match="db down"):
        await one("get_or_load", "k", one.loader(boom))
    assert 7 == await one("get_or_load", "k", one.loader(lambda: 7))
    assert (1, 1) == (one.cache.stats().load_errors, one.cache.stats().loads)


async def test_delta_is_measured_and_stored(one: Driver, clock: FakeClock) -> None:
    """The entry records how long the loader ran (on the cache clock) and expires at now+ttl."""

    def slow() -> str:
        clock.advance(0.25)
        return "v"

    start = clock()
    await one("get_or_load", "k", one.loader(slow), ttl=10.0)
    (record,) = one.l1._records.values()
    assert 0.25 == pytest.approx(record[2].delta)
    assert start + 0.25 + 10.0 == pytest.approx(record[2].expires_at)


async def test_expiry_reloads(one: Driver, clock: FakeClock) -> None:
    """After the ttl the value is reloaded."""
    load = Loader(1, 2)
    assert 1 == await one("get_or_load", "k", one.loader(load), ttl=10.0)
    clock.advance(9.9)
    assert 1 == await one("get_or_load", "k", one.loader(load), ttl=10.0)
    clock.advance(0.2)
    assert 2 == await one("get_or_load", "k", one.loader(load), ttl=10.0)


async def test_set_get_delete(one: Driver) -> None:
    """Set stores, get reads, delete removes."""
    await one("set", "k", {"x": 1})
    assert {"x": 1} == await one("get", "k")
    await one("delete", "k")
    assert None is await one("get", "k")


async def test_keys_with_braces_and_long_keys_round_trip(one: Driver) -> None:
    """Keys that cannot sit in a hash tag verbatim are digested but still work."""
    keys = ["a{b}c", "}{", "x" * 1000, "ключ"]
    for i, key in enumerate(keys):
        await one("set", key, i)
    assert list(range(len(keys))) == [await one("get", k) for k in keys]
    assert all(len(k) < 260 for k in one.l1._records)


async def test_l2_hit_backfills_l1_with_remaining_life(two: Driver, clock: FakeClock) -> None:
    """An L2 hit back-fills L1 for min(L1 ttl, remaining life)."""
    await two("set", "short", "s", ttl=3.0)
    await two("set", "long", "l", ttl=100.0)
    two.l1.clear()
    assert "s" == await two("get", "short")
    assert "l" == await two("get", "long")
    fresh = {k.split("{")[1]: r[0] - clock() for k, r in two.l1._records.items()}
    assert {"short}": pytest.approx(3.0), "long}": pytest.approx(5.0)} == fresh
    stats = two.cache.stats()
    assert [("memory", 0, 2), ("memory", 2, 0)] == [(t.name, t.hits, t.misses) for t in stats.tiers]


async def test_l1_expiry_falls_back_to_l2_not_the_loader(two: Driver, clock: FakeClock) -> None:
    """Once the L1 copy's ttl passes, the value comes from L2 without a load."""
    load = Loader("v")
    await two("get_or_load", "k", two.loader(load))
    clock.advance(6.0)
    assert "v" == await two("get_or_load", "k", two.loader(load))
    assert 1 == load.calls
    assert 1 == two.cache.stats().tiers[1].hits


async def test_miss_writes_l2_then_l1(kind: str, clock: FakeClock) -> None:
    """A load writes the lowest tier first, then L1 (so L1 never holds what L2 lacks)."""
    log: list[tuple[str, str, str]] = []
    drv = build(
        kind,
        clock,
        l1=LoggingMemoryTier(log, "L1", maxsize=10),
        l2=LoggingMemoryTier(log, "L2", maxsize=10, timer=clock),
    )
    await drv("get_or_load", "k", drv.loader(lambda: 1))
    assert ["L2", "L1"] == [label for label, op, _ in log if op == "set"]


async def test_hit_does_not_touch_lower_tiers(kind: str, clock: FakeClock) -> None:
    """An L1 hit makes no call to L2."""
    log: list[tuple[str, str, str]] = []
    drv = build(
        kind, clock, l1=MemoryTier(maxsize=10), l2=LoggingMemoryTier(log, "L2", timer=clock)
    )
    await drv("get_or_load", "k", drv.loader(lambda: 1))
    log.clear()
    for _ in range(5):
        await drv("get_or_load", "k", drv.loader(lambda: 1))
    assert [] == log


async def test_get_many_reads_l2_once_for_all_l1_misses(kind: str, clock: FakeClock) -> None:
    """get_many answers L1 hits locally and asks L2 once for the rest."""
    log: list[tuple[str, str, str]] = []
    drv = build(
        kind, clock, l1=MemoryTier(maxsize=10), l2=LoggingMemoryTier(log, "L2", timer=clock)
    )
    await drv("set_many", {"a": 1, "b": None, "c": 3})
    drv.l1.delete([k for k in drv.l1._records if "{a}" not in k])
    log.clear()
    assert {"a": 1, "b": None, "c": 3} == await drv("get_many", ["a", "b", "c", "zz"])
    assert 1 == len([entry for entry in log if entry[1] == "get_many"])
    assert 3 == len(drv.l1)


async def test_clear_is_one_incr_and_hides_everything(two: Driver) -> None:
    """clear() bumps the namespace generation on the last tier; old keys become unreachable."""
    await two("set", "k", 1)
    await two("clear")
    assert None is await two("get", "k")
    assert 1 == two.l2.read_counter("t:#gen")
    assert 0 == len(two.l1)


async def test_namespaces_are_isolated(kind: str, clock: FakeClock) -> None:
    """Two caches over the same tiers with different namespaces never see each other."""
    l2 = MemoryTier(timer=clock)
    a = build(kind, clock, l1=MemoryTier(), l2=l2, namespace="a")
    b = build(kind, clock, l1=MemoryTier(), l2=l2, namespace="b")
    await a("set", "k", "A")
    assert None is await b("get", "k")
    await b("clear")
    assert "A" == await a("get", "k")


# -- the cached decorator -------------------------------------------------------------------


async def test_cached_distinguishes_look_alike_arguments(one: Driver) -> None:
    """1, 1.0, "1" and True are four different cache entries."""
    calls: list[object] = []
    fn = one.cached(lambda x: calls.append(x) or repr(x), "mod.ident")
    for arg in (1, 1.0, "1", True, 1):
        await one.call(fn, arg)
    assert [1, 1.0, "1", True] == calls


async def test_cached_keyword_order_and_binding_do_not_matter(one: Driver) -> None:
    """f(1, b=2), f(a=1, b=2) and f(b=2, a=1) share one entry."""
    calls = []

    def body(a: int, b: int = 0) -> int:
        calls.append((a, b))
        return a + b

    if one.is_async:

        async def add(a: int, b: int = 0) -> int:
            return body(a, b)

    else:

        def add(a: int, b: int = 0) -> int:  # type: ignore[misc]
            return body(a, b)

    fn = one.cache.cached()(add)
    results = [
        await one.call(fn, 1, b=2),
        await one.call(fn, a=1, b=2),
        await one.call(fn, b=2, a=1),
        await one.call(fn, 1, 2),
    ]
    assert [3, 3, 3, 3] == results
    assert [(1, 2)] == calls
    assert add.__name__ == fn.__name__
    assert add is fn.__wrapped__


async def test_cached_invalidate_drops_one_entry(one: Driver) -> None:
    """fn.invalidate(args) recomputes that entry only."""
    calls: list[int] = []
    fn = one.cached(lambda x: calls.append(x) or x * 10, "mod.times10")
    await one.call(fn, 1)
    await one.call(fn, 2)
    await one.call(fn.invalidate, 1)
    await one.call(fn, 1)
    await one.call(fn, 2)
    assert [1, 2, 1] == calls


async def test_cached_invalidate_all_drops_only_that_function(one: Driver) -> None:
    """invalidate_all bumps the function's generation; other functions keep their entries."""
    calls: list[str] = []
    f = one.cached(lambda x: calls.append(f"f{x}") or x, "mod.f")
    g = one.cached(lambda x: calls.append(f"g{x}") or x, "mod.g")
    await one.call(f, 1)
    await one.call(g, 1)
    await one.call(f.invalidate_all)
    await one.call(f, 1)
    await one.call(g, 1)
    assert ["f1", "g1", "f1"] == calls


async def test_cached_method_with_noself(one: Driver) -> None:
    """noself=True leaves self out of the key: instances share entries."""
    calls: list[int] = []

    class Repo:
        def __repr__(self) -> str:
            raise AssertionError("self must not be encoded")

    fn = one.cached(lambda self, x: calls.append(x) or x, "mod.Repo.get", noself=True)
    a, b = Repo(), Repo()
    await one.call(fn, a, 5)
    await one.call(fn, b, 5)
    assert [5] == calls


async def test_cached_custom_key(one: Driver) -> None:
    """key= builds the body; calls mapping to the same body share an entry."""
    calls: list[str] = []
    fn = one.cached(
        lambda user: calls.append(user) or user.upper(), "mod.norm", key=lambda u: u.lower()
    )
    assert "BOB" == await one.call(fn, "bob")
    assert "BOB" == await one.call(fn, "BOB")
    assert ["bob"] == calls


async def test_cached_varargs_function(one: Driver) -> None:
    """Functions taking *args/**kwargs use the generic wrapper with the same key rules."""
    calls: list[tuple[Any, ...]] = []
    fn = one.cached(lambda *a, **k: calls.append((a, k)) or len(a), "mod.var")
    await one.call(fn, 1, 2, z=1, y=2)
    await one.call(fn, 1, 2, y=2, z=1)
    await one.call(fn, 1, 2)
    assert 2 == len(calls)
    await one.call(fn.invalidate, 1, 2)
    await one.call(fn, 1, 2)
    assert 3 == len(calls)


async def test_cached_ttl_and_none(one: Driver, clock: FakeClock) -> None:
    """The decorator's ttl applies, and a None result is cached."""
    calls: list[int] = []
    fn = one.cached(calls.append, "mod.none", ttl=2.0)
    assert None is await one.call(fn, 1)
    assert None is await one.call(fn, 1)
    clock.advance(2.5)
    await one.call(fn, 1)
    assert [1, 1] == calls


# -- backend failures ---------------------------------------------------------------------------


@pytest.fixture
def failing(kind: str, clock: FakeClock) -> Driver:
    """L1 in front of an L2 that raises BackendError on every call."""
    return build(kind, clock, l1=MemoryTier(maxsize=10), l2=FailingTier(MemoryTier(timer=clock)))


async def test_backend_errors_degrade_to_l1_and_loader(
    failing: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    """With L2 down, get_or_load still returns loaded values, then L1 hits; errors are counted."""
    load = Loader("v")
    with caplog.at_level("WARNING", logger="perfprim.cache"):
        assert "v" == await failing("get_or_load", "k", failing.loader(load))
        assert "v" == await failing("get_or_load", "k", failing.loader(load))
        await failing("set", "x", 1)
        await failing("delete", "x")
        await failing("clear")
        assert {} == await failing("get_many", ["nope"])
    stats = failing.cache.stats()
    assert 1 == load.calls
    assert stats.tiers[1].errors >= 5
    assert stats.backend_errors == stats.tiers[1].errors
    assert 1 == len([r for r in caplog.records if r.levelname == "WARNING"])


async def test_backend_recovers_by_itself(failing: Driver) -> None:
    """When the tier comes back, the cache writes to it again without intervention."""
    await failing("get_or_load", "a", failing.loader(lambda: 1))
    failing.l2.down = False
    await failing("get_or_load", "b", failing.loader(lambda: 2))
    assert [2] == [e.value for e in failing.l2.inner._records.values() for e in [e[2]]]


async def test_raise_on_backend_error(kind: str, clock: FakeClock) -> None:
    """With raise_on_backend_error=True the BackendError reaches the caller."""
    drv = build(
        kind,
        clock,
        l1=MemoryTier(),
        l2=FailingTier(MemoryTier(timer=clock)),
        raise_on_backend_error=True,
    )
    with pytest.raises(BackendError, match="connection refused"):
        await drv("get_or_load", "k", drv.loader(lambda: 1))
    assert 1 == drv.cache.stats().backend_errors


async def test_stats_report_circuit_state_and_decode_errors(kind: str, clock: FakeClock) -> None:
    """Tier-owned counters (decode_errors, circuit_state) are read into stats()."""
    tier = FailingTier(MemoryTier(timer=clock))
    tier.down = False
    tier.decode_errors = 3  # type: ignore[attr-defined]
    tier.circuit_state = "open"  # type: ignore[attr-defined]
    drv = build(kind, clock, l1=MemoryTier(), l2=tier)
    t = drv.cache.stats().tiers[1]
    assert ("failing", 3, "open") == (t.name, t.decode_errors, t.circuit_state)
