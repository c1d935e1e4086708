"""``perfprim demo``: the library's main job in one command, on a fresh machine, in under a minute.

It starts the shop of :mod:`perfprim.cli._demo_service` in process (uvicorn;
HTTP response cache and tiered cache, with Redis when there is one; metrics
middleware with a route SLO), drives it with :func:`perfprim.load.run` at a planned rate while Redis
is stalled once (SIGSTOP), steps the concurrency with
:func:`perfprim.load.find_knee`, and prints and writes what each module
measured (:mod:`perfprim.cli._demo_report`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from perfprim.cli._output import InputError, emit, note

if TYPE_CHECKING:
    from rich.console import Console

    from perfprim.load import KneeResult, LoadResult, Progress
    from perfprim.testing import RedisServer

__all__ = ["DemoPlan", "demo"]

PRODUCTS = 1_000


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """The demo's timings: the open-model run, the Redis stall in it, and the step load."""

    rate: float
    ramp: float
    hold: float
    stall_at: float
    stall_for: float
    interval: float
    knee_levels: tuple[int, ...]
    knee_step: float
    knee_warmup: float

    @property
    def load_seconds(self) -> float:
        """How long the open-model run lasts."""
        return self.ramp + self.hold


FULL = DemoPlan(
    rate=200.0,
    ramp=2.0,
    hold=14.0,
    stall_at=6.0,
    stall_for=3.0,
    interval=0.5,
    knee_levels=(1, 2, 4, 8, 16, 32),
    knee_step=0.8,
    knee_warmup=0.2,
)
QUICK = DemoPlan(
    rate=120.0,
    ramp=1.0,
    hold=5.0,
    stall_at=2.0,
    stall_for=1.5,
    interval=0.5,
    knee_levels=(1, 2, 4, 8, 12, 16),
    knee_step=0.3,
    knee_warmup=0.1,
)


@dataclass
class RedisChoice:
    """Where the L2 is, and whether the demo may stall it."""

    url: str | None
    server: RedisServer | None
    description: str


@contextlib.contextmanager
def choose_redis(memory_only: bool) -> Iterator[RedisChoice]:
    """``REDIS_URL``, else a private redis-server (if on PATH), else none; with the reason."""
    if memory_only:
        yield RedisChoice(None, None, "memory only (--memory-only)")
        return
    if importlib.util.find_spec("redis") is None:
        yield RedisChoice(
            None, None, "memory only: redis-py is not installed (pip install 'perfprim[demo]')"
        )
        return
    url = os.environ.get("REDIS_URL")
    if url:
        yield RedisChoice(url, None, f"memory L1 + Redis L2 at REDIS_URL ({url})")
        return
    from perfprim.testing import RedisServer

    if not RedisServer.available():
        yield RedisChoice(
            None,
            None,
            "memory only: no REDIS_URL and no redis-server on PATH (apt-get install "
            "redis-server, or set REDIS_URL, to see the Redis L2)",
        )
        return
    with RedisServer() as server:
        yield RedisChoice(
            server.url,
            server,
            f"memory L1 + Redis L2 (a private redis-server at {server.url}, started for the demo)",
        )


def _zipf_ids(seed: int) -> Callable[[], int]:
    """Product ids 1..PRODUCTS, id k with weight 1/k: a few hot products, a long tail (seeded)."""
    rng = random.Random(seed)
    ids = range(1, PRODUCTS + 1)
    cumulative = list(itertools.accumulate(1.0 / k for k in ids))

    def next_id() -> int:
        return rng.choices(ids, cum_weights=cumulative)[0]

    return next_id


REVALIDATE = 0.25
"""Share of the visits to a page seen before that send its ETag back (``If-None-Match``)."""


@dataclass
class ResponseCacheCounts:
    """What the response cache did, as the client saw it in each answer's ``Cache-Status``.

    Every product-page answer is exactly one of: a hit (not forwarded), a
    forward that another request's forward answered (``collapsed``), or a
    forward to the app (a miss: the app rendered the page). ``stored``
    counts the forwards whose response was stored, ``not_modified`` the 304
    answers, ``revalidations`` the requests that sent ``If-None-Match``.
    """

    hits: int = 0
    forwarded: int = 0
    collapsed: int = 0
    stored: int = 0
    not_modified: int = 0
    revalidations: int = 0
    unlabelled: int = 0

    def count(self, status: int, cache_status: str | None) -> None:
        """Count one answer."""
        if status == 304:
            self.not_modified += 1
        if cache_status is None:
            self.unlabelled += 1
            return
        params = {p.strip().split("=", 1)[0] for p in cache_status.split(";")[1:]}
        if "hit" in params:
            self.hits += 1
        elif "collapsed" in params:
            self.collapsed += 1
        else:
            self.forwarded += 1
        if "stored" in params:
            self.stored += 1


class ProductVisits:
    """The open-model target: GET /products/{id} for zipf-distributed ids.

    A URL target sends one fixed request, and the driver's own client reads
    only the status; a shop's cache needs many keys and the shoppers read
    ETags, so this coroutine function builds each URL and sends it through
    one pooled pyqwest client (in the ``demo`` extra). Like a
    browser, it keeps each page's ETag and sends it back on a share
    (:data:`REVALIDATE`, seeded) of its later visits to that page; it counts
    the response cache's answers in :attr:`counts`.
    """

    def __init__(self, base: str, *, seed: int = 7) -> None:
        from perfprim._optional import require

        pyqwest = require("pyqwest", package="pyqwest", extra="demo", feature="perfprim demo")
        self._transport = pyqwest.HTTPTransport(
            timeout=10.0,
            connect_timeout=10.0,
            max_connections_per_address=1000,
            follow_redirects=False,
            enable_gzip=False,
            enable_brotli=False,
            enable_zstd=False,
            enable_otel=False,
        )
        execute = pyqwest.Client(self._transport).execute
        next_id = _zipf_ids(seed)
        revalidate = random.Random(seed + 1).random
        etags: dict[int, str] = {}
        counts = self.counts = ResponseCacheCounts()

        async def visit() -> None:
            product_id = next_id()
            headers = None
            etag = etags.get(product_id)
            if etag is not None and revalidate() < REVALIDATE:
                headers = {"if-none-match": etag}
                counts.revalidations += 1
            response = await execute("GET", f"{base}/products/{product_id}", headers, None)
            if response.status >= 400:
                msg = f"HTTP {response.status}"
                raise RuntimeError(msg)
            seen = response.headers.get("etag")
            if seen is not None:
                etags[product_id] = seen
            counts.count(response.status, response.headers.get("cache-status"))

        self.visit = visit

    def close(self) -> None:
        """Close the client's connections."""
        import asyncio

        async def close() -> None:
            await self._transport.aclose()

        asyncio.run(close())


class Stall:
    """Pause Redis (SIGSTOP) ``at`` seconds into the run for ``duration`` seconds.

    Driven by the run's own progress clock (:meth:`tick` at the end of each
    interval), so the stall lines up with the run's intervals; the wall-clock
    moments are kept to place it in the interval log.
    """

    def __init__(self, server: RedisServer, *, at: float, duration: float) -> None:
        self.server = server
        self.at = at
        self.duration = duration
        self.paused_at: float | None = None  # wall clock (the .hlog's clock)
        self.resumed_at: float | None = None

    def tick(self, elapsed: float) -> None:
        """Pause or resume Redis when the run reaches the stall's start or end."""
        if self.paused_at is None and elapsed >= self.at - 1e-6:
            self.server.pause()
            self.paused_at = time.time()
        elif (
            self.paused_at is not None
            and self.resumed_at is None
            and elapsed >= self.at + self.duration - 1e-6
        ):
            self.finish()

    def finish(self) -> None:
        """Resume Redis if it is paused (idempotent)."""
        if self.paused_at is not None and self.resumed_at is None:
            self.server.resume()
            self.resumed_at = time.time()


class LiveProgress:
    """Progress lines on stderr: rewritten in place on a terminal, phase changes only elsewhere."""

    def __init__(self, stall: Stall | None) -> None:
        self.tty = sys.stderr.isatty()
        self.stall = stall
        self._said: set[str] = set()

    def _phase(self) -> str:
        if self.stall is None or self.stall.paused_at is None:
            return "steady"
        if self.stall.resumed_at is None:
            return "REDIS STALLED"
        return "recovered"

    def __call__(self, progress: Progress) -> None:
        """Stall or resume Redis when due, then show the snapshot."""
        if self.stall is not None:
            self.stall.tick(progress.elapsed)
        phase = self._phase()
        if self.tty:
            sys.stderr.write(f"\r  [{phase:^13}] {progress.line()}\x1b[K")
            sys.stderr.flush()
        elif phase not in self._said:
            self._said.add(phase)
            note(f"{progress.elapsed:5.1f}s  {phase}: {progress.line().strip()}")

    def knee_step(self, step: Any) -> None:
        """Show one measured concurrency step."""
        line = f"concurrency {step.concurrency:>3d}: {step.throughput:8.1f} req/s"
        if self.tty:
            sys.stderr.write(f"\r  [   USL step  ] {line}\x1b[K")
            sys.stderr.flush()

    def close(self) -> None:
        """End the live line."""
        if self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _say(message: str, as_json: bool) -> None:
    """Narration: stdout for a person, stderr when stdout carries the JSON document."""
    click.echo(message, err=as_json)


def run_demo(plan: DemoPlan, *, output: Path, memory_only: bool, as_json: bool) -> dict[str, Any]:
    """Run the whole demo and write its report; return the summary (the ``--json`` result)."""
    from perfprim.cli._demo_report import DemoRun, write_report
    from perfprim.cli._demo_service import PAGE_MAX_AGE, DemoService
    from perfprim.load import find_knee, run

    began = time.perf_counter()
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot write the report into {str(output)!r}: {exc.strerror or exc}"
        raise InputError(msg) from exc
    hlog = output / "load.hlog"
    with choose_redis(memory_only) as redis_choice:
        service = DemoService(redis_url=redis_choice.url)
        _say("perfprim demo: a shop service behind perfprim's tiered cache, load-tested", as_json)
        _say(f"  cache:    {redis_choice.description}", as_json)
        _say(
            "  HTTP response cache: perfprim.web.asgi.CacheMiddleware in front of the product "
            f"page (max-age={PAGE_MAX_AGE}s, the same tiers), then @cache.cached on its data",
            as_json,
        )
        with service.serve() as base:
            _say(
                f"  service:  {base} (uvicorn in this process; MetricsMiddleware, SLO on "
                "/products/{product_id}: 99% within 100ms)",
                as_json,
            )
            stall = None
            if redis_choice.server is not None:
                stall = Stall(redis_choice.server, at=plan.stall_at, duration=plan.stall_for)
                what = f"Redis stalled (SIGSTOP) from {plan.stall_at:g}s for {plan.stall_for:g}s"
            elif redis_choice.url is not None:
                what = "no Redis stall: the Redis at REDIS_URL is not the demo's to stop"
            else:
                what = "no Redis to stall"
            _say(
                f"\n1/2 open-model load: {plan.rate:g} req/s on /products/{{id}} (zipf ids) for "
                f"{plan.load_seconds:g}s; {what}",
                as_json,
            )
            from perfprim.load import Stage

            visits = ProductVisits(base)
            live = LiveProgress(stall)
            try:
                result: LoadResult = run(
                    visits.visit,
                    stages=[Stage(0, 0), Stage(plan.ramp, plan.rate), Stage(plan.hold, plan.rate)],
                    interval=plan.interval,
                    hlog=hlog,
                    progress=live,
                    timeout=5.0,
                    # The driver shares this process (and its GIL) with the server: a send
                    # counts as late past 50 ms, not 10 (latency still counts from the plan).
                    late_after=0.05,
                )
            finally:
                live.close()
                if stall is not None:
                    stall.finish()
                visits.close()
            _say(
                f"2/2 step load for the USL: concurrency {','.join(map(str, plan.knee_levels))} "
                f"on /products/{{id}}/stock (uncached; {plan.knee_step:g}s per step)",
                as_json,
            )
            try:
                knee: KneeResult = find_knee(
                    f"{base}/products/1/stock",
                    concurrency=plan.knee_levels,
                    duration=plan.knee_step,
                    warmup=plan.knee_warmup,
                    progress=live.knee_step,
                )
            finally:
                live.close()
            scrape = _scrape(f"{base}/metrics")
            stats = service.stats()
            http_stats = service.http_stats()
        queries = service.database.queries
    demo_run = DemoRun(
        plan=plan,
        cache_description=redis_choice.description,
        redis=redis_choice.url is not None,
        http_stats=http_stats,
        http_counts=visits.counts,
        load=result,
        hlog=hlog,
        stalled_at=None if stall is None else stall.paused_at,
        resumed_at=None if stall is None else stall.resumed_at,
        knee=knee,
        scrape=scrape,
        stats=stats,
        queries=queries,
        seconds=time.perf_counter() - began,
    )
    return write_report(demo_run, output)


def _scrape(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own loopback URL
        return str(response.read().decode())


@click.command(
    epilog="""\b
Examples:
  perfprim demo
  perfprim demo --quick --output demo-out

Uses REDIS_URL when set, else starts a private redis-server if one is on
PATH (and stalls it once), else runs memory-only; it says which. Writes
report.md, summary.json, load.hlog and plots into --output.
""",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    default="perfprim-demo",
    show_default=True,
    help="Directory for the report and plots.",
)
@click.option("--quick", is_flag=True, help="A shorter run (about 15 s), for CI.")
@click.option("--memory-only", is_flag=True, help="No Redis, even if one is available.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def demo(*, output: str, quick: bool, memory_only: bool, as_json: bool) -> None:
    """Run a small service behind perfprim's cache, load it, stall Redis, report what it saw.

    In about 30 seconds, no configuration: a Starlette shop served by uvicorn
    in this process, its slow product page behind the HTTP response cache
    and its data behind a TieredCache (memory + Redis), per-route latency
    and an SLO from MetricsMiddleware; an
    open-model load with a Redis stall in it (CO-free latency: every request
    counts from its planned start); a step load fitted with the USL. Prints
    the cache figures, latency percentiles, SLO budget and burn rates and the
    capacity answer; writes a Markdown report and plots.
    """
    for module in ("uvicorn", "starlette", "pyqwest", "matplotlib", "prometheus_client"):
        if importlib.util.find_spec(module) is None:
            msg = (
                f"perfprim demo needs {module!r}, which is not installed: "
                "pip install 'perfprim[demo]'"
            )
            raise InputError(msg)
    plan = QUICK if quick else FULL
    # The cache logs (once per episode) when it degrades past Redis: show it as a message.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="perfprim: log: %(name)s: %(message)s"
    )
    summary = run_demo(plan, output=Path(output), memory_only=memory_only, as_json=as_json)

    def human(out: Console) -> None:
        from perfprim.cli._demo_report import render_summary

        render_summary(summary, out)

    emit("demo", summary, as_json=as_json, human=human)
