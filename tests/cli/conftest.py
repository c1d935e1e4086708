"""Run the real ``perfprim`` entry point in a subprocess and check what it prints.

``perfprim`` is the console script installed next to the test interpreter
(the nox venv's ``bin/perfprim``); every ``--json`` document is validated
against the published schema ``perfprim/cli/schema.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SCRIPT = Path(sys.executable).with_name("perfprim")
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "src" / "perfprim" / "cli" / "schema.json").read_text()
)


@dataclass
class Run:
    """What one run of the command line did."""

    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        """The JSON document on stdout, validated against the schema."""
        document: dict[str, Any] = json.loads(self.out)
        jsonschema.validate(document, SCHEMA)
        return document


def run_cli(*args: str, cwd: Path | None = None, module: bool = False, timeout: float = 60) -> Run:
    """Run ``perfprim ARGS`` (or ``python -m perfprim ARGS``) and capture its output."""
    command = [sys.executable, "-m", "perfprim"] if module else [str(SCRIPT)]
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PERFPRIM_DEBUG", None)
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=env,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def perfprim(tmp_path: Path) -> Any:
    """``perfprim(*args)`` runs the command line with the test's temp dir as cwd."""

    def call(*args: str, module: bool = False) -> Run:
        return run_cli(*args, cwd=tmp_path, module=module)

    return call
