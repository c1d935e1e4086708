"""Experiment 3 (issue 4): expiry storm on one hot key read at a steady rate.

A hot key is read for 10 TTL periods by reader threads at a steady rate
(each reads, then sleeps 5 ms); the loader sleeps 50 ms. For plain TTL,
XFetch and stale-while-revalidate (perfprim) and for the peers' answers
(cachetools ``condition=``, dogpile.cache), this reports per TTL period the
recomputations and the callers that waited on a load, and caller latency
percentiles recorded with perfprim's ``LatencyHistogram`` (HDR, 3 significant
figures; ``max`` exact): overall, and for calls that started while a
recomputation ran ("at expiry").

Real time, not an injected clock: the loader's 50 ms and the readers' pace
are what is measured. A caller "waited on a load" if its call spans the end
of a load and lasted at least 0.5 ms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import cachetools
import pytest

from perfprim.cache import MemoryTier, StampedeOptions, TieredCache
from perfprim.histogram import LatencyHistogram

TTL = 1.0
PERIODS = 10
LOADER_S = 0.05
READERS = 4
PAUSE_S = 0.005


class Loads:
    """Records each load's (start, end) on the perf_counter clock."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self.n = 0

    def run(self) -> int:
        start = time.perf_counter()
        time.sleep(LOADER_S)
        self.n += 1
        value = self.n
        self.spans.append((start, time.perf_counter()))
        return value


def perfprim_get(loads: Loads, **options: Any) -> Callable[[], Any]:
    cache = TieredCache(
        MemoryTier(maxsize=100), ttl=TTL, namespace="storm", stampede=StampedeOptions(**options)
    )
    return lambda: cache.get_or_load("hot", loads.run)


def cachetools_condition_get(loads: Loads) -> Callable[[], Any]:
    cond = threading.Condition()

    @cachetools.cached(cachetools.TTLCache(maxsize=100, ttl=TTL), lock=cond, condition=cond)
    def get() -> int:
        return loads.run()

    return get


def dogpile_get(loads: Loads) -> Callable[[], Any]:
    from dogpile.cache import make_region

    region = make_region().configure("dogpile.cache.memory", expiration_time=TTL)
    return lambda: region.get_or_create("hot", loads.run)


MODES: dict[str, Callable[[Loads], Callable[[], Any]]] = {
    "perfprim-ttl": lambda loads: perfprim_get(loads, beta=0.0),
    "perfprim-xfetch": lambda loads: perfprim_get(loads, beta=1.0),
    "perfprim-swr": lambda loads: perfprim_get(loads, beta=0.0, stale_ttl=TTL),
    "cachetools.cached+condition": cachetools_condition_get,
    "dogpile.cache": dogpile_get,
}


def storm(get: Callable[[], Any], loads: Loads) -> dict[str, float]:
    get()  # cold load, not measured
    loads.spans.clear()
    calls: list[tuple[float, float]] = []
    lock = threading.Lock()
    start = time.perf_counter()
    end = start + TTL * PERIODS

    def reader() -> None:
        mine: list[tuple[float, float]] = []
        for _ in range(1_000_000):  # bounded; the clock ends it
            t0 = time.perf_counter()
            if t0 >= end:
                break
            get()
            mine.append((t0, time.perf_counter()))
            time.sleep(PAUSE_S)
        with lock:
            calls.extend(mine)

    threads = [threading.Thread(target=reader) for _ in range(READERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TTL * PERIODS + 30)
    spans = list(loads.spans)
    waited = sum(
        1 for t0, t1 in calls if t1 - t0 >= 0.0005 and any(t0 <= le <= t1 for _, le in spans)
    )
    overall, during = LatencyHistogram(clamp=True), LatencyHistogram(clamp=True)
    for t0, t1 in calls:
        overall.record(t1 - t0)
        if any(ls <= t0 <= le for ls, le in spans):
            during.record(t1 - t0)
    p = overall.percentiles((50, 99))
    at_expiry = during.percentiles((50,))[50] if during.count else float("nan")
    return {
        "calls": len(calls),
        "recomputations_per_period": len(spans) / PERIODS,
        "waiting_per_period": waited / PERIODS,
        "p50_us": p[50] * 1e6,
        "p99_us": p[99] * 1e6,
        "max_ms": max((t1 - t0 for t0, t1 in calls), default=float("nan")) * 1e3,
        "p50_at_expiry_us": at_expiry * 1e6,
    }


@pytest.mark.parametrize("mode", list(MODES))
def test_exp3_expiry_storm(mode: str, record_metric: Callable[..., None]) -> None:
    """Experiment 3: a hot key over 10 TTL periods; recomputations, waiters, latencies."""
    loads = Loads()
    result = storm(MODES[mode](loads), loads)
    note = (
        f"TTL {TTL} s x {PERIODS}, loader {LOADER_S * 1000:.0f} ms, {READERS} readers "
        f"pausing {PAUSE_S * 1000:.0f} ms, {result['calls']} calls"
    )
    prefix = f"cache.stampede.exp3.{mode}"
    record_metric(
        f"{prefix}.recomputations_per_period", result["recomputations_per_period"], "loads", note
    )
    record_metric(f"{prefix}.waiting_per_period", result["waiting_per_period"], "callers", note)
    record_metric(f"{prefix}.p50_us", round(result["p50_us"], 1), "us", note)
    record_metric(f"{prefix}.p99_us", round(result["p99_us"], 1), "us", note)
    record_metric(f"{prefix}.max_ms", round(result["max_ms"], 2), "ms", note)
    record_metric(
        f"{prefix}.p50_at_expiry_us",
        round(result["p50_at_expiry_us"], 1),
        "us",
        "p50 of calls that started while a recomputation ran",
    )


# -- Timed: the hit path of stampede-protected caches --------------------------------


def _perfprim_hit(delta: float) -> Callable[[], Any]:
    """A hit on an entry whose load took ``delta`` (on a fixed fake clock, ttl 100 s)."""
    now = [1_000_000.0]
    cache = TieredCache(MemoryTier(maxsize=100), ttl=100.0, namespace="hit", clock=lambda: now[0])

    def load() -> int:
        now[0] += delta  # the load "took" delta seconds; the clock then stands still
        return 1

    cache.get_or_load("hot", load)
    return lambda: cache.get_or_load("hot", load)


def test_hit_perfprim(compare: Callable[..., Any]) -> None:
    """Time perfprim get_or_load hit with XFetch on (far from expiry: no draw), single-flight on."""
    compare("cache: stampede-protected L1 hit", "perfprim", _perfprim_hit(0.0))


def test_hit_perfprim_in_xfetch_window(compare: Callable[..., Any]) -> None:
    """Time a perfprim hit inside the XFetch window (36.7 * delta * beta > time left): it draws."""
    # delta 10 s, 100 s left: 36.7 * 10 > 100, so each read draws (P(refresh) = e^-10).
    compare("cache: stampede-protected L1 hit", "perfprim (XFetch window)", _perfprim_hit(10.0))


def test_hit_cachetools_condition(compare: Callable[..., Any]) -> None:
    """Anchor: cachetools.cached with condition= (its stampede answer), hit."""
    cond = threading.Condition()

    @cachetools.cached(cachetools.TTLCache(maxsize=100, ttl=3600), lock=cond, condition=cond)
    def get() -> int:
        return 1

    get()
    compare("cache: stampede-protected L1 hit", "cachetools.cached+condition", get)


def test_hit_dogpile(compare: Callable[..., Any]) -> None:
    """Anchor: dogpile.cache memory region get_or_create, hit."""
    from dogpile.cache import make_region

    region = make_region().configure("dogpile.cache.memory", expiration_time=3600)
    region.get_or_create("hot", lambda: 1)
    compare(
        "cache: stampede-protected L1 hit",
        "dogpile.cache",
        lambda: region.get_or_create("hot", lambda: 1),
    )
