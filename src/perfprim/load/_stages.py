"""Stages: the offered request rate over time, as a list of linear pieces.

A :class:`Stage` lasts ``duration`` seconds and ends at ``rate`` requests per
second. The first stage holds its own rate; every later stage ramps linearly
from the previous stage's rate to its own (k6's ``ramping-arrival-rate``
with the start rate taken from the first stage). A zero-length stage sets the
rate the next stage ramps from: ``[Stage(0, 0), Stage(60, 100)]`` ramps from
0 to 100 requests per second over a minute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError

__all__ = ["Stage", "check_stages"]

MAX_RATE = 10_000_000.0
"""Requests per second above this are refused as a typo (no driver reaches it)."""


@dataclass(frozen=True, slots=True)
class Stage:
    """One piece of a load profile: ``duration`` seconds ending at ``rate`` requests/s.

    Args:
        duration: Seconds (float) or a ``timedelta``; 0 only to set the rate
            the next stage ramps from.
        rate: Requests per second at the end of the stage, ``>= 0``.

    Raises:
        ConfigurationError: If the duration or rate is negative or not finite.

    Example:
        >>> Stage(duration=30, rate=200)
        Stage(duration=30.0, rate=200.0)
    """

    duration: float
    rate: float

    def __init__(self, duration: float | timedelta, rate: float) -> None:
        seconds = to_seconds(duration, name="Stage duration", allow_zero=True, example="30 or 0.5")
        raw: object = rate
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            msg = f"Stage rate must be a number of requests per second >= 0, got {rate!r}"
            raise ConfigurationError(msg)
        if not 0.0 <= raw <= MAX_RATE:  # also refuses NaN and infinity
            msg = (
                f"Stage rate must be in [0, {MAX_RATE:g}] requests per second, got {rate!r}; "
                "pass rate=200 for 200 requests per second"
            )
            raise ConfigurationError(msg)
        object.__setattr__(self, "duration", seconds)
        object.__setattr__(self, "rate", float(raw))


def check_stages(stages: Iterable[Stage]) -> tuple[Stage, ...]:
    """Validate a stage list: at least one stage, all :class:`Stage`, some time and some load.

    Args:
        stages: The stages, in order.

    Returns:
        The stages as a tuple.

    Raises:
        ConfigurationError: If the list is empty, holds something else than
            stages, lasts no time, or plans no request at all.
    """
    if isinstance(stages, Stage):
        stages = (stages,)
    try:
        result = tuple(stages)
    except TypeError as exc:
        msg = f"stages must be a list of Stage objects, got {stages!r}"
        raise ConfigurationError(msg) from exc
    items: tuple[object, ...] = result  # checked at runtime: callers may not be type-checked
    for stage in items:
        if not isinstance(stage, Stage):
            msg = (
                f"stages must hold Stage objects, got {stage!r}; "
                "write stages=[Stage(duration=30, rate=100)]"
            )
            raise ConfigurationError(msg)
    if not result or math.fsum(s.duration for s in result) <= 0.0:
        msg = "stages must last some time: give at least one Stage with a duration > 0"
        raise ConfigurationError(msg)
    if all(s.rate == 0.0 for s in result):
        msg = "every stage has rate 0, so no request would be sent: give a rate > 0"
        raise ConfigurationError(msg)
    return result
