"""Cache stats exported through the registry: a real TieredCache, memory and real Redis tiers."""

from __future__ import annotations

import pytest

from perfprim.cache import AsyncTieredCache, MemoryTier, TieredCache
from perfprim.telemetry import TelemetryRegistry, cache_stats_points


def _scrape(registry: TelemetryRegistry) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    from perfprim.telemetry import register_prometheus

    prom = CollectorRegistry()
    register_prometheus(registry, prometheus_registry=prom)
    return generate_latest(prom).decode()


def test_two_memory_tiers_keep_separate_series() -> None:
    """Hits, misses and loads of a real two-tier cache, one series per tier level."""
    cache = TieredCache(MemoryTier(), MemoryTier(), ttl=60.0)
    registry = TelemetryRegistry()
    registry.add_cache("cache.users", cache)
    cache.get_or_load("k", lambda: 1)
    cache.get_or_load("k", lambda: 1)
    text = _scrape(registry)
    assert 'cache_users_hits_total{backend="memory",tier="l1"} 1.0' in text
    assert 'cache_users_misses_total{backend="memory",tier="l1"} 1.0' in text
    assert 'cache_users_misses_total{backend="memory",tier="l2"} 1.0' in text
    assert "cache_users_loads_total 1.0" in text
    assert "cache_users_load_errors_total 0.0" in text
    assert "circuit_state" not in text  # memory tiers have no breaker
    cache.get_or_load("k", lambda: 1)
    assert 'cache_users_hits_total{backend="memory",tier="l1"} 2.0' in _scrape(registry)


def test_load_errors_are_counted() -> None:
    """A loader that raises shows in load_errors_total."""
    cache = TieredCache(MemoryTier(), ttl=60.0)
    registry = TelemetryRegistry()
    registry.add_cache("c", cache)

    def fail() -> int:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        cache.get_or_load("k", fail)
    assert "c_load_errors_total 1.0" in _scrape(registry)


@pytest.mark.redis
def test_redis_tier_exports_its_circuit_state(redis_url: str, namespace: str) -> None:
    """A real Redis tier: hits per backend and a closed circuit, one-hot over the states."""
    import redis

    from perfprim.cache import RedisTier

    client = redis.Redis.from_url(redis_url)
    cache = TieredCache(
        MemoryTier(), RedisTier(client), ttl=60.0, namespace=namespace, invalidate_l1=False
    )
    try:
        cache.get_or_load("k", lambda: "v")
        points = {(p.name, p.labels): p.value for p in cache_stats_points("c", cache.stats())}
        redis_labels = (("tier", "l2"), ("backend", "redis"))
        assert 1 == points[("c.misses", redis_labels)]
        states = {
            dict(labels)["state"]: value
            for (name, labels), value in points.items()
            if name == "c.circuit_state"
        }
        assert {"closed": 1.0, "open": 0.0, "half_open": 0.0} == states
    finally:
        cache.close()
        client.close()


async def test_async_cache_stats() -> None:
    """An AsyncTieredCache exports the same names."""
    cache = AsyncTieredCache(MemoryTier(), ttl=60.0)
    registry = TelemetryRegistry()
    registry.add_cache("a", cache)

    async def load() -> int:
        return 1

    await cache.get_or_load("k", load)
    await cache.get_or_load("k", load)
    text = _scrape(registry)
    assert 'a_hits_total{backend="memory",tier="l1"} 1.0' in text
