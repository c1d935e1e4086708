"""Shared fixtures: real Redis servers and a real Redis Cluster.

How the tests find Redis
------------------------
- ``redis_url``: the ``REDIS_URL`` environment variable if set (the tests then
  only touch keys under a unique per-test namespace and never flush);
  otherwise a private ``redis-server`` started on a free loopback port for the
  whole session (no persistence) and torn down afterwards.
- ``redis_server_factory``: starts throwaway servers that a test may kill,
  pause (SIGSTOP: a hung server) and restart; each is stopped after the test.
- ``redis_cluster``: a real three-master Redis Cluster on free loopback ports,
  for the session.
- ``namespace``: a unique key prefix for the test, so tests never collide.

When ``CI`` is set, a missing ``redis-server`` fails the test: a skip there
would hide a broken CI machine. Locally it skips with a message. Beyond
Redis, with ``CI`` set *every* skip is turned into a failure (see
:func:`pytest_runtest_makereport`): the suite has no test that may quietly
not run there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Generator, Iterator

import pytest

from perfprim.testing import RedisCluster, RedisServer


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With ``CI`` set, report a skipped test as failed: CI must run everything."""
    report = yield
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which must run every test: {report.longrepr}"
    return report


def _require_redis_server() -> None:
    if RedisServer.available():
        return
    message = "redis-server is not on PATH (apt-get install redis-server, or set REDIS_URL)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis: ``REDIS_URL`` or a private server for the session."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    _require_redis_server()
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[[], RedisServer]]:
    """Factory of throwaway servers for fault injection; all stopped after the test."""
    _require_redis_server()
    servers: list[RedisServer] = []

    def start() -> RedisServer:
        server = RedisServer()
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real three-master Redis Cluster for the session."""
    _require_redis_server()
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture
def namespace() -> str:
    """A key prefix unique to this test."""
    return f"t-{uuid.uuid4().hex[:12]}"
