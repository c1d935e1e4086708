"""A private redis-server for timing benchmarks, and the CPU it runs on.

On this 2-core VM a loopback round trip costs ~25 us when the client and
redis-server run on one CPU and ~100 us when they run on two (the idle CPU
has to be woken for every reply), and the scheduler moves them between the
two placements at will: a candidate of a comparison could be timed in one
placement and its anchor in the other, and the sync lock-miss ratio read
4.8x in one run of the same code that reads 2.2x pinned (`nox -s bench --
--check`, stop 20). So the server runs on one CPU, and every ``compare`` /
``compare_async`` timing while it is up runs on that CPU too (the autouse
fixture in ``conftest.py``): medians then repeat within a few percent, and
the client's own CPU cost - what perfprim is compared on - is not diluted by
wake-ups. Tests that start processes of their own are left unpinned.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from perfprim.testing import RedisServer

REDIS_CPUS: list[set[int]] = []
"""The CPU of each pinned server that is up (timings pin themselves to the last)."""


@contextlib.contextmanager
def pinned_redis_server() -> Iterator[RedisServer]:
    """Start a private redis-server on one CPU (where affinity can be set: Linux)."""
    with RedisServer() as server:
        setaffinity = getattr(os, "sched_setaffinity", None)
        if setaffinity is None or server.pid is None:
            yield server
            return
        cpu = {min(os.sched_getaffinity(0))}
        setaffinity(server.pid, cpu)
        REDIS_CPUS.append(cpu)
        try:
            yield server
        finally:
            REDIS_CPUS.remove(cpu)


@contextlib.contextmanager
def on_redis_cpu() -> Iterator[None]:
    """Run the block on the CPU of the pinned redis-server, if one is up."""
    if not REDIS_CPUS:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, REDIS_CPUS[-1])
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
