"""Histogram bucket bounds from a Prometheus exposition (a file, or a scrape over HTTP).

The text is parsed by prometheus_client's own parsers (the Prometheus text
format, or OpenMetrics when the server says so), which keep each ``le``
label exactly as the client wrote it: ``"1"`` from Go clients, ``"1.0"`` from
Python and Java ones. Rules must match that text, and a threshold that is not
a bound at all has no exact SLI (sloth #506, slo-libsonnet #46, pyrra #1502).
"""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from perfprim.cli._output import InputError

__all__ = ["Bounds", "bucket_bounds", "read_exposition"]

_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Bounds:
    """The bucket bounds of one histogram as exposed: number -> ``le`` text."""

    metric: str
    texts: dict[float, str]

    def find(self, bound: float) -> str | None:
        """The exposed ``le`` text equal to ``bound`` (to 1e-9 relative), or None."""
        for value, text in self.texts.items():
            if math.isclose(value, bound, rel_tol=1e-9):
                return text
        return None

    def neighbours(self, bound: float) -> tuple[float | None, float | None]:
        """The largest bound below and the smallest above ``bound`` (finite ones)."""
        finite = sorted(v for v in self.texts if math.isfinite(v))
        below = [v for v in finite if v < bound]
        above = [v for v in finite if v > bound]
        return (below[-1] if below else None, above[0] if above else None)


def read_exposition(source: str) -> tuple[str, str]:
    """Read an exposition from a path or an ``http(s)://`` URL.

    Returns:
        The text and its content type (``""`` for a file).

    Raises:
        InputError: If it cannot be read (exit 2).
    """
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
            source,
            headers={"Accept": "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"},
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
                body: bytes = response.read()
                content_type = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            msg = f"cannot scrape {source}: HTTP {exc.code} {exc.reason}"
            raise InputError(msg) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            msg = f"cannot scrape {source}: {reason}; is the service running there?"
            raise InputError(msg) from exc
        return body.decode("utf-8", errors="replace"), content_type
    if "://" in source:
        msg = f"--buckets takes a file or an http(s):// URL, got {source!r}"
        raise InputError(msg)
    try:
        return Path(source).read_text(encoding="utf-8"), ""
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read the exposition {source!r}: {getattr(exc, 'strerror', None) or exc}"
        raise InputError(msg) from exc


def _equality_matchers(matchers: str) -> dict[str, str]:
    inner = matchers.strip().removeprefix("{").removesuffix("}")
    found: dict[str, str] = {}
    for match in _MATCHER.finditer(inner):
        found[match.group(1)] = match.group(2).replace('\\"', '"').replace("\\\\", "\\")
    return found


def bucket_bounds(text: str, content_type: str, metric: str, matchers: str, source: str) -> Bounds:
    """The ``le`` bounds of histogram ``metric`` in an exposition.

    Only series whose labels agree with the selector's ``label="value"``
    matchers are read (other matcher kinds are not applied).

    Raises:
        InputError: If the text does not parse or holds no such histogram.
    """
    from perfprim._optional import require

    require(
        "prometheus_client",
        package="prometheus-client",
        extra="prometheus",
        feature="perfprim slo rules --buckets",
    )
    wanted = _equality_matchers(matchers)
    try:
        if "openmetrics" in content_type:
            from prometheus_client.openmetrics.parser import text_string_to_metric_families

            families = list(text_string_to_metric_families(text))  # type: ignore[no-untyped-call]
        else:
            from prometheus_client.parser import text_string_to_metric_families

            families = list(text_string_to_metric_families(text))  # type: ignore[no-untyped-call]
    except ValueError as exc:
        msg = f"{source} is not a Prometheus exposition ({exc})"
        raise InputError(msg) from exc
    texts: dict[float, str] = {}
    names = []
    for family in families:
        names.append(family.name)
        if family.name != metric or family.type not in {"histogram", "gaugehistogram"}:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_bucket") or "le" not in sample.labels:
                continue
            if any(sample.labels.get(k) != v for k, v in wanted.items()):
                continue
            le = sample.labels["le"]
            try:
                texts.setdefault(float(le), le)
            except ValueError:
                continue
    if not texts:
        histograms = sorted(f.name for f in families if f.type in {"histogram", "gaugehistogram"})
        where = f" with labels {matchers}" if wanted else ""
        msg = (
            f"{source} has no histogram {metric!r}{where}; its histograms: "
            f"{', '.join(histograms) or 'none'}"
        )
        raise InputError(msg)
    return Bounds(metric, texts)
