"""Load SLOs from OpenSLO v1 documents (https://github.com/OpenSLO/OpenSLO), as written in the wild.

A source holds one or more YAML documents (``---``), each a mapping or a
list of mappings (the top-level-list form that oslo and the go-sdk write).
Every ``kind: SLO`` is loaded; ``AlertPolicy`` and ``AlertCondition``
documents are used to resolve references; the other kinds (``Service``,
``SLI``, ``DataSource``, ``AlertNotificationTarget``) are accepted and left
aside, since perfprim queries no data source.

How each field maps:

- ``metadata.name``, ``displayName``, ``labels`` (a string or a list of
  strings per key), ``annotations``: kept on :class:`OpenSLODefinition`.
- ``spec.timeWindow``: one window. Rolling: its duration is the SLO window
  (``s m h d w``, and ``M Q Y`` at 30, 91 and 365 days). Calendar
  (``isRolling: false`` with ``calendar.startTime`` and ``timeZone``): a
  :class:`CalendarWindow` on the definition gives the calendar-aligned budget
  period; the SLO's window is the period's nominal length, for burn rates.
- ``spec.budgetingMethod``: Occurrences, Timeslices, RatioTimeslices.
- ``spec.objectives``: one definition per objective. ``target`` is a ratio,
  ``targetPercent`` a percentage (99.9 -> exactly 0.999, in decimal).
  ``op`` + ``value``: with ``lt``/``lte`` the objective is a latency bound and
  gives a :class:`LatencySLO` whose threshold is ``value * value_unit``
  seconds (``value_unit=1e-3`` for milliseconds); ``lt`` is read as ``lte``
  (at any measuring precision the two differ by nothing). With ``gt``/``gte``
  the objective is kept as ``op`` and ``value`` on the definition and the SLO
  counts the good events you report. Without ``value``, ``op`` says nothing
  about a ratio SLI and is kept as written. ``compositeWeight`` is kept on
  the definition; perfprim does not combine a composite SLO's objectives.
- ``spec.alertPolicies`` (names, ``alertPolicyRef`` or inline policies,
  with conditions inline or by ``conditionRef``): each ``burnrate``
  condition ``op: gt|gte``, ``threshold``, ``lookbackWindow`` becomes an
  :class:`AlertRule` with that long window and burn rate (its budget share
  is ``threshold * lookbackWindow / window``) and the Workbook's control
  window, ``lookbackWindow / 12``. ``alertAfter`` is kept, not applied.
  Without alert policies the SLO gets perfprim's default policy.

Anything that cannot map (an unknown field, a reference that is not in the
source, a condition perfprim cannot evaluate) raises
:class:`~perfprim.exceptions.ConfigurationError` naming the SLO and the
field, rather than being silently dropped.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from perfprim import _validate as v
from perfprim._optional import require
from perfprim.exceptions import ConfigurationError
from perfprim.slo._budgeting import BudgetingMethod, Occurrences, RatioTimeslices, Timeslices
from perfprim.slo._calendar import NOMINAL_SECONDS, CalendarWindow
from perfprim.slo._policy import AlertRule
from perfprim.slo._slo import SLO, LatencySLO

__all__ = ["OpenSLODefinition", "load_openslo", "load_openslo_all"]

_DURATION = re.compile(r"^([1-9][0-9]*)([smhdwMQY])$")
_KINDS = frozenset(
    {
        "SLO",
        "Service",
        "SLI",
        "DataSource",
        "AlertPolicy",
        "AlertCondition",
        "AlertNotificationTarget",
    }
)
_TOP = frozenset({"apiVersion", "kind", "metadata", "spec"})
_METADATA = frozenset({"name", "displayName", "labels", "annotations"})
_SPEC = frozenset(
    {
        "description",
        "service",
        "indicator",
        "indicatorRef",
        "timeWindow",
        "budgetingMethod",
        "objectives",
        "alertPolicies",
    }
)
_WINDOW = frozenset({"duration", "isRolling", "calendar"})
_CALENDAR = frozenset({"startTime", "timeZone"})
_OBJECTIVE = frozenset(
    {
        "displayName",
        "op",
        "value",
        "target",
        "targetPercent",
        "timeSliceTarget",
        "timeSliceWindow",
        "indicator",
        "indicatorRef",
        "compositeWeight",
    }
)
_POLICY_SPEC = frozenset(
    {
        "description",
        "alertWhenNoData",
        "alertWhenResolved",
        "alertWhenBreaching",
        "conditions",
        "notificationTargets",
    }
)
_CONDITION_SPEC = frozenset({"description", "severity", "condition"})
_CONDITION = frozenset({"kind", "op", "threshold", "lookbackWindow", "alertAfter"})
_OPS = ("lt", "lte", "gt", "gte")
_CONTROL_WINDOW = 12  # the Workbook's short window: 1/12 of the long one


@dataclass(frozen=True, slots=True)
class OpenSLODefinition:
    """An SLO read from an OpenSLO v1 document, with what the document said about it.

    Attributes:
        name: ``metadata.name``.
        display_name: ``metadata.displayName``, or None.
        service: ``spec.service``.
        description: ``spec.description``, or None.
        slo: The :class:`SLO` (a :class:`LatencySLO` for ``op: lt|lte`` with
            a ``value``), with the document's alert policies as its policy.
        labels: ``metadata.labels``, each value a tuple of strings.
        annotations: ``metadata.annotations``.
        objective: The objective's ``displayName``, or None.
        op: The objective's ``op`` as written (``lt``, ``lte``, ``gt``,
            ``gte``), or None.
        value: The objective's ``value`` as written (in the SLI's unit), or None.
        composite_weight: The objective's ``compositeWeight``, or None.
        calendar: The calendar-aligned budget period of a calendar window,
            or None for a rolling window.
    """

    name: str
    display_name: str | None
    service: str
    description: str | None
    slo: SLO
    labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    objective: str | None = None
    op: str | None = None
    value: float | None = None
    composite_weight: float | None = None
    calendar: CalendarWindow | None = None


class _Context:
    """Where in which SLO an error is, for the message."""

    def __init__(self, slo: str) -> None:
        self.slo = slo

    def fail(self, where: str, message: str) -> ConfigurationError:
        return ConfigurationError(f"OpenSLO SLO {self.slo!r}, {where}: {message}")


def _fail(where: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"OpenSLO {where}: {message}")


def _mapping(value: object, where: str, ctx: _Context | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        message = f"expected a mapping, got {v.show(value)}"
        raise ctx.fail(where, message) if ctx else _fail(where, message)
    return value


def _only(value: Mapping[str, Any], allowed: frozenset[str], where: str, ctx: _Context) -> None:
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise ctx.fail(
            where,
            f"unsupported field(s) {', '.join(unknown)}; perfprim reads "
            f"{', '.join(sorted(allowed))}",
        )


def _text(value: object, where: str, ctx: _Context, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(where, f"expected a non-empty string, got {v.show(value)}")
    return value


def _duration(value: object, where: str, ctx: _Context) -> tuple[int, str]:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ctx.fail(
            where,
            f"expected a duration such as '28d', '1w' or '1M' (units s m h d w M Q Y), "
            f"got {v.show(value)}",
        )
    return int(match.group(1)), match.group(2)


def _seconds(value: object, where: str, ctx: _Context) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # a plain number of seconds: not OpenSLO's form, accepted as perfprim always did
        seconds = _number(value, where, ctx)
        if seconds <= 0:
            raise ctx.fail(where, f"expected a positive duration, got {v.show(value)}")
        return seconds
    count, unit = _duration(value, where, ctx)
    return float(count * NOMINAL_SECONDS[unit])


def _number(value: object, where: str, ctx: _Context) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ctx.fail(where, f"expected a number, got {v.show(value)}")
    try:
        result = float(value)
    except OverflowError:
        raise ctx.fail(where, f"{v.show(value)} does not fit a float") from None
    if not math.isfinite(result):
        raise ctx.fail(where, f"expected a finite number, got {v.show(value)}")
    return result


def _labels(value: object, ctx: _Context) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    labels = _mapping(value, "metadata.labels", ctx)
    result: dict[str, tuple[str, ...]] = {}
    for key, item in labels.items():
        where = f"metadata.labels.{key}"
        if not isinstance(key, str):
            raise ctx.fail("metadata.labels", f"label names are strings, got {v.show(key)}")
        values = item if isinstance(item, list) else [item]
        if not all(isinstance(x, str) for x in values):
            raise ctx.fail(where, f"expected a string or a list of strings, got {v.show(item)}")
        result[key] = tuple(values)
    return result


def _annotations(value: object, ctx: _Context) -> dict[str, str]:
    if value is None:
        return {}
    annotations = _mapping(value, "metadata.annotations", ctx)
    for key, item in annotations.items():
        name: object = key  # YAML keys may be numbers
        if not isinstance(name, str) or not isinstance(item, str):
            raise ctx.fail(
                "metadata.annotations", f"expected string keys and values, got {v.show(item)}"
            )
    return dict(annotations)


def _window(spec: Mapping[str, Any], ctx: _Context) -> tuple[float, CalendarWindow | None]:
    windows = spec.get("timeWindow")
    if not isinstance(windows, list) or len(windows) != 1:
        raise ctx.fail(
            "spec.timeWindow",
            f"expected a list with exactly one window, got {v.show(windows)}",
        )
    window = _mapping(windows[0], "spec.timeWindow[0]", ctx)
    _only(window, _WINDOW, "spec.timeWindow[0]", ctx)
    rolling = window.get("isRolling", "calendar" not in window)
    if not isinstance(rolling, bool):
        raise ctx.fail("spec.timeWindow[0].isRolling", f"expected true or false, got {rolling!r}")
    if rolling:
        if "calendar" in window:
            raise ctx.fail(
                "spec.timeWindow[0].calendar",
                "a rolling window has no calendar: set isRolling: false or remove calendar",
            )
        return _seconds(window.get("duration"), "spec.timeWindow[0].duration", ctx), None
    count, unit = _duration(window.get("duration"), "spec.timeWindow[0].duration", ctx)
    where = "spec.timeWindow[0].calendar"
    calendar = _mapping(window.get("calendar"), where, ctx)
    _only(calendar, _CALENDAR, where, ctx)
    start = calendar.get("startTime")
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start.strip())
        except ValueError:
            start = None
    if not isinstance(start, datetime):
        raise ctx.fail(
            f"{where}.startTime",
            "expected a time such as '2022-01-01 00:00:00', got "
            f"{v.show(calendar.get('startTime'))}",
        )
    zone = calendar.get("timeZone", "UTC")
    try:
        period = CalendarWindow(count, unit, start, zone)
    except ConfigurationError as exc:
        raise ctx.fail(f"{where}.timeZone", str(exc)) from exc
    return period.nominal_seconds, period


def _budgeting(
    spec: Mapping[str, Any], objective: Mapping[str, Any], where: str, ctx: _Context
) -> BudgetingMethod:
    method = spec.get("budgetingMethod", "Occurrences")
    if not isinstance(method, str) or method not in {
        "Occurrences",
        "Timeslices",
        "RatioTimeslices",
    }:
        raise ctx.fail(
            "spec.budgetingMethod",
            f"expected one of Occurrences, Timeslices, RatioTimeslices, got {v.show(method)}",
        )
    if method == "Occurrences":
        for key in ("timeSliceTarget", "timeSliceWindow"):
            if key in objective:
                raise ctx.fail(f"{where}.{key}", "only applies to Timeslices budgeting")
        return Occurrences()
    if "timeSliceWindow" not in objective:
        raise ctx.fail(where, f"{method} budgeting needs timeSliceWindow")
    slice_duration = _seconds(objective["timeSliceWindow"], f"{where}.timeSliceWindow", ctx)
    if method == "RatioTimeslices":
        if "timeSliceTarget" in objective:
            raise ctx.fail(f"{where}.timeSliceTarget", "only applies to Timeslices budgeting")
        return RatioTimeslices(slice_duration=slice_duration)
    if "timeSliceTarget" not in objective:
        raise ctx.fail(where, "Timeslices budgeting needs timeSliceTarget")
    try:
        return Timeslices(
            slice_target=_number(objective["timeSliceTarget"], f"{where}.timeSliceTarget", ctx),
            slice_duration=slice_duration,
        )
    except ConfigurationError as exc:
        raise ctx.fail(f"{where}.timeSliceTarget", str(exc)) from exc


def _target(objective: Mapping[str, Any], where: str, ctx: _Context) -> float:
    if ("target" in objective) == ("targetPercent" in objective):
        raise ctx.fail(where, "give exactly one of target (a ratio) or targetPercent")
    if "target" in objective:
        return _number(objective["target"], f"{where}.target", ctx)
    percent = _number(objective["targetPercent"], f"{where}.targetPercent", ctx)
    if not 0 < percent <= 100:
        raise ctx.fail(
            f"{where}.targetPercent",
            f"must be a percentage in (0, 100], such as 99.9, got {objective['targetPercent']!r}",
        )
    try:  # the percentage as written, divided in decimal: 99.9 -> 0.999, not 0.9990000000000001
        return float(Decimal(repr(percent)) / 100)
    except InvalidOperation:  # pragma: no cover - repr of a finite float is always decimal
        return percent / 100


# -- alert policies -------------------------------------------------------------------


class _Index:
    """The AlertPolicy and AlertCondition documents of a source, by name."""

    def __init__(self, documents: Iterable[Mapping[str, Any]]) -> None:
        self.policies: dict[str, Mapping[str, Any]] = {}
        self.conditions: dict[str, Mapping[str, Any]] = {}
        for document in documents:
            kind = document.get("kind")
            metadata = document.get("metadata")
            name = metadata.get("name") if isinstance(metadata, Mapping) else None
            if isinstance(name, str):
                if kind == "AlertPolicy":
                    self.policies[name] = document
                elif kind == "AlertCondition":
                    self.conditions[name] = document


def _policy(
    spec: Mapping[str, Any], window: float, index: _Index, ctx: _Context
) -> list[AlertRule] | None:
    policies = spec.get("alertPolicies")
    if policies is None or policies == []:
        return None
    if not isinstance(policies, list):
        raise ctx.fail("spec.alertPolicies", f"expected a list, got {v.show(policies)}")
    rules: list[AlertRule] = []
    for i, item in enumerate(policies):
        where = f"spec.alertPolicies[{i}]"
        name = item if isinstance(item, str) else None
        if isinstance(item, Mapping) and "alertPolicyRef" in item:
            if set(item) != {"alertPolicyRef"}:
                raise ctx.fail(where, "an alertPolicyRef entry holds only alertPolicyRef")
            name = _text(item["alertPolicyRef"], f"{where}.alertPolicyRef", ctx, required=True)
        if name is not None:
            if name not in index.policies:
                known = ", ".join(sorted(index.policies)) or "none"
                raise ctx.fail(
                    where,
                    f"alert policy {name!r} is not in the source (its AlertPolicy documents: "
                    f"{known}); load the policy together with the SLO (in one file, or "
                    "concatenated), or remove the reference",
                )
            policy = index.policies[name]
            where = f"{where} (AlertPolicy {name!r})"
        else:
            policy = _mapping(item, where, ctx)
            if policy.get("kind", "AlertPolicy") != "AlertPolicy":
                raise ctx.fail(f"{where}.kind", f"expected AlertPolicy, got {policy.get('kind')!r}")
        rules.extend(_policy_rules(policy, where, window, index, ctx))
    return rules


def _policy_rules(
    policy: Mapping[str, Any], where: str, window: float, index: _Index, ctx: _Context
) -> list[AlertRule]:
    spec = _mapping(policy.get("spec"), f"{where}.spec", ctx)
    _only(spec, _POLICY_SPEC, f"{where}.spec", ctx)
    if spec.get("alertWhenBreaching", True) is not True:
        raise ctx.fail(
            f"{where}.spec.alertWhenBreaching",
            "perfprim's alerts fire on a breaching burn rate; a policy that does not "
            "cannot map onto them",
        )
    if spec.get("alertWhenNoData", False) is not False:
        raise ctx.fail(
            f"{where}.spec.alertWhenNoData",
            "perfprim's alerts never fire without traffic (no data, no burn): set it to false",
        )
    conditions = spec.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise ctx.fail(f"{where}.spec.conditions", "expected a non-empty list of conditions")
    rules = []
    for j, item in enumerate(conditions):
        cwhere = f"{where}.spec.conditions[{j}]"
        entry = _mapping(item, cwhere, ctx)
        if "conditionRef" in entry:
            name = _text(entry["conditionRef"], f"{cwhere}.conditionRef", ctx, required=True)
            assert name is not None
            if name not in index.conditions:
                known = ", ".join(sorted(index.conditions)) or "none"
                raise ctx.fail(
                    cwhere,
                    f"alert condition {name!r} is not in the source (its AlertCondition "
                    f"documents: {known}); load it together with the SLO",
                )
            entry = index.conditions[name]
            cwhere = f"{cwhere} (AlertCondition {name!r})"
        elif entry.get("kind", "AlertCondition") != "AlertCondition":
            raise ctx.fail(f"{cwhere}.kind", f"expected AlertCondition, got {entry.get('kind')!r}")
        rules.append(_condition_rule(entry, cwhere, window, ctx))
    return rules


def _condition_rule(
    condition: Mapping[str, Any], where: str, window: float, ctx: _Context
) -> AlertRule:
    spec = _mapping(condition.get("spec"), f"{where}.spec", ctx)
    _only(spec, _CONDITION_SPEC, f"{where}.spec", ctx)
    severity = _text(spec.get("severity"), f"{where}.spec.severity", ctx, required=True)
    body = _mapping(spec.get("condition"), f"{where}.spec.condition", ctx)
    cwhere = f"{where}.spec.condition"
    _only(body, _CONDITION, cwhere, ctx)
    if body.get("kind") != "burnrate":
        raise ctx.fail(
            f"{cwhere}.kind", f"perfprim maps burnrate conditions, got {v.show(body.get('kind'))}"
        )
    if body.get("op") not in ("gt", "gte"):
        raise ctx.fail(
            f"{cwhere}.op",
            f"a burn-rate alert fires above its threshold (gt or gte), got "
            f"{v.show(body.get('op'))}",
        )
    threshold = _number(body.get("threshold"), f"{cwhere}.threshold", ctx)
    lookback = _seconds(body.get("lookbackWindow"), f"{cwhere}.lookbackWindow", ctx)
    if "alertAfter" in body:
        _seconds(body["alertAfter"], f"{cwhere}.alertAfter", ctx)
    if threshold <= 0:
        raise ctx.fail(f"{cwhere}.threshold", f"a burn rate above 0, got {threshold!r}")
    if lookback > window:
        raise ctx.fail(
            f"{cwhere}.lookbackWindow",
            f"{body.get('lookbackWindow')} is longer than the SLO window ({window:g} s)",
        )
    fraction = threshold * lookback / window
    if fraction > 1:
        raise ctx.fail(
            f"{cwhere}.threshold",
            f"burn rate {threshold:g} over {body.get('lookbackWindow')} would spend "
            f"{fraction:.3g} times the whole error budget; no such burn fits the window",
        )
    assert severity is not None
    return AlertRule(
        severity=severity,
        budget_fraction=fraction,
        long_window=lookback,
        short_window=lookback / _CONTROL_WINDOW,
    )


# -- SLO documents --------------------------------------------------------------------------


def _definitions(
    document: Mapping[str, Any], index: _Index, value_unit: float
) -> list[OpenSLODefinition]:
    metadata = document.get("metadata")
    raw_name = metadata.get("name") if isinstance(metadata, Mapping) else None
    ctx = _Context(raw_name if isinstance(raw_name, str) else "?")
    _only(document, _TOP, "document", ctx)
    metadata = _mapping(metadata, "metadata", ctx)
    _only(metadata, _METADATA, "metadata", ctx)
    name = _text(metadata.get("name"), "metadata.name", ctx, required=True)
    spec = _mapping(document.get("spec"), "spec", ctx)
    _only(spec, _SPEC, "spec", ctx)
    service = _text(spec.get("service"), "spec.service", ctx, required=True)
    window, calendar = _window(spec, ctx)
    policy = _policy(spec, window, index, ctx)
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        raise ctx.fail("spec.objectives", "expected a non-empty list of objectives")
    common = {
        "name": name,
        "display_name": _text(
            metadata.get("displayName"), "metadata.displayName", ctx, required=False
        ),
        "service": service,
        "description": _text(spec.get("description"), "spec.description", ctx, required=False),
        "labels": _labels(metadata.get("labels"), ctx),
        "annotations": _annotations(metadata.get("annotations"), ctx),
        "calendar": calendar,
    }
    definitions = []
    for i, raw in enumerate(objectives):
        where = f"spec.objectives[{i}]"
        objective = _mapping(raw, where, ctx)
        _only(objective, _OBJECTIVE, where, ctx)
        target = _target(objective, where, ctx)
        budgeting = _budgeting(spec, objective, where, ctx)
        op = objective.get("op")
        if op is not None and op not in _OPS:
            raise ctx.fail(f"{where}.op", f"expected one of {', '.join(_OPS)}, got {v.show(op)}")
        value = None
        if "value" in objective:
            value = _number(objective["value"], f"{where}.value", ctx)
            if op is None:
                raise ctx.fail(where, "a value needs an op (lt, lte, gt or gte) to compare with")
        weight = None
        if "compositeWeight" in objective:
            weight = _number(objective["compositeWeight"], f"{where}.compositeWeight", ctx)
            if weight <= 0:
                raise ctx.fail(f"{where}.compositeWeight", f"expected a weight > 0, got {weight}")
        try:
            if value is not None and op in ("lt", "lte"):
                threshold = value * value_unit
                slo: SLO = LatencySLO(
                    threshold=threshold,
                    target=target,
                    window=window,
                    budgeting=budgeting,
                    policy=policy,
                )
            else:
                slo = SLO(target=target, window=window, budgeting=budgeting, policy=policy)
        except ConfigurationError as exc:
            if policy is None and "long_window" in str(exc):
                raise ctx.fail(
                    "spec.timeWindow[0].duration",
                    f"perfprim's default alert policy does not fit a {window:g} s window "
                    f"({exc}); give the SLO alertPolicies whose lookbackWindow fits it",
                ) from exc
            field_ = f"{where}.value" if "threshold" in str(exc) else where
            raise ctx.fail(field_, str(exc)) from exc
        display = objective.get("displayName")
        definitions.append(
            OpenSLODefinition(
                slo=slo,
                objective=display if isinstance(display, str) else None,
                op=op,
                value=value,
                composite_weight=weight,
                **common,  # type: ignore[arg-type]
            )
        )
    return definitions


def _read(source: object) -> str | bytes:
    if isinstance(source, os.PathLike):
        path = Path(source)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            msg = f"OpenSLO file {str(path)!r} does not exist"
            raise ConfigurationError(msg) from None
        except OSError as exc:
            msg = f"cannot read the OpenSLO file {str(path)!r}: {exc.strerror or exc}"
            raise ConfigurationError(msg) from exc
    if isinstance(source, (str, bytes)):
        return source
    msg = (
        "source must be the YAML text (str or bytes) or a path (pathlib.Path), got "
        f"{v.show(source)}"
    )
    raise ConfigurationError(msg)


def _documents(source: object) -> list[Mapping[str, Any]]:
    yaml = require("yaml", package="pyyaml", extra="yaml", feature="load_openslo")
    text = _read(source)
    try:
        raw = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        msg = f"OpenSLO source is not valid YAML: {exc}"
        raise ConfigurationError(msg) from exc
    documents: list[Mapping[str, Any]] = []
    for d, doc in enumerate(raw):
        items = doc if isinstance(doc, list) else [doc]
        for i, item in enumerate(items):
            where = f"document {d}" + (f", item {i}" if isinstance(doc, list) else "")
            if not isinstance(item, Mapping):
                raise _fail(
                    where,
                    f"expected an OpenSLO object (a mapping with apiVersion and kind), got "
                    f"{v.show(item)}",
                )
            version = item.get("apiVersion")
            kind = item.get("kind")
            if version != "openslo/v1":
                hint = (
                    "; perfprim reads openslo/v1 (oslo convert turns v1alpha into v1)"
                    if isinstance(version, str) and version.startswith("openslo/")
                    else ""
                )
                raise _fail(where, f"apiVersion must be openslo/v1, got {v.show(version)}{hint}")
            if kind not in _KINDS:
                raise _fail(
                    where,
                    f"unknown kind {v.show(kind)}; OpenSLO v1 kinds are "
                    f"{', '.join(sorted(_KINDS))}",
                )
            documents.append(item)
    return documents


def load_openslo_all(
    source: str | bytes | os.PathLike[str], *, value_unit: float = 1.0
) -> tuple[OpenSLODefinition, ...]:
    """Load every SLO objective of OpenSLO v1 YAML: one definition per objective.

    Args:
        source: The YAML text (``str`` or ``bytes``), or a path
            (``pathlib.Path``) to read it from. One or several documents,
            each an object or a list of objects.
        value_unit: Seconds per unit of an objective's ``value`` when it is a
            latency bound (``op: lt|lte``): 1.0 when the value is in
            seconds, 1e-3 for milliseconds.

    Returns:
        The definitions, in document and objective order.

    Raises:
        ConfigurationError: If the source is not OpenSLO v1, holds no SLO, or
            uses a field perfprim cannot map (the message names the SLO and
            the field); if a path does not exist.
        MissingDependencyError: If PyYAML is not installed.
    """
    unit = v.positive(value_unit, "value_unit", hint="1e-3 when values are milliseconds")
    documents = _documents(source)
    index = _Index(documents)
    definitions = [
        definition
        for document in documents
        if document.get("kind") == "SLO"
        for definition in _definitions(document, index, unit)
    ]
    if not definitions:
        kinds = ", ".join(sorted({str(d.get("kind")) for d in documents})) or "nothing"
        raise _fail("source", f"holds no document of kind SLO (found {kinds})")
    return tuple(definitions)


def load_openslo(
    source: str | bytes | os.PathLike[str],
    *,
    name: str | None = None,
    value_unit: float = 1.0,
) -> OpenSLODefinition:
    """Load one SLO from OpenSLO v1 YAML (see :func:`load_openslo_all` for several).

    The YAML may hold several documents (``---``) or a top-level list of
    objects; the other OpenSLO kinds (Service, SLI, AlertPolicy, ...) in it
    are read or skipped as the module notes say.

    Args:
        source: The YAML text (``str`` or ``bytes``), or a path
            (``pathlib.Path``) to read it from.
        name: Which SLO to return when the source holds several
            (``metadata.name``, or ``"<name>/<objective displayName>"`` for
            one objective of several).
        value_unit: Seconds per unit of a latency ``value`` (see
            :func:`load_openslo_all`).

    Returns:
        The SLO with its name, service, labels and what else the document said.

    Raises:
        ConfigurationError: If the source is not OpenSLO v1, holds no SLO, or
            holds several and ``name`` does not pick exactly one; or uses a
            field perfprim cannot map (the message names it).
        MissingDependencyError: If PyYAML is not installed.
    """
    if name is not None:
        v.text(name, "name")
    definitions = load_openslo_all(source, value_unit=value_unit)

    def label(d: OpenSLODefinition) -> str:
        return d.name if d.objective is None else f"{d.name}/{d.objective}"

    if name is not None:
        chosen = [d for d in definitions if name in (d.name, label(d))]
    else:
        chosen = list(definitions)
    if len(chosen) == 1:
        return chosen[0]
    listed = ", ".join(repr(label(d)) for d in definitions)
    if not chosen:
        raise _fail("source", f"holds no SLO named {name!r}; it holds {listed}")
    raise _fail(
        "source",
        f"holds {len(chosen)} SLO objectives ({listed}): pass name= to pick one, "
        "or use load_openslo_all()",
    )
