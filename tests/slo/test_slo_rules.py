"""Prometheus rules: checked and unit-tested by the real ``promtool``.

When ``CI`` is set, a missing promtool fails the tests (a skip would hide a
broken CI machine); locally they skip with a message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfprim.exceptions import ConfigurationError
from perfprim.slo import SLO, AlertRule, LatencySLO

TOTAL = 'http_requests_total{job="api"}'
ERRORS = 'http_requests_total{job="api",code="500"}'
RATE_1H = 'slo:error_ratio:rate1h{slo="availability",slo_service="api"}'
GOOD = 'http_requests_total{job="api",code="200"}'


@pytest.fixture(scope="module")
def promtool() -> str:
    """Path of ``promtool`` (Debian package ``prometheus``)."""
    path = shutil.which("promtool")
    if path:
        return path
    message = "promtool is not on PATH (apt-get install prometheus)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {message}", pytrace=False)
    pytest.skip(message)


def check(promtool: str, rules: str, tmp_path: Path) -> str:
    """Run ``promtool check rules`` on the rules; return its output."""
    path = tmp_path / "rules.yml"
    path.write_text(rules)
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    return result.stdout


def run_tests(promtool: str, rules: str, tests: dict[str, Any], tmp_path: Path) -> None:
    """Run ``promtool test rules`` on a test file for the rules."""
    (tmp_path / "rules.yml").write_text(rules)
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yml"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
    )
    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    "slo",
    [
        SLO(target=0.999),
        SLO(target=0.99, window=28 * 86400),
        SLO(target=1.0),
        SLO(
            target=0.95,
            window=7 * 86400,
            policy=[
                AlertRule(
                    severity="critical", budget_fraction=0.1, long_window=900, short_window=60
                )
            ],
        ),
    ],
    ids=["99.9-30d", "99-28d", "100", "custom-policy"],
)
def test_promtool_accepts_the_rules(promtool: str, slo: SLO, tmp_path: Path) -> None:
    """The real promtool check rules accepts the rules of several SLOs and policies."""
    rules = slo.prometheus_rules(service="api", total=TOTAL, errors=ERRORS)
    windows = len(slo.policy_windows())
    severities = len({w.severity for w in slo.alert_windows()})
    remaining = 1 if slo.error_budget > 0 else 0
    expected = windows + 1 + 2 + remaining + severities
    assert f"SUCCESS: {expected} rules found" in check(promtool, rules, tmp_path)


def test_rule_shapes() -> None:
    """Recording rules per window, budget metadata and one alert per severity."""
    document = yaml.safe_load(
        SLO(target=0.999).prometheus_rules(
            service="api", total=TOTAL, errors=ERRORS, labels={"team": "core"}
        )
    )
    recordings, alerts = document["groups"]
    assert "perfprim-slo-api-availability-sli" == recordings["name"]
    assert [
        "slo:error_ratio:rate5m",
        "slo:error_ratio:rate30m",
        "slo:error_ratio:rate1h",
        "slo:error_ratio:rate2h",
        "slo:error_ratio:rate6h",
        "slo:error_ratio:rate1d",
        "slo:error_ratio:rate3d",
        "slo:error_ratio:rate30d",
        "slo:objective:ratio",
        "slo:error_budget:ratio",
        "slo:error_budget_remaining:ratio",
    ] == [rule["record"] for rule in recordings["rules"]]
    assert {"slo_service": "api", "slo": "availability", "team": "core"} == recordings["rules"][0][
        "labels"
    ]
    assert ["page", "ticket"] == [rule["labels"]["severity"] for rule in alerts["rules"]]
    page = alerts["rules"][0]["expr"]
    assert "slo:error_ratio:rate1h" in page
    assert "> (14.4 * 0.001)" in page
    assert "slo:error_ratio:rate6h" in page
    assert "> (6 * 0.001)" in page


def _series(good: int, bad: int, clean_minutes: int, bad_minutes: int) -> list[dict[str, str]]:
    """1000 good requests a minute, then ``good`` + ``bad`` a minute for ``bad_minutes``."""
    good_start = 1000 * clean_minutes + good
    return [
        {"series": GOOD, "values": f"0+1000x{clean_minutes} {good_start}+{good}x{bad_minutes - 1}"},
        {"series": ERRORS, "values": f"0+0x{clean_minutes} {bad}+{bad}x{bad_minutes - 1}"},
    ]


@pytest.mark.slow
def test_page_fires_when_two_percent_of_the_budget_burns_within_an_hour(
    promtool: str, tmp_path: Path
) -> None:
    """The real promtool test rules, with synthetic series (99.9% over 30 days, three clean days).

    Then 70 minutes at 1.6% errors: burn rate 16, 2.2% of the budget per hour.
    The page fires once the 1 h rate crosses 14.4 (about 54 minutes in) and
    not before. At 1.3% errors (1.8% of the budget per hour) nothing fires.
    """
    slo = SLO(target=0.999)
    rules = slo.prometheus_rules(service="api", total=TOTAL, errors=ERRORS)
    page = yaml.safe_load(rules)["groups"][1]["rules"][0]
    clean = 3 * 24 * 60
    fire_labels = {"slo_service": "api", "slo": "availability", "severity": "page"}
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _series(984, 16, clean, 70),
                "alert_rule_test": [
                    {"eval_time": "72h45m", "alertname": "ErrorBudgetBurn", "exp_alerts": []},
                    {
                        "eval_time": "73h5m",
                        "alertname": "ErrorBudgetBurn",
                        "exp_alerts": [
                            {"exp_labels": fire_labels, "exp_annotations": page["annotations"]}
                        ],
                    },
                ],
                "promql_expr_test": [
                    {
                        "expr": 'slo:error_ratio:rate1h{slo="availability"}',
                        "eval_time": "73h10m",
                        "exp_samples": [
                            {
                                "labels": RATE_1H,
                                "value": 0.016,
                            }
                        ],
                    }
                ],
            },
            {
                "interval": "1m",
                "input_series": _series(987, 13, clean, 70),
                "alert_rule_test": [
                    {"eval_time": f"73h{minute}m", "alertname": "ErrorBudgetBurn", "exp_alerts": []}
                    for minute in (0, 5, 10)
                ],
            },
        ],
    }
    run_tests(promtool, rules, tests, tmp_path)


def test_good_selector_and_window_templates(promtool: str, tmp_path: Path) -> None:
    """good= gives 1 - good/total; $window templates are substituted per window."""
    rules = LatencySLO(threshold=0.3, target=0.99).prometheus_rules(
        service="api",
        name="latency",
        good='http_request_duration_seconds_bucket{le="0.3"}',
        total="sum(rate(http_request_duration_seconds_count[$window]))",
    )
    check(promtool, rules, tmp_path)
    first = yaml.safe_load(rules)["groups"][0]["rules"][0]["expr"]
    assert "1 - (" in first
    assert 'sum(rate(http_request_duration_seconds_bucket{le="0.3"}[5m]))' in first
    assert "(sum(rate(http_request_duration_seconds_count[5m])))" in first


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"total": TOTAL}, "exactly one of good"),
        ({"total": TOTAL, "good": GOOD, "errors": ERRORS}, "exactly one of good"),
        ({"total": "rate(x[5m])", "errors": ERRORS}, "neither a counter selector"),
        ({"total": "", "errors": ERRORS}, "counter selector"),
        ({"total": TOTAL, "errors": ERRORS, "labels": {"severity": "x"}}, "reserved"),
        ({"total": TOTAL, "errors": ERRORS, "labels": {"a-b": "x"}}, "invalid"),
        ({"total": TOTAL, "errors": ERRORS, "labels": {"team": 3}}, "string value"),
        ({"total": TOTAL, "errors": ERRORS, "name": ""}, "name must be"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, Any], match: str) -> None:
    """Missing, doubled or malformed selectors and labels fail with a clear message."""
    with pytest.raises(ConfigurationError, match=match):
        SLO(target=0.99).prometheus_rules(service="api", **kwargs)


def test_sub_millisecond_window_cannot_be_expressed() -> None:
    """Prometheus durations are whole milliseconds; finer windows are refused."""
    from perfprim.slo._rules import prometheus_duration

    assert ["5m", "1h", "30d", "90s", "1500ms"] == [
        prometheus_duration(w) for w in (300, 3600, 2592000, 90, 1.5)
    ]
    with pytest.raises(ConfigurationError, match="milliseconds"):
        prometheus_duration(0.0001)


def test_missing_pyyaml_names_the_extra() -> None:
    """Without PyYAML (blocked in a subprocess) the error names pip install perfprim[yaml]."""
    code = (
        "import sys; sys.modules['yaml'] = None\n"
        "from perfprim.slo import SLO\n"
        "from perfprim.exceptions import MissingDependencyError\n"
        "try:\n"
        "    SLO(target=0.99).prometheus_rules(service='a', total='t', errors='e')\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "pip install 'perfprim[yaml]'" in out
