"""Experiment 1 (issue 14): coordinated omission against a server that stalls 1 s every 5 s.

The loopback server answers at once, except that every 5 s it stalls for
1 s: a request that arrives during a stall is answered when the stall ends.

Analytic answer (open model, requests arriving at a steady rate): a fraction
``f = stall / period = 0.2`` of requests arrive during a stall, at a uniform
point in it, and wait for the rest of it, uniform on [0, 1 s]. So for a
quantile ``q > 1 - f`` the latency is ``stall * (q - (1 - f)) / f``:
p99 = 0.95 s, p99.9 = 0.995 s (plus the ~1 ms service time).

perfprim (open model, latency from the planned start) should match it.
locust is a closed model: each user waits for its answer, so during a stall
it records one slow sample and then nothing, while between stalls it
records thousands of fast ones; its p99 stays at a few milliseconds. wrk is
closed too, but corrects its histogram after the run (``stats_correct``:
for every slow sample it adds the samples a connection would have taken at
its average pace), which brings its figures near the analytic ones.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from _load_support import DRIVER_CPU, SERVER_CPU, run_locust, run_wrk, short_mode
from perfprim.load import Stage, run
from perfprim.load.testing import LoopbackServer

PERIOD, STALL = 5.0, 1.0


def analytic(q: float, period: float, stall: float) -> float:
    """Latency at quantile q (0..1) for steady arrivals and a stall of `stall` every `period`."""
    f = stall / period
    return 0.0 if q <= 1 - f else stall * (q - (1 - f)) / f


@pytest.mark.timeout(900)
def test_exp1_coordinated_omission(
    request: pytest.FixtureRequest, record_metric: Callable[..., None]
) -> None:
    """p99/p99.9 of perfprim, wrk, locust FastHttpUser and the analytic answer."""
    short = short_mode(request)
    period, stall = (1.0, 0.2) if short else (PERIOD, STALL)
    seconds = 3.0 if short else 60.0
    rate = 200 if short else 500
    note = (
        f"stall {stall} s every {period} s; perfprim {rate} req/s open model, wrk 10 "
        f"connections, locust 10 users, {seconds:.0f} s each"
    )
    results: dict[str, dict[str, float]] = {}
    with LoopbackServer(stall_every=period, stall_for=stall, cpu=SERVER_CPU) as server:
        r = run(
            server.url,
            stages=[Stage(seconds, rate)],
            max_in_flight=int(rate * stall * 2 + 100),
            progress=False,
        )
        p = r.latency.percentiles((50.0, 99.0, 99.9))
        results["perfprim"] = {"p50": p[50.0], "p99": p[99.0], "p99.9": p[99.9],
                               "rate": r.throughput}  # fmt: skip
        results["wrk"] = run_wrk(server.url, seconds=seconds, connections=10, cpus={DRIVER_CPU})
        results["locust"] = run_locust(server.url, seconds=seconds, users=10, cpus={DRIVER_CPU})
    results["analytic"] = {
        "p50": 0.0,
        "p99": analytic(0.99, period, stall),
        "p99.9": analytic(0.999, period, stall),
    }
    for who, figures in results.items():
        for key in ("p50", "p99", "p99.9"):
            record_metric(f"load.co.{who}.{key}_ms", round(figures[key] * 1e3, 2), "ms", note)
    for key in ("p99", "p99.9"):
        record_metric(
            f"load.co.perfprim.{key}_over_analytic",
            round(results["perfprim"][key] / results["analytic"][key], 3),
            "x",
            note,
        )
    # The stall shows in the open model's tail (wrk's corrected figures may too).
    assert results["perfprim"]["p99"] > 0.5 * results["analytic"]["p99"]
