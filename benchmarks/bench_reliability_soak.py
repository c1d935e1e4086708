"""Reliability experiment 1 (issue 17): the chaos soak.

Two real services, ASGI (Starlette on ``uvicorn_worker.UvicornWorker``) and
WSGI (Flask on ``gthread``), 2 gunicorn workers each, behind perfprim's
``MetricsMiddleware``, with tiered caches (L1 + Redis, default options) on a
private redis-server reached through a TCP proxy; perfprim's open-model load
driver sends a fixed rate to each while the faults run
(``tests/reliability/soak/chaos.py``): Redis SIGSTOPped for 2 s, killed and
restarted on the same port, FLUSHALL, garbage bytes on the cache keys,
+300 ms on the network then a black hole; after the cycles, a worker
SIGKILLed mid-request.

Long form (``nox -s bench``): 100 requests/s per service, ten cycles (about
six minutes); threads, fds and RSS of each worker before and after the ten
cycles. Short form (bench-smoke, CI): 20 requests/s, one cycle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from _load_support import short_mode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.reliability

from tests.reliability.soak.chaos import run_soak

from perfprim.testing import RedisServer


@pytest.mark.timeout(1800)  # the long form runs about six minutes
def test_chaos_soak(
    request: pytest.FixtureRequest, tmp_path: Path, record_metric: Callable[..., None]
) -> None:
    """Every fault under load: 5xx, lost requests, latency, recovery, staleness, resources."""
    if not RedisServer.available():
        pytest.skip("redis-server is not on PATH")
    short = short_mode(request)
    rate, cycles = (20.0, 1) if short else (100.0, 10)
    report = run_soak(tmp_path, rate=rate, cycles=cycles)
    print()
    print(report.table())
    print(report.summary())
    print(report.resources())
    worst: dict[str, dict[str, float]] = {}
    for f in report.figures:
        slug = f"{f.fault.split(':')[0].split(',')[0].lower().replace(' ', '_')}.{f.service}"
        w = worst.setdefault(slug, {"5xx": 0, "lost": 0, "during_max_ms": 0.0,
                                    "after_p99_ms": 0.0, "redis_again_s": 0.0, "stale": 0,
                                    "stale_age_s": 0.0})  # fmt: skip
        w["5xx"] += f.http_5xx
        w["lost"] += f.planned - f.answered
        w["during_max_ms"] = max(w["during_max_ms"], f.during.max_ms)
        w["after_p99_ms"] = max(w["after_p99_ms"], f.after.p99_ms)
        w["redis_again_s"] = max(w["redis_again_s"], f.redis_again_s)
        w["stale"] += f.stale_reads
        w["stale_age_s"] = max(w["stale_age_s"], f.stale_max_age_s)
    for slug, values in worst.items():
        for key, value in values.items():
            record_metric(f"reliability.soak.{slug}.{key}", value)
    for name, before in report.resources_before.items():
        for i, (pid, b) in enumerate(sorted(before.items())):
            a = report.resources_after[name][pid]
            for key in ("threads", "fds", "rss_kib"):
                record_metric(f"reliability.soak.{name}.worker{i}.{key}_growth", a[key] - b[key])
    assert all(f.http_5xx == 0 for f in report.figures)
