"""perfprim: performance primitives for Python services.

The package is a set of independent modules; import the one you need:

- :mod:`perfprim.cache`: multi-tier cache-aside (memory L1, Redis L2), stampede
  protection, probabilistic early expiry.
- :mod:`perfprim.histogram`: HDR latency histograms.
- :mod:`perfprim.slo`: SLO, error-budget and burn-rate math, multiwindow alerts.
- :mod:`perfprim.capacity`: capacity projection, queueing, USL fits.
- :mod:`perfprim.telemetry`: OpenTelemetry and Prometheus decorators.
- :mod:`perfprim.exceptions`: the exception hierarchy shared by all of them.

``import perfprim`` itself is cheap: it imports none of the modules above and
none of the optional dependencies (redis, opentelemetry, prometheus_client).
"""

from __future__ import annotations

from perfprim.exceptions import (
    BackendError,
    CacheError,
    ConfigurationError,
    MissingDependencyError,
    PerfprimError,
)

__all__ = [
    "BackendError",
    "CacheError",
    "ConfigurationError",
    "MissingDependencyError",
    "PerfprimError",
    "__version__",
]


def __getattr__(name: str) -> str:
    """Return ``__version__`` lazily, read from the installed distribution."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("perfprim")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0.0.0+unknown"
    msg = f"module 'perfprim' has no attribute {name!r}"
    raise AttributeError(msg)
