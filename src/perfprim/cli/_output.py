"""Output for every command: human tables (rich) or one JSON document, and errors.

Data goes to stdout, messages to stderr (clig.dev). With ``--json`` stdout
holds exactly one JSON document, the envelope documented in ``docs/cli.md``
and published as ``perfprim/cli/schema.json``::

    {"schema": 1, "command": "hist diff", "ok": true, "result": {...}}
    {"schema": 1, "command": "hist show", "ok": false,
     "error": {"exit_code": 2, "message": "..."}}

``schema`` changes only when a field changes meaning or disappears; new
fields may be added within a version.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "SCHEMA_VERSION",
    "GateFailed",
    "InputError",
    "Table",
    "console",
    "emit",
    "emit_error",
    "json_number",
    "json_ready",
    "note",
]

SCHEMA_VERSION = 1
"""The version of the ``--json`` envelope and of every command's ``result``."""


class InputError(click.ClickException):
    """Unreadable or invalid input (a file, a URL, a value): exit 2 with one line."""

    exit_code = 2


class GateFailed(click.ClickException):
    """A gate failed (a regression, an invalid SLO file): exit 1.

    The command has already written its result (``"ok": false`` in JSON);
    only the one-line message goes to stderr.
    """

    exit_code = 1


def note(message: str) -> None:
    """Write a message for the human to stderr (never mixed into the data)."""
    click.echo(f"perfprim: {message}", err=True)


def json_number(value: float) -> float | str | None:
    """A float for JSON: ``inf``/``-inf`` as the strings ``"inf"``/``"-inf"``, NaN as null."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def json_ready(value: Any) -> Any:
    """``value`` with every float made JSON-safe by :func:`json_number` (mappings, lists too)."""
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def _write_json(document: Mapping[str, Any]) -> None:
    text = json.dumps(json_ready(document), indent=2, allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit(
    command: str,
    result: Mapping[str, Any],
    *,
    as_json: bool,
    human: Callable[[Console], None],
    ok: bool = True,
) -> None:
    """Write a command's result: the JSON envelope, or the human rendering.

    Args:
        command: The command path after ``perfprim`` (``"hist diff"``).
        result: The command's result, JSON-ready (floats may be inf/NaN).
        as_json: ``--json`` was given.
        human: Renders the result for a person on a rich console.
        ok: False when a gate failed (the command then raises :class:`GateFailed`).
    """
    if as_json:
        _write_json({"schema": SCHEMA_VERSION, "command": command, "ok": ok, "result": result})
        return
    human(console())


def emit_error(command: str, message: str, exit_code: int, *, as_json: bool) -> None:
    """Write an error: one line on stderr, and with ``--json`` the error envelope on stdout."""
    one_line = " ".join(message.split())
    click.echo(f"perfprim: error: {one_line}", err=True)
    if as_json:
        _write_json(
            {
                "schema": SCHEMA_VERSION,
                "command": command,
                "ok": False,
                "error": {"exit_code": exit_code, "message": one_line},
            }
        )


def console() -> Console:
    """A rich console on stdout: colour on a terminal, plain text in a pipe, wide tables."""
    from rich.console import Console

    tty = sys.stdout.isatty()
    return Console(
        file=sys.stdout,
        width=None if tty else 120,
        no_color=not tty,
        highlight=False,
        soft_wrap=False,
        emoji=False,
    )


class Table:
    """A table to print: a title, column headings (right-aligned unless named in ``left``)."""

    def __init__(self, title: str, columns: Sequence[str], *, left: Sequence[str] = ()) -> None:
        self.title = title
        self.columns = list(columns)
        self.left = set(left)
        self.rows: list[list[str]] = []

    def add(self, *cells: object) -> None:
        """Add a row (cells are turned into text)."""
        self.rows.append([str(c) for c in cells])

    def render(self, out: Console) -> None:
        """Print the table on ``out``."""
        from rich import box
        from rich.table import Table as RichTable

        out.print(self.title, markup=False, highlight=False)
        table = RichTable(box=box.SIMPLE_HEAD)
        for column in self.columns:
            table.add_column(column, justify="left" if column in self.left else "right")
        for row in self.rows:
            table.add_row(*row)
        out.print(table)
