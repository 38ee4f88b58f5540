"""The position readout: a least-squares map from a representation to the circle's position.

:class:`LinearReadout` (linear in the latents, or in their squares and products
too) and its pure-array fits: at one lag (:func:`_readout_at`) and jointly
with the lag (:func:`_readout_lag_core`, the decoding estimator of
:mod:`neurodelay.analysis.lag`, which fits and uses them).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from neurodelay.analysis._lagfit import refine_argmin, shift

__all__ = ["LinearReadout"]


@dataclasses.dataclass(frozen=True)
class LinearReadout:
    """A least-squares map from a representation to circle positions, linear in its features.

    ``decode(z) = features((z - mean) / scale) @ coef[:-1] + coef[-1]``,
    where the features are the standardised latents (``degree`` 1) and,
    with ``degree`` 2, also their squares and pairwise products: a
    representation that carries the position smoothly but not linearly
    (an autoencoder's latents do: a linear readout of a 10-latent
    autoencoder that draws the circle reached a held-out R^2 of 0.66, a
    quadratic one 0.95) is then read for what it carries.

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
    coef : numpy.ndarray, shape (n_features + 1, 2)
        Weights, the last row the intercept; columns ``circle_x``,
        ``circle_y`` in factor units.
    degree : int
        1 (linear in the latents) or 2 (quadratic).
    """

    node: str
    lag_steps: float
    dt_ms: float
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    degree: int = 1

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
        return _design(z, self.mean, self.scale, self.degree) @ self.coef


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _design(z: np.ndarray, mean: np.ndarray, scale: np.ndarray, degree: int = 1) -> np.ndarray:
    """Features (standardised latents; with degree 2 their squares and pairwise products) and a 1."""
    x = (z - mean) / scale
    parts = [x]
    if degree == 2:
        i, j = np.triu_indices(x.shape[-1])
        parts.append(x[..., i] * x[..., j])
    return np.concatenate(parts + [np.ones(x.shape[:-1] + (1,))], axis=-1)


def _fit_lstsq(z_rows: np.ndarray, y_rows: np.ndarray, degree: int = 1):
    """Least squares with intercept on standardised inputs (and their products): (mean, scale, coef)."""
    mean = z_rows.mean(axis=0)
    scale = z_rows.std(axis=0)
    scale = np.where(scale > 1e-12 * np.maximum(np.abs(mean), 1.0), scale, 1.0)
    coef, *_ = np.linalg.lstsq(_design(z_rows, mean, scale, degree), y_rows, rcond=None)
    return mean, scale, coef


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
                      train: np.ndarray, test: np.ndarray, degree: int = 1) -> dict:
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
        target = shift(pos, lag, steps)
        mean, scale, coef = _fit_lstsq(z_train, target[train].reshape(-1, 2), degree)
        err = _design(z_test, mean, scale, degree) @ coef - target[test].reshape(-1, 2)
        return float(np.mean(err**2)), (mean, scale, coef)

    curve = np.array([fit(float(k))[0] for k in lags])
    best = int(np.argmin(curve))
    lo = float(lags[max(best - 1, 0)])
    hi = float(lags[min(best + 1, len(lags) - 1)])
    lag = refine_argmin(lambda x: fit(x)[0], lags.astype(np.float64), curve) if hi > lo else float(lags[best])
    mse, (mean, scale, coef) = fit(lag)
    at_edge = len(lags) > 1 and (lag <= lags[0] + 1e-3 or lag >= lags[-1] - 1e-3)
    # Held-out R^2 at the estimate: against predicting the training mean of the target.
    target = shift(pos, lag, steps)
    baseline = float(np.mean((target[test].reshape(-1, 2) - target[train].reshape(-1, 2).mean(axis=0)) ** 2))
    r2 = 1.0 - mse / baseline if baseline > 0 else float("nan")
    return {"lag": lag, "mse_curve": curve, "mse": mse, "mean": mean, "scale": scale, "coef": coef,
            "at_edge": bool(at_edge), "r2": r2}


def _readout_at(z, pos, steps, lag, train, test, degree: int = 1) -> dict:
    """The decoding readout fitted at ``lag`` alone: held-out ``mse``, ``r2``, and its coefficients."""
    z_train = z[train][:, steps].reshape(-1, z.shape[-1])
    z_test = z[test][:, steps].reshape(-1, z.shape[-1])
    target = shift(pos, lag, steps)
    mean, scale, coef = _fit_lstsq(z_train, target[train].reshape(-1, 2), degree)
    err = _design(z_test, mean, scale, degree) @ coef - target[test].reshape(-1, 2)
    mse = float(np.mean(err**2))
    baseline = float(np.mean((target[test].reshape(-1, 2) - target[train].reshape(-1, 2).mean(axis=0)) ** 2))
    return {"lag": float(lag), "mse": mse, "r2": 1.0 - mse / baseline if baseline > 0 else float("nan"),
            "mean": mean, "scale": scale, "coef": coef}
