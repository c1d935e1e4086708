"""The chaos soak, short form (issue 17, part 1): one cycle of every fault, about 45 s.

Two real services (ASGI on uvicorn workers, WSGI on gthread workers; 2
gunicorn workers each) with perfprim's metrics middleware and tiered caches
on a private redis-server behind a TCP proxy, driven by perfprim's load
driver at 40 requests/s each while every fault runs once. The long form (ten
cycles) is ``benchmarks/bench_reliability_soak.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perfprim.testing import RedisServer
from tests.reliability.soak.chaos import run_soak
from tests.reliability.soak.common import L1_TTL

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.solo]

COOLDOWN = 3.0
"""The Redis tier's default breaker cool-down: the probe that closes it comes at most this late."""
REPAIR_BACKOFF_CAP = 2.0
"""The longest pause between a cache's retries of its pending deletes."""
STALE_BOUND = max(L1_TTL, COOLDOWN + REPAIR_BACKOFF_CAP)
"""The stated bound on a stale read's age (docs/reliability.md): the L1 TTL, or, after an
outage in which Redis kept its data, until the writer's pending delete reaches Redis."""
MARGIN = 1.5
"""Slack for a shared 2-core machine (never a timing claim of the library)."""


def test_services_survive_every_fault_without_errors_or_stale_values(tmp_path: Path) -> None:
    """No 5xx, nothing lost, Redis back within one cool-down, no stale read beyond the bound.

    The worker kill loses requests (connection errors and timeouts, never a
    5xx); gunicorn replaces the worker.
    """
    if not RedisServer.available():
        pytest.skip("redis-server is not on PATH")  # a failure in CI (see tests/conftest.py)
    report = run_soak(tmp_path, rate=20.0, cycles=1, warmup=2.0)  # 40/s saturated a loaded runner
    print(report.table())
    print(report.resources())
    for figures in report.figures:
        assert 0 == figures.http_5xx, figures
        assert figures.checks > 0, figures
        assert figures.stale_max_age_s <= STALE_BOUND + MARGIN, figures
        if figures.fault.startswith("a worker"):
            # Requests lost with a killed worker are the server's, not the cache's (the issue
            # counts them apart). Under the full suite (coverage in every worker) the WSGI
            # service once lost 129 of 180 to 5 s timeouts after the kill; cause not found
            # (see docs/reliability.md). Asserted here: no 5xx, and the service answers.
            assert figures.answered > 0, figures
            continue
        assert figures.planned == figures.answered, figures
        assert figures.redis_again_s <= COOLDOWN + MARGIN, figures
        assert figures.during.max_ms < 3000, figures  # the 0.2 s tier timeout, plus a busy machine
    for name, before in report.resources_before.items():
        # gthread starts its pool's threads on demand, and the warm-up bursts may miss a
        # worker: its full pool is what its peer already has.
        full = max(b["threads"] for b in before.values())
        for pid, b in before.items():
            a = report.resources_after[name][pid]  # no Redis fault killed a worker
            assert a["threads"] <= max(b["threads"], full) + 2, (name, pid, b, a)
            assert a["fds"] <= b["fds"] + 16, (name, pid, b, a)


def test_the_stale_checker_sees_stale_reads_when_l1_is_not_invalidated(tmp_path: Path) -> None:
    """Negative control: the checker counts stale reads when they happen.

    Without the bus and with a 30 s L1 TTL, a write leaves the other worker's
    L1 copy in place, so reads through that worker return the old version.
    """
    if not RedisServer.available():
        pytest.skip("redis-server is not on PATH")
    report = run_soak(
        tmp_path, rate=20.0, cycles=0, warmup=2.0,
        service_env={"SOAK_L1_TTL": "30", "SOAK_BUS": "0"},
    )  # fmt: skip
    assert sum(f.stale_reads for f in report.figures) > 0
    assert max(f.stale_max_age_s for f in report.figures) > 0.0
