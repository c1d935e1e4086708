"""``run``: validate the options once, drive the load (one process or several), build the result."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO, TypeVar

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError
from perfprim.histogram import HistogramLogWriter
from perfprim.load._engine import OpenLoop
from perfprim.load._monitor import Monitor, Sample
from perfprim.load._progress import ProgressOption, progress_callback
from perfprim.load._result import LoadResult
from perfprim.load._schedule import Schedule
from perfprim.load._stages import Stage
from perfprim.load._targets import HttpTarget, Target, check_target, open_sender
from perfprim.load._thresholds import Threshold, parse_threshold

__all__ = ["RunOptions", "drive", "positive_int", "refuse_running_loop", "run", "run_event_loop"]

T = TypeVar("T")

MAX_PLANNED = 100_000_000
"""A run plans at most this many requests (a typo guard; 10 min at 2,000/s is 1.2e6)."""


def positive_int(value: object, name: str, hint: str) -> int:
    """Validate an int option >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{name} must be an int >= 1, got {value!r}; {hint}"
        raise ConfigurationError(msg)
    return value


class RunOptions:
    """The validated options of one run (shared by the in-process and worker paths)."""

    def __init__(
        self,
        *,
        max_in_flight: object,
        timeout: float | timedelta,
        late_after: float | timedelta,
        interval: float | timedelta,
        workers: object,
    ) -> None:
        self.max_in_flight = positive_int(
            max_in_flight, "max_in_flight", "it bounds the requests out at once, e.g. 1000"
        )
        self.timeout = to_seconds(timeout, name="timeout", example="10 seconds")
        self.late_after = to_seconds(late_after, name="late_after", example="0.01 = 10 ms")
        self.interval = to_seconds(interval, name="interval", example="1.0 second")
        if workers == "auto":
            workers = os.cpu_count() or 1
        self.workers = positive_int(workers, "workers", "or 'auto' for one per CPU")


def run(
    target: Target,
    *,
    stages: Sequence[Stage] | Stage,
    max_in_flight: int = 1000,
    thresholds: Sequence[str | Threshold] = (),
    workers: int | str = 1,
    timeout: float | timedelta = 10.0,
    late_after: float | timedelta = 0.01,
    interval: float | timedelta = 1.0,
    hlog: str | os.PathLike[str] | TextIO | None = None,
    progress: ProgressOption = None,
) -> LoadResult:
    """Drive an open-model load at ``target`` and measure coordinated-omission-free latency.

    Each request has a planned send time from the stages (wrk2's ``start +
    i / rate``, generalised to linear ramps) and its latency is measured from
    that plan, so a server stall shows up in the percentiles instead of
    slowing the load down. ``lateness`` records how late the driver itself
    sent each request; when it falls behind (more than 1% of sends later
    than ``late_after``, or ``max_in_flight`` reached) the result says so in
    :attr:`LoadResult.warnings`.

    Args:
        target: An ``"http://..."`` URL, an :class:`HttpTarget`, a coroutine
            function, or a function (run on a bounded thread pool); called
            with no arguments. A failure is an exception or HTTP status >= 400.
        stages: The load profile (see :class:`Stage` and
            :mod:`perfprim.load.profiles`).
        max_in_flight: Requests out at once, at most (HTTP connections, threads).
        thresholds: k6-style conditions, e.g. ``"p(95) < 200ms"``,
            ``"error_rate < 1%"``, ``"p(99) < 1s over 10s abort"``.
        workers: Processes sending the load, each taking an interleaved share
            of the plan (``"auto"``: one per CPU). More than one needs a URL
            or a module-level function.
        timeout: HTTP request timeout, and how long the run waits after the
            stages end; requests still in flight then are cancelled and count
            as errors. Bounds the run at ``sum(durations) + timeout``.
        late_after: A send later than this after its plan counts as late.
        interval: Seconds per interval: progress, windows and the ``.hlog``.
        hlog: Path or text stream for an HdrHistogram interval log (latency
            untagged, lateness tagged ``lateness``).
        progress: None (print on a terminal only), True, False, or a callable
            receiving a :class:`Progress` each interval.

    Returns:
        The :class:`LoadResult`.

    Raises:
        ConfigurationError: For invalid options (the message says what to
            pass), also when called from a running event loop.
        ThresholdError: For a threshold that does not parse.
        MissingDependencyError: For a URL target without httptools (the ``load`` extra).
    """
    options = RunOptions(
        max_in_flight=max_in_flight,
        timeout=timeout,
        late_after=late_after,
        interval=interval,
        workers=workers,
    )
    schedule = Schedule(stages if not isinstance(stages, Stage) else [stages])
    if schedule.planned > MAX_PLANNED:
        msg = (
            f"the stages plan {schedule.planned} requests, more than {MAX_PLANNED}: "
            "check the rates (requests per second) and durations (seconds)"
        )
        raise ConfigurationError(msg)
    if isinstance(thresholds, str):
        thresholds = [thresholds]
    parsed = [parse_threshold(t) for t in thresholds]
    checked = check_target(target, workers=options.workers)
    refuse_running_loop("run")
    callback, printer = progress_callback(progress)
    with _log_writer(hlog) as log:
        monitor = Monitor(
            parsed,
            schedule=schedule,
            interval=options.interval,
            on_progress=callback,
            log=log,
        )
        try:
            began = time.perf_counter()
            if options.workers == 1:
                run_event_loop(drive(checked, schedule, options, monitor.add))
            else:
                from perfprim.load._workers import drive_workers

                drive_workers(checked, schedule, options, monitor.add)
            elapsed = time.perf_counter() - began
        finally:
            if printer is not None:
                printer.close()
    duration = monitor.duration if monitor.duration > 0.0 else elapsed
    return LoadResult(
        latency=monitor.latency,
        lateness=monitor.lateness,
        planned=schedule.planned,
        sent=monitor.sent,
        completed=monitor.completed,
        errors=monitor.errors,
        late=monitor.late,
        waited=monitor.waited,
        duration=duration,
        planned_duration=schedule.duration,
        thresholds=monitor.verdicts(duration),
        aborted_by=monitor.aborted_by,
        error_kinds=dict(monitor.error_kinds),
        late_after=options.late_after,
        max_in_flight=options.max_in_flight,
        workers=options.workers,
    )


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run the driver's event loop: uvloop's where it is installed, else asyncio's.

    uvloop (libuv) roughly halves the loop's own cost per request, which is
    most of what a send costs once the HTTP client does no more than it must;
    it is in the ``load`` extra except on Windows, where asyncio's loop runs.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def refuse_running_loop(name: str) -> None:
    """Raise ConfigurationError when called from a running event loop (we start our own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    msg = (
        f"{name}() starts its own event loop and cannot be called from a running one; "
        f"call it from sync code or a thread: await asyncio.to_thread({name}, ...)"
    )
    raise ConfigurationError(msg)


async def drive(
    target: HttpTarget | Callable[[], object],
    schedule: Schedule,
    options: RunOptions,
    on_sample: Callable[[Sample], bool],
    *,
    ready: Callable[[], float] | None = None,
) -> None:
    """Drive one process's share of the schedule (the whole plan when there are no workers).

    ``ready`` is called once the client is open and returns the start time
    (a worker reports ready to its parent and waits for the common start);
    without it the run starts at once.
    """
    async with open_sender(
        target, connections=options.max_in_flight, timeout=options.timeout
    ) as sender:
        start = time.perf_counter() if ready is None else ready()
        loop = OpenLoop(
            schedule,
            sender,
            start=start,
            max_in_flight=options.max_in_flight,
            late_after=options.late_after,
            timeout=options.timeout,
            interval=options.interval,
            on_sample=on_sample,
        )
        await loop.run()


@contextlib.contextmanager
def _log_writer(
    hlog: str | os.PathLike[str] | TextIO | None,
) -> Iterator[HistogramLogWriter | None]:
    """Open the interval log (a path is opened and closed here; a stream is the caller's)."""
    if hlog is None:
        yield None
        return
    with contextlib.ExitStack() as stack:
        if isinstance(hlog, (str, os.PathLike)):
            out: TextIO = stack.enter_context(Path(hlog).open("w", encoding="ascii"))
        elif hasattr(hlog, "write"):
            out = hlog
        else:
            msg = f"hlog must be a path or a text stream, got {hlog!r}"
            raise ConfigurationError(msg)
        writer = HistogramLogWriter(out)
        writer.write_header()
        writer.write_comment("[perfprim.load: untagged = latency from planned start]")
        yield writer
