"""Interleaved ratios: perfprim and its anchor timed back to back under the same load.

The benchmark groups time one candidate after the other; on a shared 2-core
machine the load changes between them. Here each round times a batch of
perfprim and a batch of the anchor back to back, so both see the same load,
and the figure is the median of the per-round ratios (ours / anchor).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

ROUNDS, BATCH = 21, 100
NOTE = f"median of {ROUNDS} per-round ratios, batches of {BATCH} interleaved"


def interleaved(ours: Callable[[], Any], raw: Callable[[], Any]) -> float:
    """Median over ``ROUNDS`` of (time of ``BATCH`` ours) / (time of ``BATCH`` raw)."""
    ratios = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(BATCH):
            ours()
        mid = time.perf_counter()
        for _ in range(BATCH):
            raw()
        ratios.append((mid - start) / (time.perf_counter() - mid))
    return statistics.median(ratios)


async def interleaved_async(
    ours: Callable[[], Awaitable[Any]], raw: Callable[[], Awaitable[Any]]
) -> float:
    """The asyncio twin of :func:`interleaved`: each call is awaited."""
    ratios = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(BATCH):
            await ours()
        mid = time.perf_counter()
        for _ in range(BATCH):
            await raw()
        ratios.append((mid - start) / (time.perf_counter() - mid))
    return statistics.median(ratios)
