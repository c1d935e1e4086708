"""The test harness talks to real servers: prove it before anything relies on it."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from perfprim.testing import RedisCluster, RedisServer, RedisServerError, free_port

pytestmark = pytest.mark.redis


def test_session_server_answers(redis_url: str) -> None:
    """The session server (or REDIS_URL) answers a real round trip."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(redis_url)
    try:
        client.set("perfprim-harness-probe", b"v", ex=5)
        assert client.get("perfprim-harness-probe") == b"v"
    finally:
        client.close()


def test_kill_makes_server_unreachable_and_restart_brings_it_back(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    """kill() stops answering at once; restart() answers again on the same port, empty."""
    server = redis_server_factory()
    assert server.command("SET", "k", "v") == b"OK"
    port = server.port
    server.kill()
    assert not server.ping(timeout=0.2)
    with pytest.raises(OSError):
        server.command("PING", timeout=0.2)
    server.restart()
    assert port == server.port
    assert server.ping()
    assert server.command("GET", "k") is None


def test_pause_accepts_but_never_answers(redis_server_factory: Callable[[], RedisServer]) -> None:
    """A paused (SIGSTOP) server accepts TCP connections but never replies, like a hung one."""
    server = redis_server_factory()
    server.pause()
    try:
        with socket.create_connection((server.host, server.port), timeout=1.0) as sock:
            sock.settimeout(0.2)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            with pytest.raises(TimeoutError):
                sock.recv(16)
    finally:
        server.resume()
    assert server.ping()


def test_cluster_is_healthy_and_routes_to_all_masters(redis_cluster: RedisCluster) -> None:
    """The cluster reports cluster_state:ok and keys land on all three masters."""
    redis = pytest.importorskip("redis")
    assert len(redis_cluster.nodes) == 3
    for node in redis_cluster.nodes:
        assert b"cluster_state:ok" in RedisCluster.cluster_info(node)
    client = redis.RedisCluster(host=redis_cluster.host, port=redis_cluster.ports[0])
    try:
        owners = set()
        for i in range(64):
            key = f"perfprim-harness-{i}"
            client.set(key, str(i))
            assert client.get(key) == str(i).encode()
            owners.add(client.get_node_from_key(key).port)
        assert set(redis_cluster.ports) == owners
    finally:
        client.close()


def test_free_port_is_bindable() -> None:
    """free_port returns a port that can be bound, with its cluster bus port free too."""
    port = free_port(cluster_bus=True)
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", port))
        b.bind(("127.0.0.1", port + 10000))


def test_missing_executable_is_a_clear_error() -> None:
    """Starting a server whose executable is missing says what to install."""
    server = RedisServer(executable="redis-server-that-does-not-exist")
    with pytest.raises(RedisServerError, match="apt-get install redis-server"):
        server.start()
    server.stop()
