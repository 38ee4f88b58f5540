"""Argument checks shared by the analyses.

Messages name the argument, the constraint, the value and a fix, like the
validators of :mod:`neurodelay.analysis.disentanglement`.
"""

from __future__ import annotations

import math

import numpy as np

from neurodelay._util.validators import is_int, is_real


def check_seed(seed) -> int:
    """Check a seed (an integer >= 0; numpy integers allowed, bool rejected); return it as int."""
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}. Pass e.g. seed=0.")
    return int(seed)


def check_positive(name: str, value, example: str) -> float:
    """Check a finite number > 0 (numpy scalars allowed, bool rejected); return it as float."""
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}; use e.g. {example}.")
    return float(value)


def finite_report(values: np.ndarray, axes: tuple[str, ...], offsets: tuple[int, ...] | None = None) -> str | None:
    """None if every entry of ``values`` is finite, else ``"N NaN or infinite entries (first at ...)"``.

    ``axes`` names the dimensions of ``values`` (one name per axis);
    ``offsets`` (default 0) are added to the reported indices (for a slice).
    """
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    offsets = offsets or (0,) * len(first)
    where = ", ".join(f"{a} {i + o}" for a, i, o in zip(axes, first, offsets))
    return f"{int(bad.sum())} NaN or infinite entries (first at {where}: {values[first]})"
