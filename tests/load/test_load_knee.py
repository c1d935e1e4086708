"""find_knee: USL analysis of steps (pure) and a real closed-loop run on a known bottleneck."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from perfprim.capacity import USLModel
from perfprim.exceptions import ConfigurationError
from perfprim.load import KneeStep, find_knee
from perfprim.load._knee import analyse
from perfprim.load._monitor import new_histogram
from perfprim.load.testing import LoopbackServer

LEVELS = (1, 2, 4, 8, 16, 32, 64)


def steps_from(model: USLModel, levels: tuple[int, ...] = LEVELS) -> list[KneeStep]:
    """Steps whose throughput is the model's, exactly."""
    return [KneeStep(n, model.throughput(n), 100, 0, new_histogram()) for n in levels]


def test_analyse_recovers_a_known_peak() -> None:
    """Steps drawn from a USL with a retrograde region give back its N* and X(N*)."""
    truth = USLModel(sigma=0.05, kappa=0.002, lambda_=100.0)
    result = analyse(steps_from(truth))
    assert result.model is not None
    assert math.sqrt(0.95 / 0.002) == pytest.approx(result.peak_concurrency, rel=1e-3)
    assert truth.peak_throughput == pytest.approx(result.peak_throughput, rel=1e-3)
    assert result.fit_ok
    assert "peaks at" in result.verdict


def test_analyse_flat_bottleneck_reports_the_ceiling() -> None:
    """A lock (500/s at any concurrency) fits sigma ~ 1, kappa 0: the ceiling is 500/s."""
    steps = [KneeStep(n, 500.0, 100, 0, new_histogram()) for n in LEVELS]
    result = analyse(steps)
    assert math.isinf(result.peak_concurrency)
    assert 500.0 == pytest.approx(result.peak_throughput, rel=1e-6)
    assert "no retrograde region" in result.verdict


def test_analyse_says_when_data_cannot_support_a_fit() -> None:
    """Fewer than 6 steps (or 3 levels): no model, the best step, and what to do."""
    truth = USLModel(sigma=0.1, kappa=0.0, lambda_=10.0)
    result = analyse(steps_from(truth, (1, 2, 4)))
    assert result.model is None
    assert not result.fit_ok
    assert 4 == result.peak_concurrency
    assert "cannot support a USL fit" in result.verdict
    assert math.isnan(result.r_squared)
    assert json.dumps(result.to_dict())


def test_analyse_flags_a_poor_fit() -> None:
    """Throughput that jumps around is fitted, but flagged as not following the USL."""
    noisy = [KneeStep(n, x, 10, 0, new_histogram()) for n, x in
             zip(LEVELS, [100, 900, 50, 1000, 20, 800, 30], strict=True)]  # fmt: skip
    result = analyse(noisy)
    assert result.model is not None
    assert not result.fit_ok
    assert "poor fit" in result.verdict


def test_analyse_extrapolated_peak_is_named() -> None:
    """A peak beyond the largest concurrency measured is called an extrapolation."""
    truth = USLModel(sigma=0.01, kappa=0.0001, lambda_=100.0)  # N* ~ 99
    result = analyse(steps_from(truth, (1, 2, 4, 8, 12, 16)))
    assert "beyond the highest concurrency measured" in result.verdict


def test_find_knee_on_a_lock_recovers_its_peak() -> None:
    """A coroutine holding one lock for 5 ms peaks at 200/s; find_knee finds it within 30%."""
    lock: asyncio.Lock | None = None

    async def serial() -> None:
        nonlocal lock
        if lock is None:
            lock = asyncio.Lock()
        async with lock:
            await asyncio.sleep(0.005)

    seen: list[KneeStep] = []
    result = find_knee(
        serial, concurrency=[1, 2, 3, 4, 6, 8], duration=0.5, warmup=0.1, progress=seen.append
    )
    assert (
        [1, 2, 3, 4, 6, 8] == [s.concurrency for s in result.steps] == [s.concurrency for s in seen]
    )
    assert result.model is not None
    # asyncio's timers are coarse (~1 ms): the real peak lies between 1/6 ms and 1/5 ms.
    assert 140.0 < result.peak_throughput < 260.0
    assert "concurrency" in result.report()


def test_find_knee_over_http() -> None:
    """Over HTTP against a server-side 5 ms lock: the measured peak is ~200/s."""
    with LoopbackServer(serial=0.005) as server:
        result = find_knee(server.url, concurrency=[1, 2, 4, 8, 12, 16], duration=0.5)
    assert 0 == sum(s.errors for s in result.steps)
    assert 130.0 < result.measured_peak.throughput < 260.0


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"concurrency": []}, "at least one level"),
        ({"concurrency": [0, 1]}, "each concurrency level"),
        ({"duration": 0}, "duration must be"),
        ({"progress": 3}, "progress must be"),
    ],
)
def test_find_knee_validates(kwargs: dict[str, object], words: str) -> None:
    """Bad options fail fast with a message that says what to pass."""

    async def noop() -> None:
        return None

    with pytest.raises(ConfigurationError, match=words):
        find_knee(noop, **kwargs)  # type: ignore[arg-type]
