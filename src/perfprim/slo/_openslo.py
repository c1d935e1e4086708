"""Load an SLO from an OpenSLO v1 document (https://github.com/OpenSLO/OpenSLO).

Supported: ``apiVersion: openslo/v1``, ``kind: SLO``; ``metadata.name``,
``displayName``, ``labels``, ``annotations``; ``spec.service``,
``description``, ``indicator``/``indicatorRef`` (kept as written: perfprim
does not query data sources), one rolling ``timeWindow``,
``budgetingMethod`` and one objective with ``target`` or ``targetPercent``,
``timeSliceTarget``/``timeSliceWindow``, and ``op: lte`` + ``value`` (a
latency threshold in seconds, giving a :class:`LatencySLO`). Anything else is
rejected with a :class:`~perfprim.exceptions.ConfigurationError` that names
the field, rather than silently ignored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfprim._optional import require
from perfprim.exceptions import ConfigurationError
from perfprim.slo._budgeting import BudgetingMethod, Occurrences, RatioTimeslices, Timeslices
from perfprim.slo._slo import SLO, LatencySLO

__all__ = ["OpenSLODefinition", "load_openslo"]

_DURATION = re.compile(r"^([1-9][0-9]*)([smhdwMQY])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_OTHER_KINDS = frozenset(
    {"Service", "SLI", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget"}
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
    }
)
_WINDOW = frozenset({"duration", "isRolling"})
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
    }
)


@dataclass(frozen=True, slots=True)
class OpenSLODefinition:
    """An SLO read from an OpenSLO v1 document.

    Attributes:
        name: ``metadata.name``.
        display_name: ``metadata.displayName``, or None.
        service: ``spec.service``.
        description: ``spec.description``, or None.
        slo: The :class:`SLO` (a :class:`LatencySLO` for ``op: lte``).
    """

    name: str
    display_name: str | None
    service: str
    description: str | None
    slo: SLO


def _fail(where: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"OpenSLO {where}: {message}")


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected a mapping, got {value!r}")
    return value


def _only(value: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise _fail(
            where,
            f"unsupported field(s) {', '.join(unknown)}; perfprim supports "
            f"{', '.join(sorted(allowed))}",
        )


def _text(value: object, where: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(where, f"expected a non-empty string, got {value!r}")
    return value


def _duration(value: object, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise _fail(where, f"expected a duration such as '28d' or '1m', got {value!r}")
    unit = match.group(2)
    if unit not in _SECONDS:
        raise _fail(
            where,
            f"{value!r}: months, quarters and years only make calendar windows, which "
            "perfprim does not support; use a rolling window in days or weeks ('28d')",
        )
    return int(match.group(1)) * _SECONDS[unit]


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"expected a number, got {value!r}")
    return float(value)


def _window(spec: Mapping[str, Any]) -> float:
    windows = spec.get("timeWindow")
    if not isinstance(windows, list) or len(windows) != 1:
        raise _fail("spec.timeWindow", "expected a list with exactly one window")
    window = _mapping(windows[0], "spec.timeWindow[0]")
    if "calendar" in window or window.get("isRolling") is False:
        raise _fail(
            "spec.timeWindow[0]",
            "calendar windows are not supported; use isRolling: true with a duration",
        )
    _only(window, _WINDOW, "spec.timeWindow[0]")
    if window.get("isRolling", True) is not True:
        raise _fail("spec.timeWindow[0].isRolling", "expected true")
    return _duration(window.get("duration"), "spec.timeWindow[0].duration")


def _budgeting(spec: Mapping[str, Any], objective: Mapping[str, Any]) -> BudgetingMethod:
    method = spec.get("budgetingMethod", "Occurrences")
    where = "spec.objectives[0]"
    if method == "Occurrences":
        for key in ("timeSliceTarget", "timeSliceWindow"):
            if key in objective:
                raise _fail(f"{where}.{key}", "only applies to Timeslices budgeting")
        return Occurrences()
    if method not in {"Timeslices", "RatioTimeslices"}:
        raise _fail(
            "spec.budgetingMethod",
            f"{method!r} is not one of Occurrences, Timeslices, RatioTimeslices",
        )
    if "timeSliceWindow" not in objective:
        raise _fail(where, f"{method} budgeting needs timeSliceWindow")
    slice_duration = _duration(objective["timeSliceWindow"], f"{where}.timeSliceWindow")
    if method == "RatioTimeslices":
        if "timeSliceTarget" in objective:
            raise _fail(f"{where}.timeSliceTarget", "only applies to Timeslices budgeting")
        return RatioTimeslices(slice_duration=slice_duration)
    if "timeSliceTarget" not in objective:
        raise _fail(where, "Timeslices budgeting needs timeSliceTarget")
    return Timeslices(
        slice_target=_number(objective["timeSliceTarget"], f"{where}.timeSliceTarget"),
        slice_duration=slice_duration,
    )


def _definition(document: Mapping[str, Any]) -> OpenSLODefinition:
    _only(document, _TOP, "document")
    metadata = _mapping(document.get("metadata"), "metadata")
    _only(metadata, _METADATA, "metadata")
    spec = _mapping(document.get("spec"), "spec")
    if "alertPolicies" in spec:
        raise _fail(
            "spec.alertPolicies",
            "alert policies are not supported; perfprim applies its multiwindow policy "
            "(SLO(policy=...)): remove the field",
        )
    _only(spec, _SPEC, "spec")
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or len(objectives) != 1:
        raise _fail(
            "spec.objectives",
            "expected exactly one objective; write one SLO document per objective",
        )
    objective = _mapping(objectives[0], "spec.objectives[0]")
    if "compositeWeight" in objective:
        raise _fail("spec.objectives[0].compositeWeight", "composite SLOs are not supported")
    _only(objective, _OBJECTIVE, "spec.objectives[0]")
    if ("target" in objective) == ("targetPercent" in objective):
        raise _fail("spec.objectives[0]", "give exactly one of target or targetPercent")
    if "target" in objective:
        target = _number(objective["target"], "spec.objectives[0].target")
    else:
        target = _number(objective["targetPercent"], "spec.objectives[0].targetPercent") / 100
    window = _window(spec)
    budgeting = _budgeting(spec, objective)
    op = objective.get("op")
    try:
        if op is None and "value" not in objective:
            slo = SLO(target=target, window=window, budgeting=budgeting)
        elif op == "lte" and "value" in objective:
            threshold = _number(objective["value"], "spec.objectives[0].value")
            slo = LatencySLO(threshold=threshold, target=target, window=window, budgeting=budgeting)
        else:
            raise _fail(
                "spec.objectives[0].op",
                f"only op: lte with a value (a latency threshold in seconds) is "
                f"supported, got op={op!r}",
            )
    except ConfigurationError as exc:
        if str(exc).startswith("OpenSLO"):
            raise
        raise _fail("spec.objectives[0]", str(exc)) from exc
    return OpenSLODefinition(
        name=str(_text(metadata.get("name"), "metadata.name", required=True)),
        display_name=_text(metadata.get("displayName"), "metadata.displayName", required=False),
        service=str(_text(spec.get("service"), "spec.service", required=True)),
        description=_text(spec.get("description"), "spec.description", required=False),
        slo=slo,
    )


def load_openslo(source: str | bytes | os.PathLike[str]) -> OpenSLODefinition:
    """Load the SLO of an OpenSLO v1 document.

    The YAML may hold several documents (``---``); exactly one must be of
    ``kind: SLO``. Documents of the other OpenSLO kinds (Service, SLI, ...)
    are skipped.

    Args:
        source: The YAML text (``str`` or ``bytes``), or a path
            (``pathlib.Path``) to read it from.

    Returns:
        The SLO with its name, service and description.

    Raises:
        ConfigurationError: If the document is not OpenSLO v1, has no or
            several SLOs, or uses a field perfprim does not support (the
            message names it).
        MissingDependencyError: If PyYAML is not installed.
    """
    yaml = require("yaml", package="pyyaml", extra="yaml", feature="load_openslo")
    text = Path(source).read_text() if isinstance(source, os.PathLike) else source
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        msg = f"OpenSLO document is not valid YAML: {exc}"
        raise ConfigurationError(msg) from exc
    slos = []
    for index, raw in enumerate(documents):
        document = _mapping(raw, f"document {index}")
        if document.get("apiVersion") != "openslo/v1":
            raise _fail(
                f"document {index}",
                f"apiVersion must be openslo/v1, got {document.get('apiVersion')!r}",
            )
        kind = document.get("kind")
        if kind == "SLO":
            slos.append(document)
        elif kind not in _OTHER_KINDS:
            raise _fail(f"document {index}", f"unknown kind {kind!r}")
    if len(slos) != 1:
        raise _fail("source", f"expected exactly one document of kind SLO, found {len(slos)}")
    return _definition(slos[0])
