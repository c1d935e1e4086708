"""Reliability experiment 2 (issue 17): the caches over a Redis Cluster with replicas, failing over.

A cluster of 3 masters and 3 replicas (``perfprim.testing.RedisCluster``);
a sync ``TieredCache`` and an ``AsyncTieredCache`` (L1 + the cluster, default
options) driven at a fixed rate each by perfprim's open-model load driver,
cache-aside over a database whose every read is checked
(``tests/reliability/cluster_workload.py``), while the faults run in turn:

1. a master is SIGKILLed; the cluster promotes its replica;
2. the killed master is started again and rejoins as a replica;
3. ``CLUSTER FAILOVER`` on it: it is master again, with no write lost;
4. the hot key's slot is migrated to another master (ASK, then MOVED).

Measured per fault and cache: requests planned vs answered, errors that
reached a caller (goal 0), wrong values (goal 0), seconds until the cluster
was whole and until the cache was served by Redis again (no more tier
errors), latency p50/p99/max from the planned start.

Long form (``nox -s bench``): the default ``cluster-node-timeout`` of 5 s,
200 ops/s per cache. Short form (bench-smoke, CI): node timeout 2 s, 40
ops/s, the first fault only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from _load_support import short_mode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.reliability

from tests.reliability import cluster_workload

from perfprim.testing import RedisCluster, RedisServer


def test_cluster_failover_under_load(
    request: pytest.FixtureRequest, record_metric: Callable[..., None]
) -> None:
    """Faults of a 3+3 cluster under load: no caller error, no wrong value, figures recorded."""
    if not RedisServer.available():
        pytest.skip("redis-server is not on PATH")
    short = short_mode(request)
    node_timeout, rate, scale = (2.0, 40.0, 0.8) if short else (5.0, 200.0, 1.2)
    only = 1 if short else None
    with RedisCluster(replicas=1, node_timeout=node_timeout) as cluster:
        report = cluster_workload.run_cluster_chaos(
            cluster, rate=rate, budget_scale=scale, seed=17, only=only
        )
    print()
    print(report.table())
    for figures in report.figures:
        slug = figures.fault.split(",")[0].split(" (")[0].replace(" ", "_").lower()
        name = f"reliability.cluster.{slug}.{figures.kind}"
        record_metric(f"{name}.caller_errors", figures.caller_errors, unit="errors")
        record_metric(f"{name}.wrong_values", figures.wrong_values, unit="reads")
        record_metric(f"{name}.lost", figures.planned - figures.answered, unit="requests")
        record_metric(f"{name}.redis_again_s", figures.redis_again_s, unit="s",
                      note=f"cluster whole after {figures.cluster_whole_s:.2f} s")  # fmt: skip
        record_metric(f"{name}.p99_ms", figures.p99_ms, unit="ms")
        record_metric(f"{name}.max_ms", figures.max_ms, unit="ms")
    for kind in ("sync", "async"):
        assert [] == report.errors[kind]
        assert [] == report.wrong[kind]
