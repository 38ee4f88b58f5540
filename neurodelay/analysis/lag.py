"""Lag: how far behind (or ahead of) the world a representation is.

Two measurements, both on a results Dataset (``frames``, ``factors`` and node
traces over ``(sample, time, ...)``, time in ms):

Lag-resolved scores (:func:`lag_resolved_scores`)
    Every disentanglement score between the representation at step ``t``
    and the factors at step ``t - k``, for each lag ``k`` (in steps) of a
    range, pooled over samples and steps. Each latent's *effective lag* is
    the ``k`` at which it correlates best with the time-varying factor it
    follows most closely.

Representational lag of a linear readout (:func:`representational_lag`)
    A least-squares map from the representation ``z`` (plus an intercept) to
    the circle position, fitted on one half of the samples and scored on the
    other. The readout is fitted *jointly with its lag*: for a candidate lag
    ``L`` (in steps, fractional) the target of ``z[t]`` is the true circle
    position at ``t - L`` (linear interpolation between steps, and linear
    extension past the last step, exact for constant-velocity motion); the
    lag reported is the ``L`` whose readout decodes the held-out half best
    (held-out mean squared error over a grid of whole steps, then refined
    by a bounded scalar minimisation around the best whole step). For a
    representation that is a linear function of the position ``L`` steps
    ago (``z[t] = A p[t - L] + b``) the held-out error is exactly 0 at ``L``
    and positive elsewhere, so any fractional lag is recovered exactly.

    Why not fit the readout to the *present* position and then measure the
    lag of its output? Because that readout is trained to undo the lag: it
    is biased towards 0 wherever position correlates with velocity in the
    data (as it does for paths that must stay inside the image), and it
    removes the lag entirely when ``z`` carries velocity. With the joint fit
    the readout decodes the position that the representation represents.
    A representation that carries velocity as well as position (enough
    latents to hold both) is ambiguous: its positions at several lags are
    all linearly decodable and the held-out error is flat in ``L``. The
    curve ``lag_readout_rmse_px`` shows it; the lag is then not meaningful.
    Where no lag exists at all (a circle that does not move, a constant
    representation, or one from which the readout decodes the position no
    better than its mean) the lag is NaN and says why (``nan_reason``).

    The signed position error along the direction of motion (decoded minus
    true position at the same step, projected on the unit velocity, in
    pixels; negative = behind) is reported alongside, as is its time course.

Units: lags in steps and ms (``dt_ms`` per step), positions in pixels of the
rendered frames (a factor unit of circle position spans ``0.75 * size``
pixels: the circle centre sits at ``0.75 v + 0.125`` image widths).

Valid steps: only steps ``t >= from_step`` are used. By default
``from_step`` is the representation's first valid step (the attribute
``first_valid_step`` the runner records, 0 if absent) plus one, so that a
velocity estimated from two delayed samples is defined.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.optimize import minimize_scalar

from neurodelay.analysis._checks import check_positive, check_seed, finite_report
from neurodelay.components._validators import as_names
from neurodelay.analysis.disentanglement import (
    COLLAPSE_TOL,
    _collapsed,
    collapsed_latents,
    correlation_matrix,
    dci,
    mig,
    sap,
)

__all__ = [
    "POSITION_FACTORS",
    "CIRCLE_FACTORS",
    "DEFAULT_LAGS",
    "LinearReadout",
    "px_per_unit",
    "representation_variable",
    "fit_readout",
    "representational_lag",
    "lag_resolved_scores",
]

#: The circle position factors a readout decodes (image widths, factor units).
CIRCLE_FACTORS = ("circle_x", "circle_y")
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


# --------------------------------------------------------------------------
# Readout
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LinearReadout:
    """A least-squares linear map from a representation to circle positions.

    ``decode(z) = ((z - mean) / scale) @ coef[:-1] + coef[-1]``.

    Attributes
    ----------
    node : str
        The Dataset variable (node trace) it reads.
    lag_steps : float
        The lag the readout was fitted at: it maps ``z[t]`` to the circle
        position at ``t - lag_steps``.
    dt_ms : float
        Step in ms.
    mean, scale : numpy.ndarray, shape (n_latent,)
        Standardisation of the inputs (training statistics; scale 1 for
        constant inputs).
    coef : numpy.ndarray, shape (n_latent + 1, 2)
        Weights, the last row the intercept; columns ``circle_x``,
        ``circle_y`` in factor units.
    """

    node: str
    lag_steps: float
    dt_ms: float
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray

    @property
    def lag_ms(self) -> float:
        """The lag in ms."""
        return self.lag_steps * self.dt_ms

    def decode(self, z: Any) -> np.ndarray:
        """Decode circle positions.

        Parameters
        ----------
        z : array_like, shape (..., n_latent)
            Representation (numpy array or torch tensor).

        Returns
        -------
        numpy.ndarray, shape (..., 2)
            Decoded ``(circle_x, circle_y)`` in factor units.
        """
        z = _np(z)
        if z.shape[-1] != self.mean.shape[0]:
            raise ValueError(
                f"z must have {self.mean.shape[0]} latents in its last dimension (the readout was "
                f"fitted on node {self.node!r}), got shape {z.shape}; pass that node's trace."
            )
        return _design(z, self.mean, self.scale) @ self.coef


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _design(z: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    x = (z - mean) / scale
    return np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1)


def _fit_lstsq(z_rows: np.ndarray, y_rows: np.ndarray):
    """Least squares with intercept on standardised inputs: (mean, scale, coef)."""
    mean = z_rows.mean(axis=0)
    scale = z_rows.std(axis=0)
    scale = np.where(scale > 1e-12 * np.maximum(np.abs(mean), 1.0), scale, 1.0)
    coef, *_ = np.linalg.lstsq(_design(z_rows, mean, scale), y_rows, rcond=None)
    return mean, scale, coef


def _shift(pos: np.ndarray, lag: float, steps: np.ndarray) -> np.ndarray:
    """Trajectory at fractional times ``steps - lag``.

    Linear interpolation between neighbouring steps, and linear extension of
    the first / last segment outside ``[0, T - 1]`` (exact for constant
    velocity).

    Parameters
    ----------
    pos : numpy.ndarray, shape (n, T, d)
    lag : float
        Steps.
    steps : numpy.ndarray of int, shape (S,)

    Returns
    -------
    numpy.ndarray, shape (n, S, d)
    """
    n_t = pos.shape[1]
    u = steps.astype(np.float64) - float(lag)
    i0 = np.clip(np.floor(u).astype(np.int64), 0, n_t - 2)
    w = (u - i0)[None, :, None]
    return pos[:, i0] * (1.0 - w) + pos[:, i0 + 1] * w


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded half split of ``n`` samples: (train, test), train gets the extra one."""
    if n < 2:
        raise ValueError(f"the readout needs at least 2 samples (one to fit, one to score), got {n}; "
                         f"evaluate more samples.")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    order = rng.permutation(n)
    n_test = n // 2
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _readout_lag_core(z: np.ndarray, pos: np.ndarray, steps: np.ndarray, lags: np.ndarray,
                      train: np.ndarray, test: np.ndarray) -> dict:
    """Jointly fit a linear readout and its lag (pure arrays).

    Parameters
    ----------
    z : numpy.ndarray, shape (n, T, M)
        Representation.
    pos : numpy.ndarray, shape (n, T, 2)
        True circle positions (factor units).
    steps : numpy.ndarray of int, shape (S,)
        Steps used (rows of the fit), all in ``[0, T)``.
    lags : numpy.ndarray of int, shape (K,)
        Candidate whole-step lags, increasing.
    train, test : numpy.ndarray of int
        Sample indices fitted on and scored on.

    Returns
    -------
    dict
        ``lag`` (float, steps), ``mse_curve`` (K,) held-out mean squared
        error per coordinate (factor units squared) at each whole lag,
        ``mse`` at the estimated lag, ``mean``, ``scale``, ``coef`` of the
        readout fitted at the estimated lag, ``at_edge`` (bool: the estimate
        lies at the edge of the searched range).
    """
    z_train = z[train][:, steps].reshape(-1, z.shape[-1])
    z_test = z[test][:, steps].reshape(-1, z.shape[-1])

    def fit(lag: float):
        target = _shift(pos, lag, steps)
        mean, scale, coef = _fit_lstsq(z_train, target[train].reshape(-1, 2))
        err = _design(z_test, mean, scale) @ coef - target[test].reshape(-1, 2)
        return float(np.mean(err**2)), (mean, scale, coef)

    curve = np.array([fit(float(k))[0] for k in lags])
    best = int(np.argmin(curve))
    lo = float(lags[max(best - 1, 0)])
    hi = float(lags[min(best + 1, len(lags) - 1)])
    if hi > lo:
        res = minimize_scalar(lambda lag: fit(lag)[0], bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-6})
        lag = float(res.x)
        if fit(float(lags[best]))[0] < fit(lag)[0]:
            lag = float(lags[best])
    else:
        lag = float(lags[best])
    mse, (mean, scale, coef) = fit(lag)
    at_edge = len(lags) > 1 and (lag <= lags[0] + 1e-3 or lag >= lags[-1] - 1e-3)
    # Held-out R^2 at the estimate: against predicting the training mean of the target.
    target = _shift(pos, lag, steps)
    baseline = float(np.mean((target[test].reshape(-1, 2) - target[train].reshape(-1, 2).mean(axis=0)) ** 2))
    r2 = 1.0 - mse / baseline if baseline > 0 else float("nan")
    return {"lag": lag, "mse_curve": curve, "mse": mse, "mean": mean, "scale": scale, "coef": coef,
            "at_edge": bool(at_edge), "r2": r2}


def _undefined_lag_reason(z_rows: np.ndarray, pos_used: np.ndarray, r2: float, var: str, start: int) -> str | None:
    """Why the readout lag is undefined, or None when it is defined.

    Parameters
    ----------
    z_rows : numpy.ndarray, shape (rows, M)
        The representation at the steps used.
    pos_used : numpy.ndarray, shape (n, S, 2)
        The circle position at the steps used.
    r2 : float
        Held-out R^2 of the readout at the estimated lag.
    var : str
        The representation variable (for the message).
    start : int
        First step used (for the message).
    """
    if float(np.ptp(pos_used, axis=1).max(initial=0.0)) <= 1e-12:
        return (f"the circle does not move over the steps used (from step {start}): its position at every lag "
                f"is the same, so no lag can be told")
    if collapsed_latents(z_rows).all():
        return (f"the representation {var!r} is constant over the steps used (from step {start}): it carries "
                f"no position to read out")
    if not r2 > 0:
        return (f"the readout of {var!r} decodes the held-out circle position no better than its mean "
                f"(R^2 = {r2:.3g} <= 0 at the best lag): the representation carries no linearly decodable "
                f"position")
    return None


# --------------------------------------------------------------------------
# Dataset plumbing
# --------------------------------------------------------------------------


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


def _dt_ms(ds: xr.Dataset) -> float:
    if "dt_ms" in ds.attrs:
        return float(ds.attrs["dt_ms"])
    t = np.asarray(ds["time"].values, dtype=float)
    if t.size < 2:
        raise ValueError("cannot infer dt_ms: the Dataset has no dt_ms attribute and fewer than 2 times.")
    return float(t[1] - t[0])


def _frame_size(ds: xr.Dataset) -> int:
    if "frames" in ds.data_vars:
        return int(ds["frames"].shape[-1])
    if "x" in ds.sizes:
        return int(ds.sizes["x"])
    raise ValueError("cannot tell the frame size in pixels: the Dataset has no frames; pass px_per_unit.")


def _factor_array(ds: xr.Dataset, names: Sequence[str]) -> np.ndarray:
    have = [str(n) for n in ds["factor"].values]
    missing = [n for n in names if n not in have]
    if missing:
        raise KeyError(f"the Dataset's factors {have} lack {missing}; this analysis needs a circle world.")
    return np.asarray(ds["factors"].sel(factor=list(names)).values, dtype=np.float64)


def _default_from_step(ds: xr.Dataset, var: str, from_step: int | None) -> int:
    n_t = ds.sizes["time"]
    if from_step is None:
        from_step = int(ds[var].attrs.get("first_valid_step", 0)) + 1
        from_step = min(from_step, max(n_t - 2, 0))
    if isinstance(from_step, bool) or not isinstance(from_step, numbers.Integral) or not 0 <= from_step < n_t:
        raise ValueError(f"from_step must be an integer step in [0, {n_t - 1}] (the sequence has {n_t} "
                         f"steps), got {from_step!r}.")
    return int(from_step)


def _check_lags(lags) -> np.ndarray:
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


def _check_finite(name: str, values: np.ndarray, axes: tuple[str, ...], fix: str,
                  offsets: tuple[int, ...] | None = None) -> None:
    report = finite_report(values, axes, offsets)
    if report is not None:
        raise ValueError(f"{name} must contain only finite values; found {report}. {fix}")


def _check_has_time(ds: xr.Dataset) -> None:
    if ds.sizes.get("time", 0) < 1:
        raise ValueError(f"the Dataset must have at least one time step, got time of length "
                         f"{ds.sizes.get('time', 0)}; pass the results of a run or of simulate.")


def _score_inputs(ds: xr.Dataset, var: str, start: int, factors, max_rows) -> tuple:
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
    _check_finite(f"the representation {var!r} (at the steps used, from step {start})", z[:, start:],
                  ("sample", "step", "unit"), "Drop those samples (ds.isel(sample=...)) or start after them "
                  "(from_step) before scoring.", offsets=(0, start, 0))
    _check_finite("the factors", f, ("sample", "step", "factor"),
                  "Drop those samples (ds.isel(sample=...)) before scoring.")
    scored = np.array([n in scored_names for n in names], dtype=bool)
    return names, scored_names, scored, z, f


def _lag_coords(lags: np.ndarray, dt_ms: float) -> dict:
    return {
        "lag": ("lag", lags * float(dt_ms), {"units": "ms", "long_name": "lag of the factors behind the "
                                            "representation (positive: representation behind the world)"}),
        "lag_step": ("lag", lags, {"units": "steps", "long_name": "lag in simulation steps"}),
    }


# --------------------------------------------------------------------------
# Public: readout lag
# --------------------------------------------------------------------------


def fit_readout(ds: xr.Dataset, node: str | None = None, *, lags: int | Sequence[int] = DEFAULT_LAGS,
                from_step: int | None = None, seed: int = 0) -> tuple[LinearReadout, dict]:
    """Fit the lag-aligned linear readout of circle position (see the module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        Results of a moving world: ``factors`` (sample, time, factor) with
        ``circle_x``, ``circle_y``; the representation trace (sample, time,
        unit). At least 2 samples and 3 steps.
    node : str, optional
        Representation node or variable (see :func:`representation_variable`).
    lags : int or sequence of int
        Candidate lags in whole steps, increasing (default -2..6); a single
        int fits the readout at that lag alone.
    from_step : int, optional
        First step used (default: first valid step + 1).
    seed : int
        Seed (>= 0) of the half split of the samples.

    Returns
    -------
    (LinearReadout, dict)
        The readout, fitted on the training half at the estimated lag, and
        the details: ``lag`` (steps), ``mse_curve`` (per whole lag),
        ``mse``, ``r2`` (held-out R^2 at the estimate), ``at_edge``,
        ``train``, ``test`` (sample indices), ``steps`` (steps used),
        ``var`` and ``undefined_reason``.

        The lag is undefined, and ``lag`` and the readout's ``lag_steps``
        are NaN (with the readout, and ``mse``, fitted at lag 0 and
        ``undefined_reason`` saying why; None otherwise), when the circle
        does not move over the steps used, when the representation is
        constant there (e.g. a blend with gamma = 1), or when the readout
        decodes the held-out position no better than its mean (held-out
        R^2 <= 0): every candidate lag is then as good as any other.

    Raises
    ------
    ValueError
        Bad arguments, too few samples or steps, or a NaN or infinite value
        in the representation (at the steps used) or in the circle position.
    """
    var = representation_variable(ds, node)
    lags = _check_lags(lags)
    seed = check_seed(seed)
    n_t = ds.sizes["time"]
    if n_t < 3:
        raise ValueError(f"the readout lag needs sequences of at least 3 steps, got {n_t}; "
                         f"use a moving world.")
    start = _default_from_step(ds, var, from_step)
    steps = np.arange(start, n_t)
    z = np.asarray(ds[var].values, dtype=np.float64)
    pos = _factor_array(ds, CIRCLE_FACTORS)
    _check_finite(f"the representation {var!r} (at the steps used, from step {start})", z[:, start:],
                  ("sample", "step", "unit"), "Drop those samples (ds.isel(sample=...)) or start after them "
                  "(from_step) before fitting the readout.", offsets=(0, start, 0))
    _check_finite("the circle position factors", pos, ("sample", "step", "factor"),
                  "Drop those samples (ds.isel(sample=...)) before fitting the readout.")
    train, test = _split(z.shape[0], seed)
    out = _readout_lag_core(z, pos, steps, lags, train, test)
    reason = _undefined_lag_reason(z[:, steps].reshape(-1, z.shape[-1]), pos[:, steps], out["r2"], var, start)
    if reason is not None:
        # No lag to estimate: report NaN, with the readout fitted at lag 0.
        zero = _readout_lag_core(z, pos, steps, np.array([0]), train, test)
        out.update(lag=float("nan"), mse=zero["mse"], at_edge=False, mean=zero["mean"], scale=zero["scale"],
                   coef=zero["coef"])
    elif out["at_edge"]:
        warnings.warn(f"the readout lag {out['lag']:.3g} steps lies at the edge of the searched range "
                      f"[{lags[0]}, {lags[-1]}]; widen lags.", stacklevel=2)
    out["undefined_reason"] = reason
    readout = LinearReadout(node=var, lag_steps=out["lag"], dt_ms=_dt_ms(ds), mean=out["mean"],
                            scale=out["scale"], coef=out["coef"])
    out.update(train=train, test=test, steps=steps, var=var)
    return readout, out


def representational_lag(ds: xr.Dataset, node: str | None = None, *, lags: int | Sequence[int] = DEFAULT_LAGS,
                         from_step: int | None = None, seed: int = 0,
                         pixels_per_unit: float | None = None) -> xr.Dataset:
    """Lag of the representation behind the world, from a lag-aligned linear readout.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of a moving world (see :func:`fit_readout`).
    node : str, optional
        Representation node or variable.
    lags : int or sequence of int
        Candidate whole-step lags (default -2..6).
    from_step : int, optional
        First step used (default: first valid step + 1).
    seed : int
        Seed (>= 0) of the half split.
    pixels_per_unit : float, optional
        Pixels per factor unit, a finite number > 0 (default
        ``0.75 * frame size``).

    Returns
    -------
    xarray.Dataset
        ``lag_steps`` and ``lag_ms`` (scalars: the estimated lag),
        ``lag_readout_rmse_px`` (lag: held-out root mean squared error of
        the readout fitted at each whole lag, px), ``readout_rmse_px``
        (at the estimate), ``position_error_px`` (signed error of the
        decoded position along the direction of motion, mean over the
        held-out samples and used steps, px; negative = behind) and
        ``position_error_px_by_time`` (time; NaN at unused steps).
        Where the lag is undefined (see :func:`fit_readout`: a circle that
        does not move, a constant representation, or one from which no
        position can be decoded) ``lag_steps``, ``lag_ms``,
        ``readout_rmse_px`` and the position errors are NaN and carry the
        reason in their ``nan_reason`` attribute. The attribute
        ``readout_r2`` is the readout's held-out R^2 at the estimate (near
        0: a lag read from noise).
    """
    if pixels_per_unit is not None:
        pixels_per_unit = check_positive("pixels_per_unit", pixels_per_unit, "pixels_per_unit=24 (32 px frames)")
    readout, info = fit_readout(ds, node, lags=lags, from_step=from_step, seed=seed)
    lags = _check_lags(lags)
    dt = readout.dt_ms
    ppu = px_per_unit(_frame_size(ds)) if pixels_per_unit is None else pixels_per_unit
    z = np.asarray(ds[info["var"]].values, dtype=np.float64)[info["test"]]
    pos = _factor_array(ds, CIRCLE_FACTORS)[info["test"]]
    along = _along_motion_error(readout.decode(z), pos) * ppu  # (n_test, T)
    by_time = np.full(ds.sizes["time"], np.nan)
    used = info["steps"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps (no motion) stay NaN
        by_time[used] = np.nanmean(along[:, used], axis=0)
        overall = float(np.nanmean(along[:, used]))
    attrs_common = {"node": info["var"], "from_step": int(used[0]), "readout_at_range_edge": int(info["at_edge"]),
                    "readout_r2": float(info["r2"])}
    reason = info["undefined_reason"]
    if reason is not None:  # no lag: the readout decodes nothing, so neither do its errors
        by_time[:] = np.nan
        overall = float("nan")
        attrs_common["nan_reason"] = reason
    return xr.Dataset(
        {
            "lag_steps": ((), info["lag"], {"units": "steps", "long_name": "representational lag: lag of the "
                                            "world at which a linear readout best decodes the circle position "
                                            "(held out)", **attrs_common}),
            "lag_ms": ((), info["lag"] * dt, {"units": "ms", "long_name": "representational lag of the linear "
                                              "readout", **attrs_common}),
            "lag_readout_rmse_px": ("lag", np.sqrt(info["mse_curve"]) * ppu, {
                "units": "px", "long_name": "held-out RMS error of the circle-position readout fitted at each "
                                            "lag (per coordinate)"}),
            "readout_rmse_px": ((), math.sqrt(info["mse"]) * ppu if reason is None else float("nan"), {
                "units": "px", "long_name": "held-out RMS error of the circle-position readout at the "
                                            "estimated lag (per coordinate)",
                **({"nan_reason": reason} if reason is not None else {})}),
            "position_error_px": ((), overall, {
                "units": "px", "long_name": "signed error of the decoded circle position along the direction "
                                            "of motion (negative: behind)", **attrs_common}),
            "position_error_px_by_time": ("time", by_time, {
                "units": "px", "long_name": "signed error of the decoded circle position along the direction "
                                            "of motion, per step (NaN: unused step)",
                **({"nan_reason": reason} if reason is not None else {})}),
        },
        coords={**_lag_coords(lags, dt), "time": ds["time"]},
    )


def _along_motion_error(decoded: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """(decoded - true) projected on the unit velocity; NaN where the circle does not move.

    Parameters
    ----------
    decoded, pos : numpy.ndarray, shape (n, T, 2)

    Returns
    -------
    numpy.ndarray, shape (n, T)
    """
    vel = np.gradient(pos, axis=1)
    speed = np.linalg.norm(vel, axis=-1)
    moving = speed > 1e-9
    unit = vel / np.where(moving, speed, 1.0)[..., None]
    err = ((decoded - pos) * unit).sum(axis=-1)
    return np.where(moving, err, np.nan)


# --------------------------------------------------------------------------
# Public: lag-resolved scores
# --------------------------------------------------------------------------


def _lag_rows(z: np.ndarray, f: np.ndarray, k: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows pairing z[:, t] with f[:, t - k] for t >= start with 0 <= t - k < T."""
    n_t = z.shape[1]
    t = np.arange(max(start, k, 0), min(n_t, n_t + k))
    if t.size == 0:
        return z[:, :0].reshape(0, z.shape[-1]), f[:, :0].reshape(0, f.shape[-1])
    return z[:, t].reshape(-1, z.shape[-1]), f[:, t - k].reshape(-1, f.shape[-1])


def _lag_scores_core(z: np.ndarray, f: np.ndarray, lags: np.ndarray, start: int, scored: np.ndarray,
                     max_rows: int, seed: int) -> dict:
    """Scores of z at t against f at t - k for each k (pure arrays).

    Parameters
    ----------
    z : numpy.ndarray, shape (n, T, M)
    f : numpy.ndarray, shape (n, T, F)
    lags : numpy.ndarray of int, shape (K,)
    start : int
        First step of z used.
    scored : numpy.ndarray of bool, shape (F,)
        Factors that enter MIG, DCI and SAP.
    max_rows : int
        Rows used per lag at most (a seeded subsample beyond it).
    seed : int

    Returns
    -------
    dict
        ``correlation`` (K, M, F); ``mig``, ``dci_disentanglement``,
        ``dci_completeness``, ``dci_informativeness``, ``sap`` (K,), NaN
        where a lag leaves fewer than 3 rows or every scored factor is
        constant over its rows (factors constant over the rows are left out
        of the scores); ``nan_reason`` (K,) list of str, why a lag's scores
        are NaN ("" where they are not).
    """
    n_k, m, n_f = len(lags), z.shape[-1], f.shape[-1]
    out = {"correlation": np.full((n_k, m, n_f), np.nan), "nan_reason": [""] * n_k}
    for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap"):
        out[key] = np.full(n_k, np.nan)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    for i, k in enumerate(lags):
        zr, fr = _lag_rows(z, f, int(k), start)
        if zr.shape[0] < 3:
            out["nan_reason"][i] = f"{zr.shape[0]} rows (samples x steps), fewer than 3"
            continue
        if zr.shape[0] > max_rows:
            keep = np.sort(rng.choice(zr.shape[0], max_rows, replace=False))
            zr, fr = zr[keep], fr[keep]
        out["correlation"][i] = correlation_matrix(zr, fr)
        # Constant factors carry nothing to recover: score the others (as the metrics themselves do).
        fs = fr[:, scored]
        fs = fs[:, ~_collapsed(fs, COLLAPSE_TOL)] if fs.shape[1] else fs
        if fs.shape[1] == 0:
            out["nan_reason"][i] = "every scored factor is constant over the rows (samples x steps)"
            continue
        out["mig"][i] = mig(zr, fs)
        d = dci(zr, fs, seed=seed)
        out["dci_disentanglement"][i] = d["disentanglement"]
        out["dci_completeness"][i] = d["completeness"]
        out["dci_informativeness"][i] = d["informativeness"]
        out["sap"][i] = sap(zr, fs)
    return out


def _effective_lags(corr: np.ndarray, lags: np.ndarray, varying: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per latent: (lag of its best |corr| with the factor it follows best, that factor's index).

    Parameters
    ----------
    corr : numpy.ndarray, shape (K, M, F)
    lags : numpy.ndarray, shape (K,)
    varying : numpy.ndarray of bool, shape (F,)
        Factors that change within a sequence (the only ones a lag applies to).

    Returns
    -------
    (numpy.ndarray of float (M,), numpy.ndarray of int (M,))
        Lag in steps and factor index: the factor is the one with the
        largest absolute correlation over every lag; the lag is NaN when
        that factor does not change within a sequence (a lag of a constant
        means nothing), and both are NaN / -1 for a latent that correlates
        with no factor.
    """
    m = corr.shape[1]
    lag_out = np.full(m, np.nan)
    fac_out = np.full(m, -1, dtype=np.int64)
    a = np.abs(np.nan_to_num(corr, nan=0.0))  # (K, M, F)
    for j in range(m):
        if a[:, j].max(initial=0.0) <= 0:
            continue
        k, fac = np.unravel_index(int(np.argmax(a[:, j])), a[:, j].shape)
        fac_out[j] = int(fac)
        if varying[fac]:
            lag_out[j] = float(lags[k])
    return lag_out, fac_out


def lag_resolved_scores(ds: xr.Dataset, node: str | None = None, *, lags: int | Sequence[int] = DEFAULT_LAGS,
                        from_step: int | None = None, factors: str | Sequence[str] | None = None,
                        max_rows: int = 20000, seed: int = 0) -> xr.Dataset:
    """Disentanglement scores between the representation at t and the factors at t - k.

    For each lag ``k`` (steps) the rows are all pairs ``(z[s, t], f[s, t - k])``
    with ``t >= from_step`` and ``0 <= t - k < T``, pooled over samples
    ``s``; at most ``max_rows`` rows (seeded subsample) per lag.

    Parameters
    ----------
    ds : xarray.Dataset
        Results with ``factors`` (sample, time, factor) and the representation.
    node : str, optional
        Representation node or variable.
    lags : int or sequence of int
        Whole-step lags (default -2..6).
    from_step : int, optional
        First step of the representation used (default: first valid + 1).
    factors : str or sequence of str, optional
        Factors scored by MIG, DCI and SAP (default: the four position
        factors present); a single name (a str) scores that factor alone.
        Correlations use every factor.
    max_rows : int
        Rows per lag at most.
    seed : int
        Seed (>= 0) of the subsample and of DCI's split.

    Returns
    -------
    xarray.Dataset
        ``lag_correlation`` (lag, unit, factor), ``lag_mig``,
        ``lag_dci_disentanglement``, ``lag_dci_completeness``,
        ``lag_dci_informativeness``, ``lag_sap`` (lag), and per latent
        ``latent_lag_steps``, ``latent_lag_ms`` (the lag of its best
        absolute correlation with the factor it follows best; NaN if that
        factor does not change within a sequence, e.g. the blob's position
        or a constant velocity, or if the latent correlates with no factor)
        and ``latent_lag_factor`` (that factor's name; empty if none). A
        lag's scores are NaN where it leaves fewer than 3 rows or every
        scored factor is constant over its rows; the ``nan_reason``
        attribute of each score says which lags and why.

    Raises
    ------
    ValueError
        Bad arguments, no time steps, or a NaN or infinite value in the
        representation (at the steps used) or in the factors.
    KeyError
        Unknown node or factors.
    """
    var = representation_variable(ds, node)
    lags = _check_lags(lags)
    seed = check_seed(seed)
    _check_has_time(ds)
    start = _default_from_step(ds, var, from_step) if ds.sizes["time"] > 1 else 0
    names, scored_names, scored, z, f = _score_inputs(ds, var, start, factors, max_rows)
    out = _lag_scores_core(z, f, lags, start, scored, int(max_rows), seed)
    varying = np.array([bool(np.any(np.ptp(f[:, :, i], axis=1) > 0)) for i in range(f.shape[-1])])
    lat_lag, lat_fac = _effective_lags(out["correlation"], lags, varying)
    dt = _dt_ms(ds)
    unit = ds[var].dims[2]
    score_text = {"mig": ("mutual information gap", "1"), "dci_disentanglement": ("DCI disentanglement", "1"),
                  "dci_completeness": ("DCI completeness", "1"),
                  "dci_informativeness": ("DCI informativeness (held-out R^2)", "1"),
                  "sap": ("separated attribute predictability", "1")}
    data = {
        "lag_correlation": (("lag", unit, "factor"), out["correlation"], {
            "units": "1", "long_name": "Pearson correlation of each latent at t with each factor at t - lag",
            "node": var}),
        "latent_lag_steps": ((unit,), lat_lag, {"units": "steps", "long_name": "effective lag of each latent "
                                                "(lag of its best correlation with the factor it follows best; "
                                                "NaN: that factor is constant within a sequence, or none)"}),
        "latent_lag_ms": ((unit,), lat_lag * dt, {"units": "ms", "long_name": "effective lag of each latent"}),
        "latent_lag_factor": ((unit,), np.array([names[i] if i >= 0 else "" for i in lat_fac], dtype=object),
                              {"long_name": "factor each latent follows best (empty: none; its lag is NaN "
                                            "when the factor is constant within a sequence)"}),
    }
    nan_reason = "; ".join(f"lag {int(k)} steps: {r}" for k, r in zip(lags, out["nan_reason"]) if r)
    for key, (text, units) in score_text.items():
        data[f"lag_{key}"] = ("lag", out[key], {"units": units, "long_name": f"{text} of the latents at t "
                                                f"against the factors at t - lag ({', '.join(scored_names)})",
                                                **({"nan_reason": nan_reason} if nan_reason else {})})
    coords = {**_lag_coords(lags, dt), "factor": ds["factor"]}
    if unit in ds.coords:
        coords[unit] = ds[unit]
    return xr.Dataset(data, coords=coords)
