"""The stampede modules' exports are pinned, and perfprim.cache re-exports them."""

from __future__ import annotations

import perfprim.cache
from perfprim.cache import _lock, _singleflight, _xfetch


def test_private_module_exports_are_pinned() -> None:
    """Each stampede module exports exactly these names, sorted."""
    assert [
        "Decision",
        "before_window",
        "check_beta",
        "decide",
        "decide_lazy",
        "early_probability",
        "expected_extra_recomputations",
        "uniform_open_closed",
    ] == _xfetch.__all__
    assert [
        "AsyncSingleFlight",
        "SingleFlight",
        "SingleFlightStats",
        "check_wait_timeout",
    ] == _singleflight.__all__
    assert ["MISSING", "AsyncRedisLock", "Lease", "LockStats", "RedisLock", "lock_keys"] == (
        _lock.__all__
    )


def test_public_module_reexports_the_stampede_api() -> None:
    """perfprim.cache re-exports the stampede API (its full __all__ is pinned by the core)."""
    names = {
        "MISSING",
        "AsyncRedisLock",
        "AsyncSingleFlight",
        "Decision",
        "Lease",
        "LockStats",
        "RedisLock",
        "SingleFlight",
        "SingleFlightStats",
        "decide",
        "early_probability",
    }
    assert set() == names - set(perfprim.cache.__all__)
    for name in names:
        assert getattr(perfprim.cache, name) is not None
