"""Rules sloth users can drop in, timeslice-correct budgets, and selectors checked first.

Every rule file here goes through the real ``promtool`` (``check rules`` and
``test rules`` with synthetic series); the expected values are computed by
hand from the series, not read back from the rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from perfprim.exceptions import ConfigurationError
from perfprim.slo import SLO, AlertRule, RatioTimeslices, Timeslices
from tests.slo.test_slo_rules import ERRORS, GOOD, TOTAL, check, promtool, run_tests

__all__ = ["promtool"]  # the fixture, imported for this module's tests

SLOTH_IDS = {"sloth_id": "api-availability", "sloth_service": "api", "sloth_slo": "availability"}
OURS = {"slo": "availability", "slo_service": "api"}

# sloth's generated rules (sloth generate, v0.11) hold these records, which its dashboards query
SLOTH_META = [
    "slo:objective:ratio",
    "slo:error_budget:ratio",
    "slo:time_period:days",
    "slo:current_burn_rate:ratio",
    "slo:period_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio",
    "sloth_slo_info",
]


def _labels(labels: dict[str, str]) -> str:
    """Labels in promtool's exp_samples form: ``name{a="b",...}`` (``__name__`` in front)."""
    name = labels.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return name + "{" + rest + "}"


def test_sloth_compatible_rules_have_sloths_names_and_labels(promtool: str, tmp_path: Path) -> None:
    """The sloth groups hold sloth's record names with sloth_id/sloth_service/sloth_slo labels."""
    rules = SLO(target=0.999).prometheus_rules(
        service="api", total=TOTAL, errors=ERRORS, sloth_compatible=True, labels={"team": "core"}
    )
    check(promtool, rules, tmp_path)
    groups = {g["name"]: g["rules"] for g in yaml.safe_load(rules)["groups"]}
    sli = groups["sloth-slo-sli-recordings-api-availability"]
    assert [
        f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
    ] == [r["record"] for r in sli]
    assert {**SLOTH_IDS, "team": "core", "sloth_window": "5m"} == sli[0]["labels"]
    meta = groups["sloth-slo-meta-recordings-api-availability"]
    assert SLOTH_META == [r["record"] for r in meta]
    info = meta[-1]["labels"]
    assert ("99.9", "api-availability") == (info["sloth_objective"], info["sloth_id"])
    alerts = groups["perfprim-slo-api-availability-alerts"]
    assert [("page", "api-availability"), ("ticket", "api-availability")] == [
        (a["labels"]["sloth_severity"], a["labels"]["sloth_id"]) for a in alerts
    ]


@pytest.mark.slow
def test_sloth_burn_rates_from_real_series(promtool: str, tmp_path: Path) -> None:
    """One hour at exactly 1% errors, 99.9% over 30 days: burn rate 10, period budget -9.

    Current burn rate = 0.01 / 0.001 = 10; with only this hour in the period,
    the period's error ratio is 0.01 too, so its burn rate is 10 and the
    remaining budget 1 - 10 = -9. The period is 30 days.
    """
    rules = SLO(target=0.999).prometheus_rules(
        service="api", total=TOTAL, errors=ERRORS, sloth_compatible=True
    )
    series = [  # TOTAL selects both series: 1000 requests a minute, 10 of them errors
        {"series": GOOD, "values": "0+990x120"},
        {"series": ERRORS, "values": "0+10x120"},
    ]

    def sample(expr: str, labels: dict[str, str], value: float) -> dict[str, Any]:
        return {
            "expr": expr,
            "eval_time": "60m",
            "exp_samples": [{"labels": _labels(labels), "value": value}],
        }

    ids = _labels(SLOTH_IDS)
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    sample(
                        f"slo:current_burn_rate:ratio{ids}",
                        {
                            "__name__": "slo:current_burn_rate:ratio",
                            **OURS,
                            **SLOTH_IDS,
                            "sloth_window": "5m",
                        },
                        10,
                    ),
                    sample(
                        f"slo:period_burn_rate:ratio{ids}",
                        {
                            "__name__": "slo:period_burn_rate:ratio",
                            **OURS,
                            **SLOTH_IDS,
                            "sloth_window": "30d",
                        },
                        10,
                    ),
                    sample(
                        f"slo:period_error_budget_remaining:ratio{ids}",
                        {
                            "__name__": "slo:period_error_budget_remaining:ratio",
                            **OURS,
                            **SLOTH_IDS,
                            "sloth_window": "30d",
                        },
                        -9,
                    ),
                    sample(
                        f"slo:time_period:days{ids}",
                        {"__name__": "slo:time_period:days", **SLOTH_IDS},
                        30,
                    ),
                ],
            }
        ],
    }
    run_tests(promtool, rules, tests, tmp_path)


def _slice_slo(budgeting: Timeslices | RatioTimeslices) -> SLO:
    return SLO(
        target=0.9,
        window=3600,
        budgeting=budgeting,
        policy=[AlertRule(severity="page", budget_fraction=0.5, long_window=600, short_window=60)],
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("budgeting", "period_error"),
    [
        # 10 of the hour's 60 one-minute slices have 10% errors (bad: above 5%)
        (Timeslices(slice_target=0.95, slice_duration=60), 10 / 60),
        # the mean of the slices' error ratios: 10 slices at 0.1, 50 at 0
        (RatioTimeslices(slice_duration=60), 10 * 0.1 / 60),
    ],
    ids=["Timeslices", "RatioTimeslices"],
)
def test_timeslice_budgets_are_computed_slice_by_slice(
    promtool: str, tmp_path: Path, budgeting: Timeslices | RatioTimeslices, period_error: float
) -> None:
    """100 requests a minute for an hour, 10 errors a minute in minutes 30 to 40.

    Samples every 15 s, so each one-minute slice holds four and its rate is
    exact. The budget's error ratio over the hour is the share of bad slices
    (Timeslices) or the mean slice error ratio (RatioTimeslices); the budget
    left is ``1 - error / 0.1``.
    """
    slo = _slice_slo(budgeting)
    rules = slo.prometheus_rules(service="api", total=TOTAL, errors=ERRORS)
    check(promtool, rules, tmp_path)
    records = [r["record"] for r in yaml.safe_load(rules)["groups"][0]["rules"]]
    assert "slo:error_ratio:timeslices1h" in records
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "15s",
                "input_series": [  # TOTAL selects both: 25 requests every 15 s
                    {"series": GOOD, "values": "0+25x120 3022.5+22.5x39 3925+25x80"},
                    {"series": ERRORS, "values": "0+0x120 2.5+2.5x39 100+0x80"},
                ],
                "promql_expr_test": [
                    # within 1e-12 of the hand-computed values (avg_over_time sums in floats)
                    {
                        "expr": f"abs({record} - {expected!r}) < bool 1e-12",
                        "eval_time": "60m",
                        "exp_samples": [{"labels": _labels(OURS), "value": 1}],
                    }
                    for record, expected in (
                        ("slo:error_ratio:timeslices1h", period_error),
                        ("slo:error_budget_remaining:ratio", 1 - period_error / 0.1),
                    )
                ],
            }
        ],
    }
    run_tests(promtool, rules, tests, tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"total": 'http_requests_total{job="api"', "errors": ERRORS},
            "neither a counter selector",
        ),
        ({"total": "http_requests_total{job=api}", "errors": ERRORS}, "must be a quoted string"),
        ({"total": 'http_requests_total{job="api}', "errors": ERRORS}, "is not closed"),
        ({"total": "{}", "errors": ERRORS}, "needs a metric name or at least one matcher"),
        ({"total": 'http_requests_total{job="a"} offset 5m', "errors": ERRORS}, "unexpected"),
        ({"total": "sum(rate(x[$window])", "errors": ERRORS}, r"bracket\(s\) are not closed"),
        (
            {"total": "sum(rate(x[$window]))", "errors": 'rate(y{a="b"}[$window]))'},
            "closes nothing",
        ),
        ({"total": TOTAL, "errors": ERRORS, "labels": ["team"]}, "labels must be a mapping"),
        ({"total": TOTAL, "errors": ERRORS, "labels": {"sloth_id": "x"}}, "reserved"),
        ({"total": TOTAL, "errors": ERRORS, "sloth_compatible": "yes"}, "True or False"),
    ],
)
def test_selectors_are_checked_before_any_rule_is_written(
    kwargs: dict[str, Any], match: str
) -> None:
    """A malformed selector or expression fails with what is wrong, before any YAML exists."""
    with pytest.raises(ConfigurationError, match=match):
        SLO(target=0.99).prometheus_rules(service="api", **kwargs)


@pytest.mark.parametrize(
    "selector",
    [
        "http_requests_total",
        'http_requests_total{code=~"5..",job!="x"}',
        '{__name__="up"}',
        "http_requests_total{path='/a,b}', method=`GET`,}",
        'http_requests_total{msg="a \\"quoted\\" }"}',
    ],
)
def test_valid_selectors_pass(selector: str) -> None:
    """Selectors PromQL accepts (quotes of every kind, escapes, braces in strings) are accepted."""
    assert SLO(target=0.99).prometheus_rules(service="api", total=selector, errors=selector)
