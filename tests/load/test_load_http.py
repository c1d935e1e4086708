"""The load driver's own HTTP/1.1 client against real servers: framing, reuse, TLS and faults.

uvicorn serving ``tests/load/http_app.py`` checks what the client sends and
frames its answers every way HTTP/1.1 allows (length, chunked, HEAD,
``Connection: close``, a large body); small socket servers misbehave (close
at once, garbage, close-delimited bodies, silence, closing idle keep-alive
connections). Every figure asserted is the driver's own count of what
happened, through the public ``run`` and ``find_knee``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perfprim.exceptions import ConfigurationError
from perfprim.load import HttpTarget, LoadResult, Stage, find_knee, run
from perfprim.testing import free_port
from tests.load.http_app import BODY
from tests.web.servers import Server, serve, uvicorn

APP = "tests.load.http_app:app"


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Uvicorn serving the framing app over plain HTTP."""
    with serve(uvicorn(APP), tmp_path_factory.mktemp("http")) as server:
        yield server


def url(server: Server, path: str) -> str:
    """The app's URL for ``path``."""
    return f"http://127.0.0.1:{server.port}{path}"


def get(address: str) -> str:
    """GET a URL with the standard library and return its text."""
    with urllib.request.urlopen(address, timeout=10) as answer:
        return str(answer.read().decode())


def drive(target: str | HttpTarget, *, rate: float = 100, seconds: float = 1.0,
          **options: object) -> LoadResult:  # fmt: skip
    """One constant-rate run, progress off."""
    return run(target, stages=[Stage(seconds, rate)], progress=False, **options)  # type: ignore[arg-type]


def assert_all_good(result: LoadResult) -> None:
    """One constant-rate run, progress off."""
    assert result.sent == result.planned == result.completed
    assert 0 == result.errors, result.error_kinds


@pytest.mark.parametrize("path", ["/", "/chunked", "/large", "/close"])
def test_every_framing_is_read_to_its_end(app_server: Server, path: str) -> None:
    """Length, chunked, a 1 MB body and Connection: close answers all count as successes.

    An answer read short or long would make the next answer on the same
    connection unparseable ("bad response") or hang it to a timeout.
    """
    assert_all_good(drive(url(app_server, path), rate=50, seconds=1.0, timeout=5.0))


def test_head_answers_have_no_body_to_wait_for(app_server: Server) -> None:
    """HEAD gets a Content-Length but no body: the connection is reused at once, no timeout."""
    get(url(app_server, "/reset"))
    result = find_knee(HttpTarget(url(app_server, "/"), method="HEAD"),
                       concurrency=[1], duration=1.0, warmup=0.0, timeout=2.0)  # fmt: skip
    step = result.steps[0]
    assert step.completed > 50
    assert 0 == step.errors
    assert "1" == get(url(app_server, "/connections"))  # one keep-alive connection for all


def test_post_body_and_headers_arrive_as_given(app_server: Server) -> None:
    """The app answers 400 unless method, header and body are exactly what was asked."""
    target = HttpTarget(url(app_server, "/echo"), method="POST", headers={"X-Test": "yes"},
                        body=BODY)  # fmt: skip
    assert_all_good(drive(target, rate=50, seconds=1.0))
    wrong = HttpTarget(url(app_server, "/echo"), method="POST", body=b"other")
    result = drive(wrong, rate=20, seconds=0.5)
    assert {"http 400": result.planned} == result.error_kinds


def test_connections_are_kept_alive_and_bounded_by_concurrency(app_server: Server) -> None:
    """A closed loop of 4 users sends hundreds of requests over at most 4 connections."""
    get(url(app_server, "/reset"))
    knee = find_knee(url(app_server, "/"), concurrency=[4], duration=1.0, warmup=0.0, timeout=2.0)
    assert knee.steps[0].completed > 100
    assert 1 <= int(get(url(app_server, "/connections"))) <= 4


def test_a_request_over_its_timeout_is_an_error_named_timeout(app_server: Server) -> None:
    """A 30 s answer with timeout=1 s: each request ends as "timeout" about 1 s after its send."""
    began = time.perf_counter()
    result = drive(url(app_server, "/slow?s=30"), rate=10, seconds=0.5, timeout=1.0)
    elapsed = time.perf_counter() - began
    assert {"timeout": result.planned} == result.error_kinds
    assert elapsed < 10.0  # bounded by the stages + timeout, never by the server
    assert result.latency.percentile(50) == pytest.approx(1.0, abs=0.5)


# -- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """Uvicorn over TLS with a certificate for 127.0.0.1 from a throwaway CA (trustme)."""
    import trustme

    tmp = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    key_file, cert_file, ca_file = tmp / "key.pem", tmp / "cert.pem", tmp / "ca.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    ca.cert_pem.write_to_path(str(ca_file))
    argv = [*uvicorn(APP), "--ssl-keyfile", str(key_file), "--ssl-certfile", str(cert_file)]
    with serve(argv, tmp) as server:
        yield server, ca_file


def test_https_with_the_servers_ca_verifies_and_succeeds(tls_server: tuple[Server, Path]) -> None:
    """verify=<CA bundle> checks the certificate against that CA: every request succeeds."""
    server, ca_file = tls_server
    target = HttpTarget(f"https://127.0.0.1:{server.port}/", verify=str(ca_file))
    assert_all_good(drive(target, rate=50, seconds=1.0))


def test_https_refuses_an_unknown_certificate_unless_told_not_to_verify(
    tls_server: tuple[Server, Path],
) -> None:
    """The default checks the system store, which lacks the test CA; verify=False skips it."""
    server, _ = tls_server
    address = f"https://127.0.0.1:{server.port}/"
    refused = drive(address, rate=10, seconds=0.5)
    assert {"SSLCertVerificationError": refused.planned} == refused.error_kinds
    assert_all_good(drive(HttpTarget(address, verify=False), rate=10, seconds=0.5))


def test_the_command_line_takes_cacert_and_insecure(tls_server: tuple[Server, Path]) -> None:
    """``perfprim load --cacert CA`` and ``--insecure`` reach the server; the default refuses."""
    from tests.cli.conftest import run_cli

    server, ca_file = tls_server
    address = f"https://127.0.0.1:{server.port}/"
    common = ["--rate", "20/s", "--duration", "0.5s", "--threshold", "error_rate == 0", "--json"]
    for tls in (["--cacert", str(ca_file)], ["--insecure"]):
        result = run_cli("load", address, *common, *tls, timeout=120)
        assert 0 == result.code, result.err
        assert 0 == result.json()["result"]["errors"]
    refused = run_cli("load", address, *common, timeout=120)
    assert 0 != refused.code


def test_a_verify_path_that_is_no_ca_bundle_says_so(tmp_path: Path) -> None:
    """A verify path whose file is no PEM bundle fails with a ConfigurationError naming it."""
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="CA bundle"):
        drive(HttpTarget("https://127.0.0.1:1/", verify=str(not_pem)), rate=1, seconds=0.1)


# -- misbehaving servers ---------------------------------------------------------------


class SocketServer:
    """A thread accepting loopback connections and handing each to ``handle(conn)``."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self._handle = handle
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.accepted = 0

    def __enter__(self) -> SocketServer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            with contextlib.suppress(OSError):
                self._handle(conn)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def read_request(conn: socket.socket) -> bool:
    """Read one request head (these tests send bodiless GETs); False at end of stream."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    return True


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_a_server_that_closes_at_once_gives_connection_errors() -> None:
    """A connection closed before any answer is an error, never a success or a hang."""
    with SocketServer(lambda conn: None) as server:
        result = drive(server.url, rate=20, seconds=0.5, timeout=3.0)
    assert result.errors == result.planned
    assert set(result.error_kinds) <= {"connection closed", "ConnectionResetError"}


def test_an_answer_that_is_not_http_is_a_bad_response() -> None:
    """Bytes that do not parse as HTTP/1.x end the request as "bad response"."""

    def garbage(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        time.sleep(1)

    with SocketServer(garbage) as server:
        result = drive(server.url, rate=20, seconds=0.5, timeout=3.0)
    assert {"bad response": result.planned} == result.error_kinds


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", None),
        (b"HTTP/1.0 503 Service Unavailable\r\n\r\ntry later", "http 503"),
    ],
)
def test_a_body_ended_by_closing_the_connection_counts_by_its_status(
    answer: bytes, kind: str | None
) -> None:
    """An HTTP/1.0-style answer with no length ends with the connection; its status decides."""

    def http10(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(answer)

    with SocketServer(http10) as server:
        result = drive(server.url, rate=20, seconds=0.5, timeout=3.0)
        accepted = server.accepted
    assert result.sent == result.planned == result.completed
    assert ({} if kind is None else {kind: result.planned}) == result.error_kinds
    assert accepted == result.planned  # one connection per answer: none reused


def test_an_informational_answer_is_not_the_answer() -> None:
    """103 Early Hints before the 200: the request ends with the 200, on a reused connection."""

    def hints(conn: socket.socket) -> None:
        while read_request(conn):
            conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            time.sleep(0.002)
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    with SocketServer(hints) as server:
        result = drive(server.url, rate=50, seconds=1.0, timeout=3.0)
        accepted = server.accepted
    assert {"http 404": result.planned} == result.error_kinds  # the final status, each time
    assert accepted < result.planned  # connections were kept and reused


def test_a_server_closing_idle_connections_costs_no_request() -> None:
    """Each connection answers one request, then is closed by the server without notice.

    Either the close arrives first (the connection leaves the pool) or the
    next request meets it (sent again once on a fresh connection): no error.
    """

    def one_then_close(conn: socket.socket) -> None:
        if read_request(conn):
            conn.sendall(OK)  # keep-alive by HTTP/1.1's default, then closed anyway
            time.sleep(0.05)

    with SocketServer(one_then_close) as server:
        assert_all_good(drive(server.url, rate=40, seconds=1.0, timeout=3.0))


def test_a_silent_server_times_out_within_the_bound() -> None:
    """A server that never answers: each request ends as "timeout", the run within its bound."""

    def silent(conn: socket.socket) -> None:
        read_request(conn)
        time.sleep(8)

    with SocketServer(silent) as server:
        began = time.perf_counter()
        result = drive(server.url, rate=10, seconds=0.5, timeout=1.0)
        elapsed = time.perf_counter() - began
    assert {"timeout": result.planned} == result.error_kinds
    assert elapsed < 6.0


def test_nothing_listening_is_connection_refused() -> None:
    """No server on the port: every request fails as ConnectionRefusedError."""
    result = drive(f"http://127.0.0.1:{free_port()}/", rate=10, seconds=0.5, timeout=2.0)
    assert {"ConnectionRefusedError": result.planned} == result.error_kinds


def test_status_errors_are_named_by_status(app_server: Server) -> None:
    """A 404 answer is an error named "http 404"."""
    result = drive(url(app_server, "/missing"), rate=20, seconds=0.5)
    assert {"http 404": result.planned} == result.error_kinds


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"url": "http://user:secret@127.0.0.1/"}, "credentials"),
        ({"url": "http://127.0.0.1:99999/"}, "invalid port"),
        ({"url": "http:///path"}, "no host"),
        ({"url": "http://127.0.0.1/a b"}, "percent-encode"),
        ({"url": "http://127.0.0.1/", "headers": {"X-A": "1\r\nX-B: 2"}}, "cannot be sent"),
        ({"url": "http://127.0.0.1/", "headers": {"Bad Name": "1"}}, "cannot be sent"),
        ({"url": "http://127.0.0.1/", "body": "text"}, "encode text first"),
        ({"url": "http://127.0.0.1/", "verify": b"yes please"}, "CA bundle"),
    ],
)
def test_a_request_that_cannot_be_sent_is_refused_up_front(
    options: dict[str, object], words: str
) -> None:
    """URLs, headers, bodies and verify values that cannot go on the wire fail at construction."""
    with pytest.raises(ConfigurationError, match=words):
        HttpTarget(**options)  # type: ignore[arg-type]


def test_workers_send_https_with_the_targets_verify(tls_server: tuple[Server, Path]) -> None:
    """The target's ``verify`` travels to worker processes with the rest of the target."""
    server, ca_file = tls_server
    target = HttpTarget(f"https://127.0.0.1:{server.port}/", verify=str(ca_file))
    assert_all_good(drive(target, rate=40, seconds=1.0, workers=2))
