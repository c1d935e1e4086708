"""Experiment 4 (issue 14): memory stays flat over a long run (histograms, not samples).

A 10-minute run at 2,000 requests/s (1.2 million requests) against the
loopback server; the driver's resident memory is read from
``/proc/self/statm`` at every interval through the ``progress=`` hook.
Figures: RSS after the first 30 s, at the end and at its highest, and the
steady growth: the median of the 10-second RSS changes, per request. A leak
grows in every 10 seconds; a stall of the machine instead raises RSS once
(the backlog of requests in flight at once is allocated, and the allocator
keeps its high-water mark), which the median ignores and the end-minus-start
figure shows. For comparison, k6 keeps every sample of its Trend metrics in
memory (k6 #763, still open; #3618, #4670): at least 8 bytes per value and
about 8 Trend values per HTTP request (``http_req_duration`` and its six
phases, plus ``iteration_duration``), so >= 64 bytes per request before
slice growth: >= 77 MB for this run. k6 #3955 reports ~1 MB every few
seconds at 1,000 requests/s.
"""

from __future__ import annotations

import itertools
import os
import statistics
from collections.abc import Callable

import pytest

from _load_support import DRIVER_CPU, SERVER_CPU, pinned, short_mode
from perfprim.load import Progress, Stage, run
from perfprim.load.testing import LoopbackServer

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


@pytest.mark.timeout(1800)
def test_exp4_flat_memory(
    request: pytest.FixtureRequest, record_metric: Callable[..., None]
) -> None:
    """RSS over a long run: growth per million requests, against k6's per-sample cost."""
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc (Linux)")
    short = short_mode(request)
    seconds, rate, settle = (4.0, 300, 1.0) if short else (600.0, 2000, 30.0)
    readings: list[tuple[float, int, int]] = []

    def sample(p: Progress) -> None:
        readings.append((p.elapsed, p.completed, rss_bytes()))

    with LoopbackServer(cpu=SERVER_CPU) as server, pinned(DRIVER_CPU):
        result = run(server.url, stages=[Stage(seconds, rate)], progress=sample)
    settled = [r for r in readings if r[0] >= settle]
    first, last = settled[0], settled[-1]
    growth = last[2] - first[2]
    step = max(1, round(10 / (settled[1][0] - settled[0][0]))) if len(settled) > 1 else 1
    tens = settled[::step]
    deltas = [(b[2] - a[2]) / max(b[1] - a[1], 1) for a, b in itertools.pairwise(tens)]
    steady = statistics.median(deltas) if deltas else 0.0
    note = (
        f"{seconds:.0f} s at {rate}/s: {result.completed} requests, "
        f"{result.late_fraction:.2%} late; RSS read each second after {settle:.0f} s"
    )
    record_metric("load.memory.rss_start_mb", round(first[2] / 2**20, 1), "MiB", note)
    record_metric("load.memory.rss_end_mb", round(last[2] / 2**20, 1), "MiB", note)
    record_metric("load.memory.rss_max_mb", round(max(r[2] for r in settled) / 2**20, 1), "MiB",
                  note)  # fmt: skip
    record_metric("load.memory.growth_mb", round(growth / 2**20, 2), "MiB", note)
    record_metric("load.memory.steady_growth_bytes_per_request", round(steady, 3), "B", note)
    k6_note = "k6: >= 8 Trend values x 8 B per request, kept all run (#763)"
    k6_floor = round(result.completed * 64 / 2**20, 1)
    record_metric("load.memory.k6_trend_floor_mb", k6_floor, "MiB", k6_note)
    assert result.completed > 0
