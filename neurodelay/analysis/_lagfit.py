"""Pure-array cores of the lag estimators (no xarray): shift, fits, criteria.

The encoding model
------------------
The representation is modelled as a noisy affine function of the circle's
position some ``L`` steps ago::

    z[s, t] = A p[s, t - L] + b + e[s, t]

``A`` (M x 2) and ``b`` are fitted by least squares over every sequence at
each candidate ``L``; the lag is the ``L`` whose fit leaves the smallest
residual, measured in position units through a fixed left inverse ``W`` of
``A`` (the generalised-least-squares inverse, weighted by the residual
covariance of a first whole-step scan)::

    c(L) = mean over rows of |W (z - A_L p_L - b_L)|^2 / 2

Every candidate model has the same regressors (two positions and an
intercept), so their residuals are compared in sample: with noise
independent across rows, ``E[c(L)]`` is the misfit plus a term of the noise
that is the same at every ``L``. (Scoring on held-out sequences instead
adds the slope's estimation error, whose size depends on the spread of the
shifted positions and so on ``L``: on slow 30-frame paths with noise
constant over each sequence it pulled the lag by +0.3 steps at 4 px.)

Why this way round (position -> z, not z -> position)? Noise in ``z`` sits
in the response of the regression, where least squares is unbiased; in a
decoding readout (z -> position) the same noise sits in the regressors and
attenuates the fit towards the mean (errors in variables), by an amount
that depends on how the position's spread varies with ``L`` over bounded
paths, which pulls the decoded lag (for the ideal inertia circuit d = 1,
gamma = 0.5, alpha = 0 on 10-frame paths, 1.89 steps without noise, 1.62
at 3.4 px). With ``W`` fixed the noise adds the same to every ``L``, so the
minimiser is that of the noise-free circuit, transients included; and for a
circuit whose ``z`` is linear in the position (any blend / extrapolator /
delay loop) ``W A = I`` makes the misfit the same whatever the noise
covariance.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from neurodelay.analysis.disentanglement import collapsed_latents

__all__ = ["shift", "ShiftedPositions", "lstsq_affine", "encoding_lag_core", "velocity_gain", "refine_argmin"]


def shift(pos: np.ndarray, lag: float, steps: np.ndarray) -> np.ndarray:
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


class ShiftedPositions:
    """The trajectory shifted by every whole lag of a range, for fast fractional shifts.

    :func:`shift` is linear in the lag between two whole lags (interpolation
    and linear extension alike), so ``shift(pos, k + f) = (1 - f) shift(pos,
    k) + f shift(pos, k + 1)`` exactly: the whole-lag shifts are computed
    once and any lag in ``[lo, hi]`` is a blend of two of them.
    """

    def __init__(self, pos: np.ndarray, lo: int, hi: int, steps: np.ndarray):
        self.lo, self.hi = int(lo), int(hi)
        self.stack = np.stack([shift(pos, float(k), steps) for k in range(self.lo, self.hi + 1)])  # (K, n, S, d)

    def at(self, lag: float, rows: np.ndarray) -> np.ndarray:
        """Shifted positions of sequences ``rows`` at ``lag`` (within [lo, hi]), flattened to (rows * S, d)."""
        k = min(max(int(np.floor(lag)), self.lo), self.hi - 1) if self.hi > self.lo else self.lo
        f = float(lag) - k
        a = self.stack[k - self.lo][rows]
        if f == 0.0:
            return a.reshape(-1, a.shape[-1])
        b = self.stack[k - self.lo + 1][rows]
        return (a + f * (b - a)).reshape(-1, a.shape[-1])


def lstsq_affine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of ``y ~ [x, 1]``: shape (d + 1, k), the last row the intercept."""
    design = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return coef


def _apply(x: np.ndarray, coef: np.ndarray) -> np.ndarray:
    return x @ coef[:-1] + coef[-1]


def refine_argmin(fn, grid: np.ndarray, values: np.ndarray, *, xatol: float = 1e-6) -> float:
    """Minimise ``fn`` between the neighbours of the best grid point (bounded Brent, tolerance ``xatol``).

    Returns the grid point itself when the refinement does not improve on it.
    """
    best = int(np.nanargmin(values))
    lo = float(grid[max(best - 1, 0)])
    hi = float(grid[min(best + 1, len(grid) - 1)])
    if hi <= lo:
        return float(grid[best])
    res = minimize_scalar(fn, bounds=(lo, hi), method="bounded", options={"xatol": xatol})
    x = float(res.x)
    return float(grid[best]) if fn(float(grid[best])) < fn(x) else x


def _standardise(rows: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (1 where 0) of the kept columns of ``rows``."""
    mean = rows[:, keep].mean(axis=0)
    sd = rows[:, keep].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return mean, sd


def encoding_lag_core(z: np.ndarray, pos: np.ndarray, steps: np.ndarray, lags: np.ndarray, rows: np.ndarray, *,
                      weights: np.ndarray | None = None, xatol: float = 1e-6,
                      shifted: ShiftedPositions | None = None) -> dict:
    """Lag of the encoding model ``z ~ A p(t - L) + b`` (see the module docstring).

    Parameters
    ----------
    z : numpy.ndarray, shape (n, T, M)
        Representation.
    pos : numpy.ndarray, shape (n, T, 2)
        True circle positions (factor units).
    steps : numpy.ndarray of int, shape (S,)
        Steps used, in ``[0, T)``.
    lags : numpy.ndarray of int, shape (K,)
        Candidate whole-step lags, increasing.
    rows : numpy.ndarray of int
        Sequences used (indices; repeats allowed, as in a bootstrap resample).
    weights : numpy.ndarray, shape (2, M), optional
        A left inverse ``W`` to use instead of the one of the first scan
        (the bootstrap reuses the point estimate's); applied to the
        latents standardised by the mean and spread of ``rows``, the kept
        (non-constant) latents only when ``z`` is passed whole.
    xatol : float
        Tolerance of the fractional refinement, in steps.
    shifted : ShiftedPositions, optional
        ``pos`` shifted by each whole lag of ``lags`` (made here if not given).

    Returns
    -------
    dict
        ``lag`` (steps; NaN when ``z`` does not depend on the position:
        ``reason`` says why), ``curve`` (K,) the criterion at each whole lag
        (factor units squared, per coordinate), ``error`` the criterion at
        ``lag``, ``at_edge`` (bool), ``weights`` W (2, M_kept), ``kept``
        (M,) bool: latents that are not constant, ``reason``.
    """
    n_k = len(lags)
    out = {"lag": float("nan"), "curve": np.full(n_k, np.nan), "error": float("nan"), "at_edge": False,
           "weights": None, "kept": None, "reason": None}
    m = z.shape[-1]
    zr = z[rows][:, steps].reshape(-1, m)
    keep = ~collapsed_latents(zr) if weights is None else np.ones(m, dtype=bool)
    out["kept"] = keep
    if not keep.any():
        out["reason"] = "constant"
        return out
    mean, sd = _standardise(zr, keep)
    zs = (zr[:, keep] - mean) / sd  # zero mean over the rows used
    if shifted is None:
        shifted = ShiftedPositions(pos, int(lags[0]), int(lags[-1]), steps)

    def fit(lag: float):
        """Slope (2, M) of z on the centred position at ``lag``, and the residuals (None: no spread)."""
        x = shifted.at(lag, rows)
        xc = x - x.mean(axis=0)
        gram = xc.T @ xc
        det = gram[0, 0] * gram[1, 1] - gram[0, 1] * gram[1, 0]
        if not det > 1e-12 * max(gram[0, 0] * gram[1, 1], 1e-300):
            return None, None
        slope = np.linalg.solve(gram, xc.T @ zs)
        return slope, zs - xc @ slope

    if weights is None:
        # First scan: residuals in standardised z units pick the lag whose residual covariance weights W.
        first = []
        for k in lags:
            _, r = fit(float(k))
            first.append(float(np.mean(r**2)) if r is not None else np.inf)
        if not np.isfinite(min(first)):
            out["reason"] = "no_position"
            return out
        slope, r = fit(float(lags[int(np.argmin(first))]))
        a = slope.T  # (M_kept, 2)
        s = np.atleast_2d(np.cov(r, rowvar=False))
        s = s + (1e-3 * np.trace(s) / s.shape[0] + 1e-12) * np.eye(s.shape[0])
        s_inv_a = np.linalg.solve(s, a)
        info = a.T @ s_inv_a  # (2, 2)
        if not np.all(np.isfinite(info)) or np.linalg.cond(info) > 1e12:
            out["reason"] = "no_position"
            return out
        weights = np.linalg.solve(info, s_inv_a.T)  # (2, M_kept): W A = I
    w_t = np.asarray(weights).T

    def crit(lag: float) -> float:
        _, r = fit(lag)
        return float(np.mean((r @ w_t) ** 2)) / 2.0 if r is not None else np.inf

    curve = np.array([crit(float(k)) for k in lags])
    if not np.isfinite(curve).any():
        out["reason"] = "no_position"
        return out
    lag = refine_argmin(crit, lags.astype(np.float64), curve, xatol=xatol) if n_k > 1 else float(lags[0])
    out.update(lag=lag, curve=curve, error=crit(lag), weights=np.asarray(weights),
               at_edge=bool(n_k > 1 and (lag <= lags[0] + 1e-3 or lag >= lags[-1] - 1e-3)))
    return out


def velocity_gain(z: np.ndarray, pos: np.ndarray, vel: np.ndarray, steps: np.ndarray, lag: float,
                  train: np.ndarray, test: np.ndarray) -> float:
    """How much of ``z`` the circle's velocity explains beyond its position at ``lag``.

    Held-out, on standardised latents: ``(SSE_p - SSE_pv) / (SST - SSE_p)``,
    where ``SSE_p`` is the residual of ``z ~ p(t - lag)``, ``SSE_pv`` that of
    ``z ~ [p(t - lag), v(t)]`` and ``SST`` that of ``z`` around its
    training mean: the variance velocity explains, as a fraction of the
    variance the position explains. 0 for a representation that is a
    function of the position at one lag (any linear filter of the position
    at steady state, e.g. inertia); about 1 for one that carries the
    velocity in latents of its own, for which, on constant-velocity paths,
    the position at every lag is equally well explained (``p(t - L) = p(t) -
    L v``), so no lag can be told. NaN if the position explains nothing.
    """
    m = z.shape[-1]
    zt = z[train][:, steps].reshape(-1, m)
    keep = ~collapsed_latents(zt)
    if not keep.any():
        return float("nan")
    mean, sd = _standardise(zt, keep)
    z_tr = (zt[:, keep] - mean) / sd
    z_te = (z[test][:, steps].reshape(-1, m)[:, keep] - mean) / sd
    target = shift(pos, lag, steps)
    p_tr, p_te = target[train].reshape(-1, 2), target[test].reshape(-1, 2)
    v_tr, v_te = vel[train][:, steps].reshape(-1, 2), vel[test][:, steps].reshape(-1, 2)
    sst = float(np.sum((z_te - z_tr.mean(axis=0)) ** 2))
    c_p = lstsq_affine(p_tr, z_tr)
    sse_p = float(np.sum((z_te - _apply(p_te, c_p)) ** 2))
    x_tr, x_te = np.concatenate([p_tr, v_tr], 1), np.concatenate([p_te, v_te], 1)
    c_pv = lstsq_affine(x_tr, z_tr)
    sse_pv = float(np.sum((z_te - _apply(x_te, c_pv)) ** 2))
    explained = sst - sse_p
    if not explained > 1e-12 * max(sst, 1e-300):
        return float("nan")
    return (sse_p - sse_pv) / explained
