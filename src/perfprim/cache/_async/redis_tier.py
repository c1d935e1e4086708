"""``AsyncRedisTier``: the Redis L2 tier, standalone or Cluster.

Its codec, breaker and error mapping are in :mod:`perfprim.cache._redis_common`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from perfprim._durations import to_seconds
from perfprim.cache._async.lock import AsyncRedisLock
from perfprim.cache._entry import Entry
from perfprim.cache._redis_common import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_COOLDOWN,
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_SOCKET_TIMEOUT,
    READ_TAGGED,
    READ_TAGGED_SHA,
    AsyncRedisClients,
    ConnectionSettings,
    RedisTierBase,
    redis_module,
)
from perfprim.cache._serializers import Serializer

if TYPE_CHECKING:
    from perfprim.cache._invalidation import RedisInvalidationBus

__all__ = ["AsyncRedisTier"]

_T = TypeVar("_T")
_CLIENTS = AsyncRedisClients
_INHERITED: list[object] = []  # a forked child's copies of the parent's clients (never used)


class AsyncTierConnections:
    """The connections a tier keeps, and the commands of its read and write paths on them.

    For a standalone client the tier built itself (:meth:`AsyncRedisTier.from_url`:
    no retries, no client-side cache, no single connection). A command takes
    an idle connection (or makes one with the client's connection class and
    settings), sends, reads the reply and puts the connection back: what
    ``client.execute_command`` does, without what redis-py adds to every
    command and every pool checkout (a retry closure, its own metrics and
    events, a poll of the socket for stray bytes), which costs more than the
    rest of a loopback ``GET``. No stray bytes can be left on a connection
    put back: one on which sending or reading raised anything (a timeout, a
    cancellation, an error reply) is closed, never reused; when the error
    says the server went away (refused, reset), every idle connection is
    closed too, since they went with it. A forked child never uses its
    parent's connections.

    The methods have the client's signatures, for the commands the tier
    runs on its hot paths (``SET`` returns nothing).

    Args:
        client: The standalone redis-py client the tier built.
        gone: The driver's error for a dead connection (``ConnectionError``).
        timeout: The driver's timeout error: a hung server is not a gone one.
    """

    __slots__ = ("_closed", "_gone", "_idle", "_make", "_pid", "_timeout")

    def __init__(
        self, client: Any, *, gone: type[BaseException], timeout: type[BaseException]
    ) -> None:
        self._gone = gone
        self._timeout = timeout
        pool = client.connection_pool
        self._make = functools.partial(pool.connection_class, **pool.connection_kwargs)
        # deque: appends and pops are atomic (threads share it in the sync tier).
        self._idle: deque[Any] = deque()
        self._pid = os.getpid()
        self._closed = False

    def _take(self) -> Any:
        """An idle connection, or a new one (connected by its first command)."""
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            _INHERITED.append(self._idle)
            self._idle = deque()
            self._pid = os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            return self._make()

    async def _give_back(self, conn: Any) -> None:
        if self._closed:
            await _disconnect(conn)
        else:
            self._idle.append(conn)

    async def _failed(self, conn: Any, exc: BaseException) -> None:
        """Sending or reading on ``conn`` raised ``exc``: close it (and the idle ones if dead)."""
        await _disconnect(conn)
        if isinstance(exc, self._gone) and not isinstance(exc, self._timeout):
            await self._close_idle()

    async def _close_idle(self) -> None:
        idle = self._idle
        while True:  # pop, not iterate: another thread may take one meanwhile
            try:
                conn = idle.pop()
            except IndexError:
                return
            await _disconnect(conn)

    async def get(self, key: str) -> Any:
        """``GET key``."""
        conn = self._take()
        try:
            await conn.send_command("GET", key)
            reply = await conn.read_response()
        except BaseException as exc:
            await self._failed(conn, exc)
            raise
        await self._give_back(conn)
        return reply

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: object) -> Any:
        """``EVALSHA sha numkeys keys... args...``."""
        conn = self._take()
        try:
            await conn.send_command("EVALSHA", sha, numkeys, *keys_and_args)
            reply = await conn.read_response()
        except BaseException as exc:
            await self._failed(conn, exc)
            raise
        await self._give_back(conn)
        return reply

    async def _run(self, *args: object) -> Any:
        conn = self._take()
        try:
            await conn.send_command(*args)
            reply = await conn.read_response()
        except BaseException as exc:
            await self._failed(conn, exc)
            raise
        await self._give_back(conn)
        return reply

    async def mget(self, keys: list[str]) -> Any:
        """``MGET keys...``."""
        return await self._run("MGET", *keys)

    async def set(self, key: str, value: bytes, ex: None = None, px: int | None = None) -> None:
        """``SET key value [PX px]`` (``ex`` is never used by the tier)."""
        del ex
        if px is None:
            await self._run("SET", key, value)
        else:
            await self._run("SET", key, value, "PX", px)

    async def close(self) -> None:
        """Close the idle connections; one in use is closed when it comes back."""
        self._closed = True
        await self._close_idle()


async def _disconnect(conn: Any) -> None:
    with contextlib.suppress(Exception):  # closing a socket: nothing to report
        await conn.disconnect()


class AsyncRedisTier(RedisTierBase):
    """A cache tier on Redis through redis-py, standalone or Cluster.

    Each entry is one Redis string (a small binary header with the entry's
    times, then the serializer's payload) written with ``SET ... PX`` so Redis
    drops it at ``entry.stale_until``. ``get_many`` is one ``MGET`` (on a
    cluster, one pipelined ``MGET`` per slot group) and ``set_many`` one
    pipeline of ``SET``. A tagged entry is checked against its tags' counters
    before it is returned (one more ``MGET``), so a tier never returns a value
    whose tag was invalidated after it was computed. Failures raise
    :class:`~perfprim.exceptions.BackendError`; a call that meets a dead
    pooled connection (the server restarted) is retried once on a new one;
    after ``failure_threshold`` consecutive failures (or one timeout) the
    circuit opens and calls raise :class:`~perfprim.exceptions.CircuitOpenError`
    at once until a probe, ``cooldown`` seconds later, succeeds.

    Build it with :meth:`from_url` (short timeouts, no driver retries) or
    from a client you configured yourself (then its timeouts and retries are
    yours: keep them short, see the docs).

    Args:
        client: A redis-py client of this tier's kind (standalone or Cluster),
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
        cluster = _CLIENTS.kind(client)
        super().__init__(
            serializer=serializer,
            failure_threshold=failure_threshold,
            cooldown=cooldown,
            clock=clock,
            name=name,
            settings=_settings,
            cluster=cluster,
        )
        self._bind(client)
        # redis-py's async cluster client discovers the cluster lazily, and concurrent
        # first commands race inside that discovery (connections closed under each
        # other): the tier runs it once, before its first command. Sync clients are ready.
        self._ready = _CLIENTS.ready(cluster)
        self._discovery = _CLIENTS.discovery_lock()
        # Once tags are in use, a standalone tier reads with one script that checks an
        # entry's tags in the same round trip; before that (and on a cluster, where the
        # tag counters live in other slots) a read is a plain GET.
        self._checked_reads = False
        self._no_script: type[BaseException] = redis_module(
            type(self).__name__
        ).exceptions.NoScriptError

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
            BackendError: If a sync cluster client cannot reach the cluster to
                learn its slots (other clients connect on their first call).
        """
        settings = ConnectionSettings(
            url,
            cluster,
            to_seconds(socket_timeout, name="socket_timeout"),
            to_seconds(connect_timeout, name="connect_timeout"),
        )
        return cls(
            _CLIENTS.from_url(settings),
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

    def after_fork(self) -> None:
        """In a forked child: build a client of its own (only a tier built by :meth:`from_url`).

        The cache that owns the tier calls it. The parent's client is kept but
        never used: closing it would take pool locks another thread of the
        parent may have held at fork. A client you passed in is kept as it is
        (redis-py resets its connection pool in a child).
        """
        settings = self._settings
        if settings is None:
            return
        _INHERITED.append((self._client, self._own))
        self._bind(_CLIENTS.from_url(settings))
        self._ready = _CLIENTS.ready(self._cluster)
        self._discovery = _CLIENTS.discovery_lock()

    def _bind(self, client: Any) -> None:
        """Run the tier's own reads and writes through ``client``.

        For a standalone client this tier built (:meth:`from_url`) the tier
        keeps connections of its own (:class:`AsyncTierConnections`); a client
        you passed in, and every cluster client, is used through its own
        methods, so that its retries and options hold.
        """
        self._client: Any = client
        self._own: AsyncTierConnections | None = None
        if self._settings is not None and not self._cluster:
            self._own = AsyncTierConnections(
                client, gone=self._connection_error, timeout=self._redis_timeout
            )
        commands: Any = self._own or client
        self._get = commands.get
        self._mget = client.mget_nonatomic if self._cluster else commands.mget
        self._set = commands.set
        self._evalsha = commands.evalsha

    async def _discover(self) -> None:
        """Discover the cluster once, whatever the number of concurrent first callers."""
        async with self._discovery:
            if self._ready:
                return
            try:
                await self._client.initialize()
            except self._driver_errors as exc:
                raise self._failed(exc) from exc
            self._ready = True

    async def _again(
        self, exc: BaseException, fn: Callable[..., Awaitable[_T]], *args: object
    ) -> _T:
        """After ``fn(*args)`` raised ``exc``: retry once on a dead connection, else fail.

        On a cluster the retry first re-reads the slot map: the refused node
        may have been failed over, and redis-py's asyncio cluster pipelines
        (multi-key commands split per slot) do not refresh it themselves.
        """
        if not self._retryable(exc):
            raise self._failed(exc) from exc
        if self._cluster:
            await self._refresh_slots()
        try:
            return await fn(*args)
        except self._driver_errors as again:
            raise self._failed(again) from again

    async def _refresh_slots(self) -> None:
        """Ask the cluster who serves which slot now (a failure is left to the retry)."""
        with contextlib.suppress(*self._driver_errors):
            await self._client.nodes_manager.initialize()

    async def _call(self, fn: Callable[..., Awaitable[_T]], *args: object) -> _T:
        breaker = self.breaker
        if not breaker.quiet:
            self._admit()
        if not self._ready:
            await self._discover()
        try:
            result = await fn(*args)
        except self._driver_errors as exc:
            result = await self._again(exc, fn, *args)
        if not breaker.quiet:
            breaker.record_success()
        return result

    async def execute(self, fn: Callable[..., Awaitable[_T]], *args: object) -> _T:
        """Run one redis-py call (``fn(*args)``) the way the tier runs its own.

        The circuit breaker admits it, a dead pooled connection is retried
        once, and a driver error becomes a :class:`BackendError` that counts
        towards opening the circuit.

        Raises:
            BackendError: If Redis fails (``CircuitOpenError`` while open).
        """
        return await self._call(fn, *args)

    def _uses_tags(self) -> None:
        """Tags are in use: on a standalone server, check them in the read's round trip."""
        if not self._cluster:
            self._checked_reads = True

    async def _read_checked(self, key: str) -> bytes | int | None:
        """The entry's bytes, ``None`` if absent, or 0 if one of its tags was invalidated."""
        try:
            return await self._evalsha(READ_TAGGED_SHA, 1, key)  # type: ignore[no-any-return]
        except self._no_script:
            await self._client.script_load(READ_TAGGED)
            return await self._evalsha(READ_TAGGED_SHA, 1, key)  # type: ignore[no-any-return]

    async def get(self, key: str) -> Entry | None:
        """Return the entry under ``key``, or ``None`` (missing, untrusted or invalidated).

        Raises:
            BackendError: If Redis fails (``CircuitOpenError`` while open).
        """
        # _call inlined: this is the L2 hit path.
        breaker = self.breaker
        if not breaker.quiet:
            self._admit()
        if not self._ready:
            await self._discover()
        checked = self._checked_reads
        read = self._read_checked if checked else self._get
        try:
            raw = await read(key)
        except self._driver_errors as exc:
            raw = await self._again(exc, read, key)
        if not breaker.quiet:
            breaker.record_success()
        if raw is None:
            return None
        if raw == 0:  # the read script: one of the entry's tags was invalidated
            self.tag_misses += 1
            return None
        entry = self._decode_one(raw, key)  # type: ignore[arg-type]
        if entry is None:
            self.decode_errors += 1
        elif entry.tags and not checked:  # a plain GET: check the tags with one more MGET
            self._uses_tags()
            versions = await self._call(self._mget, [tag for tag, _ in entry.tags])
            if not self._tags_current(entry, versions):
                return None
        return entry

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """Return the entries for ``keys`` in order (one round trip per slot group).

        Tagged entries are checked with one more ``MGET`` of all their tags.

        Raises:
            BackendError: If Redis fails.
        """
        if not keys:
            return []
        keys = list(keys)
        entries = self._decode_many(await self._call(self._mget, keys), keys)
        tagged = [i for i, entry in enumerate(entries) if entry is not None and entry.tags]
        if tagged:
            names = sorted({tag for i in tagged for tag, _ in entries[i].tags})  # type: ignore[union-attr]
            current = dict(zip(names, await self._call(self._mget, names), strict=True))
            for i in tagged:
                entry = entries[i]
                assert entry is not None
                if not self._tags_current(entry, [current[tag] for tag, _ in entry.tags]):
                    entries[i] = None
        return entries

    async def set(self, key: str, entry: Entry, *, now: float) -> None:
        """Store ``entry`` until ``entry.stale_until`` (``SET key value PX ms``).

        Raises:
            SerializationError: If the serializer cannot encode the value
                (nothing is written).
            BackendError: If Redis fails.
        """
        if entry.tags:
            self._uses_tags()
        data, px = self.encode(entry, now)
        await self._call(self._set, key, data, None, px)

    async def set_many(self, entries: Mapping[str, Entry], *, now: float) -> None:
        """Store several entries in one pipeline (per node on a cluster).

        Raises:
            SerializationError: If any value cannot be encoded (nothing is
                written).
            BackendError: If Redis fails.
        """
        if not entries:
            return
        if any(entry.tags for entry in entries.values()):
            self._uses_tags()
        items = self._encode_all(dict(entries), now)
        await self._call(self._write_pipeline, items)

    async def _write_pipeline(self, items: list[tuple[str, bytes, int | None]]) -> None:
        pipe = _CLIENTS.pipeline(self._client, self._cluster)
        for key, data, px in items:
            pipe.set(key, data, px=px)
        await pipe.execute()

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove ``keys`` (missing ones are ignored).

        Raises:
            BackendError: If Redis fails.
        """
        if keys:
            await self._call(self._client.delete, *keys)

    async def incr(self, key: str) -> int:
        """``INCR`` the counter ``key`` and return its new value.

        Raises:
            BackendError: If Redis fails.
        """
        return int(await self._call(self._client.incr, key))

    async def read_counter(self, key: str) -> int:
        """Return the counter ``key`` (0 if absent).

        Raises:
            BackendError: If Redis fails.
        """
        return self._counter(await self._call(self._get, key))

    async def read_counters(self, keys: Sequence[str]) -> list[int]:
        """Return the counters ``keys`` in order, 0 for an absent one (one ``MGET``).

        Raises:
            BackendError: If Redis fails.
        """
        if not keys:
            return []
        self._uses_tags()  # the cache stamps tags with these
        return [self._counter(raw) for raw in await self._call(self._mget, list(keys))]

    def load_lock(self, *, ttl: float, wait_timeout: float, refresh_ttl: float) -> AsyncRedisLock:
        """Build the distributed load lock a cache takes around its loads, on this tier's client.

        Args:
            ttl: Lifetime of a held lock (extended while its load runs).
            wait_timeout: Longest wait for another process's load.
            refresh_ttl: Lifetime of the refresh token.

        Returns:
            The lock.
        """
        return AsyncRedisLock(
            self._client, ttl=ttl, wait_timeout=wait_timeout, refresh_ttl=refresh_ttl
        )

    def invalidation_bus(self, *, channel: str = "perfprim:invalidate") -> RedisInvalidationBus:
        """Build a :class:`RedisInvalidationBus` on this tier's Redis.

        The bus runs a synchronous client in its own threads (so it serves
        sync and async caches alike), built from the tier's URL or from its
        client's host, port, database and credentials.

        Args:
            channel: The pub/sub channel shared by the processes of one cache.

        Returns:
            A bus, not started yet.
        """
        from perfprim.cache._invalidation import RedisInvalidationBus

        source = _CLIENTS.bus_source(self._client, self._cluster, self._settings)
        return RedisInvalidationBus(source, channel=channel)

    async def close(self) -> None:
        """Close the client's connections."""
        if self._own is not None:
            await self._own.close()
        await self._client.aclose()
