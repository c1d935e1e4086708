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

Timeslice budgeting (OpenSLO ``Timeslices``, ``RatioTimeslices``): the budget's
error ratio is ``slo:error_ratio:timeslices<W>``, computed slice by slice with
a subquery whose step is the slice length, so each step rates exactly one
aligned slice: the share of bad slices (``error ratio > 1 - slice_target``),
or the mean of the slices' error ratios. Slices without traffic (NaN) are
left out, as the in-process math does. The alerts keep event ratios, as
sloth's and pyrra's do.

``sloth_compatible=True`` adds sloth's recording rules
(``slo:sli_error:ratio_rate<w>``, ``slo:objective:ratio``,
``slo:error_budget:ratio``, ``slo:time_period:days``,
``slo:current_burn_rate:ratio``, ``slo:period_burn_rate:ratio``,
``slo:period_error_budget_remaining:ratio`` and the ``sloth_slo_info`` info
series, labelled ``sloth_id``, ``sloth_service``, ``sloth_slo``), derived from
perfprim's own, and the sloth labels on the alerts, so that sloth's Grafana
dashboards read perfprim's SLOs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from perfprim import _validate as v
from perfprim._optional import require
from perfprim.exceptions import ConfigurationError
from perfprim.slo._budgeting import RatioTimeslices, Timeslices
from perfprim.slo._validate import budget_of

if TYPE_CHECKING:
    from perfprim.slo._slo import SLO

__all__ = ["RuleLabels", "prometheus_duration", "prometheus_rules"]

RuleLabels = Mapping[str, str]
"""Extra labels put on every generated rule."""

_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MATCHER = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*")
_RESERVED = frozenset(
    {
        "slo",
        "slo_service",
        "severity",
        "alertname",
        "__name__",
        "sloth_id",
        "sloth_service",
        "sloth_slo",
        "sloth_window",
        "sloth_severity",
    }
)
_CLOSERS = {"(": ")", "[": "]", "{": "}"}
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


def _string_end(text: str, start: int) -> int:
    """Index just past the PromQL string literal opening at ``start``, or -1."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and quote != "`":
            i += 2
            continue
        if c == "\n" and quote != "`":
            return -1
        if c == quote:
            return i + 1
        i += 1
    return -1


def _selector_problem(text: str) -> str | None:
    """Why ``text`` is not a PromQL instant-vector selector (None when it is one)."""
    match = _METRIC.match(text)
    i = match.end() if match else 0
    if i == len(text):
        return None if i else "it is empty"
    if text[i] != "{" or not text.endswith("}"):
        return f"unexpected {text[i : i + 20]!r} after the metric name"
    i += 1
    matchers = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if text[i] == "}":
            break
        m = _MATCHER.match(text, i)
        if m is None:
            return f'expected a label matcher such as code=~"5.." at {text[i : i + 20]!r}'
        i = m.end()
        if i >= len(text) or text[i] not in "\"'`":
            return f"the value of label {m.group(1)!r} must be a quoted string"
        end = _string_end(text, i)
        if end < 0:
            return f"the value of label {m.group(1)!r} is not closed"
        matchers += 1
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
        if text[i] == ",":
            i += 1
        elif text[i] != "}":
            return f"expected ',' or '}}' at {text[i : i + 20]!r}"
    if i != len(text) - 1:
        return f"unexpected {text[i + 1 : i + 21]!r} after the closing brace"
    if not match and not matchers:
        return "a selector needs a metric name or at least one matcher"
    return None


def _expression_problem(text: str) -> str | None:
    """Why an expression with ``$window`` cannot be PromQL: unbalanced brackets or quotes."""
    stack: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c in "\"'`":
            end = _string_end(text, i)
            if end < 0:
                return f"a string opened at {text[i : i + 20]!r} is not closed"
            i = end
            continue
        if c in _CLOSERS:
            stack.append(_CLOSERS[c])
        elif c in ")]}" and (not stack or stack.pop() != c):
            return f"{c!r} at {text[max(0, i - 10) : i + 10]!r} closes nothing"
        i += 1
    if stack:
        return f"{len(stack)} bracket(s) are not closed ({''.join(reversed(stack))})"
    return None


def _check_selector(value: object, role: str) -> None:
    if value is None:
        return
    if not _nonempty(value):
        msg = (
            f"{role} must be a PromQL counter selector such as 'http_requests_total', "
            f"got {v.show(value)}"
        )
        raise ConfigurationError(msg)
    assert isinstance(value, str)
    text = value.strip()
    if "$window" in text:
        problem = _expression_problem(text)
        if problem:
            msg = f"{role}={v.show(value)} is not a PromQL expression: {problem}"
            raise ConfigurationError(msg)
        return
    problem = _selector_problem(text)
    if problem:
        msg = (
            f"{role}={v.show(value)} is neither a counter selector (http_requests_total"
            '{code=~"5.."}) nor an expression with a $window placeholder '
            f"(sum(rate(http_requests_total[$window]))): {problem}"
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
    sloth_compatible: bool = False,
) -> str:
    """Build the rule file for ``slo`` (see :meth:`perfprim.slo.SLO.prometheus_rules`)."""
    yaml = require("yaml", package="pyyaml", extra="yaml", feature="SLO.prometheus_rules")
    sloth = v.boolean(sloth_compatible, "sloth_compatible")
    if labels is not None and not isinstance(labels, Mapping):
        raise v.fail("labels", "a mapping of label names to string values", labels)
    if (good is None) == (errors is None):
        msg = "pass exactly one of good= (good events) or errors= (bad events), with total="
        raise ConfigurationError(msg)
    if total is None:
        raise v.fail("total", "a PromQL counter selector of all events", total)
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

    def ratio(w: str) -> str:
        rate_total = _rate(total, w, "total")
        if errors is not None:
            return f"{_rate(errors, w, 'errors')}\n/\n{rate_total}"
        assert good is not None
        return f"1 - (\n  {_rate(good, w, 'good')}\n  /\n  {rate_total}\n)"

    windows = slo.policy_windows()
    shortest = prometheus_duration(windows[0]) if windows else None
    slo_window = prometheus_duration(slo.window)
    records: list[dict[str, Any]] = []
    for window in windows:
        w = prometheus_duration(window)
        records.append(
            {"record": f"slo:error_ratio:rate{w}", "expr": ratio(w), "labels": rule_labels}
        )
    period: str | None = None  # the record holding the error ratio over the SLO window
    budgeting = slo.budgeting
    if isinstance(budgeting, Timeslices | RatioTimeslices):
        step = prometheus_duration(budgeting.slice_duration)
        per_slice = "(\n" + _indent(ratio(step), 4) + "\n  ) >= 0"  # >= 0 drops NaN: no traffic
        if isinstance(budgeting, Timeslices):
            # a bad slice: its error ratio is above 1 - slice_target (computed in decimal)
            per_slice = f"(\n  {per_slice}\n) > bool {_number(budget_of(budgeting.slice_target))}"
        period = f"slo:error_ratio:timeslices{slo_window}"
        records.append(
            {
                "record": period,
                "expr": f"avg_over_time((\n{_indent(per_slice, 2)}\n)[{slo_window}:{step}])",
                "labels": rule_labels,
            }
        )
    elif shortest is not None:
        period = f"slo:error_ratio:rate{slo_window}"
        if slo_window not in {prometheus_duration(w) for w in windows}:
            records.append(
                {
                    "record": period,
                    "expr": (
                        f"avg_over_time(slo:error_ratio:rate{shortest}{matchers}[{slo_window}])"
                    ),
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
    if slo.error_budget > 0 and period is not None:
        records.append(
            {
                "record": "slo:error_budget_remaining:ratio",
                "expr": f"1 - {period}{matchers} / {_number(slo.error_budget)}",
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
        sloth_labels = _sloth_ids(service, name) | {"sloth_severity": severity} if sloth else {}
        alerts.append(
            {
                "alert": "ErrorBudgetBurn",
                "expr": "\nor\n".join(clauses),
                "labels": {**rule_labels, "severity": severity, **sloth_labels},
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
    groups: list[dict[str, Any]] = [{"name": f"{base}-sli", "rules": records}]
    if sloth:
        groups.extend(
            _sloth_groups(slo, service, name, extra, matchers, windows, period, slo_window)
        )
    if alerts:
        groups.append({"name": f"{base}-alerts", "rules": alerts})
    document: dict[str, Any] = {"groups": groups}
    text: str = yaml.dump(
        document,
        Dumper=_literal_dumper(yaml),
        sort_keys=False,
        default_flow_style=False,
        width=10_000,
    )
    return text


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line for line in text.splitlines())


def _sloth_ids(service: str, name: str) -> dict[str, str]:
    return {"sloth_id": f"{service}-{name}", "sloth_service": service, "sloth_slo": name}


def _sloth_groups(  # noqa: PLR0917 - a private helper of prometheus_rules, called once
    slo: SLO,
    service: str,
    name: str,
    extra: Mapping[str, str],
    matchers: str,
    windows: tuple[float, ...],
    period: str | None,
    slo_window: str,
) -> list[dict[str, Any]]:
    """Sloth's recording rules, read from perfprim's, under sloth's names and labels.

    The names and labels are those of sloth's generated rules (``sloth generate``:
    groups ``sloth-slo-sli-recordings-*`` and ``sloth-slo-meta-recordings-*``),
    which its Grafana dashboards query.
    """
    ids = _sloth_ids(service, name)
    labels = {**ids, **extra}
    sloth_filter = _matchers(ids)
    sli: list[dict[str, Any]] = []
    for window in windows:
        w = prometheus_duration(window)
        sli.append(
            {
                "record": f"slo:sli_error:ratio_rate{w}",
                "expr": f"slo:error_ratio:rate{w}{matchers}",
                "labels": {**labels, "sloth_window": w},
            }
        )
    if period is not None and slo_window not in {prometheus_duration(w) for w in windows}:
        sli.append(
            {
                "record": f"slo:sli_error:ratio_rate{slo_window}",
                "expr": f"{period}{matchers}",
                "labels": {**labels, "sloth_window": slo_window},
            }
        )
    on = "/ on(sloth_id, sloth_slo, sloth_service) group_left"
    budget = f"slo:error_budget:ratio{sloth_filter}"
    meta: list[dict[str, Any]] = [
        {
            "record": "slo:objective:ratio",
            "expr": f"vector({_number(slo.target)})",
            "labels": labels,
        },
        {
            "record": "slo:error_budget:ratio",
            "expr": f"vector({_number(slo.error_budget)})",
            "labels": labels,
        },
        {
            "record": "slo:time_period:days",
            "expr": f"vector({_number(slo.window / 86400)})",
            "labels": labels,
        },
    ]
    if windows:
        shortest = prometheus_duration(windows[0])
        meta.append(
            {
                "record": "slo:current_burn_rate:ratio",
                "expr": f"slo:sli_error:ratio_rate{shortest}{sloth_filter}\n{on}\n{budget}",
                "labels": labels,
            }
        )
    if period is not None:
        meta.append(
            {
                "record": "slo:period_burn_rate:ratio",
                "expr": f"slo:sli_error:ratio_rate{slo_window}{sloth_filter}\n{on}\n{budget}",
                "labels": labels,
            }
        )
        meta.append(
            {
                "record": "slo:period_error_budget_remaining:ratio",
                "expr": f"1 - slo:period_burn_rate:ratio{sloth_filter}",
                "labels": labels,
            }
        )
    meta.append(
        {
            "record": "sloth_slo_info",
            "expr": "vector(1)",
            "labels": {
                **labels,
                "sloth_mode": "perfprim",
                "sloth_objective": _number(slo.target * 100),
                "sloth_spec": "perfprim",
                "sloth_version": "perfprim",
            },
        }
    )
    return [
        {"name": f"sloth-slo-sli-recordings-{service}-{name}", "rules": sli},
        {"name": f"sloth-slo-meta-recordings-{service}-{name}", "rules": meta},
    ]
