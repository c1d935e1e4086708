"""The one converter for duration options: float seconds or ``timedelta`` to float seconds.

STYLE.md: durations are float seconds, a :class:`~datetime.timedelta` is
accepted at the API boundary and converted once. Every module converts and
validates its duration options here, so that all of them accept the same
forms and fail with the same kind of message.
"""

from __future__ import annotations

import math
from datetime import timedelta

from perfprim.exceptions import ConfigurationError

__all__ = ["to_seconds"]

_REAL = (int, float)


def to_seconds(
    value: float | timedelta,
    *,
    name: str,
    allow_zero: bool = False,
    example: str = "",
) -> float:
    """Convert a duration option to float seconds, validating it.

    The duration must be finite, and positive unless ``allow_zero``; infinity
    is refused because every duration option bounds a wait or a window. A
    plain positive finite ``float`` takes a fast path (two checks) for the
    call sites on query paths. An ``int`` too large for a float (``10**400``)
    is refused like infinity, never an ``OverflowError``.

    Args:
        value: Seconds as an ``int`` or ``float`` (``bool`` is refused), or a
            :class:`~datetime.timedelta`.
        name: The option's name, for the error message.
        allow_zero: Whether ``0`` is a valid value.
        example: A hint appended to the error message, such as
            ``"1e-3 = milliseconds"``.

    Returns:
        The duration in seconds, as a ``float``.

    Raises:
        ConfigurationError: If ``value`` is not a number of seconds or a
            ``timedelta``, is NaN, or is outside the allowed range; the
            message names the option and the valid form.

    >>> to_seconds(0.25, name="ttl")
    0.25
    >>> to_seconds(timedelta(milliseconds=1500), name="ttl")
    1.5
    >>> to_seconds(0, name="ttl")
    Traceback (most recent call last):
    ...
    perfprim.exceptions.ConfigurationError: ttl must be a positive, finite duration \
(float seconds or a timedelta), got 0
    """
    if value.__class__ is float and 0 < value < math.inf:  # fast path
        return value
    raw: object = value  # checked at runtime: callers may not be type-checked
    if isinstance(raw, timedelta):
        seconds = raw.total_seconds()
    elif isinstance(raw, _REAL) and not isinstance(raw, bool):
        try:
            seconds = float(raw)
        except OverflowError:  # an int beyond the float range, such as 10**400
            seconds = math.inf
    else:
        raise ConfigurationError(_message(name, allow_zero, example, raw))
    if 0 < seconds < math.inf or (seconds == 0 and allow_zero):
        return seconds
    raise ConfigurationError(_message(name, allow_zero, example, raw))


def _message(name: str, allow_zero: bool, example: str, value: object) -> str:
    """The error message: what ``name`` must be, what it got, and an optional hint."""
    bound = "non-negative, finite" if allow_zero else "positive, finite"
    from perfprim._validate import show

    hint = f"; e.g. {example}" if example else ""
    return (
        f"{name} must be a {bound} duration (float seconds or a timedelta), got {show(value)}{hint}"
    )
