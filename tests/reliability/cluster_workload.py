"""Caches over a Redis Cluster with replicas, under steady load, while the cluster fails over.

Shared by the CI test (``tests/reliability/test_cluster_failover.py``) and
the longer experiment (``benchmarks/bench_reliability_cluster.py``).

The workload is cache-aside over a "database" (:class:`Oracle`, a dict of
versions): a read is ``get_or_load(key, load from the database)``, a write
bumps the key's version in the database and then either ``set``s the new
value or ``delete``s the key (alternately). perfprim's open-model load
driver sends the operations at a fixed rate, a sync ``TieredCache`` and an
``AsyncTieredCache`` at once (each in its own namespace, each with an L1),
while :func:`run_faults` kills a master, swaps a replica back with
``CLUSTER FAILOVER`` and migrates a hot slot.

The value checker: reads and writes of one key are serialised by a per-key
lock, so when a read starts every write of its key has returned, and the
only right answer is the database's current version. Anything else is a
*wrong value*. (Without the lock, a read's load racing a write is the
classic cache-aside race that no cache closes without leases; it is not a
fault and is left out on purpose.)
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier, RedisTier, TieredCache
from perfprim.load import Stage, run
from perfprim.testing import RedisCluster

KEYS = 300
WRITE_SHARE = 0.1
HOT_SHARE = 0.2
"""Share of operations on ``item:0``, whose slot the migration moves."""
L1_TTL = 0.3
"""Short, so most reads reach Redis."""


class Oracle:
    """The database behind a cache and the checker of what the cache returns."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.versions = dict.fromkeys(keys, 0)
        self.wrong: list[tuple[float, str, object, int]] = []
        self.reads = 0
        self.writes = 0

    def load(self, key: str) -> dict[str, Any]:
        """The database read a cache miss runs."""
        return {"key": key, "v": self.versions[key]}

    def bump(self, key: str) -> dict[str, Any]:
        """Write a new version of ``key`` to the database; return the new row."""
        self.versions[key] += 1
        self.writes += 1
        return self.load(key)

    def check(self, key: str, value: object) -> None:
        """Record ``value`` as wrong unless it is the database's current row for ``key``."""
        self.reads += 1
        expected = self.versions[key]
        if not (isinstance(value, dict) and value.get("v") == expected and value.get("key") == key):
            self.wrong.append((time.monotonic(), key, value, expected))


@dataclass
class ErrorLog:
    """Exceptions that reached a caller, with the time they were seen."""

    seen: list[tuple[float, str]] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)

    def add(self, exc: BaseException) -> None:
        """Record ``exc`` (the first few with their traceback)."""
        self.seen.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))
        if len(self.tracebacks) < 3:
            self.tracebacks.append("".join(traceback.format_exception(exc)))


class TierWatch:
    """Samples a tier's error counter, to tell when the cache is served by Redis again."""

    def __init__(self, tier: RedisTier | AsyncRedisTier) -> None:
        self.tier = tier
        self.samples: list[tuple[float, int, str]] = []

    def sample(self) -> None:
        self.samples.append((time.monotonic(), self.tier.errors, self.tier.circuit_state))

    def last_error_after(self, start: float, end: float) -> float | None:
        """Seconds from ``start`` to the last sample in ``[start, end]`` where errors grew."""
        last = None
        previous = None
        for t, errors, _ in self.samples:
            if previous is not None and errors > previous and start <= t <= end:
                last = t - start
            previous = errors
        return last


class Workload:
    """One cache (sync or async) on the cluster with its oracle, locks and logs."""

    def __init__(self, cluster: RedisCluster, kind: str, seed: int) -> None:
        self.kind = kind
        self.oracle = Oracle([f"item:{i}" for i in range(KEYS)])
        self.errors = ErrorLog()
        self.rng = random.Random(seed)
        common: dict[str, Any] = {"ttl": 300.0, "namespace": f"rel-{kind}-{seed}"}
        self.tier: RedisTier | AsyncRedisTier
        if kind == "sync":
            self.tier = RedisTier.from_url(cluster.url, cluster=True)
            self.cache: Any = TieredCache(
                MemoryTier(maxsize=10_000, ttl=L1_TTL), self.tier, **common
            )
            self.locks: dict[str, Any] = {k: threading.Lock() for k in self.oracle.keys}
        else:
            # The async cache lives in one event loop for the whole run, as in a service;
            # perfprim.load.run() starts a loop per run, so its target hands each
            # operation over to this loop.
            self.loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(
                target=self.loop.run_forever, name="async-cache-loop", daemon=True
            )
            self._loop_thread.start()
            self.tier = AsyncRedisTier.from_url(cluster.url, cluster=True)
            self.cache = AsyncTieredCache(
                MemoryTier(maxsize=10_000, ttl=L1_TTL), self.tier, **common
            )
            self.locks = {}  # asyncio locks are made in that loop
        self.watch = TierWatch(self.tier)
        self.l2_hits_at: list[tuple[float, int]] = []

    def _pick(self) -> tuple[str, bool, bool]:
        rng = self.rng
        key = self.oracle.keys[0] if rng.random() < HOT_SHARE else rng.choice(self.oracle.keys)
        roll = self.rng.random()
        return key, roll < WRITE_SHARE, roll < WRITE_SHARE / 2

    def sync_op(self) -> None:
        """One read or write through the sync cache (the load driver's target)."""
        key, write, by_set = self._pick()
        cache = self.cache
        with self.locks[key]:
            try:
                if write:
                    row = self.oracle.bump(key)
                    if by_set:
                        cache.set(key, row)
                    else:
                        cache.delete(key)
                else:
                    self.oracle.check(key, cache.get_or_load(key, lambda: self.oracle.load(key)))
            except Exception as exc:
                self.errors.add(exc)
                raise

    async def async_op(self) -> None:
        """One read or write through the async cache (the load driver's target)."""
        key, write, by_set = self._pick()
        cache = self.cache
        lock = self.locks.get(key)
        if lock is None:
            lock = self.locks[key] = asyncio.Lock()
        async with lock:
            try:
                if write:
                    row = self.oracle.bump(key)
                    if by_set:
                        await cache.set(key, row)
                    else:
                        await cache.delete(key)
                else:

                    async def load() -> dict[str, Any]:
                        return self.oracle.load(key)

                    self.oracle.check(key, await cache.get_or_load(key, load))
            except Exception as exc:
                self.errors.add(exc)
                raise

    async def _handover(self) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.async_op(), self.loop))

    def target(self) -> Callable[..., Any]:
        """The load driver's target for this cache's kind."""
        return self.sync_op if self.kind == "sync" else self._handover

    def l2_hits(self) -> int:
        """Reads answered by Redis so far."""
        return int(self.cache.stats().tiers[1].hits)

    def close(self) -> None:
        """Close the cache (and its tier); the async one in a loop of its own."""
        if self.kind == "sync":
            self.cache.close()
            return
        asyncio.run_coroutine_threadsafe(self.cache.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join(10)
        self.loop.close()


@dataclass
class Phase:
    """One fault: how to inject it, and how long the load runs around it."""

    name: str
    inject: Callable[[], str]
    """Injects the fault, waits until the cluster is whole again, returns a note."""
    budget: float
    """Seconds of load: a lead-in, the fault, and the rest after it."""


def phases(cluster: RedisCluster, probe_key: str) -> list[Phase]:
    """The fault schedule: kill a master, rejoin it, swap it back, migrate a hot slot."""
    state: dict[str, Any] = {}

    def kill() -> str:
        owner = cluster.master_for_slot(cluster.slot_of(probe_key))
        dead = cluster.kill_master(owner)
        promoted = cluster.wait_for_failover(dead, timeout=60)
        state.update(dead=dead, promoted=promoted)
        return f"killed :{dead.port}, replica :{promoted.port} promoted"

    def rejoin() -> str:
        cluster.restart_node(state["dead"], timeout=60)
        return f":{state['dead'].port} back as a replica of :{state['promoted'].port}"

    def failover() -> str:
        cluster.failover(state["dead"], timeout=60)
        return f":{state['dead'].port} master again, :{state['promoted'].port} its replica"

    def migrate() -> str:
        slot = cluster.slot_of(probe_key)
        source = cluster.master_for_slot(slot)
        target = next(m for m in cluster.current_masters() if m.port != source.port)
        moved = cluster.migrate_slot(slot, target)
        return f"slot {slot}: {moved} keys :{source.port} -> :{target.port}"

    node_timeout = cluster.node_timeout
    return [
        Phase("master killed, replica promoted", kill, 4.0 + 3 * node_timeout),
        Phase("killed master restarted (rejoins as replica)", rejoin, 6.0),
        Phase("CLUSTER FAILOVER on a replica", failover, 5.0),
        Phase("slot migrated between masters (ASK, then MOVED)", migrate, 4.0),
    ]


@dataclass
class PhaseFigures:
    """What the callers of one cache saw during one fault and after it."""

    fault: str
    kind: str
    planned: int
    answered: int
    caller_errors: int
    wrong_values: int
    cluster_whole_s: float
    redis_again_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    note: str


@dataclass
class ClusterReport:
    """The outcome of one run: per fault and cache kind."""

    figures: list[PhaseFigures]
    reads: dict[str, int]
    writes: dict[str, int]
    errors: dict[str, list[tuple[float, str]]]
    tracebacks: dict[str, list[str]]
    wrong: dict[str, list[tuple[float, str, object, int]]]
    l2_hits_last_phase: dict[str, int]
    """Reads Redis answered during the last fault's load."""
    circuit_at_end: dict[str, str]

    def table(self) -> str:
        """A Markdown table of the figures."""
        lines = [
            (
                "| fault | cache | planned / answered | caller errors | wrong values | "
                "cluster whole after | served from Redis again after | p50 / p99 / max |"
            ),
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for f in self.figures:
            lines.append(
                f"| {f.fault} | {f.kind} | {f.planned} / {f.answered} | {f.caller_errors} | "
                f"{f.wrong_values} | {f.cluster_whole_s:.2f} s | {f.redis_again_s:.2f} s | "
                f"{f.p50_ms:.2f} / {f.p99_ms:.1f} / {f.max_ms:.0f} ms |"
            )
        return "\n".join(lines)


LEAD_IN = 0.5
"""Seconds of steady load before each fault is injected."""


def run_cluster_chaos(
    cluster: RedisCluster,
    *,
    rate: float,
    budget_scale: float = 1.0,
    seed: int = 1,
    only: int | None = None,
) -> ClusterReport:
    """Drive a sync and an async cache at ``rate`` ops/s each through every fault; measure.

    For each fault the load driver runs for the fault's budget (times
    ``budget_scale``) while another thread injects it ``LEAD_IN`` seconds in
    and waits for the cluster to be whole again. ``only``: run the first
    ``only`` faults (and restart any node left down, so the cluster is whole).

    Raises:
        AssertionError: If a fault did not heal within its load budget.
    """
    workloads = {kind: Workload(cluster, kind, seed) for kind in ("sync", "async")}
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(0.02):
            for w in workloads.values():
                w.watch.sample()

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    figures: list[PhaseFigures] = []
    hits_before: dict[str, int] = {}
    try:
        # Warm up: every key cached once, the async cluster client discovered.
        for w in workloads.values():
            drive_load(w, rate, 1.0)
        for phase in phases(cluster, "{item:0}")[:only]:
            hits_before = {k: w.l2_hits() for k, w in workloads.items()}
            figures.extend(run_phase(phase, workloads, rate, phase.budget * budget_scale))
    finally:
        stop.set()
        watcher.join(5)
        for node in cluster.nodes:
            if not node.running:
                cluster.restart_node(node, timeout=60)
    report = ClusterReport(
        figures=figures,
        reads={k: w.oracle.reads for k, w in workloads.items()},
        writes={k: w.oracle.writes for k, w in workloads.items()},
        errors={k: w.errors.seen for k, w in workloads.items()},
        tracebacks={k: w.errors.tracebacks for k, w in workloads.items()},
        wrong={k: w.oracle.wrong for k, w in workloads.items()},
        l2_hits_last_phase={k: w.l2_hits() - hits_before[k] for k, w in workloads.items()},
        circuit_at_end={k: w.tier.circuit_state for k, w in workloads.items()},
    )
    for w in workloads.values():
        w.close()
    return report


def drive_load(w: Workload, rate: float, duration: float) -> Any:
    """Run the open-model load driver on ``w``'s cache for ``duration`` seconds."""
    return run(
        w.target(),
        stages=[Stage(duration=duration, rate=rate)],
        max_in_flight=64,
        timeout=10.0,
        progress=False,
    )


def run_phase(
    phase: Phase, workloads: dict[str, Workload], rate: float, budget: float
) -> list[PhaseFigures]:
    """Load every workload for ``budget`` seconds while ``phase`` is injected and heals."""
    results: dict[str, Any] = {}
    timing: dict[str, Any] = {}

    def drive(w: Workload) -> None:
        results[w.kind] = drive_load(w, rate, budget)

    def inject() -> None:
        time.sleep(LEAD_IN)
        timing["start"] = time.monotonic()
        try:
            timing["note"] = phase.inject()
        except Exception as exc:  # reported below, with the figures
            timing["note"] = f"FAILED: {type(exc).__name__}: {exc}"
        timing["healed"] = time.monotonic()

    threads = [threading.Thread(target=drive, args=(w,), daemon=True) for w in workloads.values()]
    injector = threading.Thread(target=inject, daemon=True)
    for thread in [*threads, injector]:
        thread.start()
    for thread in [*threads, injector]:
        thread.join(budget + 90)
    end = time.monotonic()
    start, healed = timing["start"], timing["healed"]
    assert healed <= end, f"{phase.name}: the cluster healed after the load ended"
    out = []
    for kind, w in workloads.items():
        result = results[kind]
        again = w.watch.last_error_after(start, end)
        out.append(
            PhaseFigures(
                fault=phase.name,
                kind=kind,
                planned=result.planned,
                answered=result.completed - result.errors,
                caller_errors=sum(1 for t, _ in w.errors.seen if start - LEAD_IN <= t <= end),
                wrong_values=sum(1 for t, *_ in w.oracle.wrong if start - LEAD_IN <= t <= end),
                cluster_whole_s=healed - start,
                redis_again_s=0.0 if again is None else again,
                p50_ms=result.latency.percentile(50) * 1e3,
                p99_ms=result.latency.percentile(99) * 1e3,
                max_ms=result.latency.max * 1e3,
                note=timing["note"],
            )
        )
    return out
