"""Experiment 3 (issue 14): find_knee recovers known peaks.

Two loopback services with a peak known in advance:

- a lock around a 2 ms sleep (``serial=0.002``): at most 500 requests/s at
  any concurrency;
- a service with contention and coherency costs built in (``usl=(sigma,
  kappa, lambda)``): a request that finds ``N`` requests in the server takes
  ``(1 + sigma (N-1) + kappa N (N-1)) / lambda``, so a closed loop of ``N``
  users gets Gunther's ``X(N)`` exactly; with sigma=0.05, kappa=0.002,
  lambda=100/s the peak is ``N* = sqrt(0.95/0.002) = 21.8`` at ``X(N*) = 740/s``.

Budget: the reported peak throughput within 20% of the known one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from _load_support import SERVER_CPU, short_mode
from perfprim.capacity import USLModel
from perfprim.load import find_knee
from perfprim.load.testing import LoopbackServer

LEVELS = [1, 2, 4, 8, 16, 24, 32, 48, 64]
USL = (0.05, 0.002, 100.0)


@pytest.mark.parametrize("service", ["lock_2ms", "usl"])
@pytest.mark.timeout(900)
def test_exp3_knee(
    service: str, request: pytest.FixtureRequest, record_metric: Callable[..., None]
) -> None:
    """find_knee's peak against the service's known peak."""
    short = short_mode(request)
    duration = 0.3 if short else 3.0
    if service == "lock_2ms":
        options: dict[str, object] = {"serial": 0.002}
        known_n, known_x = math.inf, 500.0
    else:
        options = {"usl": USL}
        truth = USLModel(sigma=USL[0], kappa=USL[1], lambda_=USL[2])
        known_n, known_x = truth.peak_concurrency, truth.peak_throughput
    with LoopbackServer(cpu=SERVER_CPU, **options) as server:
        result = find_knee(server.url, concurrency=LEVELS, duration=duration, warmup=duration / 3)
    note = f"{len(LEVELS)} steps of {duration} s; known peak {known_x:.0f}/s at N={known_n:.1f}"
    error = result.peak_throughput / known_x - 1.0
    prefix = f"load.knee.{service}"
    record_metric(f"{prefix}.peak_throughput", round(result.peak_throughput, 1), "req/s", note)
    record_metric(f"{prefix}.peak_concurrency", round(result.peak_concurrency, 1), "", note)
    record_metric(f"{prefix}.peak_error", round(abs(error), 3), "fraction", note)
    record_metric(f"{prefix}.r_squared", round(result.r_squared, 3), "", note)
    record_metric(f"{prefix}.measured_peak", round(result.measured_peak.throughput, 1), "req/s",
                  note)  # fmt: skip
    assert result.model is not None, result.verdict
