"""The public surface of perfprim.load and its loopback server."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

import perfprim.load
from perfprim.exceptions import ConfigurationError
from perfprim.load.testing import LoopbackServer, ServerBehaviour


def test_exported_members() -> None:
    """__all__ is pinned: every export is a promise."""
    assert [
        "HttpTarget",
        "KneeResult",
        "KneeStep",
        "LoadResult",
        "Progress",
        "Stage",
        "Threshold",
        "ThresholdResult",
        "find_knee",
        "parse_threshold",
        "profiles",
        "run",
    ] == perfprim.load.__all__
    for name in perfprim.load.__all__:
        assert getattr(perfprim.load, name).__doc__


def test_loopback_server_answers_and_reports_statuses(http_server: LoopbackServer) -> None:
    """200 ok on any path; /status/NNN answers NNN."""
    with urllib.request.urlopen(http_server.url + "any") as response:
        assert b"ok" == response.read()
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(http_server.url + "status/429")
    info.value.close()
    assert 429 == info.value.code


def test_behaviour_validation() -> None:
    """Stalls need both knobs; negative times are refused."""
    with pytest.raises(ConfigurationError, match="together"):
        ServerBehaviour(stall_every=5)
    with pytest.raises(ConfigurationError, match="delay must be"):
        ServerBehaviour(delay=-1)
    with pytest.raises(ConfigurationError, match="usl must be"):
        ServerBehaviour(usl=(0.1, 0.1, 0.0))
    with pytest.raises(ConfigurationError, match="either"):
        LoopbackServer(ServerBehaviour(), delay=1)
    assert "--usl=0.1,0.01,100.0" in ServerBehaviour(usl=(0.1, 0.01, 100)).arguments()
