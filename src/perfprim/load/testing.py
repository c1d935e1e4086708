"""A loopback HTTP server to point load tests at: stalls, bottlenecks and USL costs on demand.

:class:`LoopbackServer` runs ``python -m perfprim.load.testing`` in a
subprocess on ``127.0.0.1`` (a free port) so that it has its own core and
its own GIL, and stops it on exit. It answers every request with ``200 ok``
(keep-alive, HTTP/1.1) and can be told to misbehave in ways whose effect on
latency and throughput is known in advance:

- ``stall_every`` / ``stall_for``: every ``stall_every`` seconds the server
  stalls for ``stall_for`` seconds; a request that arrives during a stall is
  answered when it ends (experiment 1, coordinated omission).
- ``delay``: every answer waits this long (service time).
- ``serial``: every request holds one server-wide lock for this long (a
  bottleneck with a known peak of ``1 / serial`` requests per second). The
  lock is the server's event loop itself: a blocking ``time.sleep``, which
  keeps to the microsecond where asyncio's timers round to the millisecond.
- ``usl=(sigma, kappa, lambda_)``: a request that arrives while ``N``
  requests are in the server (itself included) takes
  ``(1 + sigma (N - 1) + kappa N (N - 1)) / lambda_`` seconds, so a closed
  loop of ``N`` clients sees Gunther's USL throughput exactly.
- a path ``/status/NNN`` answers with that status code.

The server is a small asyncio protocol written here rather than an
``aiohttp.web`` app: a canned answer parsed with one ``find`` is several
times faster than a framework's request object, and the server must not be
the bottleneck when the load driver's own capacity is measured. It speaks
just enough HTTP/1.1 for load tests (``Content-Length`` bodies, keep-alive,
no chunked uploads, no pipelining order beyond one request at a time per
connection).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from perfprim.exceptions import ConfigurationError

__all__ = ["LoopbackServer", "ServerBehaviour"]

_READY = "perfprim-loopback-server port="
_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServerBehaviour:
    """How a :class:`LoopbackServer` answers (all times in seconds; 0 = off).

    Attributes:
        delay: Service time added to every answer.
        stall_every: Period of the stalls.
        stall_for: Length of each stall (at the start of each period).
        serial: Time each request holds one server-wide lock.
        usl: ``(sigma, kappa, lambda_)`` of an in-flight-dependent service time.
    """

    delay: float = 0.0
    stall_every: float = 0.0
    stall_for: float = 0.0
    serial: float = 0.0
    usl: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("delay", "stall_every", "stall_for", "serial"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                msg = f"{name} must be a number of seconds >= 0, got {value!r}"
                raise ConfigurationError(msg)
        if (self.stall_every > 0) != (self.stall_for > 0) or self.stall_for > self.stall_every:
            msg = (
                "give stall_every and stall_for together, with 0 < stall_for <= stall_every "
                f"(got stall_every={self.stall_every!r}, stall_for={self.stall_for!r})"
            )
            raise ConfigurationError(msg)
        usl: object = self.usl  # checked at runtime: callers may not be type-checked
        if usl is not None and (not isinstance(usl, tuple) or len(usl) != 3 or usl[2] <= 0):
            msg = f"usl must be (sigma, kappa, lambda_) with lambda_ > 0, got {self.usl!r}"
            raise ConfigurationError(msg)

    def arguments(self) -> list[str]:
        """Return the command-line arguments that recreate this behaviour."""
        args = [
            f"--delay={self.delay!r}",
            f"--stall-every={self.stall_every!r}",
            f"--stall-for={self.stall_for!r}",
            f"--serial={self.serial!r}",
        ]
        if self.usl is not None:
            args.append("--usl=" + ",".join(repr(float(x)) for x in self.usl))
        return args


class LoopbackServer:
    """Run the loopback HTTP server in a subprocess: ``with LoopbackServer() as s: s.url``.

    Args:
        behaviour: How to answer; keyword options build one when omitted.
        cpu: Pin the server process to this CPU (``os.sched_setaffinity``),
            or None to let the OS schedule it.
        start_timeout: Seconds to wait for the server to listen.
        **options: Fields of :class:`ServerBehaviour` (``delay=0.01``, ...).

    Raises:
        ConfigurationError: If a behaviour option is invalid.
        RuntimeError: If the server does not start in time.

    Example:
        >>> import urllib.request
        >>> with LoopbackServer() as server, urllib.request.urlopen(server.url) as answer:
        ...     answer.read()
        b'ok'
    """

    def __init__(
        self,
        behaviour: ServerBehaviour | None = None,
        *,
        cpu: int | None = None,
        start_timeout: float = 20.0,
        **options: object,
    ) -> None:
        if behaviour is None:
            behaviour = ServerBehaviour(**options)  # type: ignore[arg-type]
        elif options:
            msg = "pass either a ServerBehaviour or keyword options, not both"
            raise ConfigurationError(msg)
        self.behaviour = behaviour
        self._cpu = cpu
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/``."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        """The server process id (0 when not running)."""
        return self._process.pid if self._process is not None else 0

    def start(self) -> LoopbackServer:
        """Start the subprocess and wait until it listens.

        Returns:
            self.
        """
        cmd = [sys.executable, "-m", "perfprim.load.testing", *self.behaviour.arguments()]
        if self._cpu is not None:
            cmd.append(f"--cpu={self._cpu}")
        self._process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self._process.stdout is not None
        deadline = time.monotonic() + self._start_timeout
        line = ""
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if line.startswith(_READY) or not line:
                break
        if not line.startswith(_READY):
            self.stop()
            msg = "the loopback server did not start; run `python -m perfprim.load.testing`"
            raise RuntimeError(msg)
        self.port = int(line[len(_READY) :])
        return self

    def stop(self) -> None:
        """Stop the subprocess (idempotent)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a wedged server
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _answer(status: int) -> bytes:  # pragma: no cover - runs in the server subprocess
    reason = _REASONS.get(status, "Status")
    body = b"ok" if status < 400 else reason.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
        "Content-Type: text/plain\r\n\r\n"
    ).encode() + body


_OK = _answer(200)  # pragma: no cover - runs in the server subprocess


class _State:  # pragma: no cover - runs in the server subprocess
    """What all connections share: the behaviour, its clock origin and the in-flight count."""

    def __init__(self, behaviour: ServerBehaviour) -> None:
        self.behaviour = behaviour
        self.origin = time.monotonic()
        self.in_flight = 0
        self.slow = bool(
            behaviour.delay or behaviour.stall_every or behaviour.serial or behaviour.usl
        )

    async def hold(self) -> None:
        """Wait as the behaviour says for one request."""
        b = self.behaviour
        self.in_flight += 1
        try:
            if b.stall_every:
                phase = (time.monotonic() - self.origin) % b.stall_every
                if phase < b.stall_for:
                    await asyncio.sleep(b.stall_for - phase)
            if b.usl is not None:
                sigma, kappa, lam = b.usl
                n = self.in_flight
                await asyncio.sleep((1.0 + sigma * (n - 1) + kappa * n * (n - 1)) / lam)
            if b.serial:
                time.sleep(b.serial)  # noqa: ASYNC251 - blocking the loop IS the server-wide lock
            if b.delay:
                await asyncio.sleep(b.delay)
        finally:
            self.in_flight -= 1


class _Connection(asyncio.Protocol):  # pragma: no cover - runs in the server subprocess
    def __init__(self, state: _State) -> None:
        self._state = state
        self._buf = b""
        self._transport: asyncio.Transport | None = None
        self._busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._busy:
            self._process()

    def _process(self) -> None:
        transport = self._transport
        while transport is not None and not transport.is_closing():
            request = self._take_request()
            if request is None:
                return
            status = _status_of(request)
            if self._state.slow:
                self._busy = True
                asyncio.get_running_loop().create_task(self._slow(status))
                return
            transport.write(_OK if status == 200 else _answer(status))

    def _take_request(self) -> bytes | None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = buf[:end]
        length = 0
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = lower.find(b"\r\n", at + 2)
            length = int(lower[at + 17 : stop if stop >= 0 else None].strip() or 0)
        if len(buf) < end + 4 + length:
            return None
        self._buf = buf[end + 4 + length :]
        return head

    async def _slow(self, status: int) -> None:
        await self._state.hold()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(_OK if status == 200 else _answer(status))
        self._busy = False
        self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def _status_of(head: bytes) -> int:  # pragma: no cover - runs in the server subprocess
    line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
    parts = line.split(b" ")
    path = parts[1] if len(parts) > 1 else b"/"
    if path.startswith(b"/status/"):
        with contextlib.suppress(ValueError):
            return int(path[8:11])
    return 200


async def _serve(
    behaviour: ServerBehaviour, port: int
) -> None:  # pragma: no cover - runs in the server subprocess
    loop = asyncio.get_running_loop()
    state = _State(behaviour)
    server = await loop.create_server(
        lambda: _Connection(state), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"{_READY}{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(
    argv: Sequence[str] | None = None,
) -> None:  # pragma: no cover - runs in the server subprocess
    """Run the server in the foreground (``python -m perfprim.load.testing --help``).

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(description="perfprim loopback HTTP server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--stall-every", type=float, default=0.0)
    parser.add_argument("--stall-for", type=float, default=0.0)
    parser.add_argument("--serial", type=float, default=0.0)
    parser.add_argument("--usl", type=str, default="")
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args(argv)
    usl = tuple(float(x) for x in args.usl.split(",")) if args.usl else None
    behaviour = ServerBehaviour(
        delay=args.delay,
        stall_every=args.stall_every,
        stall_for=args.stall_for,
        serial=args.serial,
        usl=usl,  # type: ignore[arg-type]
    )
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:  # pragma: no cover - only where uvloop is installed
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(_serve(behaviour, args.port))


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    main()
