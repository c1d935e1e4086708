"""run() end to end against real targets: coroutines, threads, a real HTTP server, workers."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import sys
import threading
import time
from pathlib import Path

import pytest

from perfprim.exceptions import ConfigurationError, ThresholdError
from perfprim.histogram import HistogramLogReader
from perfprim.load import HttpTarget, LoadResult, Progress, Stage, run
from perfprim.load._progress import TerminalProgress, progress_callback
from perfprim.load.testing import LoopbackServer


async def quick() -> None:
    """A 1 ms coroutine target."""
    await asyncio.sleep(0.001)


def test_coroutine_target_meets_its_thresholds() -> None:
    """A 1 ms coroutine at 100/s for 1.5 s: every planned request completes, thresholds pass."""
    result = run(
        quick,
        stages=[Stage(1.5, 100)],
        thresholds=["p(50) < 50ms", "error_rate < 1%", "count == 150", "rate > 50"],
        progress=False,
    )
    assert (150, 150, 150, 0) == (result.planned, result.sent, result.completed, result.errors)
    assert result.passed, result.report()
    assert ["p(50) < 50ms", "error_rate < 1%", "count == 150", "rate > 50"] == [
        t.expression for t in result.thresholds
    ]
    assert 150 == result.latency.count == result.lateness.count


def test_sync_target_runs_on_a_bounded_thread_pool() -> None:
    """A blocking function runs on worker threads, at most max_in_flight at once."""
    active = 0
    peak = 0
    lock = threading.Lock()

    def blocking() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1

    result = run(blocking, stages=[Stage(1, 200)], max_in_flight=4, progress=False)
    assert 200 == result.completed
    assert 4 == peak
    assert result.waited > 0
    assert result.driver_overloaded
    assert any("max_in_flight=4 was reached" in w for w in result.warnings)


def test_failures_and_http_statuses_are_errors(http_server: LoopbackServer) -> None:
    """HTTP 503 answers are errors named 'http 503'; the error-rate threshold fails."""
    result = run(
        http_server.url + "status/503",
        stages=[Stage(1, 30)],
        thresholds=["error_rate < 1%"],
        progress=False,
    )
    assert 30 == result.errors == result.completed
    assert {"http 503": 30} == dict(result.error_kinds)
    assert not result.passed
    assert 1.0 == result.error_rate


def test_http_post_with_body(http_server: LoopbackServer) -> None:
    """An HttpTarget sends its method, headers and body; the server answers 200."""
    target = HttpTarget(http_server.url, method="post", headers={"X-A": "1"}, body=b"x" * 100)
    result = run(target, stages=[Stage(1, 20)], progress=False)
    assert (20, 0) == (result.completed, result.errors)
    assert "POST" == target.method


def test_refused_connections_are_errors_not_crashes() -> None:
    """A dead port gives connection errors, counted by kind; run() returns normally."""
    result = run("http://127.0.0.1:9/", stages=[Stage(0.5, 10)], progress=False, timeout=2)
    assert 5 == result.errors == result.completed
    assert 1 == len(result.error_kinds)


def test_stalling_server_shows_in_p99() -> None:
    """Open model over real HTTP: a 0.5 s stall every 2 s puts p99 near 0.5 s, p50 stays low."""
    with LoopbackServer(stall_every=2.0, stall_for=0.5) as server:
        result = run(server.url, stages=[Stage(4, 100)], progress=False)
    assert 400 == result.completed
    # 25% of requests arrive during a stall and wait up to 0.5 s: for q > 0.75 the
    # latency is (q - 0.75) / 0.25 * 0.5 s, so p99 ~ 0.48 s and p90 ~ 0.3 s.
    assert 0.35 < result.latency.percentile(99.0)
    # From above: the server adds at most the 0.5 s stall; a runner busy enough to send
    # late adds its lateness too, as it should (latency counts from the plan). By the union
    # bound, p90(wait + lateness) <= p95(wait) + p95(lateness).
    assert 0.15 < result.latency.percentile(90.0) < 0.6 + result.lateness.percentile(95.0)
    assert 0.2 > result.latency.percentile(50.0)


def test_hlog_holds_every_interval(tmp_path: Path, http_server: LoopbackServer) -> None:
    """The .hlog has one latency and one lateness line per interval; counts add to the run."""
    path = tmp_path / "run.hlog"
    result = run(http_server.url, stages=[Stage(2, 50)], interval=0.5, hlog=path, progress=False)
    with path.open() as f:
        intervals = list(HistogramLogReader(f))
    latency = [h for h in intervals if h.tag is None]
    lateness = [h for h in intervals if h.tag == "lateness"]
    assert len(latency) == len(lateness) >= 4
    assert result.completed == sum(h.count for h in latency)
    assert result.sent == sum(h.count for h in lateness)


def test_hlog_to_a_stream() -> None:
    """hlog= also takes a text stream."""
    out = io.StringIO()
    run(quick, stages=[Stage(0.5, 20)], hlog=out, progress=False)
    assert out.getvalue().startswith("#[Histogram log format version 1.3]")


def test_progress_callback_is_called_each_interval() -> None:
    """progress=callable gets a Progress per interval (the CLI's hook)."""
    seen: list[Progress] = []
    run(quick, stages=[Stage(1.0, 40)], interval=0.25, progress=seen.append)
    assert len(seen) >= 4
    assert 40 == seen[-1].completed
    assert all(a.elapsed <= b.elapsed for a, b in itertools.pairwise(seen))


def test_progress_is_silent_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """progress=None prints nothing when standard error is not a TTY; True prints anyway."""
    run(quick, stages=[Stage(0.3, 10)], interval=0.1)
    assert "" == capsys.readouterr().err
    run(quick, stages=[Stage(0.3, 10)], interval=0.1, progress=True)
    err = capsys.readouterr().err
    assert "rate" in err
    assert err.endswith("\n")


def test_progress_auto_prints_on_a_terminal() -> None:
    """With a TTY stream, the automatic choice is the terminal printer."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    callback, printer = progress_callback(None, stream=Tty())
    assert isinstance(printer, TerminalProgress)
    assert callback is printer
    assert (None, None) == progress_callback(None, stream=io.StringIO())
    with pytest.raises(ConfigurationError, match="progress must be"):
        progress_callback("yes")  # type: ignore[arg-type]


def test_windowed_abort_stops_the_run_early() -> None:
    """'p(99) < 20ms over 0.5s abort' aborts a run whose target turns slow after 1 s."""
    began = time.perf_counter()

    async def degrading() -> None:
        await asyncio.sleep(0.001 if time.perf_counter() - began < 1.0 else 0.1)

    result = run(
        degrading,
        stages=[Stage(6, 50)],
        interval=0.25,
        thresholds=["p(99) < 20ms over 0.5s abort"],
        progress=False,
    )
    assert result.aborted_by is not None
    assert not result.passed
    assert result.sent < 200  # 6 s were planned (300 requests); it stopped at about 1.5 s
    assert result.unsent > 0
    assert not any("never sent" in w for w in result.warnings)


def test_workers_merge_equals_the_sum(http_server: LoopbackServer) -> None:
    """Two worker processes send the whole plan; merged counts equal the plan exactly."""
    result = run(http_server.url, stages=[Stage(1.5, 200)], workers=2, progress=False)
    assert 2 == result.workers
    assert (300, 300, 300, 0) == (result.planned, result.sent, result.completed, result.errors)
    assert 300 == result.latency.count == result.lateness.count


def test_result_report_and_dict() -> None:
    """report() names counts, percentiles and verdicts; to_dict() is JSON with HDR blobs."""
    result = run(quick, stages=[Stage(0.5, 20)], thresholds=["p(99) < 1s"], progress=False)
    text = result.report()
    assert "10 planned, 10 sent, 10 completed, 0 errors" in text
    assert "PASS  p(99) < 1s" in text
    assert text.endswith("PASSED")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["passed"] is True
    assert data["latency"]["hdr"].startswith("HISTF")
    assert 10 == data["latency"]["count"]
    assert isinstance(result, LoadResult)
    assert "LoadResult(planned=10" in repr(result)


@pytest.mark.parametrize(
    ("kwargs", "exc", "words"),
    [
        ({"target": 42}, ConfigurationError, "target must be"),
        ({"target": "ftp://x"}, ConfigurationError, "http:// or https://"),
        ({"max_in_flight": 0}, ConfigurationError, "max_in_flight must be"),
        ({"workers": 0}, ConfigurationError, "workers must be"),
        ({"timeout": -1}, ConfigurationError, "timeout must be"),
        ({"thresholds": ["p(95) < 200"]}, ThresholdError, "200ms or 0.2s"),
        ({"stages": [Stage(1e6, 1e6)]}, ConfigurationError, "plan .* requests"),
        ({"hlog": 42}, ConfigurationError, "hlog must be"),
        ({"workers": 2, "target": lambda: None}, ConfigurationError, "cannot be pickled"),
    ],
)
def test_bad_options_fail_fast(kwargs: dict[str, object], exc: type[Exception], words: str) -> None:
    """Wrong arguments raise a perfprim exception that says what to pass, before any load."""
    options: dict[str, object] = {"target": quick, "stages": [Stage(1, 1)], "progress": False}
    options.update(kwargs)
    with pytest.raises(exc, match=words):
        run(**options)  # type: ignore[arg-type]


async def test_run_refuses_a_running_event_loop() -> None:
    """run() owns its loop; from async code it says to use a thread."""
    with pytest.raises(ConfigurationError, match=r"asyncio\.to_thread"):
        run(quick, stages=[Stage(1, 1)], progress=False)


def test_import_perfprim_load_imports_no_http_client() -> None:
    """perfprim.load imports httptools only when a URL target runs, and uvloop only in run()."""
    import subprocess

    code = (
        "import perfprim.load, sys; "
        "print([m in sys.modules for m in ('httptools', 'uvloop', 'pyqwest', 'aiohttp')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "[False, False, False, False]" == out.stdout.strip()


def test_url_target_without_the_extra_names_the_install(
    monkeypatch: pytest.MonkeyPatch, http_server: LoopbackServer
) -> None:
    """Without httptools, a URL target raises MissingDependencyError naming perfprim[load]."""
    from perfprim.exceptions import MissingDependencyError

    monkeypatch.setitem(sys.modules, "httptools", None)
    with pytest.raises(MissingDependencyError, match=r"perfprim\[load\]"):
        run(http_server.url, stages=[Stage(0.2, 5)], progress=False)


def test_workers_survive_a_fresh_import_of_perfprim(
    monkeypatch: pytest.MonkeyPatch, http_server: LoopbackServer
) -> None:
    """Workers get plain data, so a run still spawns after perfprim was imported anew.

    (A benchmark of import time does that; pickling perfprim's own classes by
    reference then fails with "it's not the same object".)
    """
    import importlib

    for name in [m for m in sys.modules if m == "perfprim" or m.startswith("perfprim.")]:
        monkeypatch.delitem(sys.modules, name)
    fresh = importlib.import_module("perfprim.load")  # every perfprim class anew
    result = fresh.run(
        fresh.HttpTarget(http_server.url), stages=[fresh.Stage(0.5, 40)], workers=2, progress=False
    )
    assert (20, 0) == (result.completed, result.errors)
