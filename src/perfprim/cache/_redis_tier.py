"""``RedisTier``: the synchronous Redis L2 tier (standalone or Cluster)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
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

__all__ = ["RedisTier"]

_T = TypeVar("_T")


class RedisTier(RedisTierBase):
    """A cache tier on Redis through redis-py (``Redis`` or ``RedisCluster``).

    Each entry is one Redis string (a small binary header with the entry's
    times, then the serializer's payload) written with ``SET ... PX`` so Redis
    drops it at ``entry.stale_until``. ``get_many`` is one ``MGET`` (on a
    cluster, one pipelined ``MGET`` per slot group) and ``set_many`` one
    pipeline of ``SET``. Failures raise
    :class:`~perfprim.exceptions.BackendError`; after ``failure_threshold``
    consecutive failures the circuit opens and calls raise
    :class:`~perfprim.exceptions.CircuitOpenError` at once until a probe,
    ``cooldown`` seconds later, succeeds.

    Build it with :meth:`from_url` (short timeouts, no driver retries) or
    from a client you configured yourself (then its timeouts and retries are
    yours: keep them short, see the docs).

    Args:
        client: A ``redis.Redis`` or ``redis.cluster.RedisCluster`` built with
            ``decode_responses=False``.
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
        redis = redis_module("RedisTier")
        cluster = check_client(
            client,
            standalone=redis.Redis,
            cluster=redis.cluster.RedisCluster,
            hint=(
                "redis.Redis or redis.cluster.RedisCluster (for asyncio clients use AsyncRedisTier)"
            ),
        )
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
    ) -> RedisTier:
        """Connect to ``url`` with short timeouts and driver retries off.

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
            BackendError: If a cluster cannot be reached to learn its slots
                (standalone clients connect lazily, on the first call).
        """
        redis = redis_module("RedisTier")
        settings = ConnectionSettings(
            url,
            cluster,
            to_seconds(socket_timeout, name="socket_timeout"),
            to_seconds(connect_timeout, name="connect_timeout"),
        )
        kwargs = settings.client_kwargs()
        factory = redis.cluster.RedisCluster.from_url if cluster else redis.Redis.from_url
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
        """The redis-py client."""
        return self._client

    def _call(self, fn: Callable[..., _T], *args: object) -> _T:
        breaker = self.breaker
        if not breaker.quiet:
            self._admit()
        try:
            result = fn(*args)
        except self._driver_errors as exc:
            raise self._failed(exc) from exc
        if not breaker.quiet:
            breaker.record_success()
        return result

    def get(self, key: str) -> Entry | None:
        """Return the entry under ``key``, or ``None`` (missing or untrusted bytes).

        Raises:
            BackendError: If Redis fails (``CircuitOpenError`` while the
                circuit is open).
        """
        # _call and _decode inlined: this is the L2 hit path.
        breaker = self.breaker
        if not breaker.quiet:
            self._admit()
        try:
            raw = self._get(key)
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

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """Return the entries for ``keys`` in order (one round trip per slot group).

        Raises:
            BackendError: If Redis fails.
        """
        if not keys:
            return []
        keys = list(keys)
        return self._decode_many(self._call(self._mget, keys), keys)

    def set(self, key: str, entry: Entry, *, now: float) -> None:
        """Store ``entry`` until ``entry.stale_until`` (``SET key value PX ms``).

        Raises:
            SerializationError: If the serializer cannot encode the value
                (nothing is written).
            BackendError: If Redis fails.
        """
        data, px = self._encode_one(entry, now)
        self._call(self._client.set, key, data, None, px)  # type: ignore[attr-defined]

    def set_many(self, entries: Mapping[str, Entry], *, now: float) -> None:
        """Store several entries in one pipeline (per node on a cluster).

        Raises:
            SerializationError: If any value cannot be encoded (nothing is
                written).
            BackendError: If Redis fails.
        """
        if not entries:
            return
        items = self._encode_all(dict(entries), now)
        self._call(self._write_pipeline, items)

    def _write_pipeline(self, items: list[tuple[str, bytes, int | None]]) -> None:
        pipe = self._client.pipeline(transaction=False)  # type: ignore[attr-defined]
        for key, data, px in items:
            pipe.set(key, data, px=px)
        pipe.execute()

    def delete(self, keys: Sequence[str]) -> None:
        """Remove ``keys`` (missing ones are ignored).

        Raises:
            BackendError: If Redis fails.
        """
        if keys:
            self._call(self._client.delete, *keys)  # type: ignore[attr-defined]

    def incr(self, key: str) -> int:
        """``INCR`` the counter ``key`` and return its new value.

        Raises:
            BackendError: If Redis fails.
        """
        return int(self._call(self._client.incr, key))  # type: ignore[attr-defined]

    def read_counter(self, key: str) -> int:
        """Return the counter ``key`` (0 if absent).

        Raises:
            BackendError: If Redis fails.
        """
        return self._counter(self._call(self._get, key))

    def invalidation_bus(self, *, channel: str = "perfprim:invalidate") -> RedisInvalidationBus:
        """Build a :class:`RedisInvalidationBus` on this tier's Redis.

        Args:
            channel: The pub/sub channel shared by the processes of one cache.

        Returns:
            A bus, not started yet.
        """
        from perfprim.cache._invalidation import RedisInvalidationBus

        source: object = self._settings if self._settings is not None else self._client
        return RedisInvalidationBus(source, channel=channel)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()  # type: ignore[attr-defined]
