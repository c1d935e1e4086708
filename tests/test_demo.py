"""``perfprim demo``: the README's first command runs, stalls Redis, and writes a sane report.

The demo runs once (``--quick``) through the installed entry point, in a temp
directory, with ``REDIS_URL`` unset so that it starts (and stalls) a private
redis-server as it does on a fresh machine; the tests then read what it wrote.
Expected values come from the demo service's design (a database pool of 8
connections at 15 ms per query caps the uncached page at 533 req/s; the
Redis tier's 0.2 s socket timeout is what a stalled Redis costs a request),
and from the CLI reading the demo's own files back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from perfprim.cli._demo import QUICK, choose_redis
from perfprim.cli._demo_service import POOL, QUERY_SECONDS, SLO_THRESHOLD
from tests.cli.conftest import SCHEMA, SCRIPT, run_cli
from tests.test_docs_examples import DOCS, extract_blocks

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@dataclass
class DemoRun:
    """One run of ``perfprim demo --quick --json`` and what it left behind."""

    code: int
    out: str
    err: str
    seconds: float
    cwd: Path

    @property
    def folder(self) -> Path:
        """The default output folder, ./perfprim-demo."""
        return self.cwd / "perfprim-demo"

    @property
    def result(self) -> dict[str, Any]:
        """The --json result (validated against the schema)."""
        document: dict[str, Any] = json.loads(self.out)
        jsonschema.validate(document, SCHEMA)
        return document["result"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """Run the demo once, as on a fresh machine: no REDIS_URL, redis-server on PATH."""
    cwd = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    started = time.perf_counter()
    done = subprocess.run(
        [str(SCRIPT), "demo", "--quick", "--json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    return DemoRun(done.returncode, done.stdout, done.stderr, time.perf_counter() - started, cwd)


def test_the_demo_exits_0_in_time_and_writes_its_files(demo: DemoRun) -> None:
    """Exit 0 well under a minute; report, summary, log and three PNG plots in ./perfprim-demo."""
    assert 0 == demo.code, demo.err
    assert "Traceback" not in demo.err
    assert demo.seconds < 60
    files = demo.result["files"]
    assert {
        "report.md",
        "summary.json",
        "load.hlog",
        "latency.png",
        "budget.png",
        "usl.png",
    } == set(files)
    for name in files:
        assert (demo.folder / name).stat().st_size > 0, name
    for name in ("latency.png", "budget.png", "usl.png"):
        assert (demo.folder / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), name
    assert demo.result == json.loads((demo.folder / "summary.json").read_text())


def test_it_says_which_cache_it_runs_with(demo: DemoRun) -> None:
    """A private redis-server was started for the L2, and the narration says so (on stderr)."""
    cache = demo.result["cache"]
    assert cache["redis"] is True
    assert "private redis-server" in cache["description"]
    assert "private redis-server" in demo.err
    assert ["memory", "redis"] == [t["name"] for t in cache["tiers"]]


def test_redis_was_stalled_and_the_cache_degraded_and_recovered(demo: DemoRun) -> None:
    """The stall happened as planned; Redis errors were absorbed; every request was answered."""
    result = demo.result
    stall = result["stall"]
    assert stall["start_seconds"] == pytest.approx(QUICK.stall_at, abs=0.5)
    assert stall["duration_seconds"] == pytest.approx(QUICK.stall_for, abs=0.3)
    redis = result["cache"]["tiers"][1]
    assert redis["errors"] > 0  # it did hang
    assert "closed" == redis["circuit_state"]  # and the breaker closed again once it was back
    load = result["load"]
    assert load["planned"] == load["sent"] == load["completed"]
    assert 0 == load["errors"]  # a stalled Redis never failed a request
    phases = {row["phase"]: row for row in result["latency"]}
    assert {"cold start (ramp-up)", "before the stall", "Redis stalled", "after the stall"} <= set(
        phases
    )
    assert phases["Redis stalled"]["max_seconds"] >= 0.19  # the Redis tier's 0.2 s timeout
    assert sum(row["requests"] for row in result["latency"][:-1]) == load["completed"]
    assert "whole run" == result["latency"][-1]["phase"]


def test_cache_figures_add_up(demo: DemoRun) -> None:
    """Each product-page request is an L1 hit, an L1 miss, or joined another's lookup."""
    result = demo.result
    cache = result["cache"]
    memory = cache["tiers"][0]
    completed = result["load"]["completed"]
    assert completed == memory["hits"] + memory["misses"] + cache["coalesced"]
    assert 0 < cache["loads"] < completed
    assert memory["hit_ratio"] == pytest.approx(
        memory["hits"] / (memory["hits"] + memory["misses"])
    )


def test_the_load_log_reads_back_with_the_cli(demo: DemoRun) -> None:
    """``perfprim hist show`` on the demo's load.hlog counts every answered request."""
    shown = run_cli("hist", "show", str(demo.folder / "load.hlog"), "--json")
    assert 0 == shown.code, shown.err
    assert demo.result["load"]["completed"] == shown.json()["result"]["count"]


def test_slo_figures_from_the_service_and_the_driver_agree(demo: DemoRun) -> None:
    """The service counted every page request; the driver (timing from the plan) no fewer bad."""
    slo = demo.result["slo"]
    server, client = slo["server"], slo["client"]
    completed = demo.result["load"]["completed"]
    assert completed == server["events"] == client["events"]
    assert 0 <= server["bad_events"] <= client["bad_events"]
    assert SLO_THRESHOLD == slo["threshold_seconds"]
    windows = {b["window"] for b in server["burn_rates"]}
    assert "5m" in windows
    bad_ratio = client["bad_events"] / completed
    assert client["burn_rate"] == pytest.approx(bad_ratio / (1 - slo["target"]))
    assert client["budget_remaining"] == pytest.approx(1 - client["burn_rate"])


def test_the_capacity_answer_respects_the_database_pool(demo: DemoRun) -> None:
    """One user gets at most 1/15 ms = 67 req/s; nobody more than the pool's 8/15 ms = 533."""
    capacity = demo.result["capacity"]
    steps = {s["concurrency"]: s["throughput"] for s in capacity["steps"]}
    assert list(QUICK.knee_levels) == list(steps)
    assert 0 < steps[1] <= 1 / QUERY_SECONDS * 1.05
    assert max(steps.values()) <= POOL / QUERY_SECONDS * 1.05
    assert capacity["model"] is not None
    assert capacity["verdict"]


def test_the_report_has_every_section_and_its_plots(demo: DemoRun) -> None:
    """report.md: cache, latency, SLO and capacity sections; the plots it links exist."""
    report = (demo.folder / "report.md").read_text()
    for heading in ("## Cache", "## Latency", "## SLO", "## Capacity"):
        assert heading in report
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (demo.folder / image).is_file(), image
    assert f"{demo.result['load']['completed']:,} requests answered" in report


def test_the_human_summary_is_printed_without_json(demo: DemoRun, tmp_path: Path) -> None:
    """The console tables come from the same summary (rendered, not re-measured)."""
    from rich.console import Console

    from perfprim.cli._demo_report import render_summary

    console = Console(file=(tmp_path / "out.txt").open("w"), width=150, no_color=True)
    render_summary(demo.result, console)
    console.file.close()
    text = (tmp_path / "out.txt").read_text()
    for heading in ("== cache", "== latency", "== SLO", "== capacity", "Redis stalled"):
        assert heading in text


def test_memory_only_when_there_is_no_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """No REDIS_URL, no redis-server on PATH: memory only, and it says how to get Redis."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with choose_redis(memory_only=False) as choice:
        assert (None, None) == (choice.url, choice.server)
        assert "no redis-server on PATH" in choice.description
    with choose_redis(memory_only=True) as choice:
        assert choice.url is None
        assert "--memory-only" in choice.description


def test_redis_url_is_used_and_never_stalled(monkeypatch: pytest.MonkeyPatch) -> None:
    """With REDIS_URL the demo uses that Redis and starts (and stalls) nothing."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/3")
    with choose_redis(memory_only=False) as choice:
        assert "redis://127.0.0.1:6390/3" == choice.url
        assert choice.server is None


def test_the_readme_runs_the_demo_and_the_tests_first() -> None:
    """The README's first two shell commands: the demo from a clone, and the CI test command."""
    readme = (DOCS.parent / "README.md").read_text()
    commands = [
        line.strip()
        for block in extract_blocks(readme, "README.md")
        if block.language == "sh"
        for line in block.code.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert "pip install '.[demo]' && perfprim demo" == commands[0]
    assert "pip install nox && nox -s tests" == commands[1]
    ci = (DOCS.parent / ".ci" / "run").read_text()
    assert "\nnox -s tests\n" in ci


def test_missing_demo_dependencies_are_one_line(tmp_path: Path) -> None:
    """Without uvicorn the demo exits 2 naming the extra to install (hidden by sitecustomize)."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['uvicorn'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "perfprim", "demo", "--quick"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert 2 == done.returncode, done.stderr
    assert "pip install 'perfprim[demo]'" in done.stderr
    assert 1 == len(done.stderr.splitlines())


@pytest.mark.parametrize("output", ["a-file", "/proc/perfprim-demo"])
def test_an_output_it_cannot_write_is_exit_2_before_anything_starts(
    tmp_path: Path, output: str
) -> None:
    """A file where the folder should be, or a folder it cannot make: one line, exit 2."""
    (tmp_path / "a-file").write_text("not a folder")
    result = run_cli("demo", "--quick", "--output", output, cwd=tmp_path)
    assert 2 == result.code, result.err
    assert 1 == len(result.err.splitlines())
    assert "Traceback" not in result.err
