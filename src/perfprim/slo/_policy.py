"""Multiwindow, multi-burn-rate alerting policy (Google SRE Workbook, "Alerting on SLOs").

A policy row says: alert with ``severity`` when ``budget_fraction`` of the SLO
window's error budget burns within ``long_window``, and the burn is still going
on over ``short_window``. The burn rate of a row follows from the SLO window::

    burn_rate = budget_fraction * slo_window / long_window

so for a 30-day window the default rows give 14.4, 6, 3 and 1, and for a
28-day window 13.44, 5.6, 2.8 and 0.93 (the Workbook prints rounded figures;
these are computed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from perfprim.exceptions import ConfigurationError
from perfprim.slo._validate import check_ratio, seconds

__all__ = ["DEFAULT_POLICY", "AlertRule", "AlertWindow"]


def _nonempty(value: object) -> bool:
    return isinstance(value, str) and bool(value)


class AlertRule:
    """One row of an alerting policy, independent of the SLO window.

    Args:
        severity: Label of the alert, e.g. ``"page"`` or ``"ticket"``.
        budget_fraction: Share of the whole error budget, in (0, 1], whose
            burn within ``long_window`` fires the alert (0.02 for 2%).
        long_window: The window over which that share burns (float seconds or
            ``timedelta``).
        short_window: The control window, shorter than ``long_window``
            (the Workbook uses 1/12 of it), that makes the alert reset soon
            after the burn stops.

    Raises:
        ConfigurationError: If a value is out of range or ``short_window`` is
            not shorter than ``long_window``.
    """

    __slots__ = ("budget_fraction", "long_window", "severity", "short_window")

    severity: str
    budget_fraction: float
    long_window: float
    short_window: float

    def __init__(
        self,
        *,
        severity: str,
        budget_fraction: float,
        long_window: float | timedelta,
        short_window: float | timedelta,
    ) -> None:
        if not _nonempty(severity):
            msg = f"severity must be a non-empty string such as 'page', got {severity!r}"
            raise ConfigurationError(msg)
        fraction = check_ratio(budget_fraction, "budget_fraction")
        if fraction == 0:
            msg = "budget_fraction must be above 0 (0.02 means 2% of the error budget)"
            raise ConfigurationError(msg)
        long_s = seconds(long_window, "long_window")
        short_s = seconds(short_window, "short_window")
        if short_s >= long_s:
            msg = (
                f"short_window ({short_s:g} s) must be shorter than long_window "
                f"({long_s:g} s); the Workbook uses long_window / 12"
            )
            raise ConfigurationError(msg)
        object.__setattr__(self, "severity", severity)
        object.__setattr__(self, "budget_fraction", fraction)
        object.__setattr__(self, "long_window", long_s)
        object.__setattr__(self, "short_window", short_s)

    def __setattr__(self, name: str, value: object) -> None:
        msg = "AlertRule is immutable"
        raise AttributeError(msg)

    def __repr__(self) -> str:
        return (
            f"AlertRule(severity={self.severity!r}, budget_fraction={self.budget_fraction!r}, "
            f"long_window={self.long_window!r}, short_window={self.short_window!r})"
        )

    def _key(self) -> tuple[str, float, float, float]:
        return (self.severity, self.budget_fraction, self.long_window, self.short_window)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AlertRule):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def window_for(self, slo_window: float) -> AlertWindow:
        """Return this row as an :class:`AlertWindow` for an SLO window.

        Args:
            slo_window: The SLO window in seconds.

        Returns:
            The row with its burn rate, ``budget_fraction * slo_window / long_window``.

        Raises:
            ConfigurationError: If ``long_window`` is longer than the SLO window.
        """
        if self.long_window > slo_window:
            msg = (
                f"the alert rule's long_window ({self.long_window:g} s) is longer than the "
                f"SLO window ({slo_window:g} s): shorten it or lengthen the SLO window"
            )
            raise ConfigurationError(msg)
        return AlertWindow(
            severity=self.severity,
            long_window=self.long_window,
            short_window=self.short_window,
            burn_rate=self.budget_fraction * slo_window / self.long_window,
            budget_fraction=self.budget_fraction,
        )


@dataclass(frozen=True, slots=True)
class AlertWindow:
    """One row of an SLO's multiwindow, multi-burn-rate policy.

    The alert fires when the burn rate over ``long_window`` *and* over
    ``short_window`` are both above ``burn_rate`` (strictly, as the Workbook
    and sloth write it).

    Attributes:
        severity: ``"page"``, ``"ticket"`` or a custom label.
        long_window: Seconds over which ``budget_fraction`` of the budget burns.
        short_window: Seconds of the control window.
        burn_rate: The threshold, ``budget_fraction * slo_window / long_window``.
        budget_fraction: Share of the SLO window's error budget.
    """

    severity: str
    long_window: float
    short_window: float
    burn_rate: float
    budget_fraction: float


DEFAULT_POLICY: tuple[AlertRule, ...] = (
    AlertRule(severity="page", budget_fraction=0.02, long_window=3600, short_window=300),
    AlertRule(severity="page", budget_fraction=0.05, long_window=6 * 3600, short_window=1800),
    AlertRule(severity="ticket", budget_fraction=0.10, long_window=86400, short_window=7200),
    AlertRule(
        severity="ticket", budget_fraction=0.10, long_window=3 * 86400, short_window=6 * 3600
    ),
)
"""The Workbook's and sloth's policy: page on 2% in 1 h (5 m) and 5% in 6 h (30 m),
ticket on 10% in 1 d (2 h) and 10% in 3 d (6 h)."""
