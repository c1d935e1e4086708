"""HTTP-date parsing (RFC 9110 §5.6.7), checked against email.utils and Werkzeug."""

from __future__ import annotations

import calendar
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_tz

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.http import parse_date as werkzeug_parse_date

from perfprim.web._http_cache_dates import format_http_date, parse_http_date

NOW_2026 = calendar.timegm((2026, 5, 1, 12, 0, 0))
SUN_06_NOV_1994 = 784111777.0  # the RFC's own example, 1994-11-06T08:49:37Z


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # asctime
        "  sun, 06 NOV 1994 08:49:37 gmt ",  # robust: case and surrounding space
        "Mon, 06 Nov 1994 08:49:37 GMT",  # day name not checked against the date
        "Sun, 06 Nov 1994 08:49:37 UTC",
    ],
)
def test_the_three_formats_give_the_rfc_example(value: str) -> None:
    """§5.6.7: the three formats of the RFC's example all mean 1994-11-06 08:49:37 UTC."""
    assert SUN_06_NOV_1994 == parse_http_date(value, now=NOW_2026)


@pytest.mark.parametrize(
    "value",
    [
        "0",  # §5.3: Expires: 0 is invalid (and in the past)
        "",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 29 Feb 1995 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 +0100",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        "1994-11-06T08:49:37Z",
        "Sun, 06 Nov 0000 08:49:37 GMT",
    ],
)
def test_invalid_dates(value: str) -> None:
    """Out-of-range fields, other zones, other formats and lists are not HTTP-dates."""
    assert None is parse_http_date(value, now=NOW_2026)


def test_rfc850_two_digit_year_fifty_year_rule() -> None:
    """§5.6.7: a two-digit year more than 50 years in the future is in the past century."""
    assert calendar.timegm((2075, 11, 6, 8, 49, 37)) == parse_http_date(
        "Wednesday, 06-Nov-75 08:49:37 GMT", now=NOW_2026
    )
    assert calendar.timegm((1977, 11, 6, 8, 49, 37)) == parse_http_date(
        "Sunday, 06-Nov-77 08:49:37 GMT", now=NOW_2026
    )
    # email.utils uses a fixed pivot (69 -> 1969): it disagrees with the RFC here.
    assert 1975 == parsedate_tz("Wednesday, 06-Nov-75 08:49:37 GMT")[0]  # type: ignore[index]


_INSTANTS = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.just(timezone.utc),
).map(lambda d: d.replace(microsecond=0))


@given(_INSTANTS)
def test_imf_fixdate_agrees_with_email_utils_and_werkzeug(instant: datetime) -> None:
    """IMF-fixdates parse as email.utils and Werkzeug parse them.

    IMF-fixdates written by email.utils parse to the same instant here, in
    email.utils (parsedate_tz) and in Werkzeug.
    """
    text = format_datetime(instant, usegmt=True)
    ours = parse_http_date(text, now=NOW_2026)
    expected = instant.timestamp()
    email_parts = parsedate_tz(text)
    assert email_parts is not None
    assert expected == ours
    assert expected == calendar.timegm(email_parts[:6])
    theirs = werkzeug_parse_date(text)
    assert theirs is not None
    assert expected == theirs.timestamp()


@given(_INSTANTS)
def test_asctime_agrees_with_werkzeug(instant: datetime) -> None:
    """asctime() dates (``%a %b %e %H:%M:%S %Y``) parse as Werkzeug parses them."""
    text = instant.strftime("%a %b ") + f"{instant.day:2d}" + instant.strftime(" %H:%M:%S %Y")
    theirs = werkzeug_parse_date(text)
    assert theirs is not None
    assert theirs.timestamp() == parse_http_date(text, now=NOW_2026)


@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_format_then_parse_round_trips(seconds: int) -> None:
    """format_http_date writes an IMF-fixdate that parses back to the same second."""
    assert float(seconds) == parse_http_date(format_http_date(seconds), now=NOW_2026)


@given(st.text(max_size=64))
def test_never_raises(value: str) -> None:
    """Arbitrary text gives a float or None, never an exception."""
    result = parse_http_date(value, now=NOW_2026)
    assert result is None or isinstance(result, float)
