"""The stampede modules' exports are pinned, and perfprim.cache.advanced re-exports them."""

from __future__ import annotations

import perfprim.cache.advanced
from perfprim.cache import _lock_common, _singleflight, _xfetch
from perfprim.cache._async import lock as async_lock
from perfprim.cache._sync import lock as sync_lock


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
    assert [
        "MISSING",
        "Lease",
        "LockBase",
        "LockKeys",
        "LockStats",
        "Missing",
        "has_hash_tag",
        "key_set",
        "lock_keys",
        "wait_slice",
    ] == _lock_common.__all__
    assert ["AsyncRedisLock"] == async_lock.__all__
    assert ["RedisLock"] == sync_lock.__all__


def test_advanced_module_reexports_the_stampede_api() -> None:
    """perfprim.cache.advanced re-exports the stampede components (its __all__ is pinned too)."""
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
    assert set() == names - set(perfprim.cache.advanced.__all__)
    for name in names:
        assert getattr(perfprim.cache.advanced, name) is not None
