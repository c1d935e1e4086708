"""More than one core: worker processes, each sending an interleaved share of the plan.

The parent starts ``W`` processes (``spawn``: no forked event loop or
threads), each builds ``Schedule(stages, worker=k, workers=W)`` (every
``W``-th request of the plan, so together they send exactly the plan),
opens its own client and reports ready. The parent then gives one start time
on the shared monotonic clock (``time.perf_counter`` is ``CLOCK_MONOTONIC``,
the same in every process on Linux), so the shares interleave as planned.
Every interval each worker sends its sample with the histograms encoded in
the HdrHistogram V2 format; the parent merges the samples of one interval
(counts add exactly: lossless) and hands the merged sample to the monitor.
An abort, or the deadline, stops every worker; a worker that does not stop
in time is terminated.
"""

from __future__ import annotations

import importlib
import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from perfprim.load._monitor import Sample
from perfprim.load._schedule import Schedule
from perfprim.load._stages import Stage
from perfprim.load._targets import HttpTarget

__all__ = ["drive_workers"]

_START_DELAY = 0.1  # seconds between "go" and the first planned send
_READY_TIMEOUT = 60.0  # a worker imports perfprim and its client before it is ready
_EXIT_GRACE = 10.0


def _worker_main(  # pragma: no cover - runs in the worker processes
    *,
    conn: Connection,
    target: tuple[str, Any],
    stages: list[tuple[float, float]],
    worker: int,
    workers: int,
    options: dict[str, Any],
) -> None:
    """Entry point of one worker process (arguments as plain data, see :func:`_plain`)."""
    from perfprim.load._run import RunOptions, drive, run_event_loop

    kind, value = target
    checked: HttpTarget | Callable[[], object] = HttpTarget(**value) if kind == "http" else value
    schedule = Schedule([Stage(d, r) for d, r in stages], worker=worker, workers=workers)
    run_options = RunOptions(**options)

    def ready() -> float:
        # The client is open: report ready, then block until the common start
        # time arrives (nothing else runs on this loop yet).
        conn.send(("ready", worker))
        if not conn.poll(_READY_TIMEOUT):
            raise SystemExit(1)
        kind, start_at = conn.recv()
        if kind != "start":
            raise SystemExit(1)
        return float(start_at)

    def on_sample(sample: Sample) -> bool:
        conn.send(("sample", sample.to_message()))
        return conn.poll() and conn.recv()[0] == "stop"

    try:
        run_event_loop(drive(checked, schedule, run_options, on_sample, ready=ready))
    finally:
        conn.send(("done", worker))
        conn.close()


def drive_workers(
    target: HttpTarget | Callable[[], object],
    schedule: Schedule,
    options: Any,
    on_sample: Callable[[Sample], bool],
) -> None:
    """Run ``options.workers`` processes and feed the monitor their merged samples.

    Args:
        target: The checked target (picklable).
        schedule: The whole plan (each worker builds its share).
        options: The run's :class:`RunOptions`.
        on_sample: The monitor's ``add``; True stops every worker.
    """
    context = multiprocessing.get_context("spawn")
    workers = options.workers
    # The worker's entry point as the module now in sys.modules holds it:
    # pickle checks identity, and a reloaded perfprim would fail it.
    entry = importlib.import_module(__name__)._worker_main
    plain_target, plain_options = _plain(target, options)
    pipes: list[Connection] = []
    processes = []
    for k in range(workers):
        parent, child = context.Pipe()
        process = context.Process(
            target=entry,
            kwargs={
                "conn": child,
                "target": plain_target,
                "stages": [(s.duration, s.rate) for s in schedule.stages],
                "worker": k,
                "workers": workers,
                "options": plain_options,
            },
            name=f"perfprim-load-{k}",
            daemon=True,
        )
        process.start()
        child.close()
        pipes.append(parent)
        processes.append(process)
    try:
        _ready(pipes)
        start_at = time.perf_counter() + _START_DELAY
        for pipe in pipes:
            pipe.send(("start", start_at))
        deadline = start_at + schedule.duration + options.timeout + _EXIT_GRACE
        _collect(pipes, on_sample, deadline)
    finally:
        for process in processes:
            process.join(timeout=max(0.0, 2.0))
            if process.is_alive():
                process.terminate()
                process.join(timeout=5.0)
        for pipe in pipes:
            pipe.close()


def _plain(
    target: HttpTarget | Callable[[], object], options: Any
) -> tuple[tuple[str, Any], dict[str, Any]]:
    """The target and options as plain data for the pipe to the workers.

    perfprim's own objects travel as builtins (rebuilt in the worker), so
    spawning works even if perfprim's modules were imported anew since (as a
    benchmark of import time does); a user's callable goes by reference.
    """
    if not callable(target):  # an HttpTarget (of whichever import of this package)
        plain: tuple[str, Any] = (
            "http",
            {
                "url": target.url,
                "method": target.method,
                "headers": dict(target.headers),
                "body": target.body,
                "verify": target.verify,
            },
        )
    else:
        plain = ("callable", target)
    return plain, {
        "max_in_flight": options.max_in_flight,
        "timeout": options.timeout,
        "late_after": options.late_after,
        "interval": options.interval,
        "workers": options.workers,
    }


def _ready(pipes: list[Connection]) -> None:
    waiting = set(range(len(pipes)))
    deadline = time.monotonic() + _READY_TIMEOUT
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            msg = f"{len(waiting)} load worker process(es) did not start within {_READY_TIMEOUT} s"
            raise RuntimeError(msg)
        for conn in wait([pipes[k] for k in waiting], timeout=remaining):
            assert isinstance(conn, Connection)
            try:
                kind, worker = conn.recv()
            except EOFError:
                msg = (
                    "a load worker process exited before it was ready. Worker processes are "
                    "spawned and import your main module again: put the code that calls run() "
                    "under `if __name__ == '__main__':`, and make the target importable"
                )
                raise RuntimeError(msg) from None
            if kind == "ready":
                waiting.discard(worker)


def _collect(pipes: list[Connection], on_sample: Callable[[Sample], bool], deadline: float) -> None:
    """Merge each interval's samples across workers, in interval order, until all are done."""
    live = {id(p): p for p in pipes}
    last_index = {id(p): -1 for p in pipes}  # highest interval each worker sent
    done: set[int] = set()
    pending: dict[int, Sample] = {}
    next_index = 0
    stopped = False
    while len(done) < len(pipes) and time.perf_counter() < deadline:
        ready = wait(list(live.values()), timeout=min(1.0, max(deadline - time.perf_counter(), 0)))
        for conn in ready:
            assert isinstance(conn, Connection)
            try:
                kind, payload = conn.recv()
            except EOFError:  # the worker died
                done.add(id(conn))
                live.pop(id(conn), None)
                continue
            if kind == "sample":
                sample = Sample.from_message(payload)
                last_index[id(conn)] = sample.index
                if sample.index in pending:
                    pending[sample.index].merge(sample)
                else:
                    pending[sample.index] = sample
            elif kind == "done":
                done.add(id(conn))
                live.pop(id(conn), None)
        # An interval is complete when every worker has sent it or has finished.
        while next_index in pending and all(
            last_index[key] >= next_index or key in done for key in last_index
        ):
            if on_sample(pending.pop(next_index)) and not stopped:
                stopped = True
                for conn in live.values():
                    conn.send(("stop", None))
            next_index += 1
    for index in sorted(pending):  # a worker's extra last interval
        on_sample(pending.pop(index))
