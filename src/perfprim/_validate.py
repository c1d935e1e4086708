"""Argument checks at the public boundary, shared by every perfprim module.

Each check takes the value as the caller passed it, the argument's name, and
returns the value in its one canonical form (a ``float``, an ``int``, a
``bool``, a ``str``), or raises :class:`~perfprim.exceptions.ConfigurationError`
(a ``ValueError``) whose message names the argument, shows the value and
says what to pass instead. The rules are the same everywhere:

- ``bool`` is not a number: ``True`` is refused where a number is expected
  (it would silently count as 1).
- Numbers are ``int`` or ``float`` (and their subclasses, so ``numpy.float64``
  passes); strings, ``None``, containers and ``Decimal`` are refused rather
  than coerced.
- NaN is refused everywhere; infinity is refused unless the check says it is
  allowed.
- An ``int`` too large for a float (``10**400``) is refused with the range it
  must fit, never an ``OverflowError``.

Usage::

    from perfprim import _validate as v

    ttl = v.positive(ttl, "ttl")                       # float in (0, inf)
    ratio = v.number(x, "x", low=0, high=1)           # float in [0, 1]
    servers = v.integer(n, "servers", low=1, high=10**7)
    clamp = v.boolean(clamp, "clamp")
    model = v.choice(model, "model", ("compound", "linear"))

Durations (float seconds or ``timedelta``) are checked by
:func:`perfprim._durations.to_seconds`, re-exported here as :func:`duration`.
Messages show at most :data:`MAX_REPR` characters of the value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError

__all__ = [
    "MAX_REPR",
    "boolean",
    "callable_",
    "choice",
    "duration",
    "fail",
    "finite",
    "finite_result",
    "fraction",
    "instance",
    "integer",
    "non_negative",
    "number",
    "numbers",
    "positive",
    "ratio",
    "show",
    "text",
]

T = TypeVar("T")

MAX_REPR = 80
"""Longest shown value in a message; longer reprs are cut with ``...``."""

duration = to_seconds
"""Float seconds or ``timedelta`` to float seconds (see :func:`perfprim._durations.to_seconds`)."""


def show(value: object) -> str:
    """Return ``repr(value)``, cut to :data:`MAX_REPR` characters (a file's worth is no help)."""
    try:
        text_ = repr(value)
    except Exception:
        text_ = f"<{type(value).__name__} object>"
    if len(text_) > MAX_REPR:
        text_ = text_[: MAX_REPR - 3] + "..."
    return text_


def fail(name: str, requirement: str, value: object, hint: str = "") -> ConfigurationError:
    """Build the error: ``"<name> must be <requirement>, got <value>[; <hint>]"``.

    Args:
        name: The argument's name as the caller wrote it.
        requirement: What it must be ("a number in [0, 1]").
        value: What it was.
        hint: What to do, appended after a semicolon.

    Returns:
        The exception, for the caller to raise.
    """
    tail = f"; {hint}" if hint else ""
    return ConfigurationError(f"{name} must be {requirement}, got {show(value)}{tail}")


def _interval(
    low: float | None, high: float | None, low_open: bool, high_open: bool, finite: bool
) -> str:
    kind = "a finite number" if finite else "a number"
    if low is None and high is None:
        return kind
    if high is None:
        return f"{kind} {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"{kind} {'<' if high_open else '<='} {high:g}"
    return f"{kind} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def number(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
    hint: str = "",
) -> float:
    """Return ``value`` as a float in the given range, or raise.

    Args:
        value: The argument as passed.
        name: Its name, for the message.
        low: Lower bound (None: unbounded).
        high: Upper bound (None: unbounded).
        low_open: Exclude ``low`` itself.
        high_open: Exclude ``high`` itself.
        allow_inf: Accept an infinity that the bounds allow.
        hint: What to do, appended to the message.

    Returns:
        The value as a ``float``.

    Raises:
        ConfigurationError: If it is not a real number (``bool`` included),
            is NaN, infinite (unless allowed), too large for a float, or
            outside the range.
    """
    requirement = _interval(low, high, low_open, high_open, not allow_inf)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(name, requirement, value, hint)
    try:
        result = float(value)
    except OverflowError:
        raise fail(name, requirement + " (it does not fit a float)", value, hint) from None
    if math.isnan(result) or (math.isinf(result) and not allow_inf):
        raise fail(name, requirement, value, hint)
    if low is not None and (result < low or (low_open and result == low)):
        raise fail(name, requirement, value, hint)
    if high is not None and (result > high or (high_open and result == high)):
        raise fail(name, requirement, value, hint)
    return result


def positive(value: object, name: str, *, hint: str = "") -> float:
    """Return ``value`` as a finite float > 0, or raise (see :func:`number`)."""
    return number(value, name, low=0.0, low_open=True, hint=hint)


def non_negative(value: object, name: str, *, hint: str = "") -> float:
    """Return ``value`` as a finite float >= 0, or raise (see :func:`number`)."""
    return number(value, name, low=0.0, hint=hint)


def finite(value: object, name: str, *, hint: str = "") -> float:
    """Return ``value`` as a finite float of any sign, or raise (see :func:`number`)."""
    return number(value, name, hint=hint)


def fraction(value: object, name: str, *, allow_one: bool = True) -> float:
    """Return ``value`` as a float in (0, 1] (or (0, 1) without ``allow_one``), or raise."""
    return number(
        value, name, low=0.0, high=1.0, low_open=True, high_open=not allow_one,
        hint="0.8 means 80%",
    )  # fmt: skip


def ratio(value: object, name: str, *, hint: str = "") -> float:
    """Return ``value`` as a float in [0, 1] (an error ratio, an SLI), or raise."""
    return number(value, name, low=0.0, high=1.0, hint=hint)


def integer(
    value: object,
    name: str,
    *,
    low: int | None = None,
    high: int | None = None,
    hint: str = "",
) -> int:
    """Return ``value`` as an ``int`` in ``[low, high]``, or raise.

    Floats are refused, even integral ones (``3.0``): a count or a number of
    servers is written as an int. ``bool`` is refused.

    Args:
        value: The argument as passed.
        name: Its name, for the message.
        low: Smallest allowed value (None: unbounded).
        high: Largest allowed value (None: unbounded).
        hint: What to do, appended to the message.

    Returns:
        The value as an ``int``.

    Raises:
        ConfigurationError: If it is not an ``int`` or is out of range.
    """
    if low is not None and high is not None:
        requirement = f"an int in [{low}, {high}]"
    elif low is not None:
        requirement = f"an int >= {low}"
    elif high is not None:
        requirement = f"an int <= {high}"
    else:
        requirement = "an int"
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(name, requirement, value, hint)
    if (low is not None and value < low) or (high is not None and value > high):
        raise fail(name, requirement, value, hint)
    return int(value)


def boolean(value: object, name: str) -> bool:
    """Return ``value`` if it is ``True`` or ``False``, or raise (``"abc"`` is not a flag)."""
    if value is True or value is False:
        return value
    raise fail(name, "True or False", value)


def text(value: object, name: str, *, allow_empty: bool = False, hint: str = "") -> str:
    """Return ``value`` if it is a ``str`` (non-empty unless allowed), or raise."""
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise fail(name, "a string" if allow_empty else "a non-empty string", value, hint)
    return value


def choice(value: object, name: str, choices: Sequence[T]) -> T:
    """Return the element of ``choices`` equal to ``value``, or raise listing them."""
    for option in choices:
        if type(value) is type(option) and value == option:
            return option
    listed = ", ".join(repr(c) for c in choices)
    raise fail(name, f"one of {listed}", value)


def instance(value: object, name: str, cls: type[T] | tuple[type[T], ...], what: str) -> T:
    """Return ``value`` if it is an instance of ``cls`` (not the class itself), or raise.

    Args:
        value: The argument as passed.
        name: Its name.
        cls: The accepted type(s).
        what: How to describe it to the user ("a LatencyHistogram").

    Returns:
        The value.

    Raises:
        ConfigurationError: If it is not an instance; passing the class
            itself gets a hint to call it.
    """
    if isinstance(value, cls):
        return value
    hint = ""
    if isinstance(value, type):
        hint = f"pass an instance, {value.__name__}(...), not the class"
    raise fail(name, what, value, hint)


def callable_(value: object, name: str, *, what: str = "a callable") -> Callable[..., Any]:
    """Return ``value`` if it is callable, or raise."""
    if callable(value):
        return value
    raise fail(name, what, value)


def finite_result(value: float, what: str) -> float:
    """Return a computed ``value`` if finite, or raise: the inputs overflowed a float.

    Args:
        value: The result of a computation on checked inputs.
        what: What it is ("the load at the ceiling").

    Returns:
        The value.

    Raises:
        ConfigurationError: If it is infinite or NaN.
    """
    if math.isfinite(value):
        return value
    msg = f"{what} is beyond the float range ({value!r}): the inputs are too large or too small"
    raise ConfigurationError(msg)


def numbers(
    values: object,
    name: str,
    check: Callable[[object, str], float],
) -> list[float]:
    """Check every element of an iterable of numbers; the message names the element.

    Args:
        values: An iterable (a string or bytes is refused, not iterated).
        name: The argument's name; elements are named ``name[i]``.
        check: The check for one element, e.g. :func:`positive`.

    Returns:
        The checked elements as a list.

    Raises:
        ConfigurationError: If ``values`` is not iterable or an element fails.
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise fail(name, "an iterable of numbers", values)
    return [check(item, f"{name}[{index}]") for index, item in enumerate(values)]
