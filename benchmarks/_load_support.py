"""Shared pieces of the load-driver experiments (issue 14): short mode, CPU pinning, anchors.

Every experiment has a long form (``nox -s bench``) and a short form that
finishes in seconds: the short form runs under ``--benchmark-disable``
(``nox -s bench-smoke``, CI) or with ``PERFPRIM_BENCH_SHORT=1``. The anchors
are external programs: ``wrk`` (Debian package; closed model, one request
per connection at a time) and locust (headless, ``FastHttpUser``).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
DRIVER_CPU = CPUS[0]
SERVER_CPU = CPUS[-1]


def short_mode(request: pytest.FixtureRequest) -> bool:
    """True under ``--benchmark-disable`` (bench-smoke) or ``PERFPRIM_BENCH_SHORT=1``."""
    if os.environ.get("PERFPRIM_BENCH_SHORT"):
        return True
    try:
        return bool(request.config.getoption("benchmark_disable"))
    except ValueError:
        return False


@contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run the block with this process pinned to one CPU (no-op where unsupported)."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def require_wrk() -> str:
    """Path of ``wrk``; fails (CI installs it via .ci/run) or skips locally."""
    path = shutil.which("wrk")
    if path is None:
        message = "wrk is not on PATH: apt-get install wrk"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


_WRK_SCRIPT = textwrap.dedent(
    """
    done = function(summary, latency, requests)
      io.write(string.format(
        "PERFPRIM requests=%d duration_us=%d p50=%d p90=%d p99=%d p999=%d max=%d\\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency:percentile(99.9), latency.max))
    end
    """
)


def run_wrk(url: str, *, seconds: float, connections: int, threads: int = 1,
            cpus: set[int] | None = None) -> dict[str, float]:  # fmt: skip
    """Run wrk (closed model) and return requests/s and latency percentiles in seconds."""
    wrk = require_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_WRK_SCRIPT)
        script = f.name
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "-s", script, url]
    if cpus is not None:
        cmd = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *cmd]
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=seconds + 60, check=True
        ).stdout
    finally:
        Path(script).unlink()
    match = re.search(r"PERFPRIM (.*)", out)
    assert match, out
    fields = dict(kv.split("=") for kv in match.group(1).split())
    duration = int(fields["duration_us"]) / 1e6
    return {
        "rate": int(fields["requests"]) / duration,
        "p50": int(fields["p50"]) / 1e6,
        "p90": int(fields["p90"]) / 1e6,
        "p99": int(fields["p99"]) / 1e6,
        "p99.9": int(fields["p999"]) / 1e6,
        "max": int(fields["max"]) / 1e6,
    }


_LOCUSTFILE = textwrap.dedent(
    """
    from locust import FastHttpUser, constant, task

    class User(FastHttpUser):
        wait_time = constant(0)

        @task
        def hit(self):
            self.client.get("/")
    """
)


def run_locust(url: str, *, seconds: float, users: int, cpus: set[int] | None = None,
               processes: int = 1) -> dict[str, Any]:  # fmt: skip
    """Run locust headless (FastHttpUser, no wait) and return its aggregated stats."""
    folder = Path(tempfile.mkdtemp(prefix="perfprim-locust-"))
    (folder / "locustfile.py").write_text(_LOCUSTFILE)
    cmd = [sys.executable, "-m", "locust", "-f", str(folder / "locustfile.py"), "--headless",
           "-u", str(users), "-r", str(users * 10), "-t", f"{max(int(seconds), 1)}s",
           "--host", url.rstrip("/"), "--csv", str(folder / "out"), "--only-summary",
           "--loglevel", "ERROR"]  # fmt: skip
    if processes > 1:
        cmd += ["--processes", str(processes)]
    if cpus is not None:
        cmd = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *cmd]
    subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    with (folder / "out_stats.csv").open() as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    shutil.rmtree(folder, ignore_errors=True)
    row = rows["Aggregated"]

    def ms(column: str) -> float:  # locust writes N/A when it has too few samples
        value = row[column]
        return float(value) / 1e3 if value not in ("", "N/A") else float("nan")

    return {
        "rate": float(row["Requests/s"]),
        "requests": int(row["Request Count"]),
        "p50": ms("50%"),
        "p90": ms("90%"),
        "p99": ms("99%"),
        "p99.9": ms("99.9%"),
        "max": ms("100%"),
    }
