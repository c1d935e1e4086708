"""An asyncio event loop on virtual time: sleeps take no real time, the clock jumps.

The loop's selector never blocks: when asyncio would wait ``timeout``
seconds for I/O, the virtual clock moves forward by ``timeout`` instead, so
the next timer is due at once. Timers fire in the order and at the virtual
times real time would give them, which makes the open-loop engine's timing
exact and deterministic in tests (no real sockets may be used on it).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Selector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._virtual_loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if not events and timeout is not None and timeout > 0:
            self._virtual_loop.now += timeout
        elif not events and timeout is None:
            msg = "virtual time deadlock: nothing scheduled and nothing ready"
            raise RuntimeError(msg)
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` is virtual (starts at 1000.0)."""

    def __init__(self) -> None:
        self.now = 1000.0
        super().__init__(_Selector(self))

    def time(self) -> float:
        return self.now


def run_virtual(coro: Coroutine[Any, Any, T]) -> tuple[T, float]:
    """Run ``coro`` on a fresh virtual-time loop; return its result and the virtual seconds used."""
    loop = VirtualTimeLoop()
    try:
        start = loop.time()
        result = loop.run_until_complete(coro)
        return result, loop.time() - start
    finally:
        loop.close()
