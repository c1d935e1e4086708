"""Hostile HTTP input over real HTTP: uvicorn (ASGI) and gunicorn (WSGI), one process each.

The echo apps of ``tests/web/apps/hostile_app.py`` behind perfprim's metrics
and cache middleware. Requests are written byte for byte on a socket, so
that what no HTTP client sends (8-bit bytes in the request line, a 1 MB
query, hundreds of entity tags) reaches the server. The server may refuse
a request itself (400, 414, 431): that is its answer, not perfprim's. The
goals: never a 500, and every 200 made for the request it answers.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.web.apps.hostile_app import Headers, identity
from tests.web.servers import Server, gunicorn, serve, uvicorn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["uvicorn", "gunicorn"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The ASGI echo stack on uvicorn, or the WSGI one on a gunicorn sync worker."""
    if request.param == "uvicorn":
        argv = uvicorn("tests.web.apps.hostile_app:asgi")
    else:
        argv = gunicorn("tests.web.apps.hostile_app:wsgi", workers=1)
    with serve(argv, tmp_path_factory.mktemp(request.param)) as running:
        yield running


REFUSED = 0
"""The status :func:`raw_get` reports when the server closed the connection without answering."""


def raw_get(port: int, target: bytes, headers: Headers) -> tuple[int, dict[bytes, bytes], bytes]:
    """One GET written as bytes on a new connection (``Connection: close``), read to the end."""
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: shop.example", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server refused the request by closing (after its 4xx, or before it)
    if not chunks:
        return REFUSED, {}, b""
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    fields = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    if fields.get(b"transfer-encoding") == b"chunked":
        body = _unchunk(body)
    return int(status_line.split()[1]), fields, body


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


CASES: list[tuple[str, bytes, Headers]] = [
    ("path-8bit", b"/s/\xff\xfe\xc3\x28", []),
    ("path-escaped-8bit", b"/s/%FF%fe%C3%28", []),
    ("query-1mb", b"/s?q=" + b"x" * 1_048_576, []),
    ("query-6k", b"/s?" + b"&".join(b"p%d=1" % i for i in range(800)), []),
    ("header-64k", b"/s", [(b"X-Junk", b"a" * 65536)]),
    ("header-8bit", b"/s", [(b"Accept-Language", b"\xff\xfe\x80")]),
    (
        "if-none-match-600-tags",
        b"/s",
        [(b"If-None-Match", b", ".join(b'"t%d"' % i for i in range(600)))],
    ),
    ("if-none-match-garbage", b"/s", [(b"If-None-Match", b'W/"x, "unterminated, ,,W/')]),
    (
        "cache-control-garbage",
        b"/s",
        [(b"Cache-Control", b'max-age=abc, max-stale=99999999999999999999, no-cache="')],
    ),
    ("vary-500-fields", b"/s?manyvary=1", [(b"X-F1", b"a")]),
    ("client-cache-tag", b"/s", [(b"Cache-Tag", b"echo, *")]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_request_twice(server: Server, case: tuple[str, bytes, Headers]) -> None:
    """Sent twice: never a 500; a 200 names its own request; the app's Cache-Tag never leaves."""
    _, target, headers = case
    for _ in range(2):
        status, fields, body = raw_get(server.port, target, headers)
        assert status < 500, (status, body[:300])
        assert b"cache-tag" not in fields
        if status == 200:
            path, _, query = target.partition(b"?")
            lowered = [(n.lower(), v) for n, v in headers]
            assert json.loads(body) == identity(path, query, lowered)


def test_cookies_never_cross_over_real_http(server: Server) -> None:
    """Two users' cookies and Authorization, interleaved: each gets an answer made for them."""
    users = [
        [(b"cookie", b"session=alice")],
        [(b"cookie", b"session=bob")],
        [(b"authorization", b"Bearer carol"), (b"cookie", b"session=alice")],
        [(b"authorization", b"Bearer dave"), (b"cookie", b"session=alice")],
    ]
    for who in users * 3:
        status, _, body = raw_get(server.port, b"/users", who)
        assert 200 == status
        assert json.loads(body) == identity(b"/users", b"", who)
