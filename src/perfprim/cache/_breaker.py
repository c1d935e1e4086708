"""A circuit breaker: a pure state machine with an injected clock.

Shared by :class:`~perfprim.cache._redis_tier.RedisTier` and its asyncio twin:
the tiers call :meth:`CircuitBreaker.allow` before a backend call and
:meth:`CircuitBreaker.record_success` / :meth:`CircuitBreaker.record_failure`
after it. Nothing here does I/O or sleeps, so the transitions are tested with
a fake clock.

States (the classic pattern, Nygard, *Release It!*)::

    closed --(failure_threshold consecutive failures)--> open
    open --(cooldown elapsed; one caller becomes the probe)--> half_open
    half_open --(probe succeeds)--> closed
    half_open --(probe fails)--> open (a new cool-down starts)

While half-open, callers other than the probe are refused. A probe that never
reports (its task was cancelled) is replaced by a new one after another
cool-down, so the breaker cannot stay half-open forever. A failure reported
while the circuit is open comes from a call admitted before it opened (a
straggler: an open circuit admits nobody); it is counted but does not restart
the cool-down, which runs from the opening. Otherwise, on a busy process
where calls take seconds to fail, stragglers kept the circuit open for
seconds after the backend was back (CI saw 7 s after a cluster failover).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from enum import Enum

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError

__all__ = ["CircuitBreaker", "CircuitState"]


class CircuitState(str, Enum):
    """The state of a :class:`CircuitBreaker`; its value is a short label for stats."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __str__(self) -> str:
        return self.value


class CircuitBreaker:
    """Counts consecutive backend failures and sheds calls while the backend is down.

    A *timeout* opens the circuit at once (``open_on_timeout``): each one has
    already cost its caller the whole timeout, so waiting for
    ``failure_threshold`` of them would make a hung server cost several
    callers the timeout, and one ``get_or_load`` (a generation re-read, then a
    read) twice. Cheap failures (a refused connection, a reset) count towards
    ``failure_threshold``.

    Args:
        failure_threshold: Consecutive failures that open the circuit (>= 1).
        cooldown: Seconds (or a ``timedelta``) the circuit stays open before
            one probe call is let through.
        clock: Monotonic clock in seconds; injectable for tests.
        open_on_timeout: Open on the first timeout instead of counting it.

    Raises:
        ConfigurationError: If ``failure_threshold < 1`` or ``cooldown`` is
            not a non-negative duration.
    """

    __slots__ = (
        "_clock",
        "_failures",
        "_lock",
        "_opened_at",
        "_probe_started",
        "_state",
        "cooldown",
        "failure_threshold",
        "open_on_timeout",
        "quiet",
    )

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        cooldown: float | timedelta = 3.0,
        clock: Callable[[], float] = time.monotonic,
        open_on_timeout: bool = True,
    ) -> None:
        threshold: object = failure_threshold  # checked at run time, whatever the annotation
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise ConfigurationError(
                f"failure_threshold must be an int >= 1, got {failure_threshold!r}"
            )
        self.failure_threshold = failure_threshold
        self.cooldown = to_seconds(cooldown, name="cooldown", allow_zero=True)
        self.open_on_timeout = open_on_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started = 0.0
        self.quiet = True
        """Closed with no failure counted: :meth:`allow` is ``True`` and
        :meth:`record_success` a no-op, so a hot path may skip both calls."""

    @property
    def state(self) -> CircuitState:
        """The current state (an open circuit past its cool-down still reads ``open``)."""
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failures recorded since the last success."""
        return self._failures

    def allow(self) -> bool:
        """Return whether a call may go to the backend now.

        Closed: always. Open: no, until the cool-down has elapsed; then this
        caller becomes the single probe and the state is half-open.
        Half-open: no, unless the probe has been silent for a whole cool-down.
        """
        state: CircuitState = self._state
        if state is CircuitState.CLOSED:
            return True
        now = self._clock()
        with self._lock:
            state = self._state  # re-read: another thread may have moved it
            if state is CircuitState.CLOSED:
                return True
            if state is CircuitState.OPEN:
                if now - self._opened_at < self.cooldown:
                    return False
            elif now - self._probe_started < self.cooldown:
                return False  # half-open and a probe is in flight
            self._state = CircuitState.HALF_OPEN
            self._probe_started = now
            return True

    def record_success(self) -> None:
        """The backend answered: close the circuit and reset the failure count."""
        if self._failures == 0 and self._state is CircuitState.CLOSED:
            return  # the hot path: nothing to change
        with self._lock:
            self._failures = 0
            self._state = CircuitState.CLOSED
            self.quiet = True

    def record_failure(self, *, timeout: bool = False) -> None:
        """The backend failed: count it; open the circuit at the threshold or on a failed probe.

        While the circuit is open the failure is only counted (see the module
        docstring: a straggler's failure does not restart the cool-down).

        Args:
            timeout: The failure was a timeout; with ``open_on_timeout`` it
                opens the circuit at once.
        """
        now = self._clock()
        with self._lock:
            self._failures += 1
            self.quiet = False
            if self._state is CircuitState.OPEN:
                return  # a straggler's: the cool-down runs from the opening
            if (
                self._state is CircuitState.HALF_OPEN
                or self._failures >= self.failure_threshold
                or (timeout and self.open_on_timeout)
            ):
                self._state = CircuitState.OPEN
                self._opened_at = now

    def retry_after(self) -> float:
        """Seconds until the next probe may run (``0.0`` when closed or due)."""
        if self._state is CircuitState.CLOSED:
            return 0.0
        start = self._opened_at if self._state is CircuitState.OPEN else self._probe_started
        return max(0.0, start + self.cooldown - self._clock())

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self._state.value!r}, failures={self._failures}, "
            f"failure_threshold={self.failure_threshold}, cooldown={self.cooldown})"
        )
