"""Values on the command line: durations, percentages, rates, growth, latency objectives.

Each is a click parameter type, so a bad value is a usage error (exit 2)
whose one line names the option, the value and the form to write. Durations
always carry a unit (``200ms``, ``30d``): a bare number is refused, as k6
refuses one on a latency threshold, because ``--window 30`` could mean
anything.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal

import click

__all__ = [
    "DURATION",
    "GROWTH",
    "PERCENTILES",
    "RATE",
    "RATIO",
    "Growth",
    "LatencyObjective",
    "LatencyObjectiveType",
    "format_duration",
    "format_percent",
    "format_seconds",
    "parse_duration",
    "parse_ratio",
]

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|min|s|m|h|d|w)")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_duration(text: str) -> float:
    """Seconds from ``"200ms"``, ``"30d"``, ``"1h30m"``, ``"2.5s"``.

    Raises:
        ValueError: With the message to show (the valid forms).
    """
    raw = text.strip().replace(" ", "")
    pos = 0
    total = 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not raw or pos != len(raw):
        if _NUMBER.match(raw):
            msg = f"{text!r} has no unit: write e.g. {text}s, {text}ms or {text}d"
        else:
            msg = f"{text!r} is not a duration: write e.g. 200ms, 1.5s, 30d or 1h30m"
        raise ValueError(msg)
    if not total > 0 or math.isinf(total):
        msg = f"{text!r} must be a positive duration"
        raise ValueError(msg)
    return total


def parse_ratio(text: str) -> float:
    """A ratio from ``"99.9%"`` (exact in decimal: 0.999) or ``"0.999"``.

    Raises:
        ValueError: With the message to show.
    """
    raw = text.strip()
    percent = raw.endswith("%")
    number = raw[:-1].strip() if percent else raw
    try:
        value = Decimal(number)
    except InvalidOperation:
        msg = f"{text!r} is not a ratio: write 99.9% or 0.999"
        raise ValueError(msg) from None
    if not value.is_finite():
        msg = f"{text!r} is not a ratio: write 99.9% or 0.999"
        raise ValueError(msg)
    if percent:
        value /= 100
    elif value > 1:
        msg = f"{text!r} looks like a percentage: write {text}% (or the ratio {value / 100})"
        raise ValueError(msg)
    if not 0 < value <= 1:
        msg = f"{text!r} must be above 0% and at most 100%"
        raise ValueError(msg)
    return float(value)


class _Duration(click.ParamType):  # type: ignore[type-arg]
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _Ratio(click.ParamType):  # type: ignore[type-arg]
    name = "PERCENT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            return parse_ratio(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _Rate(click.ParamType):  # type: ignore[type-arg]
    """Events per second from ``"100/s"``, ``"6000/min"``, ``"360000/h"`` or ``"100"``."""

    name = "RATE"
    per: ClassVar[dict[str, float]] = {
        "s": 1.0,
        "sec": 1.0,
        "m": 60.0,
        "min": 60.0,
        "h": 3600.0,
        "d": 86400.0,
    }

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        number, _, unit = text.partition("/")
        try:
            rate = float(number)
        except ValueError:
            self.fail(f"{text!r} is not a rate: write 100/s, 6000/min or 100", param, ctx)
        if unit and unit not in self.per:
            self.fail(f"{text!r}: the unit after / must be one of s, min, h, d", param, ctx)
        if not (rate > 0 and math.isfinite(rate)):
            self.fail(f"{text!r} must be a positive rate", param, ctx)
        return rate / self.per.get(unit or "s", 1.0)


@dataclass(frozen=True, slots=True)
class Growth:
    """Load growth per period: compound (a fraction) or linear (load units)."""

    model: Literal["compound", "linear"]
    rate: float
    period: str


class _Growth(click.ParamType):  # type: ignore[type-arg]
    """``15%/month`` (compound), ``+200/month`` (linear, load units), ``15%`` (per period)."""

    name = "GROWTH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Growth):
            return value
        text = str(value).strip()
        amount, _, period = text.partition("/")
        period = period.strip() or "period"
        if not re.fullmatch(r"[A-Za-z]+", period):
            self.fail(f"{text!r}: the period after / must be a word such as month", param, ctx)
        amount = amount.strip()
        try:
            if amount.endswith("%"):
                rate = float(Decimal(amount[:-1]) / 100)
                model: Literal["compound", "linear"] = "compound"
            elif amount.startswith("+"):
                rate = float(Decimal(amount[1:]))
                model = "linear"
            else:
                raise InvalidOperation
        except InvalidOperation:
            self.fail(
                f"{text!r} is not a growth: write 15%/month (compound) or +200/month "
                "(linear, in load units)",
                param,
                ctx,
            )
        if not (rate >= 0 and math.isfinite(rate)):
            self.fail(f"{text!r} must be a non-negative growth", param, ctx)
        return Growth(model, rate, period)


class _Percentiles(click.ParamType):  # type: ignore[type-arg]
    """A comma-separated list of percentiles in (0, 100]: ``50,90,99,99.9``."""

    name = "P,P,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        out = []
        for part in str(value).split(","):
            item = part.strip().rstrip("%")
            try:
                p = float(item)
            except ValueError:
                self.fail(f"{part!r} is not a percentile: write e.g. 50,90,99,99.9", param, ctx)
            if not 0 < p <= 100:
                self.fail(f"percentile {part!r} must be in (0, 100]", param, ctx)
            out.append(p)
        return tuple(sorted(set(out)))


@dataclass(frozen=True, slots=True)
class LatencyObjective:
    """``200ms@99.9``: at least ``percentile`` percent of requests within ``seconds``."""

    seconds: float
    percentile: float

    def __str__(self) -> str:
        return f"{format_seconds(self.seconds)}@{self.percentile:g}%"


class LatencyObjectiveType(click.ParamType):  # type: ignore[type-arg]
    """``LATENCY@PERCENTILE``: ``200ms@99.9`` or ``1s@99``."""

    name = "LATENCY@P"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, LatencyObjective):
            return value
        text = str(value).strip()
        latency, at, percentile = text.partition("@")
        if not at:
            self.fail(f"{text!r} is not LATENCY@PERCENTILE: write e.g. 200ms@99.9", param, ctx)
        try:
            seconds = parse_duration(latency)
        except ValueError as exc:
            self.fail(f"{text!r}: {exc}", param, ctx)
        try:
            p = float(percentile.strip().rstrip("%"))
        except ValueError:
            self.fail(f"{text!r}: the percentile after @ must be a number such as 99.9", param, ctx)
        if not 0 < p < 100:
            self.fail(f"{text!r}: the percentile must be in (0, 100)", param, ctx)
        return LatencyObjective(seconds, p)


DURATION = _Duration()
RATIO = _Ratio()
RATE = _Rate()
GROWTH = _Growth()
PERCENTILES = _Percentiles()


def format_seconds(seconds: float) -> str:
    """A latency in the unit that reads best: ``850us``, ``12.5ms``, ``1.2s``."""
    if math.isinf(seconds):
        return "inf"
    if seconds == 0:
        return "0"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.4g}us"
    if seconds < 1:
        return f"{seconds * 1e3:.4g}ms"
    return f"{seconds:.4g}s"


def format_duration(seconds: float) -> str:
    """A span of time in days, hours, minutes and seconds: ``43m 12s``, ``7d``, ``1h 5m``."""
    if math.isinf(seconds):
        return "never"
    if seconds < 60:
        return f"{seconds:.4g}s"
    parts = []
    rest = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts[:3])


def format_percent(ratio: float, digits: int = 6) -> str:
    """A ratio as a percentage without float noise: 0.999 -> ``99.9%``."""
    if math.isinf(ratio):
        return "inf"
    return f"{float(f'{ratio * 100:.{digits}g}'):g}%"
