"""The caches over a Redis Cluster with replicas while masters fail over (issue 17, part 2).

One cluster of 3 masters and 3 replicas for the module; every test leaves it
whole again. The long form of the load test is
``benchmarks/bench_reliability_cluster.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from perfprim.cache import AsyncRedisTier, RedisTier
from perfprim.cache.advanced import Entry
from perfprim.testing import RedisCluster, RedisServer
from tests.reliability.cluster_workload import run_cluster_chaos

pytestmark = [pytest.mark.redis, pytest.mark.cluster, pytest.mark.slow, pytest.mark.solo]


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    """A real 3+3 cluster; fails over in about twice the 2 s node timeout."""
    if not RedisServer.available():
        pytest.skip("redis-server is not on PATH")  # a failure in CI (see tests/conftest.py)
    with RedisCluster(replicas=1, node_timeout=2.0) as started:
        yield started


def _call(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a sync or async tier method and return its result."""
    result = fn(*args, **kwargs)
    return loop.run_until_complete(result) if asyncio.iscoroutine(result) else result


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_multi_key_delete_reaches_the_promoted_replica(cluster: RedisCluster, kind: str) -> None:
    """After a failover, a delete spanning slots goes to the new masters at once.

    The tier learnt the slot map before the master died. A multi-key
    ``DELETE`` is split per slot into a pipeline; redis-py's asyncio cluster
    pipeline does not refresh the slot map on a refused connection, so
    without the tier's own refresh every retry went to the dead node, and a
    cache's pending repairs (deletes) kept the circuit open until something
    else refreshed it.
    """
    tier_class: Any = RedisTier if kind == "sync" else AsyncRedisTier
    loop = asyncio.new_event_loop()
    tier = tier_class.from_url(cluster.url, cluster=True)
    keys = [f"failover-delete-{kind}-{{{i}}}" for i in range(40)]
    now = time.time()
    entry = Entry("v", expires_at=now + 60, delta=0.0, stale_until=now + 60)
    try:
        _call(loop, tier.set_many, dict.fromkeys(keys, entry), now=now)
        owner = cluster.master_for_slot(cluster.slot_of(keys[0]))
        dead = cluster.kill_master(owner)
        cluster.wait_for_failover(dead, timeout=60)
        _call(loop, tier.delete, keys)  # the slot map is stale: one node is gone
        assert [None] * len(keys) == _call(loop, tier.get_many, keys)
        assert "closed" == tier.circuit_state
    finally:
        _call(loop, tier.close)
        loop.close()
        for node in cluster.nodes:
            if not node.running:
                cluster.restart_node(node, timeout=60)


def test_caches_serve_through_failover_restart_manual_failover_and_migration(
    cluster: RedisCluster,
) -> None:
    """Under steady load, no caller error and no wrong value through every fault.

    A sync ``TieredCache`` and an ``AsyncTieredCache`` (L1 + the cluster) are
    driven at 80 ops/s each by perfprim's load driver while a master is
    killed (its replica promoted), restarted (it rejoins as a replica),
    promoted back with ``CLUSTER FAILOVER``, and a hot slot is migrated. The
    value checker compares every read with the database.
    """
    report = run_cluster_chaos(cluster, rate=80.0, budget_scale=0.8, seed=17)
    print(report.table())
    for kind in ("sync", "async"):
        assert [] == report.errors[kind]
        assert [] == report.wrong[kind]
        assert "closed" == report.circuit_at_end[kind]
        assert report.l2_hits_last_phase[kind] > 0  # Redis serves again
    for figures in report.figures:
        assert figures.planned == figures.answered, figures
        # Redis serves again at most one breaker cool-down (3 s) after the cluster is whole
        # (the probe that closes the circuit comes at most that late).
        assert figures.redis_again_s <= figures.cluster_whole_s + 3.0 + 1.0, figures
