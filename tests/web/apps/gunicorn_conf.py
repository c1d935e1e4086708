"""gunicorn settings for the pre-fork tests: a fresh shared directory, one writer per worker."""

from __future__ import annotations

import os
import shutil

from perfprim.telemetry import MultiProcessWriter

DIRECTORY = os.environ["PERFPRIM_MULTIPROC_DIR"]


def on_starting(server: object) -> None:
    """Start with an empty shared directory."""
    shutil.rmtree(DIRECTORY, ignore_errors=True)
    os.makedirs(DIRECTORY)


def post_fork(server: object, worker: object) -> None:
    """One writer per worker, writing every 0.5 s."""
    MultiProcessWriter(DIRECTORY, interval=0.5).start()
