"""Lag-resolved scores: disentanglement of the representation at t against the factors at t - k.

Every disentanglement score between the representation at step ``t`` and the
factors at step ``t - k``, for each lag ``k`` (in steps) of a range, pooled
over samples and steps. Each latent's *effective lag* is the lag at which it
correlates best with the time-varying factor it follows most closely,
refined below one step (the factor interpolated linearly between steps, as
the readout lag does).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from neurodelay.analysis._checks import check_seed
from neurodelay.analysis._dataset import (
    DEFAULT_LAGS,
    check_has_time,
    check_lags,
    default_from_step,
    dt_ms_of,
    lag_coords,
    representation_variable,
    score_inputs,
)
from neurodelay.analysis._lagfit import refine_argmin, shift
from neurodelay.analysis._codes import COLLAPSE_TOL, _collapsed
from neurodelay.analysis.disentanglement import correlation_matrix, dci, mig, sap

__all__ = ["lag_resolved_scores", "lag_scores_core"]


def _lag_rows(z: np.ndarray, f: np.ndarray, k: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows pairing z[:, t] with f[:, t - k] for t >= start with 0 <= t - k < T."""
    n_t = z.shape[1]
    t = np.arange(max(start, k, 0), min(n_t, n_t + k))
    if t.size == 0:
        return z[:, :0].reshape(0, z.shape[-1]), f[:, :0].reshape(0, f.shape[-1])
    return z[:, t].reshape(-1, z.shape[-1]), f[:, t - k].reshape(-1, f.shape[-1])


def lag_scores_core(z: np.ndarray, f: np.ndarray, lags: np.ndarray, start: int, scored: np.ndarray,
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


def _refine_latent_lags(z: np.ndarray, f: np.ndarray, lag: np.ndarray, fac: np.ndarray, lags: np.ndarray,
                        start: int) -> np.ndarray:
    """Refine each latent's whole-step lag below one step.

    For latent ``j`` with whole lag ``k`` and factor ``fac[j]``, the lag in
    ``[k - 1, k + 1]`` (within the searched range) that maximises the
    absolute correlation of ``z[:, t, j]`` with the factor at ``t - L``
    (linear interpolation between steps), over the same rows for every
    candidate (``t >= max(start, ceil(k + 1))``). NaN lags stay NaN.
    """
    out = lag.copy()
    n_t = z.shape[1]
    for j in np.flatnonzero(np.isfinite(lag)):
        k = float(lag[j])
        lo, hi = max(k - 1.0, float(lags[0])), min(k + 1.0, float(lags[-1]))
        steps = np.arange(max(start, int(np.ceil(hi)), 0), n_t)
        if steps.size < 3 or hi <= lo:
            continue
        zj = z[:, steps, j].reshape(-1)
        if np.ptp(zj) <= 0:
            continue
        fj = f[:, :, fac[j]][..., None]

        def neg_abs_corr(x: float) -> float:
            fx = shift(fj, x, steps).reshape(-1)
            if np.ptp(fx) <= 0:
                return 0.0
            return -abs(float(np.corrcoef(zj, fx)[0, 1]))

        grid = np.array([lo, k, hi]) if lo < k < hi else np.array(sorted({lo, k, hi}))
        out[j] = refine_argmin(neg_abs_corr, grid, np.array([neg_abs_corr(float(g)) for g in grid]))
    return out


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
        absolute correlation with the factor it follows best, refined below
        one step between the whole lags around the best one; NaN if that
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
    lags = check_lags(lags)
    seed = check_seed(seed)
    check_has_time(ds)
    start = default_from_step(ds, var, from_step) if ds.sizes["time"] > 1 else 0
    names, scored_names, scored, z, f = score_inputs(ds, var, start, factors, max_rows)
    out = lag_scores_core(z, f, lags, start, scored, int(max_rows), seed)
    varying = np.array([bool(np.any(np.ptp(f[:, :, i], axis=1) > 0)) for i in range(f.shape[-1])])
    lat_lag, lat_fac = _effective_lags(out["correlation"], lags, varying)
    lat_lag = _refine_latent_lags(z, f, lat_lag, lat_fac, lags, start)
    dt = dt_ms_of(ds)
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
                                                "(lag of its best correlation with the factor it follows best, refined "
                                                "below one step; "
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
    coords = {**lag_coords(lags, dt), "factor": ds["factor"]}
    if unit in ds.coords:
        coords[unit] = ds[unit]
    return xr.Dataset(data, coords=coords)
