"""Figures written like every other output: atomically."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .files import atomic_file

__all__ = ["save_figure", "DPI"]

#: Resolution of saved figures, in dots per inch.
DPI = 100


def save_figure(fig: Figure, path, *, dpi: int = DPI) -> Path:
    """Save ``fig`` as a PNG at ``path`` atomically, like ``results.nc``.

    The image is written to a temporary file in the same folder and renamed
    into place: an interrupt leaves the previous figure (or none), never a
    half-written one, and no temporary file.
    """
    path = Path(path)
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    with atomic_file(path, "wb") as f:
        fig.savefig(f, dpi=dpi, format="png")
    return path
