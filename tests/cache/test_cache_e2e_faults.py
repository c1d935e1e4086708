"""Redis faults through the cache, against throwaway servers the tests kill, pause and restart.

``TieredCache(MemoryTier, RedisTier)`` and ``AsyncTieredCache(MemoryTier,
AsyncRedisTier)`` (the ``kind`` fixture), each with its real invalidation bus.
The breaker runs on an injected monotonic clock, so the cool-down passes when
the test says so; the assertions are on values, counters and circuit states,
never on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis

from perfprim.cache import AsyncRedisTier, MemoryTier, RedisTier
from perfprim.exceptions import BackendError, CircuitOpenError
from perfprim.testing import RedisServer
from tests.cache.conformance import FakeClock
from tests.cache.e2e_support import WatchedBus
from tests.cache.helpers import Driver, build

pytestmark = pytest.mark.redis

COOLDOWN = 5.0
THRESHOLD = 3


class BreakerClock:
    """The breaker's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Loads:
    """Loaders returning ``f"{key}@{n}"`` that count their calls per key."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.calls: dict[str, int] = {}

    def __call__(self, key: str) -> Callable[[], Any]:
        def load() -> str:
            self.calls[key] = self.calls.get(key, 0) + 1
            return f"{key}@{self.calls[key]}"

        return self.driver.loader(load)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """TieredCache over RedisTier, or AsyncTieredCache over AsyncRedisTier."""
    return str(request.param)


@pytest.fixture
def server(redis_server_factory: Callable[[], RedisServer]) -> RedisServer:
    """A throwaway server this test may kill, pause and restart."""
    return redis_server_factory()


@pytest.fixture
def breaker_clock() -> BreakerClock:
    """The injected breaker clock."""
    return BreakerClock()


@pytest.fixture
def make_cache(
    kind: str, server: RedisServer, breaker_clock: BreakerClock, namespace: str
) -> Iterator[Callable[..., Driver]]:
    """Build caches of ``kind`` on ``server``, each with its tier's real invalidation bus.

    Each build waits until the bus's first subscription has flushed L1 and
    forgotten the generations (else that flush would land at a random point
    of the test). The buses are closed after the test; the caches by the test.
    """
    buses: list[WatchedBus] = []

    def make(**options: Any) -> Driver:
        tier_class: Any = RedisTier if kind == "sync" else AsyncRedisTier
        tier = tier_class.from_url(
            server.url,
            clock=breaker_clock,
            failure_threshold=THRESHOLD,
            cooldown=COOLDOWN,
            socket_timeout=0.1,
            connect_timeout=0.1,
        )
        buses.append(WatchedBus(tier.invalidation_bus()))
        driver = build(
            kind,
            FakeClock(),
            l1=MemoryTier(maxsize=100, ttl=60.0),
            l2=tier,
            namespace=namespace,
            invalidation=buses[-1],
            **options,
        )
        assert buses[-1].wait_flushes(1)
        return driver

    yield make
    server.resume()
    for bus in buses:
        bus.close()


@pytest.fixture
async def cache(make_cache: Callable[..., Driver], server: RedisServer) -> AsyncIterator[Driver]:
    """The default cache: backend errors are swallowed."""
    driver = make_cache()
    yield driver
    server.resume()
    await driver("close")


@pytest.fixture
def raw(server: RedisServer) -> Any:
    """A plain redis-py client on the server."""
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()


def redis_stats(driver: Driver) -> Any:
    """The L2's TierStats."""
    return driver.cache.stats().tiers[1]


async def test_killed_server_degrades_to_l1_and_loader_then_recovers(
    cache: Driver, server: RedisServer, breaker_clock: BreakerClock, raw: Any, namespace: str
) -> None:
    """Kill: values keep coming from L1 and the loader, the circuit opens; restart: it closes."""
    loads = Loads(cache)
    assert "hot@1" == await cache("get_or_load", "hot", loads("hot"))
    server.kill()
    for i in range(5):
        assert f"cold{i}@1" == await cache("get_or_load", f"cold{i}", loads(f"cold{i}"))
    assert "hot@1" == await cache("get_or_load", "hot", loads("hot"))  # L1, no load
    assert 1 == loads.calls["hot"]
    stats = redis_stats(cache)
    assert "open" == stats.circuit_state
    assert THRESHOLD <= stats.errors
    assert 6 == cache.cache.stats().loads
    server.start()
    breaker_clock.now += COOLDOWN
    assert "new@1" == await cache("get_or_load", "new", loads("new"))
    assert "closed" == redis_stats(cache).circuit_state
    assert raw.get(f"{namespace}:0:{{new}}")[:2] == b"pP"  # written to the restarted server
    cache.l1.clear()
    assert "new@1" == await cache("get_or_load", "new", loads("new"))  # an L2 hit
    assert 1 == loads.calls["new"]


async def test_open_circuit_sends_nothing_to_the_server(
    cache: Driver, server: RedisServer, breaker_clock: BreakerClock
) -> None:
    """Once open, calls fail at once: the errors counted are CircuitOpenError, no new attempt."""
    loads = Loads(cache)
    server.kill()
    for i in range(3):
        await cache("get_or_load", f"k{i}", loads(f"k{i}"))
    tier = cache.l2
    assert "open" == tier.circuit_state
    failures = tier.breaker.consecutive_failures
    for i in range(20):
        assert f"x{i}@1" == await cache("get_or_load", f"x{i}", loads(f"x{i}"))
    assert failures == tier.breaker.consecutive_failures  # no call reached the driver
    assert "open" == tier.circuit_state


async def test_paused_server_degrades_then_recovers(
    cache: Driver, server: RedisServer, breaker_clock: BreakerClock
) -> None:
    """SIGSTOP (hung server): timeouts, the circuit opens, values still correct; SIGCONT heals."""
    loads = Loads(cache)
    assert "hot@1" == await cache("get_or_load", "hot", loads("hot"))
    server.pause()
    for i in range(4):
        assert f"p{i}@1" == await cache("get_or_load", f"p{i}", loads(f"p{i}"))
    assert "hot@1" == await cache("get", "hot")
    assert "open" == redis_stats(cache).circuit_state
    server.resume()
    breaker_clock.now += COOLDOWN
    assert "back@1" == await cache("get_or_load", "back", loads("back"))
    assert "closed" == redis_stats(cache).circuit_state
    cache.l1.clear()
    assert "hot@1" == await cache("get", "hot")  # L2 survived the pause
    assert 1 == loads.calls["hot"]


async def test_foreign_bytes_in_the_value_key_are_a_counted_miss(
    cache: Driver, raw: Any, namespace: str
) -> None:
    """Garbage under the value key: the loader runs, decode_errors counts it, the circuit stays."""
    loads = Loads(cache)
    full_key = f"{namespace}:0:{{k}}"
    await cache("get", "warm-up")  # reads the generation counter
    for garbage in (b"written by someone else", b"pP\x01\x01short", b"pP\x01\x02" + b"\0" * 40):
        raw.set(full_key, garbage)
        cache.l1.clear()
        value = await cache("get_or_load", "k", loads("k"))
        assert f"k@{loads.calls['k']}" == value
    stats = redis_stats(cache)
    assert (3, 0, "closed") == (stats.decode_errors, stats.errors, stats.circuit_state)
    assert 3 == loads.calls["k"]
    assert b"pP\x01\x01" == raw.get(full_key)[:4]  # the loader's value replaced the garbage
    cache.l1.clear()
    assert "k@3" == await cache("get_or_load", "k", loads("k"))
    assert 3 == loads.calls["k"]


async def test_raise_on_backend_error(
    make_cache: Callable[..., Driver], server: RedisServer, breaker_clock: BreakerClock
) -> None:
    """raise_on_backend_error=True: BackendError reaches the caller, then CircuitOpenError."""
    cache = make_cache(raise_on_backend_error=True)
    try:
        loads = Loads(cache)
        assert "hot@1" == await cache("get_or_load", "hot", loads("hot"))
        server.kill()
        for i in range(THRESHOLD):
            with pytest.raises(BackendError) as info:
                await cache("get_or_load", f"k{i}", loads(f"k{i}"))
            assert not isinstance(info.value, CircuitOpenError)
        with pytest.raises(CircuitOpenError):
            await cache("get_or_load", "k9", loads("k9"))
        assert "hot@1" == await cache("get_or_load", "hot", loads("hot"))  # L1 needs no Redis
        server.start()
        breaker_clock.now += COOLDOWN
        assert "later@1" == await cache("get_or_load", "later", loads("later"))
        assert "closed" == redis_stats(cache).circuit_state
    finally:
        await cache("close")


async def test_a_load_after_a_failed_read_does_not_write_that_tier(
    cache: Driver, server: RedisServer, breaker_clock: BreakerClock
) -> None:
    """Hung server: a miss costs one timeout (the GET), not two (GET and SET).

    The load's value goes to L1 only; the tier that just failed the read is
    not written in the same call, and the timeout opened the circuit at once.
    Once the probe succeeds, loads write the tier again.
    """
    loads = Loads(cache)
    await cache("get", "warm-up")  # reads the generation counter while the server answers
    server.pause()
    assert "a@1" == await cache("get_or_load", "a", loads("a"))
    assert 1 == cache.l2.errors  # the GET timed out; no SET was attempted
    assert "open" == redis_stats(cache).circuit_state  # one timeout is enough to open
    server.resume()
    breaker_clock.now += COOLDOWN
    assert "b@1" == await cache("get_or_load", "b", loads("b"))
    cache.l1.clear()
    assert "b@1" == await cache("get_or_load", "b", loads("b"))  # written to L2 this time
    assert 1 == cache.l2.errors


@pytest.mark.parametrize("write", ["delete", "set", "invalidate_tags", "clear"])
async def test_a_write_during_an_outage_is_not_forgotten(
    make_cache: Callable[..., Driver],
    server: RedisServer,
    breaker_clock: BreakerClock,
    write: str,
) -> None:
    """Bug: Redis hung, the app updates its database and writes the cache, Redis returns.

    The open circuit refuses the write. Before the fix the cache only logged
    it: once Redis answered again, the old value came back from Redis here
    and in every other process, until its Redis TTL. Now the write is
    remembered and applied before this cache reads Redis again; another
    cache (another process, no L1 copy) never gets the old value either.
    """
    writer, other = make_cache(), make_cache()
    loads = Loads(writer)
    tags = ["user:1"] if write == "invalidate_tags" else None
    assert "k@1" == await writer("get_or_load", "k", loads("k"), tags=tags)
    server.pause()
    assert "x@1" == await writer("get_or_load", "x", loads("x"))  # a timeout opens the circuit
    assert "open" == redis_stats(writer).circuit_state
    if write == "delete":
        await writer("delete", "k")
    elif write == "set":
        await writer("set", "k", "new")
    elif write == "invalidate_tags":
        await writer("invalidate_tags", "user:1")
    else:
        await writer("clear")
    assert 1 <= writer.cache.stats().pending_repairs
    server.resume()
    breaker_clock.now += COOLDOWN
    expected = "new" if write == "set" else None
    assert expected == await writer("get", "k")  # L1 ("new") or Redis, after the repair
    assert None is await writer("get", "probe")  # a read of Redis: the repair ran before it
    assert 0 == writer.cache.stats().pending_repairs
    other.l1.clear()  # another process without a copy of its own reads Redis
    assert None is await other("get", "k")
    reloaded = await writer("get_or_load", "k", loads("k"), tags=tags)
    assert ("new" if write == "set" else "k@2") == reloaded
    await writer("close")
    await other("close")


async def test_pending_writes_are_applied_on_close(
    make_cache: Callable[..., Driver], server: RedisServer, breaker_clock: BreakerClock
) -> None:
    """A cache closed after the outage ended still applies what it could not write before."""
    writer, other = make_cache(), make_cache()
    loads = Loads(writer)
    await writer("get_or_load", "k", loads("k"))
    server.pause()
    await writer("get_or_load", "x", loads("x"))
    await writer("delete", "k")
    server.resume()
    breaker_clock.now += COOLDOWN
    await writer("close")
    other.l1.clear()
    assert None is await other("get", "k")
    await other("close")


async def test_a_restart_costs_no_tier_error(
    kind: str, redis_server_factory: Callable[[], RedisServer], namespace: str
) -> None:
    """Bug: after a Redis restart the asyncio tier failed on its stale pooled connections.

    (38 tier errors in the first 20 calls were seen, and values not written;
    the sync tier had none.) A call that meets a dead pooled connection is
    now retried once on a new one: no error, every value written.
    """
    server = redis_server_factory()
    tier_class: Any = RedisTier if kind == "sync" else AsyncRedisTier
    tier = tier_class.from_url(server.url)
    drv = build(kind, FakeClock(), l1=MemoryTier(maxsize=100), l2=tier, namespace=namespace)
    loads = Loads(drv)
    if kind == "async":
        await asyncio.gather(*(drv("get_or_load", f"w{i}", loads(f"w{i}")) for i in range(10)))
    else:
        for i in range(10):
            await drv("get_or_load", f"w{i}", loads(f"w{i}"))
    server.restart()
    if kind == "async":
        await asyncio.gather(*(drv("get_or_load", f"k{i}", loads(f"k{i}")) for i in range(20)))
    else:
        for i in range(20):
            await drv("get_or_load", f"k{i}", loads(f"k{i}"))
    assert 0 == redis_stats(drv).errors
    drv.l1.clear()
    got = [await drv("get", f"k{i}") for i in range(20)]
    assert [f"k{i}@1" for i in range(20)] == got  # all 20 written to the restarted server
    await drv("close")


async def test_an_idle_writer_repairs_in_the_background(
    make_cache: Callable[..., Driver], server: RedisServer, breaker_clock: BreakerClock
) -> None:
    """The writer of a write made during an outage applies it once Redis answers, unasked.

    Nobody reads through the writer after the outage; another process must
    still stop getting the old value from Redis (bounded wait).
    """
    writer, other = make_cache(), make_cache()
    loads = Loads(writer)
    await writer("get_or_load", "k", loads("k"))
    server.pause()
    await writer("get_or_load", "x", loads("x"))  # opens the circuit
    await writer("delete", "k")
    assert 1 == writer.cache.stats().pending_repairs
    server.resume()
    breaker_clock.now += COOLDOWN
    for _ in range(1000):  # bounded: the background job retries every <= 2 s
        if 0 == writer.cache.stats().pending_repairs:
            break
        await asyncio.sleep(0.01)
    assert 0 == writer.cache.stats().pending_repairs
    other.l1.clear()
    assert None is await other("get", "k")
    await writer("close")
    await other("close")
