"""Live progress: one snapshot per interval, printed on a terminal, silent elsewhere.

``run(..., progress=...)`` takes:

- ``None`` (default): print on standard error when it is a terminal, else nothing;
- ``True`` / ``False``: always print / never print;
- a callable: called with a :class:`Progress` once per interval (and nothing
  printed). This is the hook for a command line or a notebook widget.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from perfprim.exceptions import ConfigurationError

__all__ = ["Progress", "ProgressOption", "TerminalProgress", "progress_callback"]


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a run in progress, taken at the end of each interval.

    Attributes:
        elapsed: Seconds since the run started.
        duration: Planned length of the run in seconds.
        planned_rate: Offered rate at this moment (requests/s, all workers).
        rate: Completed requests per second over the last interval.
        in_flight: Requests sent and not yet completed.
        sent: Requests sent so far.
        completed: Requests completed so far (including errors).
        errors: Requests failed so far.
        late: Sends so far that started more than ``late_after`` after their plan.
        p50: Median latency so far, seconds (from the planned start).
        p99: 99th percentile latency so far, seconds.
    """

    elapsed: float
    duration: float
    planned_rate: float
    rate: float
    in_flight: int
    sent: int
    completed: int
    errors: int
    late: int
    p50: float
    p99: float

    def line(self) -> str:
        """Return the one-line summary a terminal shows."""
        return (
            f"{self.elapsed:6.1f}/{self.duration:.0f}s  rate {self.rate:8.1f}/s "
            f"(plan {self.planned_rate:.0f})  in flight {self.in_flight:5d}  "
            f"p50 {_ms(self.p50)}  p99 {_ms(self.p99)}  errors {self.errors}  late {self.late}"
        )


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f}ms"


class TerminalProgress:
    """Print each :class:`Progress` over the previous one (a carriage return) on a text stream.

    Args:
        stream: Where to print (default: standard error).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._printed = False

    def __call__(self, progress: Progress) -> None:
        """Print the snapshot's line, replacing the previous one."""
        self._stream.write("\r" + progress.line() + "\x1b[K")
        self._stream.flush()
        self._printed = True

    def close(self) -> None:
        """End the progress line (a newline) if anything was printed."""
        if self._printed:
            self._stream.write("\n")
            self._stream.flush()
            self._printed = False


ProgressOption = bool | Callable[[Progress], object] | None
"""What ``progress=`` accepts: None (auto), True, False or a callable."""


def progress_callback(
    option: ProgressOption, stream: TextIO | None = None
) -> tuple[Callable[[Progress], object] | None, TerminalProgress | None]:
    """Resolve a ``progress=`` option to a callback (and the printer to close, if any).

    Args:
        option: None, True, False or a callable.
        stream: The terminal stream (default: standard error).

    Returns:
        ``(callback or None, printer or None)``.

    Raises:
        ConfigurationError: If the option is none of those.
    """
    out = stream if stream is not None else sys.stderr
    if option is None:
        isatty = getattr(out, "isatty", None)
        option = bool(isatty and isatty())
    if option is True:
        printer = TerminalProgress(out)
        return printer, printer
    if option is False:
        return None, None
    raw: object = option  # checked at runtime: callers may not be type-checked
    if callable(raw):
        return option, None
    msg = f"progress must be None, True, False or a callable taking a Progress, got {option!r}"
    raise ConfigurationError(msg)
