"""RedisTier and AsyncRedisTier against real servers: round trips, untrusted bytes, faults.

:class:`RedisTierContract` is the tier conformance suite
(:class:`tests.cache.conformance.TierConformance`, which ``MemoryTier`` passes
too) plus what only a Redis tier must do; it asks for a ``make_tier`` fixture
(a factory of tiers with a synchronous face) and a ``raw`` fixture (a plain
redis-py client on the same server). It runs four times: sync and asyncio,
standalone and Cluster (the asyncio tier is driven through :class:`SyncFace`).
The conformance suite's fake clock starts at 1e6 s: the tiers write
``SET ... PX`` relative to the ``now`` they are given, so Redis keeps each
entry for its remaining life whatever the clock's origin.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from perfprim.cache import AsyncRedisTier, RedisTier, _redis_common
from perfprim.cache._async import redis_tier as _async_redis_tier
from perfprim.cache._redis_common import ttl_ms
from perfprim.cache._serializers import PickleSerializer
from perfprim.cache._sync import redis_tier as _redis_tier
from perfprim.cache.advanced import Entry
from perfprim.exceptions import (
    BackendError,
    CircuitOpenError,
    ConfigurationError,
    SerializationError,
)
from perfprim.testing import RedisCluster, RedisServer
from tests.cache.conformance import TierConformance
from tests.cache.e2e_support import command_calls

pytestmark = pytest.mark.redis


class SyncFace:
    """Drives an AsyncRedisTier from synchronous test code, one loop per test."""

    def __init__(self, tier: AsyncRedisTier) -> None:
        self.tier = tier
        self.loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.tier, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.loop.run_until_complete(attr(*args, **kwargs))

        return call

    def shutdown(self) -> None:
        self.loop.run_until_complete(self.tier.close())
        self.loop.close()


class FakeClock:
    """A monotonic clock for the breaker that moves only when told."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def build(kind: str, url: str, *, cluster: bool, **options: Any) -> Any:
    """A tier of ``kind`` ("sync" or "async") for ``url``, with a synchronous face."""
    if kind == "sync":
        return RedisTier.from_url(url, cluster=cluster, **options)
    return SyncFace(AsyncRedisTier.from_url(url, cluster=cluster, **options))


def close(tier: Any) -> None:
    """Close a tier built by ``build``."""
    if isinstance(tier, SyncFace):
        tier.shutdown()
    else:
        tier.close()


def entry(value: object, ttl: float = 60.0, stale: float = 0.0) -> Entry:
    """An entry fresh for ``ttl`` seconds, then stale for ``stale`` more."""
    now = time.time()
    return Entry(value, now + ttl, 0.25, now + ttl + stale)


def test_all_is_pinned() -> None:
    """The tier modules export exactly these names."""
    assert ["RedisTier"] == _redis_tier.__all__
    assert ["AsyncRedisTier"] == _async_redis_tier.__all__
    assert "RedisTierBase" in _redis_common.__all__


def test_importing_the_tier_modules_does_not_import_redis() -> None:
    """redis-py is imported when a tier or bus is built, not when perfprim.cache loads."""
    code = (
        "import sys, perfprim.cache, perfprim.cache.advanced, perfprim.cache._sync.redis_tier, "
        "perfprim.cache._async.redis_tier, perfprim.cache._invalidation; "
        "print('redis' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "False" == out.stdout.strip()


def test_ttl_ms_is_the_remaining_life_until_stale_until() -> None:
    """PX is ceil((stale_until - now) * 1000), at least 1, none for an endless entry."""
    assert 1500 == ttl_ms(Entry(1, 10.0, 0.0, 11.5), now=10.0)
    assert 1 == ttl_ms(Entry(1, 10.0, 0.0, 10.0000001), now=10.0)
    assert 1 == ttl_ms(Entry(1, 10.0, 0.0, 9.0), now=10.0)
    assert ttl_ms(Entry(1, math.inf, 0.0, math.inf), now=10.0) is None


class RedisTierContract(TierConformance):
    """The tier conformance suite plus what every Redis tier must do.

    Subclasses provide ``make_tier`` (a factory) and ``raw``.
    """

    def rkey(self, namespace: str, name: str) -> str:
        return f"{namespace}:0:{{{name}}}"

    def test_round_trip_keeps_value_and_times(self, tier: Any, namespace: str) -> None:
        """What is set is what is read: value, expires_at, delta, stale_until."""
        key, stored = self.rkey(namespace, "a"), entry({"id": 1, "tags": ["x"]}, stale=5.0)
        tier.set(key, stored, now=time.time())
        assert stored == tier.get(key)

    def test_ttl_is_the_remaining_life_until_stale_until(
        self, tier: Any, raw: Any, namespace: str
    ) -> None:
        """Redis drops the key at stale_until: PTTL is at most the remaining life."""
        key, now = self.rkey(namespace, "ttl"), time.time()
        tier.set(key, Entry(1, now + 10.0, 0.0, now + 30.0), now=now)
        assert 10_000 < raw.pttl(key) <= 30_000
        endless = self.rkey(namespace, "endless")
        tier.set(endless, Entry(1, math.inf, 0.0, math.inf), now=now)
        assert -1 == raw.pttl(endless)

    def test_get_many_keeps_order_across_slots(self, tier: Any, namespace: str) -> None:
        """get_many answers in the order asked, with None for misses, across slots."""
        keys = [f"{namespace}:0:{{k{i}}}" for i in range(12)]
        values = {key: entry(i) for i, key in enumerate(keys) if i % 3}
        tier.set_many(values, now=time.time())
        asked = [*reversed(keys), keys[1], "absent"]
        got = tier.get_many(asked)
        assert [values.get(key) for key in asked] == got
        assert [] == tier.get_many([])

    def test_delete_across_slots(self, tier: Any, namespace: str) -> None:
        """``delete`` drops the given keys (on any slot) and ignores missing ones."""
        keys = [self.rkey(namespace, f"d{i}") for i in range(5)]
        tier.set_many({key: entry(1) for key in keys}, now=time.time())
        tier.delete([*keys[:3], self.rkey(namespace, "never")])
        assert [MISS, MISS, MISS, 1, 1] == values(tier.get_many(keys))
        tier.delete([])

    def test_counters(self, tier: Any, namespace: str) -> None:
        """``incr`` counts up from 0; read_counter reads it, 0 when absent."""
        key = self.rkey(namespace, "gen")
        assert 0 == tier.read_counter(key)
        assert [1, 2, 3] == [tier.incr(key) for _ in range(3)]
        assert 3 == tier.read_counter(key)

    def test_foreign_bytes_are_a_counted_miss(self, tier: Any, raw: Any, namespace: str) -> None:
        """Bytes another program wrote are a miss, counted in decode_errors, never raised."""
        key, good = self.rkey(namespace, "foreign"), self.rkey(namespace, "good")
        raw.set(key, b"written by someone else")
        tier.set(good, entry(7), now=time.time())
        assert tier.get(key) is None
        assert 1 == tier.decode_errors
        assert [MISS, 7] == values(tier.get_many([key, good]))
        assert 2 == tier.decode_errors
        assert 0 == tier.errors

    def test_unencodable_value_raises_and_writes_nothing(self, tier: Any, namespace: str) -> None:
        """The default JSON serializer refuses a set at set time; set_many writes nothing."""
        key, other = self.rkey(namespace, "set"), self.rkey(namespace, "other")
        with pytest.raises(SerializationError, match="PickleSerializer"):
            tier.set(key, entry({1, 2}), now=time.time())
        with pytest.raises(SerializationError):
            tier.set_many({other: entry(1), key: entry({1, 2})}, now=time.time())
        assert [None, None] == tier.get_many([key, other])

    def test_stats_start_clean(self, tier: Any) -> None:
        """A fresh tier reports a closed circuit and no errors."""
        assert "closed" == tier.circuit_state
        assert (0, 0) == (tier.errors, tier.decode_errors)
        assert "redis" == tier.name


MISS = "<miss>"


def values(entries: list[Entry | None]) -> list[object]:
    """The values of ``entries``, with MISS for a miss."""
    return [MISS if e is None else e.value for e in entries]


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which tier class to build."""
    return str(request.param)


class TestStandalone(RedisTierContract):
    """The contract on a real standalone server."""

    @pytest.fixture
    def make_tier(self, kind: str, redis_url: str) -> Iterator[Callable[[], Any]]:
        """A factory of tiers on the session server; every tier made is closed after the test."""
        made: list[Any] = []

        def make() -> Any:
            made.append(build(kind, redis_url, cluster=False))
            return made[-1]

        yield make
        for tier in made:
            close(tier)

    @pytest.fixture
    def raw(self, redis_url: str) -> Iterator[redis.Redis]:
        client = redis.Redis.from_url(redis_url)
        yield client
        client.close()

    def test_is_not_a_cluster(self, tier: Any) -> None:
        """A standalone client is detected as such."""
        assert not tier.is_cluster


@pytest.mark.cluster
class TestCluster(RedisTierContract):
    """The contract on a real three-master Redis Cluster."""

    @pytest.fixture
    def make_tier(self, kind: str, redis_cluster: RedisCluster) -> Iterator[Callable[[], Any]]:
        """A factory of cluster tiers; every tier made is closed after the test."""
        made: list[Any] = []

        def make() -> Any:
            made.append(build(kind, redis_cluster.url, cluster=True))
            return made[-1]

        yield make
        for tier in made:
            close(tier)

    @pytest.fixture
    def raw(self, redis_cluster: RedisCluster) -> Iterator[redis.cluster.RedisCluster]:
        client = redis.cluster.RedisCluster.from_url(redis_cluster.url)
        yield client
        client.close()

    def test_is_a_cluster(self, tier: Any) -> None:
        """A cluster client is detected as such."""
        assert tier.is_cluster


def test_get_many_and_set_many_are_one_round_trip(
    kind: str, redis_server_factory: Callable[[], RedisServer]
) -> None:
    """Standalone: get_many is one MGET and set_many one pipeline of SETs (no per-key GET)."""
    server = redis_server_factory()
    tier = build(kind, server.url, cluster=False)
    try:
        keys = [f"k{i}" for i in range(10)]
        tier.set_many({key: entry(1) for key in keys}, now=time.time())
        server.command("CONFIG", "RESETSTAT")
        assert [1] * 10 == values(tier.get_many(keys))
        calls = command_calls(server)
        assert 1 == calls.get("mget")
        assert "get" not in calls
    finally:
        close(tier)


@pytest.mark.cluster
def test_cluster_get_many_is_one_mget_per_slot(kind: str, redis_cluster: RedisCluster) -> None:
    """Cluster: get_many sends one MGET per slot group, however many keys share a slot."""
    tier = build(kind, redis_cluster.url, cluster=True)
    try:
        keys = [f"slot:{{tag{i % 4}}}:{i}" for i in range(16)]  # 16 keys on 4 hash tags
        tier.set_many({key: entry(i) for i, key in enumerate(keys)}, now=time.time())
        for node in redis_cluster.nodes:
            node.command("CONFIG", "RESETSTAT")
        assert list(range(16)) == values(tier.get_many(keys))
        mgets = sum(command_calls(node).get("mget", 0) for node in redis_cluster.nodes)
        assert 4 == mgets
    finally:
        close(tier)


def test_pickle_tier_refuses_foreign_pickles(redis_url: str, namespace: str) -> None:
    """A tier with PickleSerializer reads its own values and treats others' as misses."""
    ours = RedisTier.from_url(redis_url, serializer=PickleSerializer(secret=b"a" * 32))
    theirs = RedisTier.from_url(redis_url, serializer=PickleSerializer(secret=b"b" * 32))
    json_tier = RedisTier.from_url(redis_url)
    try:
        now = time.time()
        ours.set(f"{namespace}:mine", entry({1, 2}), now=now)
        theirs.set(f"{namespace}:theirs", entry({3}), now=now)
        json_tier.set(f"{namespace}:json", entry([3]), now=now)
        got = ours.get_many([f"{namespace}:mine", f"{namespace}:theirs", f"{namespace}:json"])
        assert [{1, 2}, MISS, MISS] == values(got)
        assert 2 == ours.decode_errors
        assert json_tier.get(f"{namespace}:mine") is None
    finally:
        for tier in (ours, theirs, json_tier):
            tier.close()


def test_construction_checks_the_client(redis_url: str) -> None:
    """Wrong client kinds and str-decoding clients are refused with the fix in the message."""
    with pytest.raises(ConfigurationError, match="AsyncRedisTier"):
        RedisTier(redis.asyncio.Redis.from_url(redis_url))
    with pytest.raises(ConfigurationError, match="use RedisTier"):
        AsyncRedisTier(redis.Redis.from_url(redis_url))
    with pytest.raises(ConfigurationError, match="decode_responses=False"):
        RedisTier(redis.Redis.from_url(redis_url, decode_responses=True))
    with pytest.raises(ConfigurationError, match="socket_timeout"):
        RedisTier.from_url(redis_url, socket_timeout=0)
    with pytest.raises(ConfigurationError, match="redis://"):
        RedisTier.from_url("http://example.invalid/")
    with pytest.raises(ConfigurationError, match="serializer"):
        RedisTier.from_url(redis_url, serializer=object())  # type: ignore[arg-type]


def test_tier_from_a_client_you_built(redis_url: str, namespace: str) -> None:
    """RedisTier(client) uses the given client as is."""
    client = redis.Redis.from_url(redis_url)
    tier = RedisTier(client, name="l2")
    tier.set(f"{namespace}:c", entry(5), now=time.time())
    assert [5] == values([tier.get(f"{namespace}:c")])
    assert b"pP\x01\x01" == client.get(f"{namespace}:c")[:4]
    assert tier.client is client
    assert "l2" == tier.name
    assert "RedisTier(name='l2', standalone" in repr(tier)
    tier.close()


def test_unreachable_cluster_is_a_backend_error() -> None:
    """Building a cluster tier needs the slots map: an unreachable cluster is BackendError."""
    server = RedisServer()  # never started: its port refuses connections
    with pytest.raises(BackendError):
        RedisTier.from_url(server.url, cluster=True)
    server.stop()


def test_error_reply_does_not_open_the_circuit(redis_url: str, namespace: str) -> None:
    """A WRONGTYPE reply is a BackendError but proves the server alive: the circuit stays closed."""
    raw = redis.Redis.from_url(redis_url)
    raw.rpush(f"{namespace}:list", b"x")
    tier = RedisTier.from_url(redis_url, failure_threshold=1)
    for _ in range(3):
        with pytest.raises(BackendError, match="WRONGTYPE") as info:
            tier.incr(f"{namespace}:list")
        assert isinstance(info.value.__cause__, redis.exceptions.ResponseError)
    assert "closed" == tier.circuit_state
    assert 3 == tier.errors
    tier.close()
    raw.close()


def test_killed_server_opens_the_circuit_and_restart_closes_it(
    kind: str, redis_server_factory: Callable[[], RedisServer]
) -> None:
    """Kill, then restart: the circuit opens at the threshold and a probe closes it.

    BackendError first, CircuitOpenError once open; after the restart and the
    cool-down one probe reaches the server and closes the circuit by itself.
    """
    server = redis_server_factory()
    clock = FakeClock()
    tier = build(kind, server.url, cluster=False, clock=clock, failure_threshold=3, cooldown=5.0)
    try:
        tier.set("k", entry(1), now=time.time())
        server.kill()
        for _ in range(3):
            with pytest.raises(BackendError) as info:
                tier.get("k")
            assert not isinstance(info.value, CircuitOpenError)
            assert isinstance(info.value.__cause__, (redis.exceptions.RedisError, OSError))
        assert "open" == tier.circuit_state
        with pytest.raises(CircuitOpenError, match="circuit open"):
            tier.get("k")
        with pytest.raises(CircuitOpenError):
            tier.set_many({"a": entry(1)}, now=time.time())
        assert 5 == tier.errors
        server.start()
        with pytest.raises(CircuitOpenError):
            tier.get("k")  # still cooling down: no call reaches the server
        clock.now += 5.0
        assert tier.get("k") is None  # the probe: the restarted server is empty
        assert "closed" == tier.circuit_state
        tier.set("k", entry(2), now=time.time())
        assert [2] == values([tier.get("k")])
    finally:
        close(tier)


def test_paused_server_times_out_instead_of_hanging(
    kind: str, redis_server_factory: Callable[[], RedisServer]
) -> None:
    """SIGSTOP: the call fails with a timeout instead of hanging; the circuit opens at once.

    The first call is bounded by socket_timeout (the benchmark measures it); one
    timeout opens the circuit, below the failure threshold; after SIGCONT and
    the cool-down the probe closes it.
    """
    server = redis_server_factory()
    clock = FakeClock()
    tier = build(
        kind, server.url, cluster=False, clock=clock, failure_threshold=2, socket_timeout=0.1
    )
    try:
        tier.set("k", entry(1), now=time.time())
        server.pause()
        with pytest.raises(BackendError) as info:
            tier.get("k")
        assert isinstance(info.value.__cause__, (redis.exceptions.TimeoutError, TimeoutError))
        assert "open" == tier.circuit_state
        with pytest.raises(CircuitOpenError):
            tier.get("k")
        server.resume()
        clock.now += 3.0
        assert [1] == values([tier.get("k")])
        assert "closed" == tier.circuit_state
    finally:
        server.resume()
        close(tier)


def test_a_timed_out_reply_is_never_read_by_the_next_command(
    kind: str, redis_server_factory: Callable[[], RedisServer]
) -> None:
    """A read that timed out leaves no reply behind for the next command on its connection.

    The tier built by ``from_url`` keeps idle connections of its own: the one
    whose read timed out (the server paused) is closed, never put back, so
    ``b``'s read after the pause gets ``b``, not ``a``'s late reply.
    """
    server = redis_server_factory()
    clock = FakeClock()
    tier = build(kind, server.url, cluster=False, clock=clock, socket_timeout=0.1)
    try:
        tier.set("a", entry("A"), now=time.time())
        tier.set("b", entry("B"), now=time.time())
        server.pause()
        with pytest.raises(BackendError):
            tier.get("a")
        server.resume()
        clock.now += 3.0  # past the cool-down: the probe goes through
        assert ["B", "A"] == values([tier.get("b"), tier.get("a")])
        assert ["B"] == values([tier.get("b")])
    finally:
        server.resume()
        close(tier)


def test_close_closes_the_connections_the_tier_keeps(kind: str, redis_url: str) -> None:
    """After ``close()`` the server sees none of the tier's connections (the raw client's only)."""
    raw = redis.Redis.from_url(redis_url)
    before = len(raw.client_list())
    tier = build(kind, redis_url, cluster=False)
    tier.set("close:k", entry(1), now=time.time())
    assert [1] == values([tier.get("close:k")])
    assert len(raw.client_list()) > before
    close(tier)
    for _ in range(100):  # bounded: the server notices a closed socket at once, or nearly
        if before == len(raw.client_list()):
            break
        time.sleep(0.01)
    assert before == len(raw.client_list())
    raw.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_never_uses_the_parents_connections(redis_url: str, namespace: str) -> None:
    """A tier used before fork: the child's commands go on connections it made itself.

    Two processes writing on one socket would read each other's replies. The
    child checks that every connection it keeps was made in the child; the
    parent's connection still answers afterwards.
    """
    tier = RedisTier.from_url(redis_url)
    tier.set(f"{namespace}:k", entry("parent"), now=time.time())
    assert ["parent"] == values([tier.get(f"{namespace}:k")])
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            os.close(read_end)
            ok = ["parent"] == values([tier.get(f"{namespace}:k")])
            tier.set(f"{namespace}:child", entry("child"), now=time.time())
            own = tier._own  # the connections the tier keeps: what this test is about
            ok = ok and own is not None and all(c.pid == os.getpid() for c in own._idle)
            os.write(write_end, b"1" if ok else b"0")
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    assert 0 == os.waitstatus_to_exitcode(status)
    assert b"1" == os.read(read_end, 1)
    os.close(read_end)
    assert ["child", "parent"] == values(
        [tier.get(f"{namespace}:child"), tier.get(f"{namespace}:k")]
    )
    assert 0 == tier.errors
    tier.close()


def test_async_cluster_tier_survives_concurrent_first_calls(redis_cluster: RedisCluster) -> None:
    """Many tasks hitting a fresh asyncio cluster tier at once all get answers.

    redis-py's asyncio cluster client discovers the cluster lazily and its
    concurrent first commands race in that discovery (connections closed under
    each other); the tier discovers once, under a lock, before its first call.
    """

    async def scenario() -> list[object]:
        # Wide timeouts: the race is under test, not a busy runner's latency.
        tier = AsyncRedisTier.from_url(
            redis_cluster.url, cluster=True, socket_timeout=2.0, connect_timeout=2.0
        )
        try:
            return await asyncio.gather(
                *(tier.get(f"fresh-client-{i}") for i in range(30)), return_exceptions=True
            )
        finally:
            await tier.close()

    for _ in range(3):
        assert [None] * 30 == asyncio.run(scenario())
