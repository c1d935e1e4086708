"""The bad-input sweep of issue 16: every generated bad call, and what it did.

Runs every call of ``tests/hardening/api_catalogue.bad_calls()`` (one
argument of a public slo, capacity or histogram callable replaced by a bad
value: a wrong type, a bool, NaN, an infinity, a negative, a huge int, None,
a string, an empty container) in a worker process, each under a time bound,
and counts the outcomes:

- ``perfprim``: raised a ``PerfprimError`` (what a bad call should do);
- ``other``: raised any other exception;
- ``hung``: did not return within the bound (the worker is killed);
- ``crashed``: the worker process died (an abort in C code);
- ``accepted``: returned; ``accepted_nan`` counts those whose result holds a NaN.

Usage (the "before" figures come from an exported older tree)::

    python benchmarks/bad_input_sweep.py                     # the installed perfprim
    git archive main src | tar -x -C /tmp/perfprim-main
    PYTHONPATH=/tmp/perfprim-main/src python benchmarks/bad_input_sweep.py
    python benchmarks/bad_input_sweep.py --list accepted     # name the calls of one outcome

Not a pytest benchmark (the file name does not start with ``bench_``): it is
a measurement for the issue note. The property test
``tests/hardening/test_bad_input_property.py`` checks the same contract.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "hardening"))


def _worker(conn: Connection) -> None:
    import api_catalogue

    from perfprim.exceptions import PerfprimError

    calls = api_catalogue.bad_calls()
    conn.send(len(calls))
    while True:
        index = conn.recv()
        if index is None:
            return
        _name, thunk = calls[index]
        try:
            result = thunk()
        except PerfprimError as exc:
            conn.send(("perfprim", type(exc).__name__, str(exc)[:300]))
        except BaseException as exc:
            conn.send(("other", type(exc).__name__, str(exc)[:300]))
        else:
            sane = api_catalogue.is_sane(result)
            conn.send(("accepted" if sane else "accepted_nan", type(result).__name__, ""))


class _Runner:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.ctx = mp.get_context("spawn")
        self.proc: mp.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.total = 0

    def start(self) -> None:
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        if not parent.poll(120):
            msg = "the sweep worker did not start"
            raise RuntimeError(msg)
        self.total = parent.recv()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.join()

    def run(self, index: int) -> tuple[str, str, str]:
        assert self.conn is not None
        assert self.proc is not None
        self.conn.send(index)
        try:
            ready = self.conn.poll(self.timeout)
        except (EOFError, OSError):
            ready = False
        if ready:
            try:
                outcome: tuple[str, str, str] = self.conn.recv()
            except (EOFError, OSError):
                pass
            else:
                return outcome
        self.proc.join(0.1)
        if self.proc.is_alive():
            self.kill()
            self.start()
            return ("hung", "", f"> {self.timeout:g} s")
        code = self.proc.exitcode
        self.start()
        return ("crashed", "", f"exit code {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per call")
    parser.add_argument("--list", action="append", default=[], help="print calls of an outcome")
    parser.add_argument("--json", type=Path, help="write every call's outcome here")
    args = parser.parse_args()

    runner = _Runner(args.timeout)
    runner.start()
    import perfprim

    started = time.monotonic()
    outcomes: list[tuple[int, tuple[str, str, str]]] = []
    for index in range(runner.total):
        outcomes.append((index, runner.run(index)))
    runner.conn.send(None)  # type: ignore[union-attr]
    runner.proc.join(5)  # type: ignore[union-attr]

    sys.path.insert(0, str(ROOT / "tests" / "hardening"))
    import api_catalogue

    names = [name for name, _ in api_catalogue.bad_calls()]
    counts = collections.Counter(outcome for _, (outcome, _, _) in outcomes)
    print(f"perfprim from {Path(perfprim.__file__).parent}")
    print(f"{len(outcomes)} bad calls in {time.monotonic() - started:.0f} s")
    for key in ("perfprim", "other", "hung", "crashed", "accepted", "accepted_nan"):
        print(f"  {key:13} {counts.get(key, 0):5}")
    others = collections.Counter(kind for _, (o, kind, _) in outcomes if o == "other")
    if others:
        print("  other exceptions:", ", ".join(f"{k} {v}" for k, v in others.most_common()))
    for wanted in args.list:
        print(f"\n{wanted}:")
        for index, (outcome, kind, message) in outcomes:
            if outcome == wanted:
                print(f"  {names[index]} -> {kind} {message[:120]}")
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {"call": names[i], "outcome": o, "type": k, "message": m}
                    for i, (o, k, m) in outcomes
                ],
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
