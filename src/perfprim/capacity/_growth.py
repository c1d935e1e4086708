"""Load growth projections: when does the load cross the capacity?

Periods are counted from ``0 = now``: period ``t`` is ``t`` periods (months,
weeks, ...) after the last observation. Two models:

- compound: ``load(t) = current (1 + rate)^t``; crossing at
  ``t* = ln(capacity / current) / ln(1 + rate)``;
- linear: ``load(t) = current + rate t`` (``rate`` in load units per period);
  crossing at ``t* = (capacity - current) / rate``.

:func:`fit_trend` fits either model to a history of observed loads by least
squares (linear: ordinary least squares; compound: non-linear least squares of
``a (1 + g)^t`` on the loads themselves, started from the log-linear fit).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from perfprim._validate import finite_result, integer, non_negative, numbers, positive
from perfprim.capacity._lm import least_squares
from perfprim.exceptions import ConfigurationError, InfeasibleError

__all__ = [
    "GrowthModel",
    "GrowthPeriod",
    "GrowthProjection",
    "TrendFit",
    "fit_trend",
    "project_growth",
]

GrowthModel = Literal["compound", "linear"]
"""``"compound"`` (a fixed fraction per period) or ``"linear"`` (fixed units per period)."""

_MODELS = ("compound", "linear")
_MIN_HISTORY = 3
_MAX_SCHEDULE = 1000
_MAX_PERIODS = 100_000  # an explicit schedule length: 100,000 rows is already a lot
_DEFAULT_SCHEDULE = 12


@dataclass(frozen=True, slots=True)
class GrowthPeriod:
    """One row of a projection's schedule.

    Attributes:
        period: Periods from now (0 = now).
        load: Projected load in that period.
        headroom: ``capacity - load`` (negative once the capacity is exceeded).
    """

    period: int
    load: float
    headroom: float


@dataclass(frozen=True, slots=True)
class TrendFit:
    """A growth model fitted to a history of observed loads by least squares.

    Attributes:
        model: ``"compound"`` or ``"linear"``.
        current: The fitted load now (period 0, the last observation's period).
        rate: Growth per period: a fraction for compound, load units for linear.
        r_squared: ``1 - SSE / SST`` of the fit on the loads.
        observations: Number of observations used.
    """

    model: GrowthModel
    current: float
    rate: float
    r_squared: float
    observations: int


@dataclass(frozen=True, slots=True)
class GrowthProjection:
    """When the load crosses the capacity, and the load per period until then.

    Attributes:
        model: ``"compound"`` or ``"linear"``.
        current: Load now (period 0).
        rate: Growth per period (fraction for compound, units for linear).
        capacity: The load the system can take.
        periods_until_exhausted: The (fractional) period at which the load
            reaches ``capacity``; ``0.0`` if it already has, ``inf`` if it never does.
        schedule: Load and headroom for periods 0, 1, 2, ...
        trend: The fit the projection came from, if it was given a history.
    """

    model: GrowthModel
    current: float
    rate: float
    capacity: float
    periods_until_exhausted: float
    schedule: tuple[GrowthPeriod, ...]
    trend: TrendFit | None = None

    def load_at(self, period: float) -> float:
        """Return the projected load ``period`` periods from now (fractions allowed).

        Args:
            period: Periods from now, ``>= 0``.

        Returns:
            The projected load.

        Raises:
            ConfigurationError: If ``period`` is negative.
        """
        return _load(self.model, self.current, self.rate, non_negative(period, "period"))


def _load(model: str, current: float, rate: float, t: float) -> float:
    """The load at period ``t``; past the float range a compound load is ``inf``."""
    if model == "compound":
        try:
            return current * math.pow(1.0 + rate, t)
        except OverflowError:
            return math.inf if rate > 0 else 0.0
    return current + rate * t


def _crossing(model: str, current: float, rate: float, capacity: float) -> float:
    if current >= capacity:
        return 0.0
    if rate <= 0.0:
        return math.inf
    if model == "compound":
        ratio = capacity / current
        # the quotient keeps full precision; if it overflows, the difference of logs does not
        growth = math.log(ratio) if math.isfinite(ratio) else math.log(capacity) - math.log(current)
        return growth / math.log1p(rate)
    return (capacity - current) / rate


def _check_model(model: object) -> GrowthModel:
    if model == "compound":
        return "compound"
    if model == "linear":
        return "linear"
    msg = (
        f"model must be one of {_MODELS} ('compound' is exponential growth by a fraction "
        f"per period, 'linear' adds a fixed amount per period), got {model!r}"
    )
    raise ConfigurationError(msg)


def _r_squared(ys: Sequence[float], fitted: Sequence[float]) -> float:
    mean = math.fsum(ys) / len(ys)
    sst = math.fsum((y - mean) ** 2 for y in ys)
    sse = math.fsum((y - f) ** 2 for y, f in zip(ys, fitted, strict=True))
    if sst == 0.0:
        return 1.0 if sse == 0.0 else 0.0
    return 1.0 - sse / sst


def _line(ts: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Ordinary least squares ``y = a + b t``; returns ``(a, b)``."""
    n = len(ts)
    mt = math.fsum(ts) / n
    my = math.fsum(ys) / n
    stt = math.fsum((t - mt) ** 2 for t in ts)
    sty = math.fsum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True))
    b = sty / stt
    return my - b * mt, b


def fit_trend(history: Iterable[float], *, model: GrowthModel = "compound") -> TrendFit:
    """Fit a growth model to observed loads, one per period, oldest first.

    The last observation is period 0 (now); the one before it is period -1,
    and so on. ``linear`` is ordinary least squares of ``a + b t``;
    ``compound`` is least squares of ``a (1 + g)^t`` on the loads (not on
    their logarithms), solved by Levenberg-Marquardt from the log-linear fit.

    Args:
        history: At least 3 observed loads, oldest first; ``>= 0`` for
            linear, ``> 0`` for compound.
        model: ``"compound"`` or ``"linear"``.

    Returns:
        The fitted current load (at period 0), rate per period and ``r_squared``.

    Raises:
        ConfigurationError: For an unknown model, fewer than 3 observations
            or values out of range.
        InfeasibleError: If no compound trend fits in floats (loads that
            jump by hundreds of orders of magnitude).
    """
    kind = _check_model(model)
    check = positive if kind == "compound" else non_negative
    raw = numbers(history, "history", check)
    ys = raw
    if len(ys) < _MIN_HISTORY:
        msg = f"history needs at least {_MIN_HISTORY} observations to fit a trend, got {len(ys)}"
        raise ConfigurationError(msg)
    n = len(ys)
    ts = [float(i - (n - 1)) for i in range(n)]
    # Both models scale with the loads: fit loads / scale, so that squares of
    # loads near 1e300 do not overflow, and scale the fitted load back.
    scale = max(ys) or 1.0
    ys = [y / scale for y in ys]
    if kind == "linear":
        a, b = _line(ts, ys)
        fitted = [a + b * t for t in ts]
        return TrendFit(
            "linear",
            finite_result(a * scale, "the fitted current load"),
            finite_result(b * scale, "the fitted rate"),
            _r_squared(ys, fitted),
            n,
        )
    log_scale = math.log(scale)
    log_a, log_g = _line(ts, [math.log(y) - log_scale for y in raw])

    def residuals_and_jacobian(p: Sequence[float]) -> tuple[list[float], list[list[float]]]:
        a, k = p  # y = a exp(k t)
        res: list[float] = []
        jac: list[list[float]] = []
        for t, y in zip(ts, ys, strict=True):
            try:
                e = math.exp(k * t)
            except OverflowError:  # a wild trial step: infinite cost, so the solver rejects it
                return [math.inf] * len(ys), [[0.0, 0.0] for _ in ys]
            res.append(a * e - y)
            jac.append([e, a * t * e])
        return res, jac

    result = least_squares(
        residuals_and_jacobian,
        [math.exp(log_a), log_g],
        lower=(0.0, -math.inf),
        upper=(math.inf, math.inf),
    )
    a, k = result.params
    try:
        fitted = [a * math.exp(k * t) for t in ts]
    except OverflowError:
        msg = (
            "no compound trend fits this history: its loads change by more than a float "
            "can hold from one period to the next; fit model='linear' or check the data"
        )
        raise InfeasibleError(msg) from None
    return TrendFit(
        "compound",
        finite_result(a * scale, "the fitted current load"),
        finite_result(math.expm1(k), "the fitted growth rate"),
        _r_squared(ys, fitted),
        n,
    )


def project_growth(
    *,
    capacity: float,
    current: float | None = None,
    rate: float | None = None,
    model: GrowthModel = "compound",
    history: Iterable[float] | None = None,
    periods: int | None = None,
) -> GrowthProjection:
    """Project load growth and find when it crosses ``capacity``.

    Give either ``current`` and ``rate``, or a ``history`` of observed loads
    (one per period, oldest first) to fit them with :func:`fit_trend`.

    Args:
        capacity: The load the system can take (e.g. from :func:`headroom`), ``> 0``.
        current: Load now (period 0), ``> 0``.
        rate: Growth per period, ``>= 0``: a fraction for ``"compound"``
            (0.15 = 15% per period), load units for ``"linear"``.
        model: ``"compound"`` or ``"linear"``.
        history: Observed loads, oldest first, instead of ``current``/``rate``.
            A fitted rate may be negative (a shrinking load never crosses).
        periods: Schedule length after now, at most 100,000. By default
            the schedule runs to the first period at or over capacity (at
            most 1,000), or 12 periods if the capacity is never reached. A
            compound load beyond the float range is ``inf``.

    Returns:
        The crossing period (fractional, ``inf`` if never) and the schedule.

    Raises:
        ConfigurationError: For a missing or doubled input, negative values,
            an unknown model, or a bad history.
    """
    kind = _check_model(model)
    cap = positive(capacity, "capacity")
    trend: TrendFit | None = None
    if history is not None:
        if current is not None or rate is not None:
            msg = "pass either history or current and rate, not both"
            raise ConfigurationError(msg)
        trend = fit_trend(history, model=kind)
        now, growth = trend.current, trend.rate
    else:
        if current is None or rate is None:
            msg = "pass current and rate (or a history of observed loads to fit them)"
            raise ConfigurationError(msg)
        now = positive(current, "current")
        growth = non_negative(rate, "rate")
    crossing = _crossing(kind, now, growth, cap)
    if periods is None:
        length = (
            min(math.ceil(crossing), _MAX_SCHEDULE)
            if math.isfinite(crossing)
            else _DEFAULT_SCHEDULE
        )
    else:
        length = integer(periods, "periods", low=0, high=_MAX_PERIODS)
    schedule = tuple(
        GrowthPeriod(t, load, cap - load)
        for t in range(length + 1)
        for load in (_load(kind, now, growth, float(t)),)
    )
    return GrowthProjection(kind, now, growth, cap, crossing, schedule, trend)
