"""A tier conformance suite: subclass it once per tier and provide ``make_tier``.

Like dogpile.cache's backend fixtures: every tier must pass the same tests:
``MemoryTier`` (``test_cache_memory.py``) and ``RedisTier`` / ``AsyncRedisTier``
on a real server and on a real cluster (``test_cache_redis_tier.py``, whose
``RedisTierContract`` subclasses :class:`TierConformance`). A subclass
overrides the ``make_tier`` fixture; it receives ``clock`` (a
:class:`FakeClock`). A tier that takes an injected clock (``MemoryTier``)
subclasses :class:`ClockDrivenTierConformance`, which adds the expiry tests
driven by that clock; Redis expires keys on its own clock and subclasses
:class:`TierConformance`.

Keys are complete tier keys (the caches build them); each test uses keys with
a unique prefix so a shared server needs no flush.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from perfprim.cache.advanced import Entry, Tier


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def entry(value: object, now: float, ttl: float = 60.0, *, delta: float = 0.0) -> Entry:
    """An entry fresh for ``ttl`` seconds from ``now``."""
    return Entry(value, now + ttl, delta, now + ttl)


class TierConformance:
    """Tests every :class:`perfprim.cache.Tier` must pass."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        """The injected clock."""
        return FakeClock()

    @pytest.fixture
    def make_tier(self, clock: FakeClock) -> Callable[[], Tier]:
        """Return a factory of fresh tiers; subclasses must override it."""
        raise NotImplementedError

    @pytest.fixture
    def tier(self, make_tier: Callable[[], Tier]) -> Tier:
        """A tier under test."""
        return make_tier()

    @pytest.fixture
    def key(self) -> Callable[[str], str]:
        """Build unique complete keys (namespace:generation:{body})."""
        prefix = f"conf-{uuid.uuid4().hex[:10]}:0:"
        return lambda body: f"{prefix}{{{body}}}"

    def test_is_a_tier(self, tier: Tier) -> None:
        """The tier implements the Tier protocol and has a name."""
        assert isinstance(tier, Tier)
        assert isinstance(tier.name, str)
        assert tier.name

    def test_get_missing_is_none(self, tier: Tier, key: Any) -> None:
        """An absent key reads as None."""
        assert None is tier.get(key("absent"))

    def test_set_then_get_round_trips_the_entry(
        self, tier: Tier, key: Any, clock: FakeClock
    ) -> None:
        """Get returns the value, expiry and delta that were set."""
        stored = entry({"a": [1, 2]}, clock(), delta=0.25)
        tier.set(key("k"), stored, now=clock())
        got = tier.get(key("k"))
        assert got is not None
        assert {"a": [1, 2]} == got.value
        assert stored.expires_at == pytest.approx(got.expires_at)
        assert 0.25 == pytest.approx(got.delta)

    def test_none_is_a_value(self, tier: Tier, key: Any, clock: FakeClock) -> None:
        """A stored None comes back as an Entry holding None, not as a miss."""
        tier.set(key("none"), entry(None, clock()), now=clock())
        got = tier.get(key("none"))
        assert got is not None
        assert None is got.value

    def test_overwrite_replaces_the_value(self, tier: Tier, key: Any, clock: FakeClock) -> None:
        """A second set of the same key wins."""
        tier.set(key("k"), entry(1, clock()), now=clock())
        tier.set(key("k"), entry(2, clock()), now=clock())
        got = tier.get(key("k"))
        assert got is not None
        assert 2 == got.value

    def test_delete_removes_and_ignores_missing(
        self, tier: Tier, key: Any, clock: FakeClock
    ) -> None:
        """Delete removes present keys and ignores absent ones."""
        tier.set(key("a"), entry(1, clock()), now=clock())
        tier.set(key("b"), entry(2, clock()), now=clock())
        tier.delete([key("a"), key("never")])
        assert None is tier.get(key("a"))
        got = tier.get(key("b"))
        assert got is not None
        assert 2 == got.value

    def test_get_many_preserves_order_with_gaps(
        self, tier: Tier, key: Any, clock: FakeClock
    ) -> None:
        """get_many returns one slot per key, in order, None for misses."""
        tier.set_many({key("x"): entry("X", clock()), key("z"): entry("Z", clock())}, now=clock())
        got = tier.get_many([key("z"), key("y"), key("x")])
        assert ["Z", None, "X"] == [e.value if e is not None else None for e in got]

    def test_get_many_empty(self, tier: Tier) -> None:
        """get_many of no keys is an empty list."""
        assert [] == tier.get_many([])

    def test_unicode_keys_and_values(self, tier: Tier, key: Any, clock: FakeClock) -> None:
        """Non-ASCII keys and values round-trip."""
        k = key("ключ-鍵-🔑")
        tier.set(k, entry("значение-値", clock()), now=clock())
        got = tier.get(k)
        assert got is not None
        assert "значение-値" == got.value

    def test_incr_counts_from_zero(self, tier: Tier, key: Any) -> None:
        """read_counter of an absent counter is 0; incr returns 1, 2, ..."""
        counter = key("counter").replace("{", "").replace("}", "")
        assert 0 == tier.read_counter(counter)
        assert 1 == tier.incr(counter)
        assert 2 == tier.incr(counter)
        assert 2 == tier.read_counter(counter)

    def test_read_counters_reads_many_in_order(self, tier: Tier, key: Any) -> None:
        """read_counters returns each counter in order, 0 for an absent one."""
        a, b = key("ca").replace(":0:", ":#c:"), key("cb").replace(":0:", ":#c:")
        tier.incr(b)
        tier.incr(b)
        assert [0, 2, 0] == tier.read_counters([a, b, a])
        assert [] == tier.read_counters([])

    def test_tagged_entry_is_refused_once_its_tag_moves(
        self, tier: Tier, key: Any, clock: FakeClock
    ) -> None:
        """A tagged entry reads back while its tags' counters match; one incr retires it.

        Entries carrying the other tag only are untouched, in get and get_many.
        """
        tag_a = key("tag-a").replace(":0:", ":#tag:")
        tag_b = key("tag-b").replace(":0:", ":#tag:")
        now = clock()
        both = Entry("v", now + 60.0, 0.0, now + 60.0, ((tag_a, 0), (tag_b, 0)))
        only_b = Entry("w", now + 60.0, 0.0, now + 60.0, ((tag_b, 0),))
        tier.set(key("k"), both, now=now)
        tier.set(key("other"), only_b, now=now)
        got = tier.get(key("k"))
        assert got is not None
        assert ("v", both.tags) == (got.value, got.tags)
        assert 1 == tier.incr(tag_a)
        assert None is tier.get(key("k"))
        assert [None, "w"] == [
            e.value if e is not None else None for e in tier.get_many([key("k"), key("other")])
        ]
        stale = Entry("x", now + 60.0, 0.0, now + 60.0, ((tag_a, 0),))  # stamped before the incr
        tier.set(key("late"), stale, now=now)
        assert None is tier.get(key("late"))


class ClockDrivenTierConformance(TierConformance):
    """The suite plus expiry driven by the injected clock, for tiers that take one."""

    def test_entry_expires_at_stale_until(self, tier: Tier, key: Any, clock: FakeClock) -> None:
        """The tier keeps an entry until stale_until and not after."""
        now = clock()
        tier.set(key("k"), Entry("v", now + 10.0, 0.0, now + 15.0), now=now)
        clock.advance(12.0)
        got = tier.get(key("k"))
        assert got is not None
        assert "v" == got.value
        clock.advance(3.5)
        assert None is tier.get(key("k"))

    def test_already_expired_entry_is_not_stored(
        self, tier: Tier, key: Any, clock: FakeClock
    ) -> None:
        """Setting an entry whose stale_until has passed stores nothing."""
        now = clock()
        tier.set(key("old"), Entry("v", now - 5.0, 0.0, now - 1.0), now=now)
        assert None is tier.get(key("old"))
