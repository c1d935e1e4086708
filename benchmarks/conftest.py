"""Benchmark harness: perfprim and its anchor libraries side by side, in one run.

Every timed benchmark belongs to a *group* (one operation, e.g. "cache: L1 hit
via @cached") and names its *candidate* ("perfprim", "cachetools.cached+lock",
...). Candidates whose name starts with ``perfprim`` are compared with every
other candidate of their group; ``benchmarks/report.py`` prints the ratios
(perfprim median / anchor median) and checks them against
``benchmarks/budgets/*.toml``.

Use the fixtures::

    def test_hit_perfprim(compare):
        compare("cache: L1 hit", "perfprim", cached_fn, 1)

    async def one_call(): await acache.get("k")
    def test_async_hit_perfprim(compare_async):
        compare_async("cache: async L1 hit", "perfprim", one_call)

    def test_stampede(record_metric):
        record_metric("cache.stampede.loads", loads, unit="loads")

Non-timing results (load counts, latencies of fault runs, memory) go through
``record_metric``; budgets can bound them too (``[[limit]]``).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _redis_support import on_redis_cpu

RESULTS = Path(os.environ.get("PERFPRIM_BENCH_RESULTS", Path(__file__).parent / ".results"))
_METRICS: dict[str, dict[str, Any]] = {}


@pytest.fixture(autouse=True)
def _timings_on_the_redis_cpu(request: pytest.FixtureRequest) -> Iterator[None]:
    """A timing taken while a pinned redis-server is up runs on its CPU (see _redis_support)."""
    if {"compare", "compare_async"}.isdisjoint(request.fixturenames):
        yield
        return
    with on_redis_cpu():
        yield


@pytest.fixture
def compare(benchmark: Any) -> Callable[..., Any]:
    """Time ``fn(*args, **kwargs)`` as one candidate of a comparison group."""

    def run(group: str, candidate: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        benchmark.group = group
        benchmark.extra_info["candidate"] = candidate
        benchmark.extra_info["inner"] = 1
        return benchmark(fn, *args, **kwargs)

    return run


@pytest.fixture
def compare_async(benchmark: Any) -> Iterator[Callable[..., Any]]:
    """Time an async operation: ``inner`` awaits of ``make()`` per round, in one loop.

    The loop is created once; each round runs a batch coroutine that awaits
    the operation ``inner`` times, so the event loop's own cost per call is
    the same for every candidate. The report divides by ``inner``.
    """
    loop = asyncio.new_event_loop()

    def run(
        group: str,
        candidate: str,
        make: Callable[[], Awaitable[Any]],
        *,
        inner: int = 200,
        rounds: int = 60,
    ) -> None:
        async def batch() -> None:
            for _ in range(inner):
                await make()

        loop.run_until_complete(batch())  # warm up
        benchmark.group = group
        benchmark.extra_info["candidate"] = candidate
        benchmark.extra_info["inner"] = inner
        benchmark.pedantic(lambda: loop.run_until_complete(batch()), rounds=rounds, warmup_rounds=2)

    yield run
    loop.close()


@pytest.fixture
def record_metric(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record a non-timing result: ``record_metric(name, value, unit="", note="")``.

    The test's node id is kept with it, so that ``report.py --check`` can
    re-measure just the test behind a metric that is out of its limits.
    """
    nodeid = request.node.nodeid

    def record(name: str, value: float, unit: str = "", note: str = "") -> None:
        _METRICS[name] = {"value": value, "unit": unit, "note": note, "nodeid": nodeid}

    return record


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the recorded metrics next to pytest-benchmark's JSON."""
    if not _METRICS:
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "metrics.json"
    merged: dict[str, Any] = {}
    if path.exists() and os.environ.get("PERFPRIM_BENCH_MERGE_METRICS"):
        merged = json.loads(path.read_text())
    merged.update(_METRICS)
    path.write_text(json.dumps(merged, indent=2, sort_keys=True))
