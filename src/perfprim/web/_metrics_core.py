"""The HTTP-metrics core: every decision the ASGI, WSGI and Django adapters share.

Pure functions of what an adapter saw of one request (method, route
template, status sent, whether the last body byte went out, whether the
client left, the exception raised), so they are tested without a server:

- :func:`method_label`: the method, or ``_OTHER`` for one the HTTP spec does
  not define (OpenTelemetry HTTP semantic conventions: an attacker must not
  create series with made-up methods);
- :func:`request_outcome`: the status code and ``error.type`` to record;
- :class:`RouteSLO` and :meth:`RouteSLO.is_good`: good = a status the SLO
  does not count as bad (5xx by default; a 4xx is the client's error) and a
  duration at or below the threshold, decided on the exact duration in
  process (any threshold, not only a bucket bound);
- :func:`client_error`: the ``exclude=`` predicate for ``@timed`` /
  ``@instrument`` that leaves the frameworks' 4xx exceptions out of an SLO.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError

if TYPE_CHECKING:
    from perfprim.slo import AlertRule, LatencySLO

__all__ = [
    "CLIENT_DISCONNECT",
    "INCOMPLETE_RESPONSE",
    "KNOWN_METHODS",
    "OTHER_METHOD",
    "UNMATCHED_ROUTE",
    "RouteSLO",
    "client_error",
    "method_label",
    "request_outcome",
]

KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}
)
"""Methods recorded as they are (RFC 9110, RFC 5789 ``PATCH``, ``QUERY``)."""

OTHER_METHOD = "_OTHER"
"""The ``http.request.method`` of any other method (OTel HTTP semantic conventions)."""

UNMATCHED_ROUTE = "<unmatched>"
"""The ``http.route`` of a request no route matched (a 404): one series, never the raw path."""

CLIENT_DISCONNECT = "client_disconnect"
"""The ``error.type`` of a request whose client left before the last body byte."""

INCOMPLETE_RESPONSE = "incomplete_response"
"""The ``error.type`` of a request whose app returned without finishing its response."""

SERVER_ERROR = 500
"""The status recorded for an app that raised before sending one."""

CLIENT_CLOSED = 499
"""The status recorded for a client that left before any status was sent (nginx's 499)."""

THIRTY_DAYS = 30 * 86400.0


def method_label(method: str) -> str:
    """Return the ``http.request.method`` label: the method if known, else ``_OTHER``.

    Args:
        method: The request method as received (case-sensitive: ``get`` is
            not ``GET``, RFC 9110 section 9.1).

    Returns:
        The method or ``"_OTHER"``.
    """
    return method if method in KNOWN_METHODS else OTHER_METHOD


def request_outcome(
    *,
    status: int | None,
    completed: bool,
    disconnected: bool,
    error: str | None,
) -> tuple[int, str]:
    """Decide the status code and ``error.type`` recorded for one request.

    Args:
        status: The status the app sent, or None if it sent none.
        completed: True once the last body byte was sent.
        disconnected: True if the client left (the server reported it, or a
            write failed) before the response completed.
        error: The ``error.type`` of the exception the app raised before the
            response completed, or None.

    Returns:
        ``(status, error_type)``: an app that raised records the status it
        sent or 500 with the exception's type; a client that left records
        ``client_disconnect`` with the status sent or 499; a response the app
        left unfinished records ``incomplete_response``; a completed 5xx
        records the exception's type if the app raised, else its code (OTel
        HTTP conventions); anything else records no error (``""``): an
        exception after a complete non-5xx response belongs to the work
        after the response, not to the request.
    """
    if not completed:
        if disconnected:
            return (CLIENT_CLOSED if status is None else status), CLIENT_DISCONNECT
        if error is not None:
            return (SERVER_ERROR if status is None else status), error
        return (SERVER_ERROR if status is None else status), INCOMPLETE_RESPONSE
    assert status is not None  # a completed response has a status
    if status >= SERVER_ERROR:
        # An app that sent its error page and then raised (Starlette's
        # ServerErrorMiddleware, Flask, Django): the exception explains the 5xx.
        return status, str(status) if error is None else error
    return status, ""


def _is_container(value: object) -> bool:
    return isinstance(value, Container) and not isinstance(value, str | bytes)


@dataclass(frozen=True, slots=True)
class RouteSLO:
    """A latency and availability SLO for one route: what the middleware tracks per route.

    A request is good when its status is not in ``bad_status`` (5xx by
    default: a 404 or another 4xx is the client's error, not the service's)
    and it lasted at most ``threshold`` seconds, from the first byte received
    to the last body byte sent. The decision uses the exact duration, so any
    threshold works, not only a histogram bucket bound.

    Args:
        threshold: The latency bound, float seconds (``timedelta`` accepted).
        target: The objective, a ratio in (0, 1], e.g. ``0.99``.
        window: The rolling SLO window; 30 days by default.
        bad_status: Status codes that make a request bad whatever its
            duration; ``range(500, 600)`` by default. ``range(400, 600)``
            counts client errors too; ``{429, *range(500, 600)}`` adds
            throttling.
        policy: Alerting policy rows (``perfprim.slo.AlertRule``); the SRE
            Workbook's page/ticket rows by default.

    Raises:
        ConfigurationError: If a value is out of range.

    Example:
        >>> slo = RouteSLO(threshold=0.2, target=0.99)
        >>> slo.is_good(status=200, duration=0.15), slo.is_good(status=404, duration=0.1)
        (True, True)
        >>> slo.is_good(status=200, duration=0.25), slo.is_good(status=503, duration=0.01)
        (False, False)
    """

    threshold: float
    target: float
    window: float = THIRTY_DAYS
    bad_status: Container[int] = field(default=range(500, 600))
    policy: tuple[AlertRule, ...] | None = None

    def __init__(
        self,
        *,
        threshold: float | timedelta,
        target: float,
        window: float | timedelta = THIRTY_DAYS,
        bad_status: Container[int] = range(500, 600),
        policy: Iterable[AlertRule] | None = None,
    ) -> None:
        object.__setattr__(self, "threshold", to_seconds(threshold, name="threshold"))
        object.__setattr__(self, "window", to_seconds(window, name="window"))
        if not _is_container(bad_status):
            msg = (
                "bad_status must be a collection of status codes such as range(500, 600), "
                f"got {bad_status!r}"
            )
            raise ConfigurationError(msg)
        object.__setattr__(self, "bad_status", bad_status)
        object.__setattr__(self, "policy", None if policy is None else tuple(policy))
        target_value: object = target
        if isinstance(target_value, bool) or not isinstance(target_value, int | float):
            msg = f"target must be a ratio such as 0.99, got {target!r}"
            raise ConfigurationError(msg)
        object.__setattr__(self, "target", float(target_value))
        self.latency_slo()  # the SLO module validates target, window and policy

    def latency_slo(self) -> LatencySLO:
        """The :class:`perfprim.slo.LatencySLO` this route SLO tracks.

        Returns:
            A ``LatencySLO`` with the same threshold, target, window and policy.

        Raises:
            ConfigurationError: If the values do not make a valid SLO.
        """
        from perfprim.slo import LatencySLO

        return LatencySLO(
            threshold=self.threshold, target=self.target, window=self.window, policy=self.policy
        )

    def is_good(self, *, status: int, duration: float) -> bool:
        """Whether a request is a good event of this SLO.

        Args:
            status: The status code recorded for the request.
            duration: Seconds from the request's arrival to its last body byte.

        Returns:
            True when the status is not in ``bad_status`` and ``duration <=
            threshold`` (the Prometheus ``le`` convention).
        """
        return status not in self.bad_status and duration <= self.threshold

    def threshold_ns(self) -> int:
        """The threshold in whole nanoseconds, rounded down (``duration_ns <= threshold_ns``)."""
        return math.floor(self.threshold * 1e9 + 1e-6)


_CLIENT_ERROR_NAMES = frozenset(
    {
        "django.http.response.Http404",
        "django.core.exceptions.PermissionDenied",
        "django.core.exceptions.SuspiciousOperation",
        "django.core.exceptions.BadRequest",
        "django.core.exceptions.ValidationError",
        "fastapi.exceptions.RequestValidationError",
        "pydantic_core._pydantic_core.ValidationError",
    }
)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def client_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a client's error (a 4xx), for ``@timed(slo=..., exclude=client_error)``.

    True for an exception carrying an HTTP status from 400 to 499 in
    ``status_code`` (Starlette's and FastAPI's ``HTTPException``) or ``code``
    (Werkzeug's, so Flask's ``abort(404)``), and for Django's ``Http404``,
    ``PermissionDenied``, ``SuspiciousOperation`` and ``BadRequest`` (found
    by name: no framework is imported).

    Args:
        exc: The exception a view raised.

    Returns:
        True when it is the client's error, which an SLO should not count.

    Example:
        >>> class HTTPException(Exception):
        ...     def __init__(self, status_code):
        ...         self.status_code = status_code
        >>> client_error(HTTPException(404)), client_error(HTTPException(503))
        (True, False)
        >>> client_error(ValueError("boom"))
        False
    """
    for attribute in ("status_code", "code"):
        status = getattr(exc, attribute, None)
        if isinstance(status, int) and not isinstance(status, bool):
            return 400 <= status < 500
    return any(_qualified(cls) in _CLIENT_ERROR_NAMES for cls in type(exc).__mro__)
