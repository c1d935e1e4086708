"""OpenSLO budgeting methods: occurrences, timeslices, ratio-timeslices."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfprim.exceptions import ConfigurationError
from perfprim.slo import SLO, Occurrences, RatioTimeslices, Timeslices

SLICES = [(100, 100), (90, 100), (0, 0), (1, 2), (999, 1000)]

pairs = st.lists(
    st.tuples(st.integers(0, 1000), st.integers(0, 1000)).map(lambda p: (min(p), max(p))),
    max_size=50,
)


def test_occurrences_sums_events() -> None:
    """Occurrences: all good over all events, slices merged."""
    assert (100 + 90 + 1 + 999) / (100 + 100 + 2 + 1000) == Occurrences().sli(SLICES)


def test_timeslices_counts_good_slices() -> None:
    """Timeslices: a slice is good when its ratio >= slice_target; empty slices skipped."""
    method = Timeslices(slice_target=0.95, slice_duration=60)
    assert 2 / 4 == method.sli(SLICES)
    assert 3 / 4 == Timeslices(slice_target=0.9, slice_duration=60).sli(SLICES)


def test_ratio_timeslices_averages_ratios() -> None:
    """RatioTimeslices: the mean of per-slice ratios over slices with traffic."""
    assert pytest.approx((1 + 0.9 + 0.5 + 0.999) / 4) == RatioTimeslices(slice_duration=60).sli(
        SLICES
    )


@pytest.mark.parametrize(
    "method",
    [
        Occurrences(),
        Timeslices(slice_target=0.9, slice_duration=60),
        RatioTimeslices(slice_duration=60),
    ],
)
def test_no_traffic_is_undefined(method: Occurrences | Timeslices | RatioTimeslices) -> None:
    """Every method returns None when no slice had events."""
    assert method.sli([]) is None
    assert method.sli([(0, 0), (0, 0)]) is None


@pytest.mark.parametrize(
    "method",
    [
        Occurrences(),
        Timeslices(slice_target=0.9, slice_duration=60),
        RatioTimeslices(slice_duration=60),
    ],
)
def test_inconsistent_slices_are_rejected(
    method: Occurrences | Timeslices | RatioTimeslices,
) -> None:
    """A slice with good > total is rejected by every method."""
    with pytest.raises(ConfigurationError, match="exceeds total"):
        method.sli([(3, 2)])


def test_budget_from_slices_through_the_slo() -> None:
    """SLO.sli_from_slices uses its budgeting method; consumption = (1 - SLI) / budget."""
    slo = SLO(target=0.9, budgeting=Timeslices(slice_target=0.95, slice_duration=60))
    sli = slo.sli_from_slices(SLICES)
    assert 0.5 == sli
    assert 5.0 == pytest.approx(slo.budget_consumed_from_sli(sli))


def test_invalid_budgeting_arguments() -> None:
    """Slice targets and durations are validated; a slice longer than the window fails."""
    with pytest.raises(ConfigurationError, match="slice_target"):
        Timeslices(slice_target=0, slice_duration=60)
    with pytest.raises(ConfigurationError, match="slice_duration"):
        RatioTimeslices(slice_duration=-1)
    with pytest.raises(ConfigurationError, match="slice_duration"):
        SLO(target=0.9, window=3600, budgeting=RatioTimeslices(slice_duration=7200), policy=[])
    with pytest.raises(ConfigurationError, match="budgeting must be"):
        SLO(target=0.9, budgeting="Occurrences")  # type: ignore[arg-type]


def test_methods_are_values() -> None:
    """Budgeting methods compare by value, hash, and show their fields."""
    assert Timeslices(slice_target=0.9, slice_duration=60) == Timeslices(
        slice_target=0.9, slice_duration=60.0
    )
    assert 1 == len({RatioTimeslices(slice_duration=60), RatioTimeslices(slice_duration=60)})
    assert "Timeslices(slice_target=0.9, slice_duration=60.0)" == repr(
        Timeslices(slice_target=0.9, slice_duration=60)
    )
    with pytest.raises(AttributeError):
        RatioTimeslices(slice_duration=60).slice_duration = 5  # type: ignore[misc]


@given(slices=pairs)
def test_all_methods_agree_on_uniform_slices(slices: list[tuple[int, int]]) -> None:
    """SLIs lie in [0, 1]; with one slice, occurrences and ratio-timeslices agree."""
    for method in (Occurrences(), RatioTimeslices(slice_duration=1)):
        sli = method.sli(slices)
        assert sli is None or 0 <= sli <= 1
    for pair in slices:
        assert Occurrences().sli([pair]) == RatioTimeslices(slice_duration=1).sli([pair])
