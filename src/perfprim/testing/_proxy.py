"""A loopback TCP proxy that injects network faults: added latency, a black hole, resets.

Put it between a client and a server (Redis, an HTTP service) to test what the
client does when the *network* misbehaves while the server is fine: every
chunk is delayed by a settable amount (in order, without serialising the
delays of pipelined chunks), or silently swallowed (a black hole: the
connection stays open and nothing comes back, as with a dropped route), or
every open connection is reset at once.

It runs an asyncio loop on its own daemon thread, so sync and async tests use
it alike; written by hand because the maintained proxies (toxiproxy) are
separate Go servers, not importable.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from types import TracebackType

from perfprim.testing._redis import RedisServerError, free_port

__all__ = ["TcpProxy"]

_HOST = "127.0.0.1"
_CHUNK = 65536
_LINGER_RESET = struct.pack("ii", 1, 0)  # close() sends RST


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port``, with injectable faults.

    Args:
        target_port: The port of the real server.
        target_host: Its address (loopback by default).
        port: The port to listen on; a free one by default.

    Modes (switch at any time, from any thread):

    - :meth:`heal`: pass everything through (the default).
    - :meth:`set_delay`: hold every chunk ``seconds`` before forwarding it,
      in each direction, so a request/response round trip takes about
      ``2 * seconds`` longer.
    - :meth:`blackhole`: accept connections and bytes, forward nothing (a
      dropped route: the client waits for its own timeout).
    - :meth:`reset_all`: close every open connection now (clients see a reset
      or EOF); new connections are accepted as usual.
    - :meth:`refuse`: stop listening (connection refused) until :meth:`heal`.

    Example:
        >>> import socket
        >>> with socket.create_server(("127.0.0.1", 0)) as server:
        ...     with TcpProxy(server.getsockname()[1]) as proxy:
        ...         proxy.set_delay(0.01)
        ...         proxy.delay
        0.01
    """

    def __init__(
        self, target_port: int, *, target_host: str = _HOST, port: int | None = None
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = _HOST
        self.port = port if port is not None else free_port()
        self._delay = 0.0
        self._blackhole = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._connections = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        """Start listening; returns once connections are accepted.

        Raises:
            RedisServerError: If the port cannot be bound.
        """
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"perfprim-proxy-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10.0)
        if failure:
            self.stop()
            raise RedisServerError(f"proxy could not listen on port {self.port}: {failure[0]}")
        return self

    def stop(self) -> None:
        """Close every connection and the listener, and end the proxy's thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10.0)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10.0)
        loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------------------

    @property
    def delay(self) -> float:
        """Seconds every chunk is held before it is forwarded."""
        return self._delay

    @property
    def connections(self) -> int:
        """How many client connections the proxy accepted so far."""
        return self._connections

    def set_delay(self, seconds: float) -> None:
        """Hold every chunk ``seconds`` (in each direction) before forwarding it.

        Raises:
            RedisServerError: If ``seconds`` is negative or not finite.
        """
        if not 0.0 <= seconds < float("inf"):
            raise RedisServerError(f"delay must be a finite number of seconds >= 0, got {seconds}")
        self._delay = float(seconds)

    def blackhole(self) -> None:
        """Swallow every byte from now on, in both directions (a dropped route)."""
        self._blackhole = True

    def heal(self) -> None:
        """Pass everything through again: no delay, no black hole, listening."""
        self._delay = 0.0
        self._blackhole = False
        if self._loop is not None and self._server is None:
            asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10.0)

    def reset_all(self) -> None:
        """Close every open connection now; new ones are accepted as before."""
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._close_connections(), self._loop).result(10.0)

    def refuse(self) -> None:
        """Stop listening and close every connection: clients get connection refused."""
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10.0)

    # -- the loop's side ---------------------------------------------------------------------

    async def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        await self._close_connections()

    async def _close_connections(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(OSError, AttributeError):
                sock = transport.get_extra_info("socket")
                if sock is not None:  # an RST, not a polite FIN: as when a route resets
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward chunks in order, each ``delay`` after it arrived (pipelined, not serial)."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def send() -> None:
            while True:
                item = await queue.get()
                if item is None:  # the reader's EOF, after every chunk before it
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                arrived, data = item
                wait = arrived + self._delay - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if self._blackhole:
                    continue
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                if not self._blackhole:
                    queue.put_nowait((time.monotonic(), data))
            queue.put_nowait(None)
            await sender
        finally:
            sender.cancel()

    def __repr__(self) -> str:
        mode = "blackhole" if self._blackhole else f"delay={self._delay:g}s"
        return f"TcpProxy({self.port} -> {self.target_host}:{self.target_port}, {mode})"
