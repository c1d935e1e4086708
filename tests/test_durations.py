"""The one duration converter: float seconds or timedelta in, validated float seconds out."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfprim import _durations
from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError

positive_finite = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False)
negative = st.floats(max_value=0.0, exclude_max=True)
timedeltas = st.timedeltas(min_value=timedelta(microseconds=1))


def test_all_is_pinned() -> None:
    """The module exports exactly the converter."""
    assert ["to_seconds"] == _durations.__all__


@given(positive_finite)
def test_positive_float_is_returned_unchanged(value: float) -> None:
    """A positive finite float (the fast path) comes back as the same value."""
    result = to_seconds(value, name="ttl")
    assert value == result
    assert float is type(result)


@given(st.integers(min_value=1, max_value=10**12))
def test_positive_int_becomes_float(value: int) -> None:
    """An int number of seconds is converted to a float of the same value."""
    result = to_seconds(value, name="ttl")
    assert float(value) == result
    assert float is type(result)


@given(timedeltas)
def test_timedelta_is_converted_once(value: timedelta) -> None:
    """A timedelta becomes its total_seconds(), whatever the options."""
    assert value.total_seconds() == to_seconds(value, name="ttl")
    assert value.total_seconds() == to_seconds(value, name="ttl", allow_zero=True)


def test_timedelta_examples() -> None:
    """1500 ms is 1.5 s; a zero timedelta is 0.0 when zero is allowed."""
    assert 1.5 == to_seconds(timedelta(milliseconds=1500), name="ttl")
    assert 0.0 == to_seconds(timedelta(0), name="x", allow_zero=True)


@given(st.one_of(negative, st.just(0.0), st.just(0), st.just(math.inf), st.just(math.nan)))
def test_default_range_is_positive_and_finite(value: float) -> None:
    """Without allow_zero: zero, negatives, infinity and NaN are refused, naming the option."""
    with pytest.raises(ConfigurationError, match=r"^ttl must be a positive, finite duration"):
        to_seconds(value, name="ttl")


@pytest.mark.parametrize("value", [0, 0.0, -0.0, timedelta(0)])
def test_allow_zero_accepts_zero(value: float | timedelta) -> None:
    """allow_zero=True lets 0 through (as 0.0) and says "non-negative" when refusing."""
    assert 0.0 == to_seconds(value, name="cooldown", allow_zero=True)
    with pytest.raises(ConfigurationError, match="non-negative, finite"):
        to_seconds(-1.0, name="cooldown", allow_zero=True)


@pytest.mark.parametrize("bad", ["1", True, False, None, b"1", [1.0], 1 + 0j])
def test_non_durations_are_refused(bad: object) -> None:
    """Strings, bools, None and other types raise, and the message shows the valid form."""
    with pytest.raises(ConfigurationError) as info:
        to_seconds(bad, name="ttl", allow_zero=True)  # type: ignore[arg-type]
    assert (
        f"ttl must be a non-negative, finite duration (float seconds or a timedelta), got {bad!r}"
        == str(info.value)
    )


def test_negative_timedelta_is_refused() -> None:
    """A negative timedelta is checked like a negative number."""
    with pytest.raises(ConfigurationError, match="positive"):
        to_seconds(timedelta(seconds=-1), name="ttl")


def test_example_is_appended_to_the_message() -> None:
    """The optional example tells the caller what a good value looks like."""
    with pytest.raises(ConfigurationError) as info:
        to_seconds(0, name="unit", example="1e-6 = microseconds")
    assert (
        "unit must be a positive, finite duration (float seconds or a timedelta), got 0; "
        "e.g. 1e-6 = microseconds"
    ) == str(info.value)


def test_is_a_value_error() -> None:
    """ConfigurationError refines ValueError, so generic handlers still catch it."""
    with pytest.raises(ValueError, match="ttl"):
        to_seconds(-1, name="ttl")


@given(st.floats(allow_nan=True), st.booleans())
def test_result_is_accepted_or_refused_consistently(value: float, allow_zero: bool) -> None:
    """Any float is either returned unchanged within the allowed range or refused."""
    allowed = (value > 0 or (allow_zero and value == 0)) and math.isfinite(value)
    if allowed:
        assert value == to_seconds(value, name="d", allow_zero=allow_zero)
    else:
        with pytest.raises(ConfigurationError, match=r"^d must be"):
            to_seconds(value, name="d", allow_zero=allow_zero)
