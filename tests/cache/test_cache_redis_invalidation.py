"""RedisInvalidationBus across real processes, and its recovery after a server restart."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import redis.asyncio
import redis.cluster

from perfprim.cache import AsyncRedisTier, RedisTier, _invalidation
from perfprim.cache._invalidation import RedisInvalidationBus, decode_message, encode_message
from perfprim.cache.advanced import InvalidationBus
from perfprim.exceptions import ConfigurationError
from perfprim.testing import RedisCluster, RedisServer

pytestmark = pytest.mark.redis

WAIT = 10.0  # generous upper bound for any event; never a timing assertion

CHILD = r"""
import json, sys, threading
from perfprim.cache._invalidation import RedisInvalidationBus

lock = threading.Lock()  # the listener thread and the main thread both write lines

def say(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

bus = RedisInvalidationBus(sys.argv[1], channel=sys.argv[2])
bus.start(lambda keys: say({"keys": list(keys)}), lambda: say({"flush": True}))
bus.wait_subscribed(10)
say({"ready": True})
for line in sys.stdin:
    command = json.loads(line)
    if command.get("quit"):
        break
    bus.publish(command["publish"])
bus.close()
"""


class Recorder:
    """Collects what a bus delivers, with events to wait on."""

    def __init__(self) -> None:
        self.keys: queue.Queue[list[str]] = queue.Queue()
        self.flushes = 0
        self.flushed = threading.Condition()

    def on_keys(self, keys: Sequence[str]) -> None:
        self.keys.put(list(keys))

    def on_flush(self) -> None:
        with self.flushed:
            self.flushes += 1
            self.flushed.notify_all()

    def wait_flushes(self, count: int) -> bool:
        with self.flushed:
            return self.flushed.wait_for(lambda: self.flushes >= count, timeout=WAIT)


class Child:
    """A second Python process running a bus; speaks JSON lines."""

    def __init__(self, url: str, channel: str) -> None:
        src = str(Path(__file__).resolve().parents[2] / "src")
        env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, channel],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[dict[str, object]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def next(self, kind: str) -> dict[str, object]:
        """The next line holding ``kind`` (skipping others), within WAIT seconds."""
        for _ in range(100):
            line = self.lines.get(timeout=WAIT)
            if kind in line:
                return line
        raise AssertionError(f"no {kind!r} line")  # pragma: no cover

    def send(self, command: dict[str, object]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.send({"quit": True})
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def bus_factory() -> Iterator[Callable[..., RedisInvalidationBus]]:
    """Builds buses and closes them all after the test."""
    buses: list[RedisInvalidationBus] = []

    def make(source: object, **options: object) -> RedisInvalidationBus:
        bus = RedisInvalidationBus(source, **options)  # type: ignore[arg-type]
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


def test_all_is_pinned() -> None:
    """The module exports exactly these names."""
    assert [
        "RedisInvalidationBus",
        "decode_message",
        "encode_message",
        "settings_from_async_client",
    ] == _invalidation.__all__


def test_messages_round_trip_and_foreign_ones_are_rejected() -> None:
    """Bus messages carry sender and keys; anything else decodes to None."""
    assert ("me", []) == decode_message(encode_message("me", []))
    assert ("me", ["a:1", "é"]) == decode_message(encode_message("me", ("a:1", "é")))
    for foreign in (
        b"",
        b"[]",
        b'{"s": "x"}',
        b'{"v": 2, "s": "x", "k": []}',
        b'{"v":1,"s":1,"k":[]}',
    ):
        assert decode_message(foreign) is None


def test_bus_implements_the_protocol(
    redis_url: str, bus_factory: Callable[..., RedisInvalidationBus]
) -> None:
    """RedisInvalidationBus is an InvalidationBus."""
    assert isinstance(bus_factory(redis_url), InvalidationBus)


def test_bad_arguments_fail_fast(redis_url: str) -> None:
    """Bad sources and options raise ConfigurationError saying what is expected."""
    with pytest.raises(ConfigurationError, match="redis:// URL"):
        RedisInvalidationBus(42)
    with pytest.raises(ConfigurationError, match="channel"):
        RedisInvalidationBus(redis_url, channel="")
    with pytest.raises(ConfigurationError, match="max_pending_keys"):
        RedisInvalidationBus(redis_url, max_pending_keys=0)
    with pytest.raises(ConfigurationError, match="health_check_interval"):
        RedisInvalidationBus(redis_url, health_check_interval=0)


def test_close_takes_a_duration(
    redis_url: str, bus_factory: Callable[..., RedisInvalidationBus]
) -> None:
    """close() takes float seconds or a timedelta; a bad timeout fails before stopping."""
    bus = bus_factory(redis_url)
    bus.start(lambda keys: None, lambda: None)
    with pytest.raises(ConfigurationError, match="timeout must be a positive, finite duration"):
        bus.close(-1.0)
    assert all(thread.is_alive() for thread in bus._threads)
    bus.close(timedelta(seconds=WAIT))
    assert not any(thread.is_alive() for thread in bus._threads)


def test_invalidation_reaches_another_process_and_not_the_sender(
    redis_url: str, namespace: str, bus_factory: Callable[..., RedisInvalidationBus]
) -> None:
    """Keys published here reach the other process; its keys reach us; nobody hears itself."""
    channel = f"{namespace}:bus"
    recorder = Recorder()
    bus = bus_factory(redis_url, channel=channel)
    bus.start(recorder.on_keys, recorder.on_flush)
    assert bus.wait_subscribed(WAIT)
    child = Child(redis_url, channel)
    try:
        child.next("ready")
        bus.publish([f"{namespace}:0:{{a}}", f"{namespace}:0:{{b}}"])
        assert {"keys": [f"{namespace}:0:{{a}}", f"{namespace}:0:{{b}}"]} == child.next("keys")
        child.send({"publish": ["from-child"]})
        # Our own message was published first on the same channel: had it come back,
        # it would be in the queue before the child's.
        assert ["from-child"] == recorder.keys.get(timeout=WAIT)
        child.send({"publish": []})
        assert recorder.wait_flushes(2)  # 1 on subscribe + the "flush all" message
        assert 2 == bus.received
    finally:
        child.stop()


def test_flush_on_reconnect_after_server_restart(
    redis_server_factory: Callable[[], RedisServer],
    bus_factory: Callable[..., RedisInvalidationBus],
) -> None:
    """Messages sent while the subscription was down are lost, so a reconnect flushes L1."""
    server = redis_server_factory()
    recorder = Recorder()
    bus = bus_factory(server.url, reconnect_min=0.01, reconnect_max=0.1)
    peer = bus_factory(server.url, reconnect_min=0.01, reconnect_max=0.1)
    bus.start(recorder.on_keys, recorder.on_flush)
    peer.start(lambda keys: None, lambda: None)
    assert recorder.wait_flushes(1)
    assert peer.wait_subscribed(WAIT)
    server.restart()
    assert recorder.wait_flushes(2)
    assert bus.subscriptions >= 2
    assert peer.wait_subscribed(WAIT)
    assert bus.wait_subscribed(WAIT)
    peer.publish(["after-restart"])
    assert ["after-restart"] == recorder.keys.get(timeout=WAIT)


def test_gap_is_flushed_even_when_redis_py_resubscribes_by_itself(
    redis_server_factory: Callable[[], RedisServer],
    bus_factory: Callable[..., RedisInvalidationBus],
) -> None:
    """A client with redis-py's default retries reconnects silently; the bus still flushes."""
    server = redis_server_factory()
    recorder = Recorder()
    client = redis.Redis.from_url(server.url)
    bus = bus_factory(client, reconnect_min=0.01, reconnect_max=0.05)
    bus.start(recorder.on_keys, recorder.on_flush)
    assert recorder.wait_flushes(1)
    server.restart()
    assert recorder.wait_flushes(2)
    bus.close()
    client.close()


def wait_until(condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` for at most WAIT seconds (a thread's state has no event to wait on)."""
    pause = threading.Event()
    for _ in range(int(WAIT / 0.02)):
        if condition():
            return True
        pause.wait(0.02)
    return condition()


def test_hung_subscription_is_replaced_and_flushes(
    redis_server_factory: Callable[[], RedisServer],
    bus_factory: Callable[..., RedisInvalidationBus],
) -> None:
    """A server that stops answering (SIGSTOP) is detected by PING; on its return L1 is flushed."""
    server = redis_server_factory()
    recorder = Recorder()
    bus = bus_factory(
        server.url, health_check_interval=0.05, reconnect_min=0.01, reconnect_max=0.05
    )
    bus.start(recorder.on_keys, recorder.on_flush)
    assert recorder.wait_flushes(1)
    server.pause()
    assert wait_until(lambda: not bus.subscribed)
    server.resume()
    assert recorder.wait_flushes(2)
    assert bus.wait_subscribed(WAIT)


def test_an_idle_healthy_subscription_is_kept(
    redis_url: str, bus_factory: Callable[..., RedisInvalidationBus]
) -> None:
    """PINGs answered in time keep the subscription: no reconnect, no extra flush."""
    recorder = Recorder()
    bus = bus_factory(redis_url, health_check_interval=0.1)
    bus.start(recorder.on_keys, recorder.on_flush)
    assert bus.wait_subscribed(WAIT)
    peer = bus_factory(redis_url)
    peer.start(lambda keys: None, lambda: None)
    for i in range(3):  # each round spans several health-check intervals
        peer.publish([f"k{i}"])
        assert [f"k{i}"] == recorder.keys.get(timeout=WAIT)
        threading.Event().wait(0.4)
    assert 1 == bus.subscriptions
    assert 1 == recorder.flushes


def test_publish_while_redis_is_down_is_delivered_after_it_returns(
    redis_server_factory: Callable[[], RedisServer],
    bus_factory: Callable[..., RedisInvalidationBus],
) -> None:
    """publish() queues while the server is paused; the sender delivers once it answers."""
    server = redis_server_factory()
    recorder = Recorder()
    listener = bus_factory(server.url)
    sender = bus_factory(server.url, reconnect_min=0.01, reconnect_max=0.05)
    listener.start(recorder.on_keys, recorder.on_flush)
    sender.start(lambda keys: None, lambda: None)
    assert listener.wait_subscribed(WAIT)
    assert sender.wait_subscribed(WAIT)
    server.pause()
    sender.publish(["k1"])
    sender.publish(["k2", "k1"])
    server.resume()
    delivered: set[str] = set()
    for _ in range(2):
        delivered.update(recorder.keys.get(timeout=WAIT))
        if {"k1", "k2"} <= delivered:
            break
    assert {"k1", "k2"} == delivered


def test_close_stops_the_threads(redis_url: str) -> None:
    """close() joins the listener and sender threads."""
    bus = RedisInvalidationBus(redis_url)
    bus.start(lambda keys: None, lambda: None)
    assert bus.wait_subscribed(WAIT)
    bus.close()
    assert [] == [t for t in threading.enumerate() if t.name.startswith("perfprim-bus")]
    bus.publish(["ignored after close"])
    with pytest.raises(ConfigurationError, match="once"):
        bus.start(lambda keys: None, lambda: None)


def test_backlog_collapses_to_flush_all(
    redis_server_factory: Callable[[], RedisServer],
    bus_factory: Callable[..., RedisInvalidationBus],
) -> None:
    """Past max_pending_keys the unsent keys become one 'flush all' message."""
    server = redis_server_factory()
    recorder = Recorder()
    listener = bus_factory(server.url)
    listener.start(recorder.on_keys, recorder.on_flush)
    assert recorder.wait_flushes(1)
    sender = bus_factory(server.url, max_pending_keys=3)
    sender.publish(["a", "b"])
    sender.publish(["c", "d"])  # queued before start: merged into one batch of 4 > 3
    sender.start(lambda keys: None, lambda: None)
    assert recorder.wait_flushes(2)
    sender.publish(["e"])
    assert ["e"] == recorder.keys.get(timeout=WAIT)


@pytest.mark.cluster
def test_bus_on_a_cluster(
    redis_cluster: RedisCluster, bus_factory: Callable[..., RedisInvalidationBus]
) -> None:
    """Classic PUBLISH is cluster-wide: two buses on a cluster hear each other."""
    recorder = Recorder()
    client = redis.cluster.RedisCluster.from_url(redis_cluster.url)
    one = bus_factory(redis_cluster.url, cluster=True, channel="c1")
    two = bus_factory(client, channel="c1")
    one.start(recorder.on_keys, recorder.on_flush)
    two.start(lambda keys: None, lambda: None)
    assert one.wait_subscribed(WAIT)
    assert two.wait_subscribed(WAIT)
    two.publish(["x", "y"])
    assert ["x", "y"] == recorder.keys.get(timeout=WAIT)
    two.close()
    client.close()


@pytest.mark.cluster
def test_async_cluster_tier_builds_a_bus(redis_cluster: RedisCluster, namespace: str) -> None:
    """An asyncio cluster tier (never used yet) builds a sync bus on one of its nodes."""
    import redis.asyncio.cluster

    channel = f"{namespace}:acluster"
    tier = AsyncRedisTier(redis.asyncio.cluster.RedisCluster.from_url(redis_cluster.url))
    recorder = Recorder()
    bus = tier.invalidation_bus(channel=channel)
    peer = RedisInvalidationBus(redis_cluster.url, cluster=True, channel=channel)
    try:
        bus.start(recorder.on_keys, recorder.on_flush)
        peer.start(lambda keys: None, lambda: None)
        assert bus.wait_subscribed(WAIT)
        assert peer.wait_subscribed(WAIT)
        peer.publish(["z"])
        assert ["z"] == recorder.keys.get(timeout=WAIT)
    finally:
        bus.close()
        peer.close()


def test_tiers_build_buses_on_their_connection(redis_url: str, namespace: str) -> None:
    """RedisTier and AsyncRedisTier (from URL or from a client) build working buses."""
    channel = f"{namespace}:tiers"
    recorder = Recorder()
    sync_tier = RedisTier(redis.Redis.from_url(redis_url))
    async_tier = AsyncRedisTier(redis.asyncio.Redis.from_url(redis_url))
    url_tier = AsyncRedisTier.from_url(redis_url)
    buses = [
        sync_tier.invalidation_bus(channel=channel),
        async_tier.invalidation_bus(channel=channel),
        url_tier.invalidation_bus(channel=channel),
        RedisTier.from_url(redis_url).invalidation_bus(channel=channel),
    ]
    try:
        buses[0].start(recorder.on_keys, recorder.on_flush)
        for bus in buses[1:]:
            bus.start(lambda keys: None, lambda: None)
        assert all(bus.wait_subscribed(WAIT) for bus in buses)
        for i, bus in enumerate(buses[1:]):
            bus.publish([f"k{i}"])
        got = {recorder.keys.get(timeout=WAIT)[0] for _ in range(3)}
        assert {"k0", "k1", "k2"} == got
    finally:
        for bus in buses:
            bus.close()
        sync_tier.close()
