"""``perfprim capacity``: USL fits, Erlang C staffing, growth projections."""

from __future__ import annotations

import csv
import math
from typing import TYPE_CHECKING, Any

import click

from perfprim.cli._output import InputError, Table, emit, note
from perfprim.cli._params import (
    DURATION,
    GROWTH,
    RATE,
    RATIO,
    Growth,
    format_percent,
    format_seconds,
)

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["capacity"]

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
_N_NAMES = {"concurrency", "n", "users", "threads", "workers", "clients", "vus", "nodes"}
_X_NAMES = {"throughput", "x", "rps", "rate", "qps", "tps", "requests_per_second"}


@click.group(epilog="Example:  perfprim capacity usl steps.csv --plot usl.png")
def capacity() -> None:
    """Capacity answers: USL fit of a step load, Erlang C staffing, growth runway."""


def _number(text: str, path: str, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        msg = f"{path}, line {line}: {column} {text!r} is not a number"
        raise InputError(msg) from None
    if not (value > 0 and math.isfinite(value)):
        msg = f"{path}, line {line}: {column} must be a positive number, got {text!r}"
        raise InputError(msg)
    return value


def read_steps(path: str) -> list[tuple[float, float]]:
    """``(concurrency, throughput)`` pairs from a CSV (a header row is optional).

    With a header, the columns are found by name (concurrency/users/threads/...,
    throughput/rps/qps/...); without one, the first two columns are used.
    """
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row and any(c.strip() for c in row)]
    except OSError as exc:
        msg = f"cannot read {path!r}: {exc.strerror or exc}"
        raise InputError(msg) from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        msg = f"{path!r} is not a CSV text file: {exc}"
        raise InputError(msg) from exc
    if not rows:
        msg = f"{path} is empty: expected rows of concurrency,throughput"
        raise InputError(msg)
    n_col, x_col, first = 0, 1, 0
    header = [c.strip().lower() for c in rows[0]]
    try:
        float(header[0])
    except ValueError:
        first = 1
        names = {name: i for i, name in enumerate(header)}
        n_col = next((names[n] for n in names if n in _N_NAMES), 0)
        x_col = next((names[x] for x in names if x in _X_NAMES), 1)
    points = []
    for line, row in enumerate(rows[first:], start=first + 1):
        if len(row) <= max(n_col, x_col):
            msg = f"{path}, line {line}: expected concurrency,throughput, got {','.join(row)!r}"
            raise InputError(msg)
        points.append(
            (
                _number(row[n_col].strip(), path, line, "concurrency"),
                _number(row[x_col].strip(), path, line, "throughput"),
            )
        )
    return points


def _list_of_numbers(text: str | None) -> list[float]:
    if not text:
        return []
    out = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise click.BadParameter(
                f"{part!r} is not a number: write e.g. 64,128", param_hint="'--predict'"
            ) from None
        if not (value > 0 and math.isfinite(value)):
            raise click.BadParameter(
                f"{part!r} must be a positive concurrency", param_hint="'--predict'"
            )
        out.append(value)
    return out


@capacity.command(
    epilog="""\b
Examples:
  perfprim capacity usl steps.csv
  perfprim capacity usl steps.csv --plot usl.png --predict 64,128 --json

steps.csv holds one measurement per line: concurrency,throughput (a header
row such as "concurrency,throughput" is optional).
"""
)
@click.argument("steps", type=click.Path(dir_okay=False))
@click.option(
    "--plot", "plot_path", type=click.Path(dir_okay=False), help="Also draw the fit (.png or .svg)."
)
@click.option("--predict", help="Concurrency levels to predict throughput at: 64,128.")
@JSON_OPTION
def usl(*, steps: str, plot_path: str | None, predict: str | None, as_json: bool) -> None:
    """Fit Gunther's Universal Scalability Law to a step load: peak, knee, predictions.

    X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)), fitted by bounded
    non-linear least squares. The peak is where throughput is highest; the
    knee is where throughput over response time peaks (Kleinrock's power):
    run below it.
    """
    from perfprim.capacity import fit_usl
    from perfprim.exceptions import ConfigurationError

    points = read_steps(steps)
    extra = _list_of_numbers(predict)
    try:
        model = fit_usl(points)
    except ConfigurationError as exc:
        raise InputError(f"{steps}: {exc}") from exc
    measured: dict[float, list[float]] = {}
    for n, x in points:
        measured.setdefault(n, []).append(x)
    levels = sorted({*measured, *extra})
    rows = [
        {
            "concurrency": n,
            "measured": (sum(measured[n]) / len(measured[n])) if n in measured else None,
            "fitted": model.throughput(n),
            "efficiency": model.efficiency(n),
            "latency": model.latency(n),
        }
        for n in levels
    ]
    peak, knee = model.peak_concurrency, model.knee_concurrency
    result: dict[str, Any] = {
        "file": steps,
        "points": len(points),
        "sigma": model.sigma,
        "kappa": model.kappa,
        "lambda": model.lambda_,
        "r_squared": model.r_squared,
        "converged": model.converged,
        "peak_concurrency": peak,
        "peak_throughput": model.peak_throughput,
        "knee_concurrency": knee,
        "knee_throughput": model.throughput(knee) if math.isfinite(knee) and knee > 0 else None,
        "limit_throughput": model.limit_throughput,
        "predictions": rows,
        "plot": plot_path,
    }
    if plot_path is not None:
        from perfprim.plot import save, usl_fit

        try:
            save(usl_fit(model, points), plot_path)
        except OSError as exc:
            raise InputError(f"cannot write {plot_path!r}: {exc.strerror or exc}") from exc

    def human(out: Console) -> None:
        fit = Table(f"USL fit of {steps} ({len(points)} points)", ["", "value"], left=[""])
        fit.add("sigma (contention)", f"{model.sigma:.4g}")
        fit.add("kappa (coherency)", f"{model.kappa:.4g}")
        fit.add("lambda (X at N=1)", f"{model.lambda_:.4g}")
        fit.add("R^2", f"{model.r_squared:.4f}")
        fit.add("peak", _at(peak, model.peak_throughput))
        fit.add("knee (run below)", _at(knee, result["knee_throughput"]))
        fit.render(out)
        table = Table(
            "Throughput by concurrency",
            ["N", "measured", "fitted", "efficiency", "N/X (response time)"],
        )
        for row in rows:
            table.add(
                f"{row['concurrency']:g}",
                "" if row["measured"] is None else f"{row['measured']:.4g}",
                f"{row['fitted']:.4g}",
                format_percent(float(row["efficiency"] or 0.0), 3),
                f"{row['latency']:.4g}",
            )
        table.render(out)
        if not model.converged:
            note("the fit did not converge: treat the figures with care")
        if plot_path is not None:
            note(f"wrote {plot_path}")

    emit("capacity usl", result, as_json=as_json, human=human)


def _at(n: float, x: float | None) -> str:
    if not math.isfinite(n) or x is None:
        return "none (throughput keeps rising)"
    return f"N = {n:.4g}, X = {x:.4g}"


@capacity.command(
    epilog="""\b
Examples:
  perfprim capacity erlang --rate 100/s --aht 180ms --target-wait 20ms --service-level 80%
  perfprim capacity erlang --rate 6000/min --aht 3m --target-wait 20s --service-level 90% --json
"""
)
@click.option("--rate", required=True, type=RATE, help="Arrivals: 100/s, 6000/min, 100 (per s).")
@click.option(
    "--aht", required=True, type=DURATION, help="Mean service (handling) time: 180ms, 3m."
)
@click.option(
    "--target-wait", required=True, type=DURATION, help="The wait to answer within: 20ms, 20s."
)
@click.option(
    "--service-level",
    required=True,
    type=RATIO,
    help="Share to answer within the target wait: 80%.",
)
@click.option("--max-occupancy", type=RATIO, default=None, help="Cap on server utilization: 85%.")
@JSON_OPTION
def erlang(
    *,
    rate: float,
    aht: float,
    target_wait: float,
    service_level: float,
    max_occupancy: float | None,
    as_json: bool,
) -> None:
    """Servers needed for a service level (Erlang C, an M/M/c queue), and the next staffings.

    The smallest number of servers (workers, connections, agents) such that
    --service-level of arrivals wait at most --target-wait.
    """
    from perfprim.capacity import ErlangC, erlang_c
    from perfprim.exceptions import PerfprimError

    if service_level >= 1.0:
        raise click.BadParameter(
            "must be below 100%: no M/M/c queue answers everyone within a wait",
            param_hint="'--service-level'",
        )
    try:
        needed = ErlangC.servers_needed(
            rate,
            aht,
            target_wait=target_wait,
            service_level=service_level,
            max_occupancy=max_occupancy,
        )
    except PerfprimError as exc:
        raise InputError(str(exc)) from exc
    load = rate * aht
    options = []
    for servers in range(max(math.floor(load) + 1, needed - 2), needed + 3):
        queue = erlang_c(servers=servers, arrival_rate=rate, service_time=aht)
        achieved = queue.service_level(target_wait)
        options.append(
            {
                "servers": servers,
                "probability_of_waiting": queue.probability_of_waiting,
                "service_level": achieved,
                "average_wait_seconds": queue.average_wait,
                "occupancy": queue.occupancy,
                "meets_target": servers >= needed,
            }
        )
    result = {
        "arrival_rate": rate,
        "service_time_seconds": aht,
        "offered_load": load,
        "target_wait_seconds": target_wait,
        "service_level_target": service_level,
        "max_occupancy": max_occupancy,
        "servers_needed": needed,
        "options": options,
    }

    def human(out: Console) -> None:
        table = Table(
            f"Erlang C: {rate:g}/s x {format_seconds(aht)} = {load:.4g} Erlangs; "
            f"{format_percent(service_level)} within {format_seconds(target_wait)} needs "
            f"{needed} servers",
            ["servers", "P(wait)", "within target", "mean wait", "occupancy", ""],
            left=[""],
        )
        for row in options:
            table.add(
                row["servers"],
                format_percent(row["probability_of_waiting"], 3),
                format_percent(row["service_level"], 4),
                format_seconds(row["average_wait_seconds"]),
                format_percent(row["occupancy"], 3),
                "<- needed" if row["servers"] == needed else "",
            )
        table.render(out)

    emit("capacity erlang", result, as_json=as_json, human=human)


@capacity.command(
    epilog="""\b
Examples:
  perfprim capacity project --now 1200 --growth 15%/month --capacity 5000
  perfprim capacity project --now 1200 --growth +150/month --capacity 5000 --json
"""
)
@click.option(
    "--now",
    "current",
    required=True,
    type=click.FloatRange(min=0, min_open=True),
    help="The load now (req/s, users, ...).",
)
@click.option(
    "--growth",
    required=True,
    type=GROWTH,
    help="15%/month (compound) or +150/month (linear, in load units).",
)
@click.option(
    "--capacity",
    "cap",
    required=True,
    type=click.FloatRange(min=0, min_open=True),
    help="The load the system can take (same unit as --now).",
)
@click.option(
    "--periods",
    type=click.IntRange(min=0, max=1000),
    default=None,
    help="Schedule length [default: until the capacity is reached].",
)
@JSON_OPTION
def project(
    *, current: float, growth: Growth, cap: float, periods: int | None, as_json: bool
) -> None:
    """When the load reaches the capacity, and the load and headroom per period until then."""
    from perfprim.capacity import project_growth
    from perfprim.exceptions import PerfprimError

    try:
        projection = project_growth(
            capacity=cap, current=current, rate=growth.rate, model=growth.model, periods=periods
        )
    except PerfprimError as exc:
        raise InputError(str(exc)) from exc
    when = projection.periods_until_exhausted
    result = {
        "model": growth.model,
        "current": current,
        "rate": growth.rate,
        "period": growth.period,
        "capacity": cap,
        "periods_until_exhausted": when,
        "schedule": [
            {"period": row.period, "load": row.load, "headroom": row.headroom}
            for row in projection.schedule
        ],
    }

    def human(out: Console) -> None:
        if math.isinf(when):
            headline = "the load never reaches the capacity"
        elif when == 0:
            headline = "the load is already at or over the capacity"
        else:
            headline = f"the capacity is reached after {when:.3g} {growth.period}s"
        table = Table(
            f"{headline} ({growth.model} growth)", [growth.period, "load", "headroom", "used"]
        )
        for row in projection.schedule:
            table.add(
                row.period,
                f"{row.load:,.4g}",
                f"{row.headroom:,.4g}",
                format_percent(row.load / cap, 3),
            )
        table.render(out)

    emit("capacity project", result, as_json=as_json, human=human)
