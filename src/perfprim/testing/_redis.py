"""Process management for throwaway ``redis-server`` instances.

Speaks just enough RESP over a raw socket (PING, CLUSTER INFO) to know when a
server is ready, so that it needs no client library.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from perfprim.exceptions import PerfprimError

__all__ = ["RedisCluster", "RedisServer", "RedisServerError", "free_port"]

_HOST = "127.0.0.1"
_START_TIMEOUT = 10.0


class RedisServerError(PerfprimError, RuntimeError):
    """A throwaway Redis server or cluster could not be started or reached."""


def free_port(*, cluster_bus: bool = False) -> int:
    """Return a loopback TCP port that is free now.

    Args:
        cluster_bus: Also require ``port + 10000`` (the cluster bus port) free.

    Returns:
        The port number.

    Raises:
        RedisServerError: If no such port is found after many tries.
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((_HOST, 0))
            port: int = sock.getsockname()[1]
        if port + 10000 > 65535 and cluster_bus:
            continue
        if not cluster_bus or _port_is_free(port + 10000):
            return port
    raise RedisServerError(
        "no free loopback port found for a Redis cluster node"
    )  # pragma: no cover


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
    return True


def _command(port: int, *args: str, timeout: float = 1.0) -> bytes | None:
    """Send one command and return the raw reply payload (``None`` for a nil reply)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection((_HOST, port), timeout=timeout) as sock:
        sock.sendall(b"".join(parts))
        buf = b""
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n")
        kind, body = head[:1], head[1:]
        if kind == b"-":
            raise RedisServerError(body.decode(errors="replace"))
        if kind != b"$":
            return body
        length = int(body)
        if length < 0:
            return None
        while len(rest) < length + 2:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            rest += chunk
        return rest[:length]


class RedisServer:
    """One private ``redis-server`` process on a loopback port, with no persistence.

    Use :meth:`start` (or the class as a context manager) to launch it. The
    fault-injection methods act on the real process: :meth:`kill` (SIGKILL),
    :meth:`pause` (SIGSTOP: the server accepts connections and never answers,
    like a hung server), :meth:`resume` and :meth:`restart` (same port, empty
    data).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        executable: str = "redis-server",
    ) -> None:
        self.port = port if port is not None else free_port(cluster_bus=True)
        self.host = _HOST
        self.extra_args = extra_args
        self.executable = executable
        self._dir = Path(tempfile.mkdtemp(prefix=f"perfprim-redis-{self.port}-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False

    @staticmethod
    def available(executable: str = "redis-server") -> bool:
        """Return whether ``redis-server`` is on ``PATH``."""
        return shutil.which(executable) is not None

    @classmethod
    def start_new(cls, *, extra_args: tuple[str, ...] = ()) -> RedisServer:
        """Create a server on a free port and start it.

        Args:
            extra_args: Extra ``redis-server`` command-line arguments.

        Returns:
            The running server.
        """
        server = cls(extra_args=extra_args)
        server.start()
        return server

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The process id, or ``None`` when not running."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive (it may be paused)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the process and wait until it answers PING.

        Raises:
            RedisServerError: If ``redis-server`` is missing or does not answer
                within 10 seconds.
        """
        if self.running:
            return
        if not self.available(self.executable):
            raise RedisServerError(
                f"{self.executable!r} is not on PATH: install it "
                "(Debian: apt-get install redis-server) or set REDIS_URL"
            )
        args = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self._dir),
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self._dir / "redis.log"),
            *self.extra_args,
        ]
        self._process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._paused = False
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self.ping():
                return
            time.sleep(0.01)
        log = self.log_tail()
        self.kill()
        raise RedisServerError(f"redis-server on port {self.port} did not start: {log}")

    def ping(self, timeout: float = 0.5) -> bool:
        """Return whether the server answers PING within ``timeout`` seconds."""
        try:
            return _command(self.port, "PING", timeout=timeout) == b"PONG"
        except (OSError, RedisServerError):
            return False

    def command(self, *args: str, timeout: float = 1.0) -> bytes | None:
        """Send one command over a fresh connection and return the raw reply.

        Args:
            *args: The command and its arguments, e.g. ``("INFO", "commandstats")``.
            timeout: Socket timeout in seconds.

        Returns:
            The reply payload (simple or bulk string, or an integer as text),
            ``None`` for a nil reply.

        Raises:
            RedisServerError: If the server replies with an error.
            OSError: If the server cannot be reached in time.
        """
        return _command(self.port, *args, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the process (a crash: nothing is flushed) and reap it."""
        if self._process is None:
            return
        if self._paused:
            self.resume()
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()
        self._process.wait(timeout=10)
        self._process = None

    def pause(self) -> None:
        """SIGSTOP the process: connections are accepted by the kernel, never answered."""
        if self._process is None:
            raise RedisServerError("cannot pause a server that is not running")
        os.kill(self._process.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT a paused process."""
        if self._process is not None and self._paused:
            os.kill(self._process.pid, signal.SIGCONT)
            self._paused = False

    def restart(self) -> None:
        """Kill the process and start a new one on the same port (with empty data)."""
        self.kill()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the server's log file."""
        path = self._dir / "redis.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the process and remove its directory."""
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "paused" if self._paused else ("running" if self.running else "stopped")
        return f"RedisServer(port={self.port}, {state})"


class RedisCluster:
    """A real Redis Cluster of ``masters`` nodes (no replicas) on loopback ports.

    Nodes run with ``--cluster-enabled yes`` and are joined with
    ``redis-cli --cluster create``; :meth:`start` returns once every node
    reports ``cluster_state:ok``.
    """

    def __init__(self, *, masters: int = 3) -> None:
        if masters < 3:
            raise RedisServerError("a Redis Cluster needs at least 3 masters")
        self.nodes: list[RedisServer] = []
        self.masters = masters

    @property
    def host(self) -> str:
        """The loopback address every node listens on."""
        return _HOST

    @property
    def ports(self) -> list[int]:
        """The client ports of the nodes."""
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """A ``redis://`` URL of one node; cluster clients discover the others."""
        return self.nodes[0].url

    def start(self) -> None:
        """Start the nodes, create the cluster and wait for ``cluster_state:ok``.

        Raises:
            RedisServerError: If a node does not start or the cluster does not
                become healthy within 20 seconds.
        """
        for _ in range(self.masters):
            node = RedisServer(
                extra_args=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                )
            )
            self.nodes.append(node)
            node.start()
        if shutil.which("redis-cli") is None:
            self.stop()
            raise RedisServerError("redis-cli is not on PATH: install redis-server's tools")
        create = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"{_HOST}:{port}" for port in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if create.returncode != 0:
            self.stop()
            raise RedisServerError(f"redis-cli --cluster create failed: {create.stdout[-500:]!r}")
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            if all(b"cluster_state:ok" in self.cluster_info(node) for node in self.nodes):
                return
            time.sleep(0.05)
        self.stop()
        raise RedisServerError("the Redis Cluster did not reach cluster_state:ok in 20 s")

    @staticmethod
    def cluster_info(node: RedisServer) -> bytes:
        """Return the raw ``CLUSTER INFO`` reply of one node (empty if unreachable)."""
        try:
            return node.command("CLUSTER", "INFO") or b""
        except (OSError, RedisServerError):
            return b""

    def stop(self) -> None:
        """Stop every node and remove their directories."""
        for node in self.nodes:
            node.stop()
        self.nodes.clear()

    def __enter__(self) -> RedisCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisCluster(ports={self.ports})"
