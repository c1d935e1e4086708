"""Headroom and Little's law."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfprim.capacity import headroom, littles_law
from perfprim.exceptions import ConfigurationError


def test_headroom_example_from_the_issue() -> None:
    """1000 req/s at 55% utilization, 70% ceiling: 1000 x 0.70 / 0.55 = 1272.7 req/s."""
    assert "1272.7" == f"{headroom(current_load=1000, current_utilization=0.55, ceiling=0.70):.1f}"
    assert 1000.0 == headroom(current_load=1000, current_utilization=0.7, ceiling=0.7)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"current_load": 0, "current_utilization": 0.5, "ceiling": 0.7}, "current_load"),
        ({"current_load": 10, "current_utilization": 0.0, "ceiling": 0.7}, r"\(0, 1\]"),
        ({"current_load": 10, "current_utilization": 1.2, "ceiling": 0.7}, "current_utilization"),
        ({"current_load": 10, "current_utilization": 0.5, "ceiling": 1.5}, "ceiling"),
        ({"current_load": 10, "current_utilization": 0.8, "ceiling": 0.7}, "already over"),
    ],
)
def test_headroom_rejects_invalid_input(kwargs: dict[str, float], match: str) -> None:
    """Utilization outside (0, 1] or a ceiling below it raise ConfigurationError."""
    with pytest.raises(ConfigurationError, match=match):
        headroom(**kwargs)


def test_littles_law_solves_for_each_quantity() -> None:
    """L = lambda W: 50/s x 0.2 s = 10 in flight, and back."""
    assert pytest.approx(10.0) == littles_law(arrival_rate=50, latency=0.2)
    assert pytest.approx(50.0) == littles_law(concurrency=10, latency=0.2)
    assert pytest.approx(0.2) == littles_law(concurrency=10, arrival_rate=50)
    assert pytest.approx(10.0) == littles_law(arrival_rate=50, latency=timedelta(milliseconds=200))


@given(
    rate=st.floats(1e-6, 1e9),
    latency=st.floats(1e-9, 1e6),
)
def test_littles_law_round_trips(rate: float, latency: float) -> None:
    """Solving for L and then for lambda or W gives the inputs back."""
    concurrency = littles_law(arrival_rate=rate, latency=latency)
    assert pytest.approx(rate, rel=1e-12) == littles_law(concurrency=concurrency, latency=latency)
    assert pytest.approx(latency, rel=1e-12) == littles_law(
        concurrency=concurrency, arrival_rate=rate
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly two"),
        ({"concurrency": 1.0}, "exactly two"),
        ({"concurrency": 1.0, "arrival_rate": 1.0, "latency": 1.0}, "exactly two"),
        ({"concurrency": 1.0, "arrival_rate": 0.0}, "arrival_rate must be a finite number > 0"),
        ({"concurrency": 1.0, "latency": 0.0}, "latency must be a positive, finite duration"),
        ({"arrival_rate": -1.0, "latency": 1.0}, "arrival_rate must be a finite number >= 0"),
        ({"concurrency": -1.0, "latency": 1.0}, "concurrency"),
    ],
)
def test_littles_law_rejects_invalid_input(kwargs: dict[str, float], match: str) -> None:
    """Not exactly two inputs, negatives, or a division by zero raise ConfigurationError."""
    with pytest.raises(ConfigurationError, match=match):
        littles_law(**kwargs)
