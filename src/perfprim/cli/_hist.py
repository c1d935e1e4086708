"""``perfprim hist``: show, merge, plot and compare HDR latency histograms."""

from __future__ import annotations

import click

__all__ = ["hist"]


@click.group()
def hist() -> None:
    """HDR latency histograms: .hlog logs, base64 V2 histoblobs, .hgrm tables."""
