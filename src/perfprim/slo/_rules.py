"""Prometheus recording and multiwindow alerting rules for an SLO (like sloth's).

Recording rules (group ``perfprim-slo-<service>-<slo>-sli``):

- ``slo:error_ratio:rate<w>`` for every window ``w`` of the policy: the error
  ratio over ``w``, ``sum(rate(errors[w])) / sum(rate(total[w]))`` (or
  ``1 - good/total``);
- ``slo:error_ratio:rate<W>`` for the SLO window ``W``: the mean of the
  shortest window's ratio over ``W`` (as sloth does: a ``rate`` over 30 days
  is too costly to evaluate every minute);
- ``slo:objective:ratio``, ``slo:error_budget:ratio`` and
  ``slo:error_budget_remaining:ratio`` (``1 - ratio_W / budget``).

Alerting rules (group ``perfprim-slo-<service>-<slo>-alerts``): one
``ErrorBudgetBurn`` alert per severity, firing when for any of that severity's
policy rows both windows' error ratios exceed ``burn_rate * error_budget``
(Google SRE Workbook, "Alerting on SLOs", multiwindow multi-burn-rate alerts).
Without traffic a ratio is 0/0 = NaN in PromQL, and NaN never compares
greater, so an idle service does not alert.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from perfprim._optional import require
from perfprim.exceptions import ConfigurationError

if TYPE_CHECKING:
    from perfprim.slo._slo import SLO

__all__ = ["RuleLabels", "prometheus_duration", "prometheus_rules"]

RuleLabels = Mapping[str, str]
"""Extra labels put on every generated rule."""

_SELECTOR = re.compile(r"^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?(?:\{.*\})?$", re.DOTALL)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED = frozenset({"slo", "slo_service", "severity", "alertname", "__name__"})
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _nonempty(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def prometheus_duration(window: float) -> str:
    """Format seconds as a Prometheus duration (``300`` -> ``"5m"``, ``2592000`` -> ``"30d"``).

    Args:
        window: Seconds, a whole number of milliseconds.

    Returns:
        The duration in the largest unit that divides it.

    Raises:
        ConfigurationError: If it is not a whole number of milliseconds.
    """
    millis = round(window * 1000)
    if millis <= 0 or abs(millis - window * 1000) > 1e-6:
        msg = f"window {window!r} s is not a whole number of milliseconds; Prometheus needs one"
        raise ConfigurationError(msg)
    if millis % 1000:
        return f"{millis}ms"
    whole = millis // 1000
    for unit, size in _UNITS:
        if whole % size == 0:
            return f"{whole // size}{unit}"
    raise AssertionError  # pragma: no cover - "s" divides every whole number


def _number(value: float) -> str:
    return format(value, ".12g")


def _rate(selector: str, window: str, role: str) -> str:
    if "$window" in selector:
        return f"({selector.replace('$window', window)})"
    return f"sum(rate({selector}[{window}]))"


def _check_selector(value: str | None, role: str) -> None:
    if value is None:
        return
    if not _nonempty(value):
        msg = (
            f"{role} must be a PromQL counter selector such as 'http_requests_total', got {value!r}"
        )
        raise ConfigurationError(msg)
    if "$window" not in value and not _SELECTOR.match(value.strip()):
        msg = (
            f"{role}={value!r} is neither a counter selector (http_requests_total"
            '{code=~"5.."}) nor an expression with a $window placeholder '
            "(sum(rate(http_requests_total[$window])))"
        )
        raise ConfigurationError(msg)


def _matchers(labels: Mapping[str, str]) -> str:
    inner = ",".join(f"{key}={_quote(value)}" for key, value in labels.items())
    return "{" + inner + "}"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _literal_dumper(yaml: Any) -> Any:
    class Dumper(yaml.SafeDumper):  # type: ignore[misc]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def text(dumper: Any, data: str) -> Any:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, text)
    return Dumper


def prometheus_rules(
    slo: SLO,
    *,
    service: str,
    total: str,
    good: str | None = None,
    errors: str | None = None,
    name: str | None = None,
    labels: RuleLabels | None = None,
) -> str:
    """Build the rule file for ``slo`` (see :meth:`perfprim.slo.SLO.prometheus_rules`)."""
    yaml = require("yaml", package="pyyaml", extra="yaml", feature="SLO.prometheus_rules")
    if (good is None) == (errors is None):
        msg = "pass exactly one of good= (good events) or errors= (bad events), with total="
        raise ConfigurationError(msg)
    for value, role in ((total, "total"), (good, "good"), (errors, "errors")):
        _check_selector(value, role)
    name = "availability" if name is None else name
    for value, role in ((service, "service"), (name, "name")):
        if not _nonempty(value):
            msg = f"{role} must be a non-empty string, got {value!r}"
            raise ConfigurationError(msg)
    extra = dict(labels or {})
    for key, value in extra.items():
        if not _nonempty(key) or not _LABEL_NAME.match(key) or key in _RESERVED:
            msg = (
                f"label name {key!r} is invalid or reserved; use [a-zA-Z_][a-zA-Z0-9_]* "
                f"other than {', '.join(sorted(_RESERVED))}"
            )
            raise ConfigurationError(msg)
        if not _is_str(value):
            msg = f"label {key!r} must have a string value, got {value!r}"
            raise ConfigurationError(msg)
    rule_labels = {"slo_service": service, "slo": name, **extra}
    matchers = _matchers({"slo_service": service, "slo": name})

    windows = slo.policy_windows()
    shortest = prometheus_duration(windows[0]) if windows else None
    slo_window = prometheus_duration(slo.window)
    records: list[dict[str, Any]] = []
    for window in windows:
        w = prometheus_duration(window)
        rate_total = _rate(total, w, "total")
        if errors is not None:
            expr = f"{_rate(errors, w, 'errors')}\n/\n{rate_total}"
        else:
            assert good is not None
            expr = f"1 - (\n  {_rate(good, w, 'good')}\n  /\n  {rate_total}\n)"
        records.append({"record": f"slo:error_ratio:rate{w}", "expr": expr, "labels": rule_labels})
    if shortest is not None and slo_window not in {prometheus_duration(w) for w in windows}:
        records.append(
            {
                "record": f"slo:error_ratio:rate{slo_window}",
                "expr": (f"avg_over_time(slo:error_ratio:rate{shortest}{matchers}[{slo_window}])"),
                "labels": rule_labels,
            }
        )
    records.append(
        {
            "record": "slo:objective:ratio",
            "expr": f"vector({_number(slo.target)})",
            "labels": rule_labels,
        }
    )
    records.append(
        {
            "record": "slo:error_budget:ratio",
            "expr": f"vector({_number(slo.error_budget)})",
            "labels": rule_labels,
        }
    )
    if slo.error_budget > 0 and shortest is not None:
        records.append(
            {
                "record": "slo:error_budget_remaining:ratio",
                "expr": (
                    f"1 - slo:error_ratio:rate{slo_window}{matchers} / {_number(slo.error_budget)}"
                ),
                "labels": rule_labels,
            }
        )

    alerts: list[dict[str, Any]] = []
    severities: list[str] = []
    for row in slo.alert_windows():
        if row.severity not in severities:
            severities.append(row.severity)
    for severity in severities:
        rows = [row for row in slo.alert_windows() if row.severity == severity]
        clauses = []
        lines = []
        for row in rows:
            threshold = f"({_number(row.burn_rate)} * {_number(slo.error_budget)})"
            long_w = prometheus_duration(row.long_window)
            short_w = prometheus_duration(row.short_window)
            clauses.append(
                "(\n"
                f"  slo:error_ratio:rate{long_w}{matchers} > {threshold}\n"
                "  and\n"
                f"  slo:error_ratio:rate{short_w}{matchers} > {threshold}\n"
                ")"
            )
            lines.append(
                f"{_number(row.budget_fraction * 100)}% of the {slo_window} error budget "
                f"in {long_w} (burn rate above {_number(row.burn_rate)} over {long_w} "
                f"and {short_w})"
            )
        alerts.append(
            {
                "alert": "ErrorBudgetBurn",
                "expr": "\nor\n".join(clauses),
                "labels": {**rule_labels, "severity": severity},
                "annotations": {
                    "summary": (
                        f"{service} {name}: the error budget is burning "
                        f"({_number(slo.target * 100)}% over {slo_window})"
                    ),
                    "description": "Fires when any of: " + "; ".join(lines) + ".",
                },
            }
        )

    base = f"perfprim-slo-{service}-{name}"
    document: dict[str, Any] = {
        "groups": [
            {"name": f"{base}-sli", "rules": records},
            *([{"name": f"{base}-alerts", "rules": alerts}] if alerts else []),
        ]
    }
    text: str = yaml.dump(
        document,
        Dumper=_literal_dumper(yaml),
        sort_keys=False,
        default_flow_style=False,
        width=10_000,
    )
    return text
