"""SLO files for ``perfprim slo check`` and ``perfprim slo rules``: perfprim's own, or OpenSLO.

perfprim's format (``version: perfprim/v1``) says, per SLO, which Prometheus
series count the events, which OpenSLO leaves to the data source::

    version: perfprim/v1
    service: checkout
    labels: {team: payments}            # optional, on every rule
    slos:
      - name: availability
        objective: 99.9%                # or 0.999
        window: 30d                     # default 30d
        errors: http_requests_total{job="checkout",code=~"5.."}
        total: http_requests_total{job="checkout"}
      - name: latency
        objective: 99%
        window: 28d
        latency:
          histogram: http_request_duration_seconds{job="checkout"}
          threshold: 300ms
          unit: s                       # of the bucket bounds; from the name by default

An OpenSLO v1 document is read with :func:`perfprim.slo.load_openslo`; its
series come from the command line (``--total``/``--errors``/``--good`` or
``--histogram``).

Every problem found is collected (``slos[1] (latency): objective: ...``), so
``slo check`` reports them all at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfprim.cli._output import InputError
from perfprim.cli._params import parse_duration, parse_ratio

__all__ = ["LatencyIndicator", "SLOEntry", "SLOFile", "Selectors", "le_candidates", "load"]

_KEYS = frozenset({"version", "service", "labels", "slos"})
_SLO_KEYS = frozenset(
    {"name", "objective", "window", "description", "errors", "good", "total", "latency"}
)
_LATENCY_KEYS = frozenset({"histogram", "threshold", "unit"})
_UNIT_SUFFIXES = (("_milliseconds", 1e-3), ("_microseconds", 1e-6), ("_nanoseconds", 1e-9))
_UNIT_NAMES = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


@dataclass(frozen=True, slots=True)
class LatencyIndicator:
    """A latency SLI read from a Prometheus histogram.

    Attributes:
        metric: The histogram's name (without ``_bucket``).
        matchers: The selector's matchers, ``{job="x"}`` or ``""``.
        unit: Seconds per unit of the bucket bounds (1e-3 for ``_milliseconds``).
    """

    metric: str
    matchers: str
    unit: float

    def bound(self, threshold: float) -> float:
        """The threshold (seconds) in the histogram's unit."""
        return threshold / self.unit


@dataclass(frozen=True, slots=True)
class Selectors:
    """The counter selectors of a ratio SLI (``good`` or ``errors``, and ``total``)."""

    total: str
    errors: str | None = None
    good: str | None = None


@dataclass(slots=True)
class SLOEntry:
    """One SLO of a file, with what is needed to write its rules."""

    name: str
    service: str
    slo: Any  # perfprim.slo.SLO (imported lazily)
    selectors: Selectors | None = None
    latency: LatencyIndicator | None = None
    description: str | None = None


@dataclass(slots=True)
class SLOFile:
    """The SLOs of one file and every problem found in it."""

    path: str
    format: str
    labels: dict[str, str] = field(default_factory=dict)
    entries: list[SLOEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def le_candidates(bound: float) -> list[str]:
    """The ``le`` label texts clients write for ``bound``: Go ``"1"``, Python ``"1.0"``.

    Without the real exposition, a rule matching only one of them sees no
    data on the other kind of client (sloth #506, pyrra #1502).
    """
    text = repr(float(bound))
    return sorted({text, text.removesuffix(".0")})


def split_selector(selector: str) -> tuple[str, str]:
    """``name{matchers}`` -> ``("name", "{matchers}")``."""
    text = selector.strip()
    name, brace, rest = text.partition("{")
    return name.strip(), (brace + rest) if brace else ""


def _unit_of(metric: str, unit: object, where: str, problems: list[str]) -> float:
    if unit is not None:
        if unit not in _UNIT_NAMES:
            problems.append(f"{where}.unit: must be one of s, ms, us, ns, got {unit!r}")
            return 1.0
        return _UNIT_NAMES[str(unit)]
    for suffix, size in _UNIT_SUFFIXES:
        if metric.endswith(suffix):
            return size
    return 1.0


def _text(value: object, where: str, problems: list[str]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: expected a non-empty string, got {value!r}")
        return None
    return value.strip()


def _objective(value: object, where: str, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.append(f"{where}: expected a percentage such as 99.9% (or 0.999), got {value!r}")
        return None
    try:
        return parse_ratio(str(value))
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _window(value: object, where: str, problems: list[str]) -> float | None:
    if value is None:
        return 30 * 86400.0
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.append(f"{where}: expected a duration with a unit such as 30d, got {value!r}")
        return None
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _perfprim_entry(raw: object, index: int, service: str, problems: list[str]) -> SLOEntry | None:
    from perfprim.exceptions import ConfigurationError
    from perfprim.slo import SLO, LatencySLO

    where = f"slos[{index}]"
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping with name, objective, ...")
        return None
    name = raw.get("name")
    if isinstance(name, str) and name:
        where = f"slos[{index}] ({name})"
    start = len(problems)
    unknown = sorted(str(k) for k in raw if k not in _SLO_KEYS)
    if unknown:
        problems.append(
            f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_SLO_KEYS))}"
        )
    name_text = _text(name, f"{where}.name", problems)
    target = _objective(raw.get("objective"), f"{where}.objective", problems)
    window = _window(raw.get("window"), f"{where}.window", problems)
    description = raw.get("description")
    latency = raw.get("latency")
    selectors: Selectors | None = None
    indicator: LatencyIndicator | None = None
    threshold: float | None = None
    ratio_keys = [k for k in ("errors", "good", "total") if k in raw]
    if latency is not None:
        if ratio_keys:
            problems.append(
                f"{where}: give either latency: or errors/good with total, not both "
                f"(found latency and {', '.join(ratio_keys)})"
            )
        if not isinstance(latency, Mapping):
            problems.append(f"{where}.latency: expected a mapping with histogram and threshold")
        else:
            extra = sorted(str(k) for k in latency if k not in _LATENCY_KEYS)
            if extra:
                problems.append(
                    f"{where}.latency: unknown field(s) {', '.join(extra)}; "
                    "known: histogram, threshold, unit"
                )
            histogram = _text(latency.get("histogram"), f"{where}.latency.histogram", problems)
            threshold = _window(
                latency.get("threshold", ""), f"{where}.latency.threshold", problems
            )
            if histogram is not None:
                metric, matchers = split_selector(histogram)
                metric = metric.removesuffix("_bucket")
                unit = _unit_of(metric, latency.get("unit"), f"{where}.latency", problems)
                indicator = LatencyIndicator(metric, matchers, unit)
    else:
        total = raw.get("total")
        errors = raw.get("errors")
        good = raw.get("good")
        if total is None or (errors is None) == (good is None):
            problems.append(
                f"{where}: give total with exactly one of errors or good (counter selectors), "
                "or a latency: block"
            )
        else:
            total_text = _text(total, f"{where}.total", problems)
            errors_text = None if errors is None else _text(errors, f"{where}.errors", problems)
            good_text = None if good is None else _text(good, f"{where}.good", problems)
            if total_text is not None:
                selectors = Selectors(total_text, errors_text, good_text)
    if len(problems) > start or name_text is None or target is None or window is None:
        return None
    try:
        if indicator is not None:
            assert threshold is not None
            slo: Any = LatencySLO(threshold=threshold, target=target, window=window)
        else:
            slo = SLO(target=target, window=window)
    except ConfigurationError as exc:
        problems.append(f"{where}: {exc}")
        return None
    return SLOEntry(
        name=name_text,
        service=service,
        slo=slo,
        selectors=selectors,
        latency=indicator,
        description=description if isinstance(description, str) else None,
    )


def _load_perfprim(document: Mapping[str, Any], result: SLOFile) -> None:
    problems = result.problems
    unknown = sorted(str(k) for k in document if k not in _KEYS)
    if unknown:
        problems.append(
            f"unknown top-level field(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    service = _text(document.get("service"), "service", problems) or "service"
    labels = document.get("labels") or {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        problems.append("labels: expected a mapping of label names to strings")
    else:
        result.labels = dict(labels)
    slos = document.get("slos")
    if not isinstance(slos, list) or not slos:
        problems.append("slos: expected a non-empty list of SLOs")
        return
    names: set[str] = set()
    for index, raw in enumerate(slos):
        entry = _perfprim_entry(raw, index, service, problems)
        if entry is None:
            continue
        if entry.name in names:
            problems.append(f"slos[{index}] ({entry.name}): the name is used twice")
            continue
        names.add(entry.name)
        result.entries.append(entry)


def _load_openslo(text: str, result: SLOFile) -> None:
    from perfprim.exceptions import ConfigurationError
    from perfprim.slo import load_openslo

    try:
        definition = load_openslo(text)
    except ConfigurationError as exc:
        result.problems.append(str(exc))
        return
    result.entries.append(
        SLOEntry(
            name=definition.name,
            service=definition.service,
            slo=definition.slo,
            description=definition.description,
        )
    )


def load(path: str) -> SLOFile:
    """Read and check an SLO file (perfprim's format or OpenSLO v1).

    Args:
        path: The file.

    Returns:
        The SLOs that are valid, and the problems found (empty when all are).

    Raises:
        InputError: If the file cannot be read (exit 2).
    """
    from perfprim._optional import require

    yaml = require("yaml", package="pyyaml", extra="cli", feature="perfprim slo")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read the SLO file {path!r}: {exc.strerror or exc}"
        raise InputError(msg) from exc
    except UnicodeDecodeError as exc:
        msg = f"the SLO file {path!r} is not UTF-8 text"
        raise InputError(msg) from exc
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        result = SLOFile(path, "unknown")
        result.problems.append(f"not valid YAML{where}: {problem}")
        return result
    first = documents[0] if documents else None
    if isinstance(first, Mapping) and first.get("version") == "perfprim/v1":
        result = SLOFile(path, "perfprim/v1")
        if len(documents) > 1:
            result.problems.append(
                "a perfprim SLO file holds one YAML document; list SLOs under slos:"
            )
        _load_perfprim(first, result)
        return result
    if any(isinstance(d, Mapping) and "apiVersion" in d for d in documents):
        result = SLOFile(path, "openslo/v1")
        _load_openslo(text, result)
        return result
    result = SLOFile(path, "unknown")
    result.problems.append(
        "neither a perfprim SLO file (version: perfprim/v1) nor an OpenSLO document "
        "(apiVersion: openslo/v1); see docs/cli.md for the format"
    )
    return result


def describe_threshold(entry: SLOEntry) -> float | None:
    """The latency threshold of an entry in seconds, or None for a ratio SLO."""
    threshold = getattr(entry.slo, "threshold", None)
    return None if threshold is None or math.isnan(threshold) else float(threshold)
