"""docs/cli.md: every ``perfprim`` line of the page runs, and every ``--help`` example is on it.

The page's python block writes the example files into a temp dir (run by the
docs runner, as CI runs it); then each ``perfprim ...`` line of its ``sh``
blocks runs there through bash (globs expand as in a terminal) with the venv's
``perfprim`` first on PATH, and must exit with the code its comment names
(``# ... exit 1``), 0 otherwise. ``--json`` output must match the schema.

``perfprim load`` lines name a service at ``http://127.0.0.1:8000/``: here a
real loopback server stands in, its address put in the line's place.
``perfprim demo`` lines are run by ``tests/test_demo.py`` (the demo is the
slowest command: once in CI is enough).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import jsonschema
import pytest

from perfprim.cli._app import cli
from perfprim.load.testing import LoopbackServer
from tests.cli.conftest import SCHEMA
from tests.test_docs_examples import DOCS, README, extract_blocks, run_page

PAGE = DOCS / "cli.md"
_EXIT = re.compile(r"#.*\bexit (\d)\b")
SERVICE = "http://127.0.0.1:8000/"
"""The service the page's ``perfprim load`` lines talk to (a loopback server in the tests)."""


def _is_demo(line: str) -> bool:
    return line == "perfprim demo" or line.startswith("perfprim demo ")


def _leaves() -> list[tuple[str, ...]]:
    """Every command that runs: ``(group, command)`` pairs and top-level commands (``demo``)."""
    ctx = click.Context(cli)
    found: list[tuple[str, ...]] = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        if isinstance(command, click.Group):
            found.extend((name, sub) for sub in command.list_commands(ctx))
        else:
            found.append((name,))
    return found


def page_commands() -> list[str]:
    """The ``perfprim`` command lines of the page's sh blocks."""
    lines = []
    for block in extract_blocks(PAGE.read_text(encoding="utf-8"), "cli.md"):
        if block.language != "sh":
            continue
        lines.extend(
            line.strip() for line in block.code.splitlines() if line.startswith("perfprim ")
        )
    return lines


def help_examples() -> list[str]:
    """The example lines of every command's --help epilog."""
    examples = []
    ctx = click.Context(cli)
    commands: list[click.Command] = [cli]
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None
        commands.append(command)
        if isinstance(command, click.Group):
            commands.extend(command.get_command(ctx, sub) for sub in command.list_commands(ctx))  # type: ignore[misc]
    for command in commands:
        examples.extend(
            line.strip().removeprefix("Example:").strip()
            for line in (command.epilog or "").splitlines()
            if "perfprim " in line and not line.strip().startswith("--")
        )
    return examples


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the files the page's python block writes."""
    path = tmp_path_factory.mktemp("cli-docs")
    done = run_page(PAGE, cwd=path, redis_url="redis://127.0.0.1:1/0")
    assert 0 == done.returncode, done.stderr
    return path


@pytest.fixture(scope="module")
def service() -> object:
    """A real loopback HTTP server standing in for the page's service on port 8000."""
    with LoopbackServer(delay=0.001) as server:
        yield server


@pytest.mark.parametrize("line", [line for line in page_commands() if not _is_demo(line)])
def test_page_command_runs(example_dir: Path, service: LoopbackServer, line: str) -> None:
    """The line exits with the code its comment says; --json output matches the schema."""
    line = line.replace(SERVICE, service.url)
    match = _EXIT.search(line)
    expected = int(match.group(1)) if match else 0
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", line],
        cwd=example_dir,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert expected == done.returncode, done.stderr
    assert "Traceback" not in done.stderr
    if "--json" in line:
        jsonschema.validate(json.loads(done.stdout), SCHEMA)


def test_page_covers_every_command() -> None:
    """Each command has at least one example line on the page (``load URL`` for ``load run``)."""
    lines = page_commands()
    for path in _leaves():
        forms = [" ".join(path)]
        if path == ("load", "run"):
            forms.append("load")  # the group's default command
        assert any(
            line == f"perfprim {form}" or line.startswith(f"perfprim {form} ")
            for form in forms
            for line in lines
        ), path


def test_readme_command_lines_are_on_the_page() -> None:
    """The README's ``perfprim`` lines are lines of this page, so they run above too."""
    on_page = {line.split("  #")[0].strip() for line in page_commands()}
    readme = [
        line.strip()
        for block in extract_blocks(README.read_text(encoding="utf-8"), "README.md")
        for line in block.code.splitlines()
        if line.startswith("perfprim ") and block.language in {"sh", "text"}
    ]
    assert readme
    assert [] == [line for line in readme if line not in on_page]


def test_every_help_example_is_on_the_page() -> None:
    """What --help shows as an example is a line of the page, so it runs above too."""
    lines = {line.split("  #")[0].strip() for line in page_commands()}
    missing = [example for example in help_examples() if example not in lines]
    assert [] == missing
