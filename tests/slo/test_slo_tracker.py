"""SLOTracker: windows against brute force, bounded memory, threads, alerts, snapshots."""

from __future__ import annotations

import dataclasses
import math
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.exceptions import ConfigurationError
from perfprim.slo import (
    SLO,
    AlertRule,
    LatencySLO,
    RatioTimeslices,
    SLOSnapshot,
    SLOTracker,
    Timeslices,
)

DAY = 86400.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(target: float = 0.999, **kwargs: object) -> tuple[SLOTracker, FakeClock]:
    """A tracker of SLO(target) on a fake clock."""
    clock = FakeClock()
    return SLOTracker(SLO(target=target), clock=clock, **kwargs), clock  # type: ignore[arg-type]


def test_counts_and_ratios_in_every_window() -> None:
    """2% errors recorded now show in every window with burn rate 20 (99.9%)."""
    tracker, _ = make()
    for i in range(1000):
        tracker.record(i % 50 != 0)
    snap = tracker.snapshot()
    assert [(980, 1000, 0.02)] * 7 == [(w.good, w.total, w.error_ratio) for w in snap.windows]
    assert 20.0 == pytest.approx(tracker.burn_rate(3600))
    assert 0.02 == tracker.error_ratio(300)
    assert 0.98 == snap.sli
    assert -19.0 == pytest.approx(snap.budget_remaining)


def test_default_resolutions() -> None:
    """Fine buckets are 1/10 of the shortest window; coarse ones window / 720."""
    tracker, _ = make()
    assert 30.0 == tracker.resolution
    assert 3600.0 == tracker.budget_resolution


def test_events_leave_the_windows_as_time_passes() -> None:
    """Bad events leave the 5 m window after 5 m, the 1 h window after 1 h."""
    tracker, clock = make()
    for _ in range(10):
        tracker.record(False)
    clock.advance(301)
    for _ in range(90):
        tracker.record(True)
    assert 0.0 == tracker.error_ratio(300)
    assert 0.1 == tracker.error_ratio(3600)
    clock.advance(3600)
    assert tracker.error_ratio(3600) is None  # no traffic in the last hour
    assert 0.1 == tracker.error_ratio(DAY)
    assert 0.9 == pytest.approx(tracker.snapshot().sli)


def test_idle_longer_than_every_ring_forgets_everything() -> None:
    """After more than the SLO window without traffic, the budget is whole again."""
    tracker, clock = make()
    for _ in range(5):
        tracker.record(False)
    assert tracker.budget_remaining() < 0
    clock.advance(31 * DAY)
    assert 1.0 == tracker.budget_remaining()
    assert all(w.error_ratio is None for w in tracker.snapshot().windows)
    tracker.record(True)
    assert 0.0 == tracker.error_ratio(300)


def test_clock_stepping_back_is_treated_as_standing_still() -> None:
    """Events stamped before the current bucket go into it; nothing is lost or raised."""
    tracker, clock = make()
    clock.advance(100)
    tracker.record(True)
    clock.advance(-1000)
    tracker.record(False)
    assert 2 == tracker.window_status(300).total


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.floats(0, 4000), st.booleans()),
        min_size=1,
        max_size=200,
    ),
    query_after=st.floats(0, 4000),
)
def test_windows_match_brute_force(steps: list[tuple[float, bool]], query_after: float) -> None:
    """Every window equals a brute-force count over the event log, bucket-aligned.

    A window of k buckets counts the events whose bucket is one of the last
    k buckets, the current one included.
    """
    policy = [AlertRule(severity="page", budget_fraction=0.02, long_window=3600, short_window=300)]
    clock = FakeClock(0.0)
    tracker = SLOTracker(SLO(target=0.99, window=DAY, policy=policy), clock=clock, resolution=30)
    log: list[tuple[float, bool]] = []
    for gap, good in steps:
        clock.advance(gap)
        tracker.record(good)
        log.append((clock.now, good))
    clock.advance(query_after)
    now_bucket = math.floor(clock.now / 30)
    for window in (300.0, 3600.0):
        k = round(window / 30)
        inside = [good for t, good in log if math.floor(t / 30) > now_bucket - k]
        status = tracker.window_status(window)
        assert (sum(inside), len(inside)) == (status.good, status.total)
    coarse_bucket = math.floor(clock.now / tracker.budget_resolution)
    inside = [
        good for t, good in log if math.floor(t / tracker.budget_resolution) > coarse_bucket - 720
    ]
    expected = tracker.slo.budget_consumed(sum(inside), len(inside))
    assert expected == pytest.approx(tracker.snapshot().budget_consumed)


def test_memory_is_bounded_whatever_the_traffic() -> None:
    """The rings are sized by windows and resolution; traffic never grows them."""
    tracker, clock = make()
    sizes = (len(tracker._fine.total), len(tracker._coarse.total))
    for _ in range(200):
        for _ in range(500):
            tracker.record(True)
        clock.advance(97)
    assert sizes == (len(tracker._fine.total), len(tracker._coarse.total))
    assert (8642, 722) == sizes


def test_threads_lose_no_event() -> None:
    """Eight threads recording concurrently: every event is counted once."""
    tracker = SLOTracker(SLO(target=0.99))
    barrier = threading.Barrier(8)

    def work(index: int) -> None:
        barrier.wait(timeout=10)
        for i in range(5000):
            tracker.record((i + index) % 10 != 0)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    status = tracker.window_status(300)
    assert (36000, 40000) == (status.good, status.total)


def test_page_fires_when_two_percent_burns_in_an_hour() -> None:
    """1 h at 1.5% errors (2.08% of the budget) pages; 1.3% (1.8%) stays quiet."""
    for ratio, expected in ((0.015, ("page",)), (0.013, ())):
        tracker, clock = make()
        for _ in range(3 * 24 * 12):  # three clean days first
            tracker.record_counts(good=5000, total=5000)
            clock.advance(300)
        for _ in range(60):
            tracker.record_counts(good=round(1000 * (1 - ratio)), total=1000)
            clock.advance(60)
        clock.advance(-1)
        assert expected == tuple(w.severity for w in tracker.firing())


def test_page_resets_soon_after_the_burn_stops() -> None:
    """The 5 m control window resets the 1 h page row within minutes of recovery.

    The 6 h row (30 m control window) keeps firing until its own window is clean.
    """
    tracker, clock = make()
    fast, slow = tracker.slo.alert_windows()[:2]
    for _ in range(60):
        tracker.record_counts(good=900, total=1000)
        clock.advance(60)
    assert {fast, slow} <= set(tracker.firing())
    for _ in range(6):
        tracker.record_counts(good=1000, total=1000)
        clock.advance(60)
    assert fast not in tracker.firing()
    assert slow in tracker.firing()
    assert tracker.burn_rate(3600) > 14.4  # the long window alone still burns
    for _ in range(30):
        tracker.record_counts(good=1000, total=1000)
        clock.advance(60)
    assert slow not in tracker.firing()


def test_record_latency_uses_the_threshold() -> None:
    """record_latency counts <= threshold as good (the Prometheus le convention)."""
    clock = FakeClock()
    tracker = SLOTracker(LatencySLO(threshold=0.3, target=0.99), clock=clock)
    for latency in (0.1, 0.3, 0.30001, 2.0):
        tracker.record_latency(latency)
    assert 0.5 == tracker.error_ratio(300)


def test_record_latency_needs_a_latency_slo() -> None:
    """A plain SLO has no threshold: record_latency says to use record."""
    tracker, _ = make()
    with pytest.raises(ConfigurationError, match=r"record\(good\)"):
        tracker.record_latency(0.1)


@pytest.mark.parametrize(("good", "total"), [(-1, 5), (6, 5), (1.5, 5), (True, 5)])
def test_record_counts_rejects_bad_batches(good: object, total: object) -> None:
    """Batches must be integers with 0 <= good <= total."""
    tracker, _ = make()
    with pytest.raises(ConfigurationError, match="record_counts"):
        tracker.record_counts(good=good, total=total)  # type: ignore[arg-type]


def test_unknown_window_names_the_known_ones() -> None:
    """Only the policy's windows are kept; asking for another says which exist."""
    tracker, _ = make()
    with pytest.raises(ConfigurationError, match="policy windows are 300, 1800"):
        tracker.error_ratio(600)
    with pytest.raises(ConfigurationError, match="no 600 s window"):
        tracker.snapshot().window(600)


def test_snapshot_is_frozen_and_complete() -> None:
    """The snapshot holds windows, budget and alerts, and cannot be changed."""
    tracker, _ = make()
    tracker.record(False)
    snap = tracker.snapshot()
    assert isinstance(snap, SLOSnapshot)
    assert 1.0 == snap.window(3600).error_ratio
    assert 1000.0 == snap.window(300).burn_rate
    assert 4 == len(snap.firing)
    assert tracker.slo is snap.slo
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.sli = 1.0  # type: ignore[misc]


def test_no_traffic_snapshot() -> None:
    """Without events: ratios and burn rates None, budget whole, nothing fires."""
    tracker, _ = make()
    snap = tracker.snapshot()
    assert snap.sli is None
    assert 1.0 == snap.budget_remaining
    assert () == snap.firing
    assert all(w.error_ratio is None and w.burn_rate is None for w in snap.windows)


def test_target_one_tracker() -> None:
    """Target 1.0: one error burns infinitely and fires everything."""
    tracker, _ = make(target=1.0)
    tracker.record(True)
    assert tracker.burn_rate(300) is None
    tracker.record(False)
    assert math.inf == tracker.burn_rate(300)
    assert -math.inf == tracker.budget_remaining()
    assert 4 == len(tracker.firing())


def test_timeslices_budget() -> None:
    """With Timeslices the coarse buckets are the slices; bad slices spend the budget."""
    clock = FakeClock(0.0)
    slo = SLO(target=0.9, budgeting=Timeslices(slice_target=0.95, slice_duration=60))
    tracker = SLOTracker(slo, clock=clock)
    assert 60.0 == tracker.budget_resolution
    for minute in range(10):
        good = 90 if minute in (3, 7) else 100  # two bad minutes out of ten
        tracker.record_counts(good=good, total=100)
        clock.advance(60)
    snap = tracker.snapshot()
    assert 0.8 == snap.sli
    assert 2.0 == pytest.approx(snap.budget_consumed)


def test_ratio_timeslices_budget() -> None:
    """RatioTimeslices averages the completed slices' ratios."""
    clock = FakeClock(0.0)
    slo = SLO(target=0.9, budgeting=RatioTimeslices(slice_duration=60))
    tracker = SLOTracker(slo, clock=clock)
    tracker.record_counts(good=1, total=2)
    clock.advance(60)
    tracker.record_counts(good=100, total=100)
    clock.advance(60)
    tracker.record_counts(good=0, total=100)  # current slice: not yet counted
    assert 0.75 == tracker.snapshot().sli


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resolution": 600}, "coarser than the shortest"),
        ({"resolution": 0.01}, "use a coarser resolution"),
        ({"budget_resolution": 1}, "use a coarser budget_resolution"),
        ({"budget_resolution": 40 * DAY}, "longer than the SLO window"),
        ({"resolution": -1}, "resolution"),
    ],
)
def test_invalid_resolutions(kwargs: dict[str, float], match: str) -> None:
    """Resolutions are checked against the windows and the slot limit."""
    with pytest.raises(ConfigurationError, match=match):
        SLOTracker(SLO(target=0.99), **kwargs)  # type: ignore[arg-type]


def test_timeslices_fix_the_budget_resolution() -> None:
    """With timeslice budgeting, a different budget_resolution is refused."""
    slo = SLO(target=0.9, budgeting=Timeslices(slice_target=0.9, slice_duration=60))
    with pytest.raises(ConfigurationError, match="slice length"):
        SLOTracker(slo, budget_resolution=120)


def test_tracker_needs_an_slo() -> None:
    """Passing something else than an SLO fails fast."""
    with pytest.raises(ConfigurationError, match="SLO"):
        SLOTracker(0.999)  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.floats(0, 200), st.integers(0, 5), st.integers(0, 5)),
        min_size=1,
        max_size=120,
    ),
    query_after=st.floats(0, 900),
    ratio=st.booleans(),
)
def test_timeslice_budget_matches_brute_force(
    steps: list[tuple[float, int, int]], query_after: float, ratio: bool
) -> None:
    """The incremental slice sums equal the budgeting method over the last K completed slices.

    A 10-minute SLO window of 1-minute slices, with gaps longer than the
    window, so slices enter, leave and the window empties.
    """
    method: Timeslices | RatioTimeslices = (
        RatioTimeslices(slice_duration=60)
        if ratio
        else Timeslices(slice_target=0.8, slice_duration=60)
    )
    policy = [AlertRule(severity="page", budget_fraction=0.5, long_window=300, short_window=60)]
    slo = SLO(target=0.9, window=600, budgeting=method, policy=policy)
    clock = FakeClock(0.0)
    tracker = SLOTracker(slo, clock=clock)
    log: list[tuple[float, int, int]] = []
    for gap, good, bad in steps:
        clock.advance(gap)
        tracker.record_counts(good=good, total=good + bad)
        log.append((clock.now, good, good + bad))
    clock.advance(query_after)
    current = math.floor(clock.now / 60)
    slices = []
    for bucket in range(current - 10, current):
        inside = [(g, t) for stamp, g, t in log if math.floor(stamp / 60) == bucket]
        slices.append((sum(g for g, _ in inside), sum(t for _, t in inside)))
    expected = method.sli(slices)
    actual = tracker.snapshot().sli
    if expected is None:
        assert actual is None
    else:
        assert expected == pytest.approx(actual)


def test_timeslice_snapshot_is_constant_time() -> None:
    """A month of 1-minute slices: the budget is read from running sums, not 43,200 slices."""
    now = [0.0]
    slo = SLO(target=0.99, budgeting=Timeslices(slice_target=0.95, slice_duration=60))
    tracker = SLOTracker(slo, clock=lambda: now[0])
    for minute in range(43_200):
        tracker.record_counts(good=90 if minute % 100 == 0 else 100, total=100)
        now[0] += 60
    assert 0.99 == pytest.approx(tracker.snapshot().sli)
    assert 43_200 == tracker._slices_counted


def test_empty_policy_tracks_the_budget_only() -> None:
    """With no alert rules the tracker keeps the budget; nothing can fire."""
    clock = FakeClock()
    tracker = SLOTracker(SLO(target=0.99, window=3600, policy=[]), clock=clock)
    tracker.record_counts(good=995, total=1000)
    snap = tracker.snapshot()
    assert () == snap.windows
    assert () == snap.firing
    assert 0.5 == pytest.approx(snap.budget_remaining)
