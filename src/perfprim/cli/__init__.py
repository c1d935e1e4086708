"""The ``perfprim`` command line: ``perfprim --help`` lists the commands.

This module stays importable without the ``cli`` extra: :func:`main` imports
click only when it runs, and says what to install when click is missing.
See ``docs/cli.md``.
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Run the ``perfprim`` command line (the console script and ``python -m perfprim``)."""
    try:
        from perfprim.cli._app import run
    except ImportError as exc:  # click or rich missing: one line, exit 2
        import sys

        missing = getattr(exc, "name", None) or "click"
        sys.stderr.write(
            f"perfprim: error: the command line needs the {missing!r} package, which is not "
            "installed. Install it with: pip install 'perfprim[cli]'\n"
        )
        raise SystemExit(2) from None
    run()
