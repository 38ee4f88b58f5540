"""Metrics of how well each latent predicts each factor: DCI (Eastwood and Williams 2018) from a
seeded ridge regression, and SAP (Kumar et al. 2018) from squared correlations.

Part of the disentanglement metrics (see :mod:`neurodelay.analysis.disentanglement`,
which names them all).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurodelay.analysis._checks import check_seed
from neurodelay.analysis._codes import COLLAPSE_TOL, _collapsed, _correlation, _is_real, _validate_pair

__all__ = ["dci", "sap"]


# --------------------------------------------------------------------------
# DCI
# --------------------------------------------------------------------------


def _normalized_entropy(weights: np.ndarray, axis: int) -> np.ndarray:
    """Entropy of ``weights`` normalised along ``axis``, in base ``shape[axis]``.

    Rows (or columns) that sum to 0 get entropy 1 (no information, maximal
    spread); a length-1 axis gives entropy 0.
    """
    size = weights.shape[axis]
    totals = weights.sum(axis=axis, keepdims=True)
    if size == 1:
        return np.zeros(np.delete(weights.shape, axis))
    safe_totals = np.where(totals > 0, totals, 1.0)
    p = weights / safe_totals
    plogp = np.zeros_like(p)
    positive = p > 0
    plogp[positive] = p[positive] * np.log(p[positive])
    entropy = -plogp.sum(axis=axis) / np.log(size)
    return np.where(np.squeeze(totals, axis=axis) > 0, entropy, 1.0)


def _dci_from_importance(importance: np.ndarray) -> dict[str, Any]:
    """Disentanglement and completeness from an importance matrix.

    Eastwood and Williams (2018): with ``R[j, k] >= 0`` the importance of
    code ``j`` for factor ``k``,

    - ``D_j = 1 - H_F(R[j, :] / sum_k R[j, k])`` (entropy in base n_factor),
      weighted by ``rho_j = sum_k R[j, k] / sum R``;
    - ``C_k = 1 - H_M(R[:, k] / sum_j R[j, k])`` (entropy in base n_latent),
      weighted by ``sum_j R[j, k] / sum R``.

    Codes (factors) with zero total importance get weight 0. With a single
    factor every code is trivially disentangled (``D_j = 1``); with a single
    code every factor is trivially complete. An all-zero matrix gives 0.

    Parameters
    ----------
    importance : np.ndarray, shape (n_latent, n_factor)
        Non-negative importances.

    Returns
    -------
    dict
        ``"disentanglement"``, ``"completeness"`` (floats in [0, 1]),
        ``"per_code"`` (n_latent,), ``"per_factor"`` (n_factor,),
        ``"code_weight"`` (n_latent,), ``"factor_weight"`` (n_factor,).
    """
    importance = np.asarray(importance, dtype=np.float64)
    total = importance.sum()
    per_code = 1.0 - _normalized_entropy(importance, axis=1)
    per_factor = 1.0 - _normalized_entropy(importance, axis=0)
    if total > 0:
        code_weight = importance.sum(axis=1) / total
        factor_weight = importance.sum(axis=0) / total
    else:
        code_weight = np.zeros(importance.shape[0])
        factor_weight = np.zeros(importance.shape[1])
    return {
        "disentanglement": float(np.clip(per_code @ code_weight, 0.0, 1.0)),
        "completeness": float(np.clip(per_factor @ factor_weight, 0.0, 1.0)),
        "per_code": per_code,
        "per_factor": per_factor,
        "code_weight": code_weight,
        "factor_weight": factor_weight,
    }


def _standardize_split(
    train: np.ndarray, test: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Standardise the ``keep`` columns of both parts with training statistics.

    Held-out values far outside a barely varying training column may
    overflow; they become non-finite and are scored as R^2 = 0 downstream.
    """
    scale = np.abs(train).max(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    train = train[:, keep] / scale[keep]
    mean, std = train.mean(axis=0), train.std(axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        test = ((test[:, keep] / scale[keep]) - mean) / std
    return (train - mean) / std, test


def _ridge_importance(
    z_train: np.ndarray,
    v_train: np.ndarray,
    z_test: np.ndarray,
    v_test: np.ndarray,
    ridge_alpha: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Importance matrix and held-out R^2 from per-factor ridge regressions.

    Returns ``importance`` (n_latent, n_factor) and ``r2`` (n_factor,), with
    NaN-free zeros for collapsed latents; constant factors get an importance
    column of zeros and ``r2`` of -1 (a marker; callers skip them).
    """
    n_latent, n_factor = z_train.shape[1], v_train.shape[1]
    importance = np.zeros((n_latent, n_factor))
    r2 = np.full(n_factor, -1.0)
    lat_ok = ~_collapsed(z_train, COLLAPSE_TOL)
    fac_ok = ~_collapsed(v_train, COLLAPSE_TOL)
    if not fac_ok.any():
        return importance, r2

    x, x_test = _standardize_split(z_train, z_test, lat_ok)
    y, y_test = _standardize_split(v_train, v_test, fac_ok)
    n_train = x.shape[0]

    if x.shape[1] == 0:
        coef = np.zeros((0, y.shape[1]))
        std_err = np.zeros((0, y.shape[1]))
    else:
        gram = x.T @ x
        # The centred, standardised problem needs no intercept.
        a_inv = np.linalg.inv(gram + ridge_alpha * n_train * np.eye(gram.shape[0]))
        coef = a_inv @ (x.T @ y)
        residual = y - x @ coef
        dof = max(n_train - float(np.trace(gram @ a_inv)), 1.0)
        sigma2 = (residual**2).sum(axis=0) / dof
        coef_var_unit = np.clip(np.diag(a_inv @ gram @ a_inv), 0.0, None)
        std_err = np.sqrt(np.outer(coef_var_unit, sigma2))
    importance[np.ix_(lat_ok, fac_ok)] = np.abs(coef) + std_err

    with np.errstate(over="ignore", invalid="ignore"):
        prediction = x_test @ coef  # overflow is scored as R^2 = 0 below
    r2[fac_ok] = _held_out_r2(prediction, y_test)
    return importance, r2


def _held_out_r2(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """R^2 per column, clipped to [0, 1]; 0 where undefined or not finite.

    Held-out samples standardised with training statistics can be huge when
    a training column barely varies, so residuals are rescaled by their
    largest magnitude before squaring (the ratio is unchanged) and overflow
    counts as a useless prediction.
    """
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        residual = target - prediction
        centred = target - target.mean(axis=0)
        scale = np.maximum(np.abs(residual).max(axis=0), np.abs(centred).max(axis=0))
        ok = np.isfinite(scale) & (scale > 0)
        safe = np.where(ok, scale, 1.0)
        ss_res = ((residual / safe) ** 2).sum(axis=0)
        ss_tot = ((centred / safe) ** 2).sum(axis=0)
        ok &= np.isfinite(ss_res) & (ss_tot > 0)
        r2 = np.zeros(target.shape[1])
        r2[ok] = 1.0 - ss_res[ok] / ss_tot[ok]
    return np.clip(r2, 0.0, 1.0)


def dci(
    latents: Any,
    factors: Any,
    seed: int = 0,
    test_fraction: float = 1.0 / 3.0,
    ridge_alpha: float = 1e-3,
) -> dict[str, float]:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    Regressor and importance matrix: the samples are split at random (seeded
    by ``seed`` through ``numpy.random.SeedSequence``) into a training part
    and a held-out part of ``test_fraction`` of the samples. Codes and
    factors are standardised with the training statistics, and each factor is
    regressed on all codes by ridge regression (penalty ``ridge_alpha *
    n_train`` on the squared coefficients, i.e. ``ridge_alpha`` relative to
    unit-variance inputs). The importance of code ``j`` for factor ``k`` is
    ``|b_jk| + se_jk``: the magnitude of the standardised coefficient plus
    its standard error.

    Why linear, and why the standard error: a linear model on standardised
    inputs reads off which code carries which factor with no tuning and no
    randomness beyond the split, and the ridge penalty splits a duplicated
    code's weight evenly between its copies instead of failing. But the
    per-code entropy behind D normalises each code's importances, so the
    sampling noise of near-zero coefficients of an uninformative code would
    look like a random, peaked distribution over factors (independent codes
    scoring D ~ 0.15, up to 0.4 by chance). Adding the standard error, the
    size that noise alone gives a coefficient, acts as a pseudo-count: an
    uninformative code spreads its importance almost evenly (D ~ 0.03),
    while for codes that predict their factor the standard error (residual
    s.d. / sqrt(n)) is negligible next to the coefficient. Nonlinear
    encodings are under-rated by any linear probe; informativeness shows it.

    Scores:

    - disentanglement: ``sum_j rho_j (1 - H_F(P_j.))`` with ``P_jk = R_jk /
      sum_k R_jk``, entropy base n_factor, ``rho_j`` = code j's share of the
      total importance;
    - completeness: ``sum_k w_k (1 - H_M(P~_.k))`` with ``P~_jk = R_jk /
      sum_j R_jk``, base n_latent, ``w_k`` = factor k's share. The other
      convention in use, a plain mean over factors, differs whenever factors
      get unequal total importance (e.g. a code mixing two factors: 0.680
      weighted against 0.793 unweighted in a synthetic case);
    - informativeness: mean over factors of the held-out R^2, clipped to
      [0, 1]. A factor whose held-out values are all equal (always so with
      a single held-out sample, e.g. 3 or 4 samples at the default
      ``test_fraction``) has no R^2 and counts as 0, so informativeness
      is only meaningful with a few held-out samples per factor value.

    Collapsed latents get zero importance but still count as codes (the
    completeness entropy has base n_latent, collapsed codes included).
    Constant factors (constant over the training part) are left out of all
    three scores, as if they were not passed.

    Parameters
    ----------
    latents : array_like, shape (n_samples, n_latent)
        Codes, n_samples >= 3.
    factors : array_like, shape (n_samples, n_factor)
        Ground-truth factors of the same samples (discrete ones are regressed
        as numbers too).
    seed : int, default 0
        Seed of the train / held-out split.
    test_fraction : float, default 1/3
        Share of the samples held out, in (0, 1); at least 1 sample is held
        out and at least 2 are used for training.
    ridge_alpha : float, default 1e-3
        Relative ridge penalty, > 0 (it keeps the fit defined when codes are
        duplicated or collinear).

    Returns
    -------
    dict
        ``{"disentanglement": float, "completeness": float,
        "informativeness": float}``, each in [0, 1].
    """
    z, v = _validate_pair(latents, factors, min_samples=3)
    if not (_is_real(test_fraction) and 0 < test_fraction < 1):
        raise ValueError(
            f"test_fraction must be a number in (0, 1); got {test_fraction!r}. "
            "Pass e.g. test_fraction=1/3."
        )
    if not (_is_real(ridge_alpha) and np.isfinite(ridge_alpha) and ridge_alpha > 0):
        raise ValueError(
            f"ridge_alpha must be a finite number > 0; got {ridge_alpha!r}. "
            "Pass e.g. ridge_alpha=1e-3."
        )
    check_seed(seed)
    n = z.shape[0]
    n_test = min(max(int(round(n * test_fraction)), 1), n - 2)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    order = rng.permutation(n)
    test, train = order[:n_test], order[n_test:]
    if _collapsed(v[train], COLLAPSE_TOL).all():
        raise ValueError(
            "factors must vary: every factor is constant over the training "
            f"samples ({train.size} of {n}), so DCI is undefined. Pass samples "
            "in which at least one factor varies."
        )
    importance, r2 = _ridge_importance(z[train], v[train], z[test], v[test], float(ridge_alpha))
    used = r2 >= 0  # constant factors are marked with -1 and dropped
    scores = _dci_from_importance(importance[:, used])
    return {
        "disentanglement": scores["disentanglement"],
        "completeness": scores["completeness"],
        "informativeness": float(r2[used].mean()),
    }


# --------------------------------------------------------------------------
# SAP
# --------------------------------------------------------------------------


def _sap_from_scores(scores: np.ndarray, factor_used: np.ndarray) -> float:
    """SAP from a score matrix: mean over used factors of top minus second.

    Parameters
    ----------
    scores : np.ndarray, shape (n_latent, n_factor)
        Predictability of each factor from each latent alone, in [0, 1].
    factor_used : np.ndarray of bool, shape (n_factor,)
        Factors that enter the mean.

    Returns
    -------
    float
    """
    ordered = -np.sort(-scores, axis=0)
    second = ordered[1] if scores.shape[0] > 1 else np.zeros(scores.shape[1])
    gap = ordered[0] - second
    return float(np.clip(gap[factor_used].mean(), 0.0, 1.0))


def sap(latents: Any, factors: Any) -> float:
    """Separated attribute predictability (Kumar et al. 2018).

    The score of latent ``j`` for factor ``k`` is the R^2 of the 1-D linear
    regression (with intercept) of factor ``k`` on latent ``j``, which equals
    the squared Pearson correlation; it is computed on all samples (a 1-D
    fit has two parameters, so no held-out split is needed). Discrete
    factors with few values (grid positions) are scored the same way, as
    numbers, rather than with a classifier. SAP is the mean over factors of
    the largest minus the second-largest score (with one latent, the largest
    score). Collapsed latents score 0; constant factors are skipped.

    Parameters
    ----------
    latents : array_like, shape (n_samples, n_latent)
        Codes.
    factors : array_like, shape (n_samples, n_factor)
        Ground-truth factors of the same samples.

    Returns
    -------
    float
        SAP in [0, 1].

    Raises
    ------
    ValueError
        On invalid inputs, or when every factor is constant.
    """
    z, v = _validate_pair(latents, factors)
    factor_used = ~_collapsed(v, COLLAPSE_TOL)
    if not factor_used.any():
        raise ValueError(
            "factors must vary: every factor is constant over the "
            f"{v.shape[0]} samples, so SAP is undefined. Pass samples in which "
            "at least one factor varies."
        )
    return _sap_from_scores(_correlation(z, v) ** 2, factor_used)
