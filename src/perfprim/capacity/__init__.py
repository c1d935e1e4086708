"""Capacity planning math: USL fits, queueing, growth projection, headroom, Little's law.

"When do we run out, and what do we buy?" answered from numbers. Everything
here is pure Python, deterministic and free of I/O; see ``docs/capacity.md``
for the formulas and their sources.
"""

from __future__ import annotations

from perfprim.capacity._growth import (
    GrowthModel,
    GrowthPeriod,
    GrowthProjection,
    TrendFit,
    fit_trend,
    project_growth,
)
from perfprim.capacity._headroom import headroom
from perfprim.capacity._littles import littles_law
from perfprim.capacity._queueing import (
    ErlangC,
    erlang_b,
    erlang_c,
    knee_utilization,
    response_time_at_utilization,
)
from perfprim.capacity._usl import USLModel, amdahl_speedup, fit_usl

__all__ = [
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
