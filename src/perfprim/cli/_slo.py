"""``perfprim slo``: budgets, burn-rate policies, SLO file checks, Prometheus rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from perfprim.cli._output import GateFailed, InputError, Table, emit, note
from perfprim.cli._params import (
    DURATION,
    RATIO,
    format_duration,
    format_percent,
    format_seconds,
)

if TYPE_CHECKING:
    from rich.console import Console

    from perfprim.cli._slofile import SLOEntry, SLOFile

__all__ = ["slo"]

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


@click.group(epilog="Example:  perfprim slo budget --target 99.9% --window 30d")
def slo() -> None:
    """Error budgets, burn-rate alerts and Prometheus rules for SLOs."""


def _policy_rows(model: Any) -> list[dict[str, Any]]:
    return [
        {
            "severity": row.severity,
            "budget_fraction": row.budget_fraction,
            "long_window_seconds": row.long_window,
            "short_window_seconds": row.short_window,
            "burn_rate": row.burn_rate,
            "detection_seconds_at_full_outage": model.detection_time(
                1.0, row.long_window, row.burn_rate
            ),
            "exhaustion_seconds": model.time_to_exhaustion(row.burn_rate),
        }
        for row in model.alert_windows()
    ]


@slo.command(
    epilog="""\b
Examples:
  perfprim slo budget --target 99.9% --window 30d
  perfprim slo budget --target 99.99% --window 7d --total 25000000 --json
"""
)
@click.option("--target", required=True, type=RATIO, help="The objective: 99.9% or 0.999.")
@click.option(
    "--window", default="30d", show_default=True, type=DURATION, help="The SLO window: 30d, 7d."
)
@click.option(
    "--total",
    type=click.FloatRange(min=0),
    default=None,
    help="Events expected over the window (default: per million).",
)
@JSON_OPTION
def budget(*, target: float, window: float, total: float | None, as_json: bool) -> None:
    """What the objective allows (time, events) and the burn-rate policy that pages.

    The policy is the SRE Workbook's (also sloth's) for 28- and 30-day windows,
    and its 28-day windows scaled by window / 28d for any other (as pyrra does).
    """
    from perfprim.slo import DEFAULT_POLICY, SLO

    if window < 3600:
        msg = (
            f"{format_duration(window)} is too short: the burn-rate policy needs an SLO window "
            "of at least 1h (its control windows would be under a second)"
        )
        raise click.BadParameter(msg, param_hint="'--window'")
    model = SLO(target=target, window=window)
    events = 1_000_000.0 if total is None else total
    result: dict[str, Any] = {
        "target": model.target,
        "window_seconds": model.window,
        "error_budget": model.error_budget,
        "allowed_downtime_seconds": model.allowed_downtime,
        "total_events": events,
        "allowed_bad_events": model.allowed_bad_events(events),
        "policy_source": "workbook" if model.policy == DEFAULT_POLICY else "scaled",
        "policy": _policy_rows(model),
    }

    def human(out: Console) -> None:
        summary = Table(
            f"SLO {format_percent(model.target)} over {format_duration(window)}",
            ["", "value"],
            left=[""],
        )
        summary.add("error budget", format_percent(model.error_budget))
        summary.add("allowed downtime", format_duration(model.allowed_downtime))
        summary.add(
            f"allowed bad events of {events:,.0f}", f"{model.allowed_bad_events(events):,.1f}"
        )
        summary.render(out)
        source = (
            "the SRE Workbook's (sloth's)"
            if result["policy_source"] == "workbook"
            else "the Workbook's 28-day windows x window/28d (pyrra's rule)"
        )
        table = Table(
            f"Burn-rate alerts: {source}",
            [
                "severity",
                "budget",
                "long window",
                "short window",
                "burn rate",
                "fires after (full outage)",
                "budget gone in",
            ],
            left=["severity"],
        )
        for row in result["policy"]:
            table.add(
                row["severity"],
                format_percent(row["budget_fraction"]),
                format_duration(row["long_window_seconds"]),
                format_duration(row["short_window_seconds"]),
                f"{row['burn_rate']:.4g}",
                format_duration(row["detection_seconds_at_full_outage"]),
                format_duration(row["exhaustion_seconds"]),
            )
        table.render(out)

    emit("slo budget", result, as_json=as_json, human=human)


def _entry_json(entry: SLOEntry, le: str | None, checked: bool | None) -> dict[str, Any]:
    threshold = getattr(entry.slo, "threshold", None)
    return {
        "name": entry.name,
        "service": entry.service,
        "kind": "latency" if threshold is not None else "ratio",
        "target": entry.slo.target,
        "window_seconds": entry.slo.window,
        "error_budget": entry.slo.error_budget,
        "threshold_seconds": threshold,
        "le": le,
        "checked_against_buckets": checked,
    }


def _load(path: str) -> SLOFile:
    from perfprim.cli._slofile import load

    return load(path)


def _bounds_for(entry: SLOEntry, source: str | None, cache: dict[str, Any]) -> Any:
    from perfprim.cli._exposition import bucket_bounds, read_exposition

    assert entry.latency is not None
    if source is None:
        return None
    if "text" not in cache:
        cache["text"] = read_exposition(source)
    text, content_type = cache["text"]
    return bucket_bounds(text, content_type, entry.latency.metric, entry.latency.matchers, source)


def _check_latency(
    entry: SLOEntry, source: str | None, cache: dict[str, Any], problems: list[str]
) -> tuple[str | None, bool | None]:
    """The ``le`` matcher text for a latency SLO, checked against real bounds when given."""
    from perfprim.cli._slofile import le_candidates

    if entry.latency is None:
        return None, None
    bound = entry.latency.bound(entry.slo.threshold)
    bounds = _bounds_for(entry, source, cache)
    if bounds is None:
        candidates = le_candidates(bound)
        return "|".join(candidates), False
    text = bounds.find(bound)
    if text is None:
        below, above = bounds.neighbours(bound)
        near = ", ".join(f"{v:g}" for v in (below, above) if v is not None)
        unit = "" if entry.latency.unit == 1.0 else f" ({format_seconds(entry.latency.unit)} units)"
        problems.append(
            f"{entry.name}: the latency threshold {format_seconds(entry.slo.threshold)} "
            f"(le={bound:g}{unit}) is not a bucket bound of {entry.latency.metric} in "
            f"{source}, so its SLI cannot be read exactly; use a bound ({near} are the "
            f"nearest) as threshold, or add {bound:g} to the histogram's buckets"
        )
        return None, True
    return text, True


@slo.command(
    epilog="""\b
Examples:
  perfprim slo check slo.yaml
  perfprim slo check slo.yaml --buckets metrics.prom
"""
)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--buckets",
    metavar="FILE|URL",
    help="A Prometheus exposition (file or http:// URL) to check latency thresholds against "
    "its real bucket bounds.",
)
@JSON_OPTION
def check(*, file: str, buckets: str | None, as_json: bool) -> None:
    """Validate an SLO file (perfprim's or OpenSLO): exit 1 and every problem if invalid."""
    loaded = _load(file)
    problems = list(loaded.problems)
    cache: dict[str, Any] = {}
    entries = []
    for entry in loaded.entries:
        le, checked = _check_latency(entry, buckets, cache, problems)
        entries.append(_entry_json(entry, le, checked))
    ok = not problems
    result = {
        "file": file,
        "format": loaded.format,
        "valid": ok,
        "slos": entries,
        "problems": problems,
    }

    def human(out: Console) -> None:
        table = Table(
            f"{file} ({loaded.format})",
            ["slo", "kind", "objective", "window", "threshold", "error budget"],
            left=["slo", "kind"],
        )
        for item in entries:
            threshold = item["threshold_seconds"]
            table.add(
                item["name"],
                item["kind"],
                format_percent(item["target"]),
                format_duration(item["window_seconds"]),
                "" if threshold is None else format_seconds(threshold),
                format_percent(item["error_budget"]),
            )
        if entries:
            table.render(out)
        for problem in problems:
            out.print(f"problem: {problem}", markup=False)

    emit("slo check", result, as_json=as_json, human=human, ok=ok)
    if not ok:
        msg = f"{file}: {len(problems)} problem(s); the first: {problems[0]}"
        raise GateFailed(msg)
    if not as_json:
        note(f"{file}: {len(entries)} SLO(s), valid")


def _selectors_for(
    entry: SLOEntry,
    le: str | None,
    *,
    total: str | None,
    errors: str | None,
    good: str | None,
    histogram: str | None,
) -> dict[str, str | None]:
    """The counter selectors to write the rules with (from the file, else the options)."""
    from perfprim.cli._slofile import LatencyIndicator, split_selector

    if entry.selectors is not None:
        return {
            "total": entry.selectors.total,
            "errors": entry.selectors.errors,
            "good": entry.selectors.good,
        }
    indicator = entry.latency
    if indicator is None and histogram is not None:
        metric, matchers = split_selector(histogram)
        indicator = LatencyIndicator(metric.removesuffix("_bucket"), matchers, 1.0)
    if indicator is not None and le is not None:
        inner = indicator.matchers.strip().removeprefix("{").removesuffix("}").strip().rstrip(",")
        le_matcher = f'le=~"{le}"' if "|" in le else f'le="{le}"'
        bucket_matchers = "{" + (f"{inner}," if inner else "") + le_matcher + "}"
        return {
            "total": f"{indicator.metric}_count{indicator.matchers}",
            "good": f"{indicator.metric}_bucket{bucket_matchers}",
            "errors": None,
        }
    if total is None or (errors is None) == (good is None):
        msg = (
            f"{entry.name}: an OpenSLO file does not name the Prometheus series; pass --total "
            "with --errors or --good (counter selectors), or --histogram for a latency SLO"
        )
        raise click.UsageError(msg)
    return {"total": total, "errors": errors, "good": good}


@slo.command(
    epilog="""\b
Examples:
  perfprim slo rules slo.yaml -o rules.yaml
  perfprim slo rules slo.yaml --buckets metrics.prom
  perfprim slo rules openslo.yaml --total http_requests_total --errors http_errors_total

--buckets also takes a URL: --buckets http://127.0.0.1:8000/metrics
"""
)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--buckets",
    metavar="FILE|URL",
    help="A Prometheus exposition (file or http:// URL): latency thresholds are checked "
    "against its real bucket bounds and the rules match its exact le labels.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the rules here instead of stdout.",
)
@click.option("--total", help="OpenSLO input: counter selector of all events.")
@click.option("--errors", help="OpenSLO input: counter selector of bad events.")
@click.option("--good", help="OpenSLO input: counter selector of good events.")
@click.option("--histogram", help="OpenSLO latency input: the Prometheus histogram (seconds).")
@JSON_OPTION
def rules(
    *,
    file: str,
    buckets: str | None,
    output: str | None,
    total: str | None,
    errors: str | None,
    good: str | None,
    histogram: str | None,
    as_json: bool,
) -> None:
    """Prometheus recording and multiwindow burn-rate alert rules for every SLO of a file.

    A latency SLO counts requests within its threshold from the histogram's
    bucket at that bound. With --buckets the threshold must be one of the
    real bounds (exit 1 otherwise) and the rules use the exact le text the
    service exposes ("1" from Go clients, "1.0" from Python ones); without it
    the rules match both spellings.
    """
    from perfprim.cli._slofile import LatencyIndicator, split_selector
    from perfprim.exceptions import ConfigurationError

    loaded = _load(file)
    if loaded.problems:
        msg = (
            f"{file} is not a valid SLO file: {loaded.problems[0]} (run: perfprim slo check {file})"
        )
        raise GateFailed(msg)
    problems: list[str] = []
    cache: dict[str, Any] = {}
    texts: list[str] = []
    entries = []
    for entry in loaded.entries:
        if entry.latency is None and histogram is not None and hasattr(entry.slo, "threshold"):
            metric, matchers = split_selector(histogram)
            entry.latency = LatencyIndicator(metric.removesuffix("_bucket"), matchers, 1.0)
        le, checked = _check_latency(entry, buckets, cache, problems)
        if le is None and entry.latency is not None:
            continue  # the threshold is not a bound: reported below
        if le is not None and checked is False:
            note(
                f"{entry.name}: latency threshold not checked against real bucket bounds "
                f'(pass --buckets FILE|URL); the rules match le=~"{le}"'
            )
        selectors = _selectors_for(
            entry, le, total=total, errors=errors, good=good, histogram=histogram
        )
        try:
            text = entry.slo.prometheus_rules(
                service=entry.service, name=entry.name, labels=loaded.labels or None, **selectors
            )
        except ConfigurationError as exc:
            raise InputError(f"{entry.name}: {exc}") from exc
        texts.append(text if not texts else text.removeprefix("groups:\n"))
        entries.append(_entry_json(entry, le, checked))
    if problems:
        result = {"file": file, "rules": None, "slos": entries, "problems": problems}
        emit("slo rules", result, as_json=as_json, human=lambda out: None, ok=False)
        raise GateFailed(problems[0])
    document = "".join(texts)
    if output is not None:
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(document)
        except OSError as exc:
            raise InputError(f"cannot write {output!r}: {exc.strerror or exc}") from exc
    result = {"file": file, "rules": document, "output": output, "slos": entries, "problems": []}

    def human(out: Console) -> None:
        if output is None:
            click.echo(document, nl=False)
        else:
            note(f"wrote the rules of {len(entries)} SLO(s) to {output}")

    emit("slo rules", result, as_json=as_json, human=human)
