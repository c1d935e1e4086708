"""A label cardinality guard: bounded label values, runaway values folded into ``"other"``."""

from __future__ import annotations

import threading
import warnings

from perfprim.exceptions import ConfigurationError

__all__ = ["CardinalityWarning", "LabelGuard"]


class CardinalityWarning(UserWarning):
    """A label reached its limit of distinct values; new values are folded.

    Emitted once per guard and label name, with :func:`warnings.warn`. Filter
    it like any warning (``warnings.simplefilter("ignore", CardinalityWarning)``).
    """


class LabelGuard:
    """Keep the number of distinct values of each label bounded.

    The first ``max_values`` distinct values of a label pass through; every
    later new value is replaced by ``other`` and the first such fold warns once
    with :class:`CardinalityWarning`. Values already admitted keep passing, so
    a series never changes name. Checking an admitted value takes no lock.

    Args:
        max_values: Distinct values admitted per label name (>= 1).
        other: The value that replaces every value past the limit.
        metric: The metric name, used in the warning.

    Raises:
        ConfigurationError: If ``max_values`` is below 1 or ``other`` is empty.

    Example:
        >>> guard = LabelGuard(max_values=2, metric="demo")
        >>> [guard.fold("tenant", v) for v in ("a", "b", "a")]
        ['a', 'b', 'a']
    """

    __slots__ = ("_lock", "_seen", "_warned", "max_values", "metric", "other")

    def __init__(self, *, max_values: int = 100, other: str = "other", metric: str = "") -> None:
        if type(max_values) is not int or max_values < 1:
            msg = f"max_values must be an int >= 1 (got {max_values!r}), e.g. max_values=100"
            raise ConfigurationError(msg)
        if not other:
            msg = "other must be a non-empty string, e.g. other='other'"
            raise ConfigurationError(msg)
        self.max_values = max_values
        self.other = other
        self.metric = metric
        self._seen: dict[str, set[str]] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def fold(self, label: str, value: str) -> str:
        """Return ``value`` if admitted for ``label``, else :attr:`other`.

        Args:
            label: The label name.
            value: The candidate value.

        Returns:
            ``value`` while the label has room or already holds it, else ``other``.
        """
        seen = self._seen.get(label)
        if seen is not None and value in seen:
            return value
        with self._lock:
            seen = self._seen.setdefault(label, set())
            if value in seen:
                return value
            if len(seen) < self.max_values:
                seen.add(value)
                return value
            first = label not in self._warned
            self._warned.add(label)
        if first:
            where = f" of metric {self.metric!r}" if self.metric else ""
            warnings.warn(
                f"label {label!r}{where} reached {self.max_values} distinct values; "
                f"new values are recorded as {self.other!r}. Record fewer distinct values "
                "(no ids or free text in labels) or raise max_values",
                CardinalityWarning,
                stacklevel=3,
            )
        return self.other

    def admitted(self, label: str) -> frozenset[str]:
        """Return the values admitted so far for ``label``."""
        with self._lock:
            return frozenset(self._seen.get(label, ()))
