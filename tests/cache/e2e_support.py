"""Helpers for the end-to-end cache tests: a watched bus and Redis command counters."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from perfprim.cache.advanced import RedisInvalidationBus
from perfprim.testing import RedisServer

WAIT = 10.0
"""Generous upper bound for any awaited event (never a timing assertion)."""


class WatchedBus:
    """A real :class:`RedisInvalidationBus` whose deliveries the test can wait for.

    It wraps the callbacks the cache registers, so a test knows when the
    cache has *handled* a flush (the first subscription flushes L1, which
    would otherwise race with the test's own writes).
    """

    def __init__(self, bus: RedisInvalidationBus) -> None:
        self.bus = bus
        self.flushes = 0
        self.key_messages = 0
        self._changed = threading.Condition()

    def publish(self, keys: Sequence[str]) -> None:
        """Forward to the real bus."""
        self.bus.publish(keys)

    def start(self, on_keys: Callable[[Sequence[str]], None], on_flush: Callable[[], None]) -> None:
        """Start the real bus with counting callbacks around the cache's."""

        def keys(changed: Sequence[str]) -> None:
            on_keys(changed)
            with self._changed:
                self.key_messages += 1
                self._changed.notify_all()

        def flush() -> None:
            on_flush()
            with self._changed:
                self.flushes += 1
                self._changed.notify_all()

        self.bus.start(keys, flush)

    def wait_flushes(self, count: int, timeout: float = WAIT) -> bool:
        """Block until ``count`` flushes were handled (or ``timeout`` passes)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.flushes >= count, timeout=timeout)

    def wait_keys(self, count: int, timeout: float = WAIT) -> bool:
        """Block until ``count`` key messages were handled (or ``timeout`` passes)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.key_messages >= count, timeout=timeout)

    def close(self) -> None:
        """Close the real bus."""
        self.bus.close()


def command_calls(server: RedisServer) -> dict[str, int]:
    """Calls per command since the last ``CONFIG RESETSTAT``, from ``INFO commandstats``."""
    info = (server.command("INFO", "commandstats") or b"").decode()
    calls = {}
    for line in info.splitlines():
        if line.startswith("cmdstat_"):
            name, _, stats = line[len("cmdstat_") :].partition(":")
            calls[name] = int(stats.split(",")[0].split("=")[1])
    return calls
