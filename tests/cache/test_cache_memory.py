"""MemoryTier: the conformance suite plus what only the L1 does (size bound, L1 TTL cap)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.cache import MemoryTier
from perfprim.cache.advanced import Entry, Tier
from perfprim.exceptions import ConfigurationError
from tests.cache.conformance import ClockDrivenTierConformance, FakeClock, entry


class TestMemoryTierConformance(ClockDrivenTierConformance):
    """MemoryTier passes the tier conformance suite."""

    @pytest.fixture
    def make_tier(self, clock: FakeClock) -> Callable[[], Tier]:
        """MemoryTiers on the injected clock."""
        return lambda: MemoryTier(maxsize=1000, timer=clock)


def test_size_is_bounded_and_oldest_written_goes_first() -> None:
    """Past maxsize the least recently written key is evicted from the readable dict too."""
    tier = MemoryTier(maxsize=3)
    for i in range(5):
        tier.set(f"k{i}", entry(i, 0.0, 1e12), now=0.0)
    assert 3 == len(tier)
    assert [None, None] == [tier.get("k0"), tier.get("k1")]
    assert [2, 3, 4] == [e.value for e in tier.get_many(["k2", "k3", "k4"]) if e is not None]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["set", "del"]), st.integers(0, 20)), max_size=200))
def test_dict_and_order_never_diverge(ops: list[tuple[str, int]]) -> None:
    """Any sequence of writes and deletes keeps the bound and the dict and LRU in step."""
    tier = MemoryTier(maxsize=5)
    for op, n in ops:
        if op == "set":
            tier.set(str(n), entry(n, 0.0, 1e12), now=0.0)
        else:
            tier.delete([str(n)])
        assert len(tier) <= 5
        assert set(tier._order) == set(tier._records)


def test_l1_ttl_caps_the_copy_below_the_entry_expiry() -> None:
    """An L1 copy lives min(L1 ttl, remaining life): the ttl cap binds here."""
    clock = FakeClock(100.0)
    tier = MemoryTier(maxsize=10, ttl=5.0, timer=clock)
    tier.set("k", Entry("v", 160.0, 0.0, 170.0), now=100.0)
    record = tier.lookup("k", 100.0)
    assert record is not None
    assert 105.0 == record[0]
    clock.advance(5.0)
    assert None is tier.get("k")


def test_l1_copy_never_outlives_the_entry() -> None:
    """When the entry expires before the L1 ttl, the entry's expiry wins."""
    tier = MemoryTier(maxsize=10, ttl=30.0)
    tier.set("k", Entry("v", 103.0, 0.0, 103.0), now=100.0)
    record = tier.lookup("k", 100.0)
    assert record is not None
    assert 103.0 == record[0]


def test_counters_survive_clear_and_eviction() -> None:
    """Generation counters are not cache entries: clear() and eviction keep them."""
    tier = MemoryTier(maxsize=1)
    tier.incr("gen")
    tier.set("a", entry(1, 0.0), now=0.0)
    tier.set("b", entry(2, 0.0), now=0.0)
    tier.clear()
    assert 1 == tier.read_counter("gen")
    assert 0 == len(tier)


def test_concurrent_writers_keep_the_bound() -> None:
    """Writes from several threads keep the dict and the bookkeeping in step."""
    tier = MemoryTier(maxsize=50)

    def write(offset: int) -> None:
        for i in range(2000):
            tier.set(f"{offset}-{i}", entry(i, 0.0, 1e12), now=0.0)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert 50 == len(tier)
    assert set(tier._order) == set(tier._records)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"maxsize": 0}, "maxsize"),
        ({"maxsize": 1.5}, "maxsize"),
        ({"maxsize": True}, "maxsize"),
        ({"ttl": -1.0}, "ttl"),
        ({"ttl": float("nan")}, "ttl"),
        ({"ttl": "5"}, "ttl"),
    ],
)
def test_bad_options_fail_fast(kwargs: dict[str, object], match: str) -> None:
    """Invalid maxsize or ttl raise ConfigurationError naming the option."""
    with pytest.raises(ConfigurationError, match=match):
        MemoryTier(**kwargs)  # type: ignore[arg-type]


def test_timedelta_ttl_is_accepted() -> None:
    """A timedelta ttl is converted to seconds once."""
    from datetime import timedelta

    assert 2.5 == MemoryTier(ttl=timedelta(seconds=2.5)).ttl
