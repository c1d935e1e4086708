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
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from perfprim.exceptions import PerfprimError

__all__ = ["ClusterNode", "RedisCluster", "RedisServer", "RedisServerError", "free_port"]

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


Reply = bytes | None | list[bytes | None]


def _read_line(sock: socket.socket, buf: bytearray) -> bytes:
    while True:
        end = buf.find(b"\r\n")
        if end >= 0:
            line = bytes(buf[:end])
            del buf[: end + 2]
            return line
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk


def _read_exact(sock: socket.socket, buf: bytearray, length: int) -> bytes:
    while len(buf) < length + 2:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    data = bytes(buf[:length])
    del buf[: length + 2]
    return data


def _read_scalar(sock: socket.socket, buf: bytearray, head: bytes) -> bytes | None:
    kind, body = head[:1], head[1:]
    if kind == b"-":
        raise RedisServerError(body.decode(errors="replace"))
    if kind != b"$":
        return body  # simple string or integer, as text
    length = int(body)
    return None if length < 0 else _read_exact(sock, buf, length)


def _command(port: int, *args: str, timeout: float = 1.0) -> Reply:
    """Send one command; return a scalar reply, or a flat array reply as a list."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode("utf-8", "surrogateescape")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection((_HOST, port), timeout=timeout) as sock:
        sock.sendall(b"".join(parts))
        buf = bytearray()
        head = _read_line(sock, buf)
        if head[:1] != b"*":
            return _read_scalar(sock, buf, head)
        count = int(head[1:])
        if count < 0:
            return None
        return [_read_scalar(sock, buf, _read_line(sock, buf)) for _ in range(count)]


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
    def paused(self) -> bool:
        """Whether the process is stopped by :meth:`pause` (SIGSTOP)."""
        return self._paused

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
        reply = _command(self.port, *args, timeout=timeout)
        if isinstance(reply, list):
            raise RedisServerError(f"{args[0]} replies with an array: use command_array()")
        return reply

    def command_array(self, *args: str, timeout: float = 1.0) -> list[bytes | None]:
        """Send one command whose reply is a flat array (``CLUSTER GETKEYSINSLOT``...).

        Args:
            *args: The command and its arguments.
            timeout: Socket timeout in seconds.

        Returns:
            The array's items (``None`` for nil items; empty for a nil array).

        Raises:
            RedisServerError: If the server replies with an error or a scalar.
            OSError: If the server cannot be reached in time.
        """
        reply = _command(self.port, *args, timeout=timeout)
        if reply is None:
            return []
        if not isinstance(reply, list):
            raise RedisServerError(f"{args[0]} replies with a scalar: use command()")
        return reply

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


_SLOTS = 16384


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One line of ``CLUSTER NODES``: a node as the cluster sees it.

    Attributes:
        node_id: The node's cluster id.
        port: Its client port.
        role: ``"master"`` or ``"replica"``.
        master_id: For a replica, the id of its master; else ``None``.
        failed: Flagged ``fail`` (or ``fail?``) by the node that was asked.
        connected: Its cluster-bus link is up.
        slots: The slot ranges it serves, inclusive (masters only).
    """

    node_id: str
    port: int
    role: str
    master_id: str | None
    failed: bool
    connected: bool
    slots: tuple[tuple[int, int], ...]

    @property
    def slot_count(self) -> int:
        """How many slots this node serves."""
        return sum(end - start + 1 for start, end in self.slots)


def _parse_nodes(raw: bytes) -> list[ClusterNode]:
    nodes = []
    for line in raw.decode().splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        flags = set(fields[2].split(","))
        slots = []
        for item in fields[8:]:
            if item.startswith("["):
                continue  # a slot being migrated or imported: not served yet
            start, _, end = item.partition("-")
            slots.append((int(start), int(end or start)))
        nodes.append(
            ClusterNode(
                node_id=fields[0],
                port=int(fields[1].split("@")[0].rsplit(":", 1)[1]),
                role="master" if "master" in flags else "replica",
                master_id=None if fields[3] == "-" else fields[3],
                failed=bool(flags & {"fail", "fail?"}),
                connected=fields[7] == "connected",
                slots=tuple(slots),
            )
        )
    return nodes


class RedisCluster:
    """A real Redis Cluster on loopback ports: ``masters`` masters, ``replicas`` each.

    Nodes run with ``--cluster-enabled yes`` and are joined with
    ``redis-cli --cluster create``; :meth:`start` returns once every node
    reports ``cluster_state:ok`` and every replica is in sync with its master.

    Fault injection for failover tests: :meth:`kill_master` (SIGKILL a master
    that has a replica; the cluster promotes the replica after
    ``node_timeout``), :meth:`wait_for_failover`, :meth:`failover` (a manual
    ``CLUSTER FAILOVER`` on a replica, no data lost), :meth:`migrate_slot`
    (moves a slot and its keys to another master: clients meet ``ASK`` while it
    runs and ``MOVED`` after), :meth:`restart_node` (a killed node rejoins, as a
    replica of whoever took its slots). :meth:`topology` reads
    ``CLUSTER NODES``; :meth:`wait_healthy` waits until every slot is served.

    Args:
        masters: Number of masters (at least 3).
        replicas: Replicas per master.
        node_timeout: ``cluster-node-timeout`` in seconds: how long a master
            may be unreachable before its replica takes over. Short values
            fail over fast but may fire on a very busy machine.
    """

    def __init__(self, *, masters: int = 3, replicas: int = 0, node_timeout: float = 5.0) -> None:
        if masters < 3:
            raise RedisServerError("a Redis Cluster needs at least 3 masters")
        if replicas < 0:
            raise RedisServerError(f"replicas must be >= 0, got {replicas}")
        if not node_timeout > 0:
            raise RedisServerError(f"node_timeout must be > 0 seconds, got {node_timeout}")
        self.nodes: list[RedisServer] = []
        self.masters = masters
        self.replicas = replicas
        self.node_timeout = node_timeout
        self._lost_slots: dict[int, tuple[tuple[int, int], ...]] = {}

    @property
    def host(self) -> str:
        """The loopback address every node listens on."""
        return _HOST

    @property
    def ports(self) -> list[int]:
        """The client ports of the nodes (masters and replicas, in start order)."""
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """A ``redis://`` URL of one node; cluster clients discover the others."""
        return self.nodes[0].url

    def start(self) -> None:
        """Start the nodes, create the cluster and wait until it is healthy.

        Raises:
            RedisServerError: If a node does not start or the cluster does not
                become healthy within 30 seconds.
        """
        timeout_ms = str(max(1, round(self.node_timeout * 1000)))
        for _ in range(self.masters * (1 + self.replicas)):
            node = RedisServer(
                extra_args=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    timeout_ms,
                    # A replica may always take over, however long it was cut off:
                    # failover tests must not depend on how busy the machine was.
                    "--cluster-replica-validity-factor",
                    "0",
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
                str(self.replicas),
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
        try:
            self.wait_healthy(timeout=30.0)
        except RedisServerError:
            self.stop()
            raise

    @staticmethod
    def cluster_info(node: RedisServer) -> bytes:
        """Return the raw ``CLUSTER INFO`` reply of one node (empty if unreachable)."""
        try:
            return node.command("CLUSTER", "INFO") or b""
        except (OSError, RedisServerError):
            return b""

    # -- reading the cluster's state ---------------------------------------------------------

    def node(self, port: int) -> RedisServer:
        """Return the node listening on ``port``.

        Raises:
            RedisServerError: If no node of this cluster has that port.
        """
        for node in self.nodes:
            if node.port == port:
                return node
        raise RedisServerError(f"no node of this cluster listens on port {port}")

    def _live(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.running and not node.paused]

    def topology(self, via: RedisServer | None = None) -> list[ClusterNode]:
        """Return ``CLUSTER NODES`` as seen by ``via`` (default: the first live node).

        Raises:
            RedisServerError: If no live node answers.
        """
        for node in [via] if via is not None else self._live():
            try:
                raw = node.command("CLUSTER", "NODES")
            except (OSError, RedisServerError):
                continue
            if raw:
                return _parse_nodes(raw)
        raise RedisServerError("no live node of the cluster answers CLUSTER NODES")

    def _master_ports(self, via: RedisServer | None = None) -> list[int]:
        return [n.port for n in self.topology(via) if n.role == "master" and n.slot_count]

    def current_masters(self) -> list[RedisServer]:
        """The nodes serving slots now (after failovers, not the start order)."""
        return [self.node(port) for port in self._master_ports()]

    def replicas_of(self, master: RedisServer) -> list[RedisServer]:
        """The nodes replicating ``master`` now."""
        view = self.topology()
        ids = {n.node_id for n in view if n.port == master.port}
        return [self.node(n.port) for n in view if n.role == "replica" and n.master_id in ids]

    def slot_of(self, key: str) -> int:
        """The hash slot of ``key`` (``CLUSTER KEYSLOT``, hash tags included)."""
        for node in self._live():
            try:
                return int(node.command("CLUSTER", "KEYSLOT", key) or b"-1")
            except (OSError, RedisServerError):
                continue
        raise RedisServerError("no live node of the cluster answers CLUSTER KEYSLOT")

    def master_for_slot(self, slot: int) -> RedisServer:
        """The master serving ``slot`` now.

        Raises:
            RedisServerError: If no master serves it (a failover is under way).
        """
        for n in self.topology():
            if n.role == "master" and any(a <= slot <= b for a, b in n.slots):
                return self.node(n.port)
        raise RedisServerError(f"no master serves slot {slot} now")

    def _healthy(self) -> bool:
        live = self._live()
        if not live:
            return False
        for node in live:
            info = self.cluster_info(node)
            if b"cluster_state:ok" not in info or b"cluster_slots_ok:16384" not in info:
                return False
        try:
            views = [self.topology(node) for node in live]
        except RedisServerError:
            return False
        live_ports = {node.port for node in live}
        first = {n.port: n.slots for n in views[0] if n.role == "master" and n.slot_count}
        if (
            not set(first) <= live_ports
            or sum(end - start + 1 for slots in first.values() for start, end in slots) != _SLOTS
        ):
            return False
        for view in views[1:]:  # every live node agrees on who serves what
            if first != {n.port: n.slots for n in view if n.role == "master" and n.slot_count}:
                return False
        for n in views[0]:
            if n.port in live_ports and n.role == "master" and not n.slot_count:
                return False  # a node still joining (replicas start as empty masters)
            if n.role == "replica" and n.port in live_ports:
                repl = self.node(n.port).command("INFO", "replication") or b""
                if b"master_link_status:up" not in repl:
                    return False
        return True

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until the cluster is whole: every slot served, every replica in sync.

        Every live node reports ``cluster_state:ok`` and agrees on the slot
        map, every slot is served by a live master, and every live replica's
        link to its master is up.

        Raises:
            RedisServerError: If that does not happen within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._healthy():
                return
            time.sleep(0.05)
        raise RedisServerError(f"the Redis Cluster did not become healthy in {timeout:g} s")

    # -- faults ------------------------------------------------------------------------------

    def kill_master(self, master: RedisServer | None = None) -> RedisServer:
        """SIGKILL a master that has a replica (default: the first such one).

        Returns:
            The killed node (:meth:`restart_node` brings it back as a replica).

        Raises:
            RedisServerError: If the cluster has no master with a replica.
        """
        candidates = [master] if master is not None else self.current_masters()
        view = self.topology()
        for node in candidates:
            if self.replicas_of(node):
                served = [n.slots for n in view if n.port == node.port]
                self._lost_slots[node.port] = served[0] if served else ()
                node.kill()
                return node
        raise RedisServerError("no master with a replica to fail over to (start with replicas=1)")

    def wait_for_failover(self, dead: RedisServer, timeout: float = 30.0) -> RedisServer:
        """Wait until a replica of ``dead`` serves its slots and the cluster is healthy.

        ``dead`` is a master killed by :meth:`kill_master`.

        Returns:
            The promoted node.

        Raises:
            RedisServerError: If ``dead`` was not killed by :meth:`kill_master`, or no
                replica took over within ``timeout`` seconds.
        """
        slots = self._lost_slots.get(dead.port)
        if not slots:
            raise RedisServerError(f"port {dead.port} was not killed by kill_master()")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._healthy():
                owner = self.master_for_slot(slots[0][0])
                if owner.port != dead.port:
                    del self._lost_slots[dead.port]
                    return owner
            time.sleep(0.05)
        raise RedisServerError(f"no replica took over from port {dead.port} in {timeout:g} s")

    def failover(self, replica: RedisServer, *, force: bool = False, timeout: float = 30.0) -> None:
        """Promote ``replica`` with ``CLUSTER FAILOVER`` (its master becomes its replica).

        A manual failover loses no acknowledged write: the replica catches up
        with its master before they swap. ``force`` skips that handshake.

        Raises:
            RedisServerError: If ``replica`` is not a replica, or is not serving
                slots as a master within ``timeout`` seconds.
        """
        if replica.port not in {n.port for n in self.topology() if n.role == "replica"}:
            raise RedisServerError(f"port {replica.port} is not a replica")
        replica.command("CLUSTER", "FAILOVER", *(["FORCE"] if force else []))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if replica.port in self._master_ports(replica) and self._healthy():
                return
            time.sleep(0.05)
        raise RedisServerError(f"port {replica.port} did not become a master in {timeout:g} s")

    def migrate_slot(
        self, slot: int, target: RedisServer, *, batch: int = 100, timeout: float = 30.0
    ) -> int:
        """Move ``slot`` and its keys from its master to the master ``target``.

        The steps of ``redis-cli --cluster reshard``: the target imports, the
        source migrates, keys move in batches with ``MIGRATE`` (clients of a
        moved key get ``ASK`` meanwhile), then every master learns the new
        owner (clients get ``MOVED`` from then on).

        Returns:
            How many keys moved.

        Raises:
            RedisServerError: If ``target`` is not a master, or a step fails.
        """
        if not 0 <= slot < _SLOTS:
            raise RedisServerError(f"slot must be in [0, {_SLOTS}), got {slot}")
        source = self.master_for_slot(slot)
        if target.port not in self._master_ports():
            raise RedisServerError(f"port {target.port} is not a master")
        if source.port == target.port:
            return 0
        ids = {n.port: n.node_id for n in self.topology()}
        target.command("CLUSTER", "SETSLOT", str(slot), "IMPORTING", ids[source.port])
        source.command("CLUSTER", "SETSLOT", str(slot), "MIGRATING", ids[target.port])
        moved = 0
        deadline = time.monotonic() + timeout
        while True:
            keys = source.command_array("CLUSTER", "GETKEYSINSLOT", str(slot), str(batch))
            names = [k.decode("utf-8", "surrogateescape") for k in keys if k is not None]
            if not names:
                break
            if time.monotonic() > deadline:
                raise RedisServerError(f"slot {slot} did not finish migrating in {timeout:g} s")
            source.command(
                "MIGRATE", _HOST, str(target.port), "", "0", "5000", "REPLACE", "KEYS", *names,
                timeout=10.0,
            )  # fmt: skip
            moved += len(names)
        for node in [
            target,
            source,
            *(m for m in self.current_masters() if m not in (source, target)),
        ]:
            node.command("CLUSTER", "SETSLOT", str(slot), "NODE", ids[target.port])
        self.wait_healthy(timeout=timeout)
        return moved

    def restart_node(self, node: RedisServer, timeout: float = 30.0) -> None:
        """Start a killed node again on its port; it rejoins with its cluster config.

        A former master whose slots were taken over comes back as a replica.
        """
        node.restart()
        self.wait_healthy(timeout=timeout)

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
        return f"RedisCluster(ports={self.ports}, replicas={self.replicas})"
