"""``perfprim hist``: show, merge, plot and compare HDR latency histograms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from perfprim.cli._output import GateFailed, InputError, Table, emit, note
from perfprim.cli._params import (
    PERCENTILES,
    RATIO,
    LatencyObjectiveType,
    format_percent,
    format_seconds,
)

if TYPE_CHECKING:
    from rich.console import Console

    from perfprim.cli._histio import HistogramFile
    from perfprim.cli._params import LatencyObjective

__all__ = ["hist"]

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
UNIT_OPTION = click.option(
    "--unit",
    type=click.Choice(["ns", "us", "ms", "s"]),
    default=None,
    help="Unit of the values in the files [default: us for .hlog and histoblobs, ms for .hgrm].",
)
DEFAULT_PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 99.999)
FILE = click.Path(dir_okay=False)


@click.group(epilog="Example:  perfprim hist diff base.hlog new.hlog")
def hist() -> None:
    """HDR latency histograms: .hlog logs, base64 V2 histoblobs, .hgrm tables."""


def _read(path: str, unit: str | None) -> HistogramFile:
    from perfprim.cli._histio import read_histogram

    return read_histogram(path, unit=unit)


def _summary(item: HistogramFile, percentiles: tuple[float, ...]) -> dict[str, Any]:
    h = item.histogram
    values = h.percentiles(percentiles)
    return {
        "file": item.path,
        "format": item.format,
        "intervals": item.intervals,
        "lossy": item.lossy,
        "count": h.count,
        "min_seconds": h.min,
        "mean_seconds": h.mean,
        "stdev_seconds": h.stdev,
        "max_seconds": h.max,
        "start_time": h.start_time,
        "end_time": h.end_time,
        "percentiles": [{"percentile": p, "seconds": values[p]} for p in percentiles],
    }


@hist.command(
    epilog="""\b
Examples:
  perfprim hist show run.hlog
  perfprim hist show run.hgrm --percentiles 50,99,99.9 --json
"""
)
@click.argument("file", type=FILE)
@click.option(
    "--percentiles",
    type=PERCENTILES,
    default="50,75,90,95,99,99.9,99.99,99.999",
    show_default=True,
    help="Percentiles to print.",
)
@UNIT_OPTION
@JSON_OPTION
def show(*, file: str, percentiles: tuple[float, ...], unit: str | None, as_json: bool) -> None:
    """Print a histogram's count, min, mean, max and percentile table.

    FILE is an HdrHistogram interval log (.hlog, every interval merged), a
    base64 V2 histoblob, or a percentile table (.hgrm).
    """
    item = _read(file, unit)
    result = _summary(item, percentiles)

    def human(out: Console) -> None:
        h = item.histogram
        kind = {
            "hlog": f"interval log, {item.intervals} interval(s)",
            "histoblob": "histoblob",
            "hgrm": "percentile table (values at its rows)",
        }[item.format]
        table = Table(f"{file} ({kind})", ["", "latency"], left=[""])
        table.add("count", f"{h.count:,}")
        table.add("min", format_seconds(h.min))
        table.add("mean", format_seconds(h.mean))
        table.add("stdev", format_seconds(h.stdev))
        for entry in result["percentiles"]:
            table.add(f"p{entry['percentile']:g}", format_seconds(entry["seconds"]))
        table.add("max", format_seconds(h.max))
        table.render(out)

    emit("hist show", result, as_json=as_json, human=human)


@hist.command(
    epilog="""\b
Examples:
  perfprim hist merge a.hlog b.hlog -o all.hlog
  perfprim hist merge worker-*.txt -o merged.txt
"""
)
@click.argument("files", nargs=-1, required=True, type=FILE)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The output: .hlog (one interval), .hgrm (table), else a histoblob.",
)
@UNIT_OPTION
@JSON_OPTION
def merge(*, files: tuple[str, ...], output: str, unit: str | None, as_json: bool) -> None:
    """Merge histograms losslessly (counts added exactly) into one file.

    The inputs must share range, precision and unit (as runs of one tool do):
    merging others would move values between buckets, so it is refused.
    """
    from perfprim.cli._histio import merge_files, write_histogram

    items = [_read(path, unit) for path in files]
    merged = merge_files(items)
    kind = write_histogram(merged, output, unit=unit or "us")
    result = {
        "inputs": [{"file": i.path, "format": i.format, "count": i.histogram.count} for i in items],
        "output": output,
        "format": kind,
        "count": merged.count,
        "max_seconds": merged.max,
    }

    def human(out: Console) -> None:
        note(f"merged {len(items)} histogram(s), {merged.count:,} values, into {output} ({kind})")

    emit("hist merge", result, as_json=as_json, human=human)


@hist.command(
    epilog="""\b
Examples:
  perfprim hist diff base.hlog new.hlog
  perfprim hist diff base.hlog new.hlog --tolerance 25% --percentiles 50,99,99.9 --json
"""
)
@click.argument("base", type=FILE)
@click.argument("new", type=FILE)
@click.option(
    "--percentiles",
    type=PERCENTILES,
    default="50,90,99,99.9",
    show_default=True,
    help="Percentiles to compare, each below 100.",
)
@click.option(
    "--confidence",
    type=RATIO,
    default="95%",
    show_default=True,
    help="Family-wise confidence over all the percentiles compared.",
)
@click.option(
    "--tolerance",
    type=click.STRING,
    default="0%",
    show_default=True,
    help="A relative change below which a move is not reported (5%).",
)
@UNIT_OPTION
@JSON_OPTION
def diff(
    *,
    base: str,
    new: str,
    percentiles: tuple[float, ...],
    confidence: float,
    tolerance: str,
    unit: str | None,
    as_json: bool,
) -> None:
    """Which percentiles moved from BASE to NEW, with confidence intervals; exit 1 on a regression.

    Each percentile's change gets a distribution-free interval (binomial
    order statistics, Le Boudec 2010 section 2.2.1), Bonferroni-corrected so
    that all of them hold together at --confidence. A percentile regressed
    when the whole interval lies above +tolerance. The values are assumed
    independent; see docs/cli.md for what that means for load tests.
    """
    from perfprim.cli._compare import compare

    if confidence >= 1.0:
        raise click.BadParameter("must be below 100%", param_hint="'--confidence'")
    if any(p >= 100.0 for p in percentiles):
        raise click.BadParameter(
            "p100 (the max) has no interval: compare percentiles below 100",
            param_hint="'--percentiles'",
        )
    tolerance_ratio = _tolerance(tolerance)
    base_item, new_item = _read(base, unit), _read(new, unit)
    for item in (base_item, new_item):
        if item.histogram.count == 0:
            raise InputError(f"{item.path} holds no values: nothing to compare")
    changes = compare(
        base_item.histogram,
        new_item.histogram,
        percentiles,
        confidence=confidence,
        tolerance=tolerance_ratio,
    )
    regressed = [c for c in changes if c.verdict == "regressed"]
    ok = not regressed
    result = {
        "base": {"file": base, "count": base_item.histogram.count, "format": base_item.format},
        "new": {"file": new, "count": new_item.histogram.count, "format": new_item.format},
        "confidence": confidence,
        "tolerance": tolerance_ratio,
        "method": "binomial order statistics, Bonferroni over percentiles",
        "regressed": ok is False,
        "percentiles": [
            {
                "percentile": c.percentile,
                "base_seconds": c.base,
                "new_seconds": c.new,
                "change": c.change,
                "change_low_seconds": c.low,
                "change_high_seconds": c.high,
                "verdict": c.verdict,
            }
            for c in changes
        ],
    }

    def human(out: Console) -> None:
        table = Table(
            f"{base} ({base_item.histogram.count:,}) -> {new} ({new_item.histogram.count:,}), "
            f"{format_percent(confidence)} confidence",
            ["percentile", "base", "new", "change", "interval of new - base", "verdict"],
            left=["verdict"],
        )
        for c in changes:
            table.add(
                f"p{c.percentile:g}",
                format_seconds(c.base),
                format_seconds(c.new),
                f"{c.change:+.1%}" if c.change != float("inf") else "+inf",
                f"[{_signed(c.low)}, {_signed(c.high)}]",
                c.verdict,
            )
        table.render(out)

    emit("hist diff", result, as_json=as_json, human=human, ok=ok)
    if regressed:
        names = ", ".join(f"p{c.percentile:g} {c.change:+.1%}" for c in regressed)
        raise GateFailed(f"{new} regressed against {base}: {names}")


def _signed(seconds: float) -> str:
    if seconds == float("inf"):
        return "+inf"
    if seconds == float("-inf"):
        return "-inf"
    sign = "-" if seconds < 0 else "+"
    return sign + format_seconds(abs(seconds))


def _tolerance(text: str) -> float:
    from perfprim.cli._params import parse_ratio

    if text.strip() in {"0", "0%"}:
        return 0.0
    try:
        return parse_ratio(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--tolerance'") from exc


@hist.command(
    epilog="""\b
Examples:
  perfprim hist plot base.hlog new.hlog -o latency.png --slo 200ms@99.9
  perfprim hist plot run.hgrm -o latency.svg --slo 50ms@90 --slo 200ms@99.9
"""
)
@click.argument("files", nargs=-1, required=True, type=FILE)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The image: .png (default) or .svg.",
)
@click.option(
    "--slo",
    "slos",
    multiple=True,
    type=LatencyObjectiveType(),
    help="A latency objective to draw, LATENCY@PERCENTILE (repeatable).",
)
@click.option("--title", default="Latency by percentile", show_default=True)
@UNIT_OPTION
@JSON_OPTION
def plot(
    *,
    files: tuple[str, ...],
    output: str,
    slos: tuple[LatencyObjective, ...],
    title: str,
    unit: str | None,
    as_json: bool,
) -> None:
    """Plot the percentile distribution of one or more runs, HdrHistogram style.

    The x axis is 1/(1-p) on a log scale, labelled 90%, 99%, 99.9%, ...;
    each run is one line; each --slo is drawn as a limit that the lines
    must stay under up to its percentile.
    """
    from perfprim.plot import LatencyLimit, latency_percentiles, save

    items = [_read(path, unit) for path in files]
    limits = [LatencyLimit(seconds=s.seconds, percentile=s.percentile) for s in slos]
    runs = [(item.path, item.histogram) for item in items]
    figure = latency_percentiles(runs, limits=limits, title=title)
    try:
        kind = save(figure, output)
    except OSError as exc:
        raise InputError(f"cannot write {output!r}: {exc.strerror or exc}") from exc
    breaches: list[dict[str, Any]] = [
        {"file": item.path, "slo": str(s), "seconds": item.histogram.percentile(s.percentile)}
        for item in items
        for s in slos
        if item.histogram.percentile(s.percentile) > s.seconds
    ]
    result = {
        "output": output,
        "format": kind,
        "runs": [i.path for i in items],
        "slos": [{"seconds": s.seconds, "percentile": s.percentile} for s in slos],
        "breaches": breaches,
    }

    def human(out: Console) -> None:
        note(f"wrote {output} ({kind}, {len(items)} run(s))")
        for breach in breaches:
            note(f"{breach['file']} misses {breach['slo']}: {format_seconds(breach['seconds'])}")

    emit("hist plot", result, as_json=as_json, human=human)
