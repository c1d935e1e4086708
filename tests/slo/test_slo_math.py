"""SLO and error-budget math: the Workbook's figures computed, edge cases, invariants."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfprim.slo
from perfprim.exceptions import ConfigurationError
from perfprim.slo import SLO

DAY = 86400.0
MONTH = 30 * DAY

targets = st.sampled_from([0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999])


def test_exported_members() -> None:
    """The public surface of perfprim.slo is pinned."""
    assert [
        "DEFAULT_POLICY",
        "SLO",
        "AlertRule",
        "AlertWindow",
        "BucketCounts",
        "BudgetingMethod",
        "CalendarWindow",
        "CumulativeHistogram",
        "LatencySLO",
        "Occurrences",
        "OpenSLODefinition",
        "RatioTimeslices",
        "SLOSnapshot",
        "SLOTracker",
        "Timeslices",
        "WindowStatus",
        "load_openslo",
        "load_openslo_all",
    ] == perfprim.slo.__all__


def test_error_budget_and_allowed_downtime() -> None:
    """99.9% over 30 days: a budget of exactly 0.001 and 43.2 minutes of downtime."""
    slo = SLO(target=0.999, window=MONTH)
    assert 0.001 == slo.error_budget
    assert 2592.0 == slo.allowed_downtime
    assert 43.2 == pytest.approx(slo.allowed_downtime / 60)


def test_window_defaults_to_30_days_and_accepts_timedelta() -> None:
    """The window is 30 days unless given; a timedelta is converted to seconds."""
    assert MONTH == SLO(target=0.99).window
    assert 28 * DAY == SLO(target=0.99, window=timedelta(days=28)).window


def test_allowed_bad_events() -> None:
    """The budget in events is budget x total."""
    assert 1000.0 == pytest.approx(SLO(target=0.999).allowed_bad_events(1_000_000))


def test_sli_and_budget_consumed() -> None:
    """SLI = good/total; consumed = bad / (budget x total); remaining = 1 - consumed."""
    slo = SLO(target=0.99)
    assert 0.995 == slo.sli(995, 1000)
    assert 0.5 == pytest.approx(slo.budget_consumed(995, 1000))
    assert 0.5 == pytest.approx(slo.budget_remaining(995, 1000))
    assert 2.0 == pytest.approx(slo.budget_consumed(980, 1000))
    assert -1.0 == pytest.approx(slo.budget_remaining(980, 1000))


def test_zero_traffic_has_no_sli_and_spends_no_budget() -> None:
    """Without events the SLI is undefined (None) and no budget is spent."""
    slo = SLO(target=0.999)
    assert slo.sli(0, 0) is None
    assert 0.0 == slo.budget_consumed(0, 0)
    assert 1.0 == slo.budget_remaining(0, 0)
    assert 0.0 == slo.budget_consumed_from_sli(None)


def test_target_one_has_no_budget() -> None:
    """Target 1.0: budget 0; any error burns infinitely fast, none is undefined (None)."""
    slo = SLO(target=1.0)
    assert 0.0 == slo.error_budget
    assert 0.0 == slo.allowed_downtime
    assert math.inf == slo.burn_rate(0.0001)
    assert slo.burn_rate(0.0) is None
    assert math.inf == slo.budget_consumed(999, 1000)
    assert 0.0 == slo.budget_consumed(1000, 1000)
    assert -math.inf == slo.budget_remaining(999, 1000)
    assert slo.alert_windows() == slo.evaluate(dict.fromkeys(slo.policy_windows(), 1e-6))
    assert () == slo.evaluate(dict.fromkeys(slo.policy_windows(), 0.0))


@pytest.mark.parametrize(
    ("percent", "ratio"),
    [(99.9, "0.999"), (99, "0.99"), (100, "1.0"), (50.0, "0.5"), (99.95, "0.9995")],
)
def test_percentage_target_is_rejected_with_the_ratio_to_pass(percent: float, ratio: str) -> None:
    """A target such as 99.9 is a percentage: the message says to pass 0.999 (decimal-exact)."""
    with pytest.raises(ConfigurationError, match=rf"pass the ratio {ratio} instead"):
        SLO(target=percent)


@pytest.mark.parametrize("target", [0, -0.5, 0.0, 101, math.nan, math.inf, True, "0.99"])
def test_invalid_targets_are_rejected(target: object) -> None:
    """Targets outside (0, 1] that are not percentages, NaN and non-numbers fail fast."""
    with pytest.raises(ConfigurationError, match="target"):
        SLO(target=target)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("good", "total", "match"),
    [(-1, 10, "good"), (5, -1, "total"), (11, 10, "exceeds total"), (math.nan, 10, "good")],
)
def test_negative_or_inconsistent_counts_are_rejected(
    good: float, total: float, match: str
) -> None:
    """Negative counts, NaN and good > total are rejected by every count-taking method."""
    slo = SLO(target=0.99)
    for method in (slo.sli, slo.budget_consumed, slo.budget_remaining):
        with pytest.raises(ConfigurationError, match=match):
            method(good, total)


@pytest.mark.parametrize("window", [0, -1, math.inf, math.nan, "30d", timedelta(0)])
def test_invalid_windows_are_rejected(window: object) -> None:
    """Windows must be positive finite seconds or a timedelta."""
    with pytest.raises(ConfigurationError, match="window"):
        SLO(target=0.99, window=window)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fraction", "hours", "expected"),
    [(0.02, 1, 14.4), (0.05, 6, 6.0), (0.10, 24, 3.0), (0.10, 72, 1.0)],
)
def test_burn_rate_for_the_workbook_rows(fraction: float, hours: float, expected: float) -> None:
    """burn_rate_for = fraction x window / duration: 14.4, 6, 3, 1 over 30 days."""
    assert expected == pytest.approx(SLO(target=0.999).burn_rate_for(fraction, hours * 3600))


def test_burn_rate_and_exhaustion() -> None:
    """Burn rate = error ratio / budget; at burn rate 1000 a 30-day budget lasts 43.2 min."""
    slo = SLO(target=0.999)
    assert 1000.0 == pytest.approx(slo.burn_rate(1.0))
    assert 2592.0 == pytest.approx(slo.time_to_exhaustion(1000))
    assert MONTH / 2 == pytest.approx(slo.time_to_exhaustion(1.0, remaining=0.5))
    assert math.inf == slo.time_to_exhaustion(0)
    assert 0.0 == slo.time_to_exhaustion(5, remaining=0)
    assert 0.0 == slo.time_to_exhaustion(5, remaining=-0.5)


def test_budget_consumed_at() -> None:
    """14.4 for one hour of a 30-day window uses 2% of the budget."""
    slo = SLO(target=0.999)
    assert 0.02 == pytest.approx(slo.budget_consumed_at(14.4, 3600))
    assert 0.02 == pytest.approx(slo.budget_consumed_at(14.4, timedelta(hours=1)))


def test_detection_time() -> None:
    """Workbook: detection = burn x budget / error ratio x window (100% errors: 51.84 s)."""
    slo = SLO(target=0.999)
    assert 51.84 == pytest.approx(slo.detection_time(1.0, 3600, 14.4))
    # just at the threshold the alert never fires (strict >)
    assert math.inf == slo.detection_time(0.0144, 3600, 14.4)
    assert math.inf == slo.detection_time(0.001, 3600, 14.4)
    # at twice the threshold, half the window
    assert 1800.0 == pytest.approx(slo.detection_time(0.0288, 3600, 14.4))


@pytest.mark.parametrize("bad", [-1.0, math.nan, 1.5, "x"])
def test_out_of_range_ratios_and_rates_are_rejected(bad: object) -> None:
    """Error ratios outside [0, 1] and negative or NaN burn rates fail fast."""
    slo = SLO(target=0.999)
    with pytest.raises(ConfigurationError):
        slo.burn_rate(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        slo.detection_time(bad, 3600, 14.4)  # type: ignore[arg-type]
    if bad != 1.5:
        with pytest.raises(ConfigurationError):
            slo.time_to_exhaustion(bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            slo.budget_consumed_at(bad, 3600)  # type: ignore[arg-type]


def test_slo_is_immutable_hashable_and_has_a_useful_repr() -> None:
    """SLOs compare by value, hash, refuse mutation and show their fields."""
    a = SLO(target=0.999)
    assert SLO(target=0.999, window=MONTH) == a
    assert hash(SLO(target=0.999)) == hash(a)
    assert SLO(target=0.99) != a
    assert "SLO(target=0.999, window=2592000.0)" == repr(a)
    with pytest.raises(AttributeError):
        a.target = 0.5  # type: ignore[misc]


@given(target=targets, good=st.integers(0, 10**9), extra=st.integers(0, 10**9))
def test_consumed_plus_remaining_is_one(target: float, good: int, extra: int) -> None:
    """budget_consumed + budget_remaining == 1 and consumed == burn rate of the ratio."""
    slo = SLO(target=target)
    total = good + extra
    consumed = slo.budget_consumed(good, total)
    assert 1.0 == pytest.approx(consumed + slo.budget_remaining(good, total))
    if total:
        burn = slo.burn_rate(extra / total)
        assert burn is not None
        assert burn == pytest.approx(consumed)


@given(
    target=targets,
    fraction=st.floats(0.001, 1),
    hours=st.floats(0.1, 24 * 30),
)
def test_burn_rate_for_and_budget_consumed_at_are_inverse(
    target: float, fraction: float, hours: float
) -> None:
    """Burning at burn_rate_for(f, d) for d uses exactly f of the budget."""
    slo = SLO(target=target)
    rate = slo.burn_rate_for(fraction, hours * 3600)
    assert fraction == pytest.approx(slo.budget_consumed_at(rate, hours * 3600))
    assert hours * 3600 == pytest.approx(slo.time_to_exhaustion(rate, remaining=fraction))


@given(target=targets, ratio=st.floats(0.0001, 1), threshold=st.floats(0.5, 100))
def test_detection_time_never_exceeds_the_window(
    target: float, ratio: float, threshold: float
) -> None:
    """An alert that fires at all fires within its window."""
    slo = SLO(target=target)
    detected = slo.detection_time(ratio, 3600, threshold)
    assert detected == math.inf or 0 < detected <= 3600


def test_import_loads_no_optional_dependency() -> None:
    """``import perfprim.slo`` (fresh interpreter) loads neither yaml nor prometheus_client."""
    import json
    import subprocess
    import sys

    code = "import sys, json, perfprim.slo; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    heavy = {"yaml", "prometheus_client", "opentelemetry", "redis"}
    assert [] == [m for m in json.loads(out) if m.split(".")[0] in heavy]
