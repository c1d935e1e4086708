"""HTTP-date parsing and formatting (RFC 9110 §5.6.7).

A recipient must accept three formats::

    Sun, 06 Nov 1994 08:49:37 GMT    IMF-fixdate (the only one to generate)
    Sunday, 06-Nov-94 08:49:37 GMT   obsolete RFC 850 format
    Sun Nov  6 08:49:37 1994         ANSI C asctime() format

Written here rather than taken from :func:`email.utils.parsedate_tz` because
that parser is lenient where HTTP must not be and strict where HTTP asks for
the opposite: it accepts day 32, hour 25 and any time zone, and it maps a
two-digit year with a fixed pivot (``69`` means 1969) where RFC 9110 says
"a timestamp that appears to be more than 50 years in the future" is in the
past. The tests compare this parser with :mod:`email.utils` and Werkzeug on
valid dates.

Robustness, as §5.6.7 encourages: surrounding whitespace is ignored, names
are matched case-insensitively, the day name is not checked against the
date, ``UTC`` is accepted for ``GMT``. Anything else that is not one of the
three formats gives ``None``; callers decide what an invalid date means
(an invalid ``Expires`` is in the past, an invalid ``If-Modified-Since`` is
ignored).
"""

from __future__ import annotations

import calendar
import time
from email.utils import formatdate
from functools import lru_cache

__all__ = ["format_http_date", "parse_http_date"]

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_ZONES = frozenset({"gmt", "utc"})


def parse_http_date(value: str, *, now: float) -> float | None:
    """Parse an HTTP-date into seconds since the epoch, or ``None`` if invalid.

    Args:
        value: The field value.
        now: The current time (epoch seconds); only the RFC 850 format's
            two-digit year needs it (RFC 9110 §5.6.7's 50-year rule).

    Returns:
        The timestamp, or ``None`` when ``value`` is not a valid HTTP-date.

    >>> parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", now=0.0)
    784111777.0
    >>> parse_http_date("Sun Nov  6 08:49:37 1994", now=0.0)
    784111777.0
    >>> parse_http_date("0", now=0.0) is None
    True
    """
    if len(value) > 64:
        return None
    if "-" in value and "," in value:
        return _rfc850(value, now)
    return _four_digit_year(value)


def format_http_date(timestamp: float) -> str:
    """Format a timestamp as an IMF-fixdate (the form RFC 9110 §5.6.7 generates).

    >>> format_http_date(784111777)
    'Sun, 06 Nov 1994 08:49:37 GMT'
    """
    return formatdate(timestamp, usegmt=True)


@lru_cache(maxsize=256)
def _four_digit_year(value: str) -> float | None:
    """IMF-fixdate or asctime; cached: clients echo a few ``Last-Modified`` values back."""
    comma = value.find(",")
    if comma >= 0:  # IMF-fixdate: day-name "," SP 2DIGIT SP month SP 4DIGIT SP time SP GMT
        parts = value[comma + 1 :].split()
        if len(parts) != 5 or parts[4].lower() not in _ZONES or len(parts[0]) != 2:
            return None
        day, month, year, clock = parts[0], parts[1], parts[2], parts[3]
    else:  # asctime: day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time SP 4DIGIT
        parts = value.split()
        if len(parts) != 5 or not 1 <= len(parts[2]) <= 2:
            return None
        month, day, clock, year = parts[1], parts[2], parts[3], parts[4]
    if len(year) != 4:
        return None
    return _timestamp(year, month, day, clock)


def _rfc850(value: str, now: float) -> float | None:
    """``Sunday, 06-Nov-94 08:49:37 GMT``, with the 50-year rule for the year."""
    parts = value[value.find(",") + 1 :].split()
    if len(parts) != 3 or parts[2].lower() not in _ZONES:
        return None
    date = parts[0].split("-")
    if len(date) != 3 or len(date[0]) != 2 or len(date[2]) != 2 or not date[2].isdigit():
        return None
    today = time.gmtime(now)
    year = today.tm_year - today.tm_year % 100 + int(date[2])
    stamp = _timestamp(str(year), date[1], date[0], parts[1])
    if stamp is None:
        return None
    # "more than 50 years in the future": the most recent past year with those two digits
    # (the day 29 February of a leap year 50 years on has no twin; 28 February stands in)
    in_50_years = calendar.timegm(
        (today.tm_year + 50, today.tm_mon, min(today.tm_mday, 28), *today[3:6])
    )
    if stamp > in_50_years:
        return _timestamp(str(year - 100), date[1], date[0], parts[1])
    return stamp


def _timestamp(year: str, month: str, day: str, clock: str) -> float | None:
    month_number = _MONTHS.get(month.lower())
    hms = clock.split(":")
    if (
        month_number is None
        or len(hms) != 3
        or not all(len(p) == 2 and p.isascii() and p.isdigit() for p in hms)
        or not (year.isascii() and year.isdigit() and day.isascii() and day.isdigit())
    ):
        return None
    y, d = int(year), int(day)
    hour, minute, second = int(hms[0]), int(hms[1]), int(hms[2])
    if not (
        y >= 1
        and 1 <= d <= calendar.monthrange(y, month_number)[1]
        and hour < 24
        and minute < 60
        and second <= 60  # a leap second
    ):
        return None
    return float(calendar.timegm((y, month_number, d, hour, minute, second)))
