"""Multi-process story: real worker processes write encoded HDR histograms; the scrape merges."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from perfprim.exceptions import ConfigurationError
from perfprim.telemetry import (
    MultiProcessCollector,
    MultiProcessWriter,
    TelemetryRegistry,
    read_directory,
)
from tests.telemetry._mp_workers import worker


@pytest.mark.filterwarnings("ignore:This process.*multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_files_merge_into_one_histogram(tmp_path: Path, method: str) -> None:
    """Three real worker processes: counts, errors and sums add up in one merged series."""
    jobs = [(str(tmp_path), 40, 1), (str(tmp_path), 25, 0), (str(tmp_path), 10, 3)]
    context = multiprocessing.get_context(method)
    with context.Pool(3) as pool:
        pool.starmap(worker, jobs, chunksize=1)
    files = sorted(tmp_path.glob("perfprim-*.json"))
    assert 3 == len(files)  # one per writer, even when the pool reuses a process
    (view,) = read_directory(tmp_path)
    assert "job.run" == view.name
    (series,) = view.series
    assert ("default",) == series.labels
    assert 75 == series.histogram.count
    assert {f"{worker.__module__}.WorkerError": 4} == series.errors
    assert 0 <= series.total


def test_collector_output_after_workers(tmp_path: Path) -> None:
    """The collector's scrape shows the merged _count and errors_total of all workers."""
    from prometheus_client import CollectorRegistry, generate_latest

    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=worker, args=(str(tmp_path), 5, 1)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
        assert 0 == proc.exitcode
    assert 2 == len(list(tmp_path.glob("perfprim-*.json")))
    prom = CollectorRegistry()
    prom.register(MultiProcessCollector(tmp_path))  # type: ignore[arg-type]
    text = generate_latest(prom).decode()
    assert 'job_run_seconds_count{queue="default"} 10.0' in text
    assert "job_run_errors_total" in text


def test_flush_is_atomic_and_named_after_the_pid(tmp_path: Path) -> None:
    """A flush writes perfprim-<pid>-<random>.json via a rename; no temporary file is left."""
    registry = TelemetryRegistry()
    registry.timer("a").series().record_ns(1_000_000)
    writer = MultiProcessWriter(tmp_path, registry=registry)
    path = writer.flush()
    assert path.name.startswith(f"perfprim-{os.getpid()}-")
    assert writer.path == path
    assert [path] == list(tmp_path.iterdir())
    assert path == writer.flush()  # the same file each time in one process
    (view,) = read_directory(tmp_path)
    assert 1 == view.series[0].histogram.count
    assert pytest.approx(0.001) == view.series[0].total


def test_unreadable_files_are_skipped(tmp_path: Path) -> None:
    """A corrupt or foreign file is skipped, the others are read."""
    (tmp_path / "perfprim-1.json").write_text("{not json")
    (tmp_path / "perfprim-2.json").write_text('{"format": 99}')
    registry = TelemetryRegistry()
    registry.timer("b").series().record_ns(2_000_000)
    MultiProcessWriter(tmp_path, registry=registry).flush()
    assert ["b"] == [v.name for v in read_directory(tmp_path)]


def test_bad_arguments_fail_fast(tmp_path: Path) -> None:
    """A missing directory or a non-positive interval is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="not a directory"):
        MultiProcessWriter(tmp_path / "missing")
    with pytest.raises(ConfigurationError, match="interval"):
        MultiProcessWriter(tmp_path, interval=0)


def test_background_thread_writes_and_stops(tmp_path: Path) -> None:
    """start() runs the writer thread; stop() joins it and writes a last time."""
    registry = TelemetryRegistry()
    series = registry.timer("c").series()
    writer = MultiProcessWriter(tmp_path, registry=registry, interval=3600.0).start()
    series.record_ns(1_000)
    writer.stop()
    assert 1 == read_directory(tmp_path)[0].series[0].histogram.count
