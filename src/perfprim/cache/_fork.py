"""Fork safety: re-arm what a cache started once the process has forked.

A cache built before ``fork`` (gunicorn ``--preload``, ``multiprocessing``)
is copied into the child without its threads: no invalidation bus listening,
no lock watchdog, locks that another thread may have held. Objects that
register here get their ``_after_fork()`` called in every child, where they
rebuild their locks and restart their threads (the bus resubscribes and
flushes L1, as after any gap).
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any

__all__ = ["rearm_after_fork"]

_log = logging.getLogger("perfprim.cache")
_REGISTERED: weakref.WeakSet[Any] = weakref.WeakSet()


def rearm_after_fork(obj: Any) -> None:
    """Call ``obj._after_fork()`` in every child forked from now on, while ``obj`` lives."""
    _REGISTERED.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_REGISTERED):
        try:
            obj._after_fork()
        except Exception:  # pragma: no cover - never break the child
            _log.exception("perfprim: re-arming %r after fork failed", obj)


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
