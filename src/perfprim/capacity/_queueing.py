"""M/M/c queues: Erlang B and C, staffing, and response time versus utilization.

Erlang C (the probability that an arrival waits in an M/M/c queue) is computed
from the Erlang B recursion ``B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1))`` and
``C = c B / (c - A (1 - B))``: every intermediate value lies in [0, 1], so it
is stable for any number of servers (no factorial, no power of ``A``). See
L. Kleinrock, *Queueing Systems, Vol. 1*, Wiley 1975, section 3.5, and
G. Koole, *Call Center Optimization*, 2013, ch. 4, for the recursion.

Bounded work. The recursion is a contraction: each step scales an error in
``B(k-1)`` by ``A k / (k + A B)^2 <= max(k / A, A / k)``, so it forgets where
it started. Below ``A`` the blocking is close to its fluid limit ``1 - k / A``
(Jagerman, "Some properties of the Erlang loss function", Bell System
Technical Journal 53(3), 1974), and a start at ``k0 = min(c, A) - 12 sqrt(A)``
from that value is wrong by less than ``exp(-12**2 / 2) ~ 5e-32`` by the time it
reaches ``min(c, A)``. Above ``A``, ``B`` falls like ``exp(-(k - A)^2 / 2A)`` and
the loop stops once it falls below 1e-300 (then B is 0), about ``37 sqrt(A)``
steps later. So
one evaluation costs at most about ``50 sqrt(A) + 800`` steps, whatever
``c`` is (``servers=10**400`` included); offered loads above
:data:`MAX_OFFERED_LOAD` Erlangs (1.6 million steps) are refused with a
:class:`~perfprim.exceptions.ConfigurationError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from perfprim import _validate as v
from perfprim._durations import to_seconds
from perfprim._validate import fraction, non_negative, positive
from perfprim.exceptions import ConfigurationError, InfeasibleError

__all__ = [
    "ErlangC",
    "erlang_b",
    "erlang_c",
    "knee_utilization",
    "response_time_at_utilization",
]

_MAX_EXTRA_SERVERS = 1_000_000
MAX_OFFERED_LOAD = 1e9
"""Largest offered load (Erlangs) the queueing functions accept: ~1.6 million
recursion steps, a fraction of a second. Beyond it, staffing is ``A + O(sqrt(A))``
servers to within a part per ten thousand."""
MAX_SERVERS = 10**15
"""Most servers Erlang C and the M/M/c functions accept (their formulas take c as a float)."""
_WARMUP = 12.0  # sqrt(A) multiples before min(c, A): error < exp(-72)
# Below this B is 0 for every purpose; checking for an exact 0.0 instead would
# loop until k = 2A, since A b / k rounds back up to the smallest subnormal.
_NEGLIGIBLE = 1e-300


def _check_load(load: float, name: str = "offered_load") -> float:
    if load > MAX_OFFERED_LOAD:
        msg = (
            f"{name} of {load:.6g} Erlangs is above the {MAX_OFFERED_LOAD:g} this module "
            "computes exactly (the work grows with its square root); at such loads the "
            "queue needs offered_load + a few sqrt(offered_load) servers"
        )
        raise ConfigurationError(msg)
    return load


def _erlang_b(servers: int, load: float) -> float:
    """Erlang B by the recursion, started late and stopped early (see the module notes)."""
    if load == 0.0:
        return 0.0 if servers else 1.0
    start = max(0, math.floor(min(servers, load) - _WARMUP * math.sqrt(load) - 1.0))
    b = 1.0 if start == 0 else 1.0 - start / load  # the fluid limit, forgotten on the way
    for k in range(start + 1, servers + 1):
        ab = load * b
        b = ab / (k + ab)
        if b < _NEGLIGIBLE:  # B only shrinks from here (A / k < 1): it underflows to 0
            return 0.0
    return b


def _erlang_c_from_b(servers: int, load: float, b: float) -> float:
    return servers * b / (servers - load * (1.0 - b))


def _servers(value: object, low: int) -> int:
    return v.integer(value, "servers", low=low, high=MAX_SERVERS)


def erlang_b(*, servers: int, offered_load: float) -> float:
    """Return the Erlang B blocking probability of an M/M/c/c loss system.

    Args:
        servers: Number of servers ``c``, ``>= 0``.
        offered_load: ``A = arrival rate x service time``, in Erlangs, ``>= 0``.

    Returns:
        The probability that an arrival finds every server busy and is lost.

    Raises:
        ConfigurationError: For a negative or non-integer ``servers``, a
            negative ``offered_load`` or one above :data:`MAX_OFFERED_LOAD`.
    """
    c = v.integer(servers, "servers", low=0)  # any size: the loop stops once B underflows
    load = _check_load(non_negative(offered_load, "offered_load"))
    return _erlang_b(c, load)


def _unstable(servers: int, load: float) -> InfeasibleError:
    need = math.floor(load) + 1
    return InfeasibleError(
        f"the queue is unstable: {servers} servers for an offered load of {load:.6g} Erlangs "
        f"(servers <= offered load, so the queue grows without bound). Use at least {need} "
        "servers, or ErlangC.servers_needed() for a service-level target."
    )


@dataclass(frozen=True, slots=True)
class ErlangC:
    """An M/M/c queue (Poisson arrivals, exponential service, ``c`` servers, FIFO).

    Construct it directly or with :func:`erlang_c`. Only stable queues exist:
    ``servers <= offered_load`` raises :class:`~perfprim.exceptions.InfeasibleError`.

    Attributes:
        servers: Number of servers (agents, workers, connections) ``c``.
        arrival_rate: Arrivals per second.
        service_time: Mean service time in seconds (``timedelta`` accepted).
        probability_of_waiting: Erlang C: the probability that an arrival waits.
    """

    servers: int
    arrival_rate: float
    service_time: float
    probability_of_waiting: float = field(init=False)

    def __post_init__(self) -> None:
        servers = _servers(self.servers, 1)
        rate = positive(self.arrival_rate, "arrival_rate")
        service = to_seconds(self.service_time, name="service_time")
        object.__setattr__(self, "service_time", service)
        object.__setattr__(self, "arrival_rate", rate)
        load = _check_load(rate * service, "arrival_rate x service_time")
        if servers <= load:
            raise _unstable(servers, load)
        b = _erlang_b(servers, load)
        object.__setattr__(self, "probability_of_waiting", _erlang_c_from_b(servers, load, b))

    @property
    def offered_load(self) -> float:
        """``A = arrival_rate x service_time``, in Erlangs (busy servers on average)."""
        return self.arrival_rate * self.service_time

    @property
    def occupancy(self) -> float:
        """``A / c``: the fraction of time each server is busy (utilization)."""
        return self.offered_load / self.servers

    def service_level(self, target_wait: float | timedelta) -> float:
        """Return the probability that an arrival waits at most ``target_wait``.

        ``1 - C exp(-(c - A) t / S)``.

        Args:
            target_wait: The wait target in seconds (``timedelta`` accepted), ``>= 0``.

        Returns:
            The fraction of arrivals answered within ``target_wait``.

        Raises:
            ConfigurationError: If ``target_wait`` is negative.
        """
        t = to_seconds(target_wait, name="target_wait", allow_zero=True)
        spare = self.servers - self.offered_load
        return 1.0 - self.probability_of_waiting * math.exp(-spare * t / self.service_time)

    @property
    def average_wait(self) -> float:
        """Mean time in queue ``W_q = C S / (c - A)`` in seconds (the "ASA")."""
        return self.probability_of_waiting * self.service_time / (self.servers - self.offered_load)

    @property
    def average_response_time(self) -> float:
        """Mean time in the system ``W = W_q + S`` in seconds."""
        return self.average_wait + self.service_time

    @property
    def average_queue_length(self) -> float:
        """Mean number waiting ``L_q = arrival_rate x W_q`` (Little's law)."""
        return self.arrival_rate * self.average_wait

    def wait_quantile(self, quantile: float) -> float:
        """Return the wait that a fraction ``quantile`` of arrivals do not exceed.

        Inverts :meth:`service_level`: ``0`` when ``quantile <= 1 - C``, else
        ``S / (c - A) ln(C / (1 - quantile))``.

        Args:
            quantile: A fraction in (0, 1), e.g. 0.95.

        Returns:
            The wait in seconds.

        Raises:
            ConfigurationError: If ``quantile`` is not in (0, 1).
        """
        q = fraction(quantile, "quantile", allow_one=False)
        c = self.probability_of_waiting
        if q <= 1.0 - c:
            return 0.0
        return self.service_time / (self.servers - self.offered_load) * math.log(c / (1.0 - q))

    @classmethod
    def servers_needed(
        cls,
        arrival_rate: float,
        service_time: float | timedelta,
        *,
        target_wait: float | timedelta = 20.0,
        service_level: float = 0.8,
        max_occupancy: float | None = None,
    ) -> int:
        """Return the smallest stable number of servers that meets a service-level target.

        The smallest ``c > A`` with ``service_level(target_wait) >= service_level``
        and, if given, ``A / c <= max_occupancy``. The Erlang B recursion is
        carried forward as ``c`` grows, so the search costs ``O(c)`` in all.

        Args:
            arrival_rate: Arrivals per second, ``> 0``.
            service_time: Mean service time in seconds (``timedelta`` accepted), ``> 0``.
            target_wait: Wait target in seconds (``timedelta`` accepted), ``>= 0``.
            service_level: Fraction of arrivals to serve within ``target_wait``, in (0, 1).
            max_occupancy: Optional cap on server utilization, in (0, 1].

        Returns:
            The number of servers.

        Raises:
            ConfigurationError: For a non-positive rate or service time, a
                negative wait, fractions outside their range, or an offered
                load above :data:`MAX_OFFERED_LOAD`.
            InfeasibleError: If ``max_occupancy`` asks for more than
                :data:`MAX_SERVERS` servers.
        """
        rate = positive(arrival_rate, "arrival_rate")
        service = to_seconds(service_time, name="service_time")
        wait = to_seconds(target_wait, name="target_wait", allow_zero=True)
        target = fraction(service_level, "service_level", allow_one=False)
        load = _check_load(rate * service, "arrival_rate x service_time")
        start = math.floor(load) + 1
        if max_occupancy is not None:
            cap = fraction(max_occupancy, "max_occupancy")
            if load / cap > MAX_SERVERS:
                msg = f"max_occupancy={max_occupancy!r} needs more than {MAX_SERVERS} servers"
                raise InfeasibleError(msg)
            start = max(start, math.ceil(load / cap))
            while load / start > cap:  # guard against rounding in the division above
                start += 1
        b = _erlang_b(start, load)
        c = start
        limit = start + _MAX_EXTRA_SERVERS
        while c < limit:
            p_wait = _erlang_c_from_b(c, load, b)
            level = 1.0 - p_wait * math.exp(-(c - load) * wait / service)
            if level >= target:
                return c
            c += 1
            ab = load * b
            b = ab / (c + ab)
        msg = f"no staffing up to {limit} servers meets service_level={service_level!r}"
        raise InfeasibleError(msg)  # pragma: no cover - the level tends to 1 long before


def erlang_c(
    *,
    servers: int,
    arrival_rate: float,
    service_time: float | timedelta,
) -> ErlangC:
    """Return the M/M/c queue with ``servers`` servers (see :class:`ErlangC`).

    Args:
        servers: Number of servers ``c``, ``>= 1``.
        arrival_rate: Arrivals per second, ``> 0``.
        service_time: Mean service time in seconds (``timedelta`` accepted), ``> 0``.

    Returns:
        The queue, with its probability of waiting computed.

    Raises:
        ConfigurationError: For invalid arguments.
        InfeasibleError: If ``servers <= arrival_rate x service_time`` (unstable).
    """
    return ErlangC(
        servers=servers,
        arrival_rate=arrival_rate,
        service_time=to_seconds(service_time, name="service_time"),
    )


def _mmc_response(servers: int, utilization: float, service_time: float) -> float:
    load = servers * utilization
    if utilization == 0.0:
        return service_time
    p_wait = _erlang_c_from_b(servers, load, _erlang_b(servers, load))
    return service_time + p_wait * service_time / (servers - load)


def response_time_at_utilization(
    utilization: float,
    *,
    servers: int = 1,
    service_time: float | timedelta = 1.0,
) -> float:
    """Return the mean response time of an M/M/c queue at a given utilization.

    ``R = S + C(c, c rho) S / (c (1 - rho))``; for M/M/1 this is ``S / (1 - rho)``.
    The curve is flat, then bends up sharply: the "knee" (see
    :func:`knee_utilization`).

    Args:
        utilization: Server utilization ``rho`` in [0, 1).
        servers: Number of servers ``c``, ``>= 1``.
        service_time: Mean service time in seconds (``timedelta`` accepted);
            the default 1.0 gives ``R / S``.

    Returns:
        The mean response time in seconds.

    Raises:
        ConfigurationError: For ``utilization < 0``, invalid ``servers`` or
            ``service_time``, or a load ``servers x utilization`` above
            :data:`MAX_OFFERED_LOAD`.
        InfeasibleError: For ``utilization >= 1`` (an unstable queue).
    """
    c = _servers(servers, 1)
    s = to_seconds(service_time, name="service_time")
    rho = non_negative(utilization, "utilization")
    if rho >= 1.0:
        msg = (
            f"utilization {utilization!r} >= 1 is an unstable queue: the response time is "
            "unbounded. Pass a utilization below 1."
        )
        raise InfeasibleError(msg)
    _check_load(c * rho, "servers x utilization")
    return _mmc_response(c, rho, s)


_KNEE_EXACT_SERVERS = 10**6  # above: the Halfin-Whitt asymptotic (exact search ~0.2 s here)


def _golden_max(f: Callable[[float], float], lo: float, hi: float, steps: int = 80) -> float:
    """The argmax of a unimodal ``f`` on ``[lo, hi]`` by golden-section search."""
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    x1 = hi - inv_phi * (hi - lo)
    x2 = lo + inv_phi * (hi - lo)
    f1, f2 = f(x1), f(x2)
    for _ in range(steps):
        if f1 < f2:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + inv_phi * (hi - lo)
            f2 = f(x2)
        else:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - inv_phi * (hi - lo)
            f1 = f(x1)
    return (lo + hi) / 2.0


def _halfin_whitt_wait(beta: float) -> float:
    """Limit of P(wait) when ``rho = 1 - beta / sqrt(c)`` and ``c`` grows (Halfin & Whitt 1981)."""
    density = math.exp(-beta * beta / 2.0) / math.sqrt(2.0 * math.pi)
    cumulative = 0.5 * (1.0 + math.erf(beta / math.sqrt(2.0)))
    return 1.0 / (1.0 + beta * cumulative / density)


def knee_utilization(*, servers: int = 1) -> float:
    """Return the utilization at the knee of the M/M/c response-time curve.

    The knee is where Kleinrock's *power* ``rho / (R / S)`` (throughput over
    delay) peaks (L. Kleinrock, "Power and deterministic rules of thumb for
    probabilistic problems in computer communications", ICC 1979). For M/M/1
    it is exactly 0.5; it moves towards 1 as servers are added, which is why
    large pools can run hotter.

    Up to 1,000,000 servers the power is maximised exactly (golden-section
    search over the Erlang C response time). Beyond, the Halfin-Whitt
    heavy-traffic limit is used (S. Halfin and W. Whitt, "Heavy-traffic
    limits for queues with many exponential servers", Operations Research
    29(3), 1981): with ``rho = 1 - beta / sqrt(c)``, ``P(wait)`` tends to
    ``(1 + beta Phi(beta) / phi(beta))^-1`` and the power to
    ``1 - (beta + P(wait) / beta) / sqrt(c)``, whose best ``beta`` is 0.84199;
    the knee is then ``1 - 0.84199 / sqrt(c)``, within ``0.34 / c`` of the exact
    one (measured from 1,000 to 1,000,000 servers).

    Args:
        servers: Number of servers ``c``, ``>= 1``.

    Returns:
        The utilization in (0, 1) that maximises power.

    Raises:
        ConfigurationError: For invalid ``servers``.
    """
    c = _servers(servers, 1)
    if c > _KNEE_EXACT_SERVERS:
        beta = _golden_max(lambda b: -(b + _halfin_whitt_wait(b) / b), 1e-9, 10.0)
        return 1.0 - beta / math.sqrt(c)

    def power(rho: float) -> float:
        return rho / _mmc_response(c, rho, 1.0)

    # 80 golden-section steps shrink the interval by 0.618^80.
    return _golden_max(power, 0.0, 1.0 - 1e-12)
