"""OpenTelemetry semantic conventions and metric naming, in one place.

Attribute names follow the OTel semantic conventions (``code.function.name``,
``error.type``); Prometheus names follow the Prometheus naming practices
(``snake_case``, base unit ``_seconds``, counters ``_total``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from perfprim.exceptions import ConfigurationError

CODE_FUNCTION_NAME = "code.function.name"
"""Span attribute: the fully qualified name of the decorated function."""

ERROR_TYPE = "error.type"
"""Span and metric attribute: the fully qualified class name of the exception."""

PROMETHEUS_ERROR_TYPE = "error_type"
"""The Prometheus label that carries ``error.type`` (dots are not valid in labels)."""

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*$")
_PROM_INVALID = re.compile(r"[^A-Za-z0-9_:]")
_LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def function_name(func: Callable[..., Any]) -> str:
    """Return ``module.Qualified.name`` of ``func`` for ``code.function.name``."""
    module = str(getattr(func, "__module__", None) or "")
    qualname = str(getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func)))
    return f"{module}.{qualname}" if module else qualname


def error_type(exc: BaseException) -> str:
    """Return the fully qualified class name of ``exc`` (builtins unprefixed).

    The OTel conventions ask for the fully qualified exception type, e.g.
    ``ValueError`` or ``redis.exceptions.ConnectionError``.
    """
    cls = type(exc)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def status_description(exc: BaseException) -> str:
    """Return the span status description for ``exc``: ``"Type: message"``."""
    return f"{type(exc).__name__}: {exc}"


def check_metric_name(name: object) -> str:
    """Validate a metric base name (letters, digits, ``_ . : -``) and return it.

    Raises:
        ConfigurationError: If ``name`` is empty or has other characters.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        msg = (
            f"invalid metric name {name!r}: use letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or '_' (for example 'db.load_user')"
        )
        raise ConfigurationError(msg)
    return name


def check_label_name(name: object) -> str:
    """Validate a label name (a Prometheus label: ``[A-Za-z_][A-Za-z0-9_]*``).

    Raises:
        ConfigurationError: If ``name`` is not a valid label name.
    """
    if not isinstance(name, str) or not _LABEL_RE.match(name) or name.startswith("__"):
        msg = (
            f"invalid label name {name!r}: use letters, digits and '_' "
            "(not starting with a digit or '__'), e.g. 'route'"
        )
        raise ConfigurationError(msg)
    return name


def prometheus_base(name: str) -> str:
    """Return the Prometheus form of a metric base name (``db.load-user`` -> ``db_load_user``)."""
    return _PROM_INVALID.sub("_", name)


def prometheus_seconds(name: str) -> str:
    """Return the Prometheus histogram name for a timer: ``<base>_seconds``."""
    base = prometheus_base(name)
    return base if base.endswith("_seconds") else f"{base}_seconds"


def otel_base(name: str) -> str:
    """Return the OTel form of a metric base name (dotted, ``-`` replaced by ``_``)."""
    return name.replace("-", "_").replace(":", ".")


SEMCONV_ATTRIBUTES: dict[str, str] = {
    "error_type": "error.type",
    "http_request_method": "http.request.method",
    "http_route": "http.route",
    "http_response_status_code": "http.response.status_code",
}
"""Prometheus label names whose OTel attribute is a dotted semantic-convention name."""


def otel_attribute(label: str) -> str:
    """Return the OTel attribute name of a label (``http_route`` -> ``http.route``)."""
    return SEMCONV_ATTRIBUTES.get(label, label)


def otel_timer_base(name: str) -> str:
    """Return the OTel base of a timer: its metric is ``<base>.duration``.

    A timer already named ``*.duration`` (``http.server.request.duration``, the
    OTel HTTP convention) keeps its name: ``http.server.request``.
    """
    return otel_base(name).removesuffix(".duration")
