"""The exceptions perfprim raises, all under :class:`PerfprimError`.

Each exception also subclasses the builtin it refines, so ``except ValueError``
keeps working for code that does not know perfprim::

    PerfprimError (Exception)
    ├── ConfigurationError (ValueError)       wrong argument or option: fix the call
    │   └── ThresholdError                    a load-test threshold does not parse
    ├── MissingDependencyError (ImportError)  an optional extra is not installed
    ├── CacheError
    │   ├── BackendError                      a cache tier (Redis) failed
    │   │   └── CircuitOpenError              the tier's circuit breaker is open
    │   ├── SerializationError (ValueError)   a value cannot be encoded for a tier
    │   └── LockTimeoutError (TimeoutError)   waited too long for another loader
    ├── HistogramError
    │   ├── HistogramRangeError (ValueError)  a value outside the histogram's range
    │   └── HistogramFormatError (ValueError) an encoded histogram cannot be read
    └── InfeasibleError (ValueError)          no answer exists (unstable queue, ...)

Messages say what to do, not only what went wrong.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "CacheError",
    "CircuitOpenError",
    "ConfigurationError",
    "HistogramError",
    "HistogramFormatError",
    "HistogramRangeError",
    "InfeasibleError",
    "LockTimeoutError",
    "MissingDependencyError",
    "PerfprimError",
    "SerializationError",
    "ThresholdError",
]


class PerfprimError(Exception):
    """Base class of every exception perfprim raises on purpose."""


class ConfigurationError(PerfprimError, ValueError):
    """An argument or option is invalid; the message says the valid form."""


class ThresholdError(ConfigurationError):
    """A load-test threshold does not follow k6's grammar; the message shows the valid form."""


class MissingDependencyError(PerfprimError, ImportError):
    """An optional dependency is missing; the message names the ``pip install``."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        self.feature = feature
        super().__init__(
            f"{feature} needs the {package!r} package, which is not installed. "
            f"Install it with: pip install 'perfprim[{extra}]'"
        )


class CacheError(PerfprimError):
    """Base class of cache errors."""


class BackendError(CacheError):
    """A cache tier failed (connection refused, timeout, protocol error).

    Raised to the caller only when the cache was built with
    ``raise_on_backend_error=True``; by default tier failures are counted and
    the cache degrades to its other tiers and the loader.
    """


class CircuitOpenError(BackendError):
    """The tier's circuit breaker is open; the tier is skipped until it probes."""


class SerializationError(CacheError, ValueError):
    """A value cannot be encoded by the tier's serializer; the message names the fix."""


class LockTimeoutError(CacheError, TimeoutError):
    """Waited longer than the configured bound for another caller's load."""


class HistogramError(PerfprimError):
    """Base class of histogram errors."""


class HistogramRangeError(HistogramError, ValueError):
    """A value lies outside the histogram's trackable range."""


class HistogramFormatError(HistogramError, ValueError):
    """An encoded histogram or log line cannot be decoded."""


class InfeasibleError(PerfprimError, ValueError):
    """The question has no answer for these inputs (an unstable queue, say)."""
