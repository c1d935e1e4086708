"""``AsyncRedisTier``: the asyncio twin of :class:`~perfprim.cache._redis_tier.RedisTier`.

Only the I/O differs; codec, breaker, counters and error mapping come from
:mod:`perfprim.cache._redis_common`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from perfprim._durations import to_seconds
from perfprim.cache._entry import Entry
from perfprim.cache._redis_common import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_COOLDOWN,
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_SOCKET_TIMEOUT,
    ConnectionSettings,
    RedisTierBase,
    check_client,
    redis_module,
)
from perfprim.cache._serializers import Serializer

if TYPE_CHECKING:
    from perfprim.cache._invalidation import RedisInvalidationBus

__all__ = ["AsyncRedisTier"]

_T = TypeVar("_T")


class AsyncRedisTier(RedisTierBase):
    """An asyncio cache tier on Redis (``redis.asyncio.Redis`` or its ``RedisCluster``).

    Same storage format, timeouts, circuit breaker and error contract as
    :class:`~perfprim.cache._redis_tier.RedisTier`; the methods are
    coroutines.

    Args:
        client: A ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``
            built with ``decode_responses=False``.
        serializer: Value serializer (default :class:`JsonSerializer`).
        failure_threshold: Consecutive failures that open the circuit.
        cooldown: Seconds (or ``timedelta``) before an open circuit probes.
        clock: Monotonic clock of the breaker (injectable for tests).
        name: Label in stats.

    Raises:
        ConfigurationError: For a client of the wrong kind or bad options.
        MissingDependencyError: If redis-py is not installed.
    """

    def __init__(
        self,
        client: object,
        *,
        serializer: Serializer | None = None,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        cooldown: float | timedelta = DEFAULT_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
        name: str = "redis",
        _settings: ConnectionSettings | None = None,
    ) -> None:
        redis = redis_module("AsyncRedisTier")
        import redis.asyncio as aredis
        import redis.asyncio.cluster as acluster

        cluster = check_client(
            client,
            standalone=aredis.Redis,
            cluster=acluster.RedisCluster,
            hint=(
                "redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster "
                "(for sync clients use RedisTier)"
            ),
        )
        del redis
        super().__init__(
            serializer=serializer,
            failure_threshold=failure_threshold,
            cooldown=cooldown,
            clock=clock,
            name=name,
            settings=_settings,
            cluster=cluster,
        )
        self._client = client
        self._mget = client.mget_nonatomic if cluster else client.mget  # type: ignore[attr-defined]
        self._get = client.get  # type: ignore[attr-defined]
        # redis-py's asyncio cluster client discovers the cluster lazily, and
        # concurrent first commands race inside that discovery (connections
        # closed under each other, AttributeError). The tier runs the discovery
        # once, under a lock, before its first command.
        self._ready = not cluster
        self._init_lock: asyncio.Lock | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool = False,
        socket_timeout: float | timedelta = DEFAULT_SOCKET_TIMEOUT,
        connect_timeout: float | timedelta = DEFAULT_CONNECT_TIMEOUT,
        serializer: Serializer | None = None,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        cooldown: float | timedelta = DEFAULT_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
        name: str = "redis",
    ) -> AsyncRedisTier:
        """Build an asyncio client for ``url`` with short timeouts and driver retries off.

        The client connects lazily, on the first call (also for a cluster).

        Args:
            url: ``redis://host:port/db`` (``rediss://``, ``unix://`` work too).
            cluster: The URL names one node of a Redis Cluster.
            socket_timeout: Seconds to wait for a reply (default 0.2).
            connect_timeout: Seconds to wait for a connection (default 0.2).
            serializer: Value serializer (default :class:`JsonSerializer`).
            failure_threshold: Consecutive failures that open the circuit (3).
            cooldown: Seconds before an open circuit probes (3.0).
            clock: Monotonic clock of the breaker.
            name: Label in stats.

        Returns:
            The tier.

        Raises:
            ConfigurationError: For a malformed URL or bad options.
        """
        redis_module("AsyncRedisTier")
        import redis.asyncio as aredis
        import redis.asyncio.cluster as acluster

        settings = ConnectionSettings(
            url,
            cluster,
            to_seconds(socket_timeout, name="socket_timeout"),
            to_seconds(connect_timeout, name="connect_timeout"),
        )
        kwargs = settings.client_kwargs(asyncio=True)
        factory = acluster.RedisCluster.from_url if cluster else aredis.Redis.from_url
        client = settings.build(factory, kwargs)
        return cls(
            client,
            serializer=serializer,
            failure_threshold=failure_threshold,
            cooldown=cooldown,
            clock=clock,
            name=name,
            _settings=settings,
        )

    @property
    def client(self) -> object:
        """The redis-py asyncio client."""
        return self._client

    async def _initialize(self) -> None:
        """Discover the cluster once, whatever the number of concurrent first callers."""
        if self._init_lock is None:
            self._init_lock = asyncio.Lock()
        async with self._init_lock:
            if self._ready:
                return
            try:
                await self._client.initialize()  # type: ignore[attr-defined]
            except self._driver_errors as exc:
                raise self._failed(exc) from exc
            self._ready = True

    async def _call(self, fn: Callable[..., Awaitable[_T]], *args: object) -> _T:
        breaker = self.breaker
        if not breaker.quiet:
            self._admit()
        if not self._ready:
            await self._initialize()
        try:
            result = await fn(*args)
        except self._driver_errors as exc:
            raise self._failed(exc) from exc
        if not breaker.quiet:
            breaker.record_success()
        return result

    async def get(self, key: str) -> Entry | None:
        """Return the entry under ``key``, or ``None`` (missing or untrusted bytes).

        Raises:
            BackendError: If Redis fails (``CircuitOpenError`` while open).
        """
        # _call and _decode inlined: this is the L2 hit path.
        breaker = self.breaker
        if not breaker.quiet:
            self._admit()
        if not self._ready:
            await self._initialize()
        try:
            raw = await self._get(key)
        except self._driver_errors as exc:
            raise self._failed(exc) from exc
        if not breaker.quiet:
            breaker.record_success()
        if raw is None:
            return None
        entry = self._decode_one(raw, key)
        if entry is None:
            self.decode_errors += 1
        return entry

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """Return the entries for ``keys`` in order (one round trip per slot group).

        Raises:
            BackendError: If Redis fails.
        """
        if not keys:
            return []
        keys = list(keys)
        return self._decode_many(await self._call(self._mget, keys), keys)

    async def set(self, key: str, entry: Entry, *, now: float) -> None:
        """Store ``entry`` until ``entry.stale_until`` (``SET key value PX ms``).

        Raises:
            SerializationError: If the value cannot be encoded (nothing written).
            BackendError: If Redis fails.
        """
        data, px = self._encode_one(entry, now)
        await self._call(self._client.set, key, data, None, px)  # type: ignore[attr-defined]

    async def set_many(self, entries: Mapping[str, Entry], *, now: float) -> None:
        """Store several entries in one pipeline (per node on a cluster).

        Raises:
            SerializationError: If any value cannot be encoded (nothing written).
            BackendError: If Redis fails.
        """
        if not entries:
            return
        items = self._encode_all(dict(entries), now)
        await self._call(self._write_pipeline, items)

    async def _write_pipeline(self, items: list[tuple[str, bytes, int | None]]) -> None:
        if self._cluster:
            pipe = self._client.pipeline()  # type: ignore[attr-defined]
        else:
            pipe = self._client.pipeline(transaction=False)  # type: ignore[attr-defined]
        for key, data, px in items:
            pipe.set(key, data, px=px)
        await pipe.execute()

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove ``keys`` (missing ones are ignored).

        Raises:
            BackendError: If Redis fails.
        """
        if keys:
            await self._call(self._client.delete, *keys)  # type: ignore[attr-defined]

    async def incr(self, key: str) -> int:
        """``INCR`` the counter ``key`` and return its new value.

        Raises:
            BackendError: If Redis fails.
        """
        return int(await self._call(self._client.incr, key))  # type: ignore[attr-defined]

    async def read_counter(self, key: str) -> int:
        """Return the counter ``key`` (0 if absent).

        Raises:
            BackendError: If Redis fails.
        """
        return self._counter(await self._call(self._get, key))

    def invalidation_bus(self, *, channel: str = "perfprim:invalidate") -> RedisInvalidationBus:
        """Build a :class:`RedisInvalidationBus` on this tier's Redis.

        The bus runs a synchronous client in its own threads (so it serves
        sync and async caches alike), built from the tier's URL or from the
        asyncio client's host, port and credentials.

        Args:
            channel: The pub/sub channel shared by the processes of one cache.

        Returns:
            A bus, not started yet.
        """
        from perfprim.cache._invalidation import RedisInvalidationBus, settings_from_async_client

        settings = self._settings or settings_from_async_client(self._client, self._cluster)
        return RedisInvalidationBus(settings, channel=channel)

    async def close(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()  # type: ignore[attr-defined]
