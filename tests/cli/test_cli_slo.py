"""``perfprim slo``: budget figures, SLO file checks, rules checked against real buckets."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import run_cli
from tests.cli.data import BAD_SLO_FILE, OPENSLO_FILE, SLO_FILE

DAY = 86400.0


def test_budget_30_days_is_the_workbook_table() -> None:
    """99.9% over 30 days: 43m12s, 1,000 per million; rows 14.4/6/3/1 (SRE Workbook table 5-8)."""
    result = run_cli("slo", "budget", "--target", "99.9%", "--window", "30d", "--json")
    assert 0 == result.code
    data = result.json()["result"]
    assert 0.001 == data["error_budget"]
    assert 2592.0 == pytest.approx(data["allowed_downtime_seconds"])
    assert 1000.0 == pytest.approx(data["allowed_bad_events"])
    assert "workbook" == data["policy_source"]
    assert [14.4, 6.0, 3.0, 1.0] == pytest.approx([r["burn_rate"] for r in data["policy"]])
    assert [3600.0, 21600.0, DAY, 3 * DAY] == [r["long_window_seconds"] for r in data["policy"]]
    # a full outage at 14.4x is detected after 14.4 * 0.001 * 1 h = 51.84 s (Workbook: "0.86 min")
    assert 51.84 == pytest.approx(data["policy"][0]["detection_seconds_at_full_outage"])
    human = run_cli("slo", "budget", "--target", "99.9%", "--window", "30d")
    assert "43m 12s" in human.out
    assert "51.84s" in human.out


def test_budget_7_days_shows_the_scaled_policy() -> None:
    """``--window 7d`` (issue 15): windows x 7/28, the 28-day burn rates, 60.48 s of downtime."""
    result = run_cli(
        "slo", "budget", "--target", "99.99%", "--window", "7d", "--total", "5e6", "--json"
    )
    data = result.json()["result"]
    assert "scaled" == data["policy_source"]
    assert 60.48 == pytest.approx(data["allowed_downtime_seconds"])
    assert 500.0 == pytest.approx(data["allowed_bad_events"])
    assert [(900.0, 75.0), (5400.0, 450.0), (21600.0, 1800.0), (64800.0, 5400.0)] == [
        (r["long_window_seconds"], r["short_window_seconds"]) for r in data["policy"]
    ]
    human = run_cli("slo", "budget", "--target", "99.99%", "--window", "7d")
    assert "pyrra's rule" in human.out
    assert "15m" in human.out


def test_budget_1_day_no_longer_fails() -> None:
    """The bug of issue 15 from the command line: a 1-day SLO gets a policy, exit 0."""
    result = run_cli("slo", "budget", "--target", "99.99%", "--window", "1d", "--json")
    assert 0 == result.code
    assert 129.0 == result.json()["result"]["policy"][0]["long_window_seconds"]


def test_check_valid_file(tmp_path: Path) -> None:
    """A valid perfprim SLO file: exit 0, one row per SLO, both kinds."""
    (tmp_path / "slo.yaml").write_text(SLO_FILE)
    result = run_cli("slo", "check", "slo.yaml", "--json", cwd=tmp_path)
    assert 0 == result.code
    data = result.json()["result"]
    assert (True, "perfprim/v1", []) == (data["valid"], data["format"], data["problems"])
    assert [("availability", "ratio", 0.999), ("latency", "latency", 0.99)] == [
        (s["name"], s["kind"], s["target"]) for s in data["slos"]
    ]
    assert 1.0 == data["slos"][1]["threshold_seconds"]
    human = run_cli("slo", "check", "slo.yaml", cwd=tmp_path)
    assert "valid" in human.err
    assert "availability" in human.out


def test_check_reports_every_problem(tmp_path: Path) -> None:
    """An invalid file: exit 1 and every problem, each naming the field and the fix."""
    (tmp_path / "bad.yaml").write_text(BAD_SLO_FILE)
    result = run_cli("slo", "check", "bad.yaml", "--json", cwd=tmp_path)
    assert 1 == result.code
    document = result.json()
    assert False is document["ok"]
    problems = document["result"]["problems"]
    assert [
        (
            "slos[0] (availability).objective: '99.9' looks like a percentage: write 99.9% (or the "
            "ratio 0.999)"
        ),
        "slos[0] (availability).window: '30' has no unit: write e.g. 30s, 30ms or 30d",
        (
            "slos[0] (availability): give total with exactly one of errors or good (counter "
            "selectors), or a latency: block"
        ),
        (
            "slos[1] (latency): unknown field(s) colour; known: description, errors, good, "
            "latency, name, objective, total, window"
        ),
        "slos[1] (latency).objective: '150%' must be above 0% and at most 100%",
        "slos[1] (latency).latency.threshold: '300' has no unit: write e.g. 300s, 300ms or 300d",
    ] == problems
    assert result.err.startswith("perfprim: error: bad.yaml: 6 problem(s); the first:")


def test_check_openslo_file(tmp_path: Path) -> None:
    """An OpenSLO v1 document is read with perfprim.slo.load_openslo."""
    (tmp_path / "openslo.yaml").write_text(OPENSLO_FILE)
    data = run_cli("slo", "check", "openslo.yaml", "--json", cwd=tmp_path).json()["result"]
    assert "openslo/v1" == data["format"]
    assert [("api-availability", "api", 0.995, 7 * DAY)] == [
        (s["name"], s["service"], s["target"], s["window_seconds"]) for s in data["slos"]
    ]


def test_check_invalid_yaml(tmp_path: Path) -> None:
    """Broken YAML is an invalid SLO file (exit 1) with the line."""
    (tmp_path / "broken.yaml").write_text("version: perfprim/v1\nslos: [\n")
    result = run_cli("slo", "check", "broken.yaml", cwd=tmp_path)
    assert 1 == result.code
    assert "not valid YAML at line" in result.err


def _groups(text: str) -> list[dict[str, object]]:
    groups: list[dict[str, object]] = yaml.safe_load(text)["groups"]
    return groups


def test_rules_without_buckets_match_both_le_spellings(tmp_path: Path) -> None:
    """Unchecked latency thresholds: rules match le "1" (Go) and "1.0" (Python), with a note."""
    (tmp_path / "slo.yaml").write_text(SLO_FILE)
    result = run_cli("slo", "rules", "slo.yaml", cwd=tmp_path)
    assert 0 == result.code
    assert 'http_request_duration_seconds_bucket{job="checkout",le=~"1|1.0"}' in result.out
    assert "not checked against real bucket bounds" in result.err
    names = [g["name"] for g in _groups(result.out)]
    assert [
        "perfprim-slo-checkout-availability-sli",
        "perfprim-slo-checkout-availability-alerts",
        "perfprim-slo-checkout-latency-sli",
        "perfprim-slo-checkout-latency-alerts",
    ] == names
    assert "team: payments" in result.out


EXPOSITION_SERVER = """
import sys, time
from prometheus_client import CollectorRegistry, Histogram, start_http_server
registry = CollectorRegistry()
h = Histogram("http_request_duration_seconds", "latency", ["job"], registry=registry,
              buckets=(0.1, 0.3, 1, 2.5))
for v in (0.05, 0.2, 0.5, 2.0):
    h.labels(job="checkout").observe(v)
server, thread = start_http_server(int(sys.argv[1]), addr="127.0.0.1", registry=registry)
print("ready", flush=True)
time.sleep(120)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def metrics_url() -> Iterator[str]:
    """A real prometheus_client exposition on loopback, in a subprocess (Python writes le="1.0")."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", EXPOSITION_SERVER, str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert "ready" in process.stdout.readline()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_rules_with_buckets_from_a_live_service_use_its_exact_le(
    tmp_path: Path, metrics_url: str
) -> None:
    """--buckets URL: the threshold 1s is the bound the Python client writes as "1.0"."""
    (tmp_path / "slo.yaml").write_text(SLO_FILE)
    result = run_cli("slo", "rules", "slo.yaml", "--buckets", metrics_url, "--json", cwd=tmp_path)
    assert 0 == result.code, result.err
    data = result.json()["result"]
    assert ("1.0", True) == (data["slos"][1]["le"], data["slos"][1]["checked_against_buckets"])
    assert 'http_request_duration_seconds_bucket{job="checkout",le="1.0"}' in data["rules"]
    assert "" == result.err


def test_rules_refuse_a_threshold_that_is_not_a_bound(tmp_path: Path, metrics_url: str) -> None:
    """A 250ms threshold against buckets 0.1, 0.3, ...: exit 1, the nearest bounds named."""
    (tmp_path / "slo.yaml").write_text(SLO_FILE.replace("threshold: 1s", "threshold: 250ms"))
    result = run_cli("slo", "rules", "slo.yaml", "--buckets", metrics_url, cwd=tmp_path)
    assert 1 == result.code
    assert "" == result.out
    assert "250ms (le=0.25) is not a bucket bound of http_request_duration_seconds" in result.err
    assert "0.1, 0.3 are the nearest" in result.err
    check = run_cli("slo", "check", "slo.yaml", "--buckets", metrics_url, cwd=tmp_path)
    assert 1 == check.code


def test_rules_with_buckets_from_a_go_style_file(tmp_path: Path) -> None:
    """A Go client writes le="1000": the rules use that text; a _milliseconds metric scales 1s."""
    exposition = (
        "# TYPE istio_request_duration_milliseconds histogram\n"
        'istio_request_duration_milliseconds_bucket{job="checkout",le="250"} 5\n'
        'istio_request_duration_milliseconds_bucket{job="checkout",le="1000"} 9\n'
        'istio_request_duration_milliseconds_bucket{job="checkout",le="+Inf"} 10\n'
        'istio_request_duration_milliseconds_sum{job="checkout"} 4000\n'
        'istio_request_duration_milliseconds_count{job="checkout"} 10\n'
    )
    (tmp_path / "go.prom").write_text(exposition)
    (tmp_path / "slo.yaml").write_text(
        SLO_FILE.replace("http_request_duration_seconds", "istio_request_duration_milliseconds")
    )
    result = run_cli(
        "slo", "rules", "slo.yaml", "--buckets", "go.prom", "-o", "rules.yaml", cwd=tmp_path
    )
    assert (0, "") == (result.code, result.out), result.err
    written = (tmp_path / "rules.yaml").read_text()
    assert 'istio_request_duration_milliseconds_bucket{job="checkout",le="1000"}' in written
    assert 'istio_request_duration_milliseconds_count{job="checkout"}' in written
    other = SLO_FILE.replace(
        'http_request_duration_seconds{job="checkout"}',
        'istio_request_duration_milliseconds{job="billing"}',
    )
    (tmp_path / "other.yaml").write_text(other)
    missing = run_cli("slo", "check", "other.yaml", "--buckets", "go.prom", cwd=tmp_path)
    assert 2 == missing.code
    assert "has no histogram 'istio_request_duration_milliseconds' with labels" in missing.err


def test_rules_for_openslo_take_the_selectors_from_options(tmp_path: Path) -> None:
    """An OpenSLO file names no series: --total/--errors supply them; without them, exit 2."""
    (tmp_path / "openslo.yaml").write_text(OPENSLO_FILE)
    missing = run_cli("slo", "rules", "openslo.yaml", cwd=tmp_path)
    assert 2 == missing.code
    assert "pass --total with --errors or --good" in missing.err
    result = run_cli(
        "slo",
        "rules",
        "openslo.yaml",
        "--total",
        'http_requests_total{job="api"}',
        "--errors",
        'http_requests_total{job="api",code=~"5.."}',
        cwd=tmp_path,
    )
    assert 0 == result.code, result.err
    assert "perfprim-slo-api-api-availability-sli" == _groups(result.out)[0]["name"]
    assert "rate15m" in result.out  # the 7-day window's scaled policy: 1 h x 7/28


@pytest.mark.skipif(
    shutil.which("promtool") is None and not os.environ.get("CI"),
    reason="promtool is not installed (apt-get install prometheus)",
)
def test_rules_pass_promtool(tmp_path: Path, metrics_url: str) -> None:
    """The real ``promtool check rules`` accepts the rules of a whole file."""
    (tmp_path / "slo.yaml").write_text(SLO_FILE)
    result = run_cli(
        "slo", "rules", "slo.yaml", "--buckets", metrics_url, "-o", "rules.yaml", cwd=tmp_path
    )
    assert 0 == result.code, result.err
    assert "wrote the rules of 2 SLO(s) to rules.yaml" in result.err
    checked = subprocess.run(
        ["promtool", "check", "rules", str(tmp_path / "rules.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == checked.returncode, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
