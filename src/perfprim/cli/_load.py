"""``perfprim load``: drive an open-model load at a URL, gate on thresholds; find the knee.

``perfprim load URL ...`` is the group's default command (``run``), so the
common case reads as k6's ``k6 run``; ``perfprim load knee URL ...`` steps the
concurrency. Both are thin: the options become :func:`perfprim.load.run` and
:func:`perfprim.load.find_knee` arguments, and the output is their result
(``LoadResult.report()``/``to_dict()``, ``KneeResult.report()``/``to_dict()``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from perfprim.cli._output import GateFailed, InputError, emit, note
from perfprim.cli._params import DURATION, RATE, format_seconds

if TYPE_CHECKING:
    from rich.console import Console

    from perfprim.load import KneeResult, KneeStep, LoadResult

__all__ = ["load"]

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def tls_options(command: Any) -> Any:
    """``--cacert`` and ``--insecure``: how an https:// server's certificate is checked."""
    command = click.option(
        "--insecure",
        "-k",
        is_flag=True,
        help="https://: do not verify the server's certificate (a test server's own).",
    )(command)
    return click.option(
        "--cacert",
        type=click.Path(dir_okay=False, exists=True),
        default=None,
        help="https://: verify the server against this CA bundle (PEM).",
    )(command)


DEFAULT_COMMAND = "run"


class DefaultCommandGroup(click.Group):
    """A group that runs :data:`DEFAULT_COMMAND` when the first word is not one of its commands.

    ``perfprim load http://... --rate 100/s`` is ``perfprim load run http://...``.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Put the default command's name in front of arguments that name no command."""
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Show both forms in the usage line."""
        formatter.write_usage(ctx.command_path, "URL [OPTIONS]  |  knee URL [OPTIONS]")


@click.group(
    cls=DefaultCommandGroup,
    epilog="""\b
Examples:
  perfprim load http://127.0.0.1:8000/ --rate 200/s --duration 2s --threshold "p(95) < 200ms"
  perfprim load knee http://127.0.0.1:8000/ --concurrency 1,2,4,8,16,32 --duration 0.5s

A URL with no command word before it runs the `run` command.
""",
)
def load() -> None:
    """Load-test a URL: open-model rate with CO-free latency and thresholds, or the knee."""


def _headers(values: Sequence[str]) -> dict[str, str]:
    out = {}
    for value in values:
        name, colon, text = value.partition(":")
        if not colon or not name.strip():
            raise click.BadParameter(
                f"{value!r} is not a header: write 'Name: value'", param_hint="'--header'"
            )
        out[name.strip()] = text.strip()
    return out


def _target(
    url: str,
    method: str,
    headers: Sequence[str],
    body: str | None,
    *,
    cacert: str | None = None,
    insecure: bool = False,
) -> Any:
    from perfprim.exceptions import ConfigurationError
    from perfprim.load import HttpTarget

    if cacert is not None and insecure:
        raise click.UsageError("give --cacert or --insecure, not both")
    try:
        return HttpTarget(
            url,
            method=method,
            headers=_headers(headers),
            body=None if body is None else body.encode(),
            verify=False if insecure else (cacert or True),
        )
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="'URL'") from exc


def _unreachable(url: str, completed: int, errors: int, kinds: dict[str, int]) -> InputError | None:
    """An error when no request got an HTTP answer at all (nothing listens, wrong host)."""
    if completed == 0 or errors < completed or any(k.startswith("http ") for k in kinds):
        return None
    what = ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items()))
    return InputError(
        f"no request to {url} got an answer ({what}): check that the server is up and the URL"
    )


def _histogram_summary(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "count": summary["count"],
        "min_seconds": summary["min"],
        "mean_seconds": summary["mean"],
        "max_seconds": summary["max"],
        "percentiles": [
            {"percentile": float(p), "seconds": v} for p, v in summary["percentiles"].items()
        ],
        "hdr": summary["hdr"],
    }


def load_result(url: str, result: LoadResult) -> dict[str, Any]:
    """The ``--json`` result of ``perfprim load``: ``LoadResult.to_dict()`` in the CLI's units."""
    data = result.to_dict()
    data["latency"] = _histogram_summary(data["latency"])
    data["lateness"] = _histogram_summary(data["lateness"])
    data["duration_seconds"] = data.pop("duration")
    data["planned_duration_seconds"] = data.pop("planned_duration")
    data["late_after_seconds"] = data.pop("late_after")
    return {"url": url, **data}


@load.command(
    name=DEFAULT_COMMAND,
    epilog="""\b
Examples:
  perfprim load http://127.0.0.1:8000/ --rate 200/s --duration 2s --threshold "p(95) < 200ms"
  perfprim load http://127.0.0.1:8000/ --rate 50/s --duration 1s --threshold "p(99) < 1us"
  perfprim load http://127.0.0.1:8000/ --rate 100/s --duration 2s --ramp-up 1s --json

Thresholds use k6's grammar: p(N), avg, med, min, max (latency, with a unit),
error_rate (0.01 or 1%), rate (completed/s), count; 'over 5s' evaluates in
sliding windows, 'over 5s abort' stops the run at the first failing window.
Exit codes: 0 every threshold held, 1 one failed, 2 bad usage or no answer.
""",
)
@click.argument("url")
@click.option("--rate", required=True, type=RATE, help="Requests per second: 200/s, 6000/min.")
@click.option(
    "--duration", type=DURATION, default="10s", show_default=True, help="How long to hold the rate."
)
@click.option("--ramp-up", type=DURATION, default=None, help="Ramp from 0 to --rate first: 5s.")
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="EXPR",
    help='A pass/fail condition, repeatable: "p(95) < 200ms", "error_rate < 1%".',
)
@click.option("--method", default="GET", show_default=True, help="HTTP method.")
@click.option("--header", "headers", multiple=True, help="'Name: value', repeatable.")
@click.option("--body", default=None, help="Request body (text).")
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Requests out at once, at most (connections).",
)
@click.option(
    "--timeout", type=DURATION, default="10s", show_default=True, help="Per-request timeout."
)
@click.option(
    "--workers",
    default="1",
    show_default=True,
    help="Processes sending the load, or 'auto' (one per CPU).",
)
@click.option(
    "--late-after",
    type=DURATION,
    default="10ms",
    show_default=True,
    help="A send later than this after its plan counts as late (the driver's health).",
)
@click.option(
    "--interval",
    type=DURATION,
    default="1s",
    show_default=True,
    help="Progress, sliding windows and --hlog intervals.",
)
@click.option(
    "--hlog",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write an HdrHistogram interval log (perfprim hist reads it).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Live progress on stderr [default: when stderr is a terminal].",
)
@tls_options
@JSON_OPTION
def run(
    *,
    url: str,
    rate: float,
    duration: float,
    ramp_up: float | None,
    thresholds: tuple[str, ...],
    method: str,
    headers: tuple[str, ...],
    body: str | None,
    max_in_flight: int,
    timeout: float,
    workers: str,
    late_after: float,
    interval: float,
    hlog: str | None,
    progress: bool | None,
    cacert: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """Send requests at a planned rate (open model) and measure CO-free latency.

    Each request has a planned send time and its latency counts from that
    plan, so a server stall shows in the percentiles instead of slowing the
    load (coordinated omission). The driver's own lateness is reported apart.
    """
    from perfprim.exceptions import ConfigurationError, ThresholdError
    from perfprim.load import Stage, parse_threshold
    from perfprim.load import run as run_load

    target = _target(url, method, headers, body, cacert=cacert, insecure=insecure)
    for text in thresholds:
        try:
            parse_threshold(text)
        except ThresholdError as exc:
            raise click.BadParameter(str(exc), param_hint="'--threshold'") from exc
    worker_count: int | str = workers
    if workers != "auto":
        try:
            worker_count = int(workers)
        except ValueError:
            raise click.BadParameter(
                f"{workers!r} is not a number of processes: write 2 or auto",
                param_hint="'--workers'",
            ) from None
    stages = [Stage(0, 0), Stage(ramp_up, rate)] if ramp_up else []  # 0 -> rate, then hold
    stages.append(Stage(duration, rate))
    try:
        result = run_load(
            target,
            stages=stages,
            thresholds=thresholds,
            max_in_flight=max_in_flight,
            timeout=timeout,
            workers=worker_count,
            late_after=late_after,
            interval=interval,
            hlog=hlog,
            progress=progress,
        )
    except ConfigurationError as exc:
        raise InputError(str(exc)) from exc
    except OSError as exc:  # --hlog cannot be written
        raise InputError(f"cannot write {hlog!r}: {exc.strerror or exc}") from exc
    failure = _unreachable(url, result.completed, result.errors, dict(result.error_kinds))
    if failure is not None:
        raise failure

    def human(_: Console) -> None:
        click.echo(result.report())

    emit("load", load_result(url, result), as_json=as_json, human=human, ok=result.passed)
    if as_json:  # the human report has them already
        for warning in result.warnings:
            note(f"warning: {warning}")
    if not result.passed:
        failed = [t.describe() for t in result.thresholds if not t.passed]
        if result.aborted_by is not None:
            failed.insert(0, f"aborted by {result.aborted_by.expression}")
        raise GateFailed("thresholds failed: " + "; ".join(" ".join(f.split()) for f in failed))


def _levels(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        try:
            level = int(part)
        except ValueError:
            raise click.BadParameter(
                f"{part!r} is not a whole number of users: write e.g. 1,2,4,8,16,32",
                param_hint="'--concurrency'",
            ) from None
        if level < 1:
            raise click.BadParameter(
                f"{part!r}: each level must be at least 1", param_hint="'--concurrency'"
            )
        out.append(level)
    return out


def _knee_progress(enabled: bool | None) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None

    def show(step: KneeStep) -> None:
        p99 = step.latency.percentile(99.0) if step.latency.count else math.nan
        note(
            f"concurrency {step.concurrency:>4d}: {step.throughput:10.1f} req/s, "
            f"p99 {format_seconds(p99) if math.isfinite(p99) else '-'}, errors {step.errors}"
        )

    return show


def knee_result(url: str, result: KneeResult, plot: str | None) -> dict[str, Any]:
    """The ``--json`` result of ``perfprim load knee``: ``KneeResult.to_dict()`` in CLI units."""
    data = result.to_dict()
    for step in data["steps"]:
        step["p50_seconds"] = step.pop("p50")
        step["p99_seconds"] = step.pop("p99")
    return {"url": url, **data, "plot": plot}


@load.command(
    epilog="""\b
Examples:
  perfprim load knee http://127.0.0.1:8000/ --concurrency 1,2,4,8,16,32 --duration 0.5s
  perfprim load knee http://127.0.0.1:8000/ --concurrency 1,2,4,8,12,16 --duration 0.5s --json

Each level runs a closed loop of N users for --duration; the throughputs are
fitted with Gunther's Universal Scalability Law (at least 6 levels).
""",
)
@click.argument("url")
@click.option(
    "--concurrency",
    default="1,2,4,8,16,32,64",
    show_default=True,
    help="Users per step, comma-separated.",
)
@click.option(
    "--duration", type=DURATION, default="5s", show_default=True, help="Measured time per step."
)
@click.option("--warmup", type=DURATION, default=None, help="Unmeasured time before each step.")
@click.option(
    "--timeout", type=DURATION, default="10s", show_default=True, help="Per-request timeout."
)
@click.option(
    "--plot", "plot_path", type=click.Path(dir_okay=False), help="Also draw the fit (.png or .svg)."
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Each step on stderr as it is measured [default: when stderr is a terminal].",
)
@tls_options
@JSON_OPTION
def knee(
    *,
    url: str,
    concurrency: str,
    duration: float,
    warmup: float | None,
    timeout: float,
    plot_path: str | None,
    progress: bool | None,
    cacert: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """Step the concurrency in closed loops, fit the USL, report the peak and the knee."""
    from perfprim.exceptions import ConfigurationError
    from perfprim.load import find_knee

    target = _target(url, "GET", (), None, cacert=cacert, insecure=insecure)
    levels = _levels(concurrency)
    try:
        result = find_knee(
            target,
            concurrency=levels,
            duration=duration,
            warmup=warmup or 0.0,
            timeout=timeout,
            progress=_knee_progress(progress),
        )
    except ConfigurationError as exc:
        raise InputError(str(exc)) from exc
    completed = sum(s.completed for s in result.steps)
    errors = sum(s.errors for s in result.steps)
    if completed and errors == completed:
        raise InputError(
            f"no request to {url} succeeded ({errors} errors): check that the server is up "
            "and the URL"
        )
    if plot_path is not None:
        if result.model is None:
            note("no plot: the steps cannot support a USL fit (see the verdict)")
            plot_path = None
        else:
            from perfprim.plot import save, usl_fit

            points = [(s.concurrency, s.throughput) for s in result.steps if s.throughput > 0]
            try:
                save(usl_fit(result.model, points), plot_path)
            except OSError as exc:
                raise InputError(f"cannot write {plot_path!r}: {exc.strerror or exc}") from exc

    def human(_: Console) -> None:
        click.echo(result.report())
        if plot_path is not None:
            note(f"wrote {plot_path}")

    emit("load knee", knee_result(url, result, plot_path), as_json=as_json, human=human)
