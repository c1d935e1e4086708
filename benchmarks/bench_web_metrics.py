"""What an HTTP metrics middleware adds per request: perfprim against the middleware users pick.

Two measurements in one run, every candidate on the same app:

1. In process: the app called directly with a prepared request (no
   network), batches of every candidate interleaved round by round (the
   load of a shared machine moves between rounds, not between candidates).
   Added cost = candidate - bare app, per request, median over rounds.
   ASGI (FastAPI): perfprim's ``MetricsMiddleware`` (with a route SLO),
   prometheus-fastapi-instrumentator, starlette-exporter and
   opentelemetry-instrumentation-asgi (SDK tracer and meter, no-op span
   exporter). WSGI: perfprim on Flask against prometheus-flask-exporter,
   perfprim's Django middleware against django-prometheus.
   Budget: perfprim's added cost <= 0.25x the cheapest anchor's, for ASGI
   and for WSGI (``budgets/web.toml``).

2. End to end: every candidate behind a real server (uvicorn for ASGI,
   gunicorn with one sync worker for WSGI), all started at once, then
   driven in turns at a fixed arrival rate by a small bounded asyncio
   client written here (keep-alive connections, requests sent at their
   planned times, latency from the planned time: no coordinated omission).
   perfprim's own load driver is being built elsewhere; wrk is a closed
   loop. Reported: the server's CPU time per request (from /proc) and the
   latency percentiles; no budget (the figures carry the network stack and
   the machine's noise).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import _web_apps
from perfprim.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _smoke(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_disable", False))


# -- in process -----------------------------------------------------------------

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": _web_apps.PATH,
    "raw_path": _web_apps.PATH.encode(),
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "state": {},
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


def _asgi_batch(app: Any, loop: asyncio.AbstractEventLoop, n: int) -> Callable[[], float]:
    async def batch() -> None:
        for _ in range(n):
            scope = dict(SCOPE)
            scope["state"] = {}
            await app(scope, _receive, _send)

    def run() -> float:
        start = time.perf_counter()
        loop.run_until_complete(batch())
        return (time.perf_counter() - start) / n

    return run


def _wsgi_batch(app: Any, n: int) -> Callable[[], float]:
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=_web_apps.PATH, base_url="http://127.0.0.1:8000").get_environ()

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return None

    def run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            result = app(dict(environ), start_response)
            for _chunk in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return (time.perf_counter() - start) / n

    return run


def _interleave(batches: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Per-request seconds of each candidate, per round; the order rotates each round."""
    for run in batches.values():  # warm up (route maps, lazily built series, JIT-free caches)
        run()
    names = list(batches)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(batches[name]())
    return times


def _added_us(times: dict[str, list[float]], base: str) -> dict[str, float]:
    """Median over rounds of (candidate - base), microseconds per request."""
    return {
        name: statistics.median(t - b for t, b in zip(series, times[base], strict=True)) * 1e6
        for name, series in times.items()
        if name != base
    }


def test_asgi_added_cost_in_process(
    record_metric: Callable[..., None], request: pytest.FixtureRequest
) -> None:
    """ASGI: perfprim's added cost per request against the three ASGI anchors."""
    smoke = _smoke(request.config)
    loop = asyncio.new_event_loop()
    try:
        n = 20 if smoke else 300
        batches = {name: _asgi_batch(_web_apps.asgi_app(name), loop, n) for name in _web_apps.ASGI}
        times = _interleave(batches, 2 if smoke else 25)
    finally:
        loop.close()
    base_us = statistics.median(times["none"]) * 1e6
    added = _added_us(times, "none")
    note = "FastAPI, GET /products/{id}, in process; median of interleaved rounds"
    record_metric("web.asgi.inprocess.bare_app_us", base_us, "us", note)
    for name, us in added.items():
        record_metric(f"web.asgi.inprocess.{name}.added_us", us, "us", note)
    anchors = [added[name] for name in _web_apps.ASGI if name not in ("none", "perfprim")]
    cheapest = min(anchors)
    assert smoke or cheapest > 0, added  # a smoke run is too short to measure
    record_metric(
        "web.asgi.inprocess.perfprim_over_cheapest_anchor",
        added["perfprim"] / cheapest,
        "x",
        "perfprim's added cost / the cheapest anchor's (budget 0.25)",
    )


def test_wsgi_added_cost_in_process(
    record_metric: Callable[..., None], request: pytest.FixtureRequest
) -> None:
    """WSGI: perfprim on Flask and Django against prometheus-flask-exporter, django-prometheus."""
    smoke = _smoke(request.config)
    n = 20 if smoke else 300
    names = (*_web_apps.FLASK, *_web_apps.DJANGO)
    batches = {name: _wsgi_batch(_web_apps.wsgi_app(name), n) for name in names}
    times = _interleave(batches, 2 if smoke else 25)
    note = "GET /products/<id>, in process; median of interleaved rounds"
    flask = _added_us({k: times[k] for k in _web_apps.FLASK}, "flask")
    django = _added_us({k: times[k] for k in _web_apps.DJANGO}, "django")
    record_metric(
        "web.wsgi.inprocess.bare_flask_us", statistics.median(times["flask"]) * 1e6, "us", note
    )
    record_metric(
        "web.wsgi.inprocess.bare_django_us", statistics.median(times["django"]) * 1e6, "us", note
    )
    for name, us in {**flask, **django}.items():
        record_metric(f"web.wsgi.inprocess.{name}.added_us", us, "us", note)
    ours = max(flask["perfprim-flask"], django["perfprim-django"])
    cheapest = min(flask["prometheus-flask-exporter"], django["django-prometheus"])
    assert smoke or cheapest > 0, {**flask, **django}
    record_metric(
        "web.wsgi.inprocess.perfprim_over_cheapest_anchor",
        ours / cheapest,
        "x",
        "perfprim's larger added cost (Flask, Django) / the cheapest anchor's (budget 0.25)",
    )
    record_metric(
        "web.wsgi.inprocess.perfprim_flask_over_flask_exporter",
        flask["perfprim-flask"] / flask["prometheus-flask-exporter"],
        "x",
        note,
    )
    record_metric(
        "web.wsgi.inprocess.perfprim_django_over_django_prometheus",
        django["perfprim-django"] / django["django-prometheus"],
        "x",
        note,
    )


# -- end to end -------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants, from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
    return total


@contextlib.contextmanager
def _server(
    kind: str,
    candidate: str,
    log: Path,
    *,
    factory: str = "benchmarks._web_apps:server_asgi_app",
    env_extra: dict[str, str] | None = None,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    if kind == "asgi":
        argv = [sys.executable, "-m", "uvicorn", factory,
                "--factory", "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", "--no-access-log"]  # fmt: skip
    else:
        argv = [sys.executable, "-m", "gunicorn", "benchmarks._web_apps:server_wsgi_app()",
                "--bind", f"127.0.0.1:{port}", "--workers", "1",
                "--log-level", "warning"]  # fmt: skip
    env = dict(os.environ)
    env["PERFPRIM_BENCH_CANDIDATE"] = candidate
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    env.update(env_extra or {})
    with log.open("wb") as handle:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


REQUEST = f"GET {_web_apps.PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


async def _fixed_rate(port: int, rate: float, duration: float, connections: int) -> list[float]:
    """Send ``rate * duration`` requests at their planned times; latency from the planned time."""
    total = int(rate * duration)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    next_index = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal next_index
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while next_index < total:
                index = next_index
                next_index += 1
                planned = start + index / rate
                delay = planned - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if connection is None:  # gunicorn's sync workers close after each response
                    connection = await asyncio.open_connection("127.0.0.1", port)
                reader, writer = connection
                writer.write(REQUEST)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                length = 0
                close = False
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                    elif line.startswith(b"connection:") and b"close" in line:
                        close = True
                await asyncio.wait_for(reader.readexactly(length), 10)
                latencies.append(loop.time() - planned)
                if close:
                    writer.close()
                    connection = None
        finally:
            if connection is not None:
                connection[1].close()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), duration + 60)
    return latencies


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_added_cost_end_to_end(
    kind: str,
    record_metric: Callable[..., None],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """Every candidate behind a real server, driven in turns at a fixed rate: CPU and latency."""
    smoke = _smoke(request.config)
    names = _web_apps.ASGI if kind == "asgi" else (*_web_apps.FLASK, *_web_apps.DJANGO)
    rate = 100.0 if smoke else 300.0
    duration = 0.3 if smoke else 2.0
    rounds = 1 if smoke else 3
    cpu: dict[str, list[float]] = {n: [] for n in names}
    lat: dict[str, list[float]] = {n: [] for n in names}
    with contextlib.ExitStack() as stack:
        servers = {n: stack.enter_context(_server(kind, n, tmp_path / f"{n}.log")) for n in names}
        for port, _ in servers.values():  # warm up each server
            asyncio.run(_fixed_rate(port, 50, 0.2, 2))
        for r in range(rounds):
            order = list(names[r % len(names) :] + names[: r % len(names)])
            for name in order:
                port, proc = servers[name]
                before = _cpu_seconds(proc.pid)
                latencies = asyncio.run(_fixed_rate(port, rate, duration, 8))
                cpu[name].append((_cpu_seconds(proc.pid) - before) / len(latencies))
                lat[name].extend(latencies)
    note = f"{rate:g} req/s, {duration:g} s x {rounds} turns, 8 keep-alive connections"
    bases = ["none"] if kind == "asgi" else ["flask", "django"]
    for name in names:
        base = bases[0] if kind == "asgi" or name in _web_apps.FLASK else bases[1]
        cpu_us = statistics.median(cpu[name]) * 1e6
        record_metric(f"web.{kind}.e2e.{name}.cpu_us_per_request", cpu_us, "us", note)
        if name != base:
            added = cpu_us - statistics.median(cpu[base]) * 1e6
            record_metric(f"web.{kind}.e2e.{name}.added_cpu_us", added, "us", note)
        ordered = sorted(lat[name])
        record_metric(f"web.{kind}.e2e.{name}.p50_ms", ordered[len(ordered) // 2] * 1e3, "ms", note)
        record_metric(
            f"web.{kind}.e2e.{name}.p99_ms", ordered[int(len(ordered) * 0.99)] * 1e3, "ms", note
        )
    assert all(lat[n] for n in names)
