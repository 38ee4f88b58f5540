"""Representational lag: how far behind (or ahead of) the world a representation is.

The lag (:func:`representational_lag`)
    The representation ``z`` is modelled as a function of the circle's
    position ``L`` steps ago plus noise, ``z[t] = f(p[t - L]) + e`` (an
    *encoding model*; ``f`` linear in the position and in Gaussian bumps
    over the image, so that smooth nonlinear codes fit too), fitted by least
    squares over every sequence for each candidate ``L`` (fractional: the
    position is interpolated linearly between steps and extended linearly
    past the ends, exact for constant velocity); the lag is the ``L`` whose
    fit leaves the smallest residual, whitened by a fixed matrix (see
    :mod:`neurodelay.analysis._lagfit`). A grid of whole steps, then a
    bounded scalar minimisation around the best one.

    Why an encoding model and not a readout of the position from ``z``?
    Noise in ``z`` sits in the response of an encoding regression, where
    least squares is unbiased, and adds to the residual a constant that does
    not depend on ``L``: the lag of a noisy representation is that of its
    noise-free twin. A decoding readout (position regressed on ``z``) has
    the noise in its regressors: its fit is attenuated towards the mean
    (errors in variables) by an amount that depends on how the position's
    spread changes with ``L`` over bounded paths, which pulls the lag
    (``method="decoding"`` keeps that estimator for comparison;
    ``docs/calibration.md`` gives both estimators' bias on ground truth).

    The decoding readout is still what reads positions out of ``z``
    (:func:`fit_readout`, the flash-lag, the position errors): fitted at the
    estimated lag, it maps ``z[t]`` to the circle position at ``t - L``.

When is there no lag to report?
    The lag is NaN, with the reason in the ``nan_reason`` attribute, never a
    number read from nothing, when

    * the circle does not move over the steps used, or ``z`` is constant;
    * ``z`` carries the circle's velocity beyond its position at the lag
      (``lag_velocity_gain`` above ``max_velocity_gain``): on paths of
      constant velocity the position at every lag is then equally present,
      ``p(t - L) = p(t) - L v``, so no lag can be told;
    * the estimate lies at the edge of the searched range (widen ``lags``);
    * the readout's held-out R^2 at the lag is below ``min_r2`` (default
      0.5): a lag read from a representation that hardly carries the
      position is a lag of noise;
    * the bootstrap interval of the lag is wider than ``max_ci_steps``: the
      data cannot pin it down.

Uncertainty
    ``n_boot`` bootstrap resamples of the sequences (the fitting and the
    scoring halves resampled apart, so that they stay disjoint;
    ``scipy.stats.bootstrap``, percentile intervals) give the interval of
    the lag, of the readout error and of the signed position error
    (``*_ci`` variables over ``bound``). The intervals are those of the
    estimator on this evaluation set: they cover the sequences drawn, not
    the training run (repeat the run with other seeds for that).

Units: lags in steps and ms (``dt_ms`` per step), positions in pixels of the
rendered frames (a factor unit of circle position spans ``0.75 * size``
pixels: the circle centre sits at ``0.75 v + 0.125`` image widths).

Valid steps: only steps ``t >= from_step`` are used. By default
``from_step`` is the representation's first valid step (the attribute
``first_valid_step`` the runner records, 0 if absent) plus one, so that a
velocity estimated from two delayed samples is defined.

Lag-resolved disentanglement scores (:func:`lag_resolved_scores`) live in
:mod:`neurodelay.analysis.lag_scores` and are re-exported here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy import stats

from neurodelay.analysis._checks import check_positive, check_seed
from neurodelay.analysis._dataset import (
    CIRCLE_FACTORS,
    DEFAULT_LAGS,
    POSITION_FACTORS,
    VELOCITY_FACTORS,
    check_finite,
    check_lags,
    default_from_step,
    dt_ms_of,
    factor_array,
    frame_size,
    lag_coords,
    px_per_unit,
    representation_variable,
)
from neurodelay.analysis._lagfit import encoding_lag_core, shift, velocity_gain
from neurodelay.analysis.disentanglement import collapsed_latents
from neurodelay.analysis.lag_scores import lag_resolved_scores
from neurodelay.analysis.readout import LinearReadout, _readout_at, _readout_lag_core, _split
from neurodelay._util.validators import is_int, is_real

__all__ = [
    "POSITION_FACTORS",
    "CIRCLE_FACTORS",
    "DEFAULT_LAGS",
    "METHODS",
    "LinearReadout",
    "px_per_unit",
    "representation_variable",
    "fit_readout",
    "representational_lag",
    "lag_resolved_scores",
]

#: Lag estimators: the encoding model (default, unbiased by noise in z) and the decoding readout.
METHODS = ("encoding", "decoding")
#: Defaults of the gates (see the module docstring).
MIN_R2 = 0.5
MAX_VELOCITY_GAIN = 0.2
MAX_CI_STEPS = 2.0
#: Features of the position readout: the latents and their squares and products (see LinearReadout).
READOUT_DEGREE = 2


# --------------------------------------------------------------------------
# Estimation
# --------------------------------------------------------------------------


def _undefined_lag_reason(z_rows, pos_used, var: str, start: int) -> str | None:
    """Why no lag exists at all (no motion, constant z), or None."""
    if float(np.ptp(pos_used, axis=1).max(initial=0.0)) <= 1e-12:
        return (f"the circle does not move over the steps used (from step {start}): its position at every lag "
                f"is the same, so no lag can be told")
    if collapsed_latents(z_rows).all():
        return (f"the representation {var!r} is constant over the steps used (from step {start}): it carries "
                f"no position to read out")
    return None


def _estimate(z, pos, vel, steps, lags, train, test, method: str, max_velocity_gain: float,
              degree: int = 1) -> dict:
    """The lag and the readout at it (pure arrays).

    The encoding model uses every sequence (``train`` and ``test``); the
    decoding readout is fitted on ``train`` and scored on ``test``. Returns
    a dict with ``lag`` (NaN with ``reason`` when the data cannot give
    one), the decoding readout at that lag (``mse``, ``r2``, ``mean``,
    ``scale``, ``coef``; fitted at lag 0 when there is no lag), the curves
    ``encoding_curve`` and ``mse_curve``, ``decoding_lag``,
    ``velocity_gain``, ``at_edge`` and ``weights`` (the encoding model's
    per-sequence statistics, :class:`~neurodelay.analysis._lagfit.EncodingStats`,
    for the bootstrap).
    """
    dec = _readout_lag_core(z, pos, steps, lags, train, test, degree)
    out = {"mse_curve": dec["mse_curve"], "decoding_lag": dec["lag"], "encoding_curve": np.full(len(lags), np.nan),
           "velocity_gain": float("nan"), "at_edge": False, "reason": None, "weights": None}
    if method == "encoding":
        enc = encoding_lag_core(z, pos, steps, lags, np.sort(np.concatenate([train, test])))
        out["encoding_curve"] = enc["curve"]
        out["weights"] = enc["stats"]
        lag, at_edge = enc["lag"], enc["at_edge"]
    else:
        lag, at_edge = dec["lag"], dec["at_edge"]
    at = _readout_at(z, pos, steps, lag if math.isfinite(lag) else 0.0, train, test, degree)
    if not math.isfinite(lag) or not at["r2"] > 0:
        out["reason"] = "no_position"
    else:
        out["velocity_gain"] = velocity_gain(z, pos, vel, steps, lag, train, test)
        if out["velocity_gain"] > max_velocity_gain:
            out["reason"] = "velocity"
        elif at_edge:
            out["reason"] = "edge"
    out.update(at, lag=lag, at_edge=bool(at_edge))
    return out


def _reason_text(key: str, info: dict, var: str, lags: np.ndarray, max_velocity_gain: float) -> str:
    if key == "velocity":
        return (f"{var!r} carries the circle's velocity beyond its position at the estimated lag (velocity "
                f"gain {info['velocity_gain']:.3g} > max_velocity_gain {max_velocity_gain:g}): on paths of "
                f"constant velocity the position at every lag is then equally decodable, so no lag can be told")
    if key == "edge":
        return (f"the lag estimate {info['lag']:.3g} steps lies at the edge of the searched range "
                f"[{lags[0]}, {lags[-1]}]: the data do not pin it down there; widen lags")
    return (f"the readout of {var!r} decodes the held-out circle position no better than its mean (R^2 = "
            f"{info['r2']:.3g} at the best lag): the representation carries no linearly decodable position")


def _velocity(ds: xr.Dataset, pos: np.ndarray) -> np.ndarray:
    names = [str(n) for n in ds["factor"].values]
    if all(n in names for n in VELOCITY_FACTORS):
        return factor_array(ds, VELOCITY_FACTORS)
    return np.gradient(pos, axis=1)


# --------------------------------------------------------------------------
# Public: readout and lag
# --------------------------------------------------------------------------


def _check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS} ('encoding': z regressed on the position, unbiased "
                         f"by readout noise), got {method!r}; use method='encoding'.")
    return method


def _check_fraction(name: str, value, example: str, *, upper: float | None = None) -> float:
    """A number >= 0 (and <= ``upper`` if given; without ``upper``, ``inf`` turns the gate off)."""
    if not is_real(value) or math.isnan(value) or value < 0 or (upper is not None and value > upper) \
            or (upper is not None and math.isinf(value)):
        bound = f"in [0, {upper:g}]" if upper is not None else ">= 0 (inf: no limit)"
        raise ValueError(f"{name} must be a number {bound}, got {value!r}; use e.g. {example}.")
    return float(value)


def _inputs(ds, node, lags, from_step, seed):
    var = representation_variable(ds, node)
    lags = check_lags(lags)
    seed = check_seed(seed)
    n_t = ds.sizes["time"]
    if n_t < 3:
        raise ValueError(f"the readout lag needs sequences of at least 3 steps, got {n_t}; "
                         f"use a moving world.")
    start = default_from_step(ds, var, from_step)
    steps = np.arange(start, n_t)
    z = np.asarray(ds[var].values, dtype=np.float64)
    pos = factor_array(ds, CIRCLE_FACTORS)
    check_finite(f"the representation {var!r} (at the steps used, from step {start})", z[:, start:],
                 ("sample", "step", "unit"), "Drop those samples (ds.isel(sample=...)) or start after them "
                 "(from_step) before fitting the readout.", offsets=(0, start, 0))
    check_finite("the circle position factors", pos, ("sample", "step", "factor"),
                 "Drop those samples (ds.isel(sample=...)) before fitting the readout.")
    return var, lags, seed, start, steps, z, pos


def fit_readout(ds: xr.Dataset, node: str | None = None, *, lags: int | Sequence[int] = DEFAULT_LAGS,
                from_step: int | None = None, seed: int = 0, method: str = "encoding",
                max_velocity_gain: float = MAX_VELOCITY_GAIN,
                readout_degree: int = READOUT_DEGREE) -> tuple[LinearReadout, dict]:
    """Estimate the lag and fit the linear readout of circle position at it (see the module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        Results of a moving world: ``factors`` (sample, time, factor) with
        ``circle_x``, ``circle_y`` (and ``circle_vx``, ``circle_vy`` if the
        world has them; else the velocity is taken from the positions); the
        representation trace (sample, time, unit). At least 2 samples and 3
        steps.
    node : str, optional
        Representation node or variable (see :func:`representation_variable`).
    lags : int or sequence of int
        Candidate lags in whole steps, increasing (default -2..6); a single
        int fits the readout at that lag alone.
    from_step : int, optional
        First step used (default: first valid step + 1).
    seed : int
        Seed (>= 0) of the half split of the samples.
    method : {"encoding", "decoding"}
        How the lag is estimated: the encoding model (default) or the
        decoding readout's own best lag (biased towards the lag of least
        attenuation by readout noise; kept for comparison).
    max_velocity_gain : float
        Largest velocity gain (variance of ``z`` explained by the velocity
        beyond the position, as a fraction of that explained by the
        position) at which a lag is still read (default 0.2).
    readout_degree : {1, 2}
        Features of the readout: the latents (1) or the latents with their
        squares and pairwise products (2, the default; see
        :class:`LinearReadout`). The lag itself does not depend on it
        (with ``method="encoding"``); the readout's R^2, errors and decoded
        positions do.

    Returns
    -------
    (LinearReadout, dict)
        The readout, fitted on the training half at the estimated lag, and
        the details: ``lag`` (steps), ``decoding_lag`` (the decoding
        readout's own best lag), ``encoding_curve`` and ``mse_curve``
        (held-out errors per whole lag, factor units squared per
        coordinate: of the encoding model in position units, and of the
        decoding readout), ``mse`` and ``r2`` (held-out, of the readout at
        the estimate), ``velocity_gain``, ``at_edge``, ``train``, ``test``
        (sample indices), ``steps`` (steps used), ``var`` and
        ``undefined_reason``.

        The lag is undefined, and ``lag`` and the readout's ``lag_steps``
        are NaN (with the readout, and ``mse``, fitted at lag 0 and
        ``undefined_reason`` saying why; None otherwise), when the circle
        does not move over the steps used, when the representation is
        constant there (e.g. a blend with gamma = 1), when the readout
        decodes the held-out position no better than its mean (held-out
        R^2 <= 0), when the representation carries the velocity beyond the
        position, or when the estimate lies at the edge of ``lags``.

    Raises
    ------
    ValueError
        Bad arguments, too few samples or steps, or a NaN or infinite value
        in the representation (at the steps used) or in the circle position.
    """
    method = _check_method(method)
    max_velocity_gain = _check_fraction("max_velocity_gain", max_velocity_gain, "max_velocity_gain=0.2")
    if readout_degree not in (1, 2) or isinstance(readout_degree, bool):
        raise ValueError(f"readout_degree must be 1 (linear in the latents) or 2 (with their products), got "
                         f"{readout_degree!r}; use readout_degree=2.")
    var, lags, seed, start, steps, z, pos = _inputs(ds, node, lags, from_step, seed)
    train, test = _split(z.shape[0], seed)
    vel = _velocity(ds, pos)
    reason = _undefined_lag_reason(z[:, steps].reshape(-1, z.shape[-1]), pos[:, steps], var, start)
    out = _estimate(z, pos, vel, steps, lags, train, test, method, max_velocity_gain, readout_degree)
    if reason is None and out["reason"] is not None:
        reason = _reason_text(out["reason"], out, var, lags, max_velocity_gain)
    if reason is not None:
        zero = _readout_at(z, pos, steps, 0.0, train, test, readout_degree)
        out.update(lag=float("nan"), mse=zero["mse"], mean=zero["mean"], scale=zero["scale"], coef=zero["coef"])
    out["undefined_reason"] = reason
    readout = LinearReadout(node=var, lag_steps=out["lag"], dt_ms=dt_ms_of(ds), mean=out["mean"],
                            scale=out["scale"], coef=out["coef"], degree=int(readout_degree))
    out.update(train=train, test=test, steps=steps, var=var, method=method)
    return readout, out


def _bound_coord() -> dict:
    return {"bound": ("bound", ["lower", "upper"], {"long_name": "bound of the confidence interval"})}


def _bootstrap(z, pos, steps, lags, train, test, method, readout, ppu, n_boot, level, seed,
               weights) -> np.ndarray:
    """Percentile bootstrap intervals of (lag, readout RMSE px, signed position error px): shape (3, 2).

    The lag: its estimator rerun on resampled sequences (the encoding model
    from its per-sequence statistics ``weights``, an
    :class:`~neurodelay.analysis._lagfit.EncodingStats`, with the point
    estimate's whitening and lag grid: a resample is a weighting of the
    sequences; the decoding readout with its fitting and scoring halves
    resampled apart, ``paired=False``, so that they stay disjoint). The
    errors: the point estimate's readout scored on resampled held-out
    sequences.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6C6167]))
    common = dict(vectorized=False, n_resamples=int(n_boot), confidence_level=level, method="percentile")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a degenerate resample gives NaN, reported as such
        if method == "encoding":
            n_seq = len(train) + len(test)

            def lag_of(idx, axis=-1):  # vectorised: idx (..., n_seq) resampled sequence indices
                idx = np.asarray(idx, dtype=np.int64)
                flat = idx.reshape(-1, n_seq)
                counts = np.zeros((len(flat), n_seq))
                np.add.at(counts, (np.repeat(np.arange(len(flat)), n_seq), flat.ravel()), 1.0)
                return np.atleast_1d(weights.lags(counts)).reshape(idx.shape[:-1])

            lag_res = stats.bootstrap((np.arange(n_seq),), lag_of, rng=rng, **{**common, "vectorized": True},
                                      batch=50)
        else:
            def lag_of(tr, te):
                return _readout_lag_core(z, pos, steps, lags, np.asarray(tr, dtype=np.int64),
                                         np.asarray(te, dtype=np.int64), readout.degree)["lag"]

            lag_res = stats.bootstrap((train, test), lag_of, paired=False, rng=rng, **common)
        # Per held-out sequence: squared error and count; along-motion error and count.
        target = shift(pos[test], readout.lag_steps, steps)  # (n_test, S, 2)
        decoded = readout.decode(z[test][:, steps])
        sq = ((decoded - target) ** 2).sum(axis=(1, 2))
        along = _along_motion_error(readout.decode(z[test]), pos[test])[:, steps]
        a_sum, a_n = np.nansum(along, axis=1), np.isfinite(along).sum(axis=1)
        n_rows = 2 * len(steps)

        def errors(i):
            i = np.asarray(i, dtype=np.int64)
            return np.array([math.sqrt(sq[i].sum() / (n_rows * len(i))) * ppu,
                             a_sum[i].sum() / a_n[i].sum() * ppu if a_n[i].sum() else np.nan])

        err_res = stats.bootstrap((np.arange(len(test)),), errors, rng=rng, **common)
    out = np.full((3, 2), np.nan)
    out[0] = [float(lag_res.confidence_interval.low), float(lag_res.confidence_interval.high)]
    out[1:] = np.stack([err_res.confidence_interval.low, err_res.confidence_interval.high], axis=-1)
    return out


def representational_lag(ds: xr.Dataset, node: str | None = None, *, lags: int | Sequence[int] = DEFAULT_LAGS,
                         from_step: int | None = None, seed: int = 0, pixels_per_unit: float | None = None,
                         method: str = "encoding", min_r2: float = MIN_R2, n_boot: int = 1000,
                         confidence_level: float = 0.95, max_ci_steps: float = MAX_CI_STEPS,
                         max_velocity_gain: float = MAX_VELOCITY_GAIN,
                         readout_degree: int = READOUT_DEGREE) -> xr.Dataset:
    """Lag of the representation behind the world, with its interval (see the module docstring).

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
        Seed (>= 0) of the half split and of the bootstrap.
    pixels_per_unit : float, optional
        Pixels per factor unit, a finite number > 0 (default
        ``0.75 * frame size``).
    method : {"encoding", "decoding"}
        The lag estimator (default the encoding model; see
        :func:`fit_readout`).
    min_r2 : float in [0, 1]
        Held-out R^2 the readout must reach at the lag for the lag and the
        position errors to be reported (default 0.5); below it they are NaN
        with the reason.
    n_boot : int
        Bootstrap resamples of the sequences for the intervals (default
        1000; 0: no intervals, and no ``max_ci_steps`` gate).
    confidence_level : float
        Of the intervals (default 0.95).
    max_ci_steps : float
        Widest interval of the lag, in steps, at which it is still reported
        (default 2).
    max_velocity_gain : float
        See :func:`fit_readout` (default 0.2).
    readout_degree : {1, 2}
        See :func:`fit_readout` (default 2).

    Returns
    -------
    xarray.Dataset
        ``lag_steps`` and ``lag_ms`` (the estimated lag; the attribute
        ``method`` says which estimator), ``lag_steps_ci`` and
        ``lag_ms_ci`` (bound), ``lag_encoding_residual`` (lag: the encoding
        model's whitened mean squared residual at each whole lag), ``lag_readout_rmse_px`` (lag: held-out error of the
        decoding readout fitted at each whole lag), ``lag_decoding_steps``
        (the decoding readout's own best lag, for comparison; not gated),
        ``readout_rmse_px`` and ``readout_rmse_px_ci`` (at the estimate),
        ``readout_r2`` (held-out), ``lag_velocity_gain``,
        ``position_error_px`` and ``position_error_px_ci`` (signed error of
        the decoded position along the direction of motion, mean over the
        held-out samples and used steps, px; negative = behind) and
        ``position_error_px_by_time`` (time; NaN at unused steps). Where
        the lag is undefined or gated (see the module docstring) the lag,
        the readout error and the position errors and their intervals are
        NaN with the reason in ``nan_reason``; ``readout_r2`` stays. The
        attributes ``n_fit``, ``n_scored`` and ``n_boot`` give the
        sequences behind the numbers.
    """
    if pixels_per_unit is not None:
        pixels_per_unit = check_positive("pixels_per_unit", pixels_per_unit, "pixels_per_unit=24 (32 px frames)")
    min_r2 = _check_fraction("min_r2", min_r2, "min_r2=0.5", upper=1.0)
    if not is_int(n_boot) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0 (bootstrap resamples; 0: no intervals), got "
                         f"{n_boot!r}; use e.g. n_boot=1000.")
    if not isinstance(confidence_level, float) or not 0.0 < confidence_level < 1.0:
        raise ValueError(f"confidence_level must be a float in (0, 1), got {confidence_level!r}; use e.g. 0.95.")
    max_ci_steps = _check_fraction("max_ci_steps", max_ci_steps, "max_ci_steps=2.0")
    readout, info = fit_readout(ds, node, lags=lags, from_step=from_step, seed=seed, method=method,
                                max_velocity_gain=max_velocity_gain, readout_degree=readout_degree)
    lags = check_lags(lags)
    dt = readout.dt_ms
    ppu = px_per_unit(frame_size(ds)) if pixels_per_unit is None else pixels_per_unit
    var, used, test = info["var"], info["steps"], info["test"]
    z_all = np.asarray(ds[var].values, dtype=np.float64)
    pos_all = factor_array(ds, CIRCLE_FACTORS)
    along = _along_motion_error(readout.decode(z_all[test]), pos_all[test]) * ppu  # (n_test, T)
    by_time = np.full(ds.sizes["time"], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps (no motion) stay NaN
        by_time[used] = np.nanmean(along[:, used], axis=0)
        overall = float(np.nanmean(along[:, used]))
    reason = info["undefined_reason"]
    if reason is None and not info["r2"] >= min_r2:
        reason = (f"the readout's held-out R^2 at the lag, {info['r2']:.3g}, is below min_r2 = {min_r2:g}: "
                  f"{var!r} carries too little of the circle's position for its lag to be read")
    ci = np.full((3, 2), np.nan)
    if reason is None and n_boot > 0:
        ci = _bootstrap(z_all, pos_all, used, lags, info["train"], test, info["method"], readout, ppu, n_boot,
                        confidence_level, seed, info["weights"])
        width = ci[0, 1] - ci[0, 0]
        if not width <= max_ci_steps:
            reason = (f"the data cannot pin the lag down: its {confidence_level:.0%} bootstrap interval "
                      f"[{ci[0, 0]:.3g}, {ci[0, 1]:.3g}] steps is wider than max_ci_steps = {max_ci_steps:g}")
    lag = info["lag"]
    rmse = math.sqrt(info["mse"]) * ppu
    if reason is not None:  # no lag to report: neither are the errors of a readout fitted at it
        by_time[:] = np.nan
        lag = overall = rmse = float("nan")
        ci[:] = np.nan
    common = {"node": var, "from_step": int(used[0]), "method": info["method"], "readout_r2": float(info["r2"]),
              "readout_degree": int(readout.degree),
              "n_fit": int(len(info["train"])), "n_scored": int(len(test)), "n_boot": int(n_boot)}
    if reason is not None:
        common["nan_reason"] = reason
    ci_attrs = {"confidence_level": float(confidence_level), "method": "percentile bootstrap over sequences",
                "n_boot": int(n_boot), **({"nan_reason": reason} if reason is not None else {})}
    return xr.Dataset(
        {
            "lag_steps": ((), lag, {"units": "steps", "long_name": "representational lag: lag of the world whose "
                                    "circle position best explains the representation (held out)", **common}),
            "lag_ms": ((), lag * dt, {"units": "ms", "long_name": "representational lag", **common}),
            "lag_steps_ci": ("bound", ci[0], {"units": "steps", "long_name": "confidence interval of the "
                                              "representational lag", **ci_attrs}),
            "lag_ms_ci": ("bound", ci[0] * dt, {"units": "ms", "long_name": "confidence interval of the "
                                                "representational lag", **ci_attrs}),
            "lag_encoding_residual": ("lag", info["encoding_curve"], {
                "units": "1", "long_name": "mean squared residual of the encoding model (z explained by the circle "
                                           "position at each lag), whitened: its minimum is the lag"}),
            "lag_readout_rmse_px": ("lag", np.sqrt(info["mse_curve"]) * ppu, {
                "units": "px", "long_name": "held-out RMS error of the circle-position readout fitted at each "
                                            "lag (per coordinate)"}),
            "lag_decoding_steps": ((), float(info["decoding_lag"]), {
                "units": "steps", "long_name": "lag at which the decoding readout errs least (biased by readout "
                                               "noise towards the lag of least attenuation; for comparison)"}),
            "lag_velocity_gain": ((), float(info["velocity_gain"]), {
                "units": "1", "long_name": "variance of the representation explained by the circle's velocity "
                                           "beyond its position at the lag, over that explained by the position"}),
            "readout_r2": ((), float(info["r2"]), {
                "units": "1", "long_name": "held-out R^2 of the circle-position readout at the estimated lag",
                "node": var}),
            "readout_rmse_px": ((), rmse, {"units": "px", "long_name": "held-out RMS error of the "
                                           "circle-position readout at the estimated lag (per coordinate)",
                                           **common}),
            "readout_rmse_px_ci": ("bound", ci[1], {"units": "px", "long_name": "confidence interval of the "
                                                    "readout error", **ci_attrs}),
            "position_error_px": ((), overall, {
                "units": "px", "long_name": "signed error of the decoded circle position along the direction "
                                            "of motion (negative: behind)", **common}),
            "position_error_px_ci": ("bound", ci[2], {"units": "px", "long_name": "confidence interval of the "
                                                      "signed position error", **ci_attrs}),
            "position_error_px_by_time": ("time", by_time, {
                "units": "px", "long_name": "signed error of the decoded circle position along the direction "
                                            "of motion, per step (NaN: unused step)",
                **({"nan_reason": reason} if reason is not None else {})}),
        },
        coords={**lag_coords(lags, dt), "time": ds["time"], **_bound_coord()},
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
