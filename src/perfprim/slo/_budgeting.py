"""Budgeting methods as the OpenSLO v1 spec defines them.

- ``Occurrences``: SLI = good events / all events over the window.
- ``Timeslices``: the window is cut into slices of ``slice_duration``; a slice
  is good when its own ratio reaches ``slice_target``; SLI = good slices / slices.
- ``RatioTimeslices``: SLI = the mean of the slices' own ratios.

Slices without any event carry no information and are left out (zero traffic
spends no budget, as for occurrences). Each method maps a sequence of
per-slice ``(good, total)`` counts to an SLI; the error budget consumed is then
``(1 - SLI) / (1 - target)`` for every method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError
from perfprim.slo._validate import check_counts, check_pairs, check_ratio

__all__ = ["BudgetingMethod", "Occurrences", "RatioTimeslices", "Timeslices"]


@dataclass(frozen=True, slots=True)
class Occurrences:
    """OpenSLO ``Occurrences``: every event counts the same."""

    def sli(self, slices: Iterable[tuple[float, float]]) -> float | None:
        """Return good / total summed over all slices, or None without traffic.

        Args:
            slices: ``(good, total)`` counts, one pair per slice (or one pair).

        Returns:
            The SLI, or None when there were no events.

        Raises:
            ConfigurationError: If a pair is negative or has ``good > total``.
        """
        good_sum = 0.0
        total_sum = 0.0
        for good, total in check_pairs(slices):
            good_sum += good
            total_sum += total
        return None if total_sum == 0 else good_sum / total_sum


class Timeslices:
    """OpenSLO ``Timeslices``: the share of slices whose own ratio meets ``slice_target``.

    Args:
        slice_target: The ratio a slice must reach to be good (OpenSLO
            ``timeSliceTarget``), in (0, 1].
        slice_duration: The slice length (OpenSLO ``timeSliceWindow``), float
            seconds or ``timedelta``.

    Raises:
        ConfigurationError: If either value is out of range.
    """

    __slots__ = ("slice_duration", "slice_target")

    slice_target: float
    slice_duration: float

    def __init__(self, *, slice_target: float, slice_duration: float | timedelta) -> None:
        target = check_ratio(slice_target, "slice_target")
        if target == 0:
            msg = "slice_target must be above 0 (0.95: a slice is good when 95% of it is good)"
            raise ConfigurationError(msg)
        object.__setattr__(self, "slice_target", target)
        object.__setattr__(
            self, "slice_duration", to_seconds(slice_duration, name="slice_duration")
        )

    def __setattr__(self, name: str, value: object) -> None:
        msg = "Timeslices is immutable"
        raise AttributeError(msg)

    def __repr__(self) -> str:
        return (
            f"Timeslices(slice_target={self.slice_target!r}, "
            f"slice_duration={self.slice_duration!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timeslices):
            return NotImplemented
        return (self.slice_target, self.slice_duration) == (
            other.slice_target,
            other.slice_duration,
        )

    def __hash__(self) -> int:
        return hash((self.slice_target, self.slice_duration))

    def sli(self, slices: Iterable[tuple[float, float]]) -> float | None:
        """Return good slices / slices with traffic, or None when no slice had any.

        Args:
            slices: ``(good, total)`` counts, one pair per slice.

        Returns:
            The SLI, or None when no slice had events.

        Raises:
            ConfigurationError: If a pair is negative or has ``good > total``.
        """
        return _mean_over_slices(slices, self.slice_value)

    def slice_value(self, good: float, total: float) -> float:
        """1.0 for a good slice (``good / total >= slice_target``), else 0.0.

        Args:
            good: Good events in the slice.
            total: All events in the slice, above 0.

        Returns:
            The slice's share in the SLI's numerator.

        Raises:
            ConfigurationError: If the counts are negative, NaN, ``good >
                total`` or ``total`` is 0 (a slice without events has no value).
        """
        good, total = _slice_counts(good, total)
        return 1.0 if good / total >= self.slice_target else 0.0


class RatioTimeslices:
    """OpenSLO ``RatioTimeslices``: the mean of the slices' own good/total ratios.

    Args:
        slice_duration: The slice length (OpenSLO ``timeSliceWindow``), float
            seconds or ``timedelta``.

    Raises:
        ConfigurationError: If the duration is not positive.
    """

    __slots__ = ("slice_duration",)

    slice_duration: float

    def __init__(self, *, slice_duration: float | timedelta) -> None:
        object.__setattr__(
            self, "slice_duration", to_seconds(slice_duration, name="slice_duration")
        )

    def __setattr__(self, name: str, value: object) -> None:
        msg = "RatioTimeslices is immutable"
        raise AttributeError(msg)

    def __repr__(self) -> str:
        return f"RatioTimeslices(slice_duration={self.slice_duration!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RatioTimeslices):
            return NotImplemented
        return self.slice_duration == other.slice_duration

    def __hash__(self) -> int:
        return hash(("RatioTimeslices", self.slice_duration))

    def sli(self, slices: Iterable[tuple[float, float]]) -> float | None:
        """Return the mean of good/total over slices with traffic, or None.

        Args:
            slices: ``(good, total)`` counts, one pair per slice.

        Returns:
            The SLI, or None when no slice had events.

        Raises:
            ConfigurationError: If a pair is negative or has ``good > total``.
        """
        return _mean_over_slices(slices, self.slice_value)

    def slice_value(self, good: float, total: float) -> float:
        """The slice's own ratio, ``good / total``.

        Args:
            good: Good events in the slice.
            total: All events in the slice, above 0.

        Returns:
            The slice's share in the SLI's numerator.

        Raises:
            ConfigurationError: If the counts are negative, NaN, ``good >
                total`` or ``total`` is 0 (a slice without events has no value).
        """
        good, total = _slice_counts(good, total)
        return good / total


def _slice_counts(good: float, total: float) -> tuple[float, float]:
    good, total = check_counts(good, total)
    if total == 0:
        msg = "a slice without events (total=0) has no value: leave it out"
        raise ConfigurationError(msg)
    return good, total


def _mean_over_slices(
    slices: Iterable[tuple[float, float]], slice_value: Callable[[float, float], float]
) -> float | None:
    """Mean of ``slice_value(good, total)`` over the slices with traffic, or None."""
    value_sum = 0.0
    counted = 0
    for good, total in check_pairs(slices):
        if total == 0:
            continue
        counted += 1
        value_sum += slice_value(good, total)
    return None if counted == 0 else value_sum / counted


BudgetingMethod = Occurrences | Timeslices | RatioTimeslices
"""Any of the three OpenSLO budgeting methods."""
