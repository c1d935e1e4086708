"""The README's demo command runs and shows every module doing its job."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).parent.parent / "examples" / "demo.py"

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_demo_runs_end_to_end(redis_server_factory: object) -> None:  # needs redis-server
    """The demo serves every request through a hung Redis and prints each module's answer."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = subprocess.run(
        [sys.executable, str(DEMO)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert 0 == done.returncode, done.stderr
    out = done.stdout
    for section in ("== cache", "== Prometheus scrape", "== latency", "== SLO", "== capacity"):
        assert section in out
    assert "product_page_seconds_count 8000.0" in out
    hung = re.search(r"all (\d+) requests still served .* circuit 'open'", out)
    assert hung is not None, out
    assert "circuit 'closed'" in out.split("Redis hung")[1]
    loads, queries = map(int, re.search(r"(\d+) loads \((\d+) database queries\)", out).groups())
    assert loads == queries
    assert loads < 8000
