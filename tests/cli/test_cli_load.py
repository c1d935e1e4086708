"""``perfprim load`` and ``perfprim load knee`` against real loopback HTTP servers.

Every run goes through the installed ``perfprim`` entry point in a
subprocess; the servers are real (perfprim.load.testing.LoopbackServer, and
a standard-library server answering 503 for the HTTP-error paths).
"""

from __future__ import annotations

import http.server
import os
import pty
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfprim.load.testing import LoopbackServer
from perfprim.testing import free_port
from tests.cli.conftest import SCRIPT, Run, run_cli


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    """A loopback server answering ``ok`` after 1 ms."""
    with LoopbackServer(delay=0.001) as running:
        yield running


@pytest.fixture(scope="module")
def failing_url() -> Iterator[str]:
    """A real HTTP server that answers every GET with 503."""

    class Unavailable(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


def load(*args: str, cwd: Path | None = None) -> Run:
    """``perfprim load ARGS``."""
    return run_cli("load", *args, cwd=cwd, timeout=120)


def test_a_passing_run_exits_0_with_the_counts_and_co_free_percentiles(
    server: LoopbackServer,
) -> None:
    """50 req/s for 1 s: 50 planned, sent and answered; every threshold held; exit 0."""
    result = load(
        server.url,
        "--rate", "50/s", "--duration", "1s",
        "--threshold", "p(95) < 500ms", "--threshold", "error_rate < 1%",
        "--json",
    )  # fmt: skip
    assert 0 == result.code, result.err
    document = result.json()
    assert ("load", True) == (document["command"], document["ok"])
    data = document["result"]
    assert (50, 50, 50, 0) == (data["planned"], data["sent"], data["completed"], data["errors"])
    assert [True, True] == [t["passed"] for t in data["thresholds"]]
    assert server.url == data["url"]
    p = {row["percentile"]: row["seconds"] for row in data["latency"]["percentiles"]}
    assert 0.001 <= p[50.0] <= p[99.0] < 0.5  # at least the server's 1 ms
    assert 50 == data["latency"]["count"]
    assert "Traceback" not in result.err  # at most a warning that the driver fell behind


def test_human_output_is_the_load_report(server: LoopbackServer) -> None:
    """Without --json stdout holds LoadResult.report(): counts, percentiles, verdicts."""
    result = load(server.url, "--rate", "20/s", "--duration", "0.5s", "--threshold", "count >= 5")
    assert 0 == result.code, result.err
    assert "requests: 10 planned, 10 sent, 10 completed, 0 errors" in result.out
    assert "latency from planned start" in result.out
    assert "PASSED" in result.out


def test_the_default_command_is_run(server: LoopbackServer) -> None:
    """``perfprim load URL`` and ``perfprim load run URL`` are one command."""
    short = load(server.url, "--rate", "10/s", "--duration", "0.3s", "--json")
    long = load("run", server.url, "--rate", "10/s", "--duration", "0.3s", "--json")
    assert (0, 0) == (short.code, long.code)
    assert short.json()["result"]["planned"] == long.json()["result"]["planned"] == 3


def test_a_failed_threshold_exits_1_with_the_result_and_one_line(server: LoopbackServer) -> None:
    """A latency no server meets: the result is printed (ok false), stderr says which failed."""
    result = load(
        server.url, "--rate", "20/s", "--duration", "0.5s", "--threshold", "p(50) < 1us", "--json"
    )
    assert 1 == result.code
    document = result.json()
    assert document["ok"] is False
    assert [False] == [t["passed"] for t in document["result"]["thresholds"]]
    assert 1 == len(result.err.splitlines())
    assert result.err.startswith("perfprim: error: thresholds failed: FAIL p(50) < 1us observed")


def test_http_errors_are_counted_and_gate_on_error_rate(failing_url: str) -> None:
    """A server answering 503: errors by kind; ``error_rate < 1%`` fails (exit 1)."""
    ungated = load(failing_url, "--rate", "20/s", "--duration", "0.5s", "--json")
    assert 0 == ungated.code, ungated.err  # no threshold: the server answered, nothing failed
    data = ungated.json()["result"]
    assert {"http 503": 10} == data["error_kinds"]
    gated = load(
        failing_url, "--rate", "20/s", "--duration", "0.5s", "--threshold", "error_rate < 1%"
    )
    assert 1 == gated.code
    assert "error_rate < 1%" in gated.err


def test_nothing_listening_is_exit_2_with_what_to_check() -> None:
    """No server at the URL: no request got an answer, so exit 2 and one line, not a result."""
    url = f"http://127.0.0.1:{free_port()}/"
    result = load(url, "--rate", "10/s", "--duration", "0.3s", "--json")
    assert 2 == result.code
    document = result.json()
    assert document["ok"] is False
    assert "check that the server is up" in document["error"]["message"]
    assert 1 == len(result.err.splitlines())


BAD_USAGE = [
    (["ftp://example.com/", "--rate", "10/s"], "needs an http:// or https:// URL"),
    (["{url}", "--rate", "10/s", "--threshold", "p(95) < 200"], "needs a time unit"),
    (["{url}", "--rate", "10/s", "--threshold", "fast please"], "cannot read threshold"),
    (["{url}", "--rate", "10/s", "--threshold", "p(95) < 1s abort"], "'abort' needs a window"),
    (["{url}", "--rate", "quick"], "is not a rate"),
    (["{url}", "--rate", "-5/s"], "must be a positive rate"),
    (["{url}"], "Missing option '--rate'"),
    (["{url}", "--rate", "10/s", "--duration", "10"], "has no unit"),
    (["{url}", "--rate", "10/s", "--workers", "many"], "is not a number of processes"),
    (["{url}", "--rate", "10/s", "--header", "no colon"], "is not a header"),
    (["{url}", "--rate", "10/s", "--max-in-flight", "0"], "--max-in-flight"),
    (
        ["{url}", "--rate", "10/s", "--duration", "1s", "--hlog", "no/such/dir/run.hlog"],
        "cannot write",
    ),
    (["knee", "{url}", "--concurrency", "1,two,4"], "is not a whole number of users"),
    (["knee", "{url}", "--concurrency", "1,0,4"], "must be at least 1"),
    (["knee", "mailto:x", "--concurrency", "1,2"], "needs an http:// or https:// URL"),
    (["http://user:pw@127.0.0.1/", "--rate", "10/s"], "carries credentials"),
    (["{url}", "--rate", "10/s", "--insecure", "--cacert", "{url_file}"], "not both"),
    (["{url}", "--rate", "10/s", "--cacert", "no/such/ca.pem"], "does not exist"),
]


@pytest.mark.parametrize(("args", "message"), BAD_USAGE, ids=[m for _, m in BAD_USAGE])
def test_bad_usage_is_exit_2_and_one_line(
    server: LoopbackServer, tmp_path: Path, args: list[str], message: str
) -> None:
    """Each bad input: exit 2, one line naming the problem, the JSON error envelope."""
    (tmp_path / "url.txt").write_text(server.url)
    args = [a.replace("{url}", server.url).replace("{url_file}", "url.txt") for a in args]
    result = load(*args, "--json", cwd=tmp_path)
    assert 2 == result.code, result.err
    assert 1 == len(result.err.splitlines()), result.err
    assert message in result.err
    assert "Traceback" not in result.err
    assert 2 == result.json()["error"]["exit_code"]


def test_a_written_hlog_is_read_back_by_hist_show(server: LoopbackServer, tmp_path: Path) -> None:
    """--hlog writes an interval log that ``perfprim hist show`` reads (latency, not lateness)."""
    result = load(
        server.url, "--rate", "40/s", "--duration", "1s", "--interval", "0.25s",
        "--hlog", "run.hlog", cwd=tmp_path,
    )  # fmt: skip
    assert 0 == result.code, result.err
    shown = run_cli("hist", "show", "run.hlog", "--json", cwd=tmp_path)
    assert 0 == shown.code, shown.err
    assert 40 == shown.json()["result"]["count"]


def test_live_progress_appears_on_a_terminal_only(server: LoopbackServer) -> None:
    """With stderr on a pseudo-terminal the run prints progress lines; in a pipe it prints none."""
    main, child = pty.openpty()
    try:
        done = subprocess.run(
            [str(SCRIPT), "load", server.url, "--rate", "20/s", "--duration", "1s",
             "--interval", "0.25s"],
            stdout=subprocess.PIPE, stderr=child, timeout=60, check=False,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        os.close(child)
        child = -1
        seen = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(main)
        if child >= 0:
            os.close(child)
    assert 0 == done.returncode
    assert b"rate" in seen
    assert b"in flight" in seen
    assert b"(plan 20)" in seen
    piped = load(server.url, "--rate", "20/s", "--duration", "0.5s")
    assert "" == piped.err


def test_knee_fits_the_usl_and_draws_it(tmp_path: Path) -> None:
    """A server serialised by one 5 ms lock peaks near 200 req/s whatever the concurrency."""
    with LoopbackServer(serial=0.005) as serial:
        result = run_cli(
            "load", "knee", serial.url, "--concurrency", "1,2,4,8,12,16",
            "--duration", "0.4s", "--plot", "usl.png", "--json",
            cwd=tmp_path, timeout=120,
        )  # fmt: skip
    assert 0 == result.code, result.err
    data = result.json()["result"]
    assert [1, 2, 4, 8, 12, 16] == [s["concurrency"] for s in data["steps"]]
    best = max(s["throughput"] for s in data["steps"])
    assert 100 < best < 1 / 0.005 * 1.3  # the lock allows at most 200/s
    assert data["model"] is not None
    assert "usl.png" == data["plot"]
    assert (tmp_path / "usl.png").read_bytes().startswith(b"\x89PNG")


def test_knee_human_output_and_too_few_levels(server: LoopbackServer) -> None:
    """Three levels cannot support a fit: the report says so, no plot, exit 0."""
    result = run_cli(
        "load", "knee", server.url, "--concurrency", "1,2,4", "--duration", "0.2s",
        "--plot", "never.png", timeout=60,
    )  # fmt: skip
    assert 0 == result.code, result.err
    assert "concurrency  throughput/s" in result.out
    assert "no fit" in result.out
    assert "no plot" in result.err


def test_knee_with_nothing_listening_is_exit_2() -> None:
    """Every step failed: exit 2 with one line."""
    url = f"http://127.0.0.1:{free_port()}/"
    result = run_cli("load", "knee", url, "--concurrency", "1,2", "--duration", "0.2s")
    assert 2 == result.code
    assert "check that the server is up" in result.err


def test_ramp_up_and_workers(server: LoopbackServer) -> None:
    """A 1 s ramp 0 -> 100/s then 1 s at 100/s plans 50 + 100 requests, sent by 2 processes."""
    result = load(
        server.url, "--rate", "100/s", "--ramp-up", "1s", "--duration", "1s",
        "--workers", "2", "--json",
    )  # fmt: skip
    assert 0 == result.code, result.err
    data = result.json()["result"]
    assert (150, 150, 2) == (data["planned"], data["completed"], data["workers"])
    assert 2.0 == data["planned_duration_seconds"]
