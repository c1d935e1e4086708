"""The multiwindow, multi-burn-rate policy: rows, rates that follow the window, evaluation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.exceptions import ConfigurationError
from perfprim.slo import DEFAULT_POLICY, SLO, AlertRule, AlertWindow

DAY = 86400.0


def test_default_policy_for_30_days() -> None:
    """The Workbook/sloth rows over 30 days: 14.4, 6, 3, 1 with their windows."""
    assert (
        AlertWindow("page", 3600.0, 300.0, pytest.approx(14.4), 0.02),
        AlertWindow("page", 21600.0, 1800.0, pytest.approx(6.0), 0.05),
        AlertWindow("ticket", 86400.0, 7200.0, pytest.approx(3.0), 0.10),
        AlertWindow("ticket", 259200.0, 21600.0, pytest.approx(1.0), 0.10),
    ) == SLO(target=0.999).alert_windows()


def test_burn_rates_follow_the_slo_window() -> None:
    """Over 28 days the rates are computed, not the 30-day figures: 13.44, 5.6, 2.8, 0.933."""
    rates = [w.burn_rate for w in SLO(target=0.999, window=28 * DAY).alert_windows()]
    assert [13.44, 5.6, 2.8, 28 * 0.1 / 3] == pytest.approx(rates)


def test_custom_policy() -> None:
    """A custom policy (pyrra-like single row) gives its own rows and windows."""
    rule = AlertRule(
        severity="critical",
        budget_fraction=0.5,
        long_window=timedelta(days=1),
        short_window=timedelta(hours=2),
    )
    slo = SLO(target=0.99, window=7 * DAY, policy=[rule])
    assert (AlertWindow("critical", DAY, 7200.0, pytest.approx(3.5), 0.5),) == slo.alert_windows()
    assert (7200.0, DAY) == slo.policy_windows()
    assert rule in slo.policy
    assert "SLO(target=0.99, window=604800.0, policy=(AlertRule(" in repr(slo)


def test_policy_windows_are_distinct_and_sorted() -> None:
    """The default policy reads seven windows, 6 h shared by two rows."""
    assert (300.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0, 259200.0) == SLO(
        target=0.999
    ).policy_windows()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"severity": "", "budget_fraction": 0.02, "long_window": 3600, "short_window": 300},
            "severity",
        ),
        (
            {"severity": "page", "budget_fraction": 0, "long_window": 3600, "short_window": 300},
            "above 0",
        ),
        (
            {"severity": "page", "budget_fraction": 2, "long_window": 3600, "short_window": 300},
            "budget_fraction",
        ),
        (
            {"severity": "page", "budget_fraction": 0.02, "long_window": 300, "short_window": 300},
            "shorter",
        ),
        (
            {"severity": "page", "budget_fraction": 0.02, "long_window": -1, "short_window": 300},
            "long_window",
        ),
    ],
)
def test_invalid_rules_are_rejected(kwargs: dict[str, object], match: str) -> None:
    """Each malformed policy row fails with a message naming the field."""
    with pytest.raises(ConfigurationError, match=match):
        AlertRule(**kwargs)  # type: ignore[arg-type]


def test_rule_longer_than_the_slo_window_is_rejected() -> None:
    """An explicit 3-day row does not fit a 1-day SLO: clear error at construction."""
    with pytest.raises(ConfigurationError, match="longer than the SLO window"):
        SLO(target=0.99, window=DAY, policy=[DEFAULT_POLICY[3]])


def _windows(slo: SLO) -> list[tuple[float, float]]:
    return [(row.long_window, row.short_window) for row in slo.alert_windows()]


@pytest.mark.parametrize("days", [28, 30])
def test_default_policy_is_the_workbooks_for_28_and_30_days(days: int) -> None:
    """28 and 30 days keep the Workbook/sloth windows exactly (1 h/5 m ... 3 d/6 h)."""
    assert DEFAULT_POLICY == SLO(target=0.999, window=days * DAY).policy
    assert [(3600.0, 300.0), (21600.0, 1800.0), (DAY, 7200.0), (3 * DAY, 21600.0)] == _windows(
        SLO(target=0.999, window=timedelta(days=days))
    )


def test_default_policy_scales_with_a_7_day_window() -> None:
    """7 days: pyrra's 28-day windows times 7/28 (15 m/75 s, 90 m/7.5 m, 6 h/30 m, 18 h/90 m)."""
    slo = SLO(target=0.999, window=7 * DAY)
    assert [(900.0, 75.0), (5400.0, 450.0), (21600.0, 1800.0), (64800.0, 5400.0)] == _windows(slo)
    # the budget fractions stay, so the burn rates are the 28-day ones exactly
    assert [13.44, 5.6, 2.8, 2.8 / 3] == pytest.approx([r.burn_rate for r in slo.alert_windows()])
    assert ["page", "page", "ticket", "ticket"] == [r.severity for r in slo.alert_windows()]


def test_the_bug_in_issue_15_a_one_day_slo_gets_a_policy() -> None:
    """SLO(target=0.9999, window=1 day) no longer raises: windows / 28, whole seconds."""
    slo = SLO(target=0.9999, window=timedelta(days=1))
    # 3600/28 = 128.57 -> 129 s, 300/28 = 10.71 -> 11 s, and so on (hand-computed)
    assert [(129.0, 11.0), (771.0, 64.0), (3086.0, 257.0), (9257.0, 771.0)] == _windows(slo)
    assert 0.02 * DAY / 129 == pytest.approx(slo.alert_windows()[0].burn_rate)
    assert "SLO(target=0.9999, window=86400.0)" == repr(slo)  # the default is not spelled out


def test_default_policy_scales_with_a_90_day_window() -> None:
    """90 days: 1 h x 90/28 = 11,571 s (3 h 12 min 51 s) for the first page row."""
    slo = SLO(target=0.999, window=90 * DAY)
    assert (11571.0, 964.0) == _windows(slo)[0]
    assert (833143.0, 69429.0) == _windows(slo)[3]


def test_windows_under_an_hour_need_an_explicit_policy() -> None:
    """Under one hour the scaled control windows would be under a second: say so."""
    with pytest.raises(ConfigurationError, match=r"under one hour.*pass policy="):
        SLO(target=0.99, window=1800)
    rule = AlertRule(severity="page", budget_fraction=0.1, long_window=300, short_window=25)
    assert 1 == len(SLO(target=0.99, window=1800, policy=[rule]).alert_windows())


@settings(deadline=None)  # a busy 2-core runner pauses for seconds
@given(window=st.floats(min_value=3600, max_value=400 * DAY))
def test_scaled_policy_fits_any_window(window: float) -> None:
    """For every window >= 1 h: four rows, short < long <= window, burn rates near 28 days'."""
    slo = SLO(target=0.999, window=window)
    rows = slo.alert_windows()
    assert 4 == len(rows)
    for row, expected in zip(rows, (13.44, 5.6, 2.8, 2.8 / 3), strict=True):
        assert row.short_window < row.long_window <= window
        if window not in (28 * DAY, 30 * DAY):
            assert expected == pytest.approx(row.burn_rate, rel=0.13)


def test_policy_must_hold_rules() -> None:
    """Passing tuples instead of AlertRule objects fails fast."""
    with pytest.raises(ConfigurationError, match="AlertRule"):
        SLO(target=0.99, policy=[("page", 0.02, 3600, 300)])  # type: ignore[list-item]


def test_rules_are_immutable_values() -> None:
    """AlertRule compares and hashes by value and refuses mutation."""
    assert DEFAULT_POLICY[0] == AlertRule(
        severity="page", budget_fraction=0.02, long_window=3600, short_window=300
    )
    assert 4 == len(set(DEFAULT_POLICY))
    with pytest.raises(AttributeError):
        DEFAULT_POLICY[0].severity = "x"  # type: ignore[misc]


def _ratios(slo: SLO, **by_window: float | None) -> dict[float, float | None]:
    names = {"m5": 300, "m30": 1800, "h1": 3600, "h2": 7200, "h6": 21600, "d1": DAY, "d3": 3 * DAY}
    ratios: dict[float, float | None] = dict.fromkeys(slo.policy_windows(), 0.0)
    for key, value in by_window.items():
        ratios[float(names[key])] = value
    return ratios


def test_page_fires_only_when_both_windows_burn() -> None:
    """The 1 h row needs the 1 h *and* the 5 m rates above 14.4."""
    slo = SLO(target=0.999)
    page = slo.alert_windows()[0]
    assert (page,) == slo.evaluate(_ratios(slo, h1=0.015, m5=0.015))
    assert () == slo.evaluate(_ratios(slo, h1=0.015, m5=0.001))  # burn stopped: resets
    assert () == slo.evaluate(_ratios(slo, h1=0.001, m5=0.5))  # a blip: no page
    assert () == slo.evaluate(_ratios(slo, h1=0.0144, m5=0.0144))  # exactly at: strict >


def test_no_traffic_never_fires() -> None:
    """A window without traffic (None) never fires a row."""
    slo = SLO(target=0.999)
    assert () == slo.evaluate(_ratios(slo, h1=None, m5=1.0))


def test_missing_window_is_reported() -> None:
    """SLO.evaluate names the windows the policy needs when one is missing."""
    slo = SLO(target=0.999)
    with pytest.raises(ConfigurationError, match="policy needs windows 300, 1800"):
        slo.evaluate({3600.0: 0.5})


@given(ratio=st.floats(0, 1))
def test_uniform_ratio_fires_exactly_the_rows_it_exceeds(ratio: float) -> None:
    """With the same ratio in every window, a row fires iff ratio/budget > its burn rate."""
    slo = SLO(target=0.999)
    fired = slo.evaluate(dict.fromkeys(slo.policy_windows(), ratio))
    burn = slo.burn_rate(ratio)
    assert burn is not None
    assert tuple(w for w in slo.alert_windows() if burn > w.burn_rate) == fired
