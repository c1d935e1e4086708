"""perfprim's main job in one run: a product service behind a two-tier cache.

A slow "database" (3 ms per query, 1% of queries 40 ms) serves product pages.
perfprim puts a ``TieredCache`` (in-process L1 + Redis L2) in front of it,
records every request's latency in an HDR histogram, tracks a latency SLO
(99% of requests under 5 ms over 30 days) with burn-rate alerts, survives a
Redis that hangs mid-run, and turns the measurements into capacity answers
(Little's law, database connections by Erlang C, months of headroom). The
same numbers are exported to Prometheus by ``perfprim.telemetry``: the demo
prints part of the scrape.

Run it with ``nox -s demo`` (or ``python examples/demo.py`` with perfprim and
its ``redis`` extra installed). It uses ``REDIS_URL`` if set, otherwise it
starts a private ``redis-server`` on a free loopback port. Every load loop is
bounded in count and in time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from perfprim.cache import MemoryTier, RedisTier, TieredCache
from perfprim.capacity import ErlangC, headroom, littles_law, project_growth
from perfprim.histogram import LatencyHistogram
from perfprim.slo import LatencySLO, SLOTracker
from perfprim.telemetry import TelemetryRegistry, register_prometheus, timed
from perfprim.testing import RedisServer

PRODUCTS = 2_000
THREADS = 4
REQUESTS_PER_PHASE = 6_000
PHASE_SECONDS = 6.0


@contextlib.contextmanager
def redis_for_demo() -> Iterator[tuple[str, RedisServer | None]]:
    """Yield a Redis URL: ``REDIS_URL`` or a throwaway server we can pause."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url, None
        return
    with RedisServer() as server:
        yield server.url, server


class Database:
    """A slow backend: 3 ms per query, 1% of queries take 40 ms."""

    def __init__(self, seed: int) -> None:
        self.queries = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def product(self, product_id: int) -> dict[str, object]:
        """Return one product row, slowly."""
        with self._lock:
            self.queries += 1
            slow = self._rng.random() < 0.01
        time.sleep(0.040 if slow else 0.003)
        return {"id": product_id, "name": f"product {product_id}", "price": product_id % 97 + 0.99}


def zipf_ids(rng: random.Random, n: int) -> list[int]:
    """Product ids with a realistic skew: a few hot products, a long tail."""
    weights = [1.0 / (rank + 1) for rank in range(PRODUCTS)]
    return rng.choices(range(PRODUCTS), weights=weights, k=n)


def drive(get_product: Callable[[int], object], ids: list[int], deadline: float) -> int:
    """Call ``get_product`` for each id from THREADS threads until done or the deadline."""
    done = [0] * THREADS
    chunks = [ids[i::THREADS] for i in range(THREADS)]

    def worker(index: int) -> None:
        for product_id in chunks[index]:
            if time.monotonic() > deadline:
                return
            get_product(product_id)
            done[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done)


@dataclass
class Run:
    """What the load phases did."""

    requests: int = 0
    seconds: float = 0.0
    hung_requests: int = 0
    hung_seconds: float = 0.0
    circuit_while_hung: str | None = None
    after_recovery: int = 0


def main() -> int:
    """Run the demo and print what each module measured."""
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stdout, format="  [log] %(name)s: %(message)s"
    )
    rng = random.Random(7)
    database = Database(seed=11)
    latency = LatencyHistogram(lowest=1e-6, highest=60.0, significant_figures=3)
    tracker = SLOTracker(LatencySLO(threshold=0.010, target=0.99, window=30 * 86400))
    telemetry = TelemetryRegistry()

    with redis_for_demo() as (url, server):
        print("perfprim demo: a product service behind TieredCache(MemoryTier, RedisTier)")
        print(f"redis: {url}\n")
        l2 = RedisTier.from_url(url, cooldown=0.5)
        with TieredCache(MemoryTier(maxsize=500, ttl=2.0), l2, ttl=60.0, namespace="demo") as cache:
            # One HDR record per call feeds the histogram, the SLO tracker and the
            # Prometheus export; the cache's own stats are exported beside it.
            @timed(name="product_page", histogram=latency, slo=tracker, registry=telemetry)
            @cache.cached(ttl=60.0)
            def get_product(product_id: int) -> dict[str, object]:
                return database.product(product_id)

            telemetry.add_cache("cache.products", cache)
            telemetry.add_slo("slo.product_page", tracker)
            run = run_load(get_product, rng, server, cache)
            print_cache(cache, database, run)
            print_scrape(telemetry)
    print_latency(latency)
    print_slo(tracker)
    print_capacity(run, latency, database)
    return 0


def run_load(
    get_product: Callable[[int], object],
    rng: random.Random,
    server: RedisServer | None,
    cache: TieredCache,
) -> Run:
    """A normal phase, then (with a private server) Redis hung by SIGSTOP, then recovery."""
    run = Run()
    started = time.monotonic()
    run.requests = drive(get_product, zipf_ids(rng, REQUESTS_PER_PHASE), started + PHASE_SECONDS)
    if server is not None:
        server.pause()  # Redis accepts connections and never answers
        try:
            hung_start = time.monotonic()
            run.hung_requests = drive(get_product, zipf_ids(rng, 1_000), hung_start + 3.0)
            run.hung_seconds = time.monotonic() - hung_start
        finally:
            server.resume()
        run.circuit_while_hung = cache.stats().tiers[1].circuit_state
        time.sleep(0.6)  # the breaker's cool-down (0.5 s here), then it probes by itself
        run.after_recovery = drive(get_product, zipf_ids(rng, 1_000), time.monotonic() + 3.0)
    run.seconds = time.monotonic() - started
    return run


def print_cache(cache: TieredCache, database: Database, run: Run) -> None:
    """Per-tier hit ratios, loads, and what happened while Redis hung."""
    stats = cache.stats()
    total = run.requests + run.hung_requests + run.after_recovery
    print("== cache")
    for tier in stats.tiers:
        lookups = tier.hits + tier.misses
        ratio = tier.hits / lookups if lookups else 0.0
        print(
            f"  {tier.name:<7} hits {tier.hits:>6}  misses {tier.misses:>6}  "
            f"hit ratio {ratio:6.1%}  errors {tier.errors}  circuit {tier.circuit_state}"
        )
    print(f"  {stats.loads} loads ({database.queries} database queries) for {total} requests")
    if run.circuit_while_hung is not None:
        print(
            f"  Redis hung (SIGSTOP) for {run.hung_seconds:.1f} s: all {run.hung_requests} "
            f"requests still served (L1 + loader), circuit {run.circuit_while_hung!r}; after "
            f"it came back, {run.after_recovery} more with the circuit "
            f"{stats.tiers[1].circuit_state!r}"
        )


def print_scrape(telemetry: TelemetryRegistry) -> None:
    """A few lines of what Prometheus would scrape (prometheus_client text format)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    register_prometheus(telemetry, prometheus_registry=registry)
    lines = generate_latest(registry).decode().splitlines()
    wanted = (
        'product_page_seconds_bucket{le="0.01"}',
        "product_page_seconds_count",
        "cache_products_hits_total",
        'cache_products_circuit_state{backend="redis",state="closed"',
        "slo_product_page_sli_ratio",
        "slo_product_page_error_budget_remaining_ratio",
        'slo_product_page_burn_rate{window="5m"}',
    )
    shown = [line for line in lines if line.startswith(wanted)]
    print(f"\n== Prometheus scrape ({len(lines)} lines; a few of them)")
    for line in shown:
        print(f"  {line}")


def print_latency(latency: LatencyHistogram) -> None:
    """Percentiles from the HDR histogram of every request."""
    print("\n== latency (HDR histogram of every request)")
    for p, value in latency.percentiles((50, 90, 99, 99.9)).items():
        print(f"  p{p:<5g} {value * 1e3:8.3f} ms")
    print(f"  max    {latency.max * 1e3:8.3f} ms   mean {latency.mean * 1e3:.3f} ms")


def print_slo(tracker: SLOTracker) -> None:
    """SLI, error budget and burn rate of the latency SLO."""
    snap = tracker.snapshot()
    print("\n== SLO: 99% of requests under 10 ms, over 30 days")
    print(f"  SLI {snap.sli or 0.0:.4%}   error budget remaining {snap.budget_remaining:.1%}")
    short = snap.windows[0]
    print(
        f"  last {short.window / 60:g} minutes: error ratio {short.error_ratio or 0.0:.4%}, "
        f"burn rate {short.burn_rate or 0.0:.2f}"
    )
    firing = ", ".join(f"{a.severity} ({a.burn_rate:g}x)" for a in snap.firing) or "none"
    print(f"  alerts firing now: {firing}")


def print_capacity(run: Run, latency: LatencyHistogram, database: Database) -> None:
    """Little's law, database connections by Erlang C, and months of headroom."""
    total = run.requests + run.hung_requests + run.after_recovery
    throughput = total / run.seconds
    print("\n== capacity")
    in_flight = littles_law(arrival_rate=throughput, latency=latency.mean)
    print(f"  throughput {throughput:,.0f} req/s; by Little's law {in_flight:.2f} in flight")
    queries = database.queries / run.seconds
    connections = ErlangC.servers_needed(
        queries * 10, 0.0035, target_wait=0.001, service_level=0.95
    )
    print(
        f"  at 10x today's database load ({queries * 10:,.0f} queries/s, 3.5 ms each) the "
        f"pool needs {connections} connections to start 95% of queries within 1 ms (Erlang C)"
    )
    ceiling = headroom(current_load=throughput, current_utilization=0.35, ceiling=0.70)
    growth = project_growth(current=throughput, rate=0.15, capacity=ceiling, model="compound")
    print(
        f"  at 35% CPU now, the 70% ceiling is {ceiling:,.0f} req/s: at 15% growth a month, "
        f"{growth.periods_until_exhausted:.1f} months away"
    )


if __name__ == "__main__":
    sys.exit(main())
