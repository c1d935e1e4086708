"""Throwaway Redis servers and clusters for tests and benchmarks.

Start a private ``redis-server`` (or a three-master Redis Cluster) on free
loopback ports, inject faults into it (kill, pause with SIGSTOP, restart), and
tear it down afterwards. perfprim's own test suite runs on these; your tests
can too. Needs the ``redis-server`` and ``redis-cli`` executables on ``PATH``
(Debian: ``apt-get install redis-server``); it does not need redis-py.

>>> from perfprim.testing import RedisServer
>>> RedisServer.available() in (True, False)
True
"""

from __future__ import annotations

from perfprim.testing._proxy import TcpProxy
from perfprim.testing._redis import (
    ClusterNode,
    RedisCluster,
    RedisServer,
    RedisServerError,
    free_port,
)

__all__ = [
    "ClusterNode",
    "RedisCluster",
    "RedisServer",
    "RedisServerError",
    "TcpProxy",
    "free_port",
]
