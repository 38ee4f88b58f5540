"""Dataset plumbing shared by the lag analyses: which variable, which steps, which factors.

Names here are used by :mod:`neurodelay.analysis.lag`,
:mod:`neurodelay.analysis.lag_scores` and the registered analyses; they
check their arguments the way the public functions document.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import xarray as xr

from neurodelay.analysis._checks import check_positive, finite_report
from neurodelay._util.validators import as_names

__all__ = ["POSITION_FACTORS", "CIRCLE_FACTORS", "VELOCITY_FACTORS", "DEFAULT_LAGS", "px_per_unit",
           "representation_variable", "dt_ms_of", "frame_size", "factor_array", "default_from_step",
           "check_lags", "check_finite", "check_has_time", "lag_coords", "score_inputs"]

#: The circle position factors a readout decodes (image widths, factor units).
CIRCLE_FACTORS = ("circle_x", "circle_y")
#: The circle velocity factors (factor units per step).
VELOCITY_FACTORS = ("circle_vx", "circle_vy")
#: Position factors scored by the disentanglement metrics (the original's four).
POSITION_FACTORS = ("blob_x", "blob_y", "circle_x", "circle_y")
#: Candidate lags in steps: from 2 steps ahead to 6 steps behind.
DEFAULT_LAGS = tuple(range(-2, 7))
#: Circle centre travel per factor unit, as a fraction of the image size.
_CIRCLE_SPAN = 0.75


def px_per_unit(size: int) -> float:
    """Pixels per unit of circle-position factor for ``size``-pixel frames.

    The circle centre sits at ``0.75 v + 0.125`` image widths for a factor
    value ``v`` (the original's 8..56 px at 64 px), so one factor unit is
    ``0.75 * size`` pixels (24 px at 32 px).

    Raises
    ------
    ValueError
        If ``size`` is not a finite number > 0.
    """
    return _CIRCLE_SPAN * check_positive("size", size, "size=32 (the frame width in pixels)")



def representation_variable(ds: xr.Dataset, node: str | None = None) -> str:
    """The Dataset variable holding the representation trace.

    Parameters
    ----------
    ds : xarray.Dataset
        Results with node traces over ``(sample, time, unit)``.
    node : str, optional
        A node name or variable name. Default: the variable ``z`` if it is a
        vector trace, else the only vector trace (auxiliary traces such as
        ``enc_mu`` aside).

    Returns
    -------
    str
        The variable name.

    Raises
    ------
    KeyError
        No such node, or no unambiguous default.
    """
    def is_vector(name):
        v = ds[name]
        return v.ndim == 3 and v.dims[:2] == ("sample", "time") and name != "factors"

    if node is not None:
        for name in ds.data_vars:
            if (name == node or ds[name].attrs.get("node") == node) and is_vector(name):
                return str(name)
        raise KeyError(f"node={node!r}: the Dataset has no vector trace (sample, time, unit) of that node; "
                       f"vector traces: {_vector_names(ds)}.")
    if "z" in ds.data_vars and is_vector("z"):
        return "z"
    candidates = [n for n in _vector_names(ds) if not n.endswith(("_mu", "_logvar"))]
    if len(candidates) == 1:
        return candidates[0]
    raise KeyError(f"cannot tell which trace is the representation among {candidates or 'none'}: "
                   f"pass node=<name>.")


def _vector_names(ds: xr.Dataset) -> list[str]:
    return [str(n) for n, v in ds.data_vars.items()
            if v.ndim == 3 and v.dims[:2] == ("sample", "time") and n != "factors"]


def dt_ms_of(ds: xr.Dataset) -> float:
    if "dt_ms" in ds.attrs:
        return float(ds.attrs["dt_ms"])
    t = np.asarray(ds["time"].values, dtype=float)
    if t.size < 2:
        raise ValueError("cannot infer dt_ms: the Dataset has no dt_ms attribute and fewer than 2 times.")
    return float(t[1] - t[0])


def frame_size(ds: xr.Dataset) -> int:
    if "frames" in ds.data_vars:
        return int(ds["frames"].shape[-1])
    if "x" in ds.sizes:
        return int(ds.sizes["x"])
    raise ValueError("cannot tell the frame size in pixels: the Dataset has no frames; pass px_per_unit.")


def factor_array(ds: xr.Dataset, names: Sequence[str]) -> np.ndarray:
    have = [str(n) for n in ds["factor"].values]
    missing = [n for n in names if n not in have]
    if missing:
        raise KeyError(f"the Dataset's factors {have} lack {missing}; this analysis needs a circle world.")
    return np.asarray(ds["factors"].sel(factor=list(names)).values, dtype=np.float64)


def default_from_step(ds: xr.Dataset, var: str, from_step: int | None) -> int:
    n_t = ds.sizes["time"]
    if from_step is None:
        from_step = int(ds[var].attrs.get("first_valid_step", 0)) + 1
        from_step = min(from_step, max(n_t - 2, 0))
    if isinstance(from_step, bool) or not isinstance(from_step, numbers.Integral) or not 0 <= from_step < n_t:
        raise ValueError(f"from_step must be an integer step in [0, {n_t - 1}] (the sequence has {n_t} "
                         f"steps), got {from_step!r}.")
    return int(from_step)


def check_lags(lags) -> np.ndarray:
    if isinstance(lags, numbers.Integral) and not isinstance(lags, (bool, np.bool_)):
        lags = [lags]  # a single lag
    try:
        arr = np.asarray(list(lags))
    except TypeError:
        raise ValueError(f"lags must be a whole number of steps or a non-empty sequence of them, got {lags!r}; "
                         f"use e.g. range(-2, 7).") from None
    if arr.ndim != 1 or arr.size < 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"lags must be a non-empty sequence of whole steps, got {lags!r}; "
                         f"use e.g. range(-2, 7).")
    if np.any(np.diff(arr) <= 0):
        raise ValueError(f"lags must be strictly increasing, got {list(arr)}; use e.g. range(-2, 7).")
    return arr.astype(np.int64)


def check_finite(name: str, values: np.ndarray, axes: tuple[str, ...], fix: str,
                  offsets: tuple[int, ...] | None = None) -> None:
    report = finite_report(values, axes, offsets)
    if report is not None:
        raise ValueError(f"{name} must contain only finite values; found {report}. {fix}")


def check_has_time(ds: xr.Dataset) -> None:
    if ds.sizes.get("time", 0) < 1:
        raise ValueError(f"the Dataset must have at least one time step, got time of length "
                         f"{ds.sizes.get('time', 0)}; pass the results of a run or of simulate.")


def score_inputs(ds: xr.Dataset, var: str, start: int, factors, max_rows) -> tuple:
    """Check the arguments of the Dataset-level scores; return (names, scored_names, scored, z, f).

    ``scored_names`` defaults to the position factors present; ``z`` (sample,
    time, unit) and ``f`` (sample, time, factor) are float64, checked finite
    (``z`` from step ``start`` on).
    """
    names = [str(n) for n in ds["factor"].values]
    scored_names = ([n for n in POSITION_FACTORS if n in names] if factors is None
                    else list(as_names(factors, "factors", hint="; use e.g. factors=['circle_x', 'circle_y']")))
    unknown = [n for n in scored_names if n not in names]
    if unknown:
        raise KeyError(f"factors {unknown} are not in the Dataset's factors {names}.")
    if not scored_names:
        raise ValueError(f"factors must name at least one factor to score; got {factors!r} (the Dataset's "
                         f"factors: {names}). Use e.g. factors={names[:1]!r}, or None for the position factors.")
    if len(set(scored_names)) != len(scored_names):
        raise ValueError(f"factors must not repeat a name, got {scored_names}.")
    if isinstance(max_rows, (bool, np.bool_)) or not isinstance(max_rows, numbers.Integral) or max_rows < 3:
        raise ValueError(f"max_rows must be an integer >= 3, got {max_rows!r}; use e.g. max_rows=20000.")
    z = np.asarray(ds[var].values, dtype=np.float64)
    f = np.asarray(ds["factors"].values, dtype=np.float64)
    check_finite(f"the representation {var!r} (at the steps used, from step {start})", z[:, start:],
                  ("sample", "step", "unit"), "Drop those samples (ds.isel(sample=...)) or start after them "
                  "(from_step) before scoring.", offsets=(0, start, 0))
    check_finite("the factors", f, ("sample", "step", "factor"),
                  "Drop those samples (ds.isel(sample=...)) before scoring.")
    scored = np.array([n in scored_names for n in names], dtype=bool)
    return names, scored_names, scored, z, f


def lag_coords(lags: np.ndarray, dt_ms: float) -> dict:
    return {
        "lag": ("lag", lags * float(dt_ms), {"units": "ms", "long_name": "lag of the factors behind the "
                                            "representation (positive: representation behind the world)"}),
        "lag_step": ("lag", lags, {"units": "steps", "long_name": "lag in simulation steps"}),
    }

