"""What ``perfprim demo`` measured: the summary, the console tables, the Markdown report, the plots.

:func:`write_report` turns a :class:`DemoRun` (the raw results: the load
run and its interval log, the knee, the ``/metrics`` scrape, the cache's
counters) into one JSON-ready summary, writes ``report.md``,
``summary.json`` and the plots into the output directory, and returns the
summary; :func:`render_summary` prints it as tables.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfprim.cli._demo_service import PRODUCT_ROUTE, SLO_TARGET, SLO_THRESHOLD
from perfprim.cli._output import Table, json_ready
from perfprim.cli._params import format_duration, format_percent, format_seconds

if TYPE_CHECKING:
    from rich.console import Console

    from perfprim.cache import CacheStats
    from perfprim.cli._demo import DemoPlan
    from perfprim.histogram import LatencyHistogram
    from perfprim.load import KneeResult, LoadResult

__all__ = ["DemoRun", "render_summary", "write_report"]

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
SLO_WINDOW = 30 * 86400.0
COLD, STEADY = "cold start (ramp-up)", "steady"
BEFORE, STALLED, AFTER = "before the stall", "Redis stalled", "after the stall"
PHASES = (COLD, STEADY, BEFORE, STALLED, AFTER)


@dataclass(frozen=True)
class DemoRun:
    """The raw results of one demo run."""

    plan: DemoPlan
    cache_description: str
    redis: bool
    response_cache: bool
    load: LoadResult
    hlog: Path
    stalled_at: float | None
    resumed_at: float | None
    knee: KneeResult
    scrape: str
    stats: CacheStats
    queries: int
    seconds: float


@dataclass(frozen=True)
class Interval:
    """One interval of the load run's log: offset from the run's start, and its latencies."""

    start: float
    end: float
    phase: str
    latency: LatencyHistogram


def read_intervals(run: DemoRun) -> list[Interval]:
    """The load run's latency intervals, each labelled with its phase (cold, around the stall)."""
    from perfprim.histogram import HistogramLogReader

    with run.hlog.open(encoding="ascii") as handle:
        histograms = [h for h in HistogramLogReader(handle) if h.tag is None]
    if not histograms:
        return []
    origin = min(h.start_time or 0.0 for h in histograms)
    out = []
    for h in histograms:
        start, end = h.start_time or 0.0, h.end_time or 0.0
        if start - origin < run.plan.ramp:
            phase = COLD
        elif run.stalled_at is None or run.resumed_at is None:
            phase = STEADY
        elif end <= run.stalled_at:
            phase = BEFORE
        elif start < run.resumed_at:
            phase = STALLED
        else:
            phase = AFTER
        out.append(Interval(start - origin, end - origin, phase, h))
    return out


def _good(h: LatencyHistogram) -> int:
    return h.cumulative_counts([SLO_THRESHOLD])[0] if h.count else 0


def _latency_row(phase: str, h: LatencyHistogram) -> dict[str, Any]:
    values = h.percentiles(PERCENTILES) if h.count else dict.fromkeys(PERCENTILES, math.nan)
    good = _good(h)
    return {
        "phase": phase,
        "requests": h.count,
        "percentiles": [{"percentile": p, "seconds": values[p]} for p in PERCENTILES],
        "max_seconds": h.max if h.count else math.nan,
        "within_slo_ratio": good / h.count if h.count else math.nan,
    }


def _phases(intervals: list[Interval], whole: LatencyHistogram) -> list[dict[str, Any]]:
    rows = [_latency_row(phase, h) for phase, h in by_phase(intervals).items()]
    rows.append(_latency_row("whole run", whole))
    return rows


def by_phase(intervals: list[Interval]) -> dict[str, LatencyHistogram]:
    """The intervals' latencies merged per phase, in phase order (lossless HDR merges)."""
    out = {}
    for phase in PHASES:
        parts = [i.latency for i in intervals if i.phase == phase]
        if parts:
            merged = parts[0].copy()
            for part in parts[1:]:
                merged.merge(part)
            out[phase] = merged
    return out


def _route_samples(scrape: str) -> list[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.labels.get("http_route") == PRODUCT_ROUTE
        and sample.name.startswith("http_server_slo")
    ]


def _server_slo(scrape: str) -> dict[str, Any]:
    """The product route's SLO as the service's ``/metrics`` exposes it."""
    samples = _route_samples(scrape)

    def value(name: str) -> float | None:
        found = [v for n, _, v in samples if n == name]
        return found[0] if found else None

    burn = [
        {"window": labels.get("window", ""), "burn_rate": v}
        for n, labels, v in samples
        if n == "http_server_slo_burn_rate"
    ]
    firing = [
        labels.get("severity", "") + f" ({labels.get('long_window', '')}/"
        f"{labels.get('short_window', '')})"
        for n, labels, v in samples
        if n == "http_server_slo_alert_firing" and v > 0
    ]
    return {
        "events": value("http_server_slo_events_total"),
        "bad_events": value("http_server_slo_bad_events_total"),
        "sli": value("http_server_slo_sli_ratio"),
        "budget_remaining": value("http_server_slo_error_budget_remaining_ratio"),
        "burn_rates": burn,
        "firing": firing,
    }


def _client_slo(whole: LatencyHistogram, errors: int) -> dict[str, Any]:
    """The same objective judged on what the load driver saw (from the planned start)."""
    from perfprim.slo import SLO

    total = whole.count
    good = max(_good(whole) - errors, 0)
    slo = SLO(target=SLO_TARGET, window=SLO_WINDOW)
    return {
        "events": total,
        "bad_events": total - good,
        "sli": good / total if total else None,
        "budget_remaining": slo.budget_remaining(good, total) if total else None,
        "burn_rate": ((total - good) / total) / (1 - SLO_TARGET) if total else None,
    }


def _capacity(knee: KneeResult) -> dict[str, Any]:
    data = knee.to_dict()
    model = knee.model
    knee_n = model.knee_concurrency if model is not None else math.nan
    return {
        "steps": [
            {
                "concurrency": s["concurrency"],
                "throughput": s["throughput"],
                "p99_seconds": s["p99"],
                "errors": s["errors"],
            }
            for s in data["steps"]
        ],
        "model": data["model"],
        "r_squared": data["r_squared"],
        "fit_ok": data["fit_ok"],
        "peak_concurrency": knee.peak_concurrency,
        "peak_throughput": knee.peak_throughput,
        "knee_concurrency": knee_n,
        "knee_throughput": model.throughput(knee_n)
        if model is not None and math.isfinite(knee_n) and knee_n > 0
        else None,
        "verdict": knee.verdict,
    }


def _cache(run: DemoRun) -> dict[str, Any]:
    tiers = []
    for tier in run.stats.tiers:
        lookups = tier.hits + tier.misses
        tiers.append(
            {
                "name": tier.name,
                "hits": tier.hits,
                "misses": tier.misses,
                "hit_ratio": tier.hits / lookups if lookups else None,
                "errors": tier.errors,
                "circuit_state": tier.circuit_state,
            }
        )
    return {
        "description": run.cache_description,
        "redis": run.redis,
        "response_cache": run.response_cache,
        "tiers": tiers,
        "loads": run.stats.loads,
        "coalesced": run.stats.coalesced,
        "database_queries": run.queries,
    }


def _plots(run: DemoRun, intervals: list[Interval], output: Path) -> list[str]:
    from perfprim.plot import LatencyLimit, budget_burn, budget_series, latency_percentiles, save
    from perfprim.slo import SLO

    written = []
    runs: dict[str, LatencyHistogram] = by_phase(intervals)
    if not runs:
        runs["whole run"] = run.load.latency
    figure = latency_percentiles(
        runs,
        limits=[LatencyLimit(SLO_THRESHOLD, SLO_TARGET * 100)],
        title="Product page latency from the planned start (CO-free)",
    )
    save(figure, output / "latency.png")
    written.append("latency.png")
    series = budget_series(
        SLO(target=SLO_TARGET, window=SLO_WINDOW),
        [(i.end, _good(i.latency), i.latency.count) for i in intervals],
    )
    if series:
        figure = budget_burn(
            {"product page (load driver's view)": series},
            title="Error budget left if all 30 days went like the run so far (99% within 100ms)",
        )
        save(figure, output / "budget.png")
        written.append("budget.png")
    if run.knee.model is not None:
        from perfprim.plot import usl_fit

        points = [(s.concurrency, s.throughput) for s in run.knee.steps if s.throughput > 0]
        figure = usl_fit(
            run.knee.model, points, title="Stock page: throughput by concurrency (USL fit)"
        )
        save(figure, output / "usl.png")
        written.append("usl.png")
    return written


def write_report(run: DemoRun, output: Path) -> dict[str, Any]:
    """Write ``report.md``, ``summary.json`` and the plots; return the summary."""
    intervals = read_intervals(run)
    load = run.load
    stall = None
    if run.stalled_at is not None and run.resumed_at is not None and intervals:
        origin = min(i.latency.start_time or 0.0 for i in intervals)
        stall = {
            "start_seconds": run.stalled_at - origin,
            "duration_seconds": run.resumed_at - run.stalled_at,
        }
    plots = _plots(run, intervals, output)
    summary: dict[str, Any] = {
        "output": str(output),
        "seconds": run.seconds,
        "cache": _cache(run),
        "stall": stall,
        "load": {
            "rate": run.plan.rate,
            "planned": load.planned,
            "sent": load.sent,
            "completed": load.completed,
            "errors": load.errors,
            "throughput": load.throughput,
            "driver_overloaded": load.driver_overloaded,
            "warnings": list(load.warnings),
        },
        "latency": _phases(intervals, load.latency),
        "timeline": [
            {
                "start_seconds": i.start,
                "phase": i.phase,
                "requests": i.latency.count,
                "p50_seconds": i.latency.percentile(50.0) if i.latency.count else None,
                "p99_seconds": i.latency.percentile(99.0) if i.latency.count else None,
                "within_slo": _good(i.latency),
            }
            for i in intervals
        ],
        "slo": {
            "route": PRODUCT_ROUTE,
            "threshold_seconds": SLO_THRESHOLD,
            "target": SLO_TARGET,
            "window_seconds": SLO_WINDOW,
            "server": _server_slo(run.scrape),
            "client": _client_slo(load.latency, load.errors),
        },
        "capacity": _capacity(run.knee),
        "files": ["report.md", "summary.json", "load.hlog", *plots],
    }
    (output / "summary.json").write_text(
        json.dumps(json_ready(summary), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    (output / "report.md").write_text(markdown(summary), encoding="utf-8")
    return summary


def _s(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return format_seconds(value)


def _pct(value: float | None, digits: int = 4) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) < 1e-9:  # 1 - 1.0000000000000002: float noise, not a budget
        value = 0.0
    return format_percent(value, digits)


def _n(value: float | None, spec: str = ",.0f") -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return format(value, spec)


def markdown(summary: dict[str, Any]) -> str:
    """The report as Markdown (the same figures as the console, with the plots)."""
    cache, load, slo, cap = summary["cache"], summary["load"], summary["slo"], summary["capacity"]
    lines = [
        "# perfprim demo report",
        "",
        (
            f"A Starlette shop served by uvicorn, its product page behind perfprim's tiered cache "
            f"({cache['description']}), per-route latency and an SLO from "
            f"`perfprim.web.asgi.MetricsMiddleware`, loaded by `perfprim.load` at "
            f"{load['rate']:g} requests/s (open model) and then stepped in concurrency for a USL "
            f"fit. The whole demo took {summary['seconds']:.1f} s."
        ),
        "",
    ]
    if summary["stall"] is not None:
        stall = summary["stall"]
        lines += [
            (
                "Redis was stalled (SIGSTOP: it accepts connections and never answers) "
                f"{stall['start_seconds']:.1f} s into the run for "
                f"{stall['duration_seconds']:.1f} s."
            ),
            "",
        ]
    lines += [
        "## Cache",
        "",
        "| tier | hits | misses | hit ratio | errors | circuit |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for tier in cache["tiers"]:
        lines.append(
            f"| {tier['name']} | {tier['hits']:,} | {tier['misses']:,} | "
            f"{_pct(tier['hit_ratio'], 3)} | {tier['errors']} | {tier['circuit_state'] or '-'} |"
        )
    lines += [
        "",
        (
            f"{load['completed']:,} requests answered with {cache['loads']:,} loads "
            f"({cache['database_queries']:,} database queries in all, the uncached stock page's "
            f"step load included); {load['errors']} errors."
        ),
        "",
        "## Latency (from each request's planned start: coordinated-omission free)",
        "",
        "| phase | requests | p50 | p90 | p99 | p99.9 | max | within 100ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in summary["latency"]:
        p = [_s(x["seconds"]) for x in row["percentiles"]]
        lines.append(
            f"| {row['phase']} | {row['requests']:,} | {' | '.join(p)} | "
            f"{_s(row['max_seconds'])} | {_pct(row['within_slo_ratio'])} |"
        )
    lines += ["", "![latency percentiles](latency.png)", "", "Per interval:", ""]
    lines += ["| from | phase | requests | p50 | p99 |", "|--:|---|--:|--:|--:|"]
    lines += [
        f"| {t['start_seconds']:.1f} s | {t['phase']} | {t['requests']:,} | "
        f"{_s(t['p50_seconds'])} | {_s(t['p99_seconds'])} |"
        for t in summary["timeline"]
    ]
    server, client = slo["server"], slo["client"]
    lines += [
        "",
        f"## SLO: 99% of `{slo['route']}` requests within 100 ms, over 30 days",
        "",
        "| view | events | bad | SLI | budget remaining | burn rate |",
        "|---|--:|--:|--:|--:|--:|",
        f"| service (`/metrics`, server-side time) | {_n(server['events'])} | "
        f"{_n(server['bad_events'])} | {_pct(server['sli'])} | "
        f"{_pct(server['budget_remaining'])} | "
        + ", ".join(f"{b['window']}: {b['burn_rate']:.2f}" for b in server["burn_rates"][:2])
        + " |",
        (
            f"| load driver (from the planned start) | {_n(client['events'])} | "
            f"{_n(client['bad_events'])} | {_pct(client['sli'])} | "
            f"{_pct(client['budget_remaining'])} | {_n(client['burn_rate'], '.2f')} |"
        ),
        "",
        "Budget and burn rates extrapolate the demo's seconds to the SLO's 30 days: a burn "
        "rate of 1 spends the budget in exactly one window. Alerts firing now: "
        + (", ".join(server["firing"]) or "none")
        + ".",
        "",
        "![error budget](budget.png)",
        "",
        "## Capacity (USL fit of a step load on the uncached stock page)",
        "",
        "| concurrency | throughput/s | p99 | errors |",
        "|--:|--:|--:|--:|",
    ]
    lines += [
        f"| {s['concurrency']} | {s['throughput']:,.1f} | {_s(s['p99_seconds'])} | {s['errors']} |"
        for s in cap["steps"]
    ]
    lines += ["", capacity_answer(cap), "", cap["verdict"], ""]
    if "usl.png" in summary["files"]:
        lines += ["![USL fit](usl.png)", ""]
    if load["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in load["warnings"]] + [""]
    lines += [
        (
            "The load driver and the service share this process (and its GIL): the figures show "
            "what each perfprim module reports, not the service's real capacity."
        ),
        "",
    ]
    return "\n".join(lines)


def capacity_answer(cap: dict[str, Any]) -> str:
    """One sentence: the peak, and the knee to run below."""
    if cap["model"] is None:
        return (
            f"No USL fit; the best step measured {cap['peak_throughput']:,.1f} req/s at "
            f"concurrency {cap['peak_concurrency']:g}."
        )
    peak_n, peak_x = cap["peak_concurrency"], cap["peak_throughput"]
    knee_n, knee_x = cap["knee_concurrency"], cap["knee_throughput"]
    peak = (
        f"throughput approaches {peak_x:,.0f} req/s"
        if not math.isfinite(peak_n)
        else f"throughput peaks at {peak_x:,.0f} req/s near concurrency {peak_n:.1f}"
    )
    knee = (
        f"; the knee (best throughput per unit of latency) is at concurrency {knee_n:.1f}, "
        f"{knee_x:,.0f} req/s: run below it"
        if knee_x is not None and math.isfinite(knee_n)
        else ""
    )
    return (
        f"USL: {peak}{knee} (sigma {cap['model']['sigma']:.3g}, kappa {cap['model']['kappa']:.3g})."
    )


def render_summary(summary: dict[str, Any], out: Console) -> None:
    """Print the summary as tables on a rich console."""
    cache, load, slo, cap = summary["cache"], summary["load"], summary["slo"], summary["capacity"]
    out.print()
    table = Table(
        "== cache",
        ["tier", "hits", "misses", "hit ratio", "errors", "circuit"],
        left=["tier", "circuit"],
    )
    for tier in cache["tiers"]:
        table.add(
            tier["name"],
            f"{tier['hits']:,}",
            f"{tier['misses']:,}",
            _pct(tier["hit_ratio"], 3),
            tier["errors"],
            tier["circuit_state"] or "-",
        )
    table.render(out)
    out.print(
        f"  {load['completed']:,} requests, {cache['loads']:,} loads, {load['errors']} errors",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if summary["stall"] is not None:
        stall = summary["stall"]
        out.print(
            f"  Redis stalled at {stall['start_seconds']:.1f}s for "
            f"{stall['duration_seconds']:.1f}s; every request still answered",
            markup=False,
            highlight=False,
        )
    out.print()
    table = Table(
        "== latency from the planned start (coordinated-omission free)",
        ["phase", "requests", "p50", "p90", "p99", "p99.9", "max", "within 100ms"],
        left=["phase"],
    )
    for row in summary["latency"]:
        table.add(
            row["phase"],
            f"{row['requests']:,}",
            *[_s(x["seconds"]) for x in row["percentiles"]],
            _s(row["max_seconds"]),
            _pct(row["within_slo_ratio"]),
        )
    table.render(out)
    server, client = slo["server"], slo["client"]
    table = Table(
        f"== SLO: 99% of {slo['route']} within 100ms over 30 days",
        ["view", "events", "bad", "SLI", "budget left", "burn rate"],
        left=["view", "burn rate"],
    )
    table.add(
        "service /metrics",
        _n(server["events"]),
        _n(server["bad_events"]),
        _pct(server["sli"]),
        _pct(server["budget_remaining"]),
        ", ".join(f"{b['window']} {b['burn_rate']:.2f}" for b in server["burn_rates"][:2]) or "-",
    )
    table.add(
        "load driver",
        _n(client["events"]),
        _n(client["bad_events"]),
        _pct(client["sli"]),
        _pct(client["budget_remaining"]),
        _n(client["burn_rate"], ".2f"),
    )
    table.render(out)
    out.print(
        f"  alerts firing: {', '.join(server['firing']) or 'none'}", markup=False, highlight=False
    )
    out.print()
    table = Table(
        "== capacity: step load on the uncached stock page, USL fit",
        ["concurrency", "throughput/s", "p99", "errors"],
    )
    for s in cap["steps"]:
        table.add(s["concurrency"], f"{s['throughput']:,.1f}", _s(s["p99_seconds"]), s["errors"])
    table.render(out)
    out.print("  " + capacity_answer(cap), markup=False, highlight=False, soft_wrap=True)
    for warning in load["warnings"]:
        out.print(f"  warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    out.print()
    files = ", ".join(summary["files"])
    out.print(
        f"wrote {summary['output']}/: {files} (in {format_duration(summary['seconds'])})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
