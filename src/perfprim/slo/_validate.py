"""SLO-specific checks on top of the shared ones (:mod:`perfprim._validate`): targets, counts.

Targets get a percentage hint (``99.9`` means ``0.999``) and their budget is
computed in decimal; counts are Prometheus-style non-negative floats.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from perfprim import _validate as v
from perfprim.exceptions import ConfigurationError

__all__ = [
    "budget_of",
    "check_count",
    "check_counts",
    "check_pairs",
    "check_ratio",
    "check_target",
]


def check_target(target: object, name: str = "target") -> float:
    """Validate an SLO target given as a ratio in (0, 1]; a percentage gets the ratio to pass."""
    value = v.number(target, name, hint="a ratio such as 0.999 for 99.9%")
    if 1 < value <= 100:
        msg = (
            f"{name}={target!r} looks like a percentage: pass the ratio "
            f"{float(Decimal(repr(value)) / 100)!r} instead (99.9% is target=0.999)"
        )
        raise ConfigurationError(msg)
    return v.number(value, name, low=0.0, high=1.0, low_open=True, hint="such as 0.999 for 99.9%")


def budget_of(target: float) -> float:
    """Return ``1 - target`` computed in decimal, so 0.999 gives exactly 0.001.

    In binary floating point ``1 - 0.999`` is 0.0010000000000000009; the user
    wrote 0.999 and means a budget of 0.001, so the subtraction is done on the
    decimal text of the target.
    """
    return float(Decimal(1) - Decimal(repr(target)))


def check_ratio(value: object, name: str) -> float:
    """Validate a ratio in [0, 1] (an error ratio, an SLI, a budget fraction)."""
    return v.ratio(value, name)


def check_count(value: float, name: str) -> float:
    """Validate an event count: a non-negative finite number (Prometheus counts are floats)."""
    try:
        v.number(value, name, low=0.0)
    except ConfigurationError:
        raise v.fail(name, "a non-negative, finite event count", value) from None
    return value  # an int stays an int: counts print as given


def check_counts(good: float, total: float) -> tuple[float, float]:
    """Validate a (good, total) pair: both counts, and ``good <= total``."""
    good_ = check_count(good, "good")
    total_ = check_count(total, "total")
    if good_ > total_:
        msg = (
            f"good={good!r} exceeds total={total!r}: pass total as the count of all "
            "events (good plus bad), not the count of bad ones"
        )
        raise ConfigurationError(msg)
    return good_, total_


def check_pairs(slices: object) -> list[tuple[float, float]]:
    """Validate an iterable of ``(good, total)`` pairs, one per time slice."""
    if isinstance(slices, (str, bytes)) or not isinstance(slices, Iterable):
        raise v.fail("slices", "an iterable of (good, total) pairs", slices)
    pairs = []
    for index, pair in enumerate(slices):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise v.fail(f"slices[{index}]", "a (good, total) pair", pair)
        pairs.append(check_counts(pair[0], pair[1]))
    return pairs
