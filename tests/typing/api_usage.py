"""Uses the public API the way a user would; ``nox -s typing`` checks it with mypy --strict.

This file is not run by pytest (it is not named test_*); it must type-check.
One function per module keeps each module's usage together.
"""

from __future__ import annotations


def use_package() -> None:
    """The top-level package and the testing helpers."""
    import perfprim
    from perfprim.exceptions import ConfigurationError, PerfprimError
    from perfprim.testing import RedisServer

    version: str = perfprim.__version__
    error: PerfprimError = ConfigurationError("bad option: pass a float in seconds")
    server: RedisServer = RedisServer()
    url: str = server.url
    print(version, error, url)


def use_capacity() -> None:
    """perfprim.capacity."""
    from perfprim.capacity import ErlangC, USLModel, erlang_c, fit_usl, headroom, littles_law

    points = [(1, 955.2), (2, 1878.9), (3, 2688.2), (4, 3548.2), (5, 4315.6), (6, 5130.6)]
    model: USLModel = fit_usl(points)
    peak: float = model.peak_concurrency
    queue: ErlangC = erlang_c(servers=14, arrival_rate=100 / 1800, service_time=180)
    staff: int = ErlangC.servers_needed(100 / 1800, 180, target_wait=20.0, service_level=0.8)
    ceiling: float = headroom(current_load=1000, current_utilization=0.55, ceiling=0.70)
    concurrency: float = littles_law(arrival_rate=50, latency=0.2)
    print(peak, queue, staff, ceiling, concurrency)


def use_histogram() -> None:
    """perfprim.histogram."""
    from perfprim.histogram import IntervalRecorder, LatencyHistogram

    h = LatencyHistogram(lowest=1e-6, highest=60.0, significant_figures=3)
    h.record(0.0123)
    h.record(0.002, count=5)

    @h.timed
    def work(x: int) -> int:
        return x + 1

    @h.timed
    async def awork(x: int) -> str:
        return str(x)

    result: int = work(1)
    coroutine_result = awork(2)
    coroutine_result.close()
    p99: float = h.percentile(99.0)
    table: dict[float, float] = h.percentiles((50, 99))
    text: str = h.encode()
    copy: LatencyHistogram = LatencyHistogram.decode(text)
    recorder = IntervalRecorder()
    recorder.record(0.001)
    snapshot: LatencyHistogram = recorder.interval()
    print(result, p99, table, copy, snapshot)


def use_slo() -> None:
    """perfprim.slo."""
    from perfprim.slo import SLO, AlertWindow, LatencySLO, SLOSnapshot, SLOTracker

    slo = SLO(target=0.999, window=30 * 86400)
    budget: float = slo.error_budget
    windows: tuple[AlertWindow, ...] | list[AlertWindow] = slo.alert_windows()
    latency = LatencySLO(threshold=0.3, target=0.99, window=30 * 86400)
    tracker = SLOTracker(latency)
    tracker.record_latency(0.12)
    snapshot: SLOSnapshot = tracker.snapshot()
    print(budget, windows, snapshot)


def use_telemetry() -> None:
    """perfprim.telemetry: decorators keep the function's type."""
    from collections.abc import AsyncIterator, Iterator

    from perfprim.histogram import LatencyHistogram
    from perfprim.telemetry import TelemetryRegistry, instrument, timed, traced

    registry = TelemetryRegistry()
    histogram = LatencyHistogram()

    @traced
    def plain(x: int) -> int:
        return x

    @traced(name="db.load_user", attributes={"db.system": "postgresql"})
    async def load_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    @timed(name="work", histogram=histogram, registry=registry)
    def numbers(n: int) -> Iterator[int]:
        yield from range(n)

    @instrument(name="stream", registry=registry)
    async def stream(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    value: int = plain(1)
    total: int = sum(numbers(3))
    coroutine = load_user(7)
    coroutine.close()
    agen: AsyncIterator[int] = stream(2)
    print(value, total, agen)
