"""gunicorn settings of the soak's WSGI service: every worker starts all its threads at once.

gunicorn's gthread worker starts its pool's threads on demand, so a thread
count sampled before the pool is full would later grow without any leak.
Filling the pool when the worker starts makes "threads before / after" a
fair comparison.
"""

from __future__ import annotations

import threading
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Run one task per pool thread that waits for all the others: the pool is then full."""
    size = worker.cfg.threads
    barrier = threading.Barrier(size)
    for _ in range(size):
        worker.tpool.submit(barrier.wait, 10.0)
