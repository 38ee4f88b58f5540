"""The original study's factor tables: the static grid and the fixed sequences.

Factor order everywhere: ``[blob_x, blob_y, circle_x, circle_y]``, each in
[0, 1] (factor units: the blob's mean at v image widths, the circle's centre
at ``0.125 + 0.75 v``; x is the column, y the row).
"""

from __future__ import annotations

import functools

import numpy as np

from .._util.validators import check_int

FACTOR_NAMES = ("blob_x", "blob_y", "circle_x", "circle_y")
N_BLOB_GRID = 32
N_CIRCLE_GRID = 16
N_ORIGINAL_SEQUENCES = 200_000
N_ORIGINAL_FRAMES = 10
ORIGINAL_MIN_TRAVEL = 0.1

BLOB_GRID = np.linspace(0.0, 1.0, N_BLOB_GRID)
CIRCLE_GRID = np.linspace(0.0, 1.0, N_CIRCLE_GRID)


def static_grid() -> np.ndarray:
    """Return the static dataset's factor table in the original row order.

    Returns
    -------
    numpy.ndarray
        float32, shape (262144, 4): ``[blob_x, blob_y, circle_x, circle_y]``.
        Row ``((i0*32 + i1)*16 + i2)*16 + i3`` holds
        ``(i0/31, i1/31, i2/15, i3/15)``.
    """
    bx, by, cx, cy = np.meshgrid(BLOB_GRID, BLOB_GRID, CIRCLE_GRID, CIRCLE_GRID, indexing="ij")
    return np.stack([bx, by, cx, cy], axis=-1).reshape(-1, 4).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _original_sequences(n_sequences: int) -> np.ndarray:
    rs = np.random.RandomState(0)
    points = rs.rand(n_sequences, 2, 2)  # sequence x (start, end) x (x, y)
    # Redraw, in rounds, every pair closer than 0.1; each round draws the
    # replacements for all close pairs at once, in sequence order.
    while True:
        close = np.linalg.norm(points[:, 1] - points[:, 0], axis=-1) < ORIGINAL_MIN_TRAVEL
        n_close = int(close.sum())
        if n_close == 0:
            break
        points[close] = rs.rand(n_close, 2, 2)
    blob_x = rs.choice(BLOB_GRID, n_sequences)
    blob_y = rs.choice(BLOB_GRID, n_sequences)
    frac = np.linspace(0.0, 1.0, N_ORIGINAL_FRAMES)[None, :, None]
    circle = points[:, None, 0] + (points[:, None, 1] - points[:, None, 0]) * frac
    blob = np.broadcast_to(np.stack([blob_x, blob_y], -1)[:, None], circle.shape)
    out = np.concatenate([blob, circle], axis=-1)
    out.setflags(write=False)
    return out


def original_sequences(n_sequences: int = N_ORIGINAL_SEQUENCES) -> np.ndarray:
    """Return the original study's moving-circle sequences, drawn exactly as it drew them.

    numpy's legacy ``RandomState(0)``: ``rand(n, 2, 2)`` start and end points
    (sequence x [start, end] x [x, y]); pairs closer than 0.1 (Euclidean)
    are redrawn in rounds (all close pairs at once, in sequence order, until
    none is left); then ``choice`` of the blob x and then the blob y from
    ``linspace(0, 1, 32)``. The circle moves at constant velocity,
    positions ``linspace(start, end, 10)``; the blob is static.

    The blob draws come after all point draws, so every sequence depends on
    ``n_sequences``: only the default reproduces the original dataset.
    Results are cached; the returned array is read-only.

    Parameters
    ----------
    n_sequences : int
        Number of sequences drawn (the original: 200,000).

    Returns
    -------
    numpy.ndarray
        float64, shape (n_sequences, 10, 4): ``[blob_x, blob_y, circle_x,
        circle_y]`` per frame, in factor units.
    """
    n_sequences = check_int("n_sequences", n_sequences, 1, what="a positive integer",
                            fix=f"use {N_ORIGINAL_SEQUENCES} for the original dataset")
    return _original_sequences(int(n_sequences))
