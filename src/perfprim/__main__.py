"""``python -m perfprim``: the same command line as the ``perfprim`` script."""

from __future__ import annotations

from perfprim.cli import main

if __name__ == "__main__":  # pragma: no branch
    main()
