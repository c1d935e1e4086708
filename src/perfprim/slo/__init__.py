"""SLO math, live tracking, multiwindow burn-rate alerts and Prometheus rules.

Turn "99.9% over 30 days" into numbers: the error budget, burn rates, the
Google SRE Workbook's multiwindow multi-burn-rate alerting policy, live
in-process tracking in bounded memory, Prometheus rules (checked with
``promtool``) and OpenSLO v1 documents. See ``docs/slo.md``.
"""

from __future__ import annotations

from perfprim.slo._budgeting import BudgetingMethod, Occurrences, RatioTimeslices, Timeslices
from perfprim.slo._calendar import CalendarWindow
from perfprim.slo._openslo import OpenSLODefinition, load_openslo, load_openslo_all
from perfprim.slo._policy import DEFAULT_POLICY, AlertRule, AlertWindow
from perfprim.slo._slo import SLO, CumulativeHistogram, LatencySLO
from perfprim.slo._tracker import BucketCounts, SLOSnapshot, SLOTracker, WindowStatus

__all__ = [
    "DEFAULT_POLICY",
    "SLO",
    "AlertRule",
    "AlertWindow",
    "BucketCounts",
    "BudgetingMethod",
    "CalendarWindow",
    "CumulativeHistogram",
    "LatencySLO",
    "Occurrences",
    "OpenSLODefinition",
    "RatioTimeslices",
    "SLOSnapshot",
    "SLOTracker",
    "Timeslices",
    "WindowStatus",
    "load_openslo",
    "load_openslo_all",
]
