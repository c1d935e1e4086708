"""Named profiles build the stage lists of the usual test types."""

from __future__ import annotations

import pytest

from perfprim.exceptions import ConfigurationError
from perfprim.load import Stage, profiles
from perfprim.load._schedule import Schedule


def test_load_ramps_holds_and_ramps_down() -> None:
    """load(): 0 -> rate over ramp, hold, back to 0: rate * (duration + ramp) requests."""
    s = Schedule(profiles.load(rate=100, duration=60, ramp=10))
    assert 100.0 == s.rate_at(30.0)
    assert 50.0 == pytest.approx(s.rate_at(5.0))
    assert 100 * 60 + 100 * 10 == s.planned
    assert 80.0 == s.duration


def test_stress_climbs_past_the_rate() -> None:
    """stress(): 4 steps up to 150% of the rate."""
    stages = profiles.stress(rate=100, steps=4, step=30, ramp=5)
    assert [37.5, 75.0, 112.5, 150.0] == [s.rate for s in stages[2:-1:2]]
    assert 0.0 == stages[-1].rate


def test_spike_jumps_at_once() -> None:
    """spike(): the rate jumps from base to peak with no ramp, and back."""
    s = Schedule(profiles.spike(base=10, peak=500, before=5, hold=2, after=5))
    assert 10.0 == s.rate_at(4.99)
    assert 500.0 == s.rate_at(5.0)
    assert 10.0 == s.rate_at(7.0)


def test_soak_and_smoke() -> None:
    """soak() holds for an hour by default; smoke() is a trickle."""
    assert 3600.0 == profiles.soak(rate=50)[2].duration
    assert [Stage(30, 2)] == profiles.smoke()


def test_by_name() -> None:
    """by_name() builds a profile from its name, for a command line."""
    assert profiles.stress(rate=10) == profiles.by_name("stress", rate=10)
    assert ("load", "smoke", "soak", "spike", "stress") == profiles.NAMES
    with pytest.raises(ConfigurationError, match="choose one of"):
        profiles.by_name("burst")
    with pytest.raises(ConfigurationError, match="profile 'load'"):
        profiles.by_name("load", rte=5)
    with pytest.raises(ConfigurationError, match="steps must be"):
        profiles.stress(rate=1, steps=0)
