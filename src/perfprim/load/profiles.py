"""Named load profiles for the usual test types: each returns a list of :class:`Stage`.

The names follow the test types performance engineers use (and k6's guides):

- :func:`smoke`: a trickle, to check the script and the target work;
- :func:`load`: ramp up to the expected rate, hold it, ramp down;
- :func:`stress`: climb in steps up to (and past) the expected rate;
- :func:`soak`: the expected rate held for a long time (leaks, drift);
- :func:`spike`: a sudden jump far above the base rate and back.

>>> from perfprim.load import profiles
>>> profiles.load(rate=100, duration=60, ramp=10)
[Stage(duration=0.0, rate=0.0), Stage(duration=10.0, rate=100.0), \
Stage(duration=60.0, rate=100.0), Stage(duration=10.0, rate=0.0)]
>>> profiles.by_name("smoke")
[Stage(duration=30.0, rate=2.0)]
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError
from perfprim.load._stages import Stage

__all__ = ["NAMES", "by_name", "load", "smoke", "soak", "spike", "stress"]

Duration = float | timedelta


def _s(value: Duration, name: str) -> float:
    return to_seconds(value, name=name, allow_zero=True)


def smoke(*, rate: float = 2.0, duration: Duration = 30.0) -> list[Stage]:
    """A trickle of ``rate`` requests/s for ``duration``: does it work at all?

    Args:
        rate: Requests per second.
        duration: Seconds.

    Returns:
        The stages.
    """
    return [Stage(duration, rate)]


def load(*, rate: float, duration: Duration = 300.0, ramp: Duration = 30.0) -> list[Stage]:
    """Ramp from 0 to ``rate`` over ``ramp``, hold for ``duration``, ramp down over ``ramp``.

    Args:
        rate: The expected (average) rate, requests per second.
        duration: Seconds at full rate.
        ramp: Seconds of each ramp.

    Returns:
        The stages.
    """
    ramp_s = _s(ramp, "ramp")
    return [Stage(0, 0), Stage(ramp_s, rate), Stage(duration, rate), Stage(ramp_s, 0)]


def stress(
    *,
    rate: float,
    steps: int = 4,
    step: Duration = 60.0,
    ramp: Duration = 10.0,
    overshoot: float = 1.5,
) -> list[Stage]:
    """Climb in ``steps`` equal steps up to ``rate * overshoot``, holding each, then ramp down.

    Args:
        rate: The expected rate, requests per second.
        steps: Number of steps (>= 1).
        step: Seconds held at each step.
        ramp: Seconds between steps.
        overshoot: How far past ``rate`` the last step goes (1.5 = 150%).

    Returns:
        The stages.

    Raises:
        ConfigurationError: If ``steps`` < 1 or ``overshoot`` < 1.
    """
    raw: object = steps  # checked at runtime: callers may not be type-checked
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        msg = f"steps must be an int >= 1, got {steps!r}"
        raise ConfigurationError(msg)
    if not overshoot >= 1.0:
        msg = f"overshoot must be >= 1 (1.5 climbs to 150% of rate), got {overshoot!r}"
        raise ConfigurationError(msg)
    ramp_s = _s(ramp, "ramp")
    top = rate * overshoot
    stages = [Stage(0, 0)]
    for k in range(1, steps + 1):
        level = top * k / steps
        stages += [Stage(ramp_s, level), Stage(step, level)]
    stages.append(Stage(ramp_s, 0))
    return stages


def soak(*, rate: float, duration: Duration = 3600.0, ramp: Duration = 60.0) -> list[Stage]:
    """Hold ``rate`` for a long ``duration`` (an hour by default), with gentle ramps.

    Args:
        rate: Requests per second.
        duration: Seconds at full rate.
        ramp: Seconds of each ramp.

    Returns:
        The stages.
    """
    return load(rate=rate, duration=duration, ramp=ramp)


def spike(
    *,
    base: float,
    peak: float,
    before: Duration = 30.0,
    hold: Duration = 10.0,
    after: Duration = 30.0,
) -> list[Stage]:
    """Run at ``base``, jump at once to ``peak`` for ``hold``, drop back and watch recovery.

    Args:
        base: Normal rate, requests per second.
        peak: Spike rate.
        before: Seconds at ``base`` before the spike.
        hold: Seconds at ``peak``.
        after: Seconds at ``base`` after the spike.

    Returns:
        The stages.
    """
    return [
        Stage(before, base),
        Stage(0, peak),
        Stage(hold, peak),
        Stage(0, base),
        Stage(after, base),
    ]


_PROFILES: dict[str, Callable[..., list[Stage]]] = {
    "load": load,
    "smoke": smoke,
    "soak": soak,
    "spike": spike,
    "stress": stress,
}
NAMES = tuple(sorted(_PROFILES))
"""The profile names :func:`by_name` knows."""


def by_name(name: str, **options: object) -> list[Stage]:
    """Build a named profile (for a command line's ``--profile stress --rate 500``).

    Args:
        name: One of :data:`NAMES`.
        **options: The profile function's keyword options.

    Returns:
        The stages.

    Raises:
        ConfigurationError: For an unknown name or options the profile does not take.
    """
    try:
        factory = _PROFILES[name]
    except KeyError:
        msg = f"unknown load profile {name!r}: choose one of {', '.join(NAMES)}"
        raise ConfigurationError(msg) from None
    try:
        return factory(**options)
    except TypeError as exc:
        msg = f"profile {name!r}: {exc}; see help(perfprim.load.profiles.{name})"
        raise ConfigurationError(msg) from exc
