"""The root ``perfprim`` group, lazy command loading, and the one error handler.

Command groups live one per module (``_slo``, ``_hist``, ``_capacity``) and
are imported only when named on the command line or listed by ``--help``,
so a new command is one module plus one line in :data:`COMMANDS`.

Exit codes (documented in ``docs/cli.md`` and tested):

- 0: ok;
- 1: a gate failed (a regression, a threshold, an invalid SLO file);
- 2: bad usage or unreadable input;
- 3: an internal error (a bug: the message asks for a report).

Every error is one line on stderr, never a traceback (set
``PERFPRIM_DEBUG=1`` to see one). Data goes to stdout.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any

import click

from perfprim.cli._output import GateFailed, emit_error

__all__ = ["COMMANDS", "cli", "run"]

COMMANDS: dict[str, tuple[str, str]] = {
    "capacity": ("perfprim.cli._capacity", "capacity"),
    "demo": ("perfprim.cli._demo", "demo"),
    "hist": ("perfprim.cli._hist", "hist"),
    "load": ("perfprim.cli._load", "load"),
    "slo": ("perfprim.cli._slo", "slo"),
}
"""Command name -> (module, attribute) of its click command or group."""

_WORD = re.compile(r"^[a-z][a-z-]*$")
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (``perfprim --help`` stays fast)."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        """All command names, sorted."""
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the command's module the first time it is asked for."""
        if cmd_name in self._lazy:
            module, attribute = self._lazy[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):  # pragma: no cover - a wiring bug
                msg = f"{module}.{attribute} is not a click command"
                raise TypeError(msg)
            return command
        return super().get_command(ctx, cmd_name)


def _version() -> str:
    import perfprim

    return perfprim.__version__


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  perfprim slo budget --target 99.9% --window 30d
  perfprim hist diff base.hlog new.hlog
  perfprim capacity usl steps.csv --plot usl.png

Exit codes: 0 ok, 1 a gate failed (regression, invalid SLO file), 2 bad usage
or unreadable input. Every command takes --json (one schema, docs/cli.md).
Shell completion: eval "$(_PERFPRIM_COMPLETE=bash_source perfprim)" (zsh_source, fish_source).
""",
)
@click.version_option(version=None, package_name="perfprim", prog_name="perfprim")
def cli() -> None:
    """Performance answers between deploys: SLO budgets and rules, latency histograms, capacity."""


def _wants_json(argv: list[str]) -> bool:
    """Whether ``--json`` was given (before any ``--``), for errors raised while parsing."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def _command_name(argv: list[str]) -> str:
    """``"hist diff"`` from the arguments: the command words before options and operands."""
    words: list[str] = []
    for arg in argv:
        if not _WORD.match(arg) or len(words) == 2:  # "group command" at most
            break
        words.append(arg)
    return " ".join(words)


def run(argv: list[str] | None = None) -> None:
    """Run the command line and exit with its code; errors become one line on stderr."""
    args = sys.argv[1:] if argv is None else argv
    as_json = _wants_json(args)
    command = _command_name(args)
    try:
        code = cli.main(args=args, prog_name="perfprim", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, --version
        code = exc.exit_code
    except click.Abort:
        sys.stderr.write("perfprim: aborted\n")
        code = 130
    except click.UsageError as exc:
        no_args = getattr(click.exceptions, "NoArgsIsHelpError", None)
        if no_args is not None and isinstance(exc, no_args):  # `perfprim slo`: show its help
            click.echo(exc.format_message(), err=True)
            raise SystemExit(2) from None
        hint = ""
        if exc.ctx is not None:
            hint = f" (see: {exc.ctx.command_path} --help)"
        emit_error(command, f"{exc.format_message()}{hint}", 2, as_json=as_json)
        code = 2
    except GateFailed as exc:  # the result is already out ("ok": false)
        emit_error(command, exc.format_message(), exc.exit_code, as_json=False)
        code = exc.exit_code
    except click.ClickException as exc:
        emit_error(command, exc.format_message(), exc.exit_code, as_json=as_json)
        code = exc.exit_code
    except BrokenPipeError:  # `perfprim ... | head`: not an error
        sys.stderr.close()
        code = 0
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("PERFPRIM_DEBUG"):
            raise
        message = (
            f"internal error: {type(exc).__name__}: {exc} (a bug in perfprim; rerun with "
            "PERFPRIM_DEBUG=1 for the traceback and report it)"
        )
        emit_error(command, message, 3, as_json=as_json)
        code = 3
    raise SystemExit(code if isinstance(code, int) else 0)
