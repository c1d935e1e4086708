"""Test tiers and a driver that runs one test body against TieredCache and AsyncTieredCache."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from perfprim.cache import AsyncTieredCache, MemoryTier, StampedeOptions, TieredCache
from perfprim.cache.advanced import Entry
from perfprim.exceptions import BackendError
from tests.cache.conformance import FakeClock


class LoggingMemoryTier(MemoryTier):
    """A MemoryTier that appends ``(name, op, key)`` to a shared log on writes and reads."""

    def __init__(self, log: list[tuple[str, str, str]], label: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log = log
        self.label = label

    def get(self, key: str) -> Entry | None:
        self.log.append((self.label, "get", key))
        return super().get(key)

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        self.log.append((self.label, "get_many", ",".join(keys)))
        return [super(LoggingMemoryTier, self).get(k) for k in keys]

    def set(self, key: str, entry: Entry, *, now: float, tag_epoch: int | None = None) -> None:
        self.log.append((self.label, "set", key))
        super().set(key, entry, now=now, tag_epoch=tag_epoch)


class FailingTier:
    """A tier whose backend is down: every operation raises BackendError while ``down``."""

    name = "failing"

    def __init__(self, inner: MemoryTier) -> None:
        self.inner = inner
        self.down = True
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise BackendError("connection refused (test tier)")

    def get(self, key: str) -> Entry | None:
        self._check()
        return self.inner.get(key)

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        self._check()
        return self.inner.get_many(keys)

    def set(self, key: str, entry: Entry, *, now: float) -> None:
        self._check()
        self.inner.set(key, entry, now=now)

    def set_many(self, entries: Mapping[str, Entry], *, now: float) -> None:
        self._check()
        self.inner.set_many(entries, now=now)

    def delete(self, keys: Sequence[str]) -> None:
        self._check()
        self.inner.delete(keys)

    def incr(self, key: str) -> int:
        self._check()
        return self.inner.incr(key)

    def read_counter(self, key: str) -> int:
        self._check()
        return self.inner.read_counter(key)

    def read_counters(self, keys: Sequence[str]) -> list[int]:
        self._check()
        return self.inner.read_counters(keys)

    def close(self) -> None:
        self.inner.close()


class AsyncAdapter:
    """Presents a sync tier as an AsyncTier (so the async cache runs the same scenarios)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    async def get(self, key: str) -> Entry | None:
        return self.inner.get(key)  # type: ignore[no-any-return]

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        return self.inner.get_many(keys)  # type: ignore[no-any-return]

    async def set(self, key: str, entry: Entry, *, now: float) -> None:
        self.inner.set(key, entry, now=now)

    async def set_many(self, entries: Mapping[str, Entry], *, now: float) -> None:
        self.inner.set_many(entries, now=now)

    async def delete(self, keys: Sequence[str]) -> None:
        self.inner.delete(keys)

    async def incr(self, key: str) -> int:
        return self.inner.incr(key)  # type: ignore[no-any-return]

    async def read_counter(self, key: str) -> int:
        return self.inner.read_counter(key)  # type: ignore[no-any-return]

    async def read_counters(self, keys: Sequence[str]) -> list[int]:
        return self.inner.read_counters(keys)  # type: ignore[no-any-return]

    async def close(self) -> None:
        self.inner.close()


class LocalBus:
    """An in-process InvalidationBus hub: what one endpoint publishes, the others receive.

    It tests the cache's side of the protocol (what it publishes, what it does
    on a message); B tests the real Redis bus across processes.
    """

    def __init__(self) -> None:
        self.endpoints: list[LocalBus.Endpoint] = []

    def endpoint(self) -> LocalBus.Endpoint:
        point = LocalBus.Endpoint(self)
        self.endpoints.append(point)
        return point

    class Endpoint:
        """One process's end of the hub."""

        def __init__(self, hub: LocalBus) -> None:
            self.hub = hub
            self.published: list[list[str]] = []
            self.on_keys: Callable[[Sequence[str]], None] | None = None
            self.on_flush: Callable[[], None] | None = None
            self.closed = False

        def publish(self, keys: Sequence[str]) -> None:
            self.published.append(list(keys))
            for other in self.hub.endpoints:
                if other is self or other.on_keys is None or other.on_flush is None:
                    continue
                if keys:
                    other.on_keys(list(keys))
                else:
                    other.on_flush()

        def start(
            self, on_keys: Callable[[Sequence[str]], None], on_flush: Callable[[], None]
        ) -> None:
            self.on_keys = on_keys
            self.on_flush = on_flush

        def close(self) -> None:
            self.closed = True


class Driver:
    """One cache (sync or async) behind awaitable calls, so a test body serves both."""

    def __init__(self, kind: str, cache: Any, l1: MemoryTier | None, l2: Any) -> None:
        self.kind = kind
        self.cache = cache
        self.l1 = l1
        self.l2 = l2  # the L2 as given to build() (a sync tier is adapted for the async cache)

    @property
    def is_async(self) -> bool:
        return self.kind == "async"

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.cache, method)(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

    def loader(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """A zero-argument loader of the cache's kind around ``fn``."""
        if not self.is_async:
            return fn

        async def load() -> Any:
            return fn()

        return load

    def cached(self, body: Callable[..., Any], name: str, **options: Any) -> Any:
        """Decorate a function of the right kind, named ``name`` (its key scope)."""
        if self.is_async:

            @functools.wraps(body)
            async def fn(*args: Any, **kwargs: Any) -> Any:
                return body(*args, **kwargs)

        else:

            @functools.wraps(body)
            def fn(*args: Any, **kwargs: Any) -> Any:
                return body(*args, **kwargs)

        fn.__qualname__ = fn.__name__ = name  # keeps body's signature (__wrapped__)
        return self.cache.cached(**options)(fn)

    async def on_tier(self, tier: Any, method: str, *args: Any) -> Any:
        """Call a tier method directly (awaiting it for an async tier)."""
        result = getattr(tier, method)(*args)
        if inspect.isawaitable(result):
            return await result
        return result

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a cached function (awaiting it for the async cache)."""
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result


STAMPEDE_OPTIONS = frozenset(
    {
        "single_flight",
        "wait_timeout",
        "lock",
        "lock_ttl",
        "lock_wait_timeout",
        "refresh_ttl",
        "beta",
        "rand",
        "stale_ttl",
        "stale_if_error",
        "cache_none",
        "none_ttl",
        "error_ttl",
        "refresh_workers",
    }
)


def cache_options(**options: Any) -> dict[str, Any]:
    """The cache's keywords, with the stampede ones grouped into ``stampede=StampedeOptions``."""
    stampede = {k: options.pop(k) for k in list(options) if k in STAMPEDE_OPTIONS}
    if stampede:
        options["stampede"] = StampedeOptions(**stampede)
    return options


def build(
    kind: str,
    clock: FakeClock,
    *,
    l1: MemoryTier | None = None,
    l2: Any = None,
    **options: Any,
) -> Driver:
    """A cache of ``kind`` over ``l1`` and an optional sync tier ``l2`` (adapted for async)."""
    options.setdefault("ttl", 60.0)
    options.setdefault("namespace", "t")
    options.setdefault("clock", clock)
    options = cache_options(**options)
    if l2 is None:
        lower = []
    elif kind == "sync" or inspect.iscoroutinefunction(l2.get):
        lower = [l2]  # already of the cache's kind (AsyncRedisTier for async)
    else:
        lower = [AsyncAdapter(l2)]
    tiers = [t for t in (l1, *lower) if t is not None]
    cls: Any = TieredCache if kind == "sync" else AsyncTieredCache
    return Driver(kind, cls(*tiers, **options), l1, l2)
