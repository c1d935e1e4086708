"""The cache itself: the conformance suite on memory tiers, plus memory-only checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from perfprim.cache import MemoryTier
from perfprim.exceptions import BackendError
from tests.cache.cache_conformance import CacheConformance, Loader, LowerTierConformance
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


class TestMemoryOnly(CacheConformance):
    """The cache conformance suite on a memory-only cache."""

    @pytest.fixture
    def make_lower(self, kind: str, clock: FakeClock) -> Callable[[], Any]:
        """No lower tier."""
        return lambda: None


class TestMemoryL2(LowerTierConformance):
    """The cache conformance suite with a MemoryTier standing in as L2."""

    @pytest.fixture
    def make_lower(self, kind: str, clock: FakeClock) -> Callable[[], Any]:
        """A MemoryTier on the injected clock (adapted to AsyncTier for the async cache)."""
        return lambda: MemoryTier(maxsize=100, timer=clock)


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


async def test_namespaces_are_isolated(kind: str, clock: FakeClock) -> None:
    """Two caches over the same tiers with different namespaces never see each other."""
    l2 = MemoryTier(timer=clock)
    a = build(kind, clock, l1=MemoryTier(), l2=l2, namespace="a")
    b = build(kind, clock, l1=MemoryTier(), l2=l2, namespace="b")
    await a("set", "k", "A")
    assert None is await b("get", "k")
    await b("clear")
    assert "A" == await a("get", "k")


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
