"""Argument checks shared by the capacity modules: fail fast, say what to pass."""

from __future__ import annotations

import math
from datetime import timedelta

from perfprim.exceptions import ConfigurationError

__all__ = [
    "finite",
    "fraction",
    "non_negative",
    "positive",
    "seconds",
    "whole",
]


def finite(value: object, name: str) -> float:
    """Return ``value`` as a finite float or raise :class:`ConfigurationError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{name} must be a number, got {value!r}"
        raise ConfigurationError(msg)
    result = float(value)
    if not math.isfinite(result):
        msg = f"{name} must be finite, got {value!r}"
        raise ConfigurationError(msg)
    return result


def positive(value: object, name: str) -> float:
    """Return ``value`` as a float > 0 or raise :class:`ConfigurationError`."""
    result = finite(value, name)
    if result <= 0.0:
        msg = f"{name} must be > 0, got {value!r}"
        raise ConfigurationError(msg)
    return result


def non_negative(value: object, name: str) -> float:
    """Return ``value`` as a float >= 0 or raise :class:`ConfigurationError`."""
    result = finite(value, name)
    if result < 0.0:
        msg = f"{name} must be >= 0 (a negative {name} has no meaning here), got {value!r}"
        raise ConfigurationError(msg)
    return result


def fraction(value: object, name: str, *, allow_one: bool = True) -> float:
    """Return ``value`` as a float in (0, 1] (or (0, 1)) or raise."""
    result = finite(value, name)
    upper_ok = result <= 1.0 if allow_one else result < 1.0
    if not (result > 0.0 and upper_ok):
        interval = "(0, 1]" if allow_one else "(0, 1)"
        msg = f"{name} must be a fraction in {interval} (0.8 means 80%), got {value!r}"
        raise ConfigurationError(msg)
    return result


def seconds(value: object, name: str) -> float:
    """Return a duration in float seconds; a :class:`~datetime.timedelta` is converted."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return finite(value, name)


def whole(value: object, name: str, *, minimum: int) -> int:
    """Return ``value`` as an int >= ``minimum`` or raise :class:`ConfigurationError`."""
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name} must be an int >= {minimum}, got {value!r}"
        raise ConfigurationError(msg)
    if value < minimum:
        msg = f"{name} must be >= {minimum}, got {value!r}"
        raise ConfigurationError(msg)
    return value
