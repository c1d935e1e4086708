"""The chaos soak (issue 17, part 1): two real services under fixed-rate load while Redis fails.

Two services run at once, each with 2 gunicorn workers, on one private
redis-server reached through a :class:`~perfprim.testing.TcpProxy`:

- ``asgi``: Starlette on ``uvicorn_worker.UvicornWorker``, an ``AsyncTieredCache``;
- ``wsgi``: Flask on gunicorn's ``gthread`` workers, a ``TieredCache``;

both behind perfprim's ``MetricsMiddleware`` (see :mod:`.asgi_app`,
:mod:`.wsgi_app`). For each fault, perfprim's open-model load driver sends
``GET /items/any`` (a random item of 1,000, cache-aside over SQLite) at a
fixed rate to each service for the fault's budget, while:

- an injector thread waits ``LEAD_IN`` seconds, injects the fault and
  records when it is over;
- a probe thread asks each service ``/redis-ok`` (its worker's Redis tier
  answers, breaker included) every 0.1 s;
- a checker thread writes new versions of 10 watched items (``POST``: the
  database, then ``cache.delete``) and reads them back from new connections
  (either worker), counting *stale* reads: a version older than one whose
  write had already been answered.

Per fault and service: requests planned and answered, 5xx, other errors,
p50/p99/max while the fault lasts and after it (from the load's interval
histograms), seconds until every worker's tier answers again, stale reads
and their age. Threads, file descriptors and RSS of each worker are read
from ``/proc`` before and after the cycles of Redis faults; the worker kill
comes last.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfprim.histogram import HistogramLogReader, LatencyHistogram
from perfprim.load import Stage, run
from perfprim.testing import RedisServer, TcpProxy, free_port
from tests.reliability.soak.common import L1_TTL, create_database
from tests.web.servers import Server, environment, gunicorn

LEAD_IN = 1.0
AFTER = 3.0
WATCHED = 10
SERVICES = ("asgi", "wsgi")


@dataclass
class Service:
    """One running service: its server process and its state directory."""

    name: str
    server: Server
    state: Path
    db: Path

    @property
    def port(self) -> int:
        return self.server.port

    def workers(self) -> list[int]:
        """The pids of the gunicorn master's worker processes."""
        assert self.server.proc is not None
        master = self.server.proc.pid
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                    pids.append(int(entry))
        return sorted(pids)


def worker_figures(pid: int) -> dict[str, int]:
    """Threads, open file descriptors and resident memory (KiB) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "rss_kib": int(fields["VmRSS"].split()[0]),
    }


def call(port: int, path: str, *, method: str = "GET", timeout: float = 5.0) -> tuple[int, Any]:
    """One request on a new connection (so it may land on either worker)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body.startswith(b"{") else body
    finally:
        conn.close()


@contextlib.contextmanager
def running_services(
    tmp: Path, redis_url: str, extra_env: dict[str, str] | None = None
) -> Iterator[dict[str, Service]]:
    """Start both services (2 workers each) on ``redis_url``; stop them afterwards."""
    services: dict[str, Service] = {}
    try:
        for name in SERVICES:
            state = tmp / name
            state.mkdir(parents=True, exist_ok=True)
            db = state / "items.sqlite"
            create_database(db)
            if name == "asgi":
                argv = gunicorn("tests.reliability.soak.asgi_app:app", workers=2,
                                worker_class="uvicorn_worker.UvicornWorker")  # fmt: skip
            else:
                argv = [*gunicorn("tests.reliability.soak.wsgi_app:app", workers=2,
                                  worker_class="gthread"), "--threads", "8"]  # fmt: skip
            port = free_port()
            env = environment(
                SOAK_REDIS_URL=redis_url,
                SOAK_DB=str(db),
                SOAK_NAMESPACE=f"soak-{name}",
                SOAK_STATE=str(state),
                **(extra_env or {}),
            )
            server = Server(
                [a.replace("{port}", str(port)) for a in argv], port, env, state / "server.log"
            )
            services[name] = Service(name, server.start(), state, db)
        for service in services.values():  # both workers up
            deadline = time.monotonic() + 30
            while len(service.workers()) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        yield services
    finally:
        for service in services.values():
            service.server.stop()


# -- faults ------------------------------------------------------------------------------------


@dataclass
class Fault:
    """A fault: what it does (returns once it is over) and how long it is expected to last."""

    name: str
    inject: Callable[[], None]
    expected: float


def redis_faults(redis: RedisServer, proxy: TcpProxy) -> list[Fault]:
    """The Redis faults of one cycle."""

    def pause() -> None:
        redis.pause()
        time.sleep(2.0)
        redis.resume()

    def kill_restart() -> None:
        redis.kill()
        time.sleep(1.0)
        redis.restart()

    def flush() -> None:
        redis.command("FLUSHALL")

    def garbage() -> None:
        keys = redis.command_array("KEYS", "soak-*}")  # the values: namespace:generation:{body}
        for key in keys:
            if key is not None:
                name = key.decode()
                redis.command("SET", name, "\x00garbage\xff not an entry", "PX", "60000")

    def network() -> None:
        proxy.set_delay(0.3)
        time.sleep(2.0)
        proxy.blackhole()
        time.sleep(2.0)
        proxy.heal()

    return [
        Fault("Redis SIGSTOPped for 2 s", pause, 2.0),
        Fault("Redis killed, restarted on the same port (empty)", kill_restart, 1.2),
        Fault("Redis FLUSHALL", flush, 0.0),
        Fault("garbage bytes on the cache keys", garbage, 0.1),
        Fault("network: +300 ms for 2 s, then dropped for 2 s", network, 4.0),
    ]


def worker_kill_fault(services: dict[str, Service]) -> Fault:
    """SIGKILL, in each service, the worker serving a 5-second request."""

    def kill() -> None:
        threads = []
        for service in services.values():
            marker = service.state / "slow.pid"
            marker.unlink(missing_ok=True)

            def slow(port: int = service.port) -> None:
                with contextlib.suppress(OSError, http.client.HTTPException):
                    call(port, "/slow", timeout=10.0)

            thread = threading.Thread(target=slow, daemon=True)
            thread.start()
            threads.append(thread)
            deadline = time.monotonic() + 5
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(int(marker.read_text()), signal.SIGKILL)
        for thread in threads:
            thread.join(10)
        for service in services.values():  # gunicorn has replaced it
            deadline = time.monotonic() + 30
            while len(service.workers()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)

    return Fault("a worker SIGKILLed mid-request", kill, 0.5)


# -- observers ---------------------------------------------------------------------------------


@dataclass
class Observations:
    """What the probe and the checker saw during one phase."""

    probes: dict[str, list[tuple[float, int, bool]]] = field(default_factory=dict)
    stale: dict[str, list[tuple[float, int, int, int, float]]] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    check_errors: dict[str, int] = field(default_factory=dict)


def probe(service: Service, stop: threading.Event, out: list[tuple[float, int, bool]]) -> None:
    """Ask ``/redis-ok`` every 0.1 s: (time, worker pid, its tier answered)."""
    while not stop.wait(0.1):
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
            status, body = call(service.port, "/redis-ok", timeout=2.0)
            if status == 200 and isinstance(body, dict):
                out.append((time.time(), int(body["pid"]), bool(body["ok"])))


def check(service: Service, stop: threading.Event, obs: Observations, seed: int) -> None:
    """Write watched items now and then and read them back; record stale reads.

    A read is stale when it returns a version older than the newest one
    whose write was answered before the read was sent; its age is the time
    since the first write it missed was answered.
    """
    acked: dict[int, list[tuple[int, float]]] = {i: [] for i in range(WATCHED)}
    stale = obs.stale.setdefault(service.name, [])
    rng = random.Random(seed)
    n = 0
    while not stop.is_set():
        n += 1
        item = rng.randrange(WATCHED)
        try:
            if n % 5 == 0:
                status, body = call(service.port, f"/items/{item}", method="POST")
                if status == 200:
                    acked[item].append((int(body["v"]), time.time()))
            else:
                sent = time.time()
                newest = acked[item][-1][0] if acked[item] else 0
                status, body = call(service.port, f"/items/{item}")
                obs.checks[service.name] = obs.checks.get(service.name, 0) + 1
                if status == 200 and int(body["v"]) < newest:
                    missed = next(t for v, t in acked[item] if v > int(body["v"]))
                    stale.append((sent, item, int(body["v"]), newest, sent - missed))
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            obs.check_errors[service.name] = obs.check_errors.get(service.name, 0) + 1
        stop.wait(0.02)


# -- one phase ---------------------------------------------------------------------------------


@dataclass
class Window:
    """Latency of the requests completed in a window (from the load's interval histograms)."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class PhaseFigures:
    """What one service's callers saw around one fault."""

    fault: str
    service: str
    planned: int
    answered: int
    http_5xx: int
    other_errors: int
    during: Window
    after: Window
    redis_again_s: float
    stale_reads: int
    stale_max_age_s: float
    checks: int


def window(intervals: list[LatencyHistogram], start: float, end: float) -> Window:
    """Merge the intervals that ended inside ``[start, end]`` (wall clock)."""
    inside = [h for h in intervals if h.end_time is not None and start < h.end_time <= end]
    if not inside:
        return Window(0, 0.0, 0.0, 0.0)
    merged = inside[0].copy()  # the log's own layout: merging same-layout histograms is exact
    for h in inside[1:]:
        merged.merge(h)
    if not merged.count:
        return Window(0, 0.0, 0.0, 0.0)
    return Window(
        merged.count,
        merged.percentile(50) * 1e3,
        merged.percentile(99) * 1e3,
        merged.max * 1e3,
    )


def redis_again(probes: list[tuple[float, int, bool]], start: float, healed: float) -> float:
    """Seconds from the fault's end until every worker's tier answered for good."""
    failed = [t for t, _, ok in probes if not ok and t >= start]
    return max(0.0, max(failed) - healed) if failed else 0.0


def run_phase(
    fault: Fault, services: dict[str, Service], rate: float, after: float = AFTER
) -> list[PhaseFigures]:
    """Load both services through ``fault``; return the figures per service."""
    budget = LEAD_IN + fault.expected + after
    stop = threading.Event()
    obs = Observations()
    results: dict[str, Any] = {}
    logs: dict[str, io.StringIO] = {}
    timing: dict[str, float] = {}

    def drive(service: Service) -> None:
        logs[service.name] = io.StringIO()
        results[service.name] = run(
            f"http://127.0.0.1:{service.port}/items/any",
            stages=[Stage(duration=budget, rate=rate)],
            max_in_flight=200,
            timeout=5.0,
            interval=0.25,
            hlog=logs[service.name],
            progress=False,
        )

    def inject() -> None:
        time.sleep(LEAD_IN)
        timing["start"] = time.time()
        fault.inject()
        timing["healed"] = time.time()

    threads = [threading.Thread(target=drive, args=(s,), daemon=True) for s in services.values()]
    observers = []
    for i, service in enumerate(services.values()):
        out = obs.probes.setdefault(service.name, [])
        observers.append(threading.Thread(target=probe, args=(service, stop, out), daemon=True))
        observers.append(threading.Thread(target=check, args=(service, stop, obs, i), daemon=True))
    injector = threading.Thread(target=inject, daemon=True)
    for thread in [*observers, *threads, injector]:
        thread.start()
    injector.join(budget + 60)
    for thread in threads:
        thread.join(budget + 60)
    stop.set()
    for thread in observers:
        thread.join(15)
    start, healed = timing["start"], timing["healed"]
    end = time.time()
    figures = []
    for name, service in services.items():
        result = results[name]
        intervals = [h for h in HistogramLogReader(io.StringIO(logs[name].getvalue()))
                     if h.tag is None]  # fmt: skip
        kinds = dict(result.error_kinds)
        http_5xx = sum(n for kind, n in kinds.items() if kind.startswith("http 5"))
        stale = [s for s in obs.stale.get(name, []) if s[0] >= start]
        figures.append(
            PhaseFigures(
                fault=fault.name,
                service=service.name,
                planned=result.planned,
                answered=result.completed - result.errors,
                http_5xx=http_5xx,
                other_errors=result.errors - http_5xx,
                during=window(intervals, start, max(healed, start + 0.5) + 0.25),
                after=window(intervals, max(healed, start + 0.5) + 0.25, end),
                redis_again_s=redis_again(obs.probes.get(name, []), start, healed),
                stale_reads=len(stale),
                stale_max_age_s=max((s[4] for s in stale), default=0.0),
                checks=obs.checks.get(name, 0),
            )
        )
    return figures


# -- the soak ----------------------------------------------------------------------------------


@dataclass
class SoakReport:
    """All phases of a soak, and the workers' resources before and after the Redis fault cycles."""

    figures: list[PhaseFigures]
    resources_before: dict[str, dict[int, dict[str, int]]]
    resources_after: dict[str, dict[int, dict[str, int]]]
    cycles: int

    def table(self) -> str:
        """The fault table, in Markdown."""
        lines = [
            (
                "| fault | service | planned / answered | 5xx | other errors "
                "| p50 / p99 / max during | p50 / p99 / max after | Redis again after "
                "| stale reads (max age) |"
            ),
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for f in self.figures:
            lines.append(
                f"| {f.fault} | {f.service} | {f.planned} / {f.answered} | {f.http_5xx} | "
                f"{f.other_errors} | {_ms(f.during)} | {_ms(f.after)} | {f.redis_again_s:.2f} s | "
                f"{f.stale_reads} ({f.stale_max_age_s:.2f} s) |"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        """The fault table over all cycles: totals, and the worst of each figure."""
        groups: dict[tuple[str, str], list[PhaseFigures]] = {}
        for f in self.figures:
            groups.setdefault((f.fault, f.service), []).append(f)
        lines = [
            (
                "| fault | service | runs | planned / answered | 5xx | other errors "
                "| worst p99 / max during | worst p99 after | Redis again after (max) "
                "| stale reads (max age) |"
            ),
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for (fault, service), runs in groups.items():
            lines.append(
                f"| {fault} | {service} | {len(runs)} "
                f"| {sum(f.planned for f in runs)} / {sum(f.answered for f in runs)} "
                f"| {sum(f.http_5xx for f in runs)} | {sum(f.other_errors for f in runs)} "
                f"| {max(f.during.p99_ms for f in runs):.0f} / "
                f"{max(f.during.max_ms for f in runs):.0f} ms "
                f"| {max(f.after.p99_ms for f in runs):.0f} ms "
                f"| {max(f.redis_again_s for f in runs):.2f} s "
                f"| {sum(f.stale_reads for f in runs)} "
                f"({max(f.stale_max_age_s for f in runs):.2f} s) |"
            )
        return "\n".join(lines)

    def resources(self) -> str:
        """Threads / fds / RSS of each worker before and after the fault cycles."""
        lines = [
            f"| service | worker | threads before / after {self.cycles} cycles | fds | RSS (MiB) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, before in self.resources_before.items():
            after = self.resources_after.get(name, {})
            for pid, b in before.items():
                a = after.get(pid)
                if a is None:
                    lines.append(f"| {name} | {pid} | {b['threads']} / gone | | |")
                    continue
                lines.append(
                    f"| {name} | {pid} | {b['threads']} / {a['threads']} | {b['fds']} / {a['fds']} "
                    f"| {b['rss_kib'] / 1024:.1f} / {a['rss_kib'] / 1024:.1f} |"
                )
        return "\n".join(lines)


def _ms(w: Window) -> str:
    return f"{w.p50_ms:.1f} / {w.p99_ms:.0f} / {w.max_ms:.0f} ms"


def fill_thread_pools(services: dict[str, Service]) -> None:
    """Send bursts of 48 concurrent 0.3 s requests until no worker's thread count grows.

    gunicorn's gthread workers start their threads on demand: without this,
    a pool growing to its size would look like a thread leak. Which worker
    accepts a connection is up to the kernel, so one burst may miss one.
    """

    def slow(port: int) -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            call(port, "/slow?seconds=0.3", timeout=10.0)

    previous = None
    for _ in range(8):  # bounded
        threads = [threading.Thread(target=slow, args=(s.port,), daemon=True)
                   for s in services.values() for _ in range(48)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        counts = {(name, pid): figures["threads"]
                  for name, workers in snapshot(services).items()
                  for pid, figures in workers.items()}  # fmt: skip
        if counts == previous:
            return
        previous = counts


def snapshot(services: dict[str, Service]) -> dict[str, dict[int, dict[str, int]]]:
    """Resources of every worker of every service."""
    return {name: {pid: worker_figures(pid) for pid in s.workers()} for name, s in services.items()}


def run_soak(
    tmp: Path,
    *,
    rate: float,
    cycles: int,
    warmup: float = 3.0,
    service_env: dict[str, str] | None = None,
) -> SoakReport:
    """Start Redis, a proxy and both services; run ``cycles`` of the Redis faults, kill a worker.

    ``service_env``: extra environment of the services (the checker's negative
    control sets ``SOAK_L1_TTL`` and ``SOAK_BUS`` there).
    """
    with RedisServer() as redis, TcpProxy(redis.port) as proxy:
        url = f"redis://{proxy.host}:{proxy.port}/0"
        with running_services(tmp, url, service_env) as services:
            # Warm up: the caches fill, the buses subscribe, the workers import everything.
            run_phase(Fault("warm-up", lambda: None, 0.0), services, rate, after=warmup)
            fill_thread_pools(services)
            before = snapshot(services)
            figures: list[PhaseFigures] = []
            for _ in range(cycles):
                for fault in redis_faults(redis, proxy):
                    figures.extend(run_phase(fault, services, rate))
            after = snapshot(services)
            figures.extend(run_phase(worker_kill_fault(services), services, rate))
    return SoakReport(figures, before, after, cycles)


def check_database(db: Path) -> int:
    """The total of all versions written (a sanity figure)."""
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT SUM(v) FROM items").fetchone()[0])


__all__ = ["L1_TTL", "SoakReport", "run_soak"]
