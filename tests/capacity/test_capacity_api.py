"""The public surface of ``perfprim.capacity``: exports pinned, no heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import perfprim.capacity


def test_capacity_all_is_pinned() -> None:
    """``__all__`` lists exactly the public names, sorted; adding one is a deliberate change."""
    expected = [
        "ErlangC",
        "GrowthModel",
        "GrowthPeriod",
        "GrowthProjection",
        "TrendFit",
        "USLModel",
        "amdahl_speedup",
        "erlang_b",
        "erlang_c",
        "fit_trend",
        "fit_usl",
        "headroom",
        "knee_utilization",
        "littles_law",
        "project_growth",
        "response_time_at_utilization",
    ]
    assert expected == perfprim.capacity.__all__
    assert sorted(perfprim.capacity.__all__) == perfprim.capacity.__all__
    for name in expected:
        assert hasattr(perfprim.capacity, name)


def test_capacity_import_is_pure_python() -> None:
    """Importing the module (in a fresh interpreter) loads no numpy, scipy or optional extra."""
    code = (
        "import sys, json, perfprim.capacity;"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    roots = set(json.loads(out))
    assert set() == roots & {"numpy", "scipy", "redis", "opentelemetry", "prometheus_client"}
