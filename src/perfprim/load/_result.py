"""LoadResult: what a run measured, its verdicts, and plain words when the driver fell behind."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from perfprim.histogram import LatencyHistogram
from perfprim.load._thresholds import ThresholdResult, format_observed

__all__ = ["LATE_FRACTION_LIMIT", "REPORT_PERCENTILES", "LoadResult"]

REPORT_PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)
LATE_FRACTION_LIMIT = 0.01
"""Above this fraction of late sends, the result says the driver could not keep up."""


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """The outcome of :func:`perfprim.load.run`.

    Attributes:
        latency: Completion time minus *planned* start of every completed
            request, in seconds (coordinated-omission free: a stall shows as
            latency of every request that was due during it).
        lateness: Actual send minus planned send of every sent request: the
            driver's health, not the server's.
        planned: Requests the stages planned.
        sent: Requests sent.
        completed: Requests that ended (answered, failed or cancelled).
        errors: Requests that failed (exception, HTTP status >= 400, or
            cancelled at the end of the run).
        late: Sends more than ``late_after`` seconds after their plan.
        waited: Sends that waited for a free slot because ``max_in_flight``
            requests were out.
        duration: Seconds from the start to the end of the run.
        planned_duration: Seconds the stages last.
        thresholds: Each threshold's verdict, in the order given.
        aborted_by: The windowed threshold that stopped the run, if any.
        error_kinds: Failures by kind (``"http 503"``, ``"timeout"``...).
        late_after: The lateness bound used for ``late``.
        max_in_flight: The in-flight bound used.
        workers: Processes that sent the load.
    """

    latency: LatencyHistogram = field(repr=False)
    lateness: LatencyHistogram = field(repr=False)
    planned: int
    sent: int
    completed: int
    errors: int
    late: int
    waited: int
    duration: float
    planned_duration: float
    thresholds: tuple[ThresholdResult, ...] = field(repr=False)
    aborted_by: ThresholdResult | None = field(repr=False)
    error_kinds: Mapping[str, int] = field(repr=False)
    late_after: float = field(repr=False)
    max_in_flight: int = field(repr=False)
    workers: int = field(repr=False)

    @property
    def passed(self) -> bool:
        """Whether every threshold held and no threshold aborted the run."""
        return self.aborted_by is None and all(t.passed for t in self.thresholds)

    @property
    def throughput(self) -> float:
        """Completed requests per second over the run."""
        return self.completed / self.duration if self.duration > 0 else 0.0

    @property
    def offered_rate(self) -> float:
        """Planned requests per second over the stages (the load asked for)."""
        return self.planned / self.planned_duration if self.planned_duration > 0 else 0.0

    @property
    def error_rate(self) -> float:
        """``errors / completed`` (0.0 when nothing completed)."""
        return self.errors / self.completed if self.completed else 0.0

    @property
    def unsent(self) -> int:
        """Planned requests never sent (the run was aborted or hit its deadline)."""
        return self.planned - self.sent

    @property
    def late_fraction(self) -> float:
        """``late / sent``."""
        return self.late / self.sent if self.sent else 0.0

    @property
    def driver_overloaded(self) -> bool:
        """Whether the driver could not send the load as planned (see :attr:`warnings`)."""
        return (
            self.late_fraction > LATE_FRACTION_LIMIT
            or self.waited > 0
            or (self.unsent > 0 and self.aborted_by is None)
        )

    @property
    def warnings(self) -> tuple[str, ...]:
        """Plain sentences on anything that makes the figures less than they seem."""
        out: list[str] = []
        if self.waited:
            out.append(
                f"max_in_flight={self.max_in_flight} was reached: {self.waited} sends waited "
                "for a request to finish (requests in flight = rate x latency). Latency is "
                "still measured from the planned start, but the rate offered fell: raise "
                "max_in_flight"
            )
        if self.late_fraction > LATE_FRACTION_LIMIT:
            late = (
                f"{self.late_fraction:.1%} of requests were sent more than "
                f"{_ms(self.late_after)} late (p99 lateness "
                f"{_ms(self.lateness.percentile(99.0))})"
            )
            if self.waited:
                out.append(
                    f"{late}, most of them waiting for a free slot (above): the load offered "
                    "was lower than planned"
                )
            else:
                out.append(
                    f"the driver could not keep up: {late}; the load offered was lower than "
                    "planned, so the throughput is the driver's limit, not the server's. Add "
                    "workers=, lower the rate, or run the driver on a machine of its own"
                )
        if self.unsent and self.aborted_by is None:
            out.append(
                f"{self.unsent} planned requests were never sent before the run's deadline "
                "(the stages' end plus timeout)"
            )
        cancelled = self.error_kinds.get("timeout", 0)
        if cancelled:
            out.append(
                f"{cancelled} requests were still in flight at the deadline and were cancelled; "
                "they count as errors, with latency up to the deadline"
            )
        if self.aborted_by is not None:
            out.append(f"aborted: {self.aborted_by.describe().strip()}")
        return tuple(out)

    def report(self) -> str:
        """Return a human summary: counts, rate, latency and lateness, thresholds, warnings."""
        p = self.latency.percentiles(REPORT_PERCENTILES)
        workers = f", {self.workers} workers" if self.workers > 1 else ""
        percentiles = "  ".join(f"p{_pct(q)} {_ms(v)}" for q, v in p.items())
        lines = [
            (
                f"requests: {self.planned} planned, {self.sent} sent, {self.completed} "
                f"completed, {self.errors} errors ({self.error_rate:.2%}) in "
                f"{self.duration:.1f} s"
            ),
            (
                f"throughput: {self.throughput:.1f} req/s (offered {self.offered_rate:.1f} "
                f"req/s{workers})"
            ),
            f"latency from planned start: {percentiles}  max {_ms(self.latency.max)}",
            (
                f"lateness of sends: p50 {_ms(self.lateness.percentile(50.0))}  "
                f"p99 {_ms(self.lateness.percentile(99.0))}  max {_ms(self.lateness.max)}  "
                f"late (> {_ms(self.late_after)}): {self.late}"
            ),
        ]
        if self.error_kinds:
            kinds = ", ".join(f"{k}: {n}" for k, n in sorted(self.error_kinds.items()))
            lines.append(f"errors by kind: {kinds}")
        if self.thresholds:
            lines.append("thresholds:")
            lines.extend("  " + t.describe() for t in self.thresholds)
        lines.extend(f"WARNING: {w}" for w in self.warnings)
        if self.thresholds:
            lines.append("PASSED" if self.passed else "FAILED")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (histograms as HdrHistogram V2 base64, times in seconds)."""
        p = self.latency.percentiles(REPORT_PERCENTILES)
        q = self.lateness.percentiles(REPORT_PERCENTILES)
        return {
            "passed": self.passed,
            "planned": self.planned,
            "sent": self.sent,
            "completed": self.completed,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "error_kinds": dict(self.error_kinds),
            "late": self.late,
            "late_after": self.late_after,
            "waited": self.waited,
            "duration": self.duration,
            "planned_duration": self.planned_duration,
            "throughput": self.throughput,
            "offered_rate": self.offered_rate,
            "workers": self.workers,
            "max_in_flight": self.max_in_flight,
            "driver_overloaded": self.driver_overloaded,
            "latency": _summary(self.latency, p),
            "lateness": _summary(self.lateness, q),
            "thresholds": [
                {
                    "expression": t.expression,
                    "observed": None if math.isnan(t.observed) else t.observed,
                    "observed_text": format_observed(t),
                    "passed": t.passed,
                    "window_start": t.window_start,
                }
                for t in self.thresholds
            ],
            "aborted_by": None if self.aborted_by is None else self.aborted_by.expression,
            "warnings": list(self.warnings),
        }


def _pct(q: float) -> str:
    return f"{q:g}"


def _summary(h: LatencyHistogram, p: dict[float, float]) -> dict[str, Any]:
    return {
        "count": h.count,
        "min": h.min,
        "mean": h.mean,
        "max": h.max,
        "percentiles": {_pct(q): v for q, v in p.items()},
        "hdr": h.encode(),
    }
