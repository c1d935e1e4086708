"""``RedisInvalidationBus``: cross-process L1 invalidation over Redis pub/sub.

Two daemon threads per bus:

- the *listener* holds a pub/sub subscription to the channel and calls
  ``on_keys`` for every message from another process (``on_flush`` for an
  empty key list). Whenever it (re)subscribes, including the first time, it
  calls ``on_flush``: messages published while it was not subscribed are lost,
  so L1 may hold values that changed. It reconnects with capped exponential
  backoff and jitter until :meth:`RedisInvalidationBus.close` (or until the
  cache that started it is garbage-collected: the cache holds the bus, the
  bus holds the cache only weakly), and logs an outage once when it starts
  and once when it ends, not once per try.
- the *sender* drains a queue filled by :meth:`RedisInvalidationBus.publish`
  (which therefore never touches the network), merges what is pending into
  as few ``PUBLISH`` commands as possible and retries with backoff when Redis
  is away; past ``max_pending_keys`` the backlog collapses into one "flush
  all" message.

Each message carries the sender's random id, so a process ignores its own.
Classic ``PUBLISH`` is cluster-wide, so the bus works on a Redis Cluster too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from perfprim._durations import to_seconds
from perfprim.cache._fork import rearm_after_fork
from perfprim.cache._redis_common import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    ConnectionSettings,
    redis_module,
)
from perfprim.exceptions import ConfigurationError

__all__ = ["RedisInvalidationBus", "decode_message", "encode_message", "settings_from_async_client"]

_log = logging.getLogger("perfprim.cache")
_FORMAT = 1
_CHUNK_KEYS = 500
_POLL = 0.1  # seconds a thread waits before re-checking the stop flag
_STOP = object()
_INHERITED: list[object] = []  # a forked child's copies of the parent's clients (never used)


def encode_message(sender: str, keys: Sequence[str]) -> bytes:
    """Encode one bus message (an empty ``keys`` means "flush all").

    >>> decode_message(encode_message("me", ["a", "b"]))
    ('me', ['a', 'b'])
    """
    return json.dumps({"v": _FORMAT, "s": sender, "k": list(keys)}, separators=(",", ":")).encode()


def decode_message(data: bytes | str) -> tuple[str, list[str]] | None:
    """Decode a bus message into ``(sender, keys)``; ``None`` for anything foreign.

    >>> decode_message(b"hello") is None
    True
    """
    try:
        message = json.loads(data)
        sender, keys = message["s"], message["k"]
    except (ValueError, TypeError, KeyError):
        return None
    if (
        message.get("v") != _FORMAT
        or not isinstance(sender, str)
        or not isinstance(keys, list)
        or not all(isinstance(key, str) for key in keys)
    ):
        return None
    return sender, keys


def settings_from_async_client(client: object, cluster: bool) -> ConnectionSettings:
    """Connection settings for a sync client reaching the same server as an asyncio one.

    Args:
        client: A ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``.
        cluster: Whether it is a cluster client.

    Returns:
        Settings with the default (short) timeouts.
    """
    if cluster:
        # Before its first command an asyncio cluster client knows only its startup nodes.
        nodes = client.get_nodes() or list(  # type: ignore[attr-defined]
            client.nodes_manager.startup_nodes.values()  # type: ignore[attr-defined]
        )
        node = nodes[0]
        kwargs = dict(node.connection_kwargs)
        kwargs.update(host=node.host, port=node.port)
    else:
        kwargs = dict(client.connection_pool.connection_kwargs)  # type: ignore[attr-defined]
    user = kwargs.get("username") or ""
    password = kwargs.get("password") or ""
    auth = ""
    if user or password:
        auth = f"{quote(str(user), safe='')}:{quote(str(password), safe='')}@"
    if kwargs.get("path"):
        url = f"unix://{auth}{kwargs['path']}?db={kwargs.get('db', 0)}"
    else:
        scheme = "rediss" if kwargs.get("ssl") else "redis"
        db = "" if cluster else f"/{kwargs.get('db', 0)}"
        url = f"{scheme}://{auth}{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}{db}"
    return ConnectionSettings(url, cluster, DEFAULT_SOCKET_TIMEOUT, DEFAULT_CONNECT_TIMEOUT)


class RedisInvalidationBus:
    """Tells every process sharing a Redis to drop changed keys from its L1.

    Implements :class:`~perfprim.cache.InvalidationBus`. :meth:`publish`
    costs a queue put (microseconds); delivery to the other processes takes
    a pub/sub round trip (see the docs for the measured delay).

    Args:
        client_or_url: A ``redis://`` URL, a sync ``redis.Redis`` /
            ``redis.cluster.RedisCluster`` client, or a tier's connection
            settings.
        channel: The pub/sub channel shared by the processes of one cache.
        cluster: The URL names a node of a Redis Cluster.
        reconnect_min: First reconnect delay in seconds (doubles per failure).
        reconnect_max: Cap of the reconnect delay in seconds.
        health_check_interval: Seconds between PINGs on an idle subscription;
            with no reply for three intervals the connection is deemed dead
            (a hung server, a silently dropped TCP connection) and replaced,
            which flushes L1.
        max_pending_keys: Unsent keys kept while Redis is away; beyond that
            the backlog becomes one "flush all" message.
        rng: Random source for the backoff jitter (injectable).

    Raises:
        ConfigurationError: For a bad channel, client or option.
    """

    def __init__(
        self,
        client_or_url: object,
        *,
        channel: str = "perfprim:invalidate",
        cluster: bool = False,
        reconnect_min: float | timedelta = 0.05,
        reconnect_max: float | timedelta = 2.0,
        health_check_interval: float | timedelta = 5.0,
        max_pending_keys: int = 10_000,
        rng: Callable[[], float] = random.random,
    ) -> None:
        redis = redis_module("RedisInvalidationBus")
        channel_obj: object = channel
        if not isinstance(channel_obj, str) or not channel:
            raise ConfigurationError(f"channel must be a non-empty str, got {channel!r}")
        if max_pending_keys < 1:
            raise ConfigurationError(f"max_pending_keys must be >= 1, got {max_pending_keys!r}")
        self.channel = channel
        self.sender_id = uuid.uuid4().hex
        self.reconnect_min = to_seconds(reconnect_min, name="reconnect_min", allow_zero=True)
        self.reconnect_max = max(
            self.reconnect_min, to_seconds(reconnect_max, name="reconnect_max", allow_zero=True)
        )
        self.max_pending_keys = max_pending_keys
        self.health_check_interval = to_seconds(health_check_interval, name="health_check_interval")
        self._rng = rng
        self._owns_client = True
        if isinstance(client_or_url, str):
            client_or_url = ConnectionSettings(
                client_or_url, cluster, DEFAULT_SOCKET_TIMEOUT, DEFAULT_CONNECT_TIMEOUT
            )
        if isinstance(client_or_url, ConnectionSettings):
            settings = client_or_url
            factory = (
                redis.cluster.RedisCluster.from_url if settings.cluster else redis.Redis.from_url
            )
            self._make_client: Callable[[], object] = lambda: settings.build(
                factory, settings.client_kwargs()
            )
            self._client: object | None = None
        elif isinstance(client_or_url, (redis.Redis, redis.cluster.RedisCluster)):
            fixed = client_or_url
            self._make_client = lambda: fixed
            self._client = fixed
            self._owns_client = False
        else:
            raise ConfigurationError(
                "RedisInvalidationBus needs a redis:// URL or a sync redis.Redis / "
                f"redis.cluster.RedisCluster client, got {type(client_or_url).__name__}"
            )
        self._driver_errors: tuple[type[BaseException], ...] = (
            redis.exceptions.RedisError,
            redis.exceptions.RedisClusterException,
            OSError,
        )
        self._client_lock = threading.Lock()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._callbacks: tuple[Callable[[Sequence[str]], None], Callable[[], None]] | None = None
        self._pubsub: object | None = None
        self.received = 0
        """Messages from other processes handed to ``on_keys`` / ``on_flush``."""
        self.published = 0
        """``PUBLISH`` commands sent."""
        self.subscriptions = 0
        """Successful (re)subscriptions; each one called ``on_flush``."""
        self.send_errors = 0
        """Failed ``PUBLISH`` attempts (retried)."""

    # -- the caller's side ---------------------------------------------------------------

    def publish(self, keys: Sequence[str]) -> None:
        """Queue a message: ``keys`` changed (empty: flush all). Never blocks.

        Args:
            keys: The complete keys (as the tiers see them) that changed.
        """
        if not self._stop.is_set():
            self._queue.put(tuple(keys))

    def start(
        self,
        on_keys: Callable[[Sequence[str]], None],
        on_flush: Callable[[], None],
    ) -> None:
        """Start the listener and sender threads.

        Args:
            on_keys: Called (in the listener thread) with the keys of each
                message from another process.
            on_flush: Called for a "flush all" message and after every
                (re)subscription.

        Raises:
            ConfigurationError: If the bus was already started or closed.
        """
        if self._threads or self._stop.is_set():
            raise ConfigurationError("start() may be called once per RedisInvalidationBus")
        self._callbacks = (on_keys, on_flush)
        rearm_after_fork(self)
        self._start_threads(on_keys, on_flush)

    def _start_threads(
        self, on_keys: Callable[[Sequence[str]], None], on_flush: Callable[[], None]
    ) -> None:
        self._threads = [
            threading.Thread(
                target=self._listen,
                args=(on_keys, on_flush),
                name=f"perfprim-bus-listen-{self.channel}",
                daemon=True,
            ),
            threading.Thread(
                target=self._send, name=f"perfprim-bus-send-{self.channel}", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def _after_fork(self) -> None:
        """In a forked child: the parent's threads are gone; start ours (a new sender id).

        The new subscription flushes the child's L1, as after any gap.
        """
        callbacks = self._callbacks
        if callbacks is None or self._stop.is_set():
            return
        self.sender_id = uuid.uuid4().hex
        self._client_lock = threading.Lock()
        self._queue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        # The parent's client and pub/sub are kept, never used: touching them (even their
        # __del__) would take locks another thread of the parent may have held at fork.
        _INHERITED.append((self._client, self._pubsub))
        self._pubsub = None
        if self._owns_client:
            self._client = None
        self._start_threads(*callbacks)

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the listener is subscribed (or ``timeout`` seconds pass).

        Returns:
            Whether it is subscribed.
        """
        return self._subscribed.wait(timeout)

    @property
    def subscribed(self) -> bool:
        """Whether the listener currently holds a subscription."""
        return self._subscribed.is_set()

    def close(self, timeout: float | timedelta = 2.0) -> None:
        """Stop both threads (pending messages get one last send attempt) and disconnect.

        Args:
            timeout: Seconds (or a ``timedelta``) to wait for each thread.

        Raises:
            ConfigurationError: If ``timeout`` is not a positive duration.
        """
        wait = to_seconds(timeout, name="timeout")
        self._stop.set()
        self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(wait)
        pubsub = self._pubsub
        if pubsub is not None:
            with contextlib.suppress(*self._driver_errors):
                pubsub.close()  # type: ignore[attr-defined]
        if self._owns_client and self._client is not None:
            with contextlib.suppress(*self._driver_errors):
                self._client.close()  # type: ignore[attr-defined]

    # -- the threads ---------------------------------------------------------------------

    def _get_client(self) -> object:
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _backoff(self, attempt: int) -> float:
        base = min(self.reconnect_max, self.reconnect_min * (2.0 ** min(attempt, 30)))
        return base * (0.5 + 0.5 * self._rng())  # "equal jitter"

    def _listen(
        self, on_keys: Callable[[Sequence[str]], None], on_flush: Callable[[], None]
    ) -> None:
        attempt = 0
        outage: _Outage | None = None
        while not self._stop.is_set():
            try:
                pubsub = self._get_client().pubsub()  # type: ignore[attr-defined]
                self._pubsub = pubsub
                try:
                    pubsub.subscribe(self.channel)
                    self._confirm(pubsub)
                    self._subscribed.set()
                    self.subscriptions += 1
                    attempt = 0
                    if outage is not None:
                        outage.ended("subscribed again")
                        outage = None
                    _safely(on_flush)
                    self._serve(pubsub, on_keys, on_flush)
                finally:
                    self._subscribed.clear()
                    self._pubsub = None
                    with contextlib.suppress(*self._driver_errors):
                        pubsub.close()
            except self._driver_errors as exc:
                if self._stop.is_set():
                    return
                if outage is None:
                    outage = _Outage(self.channel, "subscription lost", exc)
                else:
                    outage.again(exc)
            except Exception:  # pragma: no cover - keep the bus alive whatever happens
                _log.exception("perfprim invalidation bus %r: listener error", self.channel)
            self._stop.wait(self._backoff(attempt))
            attempt += 1

    def _serve(
        self,
        pubsub: Any,
        on_keys: Callable[[Sequence[str]], None],
        on_flush: Callable[[], None],
    ) -> None:
        interval = self.health_check_interval
        wait = min(_POLL, interval)
        last_seen = time.monotonic()
        ping_sent: float | None = None
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=wait)
            now = time.monotonic()
            if message is not None:
                last_seen, ping_sent = now, None
                kind = message.get("type")
                if kind == "message":
                    self._deliver(message["data"], on_keys, on_flush)
                elif kind == "subscribe":
                    # redis-py reconnected and resubscribed by itself (a client built
                    # with retries): there was a gap all the same.
                    self.subscriptions += 1
                    _safely(on_flush)
            elif ping_sent is not None:
                if now - ping_sent > 2.0 * interval:
                    raise OSError(f"no reply to PING for {now - ping_sent:.2f} s")
            elif now - last_seen >= interval:
                pubsub.ping()
                ping_sent = now

    def _confirm(self, pubsub: object) -> None:
        # Wait (bounded) for the server's "subscribe" reply: only then are we
        # sure to receive what is published from now on.
        for _ in range(50):
            if self._stop.is_set():
                return
            message = pubsub.get_message(timeout=_POLL)  # type: ignore[attr-defined]
            if message is not None and message.get("type") == "subscribe":
                return
        raise OSError("no subscribe confirmation from Redis within 5 s")

    def _deliver(
        self,
        data: bytes,
        on_keys: Callable[[Sequence[str]], None],
        on_flush: Callable[[], None],
    ) -> None:
        decoded = decode_message(data)
        if decoded is None:
            _log.warning("perfprim invalidation bus %r: ignoring a foreign message", self.channel)
            return
        sender, keys = decoded
        if sender == self.sender_id:
            return
        self.received += 1
        if keys:
            _safely(on_keys, keys)
        else:
            _safely(on_flush)

    def _send(self) -> None:
        pending: dict[str, None] | None = None  # None: nothing; empty: flush all
        attempt = 0
        outage: _Outage | None = None
        while True:
            stopping = self._stop.is_set()
            try:
                item = (
                    self._queue.get(timeout=_POLL) if pending is None else self._queue.get_nowait()
                )
            except queue.Empty:
                item = None
            while item is not None:
                if item is _STOP:
                    stopping = True
                else:
                    pending = self._merge(pending, item)  # type: ignore[arg-type]
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            if pending is not None:
                try:
                    self._publish_now(list(pending))
                    pending = None
                    attempt = 0
                    if outage is not None:
                        outage.ended("publishing again")
                        outage = None
                except self._driver_errors as exc:
                    self.send_errors += 1
                    if outage is None:
                        outage = _Outage(self.channel, "publish failed", exc)
                    else:
                        outage.again(exc)
                    if not stopping:
                        self._stop.wait(self._backoff(attempt))
                        attempt += 1
            if stopping:
                return

    def _merge(self, pending: dict[str, None] | None, keys: tuple[str, ...]) -> dict[str, None]:
        if not keys or (pending is not None and not pending):
            return {}  # "flush all" absorbs everything
        if pending is None:
            pending = {}
        pending.update(dict.fromkeys(keys))
        if len(pending) > self.max_pending_keys:
            return {}
        return pending

    def _publish_now(self, keys: list[str]) -> None:
        client = self._get_client()
        chunks = [keys[i : i + _CHUNK_KEYS] for i in range(0, len(keys), _CHUNK_KEYS)] or [[]]
        for chunk in chunks:
            client.publish(self.channel, encode_message(self.sender_id, chunk))  # type: ignore[attr-defined]
            self.published += 1

    def __repr__(self) -> str:
        return (
            f"RedisInvalidationBus(channel={self.channel!r}, subscribed={self.subscribed}, "
            f"received={self.received}, published={self.published})"
        )


class _Outage:
    """One outage of the bus's connection: logged once when it starts and once when it ends.

    A bus retries every few hundred milliseconds; a warning per try would
    flood the log of every process for as long as Redis is away.
    """

    __slots__ = ("channel", "started", "tries", "what")

    def __init__(self, channel: str, what: str, exc: BaseException) -> None:
        self.channel = channel
        self.what = what
        self.started = time.monotonic()
        self.tries = 1
        _log.warning(
            "perfprim invalidation bus %r: %s (%s: %s); retrying with backoff "
            "(L1 copies stay bounded by their TTL meanwhile)",
            channel,
            what,
            type(exc).__name__,
            exc,
        )

    def again(self, exc: BaseException) -> None:
        self.tries += 1
        _log.debug("perfprim invalidation bus %r: still failing (%s)", self.channel, exc)

    def ended(self, how: str) -> None:
        _log.info(
            "perfprim invalidation bus %r: %s after %.1f s and %d tries",
            self.channel,
            how,
            time.monotonic() - self.started,
            self.tries,
        )


def _safely(fn: Callable[..., None], *args: object) -> None:
    try:
        fn(*args)
    except Exception:
        _log.exception("perfprim invalidation bus: callback %r raised", fn)
