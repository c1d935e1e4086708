"""Freshness of one entry: fresh, refresh early (XFetch), serve stale, or miss.

A pure function of ``(entry, now, rand)``: the sync and async caches call the
same :func:`decide`, with their own clock and random source injected.

XFetch (A. Vattani, F. Chierichetti, K. Lowenstein, "Optimal Probabilistic
Cache Stampede Prevention", PVLDB 8(8), 2015) recomputes a value *before* it
expires, with a probability that grows as expiry nears: a read at ``now``
recomputes when ``now - delta * beta * ln(rand) >= expiry``, ``rand`` uniform
in (0, 1]. With ``x`` seconds of freshness left that happens with probability
``exp(-x / (delta * beta))``.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from typing import Final

from perfprim.cache._entry import Entry
from perfprim.exceptions import ConfigurationError

__all__ = [
    "Decision",
    "before_window",
    "check_beta",
    "decide",
    "decide_lazy",
    "early_probability",
    "expected_extra_recomputations",
    "uniform_open_closed",
]

RandomSource = Callable[[], float]
"""A zero-argument callable returning a float uniform in (0, 1]."""

MAX_NEG_LN_RAND: Final = 53 * math.log(2)
"""``-ln(2**-53)`` = 36.7: the largest ``-ln(rand)`` for ``rand = 1 - random.random()``.

``random.random()`` returns multiples of ``2**-53``, so ``rand`` drawn by
:func:`uniform_open_closed` is at least ``2**-53``. An entry with more than
``delta * beta * 36.7`` seconds left is therefore FRESH whatever is drawn,
which lets :func:`decide_lazy` skip the draw (and the logarithm) on almost
every hit.
"""


class Decision(enum.Enum):
    """What a read should do with the entry it found."""

    FRESH = "fresh"
    """Serve the value; nothing else to do."""
    REFRESH_EARLY = "refresh_early"
    """Serve the value (still fresh) and let one caller recompute it now (XFetch)."""
    STALE = "stale"
    """Past expiry but within ``stale_until``: serve it and refresh in the background."""
    MISS = "miss"
    """No usable value: load it (the caller waits)."""


# Enum attribute access costs ~80 ns on CPython 3.11; the hit path reads these globals instead.
_FRESH: Final = Decision.FRESH
_REFRESH_EARLY: Final = Decision.REFRESH_EARLY
_STALE: Final = Decision.STALE
_MISS: Final = Decision.MISS


def uniform_open_closed() -> float:
    """Return a float uniform in (0, 1], the domain XFetch's ``ln(rand)`` needs.

    ``random.random()`` is uniform in [0, 1); ``1 - random.random()`` moves the
    interval to (0, 1], so ``ln`` never sees 0.
    """
    return 1.0 - random.random()


def check_beta(beta: float) -> float:
    """Validate XFetch's ``beta`` once, at configuration time.

    Args:
        beta: The early-expiry aggressiveness; ``0`` disables early refresh.

    Returns:
        ``beta`` as a float.

    Raises:
        ConfigurationError: If ``beta`` is negative or not finite.
    """
    raw: object = beta
    if not isinstance(raw, (int, float)) or isinstance(raw, bool):
        raise ConfigurationError(f"beta must be a number >= 0 (1.0 is the default), got {beta!r}")
    value = float(beta)
    if not math.isfinite(value) or value < 0.0:
        raise ConfigurationError(
            f"beta must be a finite number >= 0 (0 disables early refresh, 1.0 is the "
            f"default, > 1 refreshes earlier), got {beta!r}"
        )
    return value


def decide(entry: Entry | None, now: float, *, beta: float, rand: float) -> Decision:
    """Decide what a read at ``now`` does with ``entry``.

    Args:
        entry: The entry found in a tier, or ``None`` for a miss.
        now: The current wall-clock time in seconds (same scale as the entry).
        beta: XFetch's ``beta`` (already validated by :func:`check_beta`);
            ``0`` disables early refresh.
        rand: A number uniform in (0, 1] (see :func:`uniform_open_closed`);
            only read when early refresh is possible.

    Returns:
        :attr:`Decision.MISS` without an entry or past ``stale_until``;
        :attr:`Decision.STALE` from ``expires_at`` (inclusive) to
        ``stale_until`` (exclusive); :attr:`Decision.REFRESH_EARLY` before
        expiry when ``now - delta * beta * ln(rand) >= expires_at``;
        :attr:`Decision.FRESH` otherwise.

    Examples:
        >>> from perfprim.cache.advanced import Entry
        >>> e = Entry("v", expires_at=100.0, delta=2.0, stale_until=110.0)
        >>> decide(e, 90.0, beta=1.0, rand=1.0).name
        'FRESH'
        >>> decide(e, 99.0, beta=1.0, rand=0.5).name    # 99 + 2 * ln 2 >= 100
        'REFRESH_EARLY'
        >>> decide(e, 105.0, beta=1.0, rand=0.5).name
        'STALE'
        >>> decide(e, 110.0, beta=1.0, rand=0.5).name
        'MISS'
    """
    if entry is None:
        return _MISS
    expires_at = entry.expires_at
    if now >= expires_at:
        return _STALE if now < entry.stale_until else _MISS
    delta = entry.delta
    if beta > 0.0 and delta > 0.0 and now - delta * beta * math.log(rand) >= expires_at:
        return _REFRESH_EARLY
    return _FRESH


def before_window(entry: Entry, now: float, beta: float) -> bool:
    """Whether ``entry`` is fresh and no draw could refresh it early yet.

    ``-ln(rand)`` is at most :data:`MAX_NEG_LN_RAND` for ``rand >= 2**-53``, so
    before ``expires_at - delta * beta * MAX_NEG_LN_RAND`` XFetch answers
    FRESH whatever the draw: two comparisons, no random number, no logarithm.
    The caches call it on their lower-tier hit path; :func:`decide_lazy`
    starts with it.

    Args:
        entry: A cached entry.
        now: The current wall-clock time in seconds.
        beta: XFetch's ``beta``; ``0`` means never early.

    Returns:
        ``True`` when the entry is fresh and outside the early-refresh window.
    """
    expires_at = entry.expires_at
    return now < expires_at and now + entry.delta * beta * MAX_NEG_LN_RAND < expires_at


def decide_lazy(entry: Entry | None, now: float, *, beta: float, source: RandomSource) -> Decision:
    """:func:`decide`, drawing ``rand`` from ``source`` only when it can matter.

    Gives the same answer as ``decide(entry, now, beta=beta, rand=source())``
    for every source whose values are >= ``2**-53`` (as
    :func:`uniform_open_closed` guarantees), but a hit far from expiry costs
    two comparisons and a multiplication instead of a draw and a logarithm.

    Args:
        entry: The entry found in a tier, or ``None`` for a miss.
        now: The current wall-clock time in seconds.
        beta: XFetch's ``beta`` (validated); ``0`` disables early refresh.
        source: Zero-argument callable returning a float in [2**-53, 1].

    Returns:
        The :class:`Decision`.
    """
    if entry is None:
        return _MISS
    if before_window(entry, now, beta):
        return _FRESH
    expires_at = entry.expires_at
    if now >= expires_at:
        return _STALE if now < entry.stale_until else _MISS
    if now - entry.delta * beta * math.log(source()) >= expires_at:
        return _REFRESH_EARLY
    return _FRESH


def early_probability(remaining: float, *, delta: float, beta: float) -> float:
    """Probability that one read recomputes early with ``remaining`` seconds left.

    ``P = exp(-remaining / (delta * beta))`` (Vattani et al. 2015, section 4).

    Args:
        remaining: Seconds of freshness left (``expires_at - now``), >= 0.
        delta: Seconds the last computation took.
        beta: XFetch's ``beta``.

    Returns:
        The probability in [0, 1]; ``0`` when ``delta`` or ``beta`` is 0.

    Examples:
        >>> round(early_probability(2.0, delta=2.0, beta=1.0), 4)   # e^-1
        0.3679
    """
    if delta <= 0.0 or beta <= 0.0:
        return 1.0 if remaining <= 0.0 else 0.0
    return math.exp(-max(remaining, 0.0) / (delta * beta))


def expected_extra_recomputations(beta: float) -> float:
    """Readers expected to also recompute while the first early recompute runs.

    Without a lock, XFetch lets about ``e^(1/beta) - 1`` further readers start
    a recomputation during the ``delta`` seconds the first one takes
    (Vattani et al. 2015). perfprim pairs XFetch with single-flight and a
    Redis refresh token, so in perfprim that number is 0.

    Args:
        beta: XFetch's ``beta`` (> 0).

    Returns:
        ``e^(1/beta) - 1``.

    Raises:
        ConfigurationError: If ``beta`` is not > 0.

    Examples:
        >>> round(expected_extra_recomputations(1.0), 3)
        1.718
    """
    if check_beta(beta) == 0.0:
        raise ConfigurationError("beta must be > 0 here: with beta=0 there is no early refresh")
    return math.expm1(1.0 / beta)
