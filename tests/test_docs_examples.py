"""Every ```python block in docs/*.md and README.md runs, in page order, one namespace per page.

The convention (docs/index.md says it too):

- a fenced block whose info string is ``python`` (or ``{code-block} python``)
  is executed; ``pycon`` blocks and docstrings are doctests (``nox -s docs``);
  ``text``, ``sh``, ``yaml``, ``toml`` ... are never run;
- the blocks of one page run in page order in one namespace, in a fresh
  interpreter whose working directory is a temporary directory and whose
  ``REDIS_URL`` points at a private redis-server (``tests/conftest.py``),
  within a time bound;
- a block that cannot run as written is preceded, on the line right before
  its fence, by ``<!-- not-run: <reason> -->``; an empty reason fails the page.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
PAGE_TIMEOUT = 180.0
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:(?P<reason>.*?)-->\s*$")
_PYTHON = {"python", "python3", "py"}


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    skip: str | None  # the not-run reason, if any


class DocsConventionError(ValueError):
    """A page breaks the convention (a not-run marker without a reason)."""


def _language(info: str) -> str:
    words = info.strip().split()
    if not words:
        return ""
    if words[0] in {"{code-block}", "{code}", "{sourcecode}"} and len(words) > 1:
        return words[1].lower()
    return words[0].lower()


def extract_blocks(text: str, page: str) -> list[Block]:
    """The fenced blocks of a Markdown page, with their language and not-run marker.

    Raises:
        DocsConventionError: For a ``not-run`` marker with an empty reason.
    """
    lines = text.splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence, start = match.group("fence"), index
        body = []
        index += 1
        while index < len(lines):
            closing = _FENCE.match(lines[index])
            if (
                closing is not None
                and closing.group("fence")[0] == fence[0]
                and len(closing.group("fence")) >= len(fence)
                and not closing.group("info").strip()
            ):
                break
            body.append(lines[index])
            index += 1
        index += 1
        language = _language(match.group("info"))
        skip = None
        marker = _NOT_RUN.match(lines[start - 1]) if start else None
        if marker is not None:
            skip = marker.group("reason").strip()
            if not skip:
                msg = f"{page}:{start}: '<!-- not-run: -->' needs a reason after the colon"
                raise DocsConventionError(msg)
        indent = len(match.group("indent"))
        code = "\n".join(line[indent:] for line in body) + "\n"
        blocks.append(Block(page, start + 1, language, code, skip))
    return blocks


def runnable(blocks: list[Block]) -> list[Block]:
    """The python blocks that run (no not-run marker)."""
    return [b for b in blocks if b.language in _PYTHON and b.skip is None]


DRIVER = r"""
import json, sys, traceback
blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
for block in blocks:
    where = f"{block['page']}:{block['line']}"
    try:
        exec(compile(block["code"], where, "exec"), namespace)
    except BaseException:
        print(f"the python block at {where} failed:", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
print(f"ran {len(blocks)} block(s)")
"""


def run_page(page: Path, *, cwd: Path, redis_url: str) -> subprocess.CompletedProcess[str]:
    """Run a page's python blocks in a fresh interpreter (see the module docstring)."""
    name = page.name if page == README else f"docs/{page.name}"
    blocks = runnable(extract_blocks(page.read_text(encoding="utf-8"), name))
    env = {**os.environ, "REDIS_URL": redis_url, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps([b.__dict__ for b in blocks]),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=PAGE_TIMEOUT,
        check=False,
    )


README = DOCS.parent / "README.md"
PAGES = [*sorted(DOCS.glob("*.md")), README]


@pytest.mark.redis
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(page: Path, tmp_path: Path, redis_url: str) -> None:
    """Every runnable python block of the page runs, in order, without an error."""
    done = run_page(page, cwd=tmp_path, redis_url=redis_url)
    assert 0 == done.returncode, done.stderr[-4000:]


def test_every_page_is_checked() -> None:
    """The docs folder has pages, and the runner sees the python blocks of this convention."""
    assert len(PAGES) >= 10
    assert README in PAGES
    assert sum(len(runnable(extract_blocks(p.read_text(), p.name))) for p in PAGES) >= 10


SAMPLE = """\
# A page

```python
x = 1
```

<!-- not-run: needs a real Kubernetes cluster -->
```python
kubectl()
```

```pycon
>>> 1 + 1
2
```

````markdown
```python
inside_a_markdown_example()
```
````

```sh
perfprim --help
```

```{code-block} python
y = x + 1
```

  ```python
  z = y + 1
  ```
"""


def test_extraction_follows_the_convention() -> None:
    """Python blocks run; a not-run one, pycon, sh and nested markdown examples do not."""
    blocks = extract_blocks(SAMPLE, "sample.md")
    assert ["python", "python", "pycon", "markdown", "sh", "python", "python"] == [
        b.language for b in blocks
    ]
    assert "needs a real Kubernetes cluster" == blocks[1].skip
    assert ["x = 1\n", "y = x + 1\n", "z = y + 1\n"] == [b.code for b in runnable(blocks)]
    assert [3, 27, 31] == [b.line for b in runnable(blocks)]


def test_not_run_needs_a_reason() -> None:
    """``<!-- not-run: -->`` without a reason fails the page."""
    with pytest.raises(DocsConventionError, match=r"sample\.md:2: .* needs a reason"):
        extract_blocks("text\n<!-- not-run:   -->\n```python\nx\n```\n", "sample.md")


def test_a_failing_block_fails_the_page_with_its_line(tmp_path: Path) -> None:
    """The runner reports the page and line of the block that raised; namespaces are per page."""
    page = tmp_path / "broken.md"
    page.write_text("```python\nvalue = 41\n```\n\ntext\n\n```python\nassert value == 42\n```\n")
    done = run_page(page, cwd=tmp_path, redis_url="redis://127.0.0.1:1/0")
    assert 1 == done.returncode
    assert "the python block at docs/broken.md:7 failed" in done.stderr
    assert "AssertionError" in done.stderr


def test_blocks_run_in_the_temp_dir_with_redis_url(tmp_path: Path) -> None:
    """Cwd is the temp dir (files land there) and REDIS_URL is what the runner was given."""
    page = tmp_path / "env.md"
    code = "import os, pathlib\npathlib.Path('out.txt').write_text(os.environ['REDIS_URL'])\n"
    page.write_text(f"```python\n{code}```\n")
    done = run_page(page, cwd=tmp_path, redis_url="redis://127.0.0.1:7/0")
    assert 0 == done.returncode, done.stderr
    assert "redis://127.0.0.1:7/0" == (tmp_path / "out.txt").read_text()
