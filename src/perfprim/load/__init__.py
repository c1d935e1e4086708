"""Open-model load testing: CO-free latency, k6-style thresholds, USL knee finding.

See ``docs/load.md``.

- :func:`run` sends requests at planned times from :class:`Stage` rates
  (open model) and measures latency from each request's *planned* start, so
  a stalled server shows up in the tail instead of slowing the load
  (coordinated omission); :class:`LoadResult` holds the HDR histograms,
  counts, the thresholds' verdicts and plain warnings when the driver
  itself fell behind.
- :func:`find_knee` steps the concurrency in closed loops and fits Gunther's
  Universal Scalability Law to find the peak (:class:`KneeResult`).
- :mod:`perfprim.load.profiles` builds stage lists for smoke, load, stress,
  soak and spike tests; :mod:`perfprim.load.testing` runs a loopback HTTP
  server that stalls or saturates on demand.

URL targets need the ``load`` extra (``pip install 'perfprim[load]'``: httptools, uvloop).
"""

from __future__ import annotations

from perfprim.load import profiles
from perfprim.load._knee import KneeResult, KneeStep, find_knee
from perfprim.load._progress import Progress
from perfprim.load._result import LoadResult
from perfprim.load._run import run
from perfprim.load._stages import Stage
from perfprim.load._targets import HttpTarget
from perfprim.load._thresholds import Threshold, ThresholdResult, parse_threshold

__all__ = [
    "HttpTarget",
    "KneeResult",
    "KneeStep",
    "LoadResult",
    "Progress",
    "Stage",
    "Threshold",
    "ThresholdResult",
    "find_knee",
    "parse_threshold",
    "profiles",
    "run",
]
