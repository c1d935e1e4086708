"""The pure HTTP-metrics core: labels, outcomes, SLO verdicts, route templates (no server)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfprim.web
from perfprim.exceptions import ConfigurationError
from perfprim.web import CLIENT_DISCONNECT, OTHER_METHOD, UNMATCHED_ROUTE, RouteSLO, client_error
from perfprim.web._asgi_routes import template_regex
from perfprim.web._metrics_core import INCOMPLETE_RESPONSE, method_label, request_outcome

RFC_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]


def test_exported_members() -> None:
    """The public surface of perfprim.web is pinned (it imports no framework)."""
    assert [
        "CLIENT_DISCONNECT",
        "OTHER_METHOD",
        "UNMATCHED_ROUTE",
        "HttpCachePolicy",
        "RouteSLO",
        "client_error",
    ] == perfprim.web.__all__


@pytest.mark.parametrize("method", RFC_METHODS)
def test_known_methods_pass(method: str) -> None:
    """Every method RFC 9110 and RFC 5789 define is recorded as it is."""
    assert method == method_label(method)


@given(st.text(max_size=12))
def test_other_methods_fold(method: str) -> None:
    """Anything else (lower case, made up, empty) folds into _OTHER: bounded labels."""
    expected = method if method in {*RFC_METHODS, "QUERY"} else OTHER_METHOD
    assert expected == method_label(method)


@given(st.integers(100, 599))
def test_completed_response_status_and_error_type(status: int) -> None:
    """A completed response records its status; a 5xx its code as error.type (OTel)."""
    expected_error = str(status) if status >= 500 else ""
    assert (status, expected_error) == request_outcome(
        status=status, completed=True, disconnected=False, error=None
    )


def test_error_page_then_raise_records_the_exception_type() -> None:
    """An app that sent a 500 page and re-raised: the exception's type, not just "500"."""
    assert (500, "ValueError") == request_outcome(
        status=500, completed=True, disconnected=False, error="ValueError"
    )
    assert (200, "") == request_outcome(
        status=200, completed=True, disconnected=False, error="ValueError"
    )


def test_app_exception_before_a_status_is_a_500_with_its_type() -> None:
    """An app that raised before sending anything is recorded as 500 with the exception's type."""
    assert (500, "ValueError") == request_outcome(
        status=None, completed=False, disconnected=False, error="ValueError"
    )


def test_app_exception_mid_stream_keeps_the_status_sent() -> None:
    """An exception after the headers went out keeps the status the client got."""
    assert (200, "OSError") == request_outcome(
        status=200, completed=False, disconnected=False, error="OSError"
    )


@pytest.mark.parametrize(("status", "expected"), [(None, 499), (200, 200)])
def test_client_disconnect(status: int | None, expected: int) -> None:
    """A client that left: its own error type, 499 when no status was sent."""
    assert (expected, CLIENT_DISCONNECT) == request_outcome(
        status=status, completed=False, disconnected=True, error="anyio.ClosedResourceError"
    )


def test_response_left_unfinished() -> None:
    """An app that returned without finishing its response is not recorded as a success."""
    assert (200, INCOMPLETE_RESPONSE) == request_outcome(
        status=200, completed=False, disconnected=False, error=None
    )


@given(
    threshold=st.floats(1e-4, 10.0),
    duration=st.floats(0.0, 20.0),
    status=st.integers(100, 599),
)
def test_route_slo_verdict(threshold: float, duration: float, status: int) -> None:
    """Good = not 5xx and duration <= threshold, for any threshold (not only bucket bounds)."""
    slo = RouteSLO(threshold=threshold, target=0.99)
    expected = status < 500 and duration <= threshold
    assert expected == slo.is_good(status=status, duration=duration)


@given(threshold=st.floats(1e-4, 10.0), duration_ns=st.integers(0, 20_000_000_000))
def test_threshold_ns_matches_the_seconds_verdict(threshold: float, duration_ns: int) -> None:
    """The recorder's integer comparison agrees with the float one, to the nanosecond."""
    slo = RouteSLO(threshold=threshold, target=0.99)
    in_ns = duration_ns <= slo.threshold_ns()
    in_s = duration_ns / 1e9 <= threshold
    if abs(duration_ns - threshold * 1e9) > 1:  # a nanosecond of float rounding aside
        assert in_s == in_ns


def test_route_slo_bad_status_is_configurable() -> None:
    """Counting 4xx as bad, or 429 only: bad_status is any collection of codes."""
    strict = RouteSLO(threshold=1.0, target=0.99, bad_status=range(400, 600))
    assert not strict.is_good(status=404, duration=0.01)
    throttling = RouteSLO(threshold=1.0, target=0.99, bad_status={429, *range(500, 600)})
    assert not throttling.is_good(status=429, duration=0.01)
    assert throttling.is_good(status=404, duration=0.01)


def test_route_slo_builds_the_latency_slo() -> None:
    """RouteSLO carries a LatencySLO of the same threshold, target and window."""
    slo = RouteSLO(threshold=timedelta(milliseconds=200), target=0.999, window=timedelta(days=28))
    latency = slo.latency_slo()
    assert (0.2, 0.999, 28 * 86400.0) == (latency.threshold, latency.target, latency.window)


@pytest.mark.parametrize(
    "options",
    [
        {"threshold": 0, "target": 0.99},
        {"threshold": -1, "target": 0.99},
        {"threshold": 0.2, "target": 99.0},
        {"threshold": 0.2, "target": "0.99"},
        {"threshold": 0.2, "target": 0.99, "bad_status": 500},
        {"threshold": 0.2, "target": 0.99, "window": 0},
    ],
)
def test_route_slo_rejects_bad_values(options: dict[str, object]) -> None:
    """A wrong threshold, target, window or bad_status fails fast with ConfigurationError."""
    with pytest.raises(ConfigurationError):
        RouteSLO(**options)  # type: ignore[arg-type]


class _StatusError(Exception):
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class _CodeError(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


@given(st.integers(100, 599))
def test_client_error_reads_status_code_and_code(status: int) -> None:
    """Starlette-style status_code and Werkzeug-style code: 4xx are the client's errors."""
    expected = 400 <= status < 500
    assert expected == client_error(_StatusError(status))
    assert expected == client_error(_CodeError(status))


def test_client_error_knows_django_by_name() -> None:
    """Django's Http404 and PermissionDenied are client errors; a ValueError is not."""
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    assert client_error(Http404("x"))
    assert client_error(PermissionDenied())
    assert not client_error(ValueError("x"))


@pytest.mark.parametrize(
    ("template", "path", "matches"),
    [
        ("/items/{item_id}", "/items/42", True),
        ("/items/{item_id}", "/items/42/more", False),
        ("/items/{item_id:int}", "/items/abc", False),
        ("/files/{name:path}", "/files/a/b/c.txt", True),
        ("/v/{x:float}", "/v/1.5", True),
        ("/u/{id:uuid}", "/u/12345678-1234-1234-1234-123456789abc", True),
        ("/a.b/{x}", "/aXb/1", False),
    ],
)
def test_template_regex(template: str, path: str, matches: bool) -> None:
    """Starlette templates compile to anchored regexes (dots literal, convertors honoured)."""
    assert matches == bool(template_regex(template).match(path))


def test_unmatched_label_is_fixed() -> None:
    """One label for every unmatched request, never derived from the path."""
    assert "<unmatched>" == UNMATCHED_ROUTE
    assert math.isfinite(RouteSLO(threshold=0.1, target=0.9).threshold)
