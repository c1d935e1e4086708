"""OpenSLO files as written in the wild: lists, several documents, alert policies, calendars."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from perfprim.exceptions import ConfigurationError
from perfprim.slo import (
    SLO,
    AlertRule,
    CalendarWindow,
    LatencySLO,
    Timeslices,
    load_openslo,
    load_openslo_all,
)

FIXTURES = Path(__file__).parent / "openslo"


def test_top_level_list_keeps_names_and_converts_target_percent_exactly() -> None:
    """A top-level list loads; targetPercent 99.9 is exactly 0.999 and 4w is 28 days."""
    definition = load_openslo(FIXTURES / "top_level_list.yaml")
    assert ("checkout-availability", "Checkout availability", "checkout") == (
        definition.name,
        definition.display_name,
        definition.service,
    )
    assert 0.999 == definition.slo.target  # not 0.9990000000000001
    assert 28 * 86400 == definition.slo.window
    assert "available" == definition.objective


def test_alert_policy_and_condition_references_map_onto_alert_rules() -> None:
    """AlertPolicyRef + conditionRef + an inline condition become the SLO's policy rows.

    A burn rate of 14.4 over 1 h of a 30-day window spends 2% of the budget
    (14.4 * 3600 / 2592000); 1 over 3 d spends 10%. The short windows are the
    Workbook's 1/12 of the long ones: 5 min and 6 h.
    """
    slo = load_openslo(FIXTURES / "multi_document.yaml").slo
    assert (
        AlertRule(severity="page", budget_fraction=0.02, long_window=3600, short_window=300),
        AlertRule(severity="ticket", budget_fraction=0.1, long_window=259200, short_window=21600),
    ) == tuple(
        AlertRule(
            severity=r.severity,
            budget_fraction=round(r.budget_fraction, 12),
            long_window=r.long_window,
            short_window=r.short_window,
        )
        for r in slo.policy
    )
    assert [14.4, 1.0] == [pytest.approx(w.burn_rate) for w in slo.alert_windows()]


def test_inline_policies_and_a_policy_named_by_a_bare_string() -> None:
    """Inline policies load, and a bare name resolves to an AlertPolicy in the same list."""
    slo = load_openslo(FIXTURES / "inline_alert_policy.yaml").slo
    assert [("page", 3600.0), ("ticket", 86400.0)] == [
        (r.severity, r.long_window) for r in slo.policy
    ]
    # 13.44 over 1 h and 2.8 over 1 d of 28 days: 2% and 10% of the budget
    assert [0.02, 0.1] == [pytest.approx(r.budget_fraction) for r in slo.policy]


def test_calendar_month_is_a_calendar_aligned_budget_period() -> None:
    """A 1M calendar window in Berlin: March 2024 runs from March 1 to April 1, local time.

    The month holds the switch to summer time (March 31), so it lasts 31 days
    less one hour; February 2024 lasts 29 days.
    """
    definition = load_openslo(FIXTURES / "calendar_month.yaml")
    berlin = ZoneInfo("Europe/Berlin")
    assert CalendarWindow(1, "M", datetime(2024, 1, 1), "Europe/Berlin") == definition.calendar
    assert definition.calendar is not None
    start, end = definition.calendar.period(datetime(2024, 3, 15, 12, tzinfo=berlin))
    assert datetime(2024, 3, 1, tzinfo=berlin).timestamp() == start
    assert datetime(2024, 4, 1, tzinfo=berlin).timestamp() == end
    assert 31 * 86400 - 3600 == end - start
    start, end = definition.calendar.period(datetime(2024, 2, 29, 23, 59, tzinfo=berlin))
    assert 29 * 86400 == end - start
    assert Timeslices(slice_target=0.9, slice_duration=60) == definition.slo.budgeting
    assert 30 * 86400 == definition.slo.window  # the nominal month, for burn rates


def test_calendar_period_edges_belong_to_the_next_period() -> None:
    """A period's start is inside it and its end is not (a weekly window from a Monday)."""
    week = CalendarWindow(1, "w", datetime(2024, 1, 1), "UTC")  # a Monday
    monday = datetime(2024, 1, 8, tzinfo=ZoneInfo("UTC")).timestamp()
    assert (monday, monday + 7 * 86400) == week.period(monday)
    assert (monday - 7 * 86400, monday) == week.period(monday - 0.001)


def test_ops_values_in_milliseconds_composite_weights_labels_and_annotations() -> None:
    """Lt and lte give latency SLOs in seconds via value_unit; gte keeps op and value."""
    fast, not_slow, floor = load_openslo_all(FIXTURES / "latency_ops.yaml", value_unit=1e-3)
    assert LatencySLO(threshold=0.25, target=0.9, window=7 * 86400) == fast.slo
    assert LatencySLO(threshold=1.0, target=0.99, window=7 * 86400) == not_slow.slo
    assert (1.0, 2.0, None) == (
        fast.composite_weight,
        not_slow.composite_weight,
        floor.composite_weight,
    )
    assert SLO(target=0.95, window=7 * 86400) == floor.slo
    assert ("gte", 50.0) == (floor.op, floor.value)
    assert {"team": ("payments",), "tier": ("gold", "critical")} == fast.labels
    assert {"runbook": "https://runbooks.example/api-latency"} == fast.annotations
    assert "fast" == fast.objective
    picked = load_openslo(
        FIXTURES / "latency_ops.yaml", name="api-latency/not slow", value_unit=1e-3
    )
    assert not_slow == picked


def _slo(**replacements: str) -> str:
    text = (FIXTURES / "top_level_list.yaml").read_text()
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            _slo(**{"targetPercent: 99.9": "targetPercent: 150"}),
            r"targetPercent: must be a percentage in \(0, 100\], such as 99.9, got 150",
        ),
        (
            _slo(**{"budgetingMethod: Occurrences": "budgetingMethod: []"}),
            "spec.budgetingMethod: expected one of",
        ),
        (
            _slo(
                **{
                    "    objectives:": (
                        "    alertPolicies:\n      - alertPolicyRef: nope\n    objectives:"
                    )
                }
            ),
            "alert policy 'nope' is not in the source",
        ),
        (
            _slo(**{"isRolling: true": "isRolling: false"}),
            "timeWindow.0..calendar: expected a mapping",
        ),
        (
            _slo(**{"duration: 4w": "duration: 1m"}),
            r"the SLO window \(60 s\) is under one hour",
        ),
    ],
)
def test_documents_that_cannot_map_name_the_field(text: str, match: str) -> None:
    """Each unmappable document raises a ConfigurationError naming the SLO and the field."""
    with pytest.raises(ConfigurationError, match=match) as info:
        load_openslo(text)
    assert "checkout-availability" in str(info.value)


def _condition(**condition: str) -> str:
    body = "\n".join(f"                  {k}: {val}" for k, val in condition.items())
    return _slo(
        **{
            "    objectives:": (
                "    alertPolicies:\n"
                "      - kind: AlertPolicy\n"
                "        metadata: {name: p}\n"
                "        spec:\n"
                "          conditions:\n"
                "            - kind: AlertCondition\n"
                "              metadata: {name: c}\n"
                "              spec:\n"
                "                severity: page\n"
                "                condition:\n" + body + "\n    objectives:"
            )
        }
    )


@pytest.mark.parametrize(
    ("condition", "match"),
    [
        (
            {"kind": "burnrate", "op": "lte", "threshold": "2", "lookbackWindow": "1h"},
            r"\.op: a burn-rate alert fires above",
        ),
        (
            {"kind": "budget", "op": "gt", "threshold": "2", "lookbackWindow": "1h"},
            r"\.kind: perfprim maps burnrate",
        ),
        (
            {"kind": "burnrate", "op": "gt", "threshold": "1000", "lookbackWindow": "1w"},
            r"\.threshold: burn rate 1000 over 1w would spend",
        ),
        (
            {"kind": "burnrate", "op": "gt", "threshold": "2", "lookbackWindow": "8w"},
            r"\.lookbackWindow: 8w is longer than the SLO window",
        ),
        (
            {"kind": "burnrate", "op": "gt", "threshold": "-1", "lookbackWindow": "1h"},
            r"\.threshold: a burn rate above 0",
        ),
    ],
)
def test_alert_conditions_that_cannot_map_name_the_field(
    condition: dict[str, str], match: str
) -> None:
    """A condition perfprim cannot evaluate is refused, naming the condition's field."""
    with pytest.raises(ConfigurationError, match=match):
        load_openslo(_condition(**condition))


def test_a_mappable_inline_condition_loads() -> None:
    """The same inline form with a valid burn-rate condition gives one policy row."""
    slo = load_openslo(_condition(kind="burnrate", op="gt", threshold="6", lookbackWindow="6h")).slo
    assert [("page", 21600.0, 1800.0)] == [
        (r.severity, r.long_window, r.short_window) for r in slo.policy
    ]


def test_sources_that_are_not_openslo_text() -> None:
    """None, a missing path and a v1alpha document each get a message that says what to do."""
    with pytest.raises(ConfigurationError, match=r"YAML text \(str or bytes\) or a path"):
        load_openslo(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_openslo(Path("/nonexistent/slo.yaml"))
    with pytest.raises(ConfigurationError, match="oslo convert"):
        load_openslo(_slo(**{"openslo/v1\n  kind: SLO": "openslo/v1alpha\n  kind: SLO"}))
    assert "checkout-availability" == load_openslo(_slo().encode()).name


def test_a_list_item_that_is_not_an_object_is_named_without_dumping_the_file() -> None:
    """A top-level list holding a scalar names its position; the message stays short."""
    text = _slo() + "- just a string " + "x" * 2000 + "\n"
    with pytest.raises(
        ConfigurationError, match=r"document 0, item 2: expected an OpenSLO object"
    ) as info:
        load_openslo(text)
    assert len(str(info.value)) < 250
