"""Real servers in subprocesses on free loopback ports, and a small HTTP client.

Every wait is bounded; a server that does not come up fails the test with its
output.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from perfprim.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"


class Server:
    """A server process listening on ``127.0.0.1:port``."""

    def __init__(self, argv: Sequence[str], port: int, env: Mapping[str, str], log: Path) -> None:
        self.argv = list(argv)
        self.port = port
        self.env = dict(env)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Server:
        with self.log.open("wb") as handle:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=str(ROOT),
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not listen within {timeout} s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def environment(**extra: str) -> dict[str, str]:
    """The environment of a server process: this checkout on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


@contextlib.contextmanager
def serve(argv_for_port: Sequence[str], tmp: Path, **env: str) -> Iterator[Server]:
    """Start ``argv`` (``{port}`` replaced) and stop it afterwards."""
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv_for_port]
    server = Server(argv, port, environment(**env), tmp / f"server-{port}.log").start()
    try:
        yield server
    finally:
        server.stop()


def uvicorn(app: str) -> list[str]:
    """The command line of uvicorn serving ``app``."""
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "{port}",
            "--log-level", "warning", "--ws", "websockets"]  # fmt: skip


def gunicorn(app: str, *, workers: int, worker_class: str = "sync", config: str = "") -> list[str]:
    """The command line of gunicorn serving ``app``."""
    argv = [sys.executable, "-m", "gunicorn", app, "--bind", "127.0.0.1:{port}",
            "--workers", str(workers), "--worker-class", worker_class,
            "--log-level", "warning", "--graceful-timeout", "5"]  # fmt: skip
    if config:
        argv += ["--config", config]
    return argv


def request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a new connection; returns ``(status, headers, body)``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=dict(headers or {}))
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def scrape(port: int, path: str = "/metrics", *, openmetrics: bool = False) -> str:
    """GET /metrics as Prometheus text (or OpenMetrics)."""
    accept = "application/openmetrics-text; version=1.0.0" if openmetrics else "text/plain"
    status, _, body = request(port, path, headers={"Accept": accept})
    assert 200 == status, body[:500]
    return body.decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``(sample name, labels) -> value`` of a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0.0 when absent)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def total(text: str, name: str, **labels: str) -> float:
    """Sum of a sample over every series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples(text).items() if n == name and wanted <= ls)


def promtool_check(text: str) -> None:
    """``promtool check metrics`` accepts the exposition (it must be on PATH)."""
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, (result.stdout + result.stderr).decode()[-3000:]


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``predicate()`` until it returns a truthy value (bounded); return the last value."""
    deadline = time.monotonic() + timeout
    last = predicate()
    while not last and time.monotonic() < deadline:
        time.sleep(interval)
        last = predicate()
    return last
