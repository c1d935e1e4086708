"""Little's law: ``L = lambda W`` (J. D. C. Little, Operations Research 9(3), 1961)."""

from __future__ import annotations

from datetime import timedelta

from perfprim.capacity._validate import non_negative, positive, seconds
from perfprim.exceptions import ConfigurationError

__all__ = ["littles_law"]


def littles_law(
    *,
    concurrency: float | None = None,
    arrival_rate: float | None = None,
    latency: float | timedelta | None = None,
) -> float:
    """Given any two of concurrency, arrival rate and latency, return the third.

    ``concurrency = arrival_rate x latency`` holds for any stable system in
    the long run, whatever the arrival and service distributions.

    Args:
        concurrency: Mean number in the system ``L`` (requests in flight), ``>= 0``.
        arrival_rate: Mean arrival (= completion) rate ``lambda``, per second, ``>= 0``.
        latency: Mean time in the system ``W``, in seconds (``timedelta``
            accepted), ``>= 0``.

    Returns:
        The missing quantity: concurrency, arrivals per second, or seconds.

    Raises:
        ConfigurationError: Unless exactly two are given, for negative
            values, or when solving would divide by zero.
    """
    given = [v is not None for v in (concurrency, arrival_rate, latency)]
    if sum(given) != 2:
        msg = (
            "littles_law needs exactly two of concurrency, arrival_rate and latency "
            f"(got {sum(given)}); it returns the third"
        )
        raise ConfigurationError(msg)
    if concurrency is None:
        assert arrival_rate is not None
        assert latency is not None
        return non_negative(arrival_rate, "arrival_rate") * non_negative(
            seconds(latency, "latency"), "latency"
        )
    l_value = non_negative(concurrency, "concurrency")
    if arrival_rate is None:
        assert latency is not None
        return l_value / positive(seconds(latency, "latency"), "latency")
    return l_value / positive(arrival_rate, "arrival_rate")
