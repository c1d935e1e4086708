"""Cross-process invalidation through the cache: two real processes sharing one Redis.

Each process runs a cache of the same kind, ``TieredCache(MemoryTier, RedisTier)``
or ``AsyncTieredCache(MemoryTier, AsyncRedisTier)``, with a real
``RedisInvalidationBus``. The L1 TTL is 300 s, so when the other process
returns the new value within the poll bound (a few seconds at most, far below
that TTL), its stale L1 copy was removed by the bus and not by expiry.

The child process speaks JSON lines on stdin/stdout. Its ``fetch`` function
reads a "source of truth" key straight from Redis, so a stale L1 copy is
observable: the source changes, the child keeps answering the old value until
an invalidation reaches it.
"""

from __future__ import annotations

import inspect
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier, RedisTier, TieredCache
from perfprim.cache.advanced import Entry
from perfprim.testing import RedisServer
from tests.cache.e2e_support import WAIT, WatchedBus

pytestmark = pytest.mark.redis

POLLS = 1000  # a poll loop's bound in iterations (each is a round trip to the child)

CHILD = r"""
import asyncio, inspect, json, sys
import redis
from perfprim.cache import AsyncRedisTier, AsyncTieredCache, MemoryTier, RedisTier, TieredCache
from tests.cache.e2e_support import WatchedBus

url, namespace, kind = sys.argv[1:4]
raw = redis.Redis.from_url(url)
loop = asyncio.new_event_loop()

def run(result):
    return loop.run_until_complete(result) if inspect.isawaitable(result) else result

if kind == "sync":
    tier = RedisTier.from_url(url)
    bus = WatchedBus(tier.invalidation_bus())
    cache = TieredCache(MemoryTier(maxsize=1000, ttl=300.0), tier, ttl=300.0,
                        namespace=namespace, invalidation=bus)

    def fetch(x):
        return (raw.get(f"src:{namespace}:{x}") or b"").decode()
else:
    tier = AsyncRedisTier.from_url(url)
    bus = WatchedBus(tier.invalidation_bus())
    cache = AsyncTieredCache(MemoryTier(maxsize=1000, ttl=300.0), tier, ttl=300.0,
                             namespace=namespace, invalidation=bus)

    async def fetch(x):
        return (raw.get(f"src:{namespace}:{x}") or b"").decode()

fetch.__module__, fetch.__qualname__ = "e2e", "fetch"
fetch = cache.cached()(fetch)
bus.wait_flushes(1)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    if op == "quit":
        break
    if op == "get":
        out = {"value": run(cache.get(cmd["key"], "<miss>"))}
    elif op == "load":
        value = cmd["value"]
        if kind == "sync":
            loader = lambda: value
        else:
            async def loader():
                return value
        out = {"value": run(cache.get_or_load(cmd["key"], loader))}
    elif op == "tload":
        value = cmd["value"]
        if kind == "sync":
            loader = lambda: value
        else:
            async def loader():
                return value
        out = {"value": run(cache.get_or_load(cmd["key"], loader, tags=cmd["tags"]))}
    elif op == "invalidate_tags":
        run(cache.invalidate_tags(*cmd["tags"]))
        out = {}
    elif op == "set":
        run(cache.set(cmd["key"], cmd["value"]))
        out = {}
    elif op == "fetch":
        out = {"value": run(fetch(cmd["arg"]))}
    elif op == "bus":
        out = {"flushes": bus.flushes, "key_messages": bus.key_messages}
    print(json.dumps(out), flush=True)
run(cache.close())
bus.close()
raw.close()
"""


class Child:
    """A second process running a cache of ``kind``; one JSON request, one JSON reply."""

    def __init__(self, url: str, namespace: str, kind: str) -> None:
        root = Path(__file__).resolve().parents[2]
        path = os.pathsep.join([str(root / "src"), str(root), os.environ.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, namespace, kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": path},
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert {"ready": True} == self.lines.get(timeout=WAIT)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def ask(self, **command: Any) -> dict[str, Any]:
        """Send one command and return the reply."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.lines.get(timeout=WAIT)

    def value(self, **command: Any) -> Any:
        """The ``value`` of the reply to ``command``."""
        return self.ask(**command)["value"]

    def poll(self, expected: Any, **command: Any) -> tuple[bool, list[Any]]:
        """Repeat ``command`` until it answers ``expected`` (bounded in count and time).

        Returns:
            Whether it did, and the distinct answers seen on the way.
        """
        seen: list[Any] = []
        deadline = time.monotonic() + WAIT
        for _ in range(POLLS):
            got = self.value(**command)
            if got not in seen:
                seen.append(got)
            if got == expected:
                return True, seen
            if time.monotonic() > deadline:
                break
            time.sleep(0.005)  # a pause between polls, not the thing awaited
        return False, seen

    def stop(self) -> None:
        """Ask the child to quit and reap it."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.process.stdin.flush()
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class Parent:
    """This process's cache of ``kind``, its ``fetch`` function and a raw client."""

    def __init__(self, url: str, namespace: str, kind: str) -> None:
        self.kind = kind
        self.namespace = namespace
        self.raw = redis.Redis.from_url(url)
        raw = self.raw
        if kind == "sync":
            tier: Any = RedisTier.from_url(url)
            self.bus = WatchedBus(tier.invalidation_bus())
            self.cache: Any = TieredCache(
                MemoryTier(maxsize=1000, ttl=300.0),
                tier,
                ttl=300.0,
                namespace=namespace,
                invalidation=self.bus,
            )

            def fetch(x: int) -> str:
                return (raw.get(f"src:{namespace}:{x}") or b"").decode()

        else:
            tier = AsyncRedisTier.from_url(url)
            self.bus = WatchedBus(tier.invalidation_bus())
            self.cache = AsyncTieredCache(
                MemoryTier(maxsize=1000, ttl=300.0),
                tier,
                ttl=300.0,
                namespace=namespace,
                invalidation=self.bus,
            )

            async def fetch(x: int) -> str:  # type: ignore[misc]
                return (raw.get(f"src:{namespace}:{x}") or b"").decode()

        fetch.__module__, fetch.__qualname__ = "e2e", "fetch"
        self.fetch = self.cache.cached()(fetch)
        assert self.bus.wait_flushes(1)

    async def __call__(self, result: Any) -> Any:
        """Await ``result`` if the cache is async."""
        if inspect.isawaitable(result):
            return await result
        return result

    def source(self, x: int, value: str) -> None:
        """Change the source of truth behind ``fetch(x)`` (no invalidation)."""
        self.raw.set(f"src:{self.namespace}:{x}", value)

    async def close(self) -> None:
        await self(self.cache.close())
        self.bus.close()
        self.raw.close()


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Both processes run TieredCache, or both AsyncTieredCache."""
    return str(request.param)


@pytest.fixture
async def pair(kind: str, redis_url: str, namespace: str) -> AsyncIterator[tuple[Parent, Child]]:
    """A cache here and one in a child process, on the same Redis and namespace."""
    parent = Parent(redis_url, namespace, kind)
    child = Child(redis_url, namespace, kind)
    yield parent, child
    child.stop()
    await parent.close()


async def test_set_replaces_the_other_process_l1_copy(pair: tuple[Parent, Child]) -> None:
    """set() here: the child's L1 copy is dropped and it reads the new value from L2."""
    parent, child = pair
    assert "old" == child.value(op="load", key="k", value="old")
    assert "old" == child.value(op="get", key="k")  # from its L1 (ttl 300 s)
    await parent(parent.cache.set("k", "new"))
    ok, seen = child.poll("new", op="get", key="k")
    assert ok, seen
    assert set(seen) <= {"old", "new"}  # never a miss or anything else on the way
    assert 1 <= child.ask(op="bus")["key_messages"]


async def test_delete_reaches_the_other_process(pair: tuple[Parent, Child]) -> None:
    """delete() here: the child stops serving its L1 copy (a miss everywhere)."""
    parent, child = pair
    assert "v" == child.value(op="load", key="d", value="v")
    await parent(parent.cache.delete("d"))
    ok, seen = child.poll("<miss>", op="get", key="d")
    assert ok, seen


async def test_cached_invalidate_reaches_the_other_process(pair: tuple[Parent, Child]) -> None:
    """fetch.invalidate(1) here: the child recomputes fetch(1) from the changed source."""
    parent, child = pair
    parent.source(1, "one")
    parent.source(2, "two")
    assert "one" == child.value(op="fetch", arg=1)
    assert "two" == child.value(op="fetch", arg=2)
    parent.source(1, "ONE")
    parent.source(2, "TWO")
    assert "one" == child.value(op="fetch", arg=1)  # stale by design until invalidated
    await parent(parent.fetch.invalidate(1))
    ok, seen = child.poll("ONE", op="fetch", arg=1)
    assert ok, seen
    assert "two" == child.value(op="fetch", arg=2)  # only that entry was dropped


async def test_invalidate_all_reaches_the_other_process(pair: tuple[Parent, Child]) -> None:
    """fetch.invalidate_all() here: every fetch entry in the child is recomputed."""
    parent, child = pair
    for x, value in ((1, "a"), (2, "b")):
        parent.source(x, value)
        assert value == child.value(op="fetch", arg=x)
    assert "keep" == child.value(op="load", key="other", value="keep")
    parent.source(1, "A")
    parent.source(2, "B")
    await parent(parent.fetch.invalidate_all())
    ok, seen = child.poll("A", op="fetch", arg=1)
    assert ok, seen
    assert "B" == child.value(op="fetch", arg=2)
    assert "keep" == child.value(op="get", key="other")  # other keys keep their entries


async def test_clear_reaches_the_other_process(pair: tuple[Parent, Child]) -> None:
    """clear() here (one INCR of the namespace generation): the child sees an empty cache."""
    parent, child = pair
    assert "v" == child.value(op="load", key="c", value="v")
    parent.source(3, "x")
    assert "x" == child.value(op="fetch", arg=3)
    parent.source(3, "X")
    await parent(parent.cache.clear())
    ok, seen = child.poll("<miss>", op="get", key="c")
    assert ok, seen
    assert "X" == child.value(op="fetch", arg=3)


async def test_writes_from_the_child_reach_this_process(pair: tuple[Parent, Child]) -> None:
    """The other direction: set() in the child drops this process's L1 copy."""
    parent, child = pair
    load = (lambda: "mine") if parent.kind == "sync" else _async_value("mine")
    assert "mine" == await parent(parent.cache.get_or_load("p", load))
    assert "mine" == await parent(parent.cache.get("p"))  # an L1 hit
    child.ask(op="set", key="p", value="theirs")
    seen = []
    for _ in range(POLLS):
        if not parent.bus.key_messages:
            parent.bus.wait_keys(1, timeout=0.01)
        seen.append(await parent(parent.cache.get("p")))
        if "theirs" == seen[-1]:
            break
    assert "theirs" == seen[-1]
    assert set(seen) <= {"mine", "theirs"}


def _async_value(value: str) -> Callable[[], Any]:
    async def load() -> str:
        return value

    return load


async def test_restart_flushes_l1_so_no_stale_value_survives(
    kind: str, redis_server_factory: Callable[[], RedisServer], namespace: str
) -> None:
    """The server restarts (subscription dropped, messages lost): the child's L1 is flushed.

    After the restart the new value is written to Redis *without* any bus
    message; the child still ends up reading it, because its bus flushed L1
    when it resubscribed.
    """
    server = redis_server_factory()
    child = Child(server.url, namespace, kind)
    try:
        assert "old" == child.value(op="load", key="k", value="old")
        flushes = child.ask(op="bus")["flushes"]
        server.restart()
        writer = RedisTier.from_url(server.url)
        now = time.time()
        writer.set(f"{namespace}:0:{{k}}", Entry("new", now + 300.0, 0.0, now + 300.0), now=now)
        writer.close()
        ok, seen = child.poll("new", op="get", key="k")
        assert ok, seen
        assert flushes + 1 <= child.ask(op="bus")["flushes"]
    finally:
        child.stop()


FORKED_CHILD_POLLS = 2000  # x 5 ms: a 10 s bound, far below the L1 TTL of 300 s


def _read_within(fd: int, size: int, timeout: float) -> bytes:
    """Read up to ``size`` bytes from ``fd``, or b"" if nothing comes within ``timeout``."""
    import select

    ready, _, _ = select.select([fd], [], [], timeout)
    return os.read(fd, size) if ready else b""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_cache_created_before_fork_listens_in_the_child(
    kind: str, redis_url: str, namespace: str
) -> None:
    """Bug: a cache built before fork (gunicorn --preload) had no invalidation bus in the child.

    Its threads lived in the parent, so a worker kept serving its L1 copy
    after another process's set(), for as long as the L1 TTL (300 s here).
    Now the child re-arms the bus at fork: it sees the parent's set() within
    the bus delay. (A plain test function: the child runs its own event loop.)
    """
    import asyncio

    tiers: Any = (
        (MemoryTier(maxsize=100, ttl=300.0), RedisTier.from_url(redis_url))
        if kind == "sync"
        else (MemoryTier(maxsize=100, ttl=300.0), AsyncRedisTier.from_url(redis_url))
    )
    cls: Any = TieredCache if kind == "sync" else AsyncTieredCache
    cache = cls(*tiers, ttl=300.0, namespace=namespace)

    async def call(result: Any) -> Any:
        return await result if inspect.isawaitable(result) else result

    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: load k into L1, wait for the parent's set, poll for it
        code = 1
        try:
            os.close(ready_r)
            os.close(go_w)

            async def child() -> bool:
                async def aload() -> str:
                    return "old"

                first = await call(
                    cache.get_or_load("k", aload if kind == "async" else lambda: "old")
                )
                os.write(ready_w, first.encode())
                os.read(go_r, 1)
                for _ in range(FORKED_CHILD_POLLS):
                    if "new" == await call(cache.get("k")):
                        return True
                    await asyncio.sleep(0.005)
                return False

            code = 0 if asyncio.run(child()) else 3
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        assert b"old" == _read_within(ready_r, 3, 30.0)
        writer: Any = TieredCache(RedisTier.from_url(redis_url), ttl=300.0, namespace=namespace)
        writer.set("k", "new")
        time.sleep(0.05)  # let the writer's bus thread publish before its close
        writer.close()
        os.write(go_w, b"g")
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert 0 == os.waitstatus_to_exitcode(status)  # 3: the child kept "old"
    finally:
        if pid:  # the child is still there after a failure: end it
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(go_w)
        asyncio.run(call(cache.close()))
