"""Uses perfprim.load the way a user (or a CLI) would; ``nox -s typing`` checks it with mypy.

This file is not run by pytest (it is not named test_*); it must type-check.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta


async def handler() -> None:
    """A coroutine target."""
    await asyncio.sleep(0.001)


def use_load() -> None:
    """run, thresholds, profiles, progress hook, find_knee."""
    from perfprim.capacity import USLModel
    from perfprim.exceptions import ThresholdError
    from perfprim.histogram import LatencyHistogram
    from perfprim.load import (
        HttpTarget,
        KneeResult,
        KneeStep,
        LoadResult,
        Progress,
        Stage,
        Threshold,
        ThresholdResult,
        find_knee,
        parse_threshold,
        profiles,
        run,
    )

    def on_progress(p: Progress) -> None:
        print(p.line())

    result: LoadResult = run(
        handler,
        stages=[Stage(timedelta(seconds=1), 10), *profiles.by_name("smoke", duration=1)],
        thresholds=["p(95) < 200ms", parse_threshold("rate > 1")],
        progress=on_progress,
        workers=1,
    )
    latency: LatencyHistogram = result.latency
    verdicts: tuple[ThresholdResult, ...] = result.thresholds
    passed: bool = result.passed and not result.driver_overloaded
    threshold: Threshold = verdicts[0].threshold
    run(HttpTarget("http://127.0.0.1:8000/", method="POST", body=b"{}"), stages=Stage(1, 1))
    knee: KneeResult = find_knee(handler, concurrency=[1, 2, 4, 8, 16, 32], duration=1)
    model: USLModel | None = knee.model
    steps: tuple[KneeStep, ...] = knee.steps
    try:
        parse_threshold("p(95) < 200")
    except ThresholdError as exc:
        print(exc)
    print(latency.percentile(99), passed, threshold, model, steps, result.to_dict())
