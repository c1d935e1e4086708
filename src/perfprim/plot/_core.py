"""A pyplot-free figure, deterministic saving, and time/latency axis units."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfprim._optional import require
from perfprim.exceptions import ConfigurationError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["latency_unit", "new_figure", "save", "time_unit"]

_FORMATS = {".png": "png", ".svg": "svg"}
_STYLE = {
    "svg.hashsalt": "perfprim",  # fixed ids in SVG output
    "svg.fonttype": "path",  # text as paths: no dependence on the viewer's fonts
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def _matplotlib() -> Any:
    return require("matplotlib", package="matplotlib", extra="plot", feature="perfprim.plot")


def new_figure(title: str, *, width: float = 8.0, height: float = 5.0) -> tuple[Figure, Axes]:
    """A figure with one axes, on the Agg canvas, titled."""
    matplotlib = _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def save(figure: Figure, path: str | os.PathLike[str], *, format: str | None = None) -> str:  # noqa: A002
    """Write ``figure`` as PNG or SVG, deterministically.

    No creation date or software version is written, and SVG ids are salted
    with a constant, so the same figure gives the same bytes on every run of
    the same matplotlib (tested).

    Args:
        figure: A figure from this module (or any matplotlib figure).
        path: Where to write it.
        format: ``"png"`` or ``"svg"``; from the file suffix by default, PNG
            for an unknown suffix.

    Returns:
        The format written.

    Raises:
        ConfigurationError: For a format other than png or svg.
        OSError: If the file cannot be written.
    """
    matplotlib = _matplotlib()
    kind = format or _FORMATS.get(Path(path).suffix.lower(), "png")
    if kind not in {"png", "svg"}:
        msg = f"format must be 'png' or 'svg', got {format!r}"
        raise ConfigurationError(msg)
    metadata: dict[str, Any] = (
        {"Software": None} if kind == "png" else {"Date": None, "Creator": None}
    )
    with matplotlib.rc_context(_STYLE):
        figure.savefig(os.fspath(path), format=kind, metadata=metadata)
    return str(kind)


def latency_unit(seconds: float) -> tuple[str, float]:
    """The unit to show latencies up to ``seconds`` in: ``("ms", 1e3)``."""
    if seconds >= 10.0:
        return "s", 1.0
    if seconds >= 10e-3:
        return "ms", 1e3
    return "us", 1e6


def time_unit(seconds: float) -> tuple[str, float]:
    """The unit to show elapsed time up to ``seconds`` in: ``("h", 1 / 3600)``."""
    for name, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 3 * size:
            return name, 1.0 / size
    return "s", 1.0
