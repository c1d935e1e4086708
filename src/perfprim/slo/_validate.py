"""Argument checks shared by the SLO modules: durations, ratios, counts, targets."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

from perfprim.exceptions import ConfigurationError

__all__ = [
    "budget_of",
    "check_count",
    "check_counts",
    "check_ratio",
    "check_target",
    "seconds",
]


_REAL = (int, float)


def seconds(value: float | timedelta, name: str) -> float:
    """Convert a duration (float seconds or ``timedelta``) to positive finite seconds."""
    if value.__class__ in _REAL and 0 < value < math.inf:  # fast path for queries
        return float(value)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{name} must be a duration in float seconds or a timedelta, got {value!r}"
        raise ConfigurationError(msg)
    result = float(value)
    if not math.isfinite(result) or result <= 0:
        msg = f"{name} must be a positive, finite number of seconds, got {value!r}"
        raise ConfigurationError(msg)
    return result


def check_target(target: float, name: str = "target") -> float:
    """Validate an SLO target given as a ratio in (0, 1]."""
    if isinstance(target, bool) or not isinstance(target, int | float):
        msg = f"{name} must be a ratio such as 0.999, got {target!r}"
        raise ConfigurationError(msg)
    target = float(target)
    if math.isnan(target):
        msg = f"{name} must be a ratio such as 0.999, got nan"
        raise ConfigurationError(msg)
    if 1 < target <= 100:
        msg = (
            f"{name}={target!r} looks like a percentage: pass the ratio "
            f"{float(Decimal(repr(target)) / 100)!r} instead (99.9% is target=0.999)"
        )
        raise ConfigurationError(msg)
    if not 0 < target <= 1:
        msg = f"{name} must be a ratio in (0, 1], such as 0.999 for 99.9%, got {target!r}"
        raise ConfigurationError(msg)
    return target


def budget_of(target: float) -> float:
    """Return ``1 - target`` computed in decimal, so 0.999 gives exactly 0.001.

    In binary floating point ``1 - 0.999`` is 0.0010000000000000009; the user
    wrote 0.999 and means a budget of 0.001, so the subtraction is done on the
    decimal text of the target.
    """
    return float(Decimal(1) - Decimal(repr(target)))


def check_ratio(value: float, name: str) -> float:
    """Validate a ratio in [0, 1] (an error ratio, an SLI, a budget fraction)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{name} must be a ratio in [0, 1], got {value!r}"
        raise ConfigurationError(msg)
    value = float(value)
    if not 0 <= value <= 1:
        msg = f"{name} must be a ratio in [0, 1], got {value!r}"
        raise ConfigurationError(msg)
    return value


def check_count(value: float, name: str) -> float:
    """Validate an event count: a non-negative finite number (Prometheus counts are floats)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{name} must be a non-negative event count, got {value!r}"
        raise ConfigurationError(msg)
    if not (math.isfinite(value) and value >= 0):
        msg = f"{name} must be a non-negative, finite event count, got {value!r}"
        raise ConfigurationError(msg)
    return value


def check_counts(good: float, total: float) -> tuple[float, float]:
    """Validate a (good, total) pair: both counts, and ``good <= total``."""
    check_count(good, "good")
    check_count(total, "total")
    if good > total:
        msg = (
            f"good={good!r} exceeds total={total!r}: pass total as the count of all "
            "events (good plus bad), not the count of bad ones"
        )
        raise ConfigurationError(msg)
    return good, total
