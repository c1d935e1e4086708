"""Worker entry points for the multi-process tests (importable by spawned children)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from perfprim.telemetry import MultiProcessWriter, TelemetryRegistry, timed


class WorkerError(Exception):
    """Raised by some calls in a worker."""


def worker(directory: str, calls: int, failures: int) -> int:
    """Run ``calls`` decorated calls (the first ``failures`` raise) and write the file."""
    registry = TelemetryRegistry()

    @timed(name="job.run", labels={"queue": "default"}, registry=registry)
    def run(i: int) -> int:
        if i < failures:
            raise WorkerError(i)
        return i

    with MultiProcessWriter(directory, registry=registry, interval=60.0):
        for i in range(calls):
            with contextlib.suppress(WorkerError):
                run(i)
    return len(list(Path(directory).glob("perfprim-*.json")))
