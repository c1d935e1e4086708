"""Thresholds: k6's grammar, parsed once, evaluated as a pure function of the measurements.

Grammar (one threshold per string)::

    threshold   := aggregation operator value [ "over" duration [ "abort" ] ]
    aggregation := "p(" number ")" | "avg" | "med" | "min" | "max"      latency
                 | "error_rate" | "rate" | "count"
    operator    := "<" | "<=" | ">" | ">=" | "=="
    value       := number unit        for latency: unit in us, ms, s, m
                 | number ["%"]       error_rate (a fraction, or a percentage)
                 | number             rate (completed requests/s), count (completed requests)
    duration    := number unit

``p(95) < 200ms``, ``error_rate < 1%``, ``rate > 500``, and windowed:
``p(99) < 500ms over 10s abort`` holds in every 10-second window of the run
and stops the run at the first window where it fails (what k6 users ask for
in k6 #2379; k6 evaluates thresholds over the whole run only). Latency values
need a unit: ``p(95) < 200`` is refused with a message that says to write
``200ms`` or ``0.2s`` (k6 reads bare numbers as milliseconds; Python users
think in seconds; a unit removes the doubt).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from perfprim.exceptions import ThresholdError
from perfprim.histogram import LatencyHistogram

__all__ = [
    "LATENCY_AGGREGATIONS",
    "Measurements",
    "Threshold",
    "ThresholdResult",
    "evaluate",
    "parse_threshold",
]

LATENCY_AGGREGATIONS = ("avg", "med", "min", "max", "p")
_COUNTER_AGGREGATIONS = ("error_rate", "rate", "count")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?"
_PATTERN = re.compile(
    rf"""^\s*
    (?P<agg>p\(\s*(?P<pct>{_NUMBER})\s*\)|avg|med|min|max|error_rate|rate|count)
    \s*(?P<op><=|>=|==|<|>)\s*
    (?P<num>{_NUMBER})\s*(?P<unit>[a-zA-Zµ%]*)
    (?:\s+over\s+(?P<wnum>{_NUMBER})\s*(?P<wunit>[a-zA-Zµ]*))?
    (?P<abort>\s+abort)?
    \s*$""",
    re.VERBOSE,
)


def _number(x: float) -> str:
    """Shortest text that reads back as ``x`` (``200`` rather than ``200.0``)."""
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _seconds(num: str, unit: str, what: str, text: str) -> tuple[float, str]:
    unit = "us" if unit == "µs" else unit
    if unit not in _TIME_UNITS:
        hint = (
            f"write {num}ms or {float(num) / 1000:g}s"
            if not unit
            else f"use one of {', '.join(_TIME_UNITS)}"
        )
        msg = f"{what} in threshold {text!r} needs a time unit: {hint} (e.g. 'p(95) < 200ms')"
        raise ThresholdError(msg)
    return float(num), unit


@dataclass(frozen=True, slots=True)
class Threshold:
    """One pass/fail condition on a run, parsed from k6's grammar (see :func:`parse_threshold`).

    Attributes:
        aggregation: ``"p"``, ``"avg"``, ``"med"``, ``"min"``, ``"max"``
            (latency), ``"error_rate"``, ``"rate"`` or ``"count"``.
        percentile: The ``N`` of ``p(N)`` (None for other aggregations).
        operator: ``<``, ``<=``, ``>``, ``>=`` or ``==``.
        amount: The number as written (``200`` in ``200ms``).
        unit: The unit as written (``ms``, ``s``, ``us``, ``m``, ``%`` or ``""``).
        window: Seconds of the sliding window (None: the whole run).
        window_unit: The window's unit as written.
        abort_on_fail: Stop the run at the first window that fails.
    """

    aggregation: str
    percentile: float | None
    operator: str
    amount: float
    unit: str
    window: float | None = None
    window_unit: str = "s"
    abort_on_fail: bool = False

    @property
    def value(self) -> float:
        """The bound in base units: seconds, a fraction, requests/s or a count."""
        if self.unit == "%":
            return self.amount / 100.0
        return self.amount * _TIME_UNITS.get(self.unit, 1.0)

    @property
    def is_latency(self) -> bool:
        """Whether the threshold bounds the latency distribution."""
        return self.aggregation in LATENCY_AGGREGATIONS

    @property
    def window_seconds(self) -> float | None:
        """The window in seconds (None for a whole-run threshold)."""
        if self.window is None:
            return None
        return self.window * _TIME_UNITS[self.window_unit]

    @property
    def name(self) -> str:
        """The aggregation as written: ``p(95)``, ``avg``, ``error_rate``..."""
        if self.aggregation == "p":
            assert self.percentile is not None
            return f"p({_number(self.percentile)})"
        return self.aggregation

    def holds(self, observed: float) -> bool:
        """Return whether an observed value meets the bound (NaN never does).

        Args:
            observed: The measured value in base units.

        Returns:
            True if the condition holds.
        """
        return not math.isnan(observed) and _OPERATORS[self.operator](observed, self.value)

    def __str__(self) -> str:
        text = f"{self.name} {self.operator} {_number(self.amount)}{self.unit}"
        if self.window is not None:
            text += f" over {_number(self.window)}{self.window_unit}"
            if self.abort_on_fail:
                text += " abort"
        return text


def parse_threshold(text: str | Threshold) -> Threshold:
    """Parse a threshold in k6's grammar (see the module docstring).

    Args:
        text: ``"p(95) < 200ms"``, ``"error_rate < 0.01"``, ``"rate > 500"``,
            ``"p(99) < 500ms over 10s abort"``; a :class:`Threshold` is
            returned as is.

    Returns:
        The threshold.

    Raises:
        ThresholdError: If the text does not follow the grammar; the message
            says what to write.

    Example:
        >>> t = parse_threshold("p(95) < 200ms")
        >>> t.value, str(t)
        (0.2, 'p(95) < 200ms')
        >>> parse_threshold("p(95) < 200")
        Traceback (most recent call last):
        ...
        perfprim.exceptions.ThresholdError: the value in threshold 'p(95) < 200' \
needs a time unit: write 200ms or 0.2s (e.g. 'p(95) < 200ms')
    """
    raw: object = text  # checked at runtime: callers may not be type-checked
    if isinstance(raw, Threshold):
        return raw
    if not isinstance(raw, str):
        msg = f"a threshold is a string such as 'p(95) < 200ms', got {text!r}"
        raise ThresholdError(msg)
    text = raw
    match = _PATTERN.match(text)
    if match is None:
        msg = (
            f"cannot read threshold {text!r}: write AGGREGATION OPERATOR VALUE, e.g. "
            "'p(95) < 200ms', 'avg < 50ms', 'error_rate < 1%', 'rate > 500', 'count >= 1000', "
            "optionally followed by 'over 10s' (a sliding window) and 'abort'"
        )
        raise ThresholdError(msg)
    agg = match["agg"]
    percentile = None
    if agg.startswith("p("):
        percentile = float(match["pct"])
        if not 0.0 <= percentile <= 100.0:
            msg = f"percentile in threshold {text!r} must be in [0, 100], e.g. p(99.9)"
            raise ThresholdError(msg)
        agg = "p"
    num, unit = match["num"], match["unit"]
    if agg in LATENCY_AGGREGATIONS:
        amount, unit = _seconds(num, unit, "the value", text)
    elif agg == "error_rate" and unit in ("", "%"):
        amount = float(num)
        if amount > (100.0 if unit == "%" else 1.0):
            msg = f"error_rate in threshold {text!r} is a fraction in [0, 1] or a percentage"
            raise ThresholdError(msg)
    elif unit:
        kind = "a fraction (0.01) or a percentage (1%)" if agg == "error_rate" else "a number"
        msg = f"{agg} in threshold {text!r} takes {kind}, not {unit!r}" + (
            "; rate is completed requests per second" if agg == "rate" else ""
        )
        raise ThresholdError(msg)
    else:
        amount = float(num)
    window = None
    window_unit = "s"
    if match["wnum"] is not None:
        window, window_unit = _seconds(match["wnum"], match["wunit"], "the window", text)
        if window <= 0.0:
            msg = f"the window in threshold {text!r} must be longer than 0, e.g. 'over 10s'"
            raise ThresholdError(msg)
    abort = match["abort"] is not None
    if abort and window is None:
        msg = (
            f"threshold {text!r}: 'abort' needs a window, because a whole-run value is only "
            "known at the end; write e.g. 'p(99) < 500ms over 10s abort'"
        )
        raise ThresholdError(msg)
    return Threshold(
        aggregation=agg,
        percentile=percentile,
        operator=match["op"],
        amount=amount,
        unit=unit,
        window=window,
        window_unit=window_unit,
        abort_on_fail=abort,
    )


@dataclass(frozen=True, slots=True)
class Measurements:
    """What a threshold is evaluated on: a whole run or one window of it.

    Attributes:
        latency: Latency from the planned start of each completed request.
        completed: Requests completed (including errors).
        errors: Requests that failed.
        seconds: How long the span lasted.
    """

    latency: LatencyHistogram
    completed: int
    errors: int
    seconds: float


def observe(threshold: Threshold, m: Measurements) -> float:
    """Return the value a threshold looks at (NaN when there is no data for it).

    Args:
        threshold: The threshold.
        m: The measurements.

    Returns:
        Seconds for latency, a fraction for ``error_rate``, requests/s for
        ``rate``, a count for ``count``.
    """
    agg = threshold.aggregation
    if agg == "count":
        return float(m.completed)
    if agg == "rate":
        return m.completed / m.seconds if m.seconds > 0.0 else math.nan
    if agg == "error_rate":
        return m.errors / m.completed if m.completed else math.nan
    h = m.latency
    if not h.count:
        return math.nan
    if agg == "p":
        assert threshold.percentile is not None
        return h.percentile(threshold.percentile)
    if agg == "med":
        return h.percentile(50.0)
    if agg == "avg":
        return h.mean
    return h.min if agg == "min" else h.max


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """A threshold's verdict on a run.

    Attributes:
        threshold: The threshold.
        observed: The value it saw (the first failing window's value for a
            windowed threshold that failed, else the worst window's; NaN
            when there was no data).
        passed: Whether it held.
        window_start: For a windowed threshold, the offset in seconds of the
            window that ``observed`` comes from (None otherwise).
    """

    threshold: Threshold
    observed: float
    passed: bool
    window_start: float | None = None

    @property
    def expression(self) -> str:
        """The threshold as text (``p(95) < 200ms``)."""
        return str(self.threshold)

    def describe(self) -> str:
        """Return one line: verdict, expression and observed value with its unit."""
        verdict = "PASS" if self.passed else "FAIL"
        where = f" (window at {self.window_start:.0f} s)" if self.window_start is not None else ""
        return f"{verdict}  {self.expression:<34} observed {format_observed(self)}{where}"


def format_observed(result: ThresholdResult) -> str:
    """Format an observed value in the threshold's own unit."""
    t, x = result.threshold, result.observed
    if math.isnan(x):
        return "no data"
    if t.is_latency:
        scale = _TIME_UNITS[t.unit]
        return f"{x / scale:.4g}{t.unit}"
    if t.aggregation == "error_rate":
        return f"{x * 100:.3g}%" if t.unit == "%" else f"{x:.4g}"
    if t.aggregation == "rate":
        return f"{x:.1f} req/s"
    return f"{x:.0f}"


def evaluate(threshold: Threshold, m: Measurements) -> ThresholdResult:
    """Evaluate a threshold on measurements (pure).

    A threshold with no data to look at (no completed request for a latency
    or error-rate threshold) fails: a CI gate must not pass on nothing.

    Args:
        threshold: The threshold.
        m: The measurements.

    Returns:
        The verdict.
    """
    observed = observe(threshold, m)
    return ThresholdResult(threshold, observed, threshold.holds(observed))
