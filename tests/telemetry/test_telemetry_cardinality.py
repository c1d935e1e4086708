"""The label guard: bounded distinct values, folding, one warning per label."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.exceptions import ConfigurationError
from perfprim.telemetry import CardinalityWarning, LabelGuard


@pytest.mark.parametrize("options", [{"max_values": 0}, {"max_values": True}, {"other": ""}])
def test_bad_options(options: dict[str, object]) -> None:
    """A limit below 1 (or a bool) or an empty fold value is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        LabelGuard(**options)  # type: ignore[arg-type]


def test_labels_are_independent_and_admitted_values_are_listed() -> None:
    """Each label has its own budget; admitted() lists what passed."""
    guard = LabelGuard(max_values=1, metric="m", other="rest")
    assert "a" == guard.fold("x", "a")
    assert "b" == guard.fold("y", "b")
    with pytest.warns(CardinalityWarning, match="label 'x' of metric 'm'"):
        assert "rest" == guard.fold("x", "c")
    assert frozenset({"a"}) == guard.admitted("x")
    assert frozenset() == guard.admitted("z")


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=8), st.lists(st.text(max_size=3), max_size=60))
def test_never_more_than_the_limit(limit: int, values: list[str]) -> None:
    """Invariant: at most ``limit`` distinct values (and "other") come out; admitted ones pass."""
    import warnings

    guard = LabelGuard(max_values=limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CardinalityWarning)
        out = [guard.fold("l", v) for v in values]
    admitted = guard.admitted("l")
    assert len(admitted) <= limit
    assert set(out) <= admitted | {"other"}
    for value, folded in zip(values, out, strict=True):
        assert folded == (value if value in admitted else "other")
