"""The decorators keep the decorated function's type for mypy (ParamSpec), by mypy --strict."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

SNIPPET = textwrap.dedent(
    """
    from collections.abc import AsyncIterator, Iterator

    from perfprim.telemetry import instrument, timed, traced

    @traced
    def a(x: int, *, y: str = "") -> float:
        return 1.0

    @traced(name="b", attributes={"k": "v"}, record_args=("x",))
    async def b(x: int) -> str:
        return ""

    @timed
    def c(x: int) -> int:
        return x

    @timed(name="d", labels={"route": "/"}, label_args=("x",))
    def d(x: int) -> Iterator[int]:
        yield x

    @instrument(name="e")
    async def e(x: int) -> AsyncIterator[int]:
        yield x

    reveal_type(a)
    reveal_type(b)
    reveal_type(c)
    reveal_type(d)
    reveal_type(e)
    a(1, y="s")
    c(1)
    """
)


def test_decorators_preserve_signatures_for_mypy(tmp_path: Path) -> None:
    """Under mypy --strict each wrapper has the function's own parameters and return type."""
    api = pytest.importorskip("mypy.api")
    path = tmp_path / "usage.py"
    path.write_text(SNIPPET)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env_path = os.environ.get("MYPYPATH")
    os.environ["MYPYPATH"] = src
    try:
        stdout, stderr, status = api.run(
            ["--strict", "--no-incremental", "--cache-dir", os.devnull, str(path)]
        )
    finally:
        if env_path is None:
            os.environ.pop("MYPYPATH", None)
        else:
            os.environ["MYPYPATH"] = env_path
    revealed = [
        line.split("Revealed type is ", 1)[1].replace("typing.", "")
        for line in stdout.splitlines()
        if "Revealed" in line
    ]
    assert [
        '"def (x: int, *, y: str =) -> float"',
        '"def (x: int) -> Coroutine[Any, Any, str]"',
        '"def (x: int) -> int"',
        '"def (x: int) -> Iterator[int]"',
        '"def (x: int) -> AsyncIterator[int]"',
    ] == revealed
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert [] == errors, stderr
    assert 0 == status
