"""Little's law: ``L = lambda W`` (J. D. C. Little, Operations Research 9(3), 1961)."""

from __future__ import annotations

from datetime import timedelta

from perfprim._durations import to_seconds
from perfprim._validate import finite_result, non_negative, positive
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
            values, when solving would divide by zero, or for an answer
            beyond the float range.
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
        rate = non_negative(arrival_rate, "arrival_rate")
        wait = to_seconds(latency, name="latency", allow_zero=True)
        return finite_result(rate * wait, "concurrency")
    l_value = non_negative(concurrency, "concurrency")
    if arrival_rate is None:
        assert latency is not None
        return finite_result(l_value / to_seconds(latency, name="latency"), "arrival_rate")
    return finite_result(l_value / positive(arrival_rate, "arrival_rate"), "latency")
