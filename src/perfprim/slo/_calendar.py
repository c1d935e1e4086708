"""Calendar-aligned SLO periods: "this week", "this month", in a time zone (OpenSLO calendars).

A rolling window always looks back the same number of seconds. A calendar
window restarts its error budget at fixed boundaries: every Monday at 00:00,
on the first of each month, counted from a start time in a time zone. The
periods are computed on the local wall clock, so a daily period stays
midnight-to-midnight across daylight-saving changes (and lasts 23 or 25 hours
then), and a monthly one follows the calendar (28 to 31 days).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from perfprim import _validate as v
from perfprim.exceptions import ConfigurationError

__all__ = ["NOMINAL_SECONDS", "CalendarWindow"]

NOMINAL_SECONDS = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "M": 30 * 86400,
    "Q": 91 * 86400,
    "Y": 365 * 86400,
}
"""Seconds per OpenSLO duration unit; months, quarters and years at their nominal
lengths (30, 91 and 365 days), which is what a rolling window of such a unit means."""

_MONTHS = {"M": 1, "Q": 3, "Y": 12}
_MAX_EPOCH = 253_402_300_799.0  # 9999-12-31T23:59:59Z


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = (
            f"time zone {name!r} is not in the time zone database: use an IANA name such "
            "as 'UTC' or 'America/New_York' (pip install tzdata if the system has none)"
        )
        raise ConfigurationError(msg) from exc


@dataclass(frozen=True, slots=True)
class CalendarWindow:
    """A calendar-aligned budget period: ``count`` units from ``start``, in ``time_zone``.

    Attributes:
        count: How many units one period lasts (``1`` for "1M").
        unit: ``"s"``, ``"m"``, ``"h"``, ``"d"``, ``"w"``, ``"M"`` (month),
            ``"Q"`` (quarter) or ``"Y"`` (year), as OpenSLO writes them.
        start: The start of one period, a naive local time in ``time_zone``
            (OpenSLO ``calendar.startTime``); periods repeat before and after.
        time_zone: An IANA time zone name (OpenSLO ``calendar.timeZone``).

    Raises:
        ConfigurationError: For a non-positive count, an unknown unit or
            time zone.

    Example:
        >>> from datetime import datetime
        >>> month = CalendarWindow(1, "M", datetime(2024, 1, 1), "UTC")
        >>> start, end = month.period(datetime(2024, 2, 10, 12, tzinfo=timezone.utc))
        >>> (end - start) / 86400  # February 2024
        29.0
    """

    count: int
    unit: str
    start: datetime
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        v.integer(self.count, "count", low=1, high=10**6)
        v.choice(self.unit, "unit", tuple(NOMINAL_SECONDS))
        v.instance(self.start, "start", datetime, "a datetime")
        v.text(self.time_zone, "time_zone")
        _zone(self.time_zone)
        if self.start.tzinfo is not None:
            local = self.start.astimezone(_zone(self.time_zone)).replace(tzinfo=None)
            object.__setattr__(self, "start", local)

    @property
    def nominal_seconds(self) -> float:
        """The nominal length of a period (a month counts 30 days), for burn rates."""
        return float(self.count * NOMINAL_SECONDS[self.unit])

    def _boundary(self, k: int) -> datetime:
        """The local wall-clock start of period ``k`` (period 0 starts at ``start``)."""
        try:
            return self._local_boundary(k)
        except (ValueError, OverflowError) as exc:
            msg = f"the calendar period {k} from {self.start} is outside the years 1 to 9999"
            raise ConfigurationError(msg) from exc

    def _local_boundary(self, k: int) -> datetime:
        if self.unit in _MONTHS:
            months = self.start.month - 1 + k * self.count * _MONTHS[self.unit]
            year = self.start.year + months // 12
            month = months % 12 + 1
            day = min(self.start.day, _days_in_month(year, month))
            return self.start.replace(year=year, month=month, day=day)
        step = timedelta(seconds=self.count * NOMINAL_SECONDS[self.unit])
        return self.start + k * step

    def _epoch(self, local: datetime) -> float:
        return local.replace(tzinfo=_zone(self.time_zone)).timestamp()

    def period(self, at: datetime | float) -> tuple[float, float]:
        """The period holding ``at``, as ``(start, end)`` seconds since the epoch.

        Args:
            at: A time: an aware ``datetime``, or seconds since the epoch.

        Returns:
            The start (inclusive) and end (exclusive) of the period.

        Raises:
            ConfigurationError: If ``at`` is a naive datetime or not a time.
        """
        if isinstance(at, datetime):
            if at.tzinfo is None:
                msg = "at must be an aware datetime (with tzinfo) or epoch seconds"
                raise ConfigurationError(msg)
            moment = at.timestamp()
        else:
            moment = v.number(at, "at", low=0.0, high=_MAX_EPOCH, hint="seconds since the epoch")
        if not 0 <= moment <= _MAX_EPOCH:
            msg = f"at must be between 1970 and 9999, got {at!r}"
            raise ConfigurationError(msg)
        local = datetime.fromtimestamp(moment, tz=timezone.utc).astimezone(_zone(self.time_zone))
        naive = local.replace(tzinfo=None)
        # A first guess from the nominal length, then a step or two to the exact period.
        k = math.floor((naive - self.start).total_seconds() / self.nominal_seconds)
        while self._epoch(self._boundary(k)) > moment:
            k -= 1
        while self._epoch(self._boundary(k + 1)) <= moment:
            k += 1
        return self._epoch(self._boundary(k)), self._epoch(self._boundary(k + 1))


def _days_in_month(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day
