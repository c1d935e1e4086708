"""Fixtures: loopback HTTP servers in subprocesses (perfprim.load.testing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from perfprim.load.testing import LoopbackServer


@pytest.fixture(scope="session")
def http_server() -> Iterator[LoopbackServer]:
    """A plain loopback server (200 ok; /status/NNN answers NNN) for the session."""
    with LoopbackServer() as server:
        yield server
