"""``perfprim capacity``: USL fits, Erlang C staffing, growth projections."""

from __future__ import annotations

import click

__all__ = ["capacity"]


@click.group()
def capacity() -> None:
    """Capacity answers: USL fit of a step load, Erlang C staffing, growth runway."""
