"""docs/web.md runs: its ``python`` blocks, in page order, in one fresh interpreter.

The docs convention (every ``python`` block executed, ``<!-- not-run: ... -->``
before the ones that cannot run) is enforced for every page by the docs
runner; this test runs this page's blocks now and checks what they print
against the ``text`` block that follows each with "prints".
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "web.md"
FENCE = re.compile(
    r"(<!-- not-run:[^>]*-->\n)?```(\w+)\n(.*?)```"
    r"(\n\nprints[^\n]*\n(?:[^\n`]+\n)*\n```text\n(.*?)```)?",
    re.S,
)


def test_web_page_examples_run_and_print_what_the_page_says(tmp_path: Path) -> None:
    """Each runnable block runs; each 'prints' block matches the output, line for line."""
    script = ["import sys"]
    expected: list[str] = []
    for match in FENCE.finditer(PAGE.read_text()):
        skipped, language, code, _, printed = match.groups()
        if language != "python" or skipped:
            continue
        marker = f"----block {len(expected)}----"
        script.append(f"print({marker!r})")
        script.append(code)
        expected.append(printed or "")
    result = subprocess.run(
        [sys.executable, "-c", "\n".join(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == result.returncode, result.stderr[-3000:]
    outputs = re.split(r"----block \d+----\n", result.stdout)[1:]
    assert len(expected) == len(outputs)
    for want, got in zip(expected, outputs, strict=True):
        if want:
            assert want.strip().splitlines() == got.strip().splitlines()


@pytest.mark.parametrize("language", ["python"])
def test_every_block_is_runnable_or_marked(language: str) -> None:
    """A python block that cannot run carries a not-run marker (none is silently skipped)."""
    text = PAGE.read_text()
    blocks = len(re.findall(rf"```{language}\n", text))
    assert blocks >= 5
