"""What the sync and asyncio Redis tiers share: everything but the I/O.

:class:`RedisTierBase` holds the codec, the circuit breaker, the counters and
the single place where driver errors become perfprim exceptions
(:meth:`RedisTierBase._failed`). The tier's I/O is written once, in
:mod:`perfprim.cache._async.redis_tier`, and generated for sync code; what
differs between the two kinds of redis-py client (their classes, how to
build, pipeline and discover them) sits in the twins
:class:`AsyncRedisClients` and :class:`SyncRedisClients`.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.resources
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any

from perfprim._optional import require
from perfprim.cache._breaker import CircuitBreaker, CircuitState
from perfprim.cache._codec import EntryCodec
from perfprim.cache._entry import Entry
from perfprim.cache._serializers import JsonSerializer, Serializer
from perfprim.exceptions import BackendError, CircuitOpenError, ConfigurationError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_COOLDOWN",
    "DEFAULT_FAILURE_THRESHOLD",
    "DEFAULT_SOCKET_TIMEOUT",
    "LEAKED_DRIVER_ERRORS",
    "READ_TAGGED",
    "READ_TAGGED_SHA",
    "AsyncRedisClients",
    "ConnectionSettings",
    "RedisTierBase",
    "SyncRedisClients",
    "check_client",
    "redis_module",
    "ttl_ms",
]

READ_TAGGED = (
    importlib.resources.files("perfprim.cache").joinpath("lua/read_tagged.lua").read_text()
)
"""The read that checks an entry's tags in the same round trip (standalone servers)."""
READ_TAGGED_SHA = hashlib.sha1(READ_TAGGED.encode()).hexdigest()  # noqa: S324 - Redis's script id

LEAKED_DRIVER_ERRORS: tuple[type[Exception], ...] = (AttributeError, TypeError, ValueError)
"""What redis-py raises, instead of its own ``ConnectionError``, from a connection torn down
under a command: a peer-closed pooled connection (redis/redis-py#4287), a connection another
task disconnected (``'NoneType' object has no attribute 'writelines'``, seen during
``CLUSTER FAILOVER``), a node missing from a stale slot map (redis/redis-py#3835), a socket
buffer another thread closed mid-read (``ValueError: I/O operation on closed file``, seen in
CI killing the lock watchdog's thread when its client was closed under an extend). The tiers
and the lock treat them as a dead connection: never as the caller's error."""

DEFAULT_SOCKET_TIMEOUT = 0.2
DEFAULT_CONNECT_TIMEOUT = 0.2
DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_COOLDOWN = 3.0


def redis_module(feature: str) -> ModuleType:
    """Import redis-py lazily, or raise ``MissingDependencyError`` naming the extra."""
    return require("redis", package="redis", extra="redis", feature=feature)


def ttl_ms(entry: Entry, now: float) -> int | None:
    """Milliseconds (for ``SET ... PX``) the tier keeps ``entry``: until ``stale_until``.

    At least 1 ms (an already expired entry still gets a valid PX); ``None``
    (no expiry) when ``stale_until`` is infinite.

    >>> ttl_ms(Entry("v", expires_at=100.0, delta=0.0, stale_until=160.0), now=100.0)
    60000
    >>> ttl_ms(Entry("v", expires_at=1.0, delta=0.0, stale_until=1.0), now=5.0)
    1
    """
    remaining = entry.stale_until - now
    if remaining == math.inf:
        return None
    if not remaining > 0.0:  # negative, zero or NaN
        return 1
    return max(1, math.ceil(remaining * 1000.0))


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """How a tier built by ``from_url`` connects; reused to build its invalidation bus.

    Attributes:
        url: The ``redis://`` / ``rediss://`` / ``unix://`` URL.
        cluster: Whether the URL names a node of a Redis Cluster.
        socket_timeout: Seconds to wait for a reply.
        connect_timeout: Seconds to wait for a TCP connection.
    """

    url: str
    cluster: bool
    socket_timeout: float
    connect_timeout: float

    def client_kwargs(self, *, asyncio: bool = False) -> dict[str, object]:
        """Keyword arguments for ``Redis.from_url``: short timeouts and no retries.

        redis-py >= 6 retries three times with backoff by default; a tier
        retries never (the breaker decides), so a hung server costs one
        timeout, not four.
        """
        from redis.backoff import NoBackoff

        if asyncio:
            from redis.asyncio.retry import Retry as AsyncRetry

            retry: object = AsyncRetry(NoBackoff(), 0)
        else:
            from redis.retry import Retry

            retry = Retry(NoBackoff(), 0)
        return {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            "retry": retry,
        }

    def build(self, factory: Callable[..., object], kwargs: dict[str, object]) -> object:
        """Call ``factory(url, **kwargs)``, mapping its errors to perfprim exceptions.

        Raises:
            ConfigurationError: For a malformed URL.
            BackendError: If the client connects eagerly (a Cluster learning its
                slots) and fails.
        """
        redis = redis_module("RedisTier")
        try:
            return factory(self.url, **kwargs)
        except ValueError as exc:
            raise ConfigurationError(
                f"cannot use Redis URL {self.url!r}: {exc}; expected redis://host:port/db"
            ) from exc
        except (
            redis.exceptions.RedisError,
            redis.exceptions.RedisClusterException,
            OSError,
        ) as exc:
            raise BackendError(f"cannot reach Redis at {self.url!r}: {exc}") from exc


class RedisTierBase:
    """State and decisions shared by ``RedisTier`` and ``AsyncRedisTier``.

    Args:
        serializer: The value serializer (default :class:`JsonSerializer`).
        failure_threshold: Consecutive failures that open the circuit.
        cooldown: Seconds the circuit stays open before one probe.
        clock: Monotonic clock for the breaker (injectable).
        name: Label in stats.
        settings: How ``from_url`` connected (``None`` for a given client).
        cluster: Whether the client is a Cluster client.
    """

    def __init__(
        self,
        *,
        serializer: Serializer | None,
        failure_threshold: int,
        cooldown: float | timedelta,
        clock: Callable[[], float],
        name: str,
        settings: ConnectionSettings | None,
        cluster: bool,
    ) -> None:
        if serializer is None:
            serializer = JsonSerializer()
        elif not isinstance(serializer, Serializer):
            raise ConfigurationError(
                "serializer must have format_id, dumps(value) -> bytes and "
                f"loads(bytes) -> value, e.g. JsonSerializer(); got {serializer!r}"
            )
        self.name = name
        self.serializer = serializer
        self.breaker = CircuitBreaker(
            failure_threshold=failure_threshold, cooldown=cooldown, clock=clock
        )
        self.errors = 0
        """Backend failures (timeouts, refused connections, error replies, open circuit)."""
        self.decode_errors = 0
        """Values read from Redis that could not be trusted (foreign, unsigned, corrupted)."""
        self._codec = EntryCodec(serializer)
        self._decode_one = self._codec.decode
        self._settings = settings
        self._cluster = cluster
        redis = redis_module(type(self).__name__)
        self._driver_errors: tuple[type[BaseException], ...] = (
            redis.exceptions.RedisError,
            redis.exceptions.RedisClusterException,
            OSError,
            asyncio.TimeoutError,
            *LEAKED_DRIVER_ERRORS,
        )
        self._timeout_errors: tuple[type[BaseException], ...] = (
            redis.exceptions.TimeoutError,
            TimeoutError,  # also socket.timeout and, on 3.11+, asyncio.TimeoutError
            asyncio.TimeoutError,
        )
        self._response_error: type[BaseException] = redis.exceptions.ResponseError
        self._cluster_error: type[BaseException] = redis.exceptions.ClusterError
        # A connection the pool handed out dead (the server restarted since it was last
        # used) fails at once with ConnectionError: worth one retry on a fresh connection.
        # A timeout is not retried: it has already cost the caller the whole timeout.
        self._connection_error: type[BaseException] = redis.exceptions.ConnectionError
        self._redis_timeout: type[BaseException] = redis.exceptions.TimeoutError
        self.tag_misses = 0
        """Tagged entries read and refused because one of their tags was invalidated."""

    @property
    def circuit_state(self) -> str:
        """The circuit breaker's state: ``"closed"``, ``"open"`` or ``"half_open"``."""
        return self.breaker.state.value

    @property
    def is_cluster(self) -> bool:
        """Whether the client is a Redis Cluster client."""
        return self._cluster

    def _admit(self) -> None:
        """Raise :class:`CircuitOpenError` unless the breaker lets this call through."""
        if self.breaker.state is not CircuitState.CLOSED and not self.breaker.allow():
            self.errors += 1
            raise CircuitOpenError(
                f"Redis tier {self.name!r}: circuit open after "
                f"{self.breaker.consecutive_failures} consecutive failures; next probe in "
                f"{self.breaker.retry_after():.2f} s"
            )

    def _failed(self, exc: BaseException) -> BackendError:
        """The one place a driver error becomes a :class:`BackendError` (and is counted).

        An error *reply* (``WRONGTYPE``, ``OOM``...) proves the server is
        alive, so it does not count towards opening the circuit; ``CLUSTERDOWN``
        (a reply too) does. A timeout opens the circuit at once (see
        :class:`CircuitBreaker`).
        """
        self.errors += 1
        if isinstance(exc, self._response_error) and not isinstance(exc, self._cluster_error):
            self.breaker.record_success()
        else:
            self.breaker.record_failure(timeout=isinstance(exc, self._timeout_errors))
        return BackendError(f"Redis tier {self.name!r}: {type(exc).__name__}: {exc}")

    def _retryable(self, exc: BaseException) -> bool:
        """A dead pooled connection (refused, reset, or torn down under us): retry once."""
        if isinstance(exc, LEAKED_DRIVER_ERRORS):
            return True
        return isinstance(exc, self._connection_error) and not isinstance(exc, self._redis_timeout)

    def encode(self, entry: Entry, now: float) -> tuple[bytes, int | None]:
        """The bytes this tier stores for ``entry`` and its ``PX`` in ms (``None``: no expiry).

        For callers that write entries with their own commands (the cache's
        store-and-release-the-lock script).

        Raises:
            SerializationError: If the serializer cannot encode the value.
        """
        return self._codec.encode(entry), ttl_ms(entry, now)

    def _tags_current(self, entry: Entry, versions: list[bytes | int | None]) -> bool:
        """Whether ``versions`` (read now, in ``entry.tags`` order) match the entry's stamps."""
        for (_, stamp), current in zip(entry.tags, versions, strict=True):
            if stamp != (0 if current is None else int(current)):
                self.tag_misses += 1
                return False
        return True

    def _decode(self, raw: bytes | None, key: str) -> Entry | None:
        if raw is None:
            return None
        entry = self._decode_one(raw, key)
        if entry is None:
            self.decode_errors += 1
        return entry

    def _decode_many(self, raws: list[bytes | None], keys: list[str]) -> list[Entry | None]:
        return [self._decode(raw, key) for raw, key in zip(raws, keys, strict=True)]

    def _encode_all(
        self, entries: dict[str, Entry], now: float
    ) -> list[tuple[str, bytes, int | None]]:
        """Encode every entry first, so a value that cannot be encoded writes nothing."""
        encode = self._codec.encode
        return [(key, encode(entry), ttl_ms(entry, now)) for key, entry in entries.items()]

    @staticmethod
    def _counter(raw: bytes | int | None) -> int:
        return 0 if raw is None else int(raw)

    def __repr__(self) -> str:
        kind = "cluster" if self._cluster else "standalone"
        return (
            f"{type(self).__name__}(name={self.name!r}, {kind}, serializer={self.serializer!r}, "
            f"circuit={self.circuit_state!r}, errors={self.errors}, "
            f"decode_errors={self.decode_errors})"
        )


def check_client(client: object, *, standalone: type, cluster: type, hint: str) -> bool:
    """Check ``client``'s kind and return whether it is a Cluster client.

    Raises:
        ConfigurationError: If it is neither kind, or decodes responses to ``str``.
    """
    if isinstance(client, cluster):
        is_cluster = True
    elif isinstance(client, standalone):
        is_cluster = False
    else:
        raise ConfigurationError(f"expected a {hint}, got {type(client).__name__}")
    get_kwargs = getattr(client, "get_connection_kwargs", None)
    kwargs = get_kwargs() if get_kwargs is not None else {}
    if kwargs.get("decode_responses"):
        raise ConfigurationError(
            "the Redis client decodes responses to str, but cache entries are bytes: "
            "build it with decode_responses=False (the default)"
        )
    return is_cluster


class SyncRedisClients:
    """What a tier needs to know about redis-py's synchronous clients."""

    hint = "redis.Redis or redis.cluster.RedisCluster (for asyncio clients use AsyncRedisTier)"

    @staticmethod
    def kind(client: object) -> bool:
        """Check ``client`` and return whether it is a Cluster client.

        Raises:
            ConfigurationError: If it is not a sync redis-py client with bytes responses.
        """
        redis = redis_module("RedisTier")
        return check_client(
            client,
            standalone=redis.Redis,
            cluster=redis.cluster.RedisCluster,
            hint=SyncRedisClients.hint,
        )

    @staticmethod
    def from_url(settings: ConnectionSettings) -> object:
        """Build a client for ``settings`` (a cluster client learns its slots now)."""
        redis = redis_module("RedisTier")
        factory = redis.cluster.RedisCluster.from_url if settings.cluster else redis.Redis.from_url
        return settings.build(factory, settings.client_kwargs())

    @staticmethod
    def ready(cluster: bool) -> bool:
        """Whether the client is usable at once (sync clients are)."""
        del cluster
        return True

    @staticmethod
    def discovery_lock() -> threading.Lock:
        """Guards the one-time discovery (never needed by sync clients)."""
        return threading.Lock()

    @staticmethod
    def pipeline(client: Any, cluster: bool) -> Any:
        """A non-transactional pipeline."""
        del cluster
        return client.pipeline(transaction=False)

    @staticmethod
    def bus_source(client: object, cluster: bool, settings: ConnectionSettings | None) -> object:
        """What a :class:`RedisInvalidationBus` for this tier connects with."""
        del cluster
        return settings if settings is not None else client


class AsyncRedisClients:
    """What a tier needs to know about redis-py's asyncio clients."""

    hint = (
        "redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster (for sync clients use RedisTier)"
    )

    @staticmethod
    def kind(client: object) -> bool:
        """Check ``client`` and return whether it is a Cluster client.

        Raises:
            ConfigurationError: If it is not an asyncio redis-py client with bytes responses.
        """
        redis_module("AsyncRedisTier")
        import redis.asyncio as aredis
        import redis.asyncio.cluster as acluster

        return check_client(
            client,
            standalone=aredis.Redis,
            cluster=acluster.RedisCluster,
            hint=AsyncRedisClients.hint,
        )

    @staticmethod
    def from_url(settings: ConnectionSettings) -> object:
        """Build a client for ``settings`` (it connects lazily, a cluster too)."""
        redis_module("AsyncRedisTier")
        import redis.asyncio as aredis
        import redis.asyncio.cluster as acluster

        factory = acluster.RedisCluster.from_url if settings.cluster else aredis.Redis.from_url
        return settings.build(factory, settings.client_kwargs(asyncio=True))

    @staticmethod
    def ready(cluster: bool) -> bool:
        """Whether the client is usable at once: an asyncio cluster must discover its slots."""
        return not cluster

    @staticmethod
    def discovery_lock() -> asyncio.Lock:
        """Guards the one-time discovery of an asyncio cluster client."""
        return asyncio.Lock()

    @staticmethod
    def pipeline(client: Any, cluster: bool) -> Any:
        """A non-transactional pipeline (the asyncio cluster pipeline takes no argument)."""
        return client.pipeline() if cluster else client.pipeline(transaction=False)

    @staticmethod
    def bus_source(client: object, cluster: bool, settings: ConnectionSettings | None) -> object:
        """Connection settings for the bus's sync client, reaching this tier's server."""
        from perfprim.cache._invalidation import settings_from_async_client

        return settings if settings is not None else settings_from_async_client(client, cluster)
