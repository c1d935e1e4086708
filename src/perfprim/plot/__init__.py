"""Plots people would rather look at than read: latency percentiles, USL fits, budget burn.

Needs the ``plot`` extra (matplotlib); see ``docs/plot.md``. Every function
takes plain data or perfprim objects and returns a matplotlib
:class:`~matplotlib.figure.Figure` built without pyplot (no global state,
safe in a server or a thread); :func:`save` writes it as PNG or SVG, byte for
byte the same on every run of the same matplotlib.

- :func:`latency_percentiles`: HdrHistogram's percentile plot, x = ``1/(1-p)``
  on a log axis labelled 90%, 99%, 99.9%, ...; several runs; latency limits.
- :func:`usl_fit`: measured throughput by concurrency, the fitted Universal
  Scalability Law, its peak and its knee.
- :func:`budget_burn`: error budget remaining over time, from
  :func:`budget_series` (per-interval good/total counts, e.g. of a load
  test) or from ``SLOTracker.snapshot().budget_remaining`` taken over time.
"""

from __future__ import annotations

from perfprim.plot._budget import budget_burn, budget_series
from perfprim.plot._core import save
from perfprim.plot._latency import LatencyLimit, latency_percentiles
from perfprim.plot._usl import usl_fit

__all__ = [
    "LatencyLimit",
    "budget_burn",
    "budget_series",
    "latency_percentiles",
    "save",
    "usl_fit",
]
