"""What the soak's ASGI and WSGI services share: configuration, the database, the cache's wiring.

A service is configured by environment variables (gunicorn starts it):

- ``SOAK_REDIS_URL``: the Redis the cache uses (the soak points it at a
  :class:`~perfprim.testing.TcpProxy` in front of a private redis-server);
- ``SOAK_DB``: the SQLite file holding the items (the "database");
- ``SOAK_NAMESPACE``: the cache namespace;
- ``SOAK_STATE``: a directory where ``/slow`` writes the pid of the worker
  serving it (so the soak can kill a worker mid-request);
- ``SOAK_L1_TTL`` and ``SOAK_BUS`` (optional): the L1 TTL (default 1 s) and
  ``0`` to run without the invalidation bus. Only the checker's negative
  control changes them (a long L1 TTL without a bus must show stale reads).

The database is the source of truth: ``items(id, v)``, ``v`` the item's
version. A read is cache-aside (``get_or_load``); a write bumps ``v`` and
then deletes the cached copy (an invalidation), so a reader that sees an
older ``v`` after the write was answered got a stale value.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
from pathlib import Path
from typing import Any

ITEMS = 1000
L1_TTL = float(os.environ.get("SOAK_L1_TTL", "1.0"))
"""Seconds an L1 copy lives: the bound on staleness while the invalidation bus is cut off."""
INVALIDATE_L1 = os.environ.get("SOAK_BUS", "1") != "0"
"""Whether the caches run their invalidation bus (on, as by default)."""
CACHE_TTL = 60.0
PROBE_KEY = "soak:probe"


def setting(name: str) -> str:
    """The environment variable ``name`` (the soak sets every one)."""
    return os.environ[name]


def create_database(path: str | Path) -> None:
    """Create the items table with every item at version 0 (WAL: readers never wait)."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, v INTEGER)")
        db.executemany("INSERT OR IGNORE INTO items VALUES (?, 0)", [(i,) for i in range(ITEMS)])


class Database:
    """One SQLite connection per thread on the shared file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        return db

    def read(self, item: int) -> dict[str, Any]:
        """The item's row as the cache stores it."""
        row = self._db().execute("SELECT v FROM items WHERE id = ?", (item,)).fetchone()
        return {"id": item, "v": int(row[0])}

    def bump(self, item: int) -> int:
        """Write a new version of ``item``; return it."""
        row = (
            self._db()
            .execute("UPDATE items SET v = v + 1 WHERE id = ? RETURNING v", (item,))
            .fetchone()
        )
        return int(row[0])


def random_item() -> int:
    """The item a ``/items/any`` request reads (uniform over the table)."""
    return random.randrange(ITEMS)


def process_figures() -> dict[str, int]:
    """This worker's pid, threads and open file descriptors."""
    return {
        "pid": os.getpid(),
        "threads": threading.active_count(),
        "fds": len(os.listdir("/proc/self/fd")),
    }


def mark_slow_request(state: str) -> None:
    """Tell the soak which worker serves the ``/slow`` request now."""
    Path(state, "slow.pid").write_text(str(os.getpid()))
