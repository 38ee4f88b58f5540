"""Overshoot at a reversal: does the reported position run past the point where the circle turned back?

A circuit that compensates its delay by extrapolating reports, a few steps
after the circle turns, a position past the turning point: it extrapolated
the old motion. How far past (px), and how long after the turn the report
peaks (ms), tell a circuit that extrapolates from one that only lags (a
delayed report reaches the turning point late and turns there: no
overshoot). Human observers do not see a moving object overshoot an abrupt
reversal (Whitney, Murakami & Cavanagh 2000, Vision Research 40:137-149,
experiment 2: with the motion reversed at the flash, the flash-lag effect
follows the new direction, with no forward extrapolation past the turn;
Eagleman & Sejnowski 2000, Science 287:2036-2038, experiment 1, the stimulus
of their Fig. 1A: a ring reversing right after a flash was seen about 6 deg
from the flash in its new direction, as far as the flash-lag of continuing
motion, and not past the turn along the old one).

The reported position is the representation decoded by a readout
calibrated where the representation is unambiguous, on linear motion, as a
decoder is trained on standard trials and tested on probe trials: the
encoding-model lag and the readout at it (:func:`~neurodelay.analysis.lag.fit_readout`)
fitted on the same circuit's traces for straight paths (``calibration``),
then applied to the reversal runs. A circuit that keeps up reads at lag 0
and its report is its estimate of the present; a late one reads at its lag
and its report is the past position it carries. (A readout fitted on the
reversal runs themselves is pulled by the turns, about two per 16-frame
path at rate 0.15: an exact extrapolating report then read 2.1 px of
overshoot for a true 2.4.) Events are the steps ``r`` where the circle's
velocity turns back (``v(r) . v(r-1) < 0``) with no other turn less than
``window`` steps before or after it. For each, the excursion ``e(k) = (d(r - 1 + k) - P) . u``
of the report ``d`` along the old direction ``u`` past the turning point
``P = p(r - 1)``, for ``k = 0 .. window``. The true position's excursion is
0 at ``k = 0`` and negative after.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

from neurodelay.analysis._dataset import dt_ms_of, frame_size, px_per_unit, representation_variable
from neurodelay.analysis.lag import MIN_R2, fit_readout

__all__ = ["reversal_events", "reversal_overshoot", "calibrated_report"]


def calibrated_report(ds: xr.Dataset, var: str, calibration: xr.Dataset | None = None, *, seed: int = 0,
                      min_r2: float = MIN_R2) -> tuple[np.ndarray, dict, str | None]:
    """The position ``var`` reports, read by a readout calibrated where the representation is unambiguous.

    The readout (:func:`~neurodelay.analysis.lag.fit_readout`, at the encoding-model lag, or at lag 0 where
    that lag is undefined) is fitted on ``calibration`` (the same circuit's traces of ``var`` on straight,
    unoccluded paths; default ``ds`` itself) and applied to ``ds``.

    Returns
    -------
    (numpy.ndarray, dict, str or None)
        The decoded report (sample, time, 2) in circle factor units; attributes ``readout_r2``,
        ``readout_lag_steps``, ``readout_calibrated_on``, ``node``; and the reason the report cannot be read
        (the readout's held-out R^2 below ``min_r2``), else None.
    """
    source = calibration if calibration is not None else ds
    readout, info = fit_readout(source, var, seed=seed)
    if not np.isfinite(readout.lag_steps):
        readout, info = fit_readout(source, var, lags=0, seed=seed)
    decoded = readout.decode(ds[var].values.astype(np.float64))
    reason = None
    if not info["r2"] >= min_r2:
        reason = (f"the readout's held-out R^2, {info['r2']:.3g}, is below min_r2 = {min_r2:g}: {var!r} carries too "
                  f"little of the circle's position for its report to be read")
    attrs = {"readout_r2": float(info["r2"]), "readout_lag_steps": float(readout.lag_steps),
             "readout_calibrated_on": "linear motion" if calibration is not None else "these runs", "node": var}
    return decoded, attrs, reason


def reversal_events(pos: np.ndarray, window: int) -> list[tuple[int, int]]:
    """(sequence, step r) of isolated turns: the velocity reverses at r, and at no other step within ``window``.

    ``pos`` : (n, T, 2) positions. A turn needs two steps of motion before it
    (``r >= 2``) and ``window`` steps after it within the sequence; no other
    turn may come less than ``window`` steps before or after it (the report
    before a turn is then that of straight motion, and the scored steps see
    one turn).
    """
    window = int(window)
    v = np.diff(pos, axis=1)  # v[:, t - 1] = p(t) - p(t - 1)
    dots = np.einsum("ntc,ntc->nt", v[:, 1:], v[:, :-1])  # dots[:, r - 2]: v(r) . v(r - 1)
    turns = dots < 0
    out = []
    n_t = pos.shape[1]
    for s, r0 in zip(*np.nonzero(turns)):
        r = int(r0) + 2
        if r + window - 1 >= n_t:
            continue
        near = turns[s, max(r0 - window + 1, 0):r0 + window]
        if near.sum() == 1:
            out.append((int(s), r))
    return out


def reversal_overshoot(ds: xr.Dataset, node: str | None = None, *, calibration: xr.Dataset | None = None,
                       window: int = 5, n_boot: int = 1000, seed: int = 0, min_r2: float = MIN_R2,
                       pixels_per_unit: float | None = None) -> xr.Dataset | None:
    """Overshoot of the reported position past the turning points of reversing motion (module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        Results of a moving world with reversals: ``factors`` with
        ``circle_x``, ``circle_y`` and the representation trace.
    node : str, optional
        Representation node or variable.
    calibration : xarray.Dataset, optional
        The same circuit's traces (the same variable) on linear motion, where
        the readout is fitted; default ``ds`` itself (pulled by the turns:
        see the module docstring).
    window : int
        Steps after the turn scored (>= 1).
    min_r2 : float
        Least held-out R^2 of the calibrated readout at which the report is
        read (as for the lag): below it every value is NaN with a
        ``nan_reason``.
    n_boot : int
        Bootstrap resamples of the events for the interval (0: none).
    seed : int
        Seed of the readout's split and of the bootstrap.
    pixels_per_unit : float, optional
        Default: from the frames' size.

    Returns
    -------
    xarray.Dataset or None
        ``reversal_overshoot_px`` (the peak over steps of the excursion past
        the turning point averaged over turns, px; 0 or less: no overshoot;
        a report that does not overshoot reads +0.11, +0.21 and +0.38 px at
        0.5, 1 and 2 px of readout noise, 60 turns) with
        ``reversal_overshoot_px_ci`` (bound), ``reversal_peak_ms`` (time after
        the turn of that peak), ``reversal_excursion_px``
        (steps_after_turn: mean excursion; ``reversal_excursion_true_px`` the
        true position's), attributes ``n_events`` and ``readout_r2``. None when
        the runs have no isolated turn.
    """
    window = int(window)
    if window < 1:
        raise ValueError(f"window must be >= 1 step, got {window!r}.")
    var = representation_variable(ds, node)
    pos = ds["factors"].sel(factor=["circle_x", "circle_y"]).values.astype(np.float64)
    events = reversal_events(pos, window)
    if not events:
        return None
    decoded, readout_attrs, reason = calibrated_report(ds, var, calibration, seed=seed, min_r2=min_r2)
    ppu = float(pixels_per_unit) if pixels_per_unit is not None else px_per_unit(frame_size(ds))
    k = np.arange(window + 1)
    exc, true = np.empty((len(events), window + 1)), np.empty((len(events), window + 1))
    for i, (s, r) in enumerate(events):
        turn = pos[s, r - 1]
        u = pos[s, r - 1] - pos[s, r - 2]
        u = u / np.linalg.norm(u)
        exc[i] = (decoded[s, r - 1 + k] - turn) @ u * ppu
        true[i] = (pos[s, r - 1 + k] - turn) @ u * ppu
    if reason is not None:
        exc[:] = np.nan
    dt = dt_ms_of(ds)
    # The peak of the MEAN excursion: a mean of per-turn peaks is biased up by readout noise (a maximum over
    # noisy steps: +0.68 px for a report that does not overshoot, at 1 px of noise), the mean curve is not.
    mean_curve = exc.mean(axis=0)
    peak = float(mean_curve.max()) if reason is None else np.nan
    ci = np.array([np.nan, np.nan])
    if n_boot > 0 and len(events) > 1 and reason is None:
        res = stats.bootstrap((np.arange(len(events)),), lambda i: exc[np.asarray(i, dtype=np.int64)].mean(0).max(),
                              n_resamples=int(n_boot), method="percentile", vectorized=False,
                              rng=np.random.default_rng(np.random.SeedSequence([int(seed), 0x726576])))
        ci = np.array([res.confidence_interval.low, res.confidence_interval.high])
    attrs = {"n_events": len(events), **readout_attrs, "window_steps": window,
             **({"nan_reason": reason} if reason else {})}
    return xr.Dataset(
        {"reversal_overshoot_px": ((), peak, {
            "units": "px", "long_name": "largest mean excursion of the reported position past the "
                                        "turning point (mean over turns, then the peak over steps)", **attrs}),
         "reversal_overshoot_px_ci": ("bound", ci, {"units": "px", "long_name": "95 % bootstrap interval over "
                                                    "turns of reversal_overshoot_px"}),
         "reversal_peak_ms": ((), float(np.argmax(mean_curve) * dt) if reason is None else np.nan, {
             "units": "ms", "long_name": "time after the turn of the largest mean excursion"}),
         "reversal_excursion_px": ("steps_after_turn", mean_curve, {
             "units": "px", "long_name": "reported position past the turning point along the old direction"}),
         "reversal_excursion_true_px": ("steps_after_turn", true.mean(axis=0), {
             "units": "px", "long_name": "true position past the turning point along the old direction"})},
        coords={"steps_after_turn": ("steps_after_turn", k, {"units": "steps", "long_name": "steps after the "
                                                                                        "last step before the turn"}),
                "bound": ("bound", ["lower", "upper"])})
