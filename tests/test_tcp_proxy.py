"""TcpProxy injects network faults between a real client and a real redis-server."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from perfprim.testing import RedisServer, RedisServerError, TcpProxy

pytestmark = pytest.mark.redis
redis = pytest.importorskip("redis")


def _client(proxy: TcpProxy, timeout: float = 5.0) -> object:
    # No retries: each test looks at what one attempt meets.
    no_retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
    return redis.Redis(host=proxy.host, port=proxy.port, socket_timeout=timeout, retry=no_retry)


def _round_trip(client: object) -> float:
    start = time.perf_counter()
    assert client.ping()  # type: ignore[attr-defined]
    return time.perf_counter() - start


def test_passes_commands_through(redis_server_factory: Callable[[], RedisServer]) -> None:
    """Through a healed proxy, commands reach the real server and replies come back."""
    server = redis_server_factory()
    with TcpProxy(server.port) as proxy:
        client = _client(proxy)
        client.set("k", b"v")  # type: ignore[attr-defined]
        assert b"v" == server.command("GET", "k")
        assert b"v" == client.get("k")  # type: ignore[attr-defined]
        assert 1 == proxy.connections
        client.close()  # type: ignore[attr-defined]


def test_delay_adds_about_twice_the_delay_per_round_trip(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    """A 0.3 s delay holds each direction: a PING takes >= 0.6 s, and less again after heal."""
    server = redis_server_factory()
    with TcpProxy(server.port) as proxy:
        client = _client(proxy)
        _round_trip(client)  # connect first
        proxy.set_delay(0.3)
        assert 0.6 <= _round_trip(client)
        proxy.heal()
        assert 0.3 > _round_trip(client)
        client.close()  # type: ignore[attr-defined]


def test_delay_does_not_serialise_pipelined_commands(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    """Fifty pipelined commands under a 0.2 s delay cost about one delayed round trip, not 50."""
    server = redis_server_factory()
    with TcpProxy(server.port) as proxy:
        client = _client(proxy)
        _round_trip(client)
        proxy.set_delay(0.2)
        pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
        for i in range(50):
            pipe.set(f"k{i}", i)
        start = time.perf_counter()
        assert [True] * 50 == pipe.execute()
        assert 0.4 <= time.perf_counter() - start < 5.0
        client.close()  # type: ignore[attr-defined]


def test_blackhole_times_out_and_heal_recovers(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    """In a black hole the client's own timeout fires; after heal a new connection works."""
    server = redis_server_factory()
    with TcpProxy(server.port) as proxy:
        client = _client(proxy, timeout=0.5)
        _round_trip(client)
        proxy.blackhole()
        with pytest.raises(redis.exceptions.TimeoutError):
            client.ping()  # type: ignore[attr-defined]
        proxy.heal()
        fresh = _client(proxy)
        assert fresh.ping()  # type: ignore[attr-defined]
        fresh.close()  # type: ignore[attr-defined]
        client.close()  # type: ignore[attr-defined]


def _ping_on(connection: object) -> object:
    connection.send_command("PING")  # type: ignore[attr-defined]
    return connection.read_response()  # type: ignore[attr-defined]


def test_reset_all_breaks_open_connections_only(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    """reset_all drops the open connection (an error on its next use); reconnecting works."""
    server = redis_server_factory()
    with TcpProxy(server.port) as proxy:
        raw = redis.Connection(host=proxy.host, port=proxy.port, socket_timeout=5.0)
        raw.connect()
        raw.send_command("PING")
        assert raw.read_response() in (b"PONG", "PONG", True)
        proxy.reset_all()
        with pytest.raises(redis.exceptions.ConnectionError):
            _ping_on(raw)
        raw.disconnect()
        client = _client(proxy)
        assert client.ping()  # type: ignore[attr-defined]
        client.close()  # type: ignore[attr-defined]


def test_refuse_then_heal(redis_server_factory: Callable[[], RedisServer]) -> None:
    """refuse() closes the listener (connection refused); heal() listens again on the port."""
    server = redis_server_factory()
    with TcpProxy(server.port) as proxy:
        proxy.refuse()
        client = _client(proxy, timeout=1.0)
        with pytest.raises(redis.exceptions.ConnectionError):
            client.ping()  # type: ignore[attr-defined]
        proxy.heal()
        assert client.ping()  # type: ignore[attr-defined]
        client.close()  # type: ignore[attr-defined]


def test_bad_delay_is_refused() -> None:
    """A negative or infinite delay is a clear error, not a hang."""
    proxy = TcpProxy(1)
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(RedisServerError, match="delay must be"):
            proxy.set_delay(bad)


def test_dead_target_closes_the_client_connection() -> None:
    """When the target refuses, the proxy closes the client's connection (no hang)."""
    from perfprim.testing import free_port

    with TcpProxy(free_port()) as proxy:
        client = _client(proxy, timeout=2.0)
        with pytest.raises(redis.exceptions.ConnectionError):
            client.ping()  # type: ignore[attr-defined]
        client.close()  # type: ignore[attr-defined]
