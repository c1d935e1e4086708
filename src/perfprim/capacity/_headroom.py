"""Headroom: how much load fits under a utilization ceiling."""

from __future__ import annotations

from perfprim._validate import finite_result, fraction, positive
from perfprim.exceptions import ConfigurationError

__all__ = ["headroom"]


def headroom(*, current_load: float, current_utilization: float, ceiling: float) -> float:
    """Return the load the system can take before its utilization reaches ``ceiling``.

    ``current_load x ceiling / current_utilization``: utilization is assumed
    to grow in proportion to the load (the utilization law ``U = X S``, with
    a constant service demand ``S``). Subtract ``current_load`` for the
    headroom in load units; divide by it for the growth factor left.

    Args:
        current_load: The load now (requests per second, users, ...), ``> 0``.
        current_utilization: The utilization at that load, in (0, 1].
        ceiling: The highest utilization you are willing to run at, in (0, 1],
            at least ``current_utilization`` (e.g. 0.7 to stay below the knee).

    Returns:
        The load at ``ceiling``, in the unit of ``current_load``.

    Raises:
        ConfigurationError: For a non-positive load, a utilization or
            ceiling outside (0, 1], a ceiling below the current utilization,
            or an answer beyond the float range.
    """
    load = positive(current_load, "current_load")
    utilization = fraction(current_utilization, "current_utilization")
    top = fraction(ceiling, "ceiling")
    if top < utilization:
        msg = (
            f"ceiling {ceiling!r} is below the current utilization {current_utilization!r}: "
            "the system is already over its ceiling. Raise the ceiling or add capacity first."
        )
        raise ConfigurationError(msg)
    return finite_result(load * (top / utilization), "the load at the ceiling")
