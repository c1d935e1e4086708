"""The planner: when each request of an open-model run is meant to be sent.

Pure and deterministic: no clock, no I/O. Offsets are seconds from the start
of the run.

wrk2 plans request ``i`` at ``start + i / rate`` for a constant rate. With a
rate that changes linearly within each stage, the generalisation is: request
``i`` is planned at the time ``t`` where the number of requests offered so
far, ``N(t) = integral of rate(s) ds from 0 to t``, reaches ``i``. Within a
stage starting at ``t0`` with rate ``r0`` ramping to ``r1`` over ``D``
seconds, ``N(t0 + u) = N(t0) + r0 u + (r1 - r0) u^2 / (2 D)``, a quadratic in
``u`` solved in its cancellation-free form ``u = 2x / (r0 + sqrt(r0^2 + 2 (r1
- r0) x / D))`` for ``x = i - N(t0)``. A run of total ``N(T)`` therefore
plans ``ceil(N(T))`` requests, and any interval ``[a, b)`` holds
``ceil(N(b)) - ceil(N(a))`` of them: the integral of the rate, to within one.

Worker processes interleave: worker ``k`` of ``W`` takes the requests
``i = k, k + W, k + 2W, ...``, so together they send exactly the single
process's plan, each at ``1 / W`` of the rate.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from perfprim.exceptions import ConfigurationError
from perfprim.load._stages import Stage, check_stages

__all__ = ["Schedule"]


@dataclass(frozen=True, slots=True)
class _Piece:
    start: float  # seconds from the run's start
    duration: float
    r0: float
    r1: float
    n0: float  # requests offered before this piece

    @property
    def n1(self) -> float:
        return self.n0 + (self.r0 + self.r1) * self.duration / 2.0

    def offset(self, x: float) -> float:
        """Seconds into the piece at which ``x`` requests of it have been offered."""
        if x <= 0.0:
            return 0.0
        if self.r0 == self.r1:  # a constant rate (the hot case): no square root
            return min(x / self.r0, self.duration)
        disc = self.r0 * self.r0 + 2.0 * (self.r1 - self.r0) * x / self.duration
        u = 2.0 * x / (self.r0 + math.sqrt(max(disc, 0.0)))
        return min(u, self.duration)


class Schedule:
    """Planned send offsets for a list of stages (optionally one worker's share).

    Args:
        stages: The load profile.
        worker: This worker's index, ``0 <= worker < workers``.
        workers: How many workers share the plan (interleaved).

    Raises:
        ConfigurationError: If the stages or the worker split are invalid.

    Example:
        >>> s = Schedule([Stage(duration=1, rate=4)])
        >>> list(s)
        [0.0, 0.25, 0.5, 0.75]
        >>> ramp = Schedule([Stage(0, 0), Stage(duration=2, rate=4)])
        >>> ramp.total, [round(t, 3) for t in ramp]
        (4, [0.0, 1.0, 1.414, 1.732])
    """

    def __init__(self, stages: Iterable[Stage], *, worker: int = 0, workers: int = 1) -> None:
        self.stages = check_stages(stages)
        raw_workers: object = workers  # checked at runtime: callers may not be type-checked
        raw_worker: object = worker
        if isinstance(raw_workers, bool) or not isinstance(raw_workers, int) or workers < 1:
            msg = f"workers must be an int >= 1, got {workers!r}"
            raise ConfigurationError(msg)
        if (
            isinstance(raw_worker, bool)
            or not isinstance(raw_worker, int)
            or not 0 <= worker < workers
        ):
            msg = f"worker must be an int in [0, {workers}), got {worker!r}"
            raise ConfigurationError(msg)
        self.worker = worker
        self.workers = workers
        pieces: list[_Piece] = []
        t = n = 0.0
        previous = self.stages[0].rate
        for stage in self.stages:
            if stage.duration > 0.0:
                piece = _Piece(t, stage.duration, previous, stage.rate, n)
                pieces.append(piece)
                t += stage.duration
                n = piece.n1
            previous = stage.rate
        self._pieces = tuple(pieces)
        self._starts = [p.start for p in pieces]
        self.duration = t
        """Seconds from the first stage's start to the last stage's end."""
        self.offered = n
        """The integral of the rate over the run (requests offered, fractional)."""
        self.planned = math.ceil(n)
        """Requests planned for all workers together."""
        if self.planned == 0:
            msg = (
                "the stages plan no request (a rate > 0 only in stages of zero length): "
                "give a stage with duration > 0 and rate > 0"
            )
            raise ConfigurationError(msg)
        self.total = len(range(worker, self.planned, workers))
        """Requests planned for this worker."""

    def rate_at(self, t: float) -> float:
        """Return the planned rate (requests/s, all workers) at ``t`` seconds into the run.

        Args:
            t: Seconds from the start; outside the run the rate is 0.

        Returns:
            The rate.
        """
        if not 0.0 <= t < self.duration:
            return 0.0
        piece = self._pieces[bisect_right(self._starts, t) - 1]
        return piece.r0 + (piece.r1 - piece.r0) * (t - piece.start) / piece.duration

    def offered_until(self, t: float) -> float:
        """Return ``N(t)``: requests offered (all workers) from the start to ``t`` seconds.

        Args:
            t: Seconds from the start.

        Returns:
            The integral of the rate over ``[0, t]`` (fractional).
        """
        if t <= 0.0:
            return 0.0
        if t >= self.duration:
            return self.offered
        piece = self._pieces[bisect_right(self._starts, t) - 1]
        u = t - piece.start
        return piece.n0 + piece.r0 * u + (piece.r1 - piece.r0) * u * u / (2.0 * piece.duration)

    def time_of(self, i: int) -> float:
        """Return the planned offset of request ``i`` (counted over all workers).

        Args:
            i: Request index, ``0 <= i < planned``.

        Returns:
            Seconds from the start.

        Raises:
            ConfigurationError: If ``i`` is outside the plan.
        """
        if not 0 <= i < self.planned:
            msg = f"request index must be in [0, {self.planned}), got {i!r}"
            raise ConfigurationError(msg)
        for piece in self._pieces:
            if i < piece.n1 and piece.n1 > piece.n0:
                return piece.start + piece.offset(i - piece.n0)
        last = self._pieces[-1]  # pragma: no cover - float rounding at the very end
        return last.start + last.duration

    def __iter__(self) -> Iterator[float]:
        """Yield this worker's planned offsets, in non-decreasing order."""
        pieces = self._pieces
        k = 0
        piece = pieces[0]
        previous = 0.0
        for i in range(self.worker, self.planned, self.workers):
            while i >= piece.n1 and k + 1 < len(pieces):
                k += 1
                piece = pieces[k]
            # float rounding must never reorder the plan
            t = max(piece.start + piece.offset(i - piece.n0), previous)
            previous = t
            yield t

    def __len__(self) -> int:
        return self.total

    def __repr__(self) -> str:
        share = f", worker={self.worker}, workers={self.workers}" if self.workers > 1 else ""
        return f"Schedule(duration={self.duration!r}, planned={self.planned}{share})"
