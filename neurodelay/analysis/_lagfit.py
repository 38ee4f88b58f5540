"""Pure-array cores of the lag estimators (no xarray): shift, fits, criteria.

The encoding model
------------------
The representation is modelled as a noisy function of the circle's position
some ``L`` steps ago::

    z[s, t] = f(p[s, t - L]) + e[s, t]

with ``f`` linear in a set of features of the position: the position
itself and Gaussian bumps on a grid over the image (:func:`position_features`),
so that a representation linear in the position is fitted exactly and one
that codes it smoothly but not linearly nearly so. ``f`` is fitted by least
squares over every sequence at each candidate ``L``; the lag is the ``L``
whose fit leaves the smallest residual, measured after whitening by a fixed
matrix (the inverse square root of the residual covariance of a first
whole-step scan)::

    c(L) = mean over rows and latents of (W' (z - f_L(p_L)))^2

Every candidate model has the same features, so their residuals are compared
in sample: with noise independent across rows, ``E[c(L)]`` is the misfit
plus a term of the noise that is the same at every ``L``. (Scoring on
held-out sequences instead adds the fit's estimation error, whose size
depends on the spread of the shifted positions and so on ``L``: on slow
30-frame paths with noise constant over each sequence it pulled the lag by
+0.3 steps at 4 px.)

Why this way round (position -> z, not z -> position)? Noise in ``z`` sits
in the response of the regression, where least squares is unbiased; in a
decoding readout (z -> position) the same noise sits in the regressors and
attenuates the fit towards the mean (errors in variables), by an amount
that depends on how the position's spread varies with ``L`` over bounded
paths, which pulls the decoded lag (for the ideal inertia circuit d = 1,
gamma = 0.5, alpha = 0 on 10-frame paths, 1.89 steps without noise, 1.62
at 3.4 px). With ``W`` fixed the noise adds the same to every ``L``, so the
minimiser is that of the noise-free circuit, transients included.

Why the bumps? With the position alone (an affine ``f``) a representation
that codes the position nonlinearly leaves a misfit that depends on ``L``
through the spread of the shifted positions (paths are bounded: positions
late in a path are distributed differently from early ones): per-frame
beta-VAEs with no delay at all read 0.14-0.39 steps that way, 0.02-0.03
with the bumps; a per-frame autoencoder one step late read 1.06-1.07, 1.03-1.05
with them.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from neurodelay.analysis.disentanglement import collapsed_latents

__all__ = ["shift", "ShiftedPositions", "position_features", "grid_size", "lstsq_affine", "encoding_lag_core",
           "velocity_gain", "refine_argmin"]


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


#: Most radial basis functions per axis of the encoding model's position features.
MAX_GRID = 6
#: Spacing (steps) of the fine lag grid around the best whole lag.
FINE_STEP = 0.05


def grid_size(n_rows: int) -> int:
    """Basis functions per axis for ``n_rows`` rows: at least 10 rows per feature, at most :data:`MAX_GRID`."""
    n = int(np.floor(np.sqrt(max(n_rows / 10.0 - 3.0, 0.0))))
    return min(n, MAX_GRID) if n >= 3 else 0


def position_features(x: np.ndarray, n_grid: int) -> np.ndarray:
    """A constant, the position (..., 2) and, for ``n_grid`` >= 3, Gaussian bumps on an ``n_grid``-square grid.

    The grid spans [-0.1, 1.1] in factor units (the circle's positions and
    a margin), each bump as wide as the grid's spacing: with the position
    itself among the features a representation linear in the position is
    fitted exactly, and one that codes it smoothly but not linearly (an
    autoencoder's latents) nearly so.
    """
    parts = [np.ones(x.shape[:-1] + (1,)), x]
    if n_grid >= 3:
        c = np.linspace(-0.1, 1.1, n_grid)
        per_axis = np.exp(-((x[..., None] - c) ** 2) / (2.0 * (c[1] - c[0]) ** 2))  # (..., 2, n_grid)
        bumps = per_axis[..., 1, :, None] * per_axis[..., 0, None, :]  # separable: rows of y, columns of x
        parts.append(bumps.reshape(x.shape[:-1] + (n_grid * n_grid,)))
    return np.concatenate(parts, axis=-1)


def _parabola_min(xs: np.ndarray, ys: np.ndarray, i: int) -> float:
    """The minimum of the parabola through the points i - 1, i, i + 1 (the point itself at an end or if flat)."""
    if i <= 0 or i >= len(xs) - 1:
        return float(xs[i])
    (x0, x1, x2), (y0, y1, y2) = xs[i - 1:i + 2], ys[i - 1:i + 2]
    den = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den
    bb = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / den
    if not a > 0:
        return float(xs[i])
    return float(np.clip(-bb / (2 * a), x0, x2))


def lag_grid(lags: np.ndarray, centre: float) -> np.ndarray:
    """The whole lags and a fine grid (FINE_STEP) within one step of ``centre``, sorted."""
    lo, hi = max(float(lags[0]), centre - 1.0), min(float(lags[-1]), centre + 1.0)
    fine = np.arange(lo, hi + 1e-9, FINE_STEP)
    return np.unique(np.round(np.concatenate([lags.astype(np.float64), fine]), 9))


class EncodingStats:
    """Per-sequence sufficient statistics of the encoding model at a set of lags.

    For sequence ``s`` and lag ``L_k``: ``G[s, k] = X' X`` and ``C[s, k] =
    X' zw`` over its rows, with ``X`` the position features at ``t - L_k``
    and ``zw`` the whitened latents, and ``Z[s] = |zw|^2``. A weighting of
    the sequences (a bootstrap resample's counts) then gives the fit and its
    residual at every lag of the set without touching the rows again, and a
    batch of weightings is one matrix product.
    """

    def __init__(self, zw: np.ndarray, shifted: ShiftedPositions, rows: np.ndarray, grid: np.ndarray, n_grid: int):
        n, n_steps, m = zw.shape
        self.grid = np.asarray(grid, dtype=np.float64)
        self.norm = n_steps * m
        self.z = np.einsum("nsm,nsm->n", zw, zw)
        x = np.stack([position_features(shifted.at(float(lag), rows).reshape(n, n_steps, 2), n_grid)
                      for lag in self.grid], axis=1)  # (n, K, S, F)
        xt = np.swapaxes(x, -1, -2)
        self.f = x.shape[-1]
        self.g = (xt @ x).reshape(n, -1)  # (n, K * F * F)
        self.c = (xt @ zw[:, None]).reshape(n, -1)  # (n, K * F * M)
        self.m = m

    def curves(self, w: np.ndarray) -> np.ndarray:
        """The criterion (mean squared whitened residual per latent) at every lag of the set, shape (B, K).

        ``w`` : (B, n) or (n,) sequence weights (a resample's counts); a
        1-d ``w`` gives shape (K,).
        """
        w2 = np.atleast_2d(np.asarray(w, dtype=np.float64))
        k, f = len(self.grid), self.f
        g = (w2 @ self.g).reshape(len(w2), k, f, f)
        c = (w2 @ self.c).reshape(len(w2), k, f, self.m)
        ridge = 1e-10 * np.trace(g, axis1=-2, axis2=-1)[..., None, None] * np.eye(f)
        explained = np.einsum("bkam,bkam->bk", c, np.linalg.solve(g + ridge, c))
        out = ((w2 @ self.z)[:, None] - explained) / (w2.sum(axis=1)[:, None] * self.norm)
        return out[0] if np.ndim(w) == 1 else out

    def lags(self, w: np.ndarray) -> np.ndarray:
        """The lag (minimum of the parabola through the best grid point and its neighbours) per weighting."""
        ys = np.atleast_2d(self.curves(w))
        out = np.array([_parabola_min(self.grid, y, int(np.argmin(y))) for y in ys])
        return out[0] if np.ndim(w) == 1 else out


def encoding_lag_core(z: np.ndarray, pos: np.ndarray, steps: np.ndarray, lags: np.ndarray, rows: np.ndarray, *,
                      shifted: ShiftedPositions | None = None, n_grid: int | None = None) -> dict:
    """Lag of the encoding model ``z ~ f(p(t - L))`` (see the module docstring).

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
        Sequences used (distinct).
    shifted : ShiftedPositions, optional
        ``pos`` shifted by each whole lag of ``lags`` (made here if not given).
    n_grid : int, optional
        Radial basis functions per axis (default :func:`grid_size` of the
        rows used; 0: the position alone).

    Returns
    -------
    dict
        ``lag`` (steps; NaN when ``z`` does not depend on the position:
        ``reason`` says why), ``curve`` (K,) the criterion at each whole lag
        (mean squared whitened residual per latent), ``at_edge`` (bool),
        ``stats`` (:class:`EncodingStats` on a grid around the lag, for the
        bootstrap; None without a lag), ``n_grid``, ``reason``.
    """
    n_k = len(lags)
    out = {"lag": float("nan"), "curve": np.full(n_k, np.nan), "at_edge": False, "stats": None, "reason": None,
           "n_grid": 0}
    m = z.shape[-1]
    zr = z[rows][:, steps]  # (n, S, M)
    keep = ~collapsed_latents(zr.reshape(-1, m))
    if not keep.any():
        out["reason"] = "constant"
        return out
    mean, sd = _standardise(zr.reshape(-1, m), keep)
    zs = (zr[..., keep] - mean) / sd
    if shifted is None:
        shifted = ShiftedPositions(pos, int(lags[0]), int(lags[-1]), steps)
    n_grid = grid_size(zs.shape[0] * zs.shape[1]) if n_grid is None else int(n_grid)
    out["n_grid"] = n_grid
    flat = zs.reshape(-1, zs.shape[-1])

    def fit(lag: float, target: np.ndarray):
        x = position_features(shifted.at(lag, rows), n_grid)
        coef, *_ = np.linalg.lstsq(x, target, rcond=None)  # SVD: no ridge to bias an exact fit
        return target - x @ coef

    # First scan: residuals in standardised units pick the lag whose residual covariance whitens the rest.
    first = np.array([float(np.mean(fit(float(k), flat) ** 2)) for k in lags])
    best = int(np.argmin(first))
    if not first[best] < 1.0 - 1e-9:  # the position explains nothing of z
        out["reason"] = "no_position"
        return out
    r = fit(float(lags[best]), flat)
    cov = np.atleast_2d(np.cov(r, rowvar=False))
    cov = cov + (1e-3 * np.trace(cov) / cov.shape[0] + 1e-12) * np.eye(cov.shape[0])
    vals, vecs = np.linalg.eigh(cov)
    zw = zs @ ((vecs / np.sqrt(vals)) @ vecs.T)  # whitened by the fixed S^-1/2

    def crit(lag: float) -> float:
        return float(np.mean(fit(lag, zw.reshape(-1, zw.shape[-1])) ** 2))

    curve = np.array([crit(float(k)) for k in lags])
    stats = EncodingStats(zw, shifted, rows, lag_grid(lags, float(lags[int(np.argmin(curve))])), n_grid)
    ys = stats.curves(np.ones(len(rows)))
    i = int(np.argmin(ys))
    lag = _parabola_min(stats.grid, ys, i)
    if 0 < i < len(ys) - 1:
        # Polish with the residuals themselves (the Gram statistics lose digits to cancellation when the fit
        # is nearly exact), over two grid points each side in case that moved the grid's minimum by one.
        lo, hi = float(stats.grid[max(i - 2, 0)]), float(stats.grid[min(i + 2, len(ys) - 1)])
        res = minimize_scalar(crit, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7})
        lag = min((float(res.x), float(stats.grid[i]), lag), key=crit)
    out.update(lag=lag, curve=curve, stats=stats, rows=np.asarray(rows),
               at_edge=bool(n_k > 1 and (lag <= lags[0] + 1e-3 or lag >= lags[-1] - 1e-3)))
    return out
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
    n_grid = grid_size(z_tr.shape[0])
    p_tr = position_features(target[train].reshape(-1, 2), n_grid)[:, 1:]  # lstsq_affine adds the constant
    p_te = position_features(target[test].reshape(-1, 2), n_grid)[:, 1:]
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
