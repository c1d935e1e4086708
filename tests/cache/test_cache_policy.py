"""The pure decisions in _decisions: freshness, back-fill TTL, entries from loads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from perfprim.cache._decisions import (
    entry_from_load,
    entry_from_set,
    is_fresh,
    l1_fresh_until,
    l1_keep_until,
)
from perfprim.cache.advanced import Entry

times = st.floats(min_value=0, max_value=1e9, allow_nan=False)
durations = st.floats(min_value=0.001, max_value=1e6, allow_nan=False)


def test_fresh_strictly_before_expiry() -> None:
    """An entry is fresh before expires_at and not at it."""
    e = Entry("v", 10.0, 0.0, 10.0)
    assert is_fresh(e, 9.999)
    assert not is_fresh(e, 10.0)


@given(times, durations, st.one_of(st.none(), durations))
def test_backfill_never_outlives_the_entry(now: float, life: float, l1_ttl: float | None) -> None:
    """The L1 copy is fresh for min(L1 ttl, remaining life), never longer."""
    e = Entry("v", now + life, 0.0, now + life)
    until = l1_fresh_until(e, now, l1_ttl)
    assert until <= e.expires_at
    expected = e.expires_at if l1_ttl is None else min(now + l1_ttl, e.expires_at)
    assert expected == until


def test_keep_until_follows_the_stale_window_only_when_uncapped() -> None:
    """L1 keeps a copy into the stale window only if its own TTL did not cut it short."""
    e = Entry("v", 10.0, 0.0, 20.0)
    assert 20.0 == l1_keep_until(e, 10.0)
    assert 8.0 == l1_keep_until(e, 8.0)


def test_entry_from_load_carries_delta_and_stale_window() -> None:
    """A loaded entry stores now+ttl, the measured delta and now+ttl+stale_ttl."""
    assert Entry("v", 130.0, 0.5, 140.0) == entry_from_load(
        "v", now=100.0, ttl=30.0, delta=0.5, stale_ttl=10.0
    )
    assert 0.0 == entry_from_set("v", now=0.0, ttl=1.0).delta
