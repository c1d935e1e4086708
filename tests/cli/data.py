"""Test inputs written by hand or recorded here: histograms, logs, SLO files, steps."""

from __future__ import annotations

import io
import random
from pathlib import Path

from perfprim.histogram import HistogramLogWriter, LatencyHistogram

START = 1_700_000_000.0


def lognormal_run(
    mu: float, *, n: int = 20_000, seed: int = 1, intervals: int = 4
) -> list[LatencyHistogram]:
    """``intervals`` histograms of lognormal latencies (median ``exp(mu)`` seconds)."""
    rng = random.Random(seed)
    out = []
    for i in range(intervals):
        h = LatencyHistogram()
        for _ in range(n // intervals):
            h.record(rng.lognormvariate(mu, 0.5))
        h.start_time, h.end_time = START + 10 * i, START + 10 * (i + 1)
        out.append(h)
    return out


def write_log(path: Path, histograms: list[LatencyHistogram]) -> Path:
    """Write ``histograms`` as an interval log."""
    out = io.StringIO()
    writer = HistogramLogWriter(out)
    writer.write_header(start_time=START)
    for h in histograms:
        writer.write_interval(h)
    path.write_text(out.getvalue())
    return path


def merged(histograms: list[LatencyHistogram]) -> LatencyHistogram:
    """All of them in one histogram."""
    total = histograms[0].copy()
    for h in histograms[1:]:
        total.merge(h)
    return total


SLO_FILE = """\
version: perfprim/v1
service: checkout
labels: {team: payments}
slos:
  - name: availability
    objective: 99.9%
    window: 30d
    errors: http_requests_total{job="checkout",code=~"5.."}
    total: http_requests_total{job="checkout"}
  - name: latency
    objective: 99%
    window: 28d
    latency:
      histogram: http_request_duration_seconds{job="checkout"}
      threshold: 1s
"""

OPENSLO_FILE = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-availability
spec:
  service: api
  indicatorRef: api-errors
  timeWindow:
    - duration: 7d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.995
"""

BAD_SLO_FILE = """\
version: perfprim/v1
service: checkout
slos:
  - name: availability
    objective: 99.9
    window: 30
    total: http_requests_total
  - name: latency
    objective: 150%
    latency:
      histogram: http_request_duration_seconds
      threshold: 300
    colour: blue
"""
