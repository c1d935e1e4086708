"""Multiwindow, multi-burn-rate alerting policy (Google SRE Workbook, "Alerting on SLOs").

A policy row says: alert with ``severity`` when ``budget_fraction`` of the SLO
window's error budget burns within ``long_window``, and the burn is still going
on over ``short_window``. The burn rate of a row follows from the SLO window::

    burn_rate = budget_fraction * slo_window / long_window

so for a 30-day window the default rows give 14.4, 6, 3 and 1, and for a
28-day window 13.44, 5.6, 2.8 and 0.93 (the Workbook prints rounded figures;
these are computed).

The default policy follows the SLO window (:func:`default_policy`): the
Workbook's rows as written for 28 and 30 days, and for any other window the
28-day rows scaled by ``window / 28 d``, as pyrra scales its windows, so a
1-day or a 90-day SLO gets the same budget fractions and burn rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError
from perfprim.slo._validate import check_ratio

__all__ = ["DEFAULT_POLICY", "MIN_SCALED_WINDOW", "AlertRule", "AlertWindow", "default_policy"]


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
        long_s = to_seconds(long_window, name="long_window")
        short_s = to_seconds(short_window, name="short_window")
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


_DAY = 86400.0
_WORKBOOK_WINDOWS = (28 * _DAY, 30 * _DAY)
MIN_SCALED_WINDOW = 3600.0
"""The shortest SLO window (seconds) with a default policy: below one hour the
scaled control windows would be under a second."""


def default_policy(window: float) -> tuple[AlertRule, ...]:
    """The default multiwindow policy for an SLO window of ``window`` seconds.

    For 28 and 30 days it is :data:`DEFAULT_POLICY`, the Workbook's and
    sloth's rows exactly. For any other window each row's long and short
    windows are the 28-day ones times ``window / 28 d`` (pyrra's rule: its
    windows are the 28-day ones times period / 28 d), rounded to whole
    seconds, never below one second; the budget fractions stay, so the burn
    rates stay those of 28 days (13.44, 5.6, 2.8, 0.93) up to that rounding.
    A 7-day SLO pages on 2% of its budget in 15 minutes (control window
    75 s), a 90-day one on 2% in 3 h 12 min 51 s.

    Args:
        window: The SLO window in seconds.

    Returns:
        The policy rows.

    Raises:
        ConfigurationError: If ``window`` is under one hour (the control
            windows would be under a second): pass ``policy=`` instead.
    """
    if window in _WORKBOOK_WINDOWS:
        return DEFAULT_POLICY
    if window < MIN_SCALED_WINDOW:
        msg = (
            f"the SLO window ({window:g} s) is under one hour, too short for the default "
            "multiwindow policy (its control windows would be under a second): pass "
            "policy=[AlertRule(...)] with windows that suit it"
        )
        raise ConfigurationError(msg)
    factor = window / (28 * _DAY)
    return tuple(
        AlertRule(
            severity=rule.severity,
            budget_fraction=rule.budget_fraction,
            long_window=max(1.0, float(round(rule.long_window * factor))),
            short_window=max(1.0, float(round(rule.short_window * factor))),
        )
        for rule in DEFAULT_POLICY
    )
