"""SLO and error-budget math, pure functions of the SLO's target and window.

Sources: Google SRE Workbook, chapters "Implementing SLOs" (error budget,
SLI = good / valid events) and "Alerting on SLOs" (burn rate, budget consumed
in a window, detection time, multiwindow multi-burn-rate alerts).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from perfprim import _validate as v
from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError
from perfprim.slo._budgeting import BudgetingMethod, Occurrences, RatioTimeslices, Timeslices
from perfprim.slo._policy import AlertRule, AlertWindow, default_policy
from perfprim.slo._validate import (
    budget_of,
    check_count,
    check_counts,
    check_ratio,
    check_target,
)

if TYPE_CHECKING:
    from perfprim.slo._rules import RuleLabels

__all__ = ["SLO", "CumulativeHistogram", "LatencySLO"]

THIRTY_DAYS = 30 * 86400.0


class CumulativeHistogram(Protocol):
    """What :class:`LatencySLO` needs of a histogram (``perfprim.histogram.LatencyHistogram``)."""

    @property
    def count(self) -> int:
        """The number of recorded values."""
        ...

    def cumulative_counts(self, bounds: Sequence[float]) -> list[int]:
        """Return, for each bound, how many recorded values are ``<= bound``."""
        ...


class SLO:
    """A service level objective: ``target`` share of good events over a rolling ``window``.

    Every method is a pure function of the target, the window and its
    arguments. Undefined answers are None (the SLI without traffic, the burn
    rate of a 100% target without errors), never a silent 0 or NaN.

    Args:
        target: The objective as a ratio in (0, 1], e.g. ``0.999``. A
            percentage such as ``99.9`` is rejected: pass ``0.999``.
        window: The rolling SLO window (float seconds or ``timedelta``);
            30 days by default.
        budgeting: The OpenSLO budgeting method (:class:`Occurrences` by
            default, :class:`Timeslices` or :class:`RatioTimeslices`).
        policy: The alerting policy rows; by default the Workbook's and
            sloth's page/ticket rows (:data:`DEFAULT_POLICY`) for a 28- or
            30-day window, scaled to any other window (see
            ``perfprim.slo._policy.default_policy``).

    Raises:
        ConfigurationError: If an argument is out of range.

    Example:
        >>> slo = SLO(target=0.999, window=30 * 86400)
        >>> slo.error_budget, slo.allowed_downtime
        (0.001, 2592.0)
    """

    __slots__ = ("_alert_windows", "_budget", "budgeting", "policy", "target", "window")

    target: float
    window: float
    budgeting: BudgetingMethod
    policy: tuple[AlertRule, ...]
    _budget: float
    _alert_windows: tuple[AlertWindow, ...]

    def __init__(
        self,
        *,
        target: float,
        window: float | timedelta = THIRTY_DAYS,
        budgeting: BudgetingMethod | None = None,
        policy: Iterable[AlertRule] | None = None,
    ) -> None:
        target = check_target(target)
        window_s = to_seconds(window, name="window")
        if budgeting is None:
            budgeting = Occurrences()
        if not _is_budgeting(budgeting):
            msg = (
                "budgeting must be Occurrences(), Timeslices(...) or RatioTimeslices(...), "
                f"got {budgeting!r}"
            )
            raise ConfigurationError(msg)
        if isinstance(budgeting, Timeslices | RatioTimeslices) and (
            budgeting.slice_duration > window_s
        ):
            msg = (
                f"slice_duration ({budgeting.slice_duration:g} s) is longer than the SLO "
                f"window ({window_s:g} s): use a shorter slice"
            )
            raise ConfigurationError(msg)
        if policy is not None and (
            isinstance(policy, (str, bytes, AlertRule)) or not isinstance(policy, Iterable)
        ):
            raise v.fail("policy", "an iterable of AlertRule objects", policy)
        rules = default_policy(window_s) if policy is None else tuple(policy)
        for rule in rules:
            if not _is_rule(rule):
                msg = f"policy must hold AlertRule objects, got {rule!r}"
                raise ConfigurationError(msg)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "window", window_s)
        object.__setattr__(self, "budgeting", budgeting)
        object.__setattr__(self, "policy", rules)
        object.__setattr__(self, "_budget", budget_of(target))
        # fails fast when a rule does not fit the window
        object.__setattr__(self, "_alert_windows", tuple(r.window_for(window_s) for r in rules))

    def __setattr__(self, name: str, value: object) -> None:
        msg = f"{type(self).__name__} is immutable"
        raise AttributeError(msg)

    def _fields(self) -> str:
        text = f"target={self.target!r}, window={self.window!r}"
        if not isinstance(self.budgeting, Occurrences):
            text += f", budgeting={self.budgeting!r}"
        if self.policy != _default_or_none(self.window):
            text += f", policy={self.policy!r}"
        return text

    def __repr__(self) -> str:
        return f"SLO({self._fields()})"

    def _key(self) -> tuple[object, ...]:
        return (type(self), self.target, self.window, self.budgeting, self.policy)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SLO):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # -- the budget ---------------------------------------------------------

    @property
    def error_budget(self) -> float:
        """The error budget as a ratio, ``1 - target`` (0.001 for 0.999)."""
        return self._budget

    @property
    def allowed_downtime(self) -> float:
        """Seconds of full outage the budget allows over the window: ``budget * window``."""
        return self._budget * self.window

    def allowed_bad_events(self, total: float) -> float:
        """The error budget in events: ``budget * total``.

        Args:
            total: All events (good and bad) over the window.

        Returns:
            How many of them may be bad.

        Raises:
            ConfigurationError: If ``total`` is negative.
        """
        return self._budget * check_count(total, "total")

    def sli(self, good: float, total: float) -> float | None:
        """The service level indicator, ``good / total``.

        Args:
            good: Good events.
            total: All valid events (good and bad).

        Returns:
            The SLI, or None when ``total`` is 0 (undefined without traffic).

        Raises:
            ConfigurationError: If a count is negative or ``good > total``.
        """
        check_counts(good, total)
        return None if total == 0 else good / total

    def budget_consumed_from_sli(self, sli: float | None) -> float:
        """Share of the error budget used at this SLI: ``(1 - sli) / (1 - target)``.

        Args:
            sli: The SLI over the window, or None (no traffic: nothing used).

        Returns:
            The share used; above 1 when the SLO is missed. With a 100% target
            any error uses an infinite share, and no error uses 0.

        Raises:
            ConfigurationError: If ``sli`` is not in [0, 1].
        """
        if sli is None:
            return 0.0
        bad = 1.0 - check_ratio(sli, "sli")
        if bad == 0:
            return 0.0
        if self._budget == 0:
            return math.inf
        return bad / self._budget

    def budget_consumed(self, good: float, total: float) -> float:
        """Share of the error budget used by these events (may exceed 1).

        ``(total - good) / (budget * total)``; 0 when ``total`` is 0.

        Args:
            good: Good events over the window.
            total: All events over the window.

        Returns:
            The share of the budget used.

        Raises:
            ConfigurationError: If a count is negative or ``good > total``.
        """
        check_counts(good, total)
        if total in (0, good):
            return 0.0
        if self._budget == 0:
            return math.inf
        return (total - good) / (self._budget * total)

    def budget_remaining(self, good: float, total: float) -> float:
        """``1 - budget_consumed(good, total)``: negative once the SLO is missed.

        Args:
            good: Good events over the window.
            total: All events over the window.

        Returns:
            The share of the budget left.

        Raises:
            ConfigurationError: If a count is negative or ``good > total``.
        """
        return 1.0 - self.budget_consumed(good, total)

    def sli_from_slices(self, slices: Iterable[tuple[float, float]]) -> float | None:
        """The SLI from per-slice ``(good, total)`` counts under the budgeting method.

        Args:
            slices: One ``(good, total)`` pair per time slice of the window.

        Returns:
            The SLI, or None without traffic.

        Raises:
            ConfigurationError: If a pair is negative or has ``good > total``.
        """
        return self.budgeting.sli(slices)

    # -- burn rates ---------------------------------------------------------

    def burn_rate(self, error_ratio: float) -> float | None:
        """How fast the budget burns: ``error_ratio / error_budget``.

        A burn rate of 1 spends exactly the whole budget over the SLO window.

        Args:
            error_ratio: Bad events / all events over some window, in [0, 1].

        Returns:
            The burn rate. With a 100% target (no budget) it is ``inf`` for
            any error and None (undefined) for none.

        Raises:
            ConfigurationError: If ``error_ratio`` is not in [0, 1].
        """
        return self._burn(check_ratio(error_ratio, "error_ratio"))

    def _burn(self, error_ratio: float) -> float | None:
        if self._budget == 0:
            return None if error_ratio == 0 else math.inf
        return error_ratio / self._budget

    def time_to_exhaustion(self, burn_rate: float, remaining: float = 1.0) -> float:
        """Seconds until ``remaining`` of the budget is gone at ``burn_rate``.

        ``remaining * window / burn_rate`` (Workbook: at burn rate 1000 a 30-day
        budget lasts 43 minutes).

        Args:
            burn_rate: A non-negative burn rate.
            remaining: The share of the budget left (1.0: all of it).

        Returns:
            Seconds; ``inf`` at burn rate 0, 0 when nothing remains.

        Raises:
            ConfigurationError: If ``burn_rate`` is negative or NaN, or
                ``remaining`` is not a finite number.
        """
        burn_rate = _non_negative(burn_rate, "burn_rate")
        remaining = v.number(remaining, "remaining", hint="a share of the budget such as 0.5")
        if remaining <= 0:
            return 0.0
        if burn_rate == 0:
            return math.inf
        return remaining * self.window / burn_rate

    def budget_consumed_at(self, burn_rate: float, duration: float | timedelta) -> float:
        """Share of the budget a burn rate uses in ``duration``: ``burn_rate * duration / window``.

        Args:
            burn_rate: A non-negative burn rate.
            duration: How long it burns (float seconds or ``timedelta``).

        Returns:
            The share of the SLO window's budget used.

        Raises:
            ConfigurationError: If an argument is out of range.
        """
        burn_rate = _non_negative(burn_rate, "burn_rate")
        return burn_rate * to_seconds(duration, name="duration") / self.window

    def burn_rate_for(self, budget_fraction: float, duration: float | timedelta) -> float:
        """The burn rate that uses ``budget_fraction`` of the budget in ``duration``.

        ``budget_fraction * window / duration``: 14.4 for 2% in one hour of a
        30-day window.

        Args:
            budget_fraction: The share of the budget, in [0, 1].
            duration: The time it takes (float seconds or ``timedelta``).

        Returns:
            The burn rate.

        Raises:
            ConfigurationError: If an argument is out of range.
        """
        fraction = check_ratio(budget_fraction, "budget_fraction")
        return fraction * self.window / to_seconds(duration, name="duration")

    def detection_time(
        self, error_ratio: float, window: float | timedelta, burn_threshold: float
    ) -> float:
        """Seconds an alert on ``burn rate over window > burn_threshold`` takes to fire.

        Workbook, "Alerting on SLOs": after a sudden jump to ``error_ratio``
        the rate over the window reaches the threshold after
        ``burn_threshold * error_budget / error_ratio * window`` seconds.

        Args:
            error_ratio: The error ratio from the start of the incident on.
            window: The alert's (long) window, float seconds or ``timedelta``.
            burn_threshold: The alert's burn rate threshold.

        Returns:
            Seconds to detection; ``inf`` when the error ratio never crosses
            the threshold.

        Raises:
            ConfigurationError: If an argument is out of range.
        """
        error_ratio = check_ratio(error_ratio, "error_ratio")
        window_s = to_seconds(window, name="window")
        threshold = _non_negative(burn_threshold, "burn_threshold") * self._budget
        if error_ratio <= threshold:
            return math.inf
        return threshold / error_ratio * window_s

    def alert_windows(self) -> tuple[AlertWindow, ...]:
        """The policy's rows with their burn rates for this SLO window.

        Returns:
            One :class:`AlertWindow` per policy row, in policy order.
        """
        return self._alert_windows

    def evaluate(
        self, error_ratios_by_window: Mapping[float, float | None]
    ) -> tuple[AlertWindow, ...]:
        """Which alerts fire for these error ratios.

        A row fires when the burn rates over its long *and* its short window
        are both above its threshold. A window without traffic (None) never
        fires.

        Args:
            error_ratios_by_window: The error ratio over each window the
                policy uses, keyed by the window in seconds.

        Returns:
            The rows that fire, in policy order.

        Raises:
            ConfigurationError: If a window the policy needs is missing, or a
                ratio is out of range.
        """
        if not isinstance(error_ratios_by_window, Mapping):
            raise v.fail(
                "error_ratios_by_window",
                "a mapping of window seconds to error ratios, "
                "like dict.fromkeys(slo.policy_windows(), 0.0)",
                error_ratios_by_window,
            )
        burns: dict[float, float | None] = {}
        for window in self.policy_windows():
            try:
                ratio = error_ratios_by_window[window]
            except KeyError:
                needed = ", ".join(f"{w:g}" for w in self.policy_windows())
                msg = (
                    f"no error ratio for the {window:g} s window; the policy needs windows {needed}"
                )
                raise ConfigurationError(msg) from None
            burns[window] = None if ratio is None else self.burn_rate(ratio)
        return self._firing(burns)

    def _firing(self, burns: Mapping[float, float | None]) -> tuple[AlertWindow, ...]:
        # The one decision, shared by evaluate() and SLOTracker: both windows
        # of a row strictly above its burn rate (None: no traffic, no alert).
        firing = []
        for row in self._alert_windows:
            long_burn = burns[row.long_window]
            short_burn = burns[row.short_window]
            if (
                long_burn is not None
                and short_burn is not None
                and long_burn > row.burn_rate
                and short_burn > row.burn_rate
            ):
                firing.append(row)
        return tuple(firing)

    def policy_windows(self) -> tuple[float, ...]:
        """Every window the policy uses (long and short), sorted, in seconds.

        Returns:
            The distinct windows.
        """
        windows = {w for rule in self.policy for w in (rule.long_window, rule.short_window)}
        return tuple(sorted(windows))

    def prometheus_rules(
        self,
        *,
        service: str,
        total: str,
        good: str | None = None,
        errors: str | None = None,
        name: str | None = None,
        labels: RuleLabels | None = None,
        sloth_compatible: bool = False,
    ) -> str:
        """Prometheus recording and multiwindow alerting rules for this SLO, as YAML.

        Recording rules ``slo:error_ratio:rate<w>`` for every policy window
        and the SLO window, the objective, the error budget and the budget
        remaining; one ``ErrorBudgetBurn`` alert per severity that fires when
        both windows of any of its rows burn faster than the row's rate (as
        sloth and the Workbook write them). Needs the ``yaml`` extra. Without
        traffic a ratio is NaN in PromQL and never alerts.

        Args:
            service: The service the SLO is about (label ``slo_service``).
            total: A counter selector of all events, or a PromQL expression
                containing ``$window``.
            good: A counter selector of good events (or an expression);
                give ``good`` or ``errors``.
            errors: A counter selector of bad events (or an expression).
            name: The SLO's name (label ``slo``); ``"availability"`` by default.
            labels: Extra labels on every rule.
            sloth_compatible: Also write sloth's recording rules
                (``slo:sli_error:ratio_rate<w>``, ``slo:current_burn_rate:ratio``,
                ``slo:period_burn_rate:ratio``, ``slo:time_period:days``,
                ``sloth_slo_info``, ...) and sloth's labels on the alerts, so
                that sloth's Grafana dashboards show this SLO.

        Returns:
            The rule file as YAML text. With timeslice budgeting the budget's
            error ratio is computed slice by slice
            (``slo:error_ratio:timeslices<W>``).

        Raises:
            ConfigurationError: If the selectors are missing or malformed (each
                is parsed as a PromQL selector, or checked for balanced
                brackets and quotes when it holds ``$window``).
            MissingDependencyError: If PyYAML is not installed.
        """
        from perfprim.slo._rules import prometheus_rules

        return prometheus_rules(
            self,
            service=service,
            total=total,
            good=good,
            errors=errors,
            name=name,
            labels=labels,
            sloth_compatible=sloth_compatible,
        )


def _default_or_none(window: float) -> tuple[AlertRule, ...] | None:
    """The default policy for ``window``, or None when the window has none."""
    try:
        return default_policy(window)
    except ConfigurationError:
        return None


def _is_budgeting(value: object) -> bool:
    return isinstance(value, Occurrences | Timeslices | RatioTimeslices)


def _is_rule(value: object) -> bool:
    return isinstance(value, AlertRule)


def _non_negative(value: object, name: str) -> float:
    return v.number(value, name, low=0.0, allow_inf=True)


class LatencySLO(SLO):
    """An SLO whose good events are requests served within ``threshold`` seconds.

    The SLI is the share of requests with latency ``<= threshold``, the
    Prometheus ``le`` convention, so it can be read exactly from cumulative
    histogram buckets when ``threshold`` is one of their bounds.

    Args:
        threshold: The latency bound in float seconds (``timedelta`` accepted).
        target: The objective as a ratio in (0, 1], e.g. ``0.99``.
        window: The rolling SLO window; 30 days by default.
        budgeting: The OpenSLO budgeting method (occurrences by default).
        policy: The alerting policy rows; the default policy for the window
            (as for :class:`SLO`) by default.

    Raises:
        ConfigurationError: If an argument is out of range.

    Example:
        >>> slo = LatencySLO(threshold=0.3, target=0.99)
        >>> slo.sli_from_buckets({"0.1": 700, "0.3": 990, "1": 998, "+Inf": 1000})
        0.99
    """

    __slots__ = ("threshold",)

    threshold: float

    def __init__(
        self,
        *,
        threshold: float | timedelta,
        target: float,
        window: float | timedelta = THIRTY_DAYS,
        budgeting: BudgetingMethod | None = None,
        policy: Iterable[AlertRule] | None = None,
    ) -> None:
        super().__init__(target=target, window=window, budgeting=budgeting, policy=policy)
        object.__setattr__(self, "threshold", to_seconds(threshold, name="threshold"))

    def __repr__(self) -> str:
        return f"LatencySLO(threshold={self.threshold!r}, {self._fields()})"

    def _key(self) -> tuple[object, ...]:
        return (*SLO._key(self), self.threshold)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SLO):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def is_good(self, latency: float) -> bool:
        """Whether a request of ``latency`` seconds meets the objective (``<= threshold``).

        Args:
            latency: The request's latency in seconds.

        Returns:
            True for a good request.

        Raises:
            ConfigurationError: If ``latency`` is not a non-negative, finite
                number of seconds (NaN is no latency at all).
        """
        if latency.__class__ is not float or not 0.0 <= latency < math.inf:
            latency = check_latency(latency)
        return latency <= self.threshold

    def counts_from_buckets(
        self, buckets: Mapping[str | float, float] | Iterable[tuple[str | float, float]]
    ) -> tuple[float, float]:
        """``(good, total)`` from Prometheus cumulative buckets.

        Args:
            buckets: ``le`` bound -> cumulative count, as a mapping or pairs;
                bounds may be the label strings (``"0.3"``, ``"+Inf"``).
                The ``+Inf`` bucket (the total) is required.

        Returns:
            The count of the bucket whose bound is ``threshold``, and the total.

        Raises:
            ConfigurationError: If ``threshold`` is not a bucket bound, the
                ``+Inf`` bucket is missing, or the counts are not cumulative.
        """
        given: object = buckets  # checked at run time: callers may not be type-checked
        if isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
            raise v.fail("buckets", "a mapping or pairs of le bound -> cumulative count", given)
        items: Iterable[object] = given.items() if isinstance(given, Mapping) else given
        parsed: list[tuple[float, float]] = []
        for item in items:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise v.fail("buckets", "pairs of (le bound, cumulative count)", item)
            bound, count = item
            le = _bound(bound)
            parsed.append((le, check_count(count, f"bucket le={bound!r}")))
        parsed.sort()
        if not parsed or parsed[-1][0] != math.inf:
            msg = "the buckets need the '+Inf' bucket, which holds the total count"
            raise ConfigurationError(msg)
        for (low, low_count), (high, high_count) in itertools.pairwise(parsed):
            if high_count < low_count:
                msg = (
                    f"bucket counts must be cumulative (le={high:g} has {high_count:g} < "
                    f"{low_count:g} at le={low:g}): pass Prometheus _bucket values, not "
                    "per-bucket counts"
                )
                raise ConfigurationError(msg)
        for le, count in parsed:
            if math.isclose(le, self.threshold, rel_tol=1e-9):
                return count, parsed[-1][1]
        bounds = ", ".join(f"{le:g}" for le, _ in parsed)
        msg = (
            f"threshold {self.threshold:g} s is not a bucket bound ({bounds}); the SLI "
            "is only exact at a bound: add it to the histogram's buckets or pick one "
            "of these as threshold"
        )
        raise ConfigurationError(msg)

    def sli_from_buckets(
        self, buckets: Mapping[str | float, float] | Iterable[tuple[str | float, float]]
    ) -> float | None:
        """The SLI from Prometheus cumulative buckets (see :meth:`counts_from_buckets`).

        Args:
            buckets: ``le`` bound -> cumulative count, including ``+Inf``.

        Returns:
            The share of requests within ``threshold``, or None without traffic.

        Raises:
            ConfigurationError: As :meth:`counts_from_buckets`.
        """
        good, total = self.counts_from_buckets(buckets)
        return self.sli(good, total)

    def counts_from_histogram(self, histogram: CumulativeHistogram) -> tuple[int, int]:
        """``(good, total)`` from a perfprim ``LatencyHistogram``.

        Args:
            histogram: The histogram, in seconds.

        Returns:
            The count of values ``<= threshold`` and the total count. HDR
            rounding never misses a value at or below the threshold, and may
            count as good a value above it by at most one bucket width (a
            relative ``10 ** -significant_figures``: 0.1% at 3 digits).
        """
        if not callable(getattr(histogram, "cumulative_counts", None)):
            raise v.fail(
                "histogram", "a histogram with cumulative_counts() (a LatencyHistogram)", histogram
            )
        (good,) = histogram.cumulative_counts([self.threshold])
        return good, histogram.count

    def sli_from_histogram(self, histogram: CumulativeHistogram) -> float | None:
        """The SLI from a perfprim ``LatencyHistogram``.

        Args:
            histogram: The histogram, in seconds.

        Returns:
            The share of requests within ``threshold``, or None when empty.
        """
        good, total = self.counts_from_histogram(histogram)
        return self.sli(good, total)


def _bound(bound: object) -> float:
    """A Prometheus ``le`` bound: a number or its label text ("0.3", "+Inf"), not NaN."""
    if isinstance(bound, str):
        try:
            le = float(bound)
        except ValueError:
            le = math.nan
    elif isinstance(bound, int | float) and not isinstance(bound, bool):
        le = v.number(bound, "bucket bound", allow_inf=True)
    else:
        le = math.nan
    if math.isnan(le):
        msg = f"bucket bound {v.show(bound)} is not a number (Prometheus 'le' label)"
        raise ConfigurationError(msg)
    return le


def check_latency(latency: object, name: str = "latency") -> float:
    """Validate a measured latency: a non-negative, finite number of seconds."""
    return v.number(latency, name, low=0.0, hint="a measured duration in seconds")
