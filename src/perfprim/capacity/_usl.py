"""Gunther's Universal Scalability Law: the model, a bounded fit, and Amdahl's law.

``X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))``

(N. J. Gunther, *Guerrilla Capacity Planning*, Springer 2007, ch. 4-6). The
fit is non-linear least squares on the throughput itself, as the R package
``usl`` does (``method = "nls"``/``"nlxb"``), with ``0 <= sigma <= 1`` and
``kappa >= 0`` enforced.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from perfprim._validate import finite, integer, positive
from perfprim.capacity._lm import least_squares
from perfprim.exceptions import ConfigurationError, InfeasibleError

__all__ = ["MIN_USL_POINTS", "USLModel", "amdahl_speedup", "fit_usl"]

MIN_USL_POINTS = 6
"""Fewer measurements than this cannot pin down three parameters and a quality figure."""


@dataclass(frozen=True, slots=True)
class USLModel:
    """A Universal Scalability Law model ``X(N) = lambda_ N / (1 + sigma (N-1) + kappa N (N-1))``.

    Build one directly from known coefficients, or get one from :func:`fit_usl`
    (which also fills in the fit-quality fields).

    Attributes:
        sigma: Contention (serial fraction), ``0 <= sigma <= 1``.
        kappa: Coherency (crosstalk) penalty, ``kappa >= 0``.
        lambda_: Throughput at ``N = 1`` (the ideal rate per unit of concurrency).
        residuals: ``observed - fitted`` throughput per measurement, in input
            order (empty for a model not built by a fit).
        r_squared: ``1 - SSE / SST`` of the fit (None when not fitted).
        residual_standard_error: ``sqrt(SSE / (n - 3))`` (None when not fitted).
        converged: Whether the fit met its convergence test.
    """

    sigma: float
    kappa: float
    lambda_: float
    residuals: tuple[float, ...] = field(default=(), repr=False)
    r_squared: float | None = None
    residual_standard_error: float | None = field(default=None, repr=False)
    converged: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        sigma = finite(self.sigma, "sigma")
        kappa = finite(self.kappa, "kappa")
        for name in ("r_squared", "residual_standard_error"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, finite(value, name))
        object.__setattr__(self, "lambda_", positive(self.lambda_, "lambda_"))
        if not 0.0 <= sigma <= 1.0:
            msg = f"sigma must be in [0, 1], got {self.sigma!r}"
            raise ConfigurationError(msg)
        if kappa < 0.0:
            msg = f"kappa must be >= 0 (0 means no coherency penalty), got {self.kappa!r}"
            raise ConfigurationError(msg)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "kappa", kappa)

    def _denominator(self, n: float) -> float:
        return 1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0)

    def throughput(self, n: float) -> float:
        """Return the modelled throughput ``X(N)`` at concurrency ``n``.

        Args:
            n: Concurrency (users, threads, nodes), ``> 0``.

        Returns:
            ``lambda_ * n / (1 + sigma (n - 1) + kappa n (n - 1))``.

        Raises:
            ConfigurationError: If ``n`` is not a positive number.
        """
        n = positive(n, "n")
        if n < 1.0:  # 1 / n may overflow for a tiny n; lambda_ n does not
            return self.lambda_ * n / self._denominator(n)
        # lambda_ / (D / n), not lambda_ n / D: for a huge n the product overflows first
        return self.lambda_ / (1.0 / n + self.sigma * (1.0 - 1.0 / n) + self.kappa * (n - 1.0))

    def latency(self, n: float) -> float:
        """Return the modelled response time ``R(N) = N / X(N)`` (Little's law).

        Args:
            n: Concurrency, ``> 0``.

        Returns:
            ``(1 + sigma (n - 1) + kappa n (n - 1)) / lambda_``, in the time unit
            of ``1 / lambda_`` (seconds when throughput is per second).

        Raises:
            ConfigurationError: If ``n`` is not a positive number.
        """
        n = positive(n, "n")
        return self._denominator(n) / self.lambda_

    def efficiency(self, n: float) -> float:
        """Return ``X(N) / (lambda_ N)``: the fraction of linear scaling achieved at ``n``.

        Args:
            n: Concurrency, ``> 0``.

        Returns:
            A value in (0, 1].
        """
        n = positive(n, "n")
        return 1.0 / self._denominator(n)

    @property
    def peak_concurrency(self) -> float:
        """``N* = sqrt((1 - sigma) / kappa)``, where throughput peaks; ``inf`` if ``kappa == 0``."""
        if self.kappa == 0.0:
            return math.inf
        return math.sqrt((1.0 - self.sigma) / self.kappa)

    @property
    def peak_throughput(self) -> float:
        """``X(N*)``; equals :attr:`limit_throughput` when ``kappa == 0`` (no peak)."""
        n_star = self.peak_concurrency
        if math.isinf(n_star):
            return self.limit_throughput
        return self.throughput(n_star) if n_star > 0.0 else 0.0

    @property
    def knee_concurrency(self) -> float:
        """Where Kleinrock's power ``X(N) / R(N)`` peaks: the knee, before the peak.

        Past the knee each unit of concurrency buys less throughput than it
        costs in response time (L. Kleinrock, ICC 1979, the same rule as
        :func:`knee_utilization`). Maximising ``X^2 / N`` gives
        ``3 kappa N^2 + (sigma - kappa) N - (1 - sigma) = 0``, so
        ``N_knee = (kappa - sigma + sqrt((sigma - kappa)^2 + 12 kappa (1 - sigma))) / (6 kappa)``,
        and ``(1 - sigma) / sigma`` when ``kappa == 0``; ``inf`` for linear
        scaling (``sigma == kappa == 0``), 0 when ``sigma == 1``.
        """
        s, k = self.sigma, self.kappa
        if k == 0.0:
            return math.inf if s == 0.0 else (1.0 - s) / s
        return (k - s + math.sqrt((s - k) ** 2 + 12.0 * k * (1.0 - s))) / (6.0 * k)

    @property
    def limit_throughput(self) -> float:
        """``lambda_ / sigma``: the ceiling of Amdahl's law (``inf`` if ``sigma == 0``)."""
        if self.sigma == 0.0:
            return math.inf
        return self.lambda_ / self.sigma

    def concurrency_at_latency(self, latency: float) -> float:
        """Return the concurrency ``N`` at which ``R(N)`` equals ``latency``.

        Solves ``kappa N^2 + (sigma - kappa) N + (1 - sigma - lambda_ R) = 0`` for
        its positive root.

        Args:
            latency: Target response time, ``> 0``, in the time unit of ``1 / lambda_``.

        Returns:
            The concurrency (may be below 1 for a latency under ``R(1)``).

        Raises:
            ConfigurationError: If ``latency`` is not positive.
            InfeasibleError: If the latency is never reached (below ``R`` at
                ``N -> 0`` or, with ``sigma == kappa == 0``, anything but ``1/lambda_``).
        """
        r = positive(latency, "latency")
        s, k, lam = self.sigma, self.kappa, self.lambda_
        c = 1.0 - s - lam * r
        if k == 0.0:
            if s == 0.0:
                msg = (
                    f"latency is constant at {1.0 / lam!r} for a model with sigma == kappa == 0; "
                    "no concurrency gives another latency"
                )
                raise InfeasibleError(msg)
            n = -c / s
        else:
            b = s - k
            n = (
                (-b + math.sqrt(b * b - 4.0 * k * c)) / (2.0 * k)
                if b * b - 4.0 * k * c >= 0
                else -1
            )
        if n <= 0.0:
            msg = (
                f"latency {latency!r} is below what any concurrency can give (1 - sigma) / lambda_"
            )
            raise InfeasibleError(msg)
        return n

    def throughput_at_latency(self, latency: float) -> float:
        """Return the throughput when the response time is ``latency``: ``N(R) / R``.

        Args:
            latency: Target response time, ``> 0``.

        Returns:
            The throughput at that latency.

        Raises:
            ConfigurationError: If ``latency`` is not positive.
            InfeasibleError: As for :meth:`concurrency_at_latency`.
        """
        return self.concurrency_at_latency(latency) / latency

    def concurrency_at_throughput(self, throughput: float) -> float:
        """Return the smallest concurrency that reaches ``throughput`` (the rising side).

        Args:
            throughput: Target throughput, ``> 0``.

        Returns:
            The concurrency ``N`` with ``X(N) == throughput``, ``N <= N*``.

        Raises:
            ConfigurationError: If ``throughput`` is not positive.
            InfeasibleError: If ``throughput`` is above :attr:`peak_throughput`.
        """
        x = positive(throughput, "throughput")
        s, k, lam = self.sigma, self.kappa, self.lambda_
        # x (1 + s (N-1) + k N (N-1)) = lam N  ->  a N^2 + b N + c = 0
        a = x * k
        b = x * (s - k) - lam
        c = x * (1.0 - s)
        disc = b * b - 4.0 * a * c
        if b >= 0.0 or disc < 0.0:
            msg = (
                f"throughput {throughput!r} is above the model's peak {self.peak_throughput!r}; "
                "no concurrency reaches it"
            )
            raise InfeasibleError(msg)
        # Smaller root, in the form that does not cancel: 2c / (-b + sqrt(disc)).
        return 2.0 * c / (-b + math.sqrt(disc))

    def latency_at_throughput(self, throughput: float) -> float:
        """Return the response time at ``throughput`` on the rising side: ``N(X) / X``.

        Args:
            throughput: Target throughput, ``> 0``.

        Returns:
            The response time, in the time unit of ``1 / lambda_``.

        Raises:
            ConfigurationError: If ``throughput`` is not positive.
            InfeasibleError: If ``throughput`` is above :attr:`peak_throughput`.
        """
        return self.concurrency_at_throughput(throughput) / throughput


def amdahl_speedup(n: float, *, serial_fraction: float) -> float:
    """Amdahl's law, the ``kappa = 0`` case of the USL: ``N / (1 + sigma (N - 1))``.

    Args:
        n: Number of processors (or the concurrency), ``> 0``.
        serial_fraction: ``sigma``, the fraction of the work that is serial, in [0, 1].

    Returns:
        The speed-up over ``N = 1``; it tends to ``1 / serial_fraction``.

    Raises:
        ConfigurationError: If ``n`` is not positive or ``serial_fraction`` is outside [0, 1].
    """
    n = positive(n, "n")
    sigma = finite(serial_fraction, "serial_fraction")
    if not 0.0 <= sigma <= 1.0:
        msg = f"serial_fraction must be in [0, 1] (0.05 means 5% serial), got {serial_fraction!r}"
        raise ConfigurationError(msg)
    return n / (1.0 + sigma * (n - 1.0))


def _points(data: Iterable[tuple[float, float]]) -> tuple[list[float], list[float]]:
    ns: list[float] = []
    xs: list[float] = []
    try:
        pairs = list(data)
    except TypeError as exc:
        msg = "fit_usl takes an iterable of (concurrency, throughput) pairs"
        raise ConfigurationError(msg) from exc
    for index, pair in enumerate(pairs):
        try:
            n_raw, x_raw = pair
        except (TypeError, ValueError) as exc:
            msg = f"point {index} must be a (concurrency, throughput) pair, got {pair!r}"
            raise ConfigurationError(msg) from exc
        ns.append(positive(n_raw, f"concurrency of point {index}"))
        xs.append(positive(x_raw, f"throughput of point {index}"))
    if len(ns) < MIN_USL_POINTS:
        msg = (
            f"fit_usl needs at least {MIN_USL_POINTS} (concurrency, throughput) points, got "
            f"{len(ns)}: measure more concurrency levels"
        )
        raise ConfigurationError(msg)
    if len(set(ns)) < 3:
        msg = "fit_usl needs at least 3 distinct concurrency levels to fit 3 parameters"
        raise ConfigurationError(msg)
    return ns, xs


def _start(ns: Sequence[float], xs: Sequence[float]) -> list[float]:
    """Initial guess: lambda from the best per-unit rate, sigma/kappa from Gunther's quadratic."""
    lam = max(x / n for n, x in zip(ns, xs, strict=True))
    # N lam / X - 1 = sigma (N - 1) + kappa N (N - 1): linear in (sigma, kappa), no intercept.
    s11 = s12 = s22 = b1 = b2 = 0.0
    for n, x in zip(ns, xs, strict=True):
        u = n - 1.0
        v = n * (n - 1.0)
        y = n * lam / x - 1.0
        s11 += u * u
        s12 += u * v
        s22 += v * v
        b1 += u * y
        b2 += v * y
    det = s11 * s22 - s12 * s12
    sigma = kappa = 0.0
    if det > 0.0:
        sigma = (b1 * s22 - b2 * s12) / det
        kappa = (s11 * b2 - s12 * b1) / det
    if sigma < 0.0 or kappa < 0.0:
        # Refit with the offending coefficient held at its bound.
        if sigma < 0.0:
            sigma, kappa = 0.0, max(b2 / s22, 0.0) if s22 else 0.0
        else:
            sigma, kappa = max(b1 / s11, 0.0) if s11 else 0.0, 0.0
    return [min(sigma, 1.0), kappa, lam]


_MAX_ITERATIONS = 100_000


def fit_usl(
    points: Iterable[tuple[float, float]],
    *,
    max_iterations: int = 500,
) -> USLModel:
    """Fit the Universal Scalability Law to ``(concurrency, throughput)`` measurements.

    Non-linear least squares on the throughput (not on a linearised form), by
    a bounded Levenberg-Marquardt solver, with ``0 <= sigma <= 1`` and
    ``kappa >= 0`` enforced: the same model and bounds as the R package
    ``usl`` (``method = "nlxb"``). A system with no coherency penalty gets
    ``kappa == 0`` exactly and an infinite :attr:`USLModel.peak_concurrency`.

    Args:
        points: At least 6 ``(concurrency, throughput)`` pairs, concurrency and
            throughput ``> 0``, at least 3 distinct concurrency levels. The
            order does not matter; repeated levels are fine.
        max_iterations: Bound on the solver's steps, 1 to 100,000.

    Returns:
        The fitted model with its residuals, ``r_squared`` and residual
        standard error.

    Raises:
        ConfigurationError: For fewer than 6 points, non-positive or
            non-finite values, fewer than 3 distinct concurrency levels, or
            ``max_iterations`` outside 1..100,000.
    """
    iterations = integer(max_iterations, "max_iterations", low=1, high=_MAX_ITERATIONS)
    ns, raw = _points(points)
    # The model is linear in lambda_: fit throughput / scale and scale lambda_
    # back, so that squares of throughputs near 1e300 do not overflow.
    scale = max(raw)
    xs = [x / scale for x in raw]

    def residuals_and_jacobian(p: Sequence[float]) -> tuple[list[float], list[list[float]]]:
        sigma, kappa, lam = p
        res: list[float] = []
        jac: list[list[float]] = []
        for n, x in zip(ns, xs, strict=True):
            nm1 = n - 1.0
            den = 1.0 + sigma * nm1 + kappa * n * nm1
            fitted = lam * n / den
            res.append(fitted - x)
            d = fitted / den
            jac.append([-d * nm1, -d * n * nm1, n / den])
        return res, jac

    result = least_squares(
        residuals_and_jacobian,
        _start(ns, xs),
        lower=(0.0, 0.0, 1e-300),
        upper=(1.0, math.inf, math.inf),
        max_iterations=iterations,
    )
    sigma, kappa, lam = result.params
    observed_minus_fitted = tuple(-r * scale for r in result.residuals)
    mean = math.fsum(xs) / len(xs)
    sst = math.fsum((x - mean) ** 2 for x in xs)
    sse = result.cost
    r_squared = 1.0 - sse / sst if sst > 0.0 else (1.0 if sse == 0.0 else 0.0)
    return USLModel(
        sigma=sigma,
        kappa=kappa,
        lambda_=lam * scale,
        residuals=observed_minus_fitted,
        r_squared=r_squared,
        residual_standard_error=math.sqrt(sse / (len(xs) - 3)) * scale,
        converged=result.converged,
    )
