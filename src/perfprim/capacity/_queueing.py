"""M/M/c queues: Erlang B and C, staffing, and response time versus utilization.

Erlang C (the probability that an arrival waits in an M/M/c queue) is computed
from the Erlang B recursion ``B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1))`` and
``C = c B / (c - A (1 - B))``: every intermediate value lies in [0, 1], so it
is stable for any number of servers (no factorial, no power of ``A``). See
L. Kleinrock, *Queueing Systems, Vol. 1*, Wiley 1975, section 3.5, and
G. Koole, *Call Center Optimization*, 2013, ch. 4, for the recursion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from perfprim.capacity._validate import fraction, non_negative, positive, seconds, whole
from perfprim.exceptions import InfeasibleError

__all__ = [
    "ErlangC",
    "erlang_b",
    "erlang_c",
    "knee_utilization",
    "response_time_at_utilization",
]

_MAX_EXTRA_SERVERS = 1_000_000


def _erlang_b(servers: int, load: float) -> float:
    b = 1.0
    for k in range(1, servers + 1):
        ab = load * b
        b = ab / (k + ab)
    return b


def _erlang_c_from_b(servers: int, load: float, b: float) -> float:
    return servers * b / (servers - load * (1.0 - b))


def erlang_b(*, servers: int, offered_load: float) -> float:
    """Return the Erlang B blocking probability of an M/M/c/c loss system.

    Args:
        servers: Number of servers ``c``, ``>= 0``.
        offered_load: ``A = arrival rate x service time``, in Erlangs, ``>= 0``.

    Returns:
        The probability that an arrival finds every server busy and is lost.

    Raises:
        ConfigurationError: For a negative or non-integer ``servers`` or a
            negative ``offered_load``.
    """
    c = whole(servers, "servers", minimum=0)
    load = non_negative(offered_load, "offered_load")
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
        servers = whole(self.servers, "servers", minimum=1)
        rate = positive(self.arrival_rate, "arrival_rate")
        service = positive(seconds(self.service_time, "service_time"), "service_time")
        object.__setattr__(self, "service_time", service)
        object.__setattr__(self, "arrival_rate", rate)
        load = rate * service
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
        t = non_negative(seconds(target_wait, "target_wait"), "target_wait")
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
                negative wait, or fractions outside their range.
        """
        rate = positive(arrival_rate, "arrival_rate")
        service = positive(seconds(service_time, "service_time"), "service_time")
        wait = non_negative(seconds(target_wait, "target_wait"), "target_wait")
        target = fraction(service_level, "service_level", allow_one=False)
        load = rate * service
        start = math.floor(load) + 1
        if max_occupancy is not None:
            cap = fraction(max_occupancy, "max_occupancy")
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
        service_time=seconds(service_time, "service_time"),
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
        ConfigurationError: For ``utilization < 0`` or invalid ``servers``/``service_time``.
        InfeasibleError: For ``utilization >= 1`` (an unstable queue).
    """
    c = whole(servers, "servers", minimum=1)
    s = positive(seconds(service_time, "service_time"), "service_time")
    rho = non_negative(utilization, "utilization")
    if rho >= 1.0:
        msg = (
            f"utilization {utilization!r} >= 1 is an unstable queue: the response time is "
            "unbounded. Pass a utilization below 1."
        )
        raise InfeasibleError(msg)
    return _mmc_response(c, rho, s)


def knee_utilization(*, servers: int = 1) -> float:
    """Return the utilization at the knee of the M/M/c response-time curve.

    The knee is where Kleinrock's *power* ``rho / (R / S)`` (throughput over
    delay) peaks (L. Kleinrock, "Power and deterministic rules of thumb for
    probabilistic problems in computer communications", ICC 1979). For M/M/1
    it is exactly 0.5; it moves towards 1 as servers are added, which is why
    large pools can run hotter.

    Args:
        servers: Number of servers ``c``, ``>= 1``.

    Returns:
        The utilization in (0, 1) that maximises power.

    Raises:
        ConfigurationError: For invalid ``servers``.
    """
    c = whole(servers, "servers", minimum=1)

    def power(rho: float) -> float:
        return rho / _mmc_response(c, rho, 1.0)

    # Golden-section search on a unimodal function; 80 steps shrink the interval by 0.618^80.
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    lo, hi = 0.0, 1.0 - 1e-12
    x1 = hi - inv_phi * (hi - lo)
    x2 = lo + inv_phi * (hi - lo)
    f1, f2 = power(x1), power(x2)
    for _ in range(80):
        if f1 < f2:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + inv_phi * (hi - lo)
            f2 = power(x2)
        else:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - inv_phi * (hi - lo)
            f1 = power(x1)
    return (lo + hi) / 2.0
