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
