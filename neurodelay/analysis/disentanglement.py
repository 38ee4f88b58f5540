"""Disentanglement metrics over plain arrays of codes and factors.

Every public function takes ``latents`` of shape ``(n_samples, n_latent)``
(one code vector per sample: an encoder mean, a node trace at one time, ...)
and ``factors`` of shape ``(n_samples, n_factor)`` (the ground-truth
generative factors of the same samples, in the same order). numpy arrays,
torch tensors (any device; they are detached and copied to the host) and
nested sequences are accepted; values are used as float64.

Metrics
-------
correlation_matrix, collapsed_latents, correlation_score, matched_correlation_score
    The original study's latent-factor Pearson correlations and its "mss".
mig, mig_details
    Mutual information gap (Chen et al. 2018), from histograms.
dci
    Disentanglement, completeness and informativeness (Eastwood and Williams
    2018) from a seeded ridge regression.
sap
    Separated attribute predictability (Kumar et al. 2018).

Robustness: a collapsed (constant) latent never produces NaN. It has zero
correlation with everything, zero mutual information, zero importance and a
zero SAP score. A constant factor carries no information to recover; it is
left out of the averages of MIG, DCI and SAP (and an error is raised when
every factor is constant).

All results are invariant to reordering the latents and to flipping their
signs (up to floating-point rounding; for MIG, exactly so except for values
that lie exactly on an interior bin edge), except :func:`correlation_score`,
which by definition pairs latent ``i`` with factor ``i``.

The correlations are defined here; MIG in :mod:`neurodelay.analysis.mutual_info`, DCI and
SAP in :mod:`neurodelay.analysis.predictability`, and the checks and standardisation they
share in ``neurodelay.analysis._codes``. This module names them all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurodelay.analysis._codes import (
    COLLAPSE_TOL,
    _as_2d,
    _check_matrix,
    _collapsed,
    _correlation,
    _is_real,
    _validate_pair,
)
from neurodelay.analysis.mutual_info import mig, mig_details
from neurodelay.analysis.predictability import dci, sap

__all__ = [
    "collapsed_latents",
    "correlation_matrix",
    "correlation_score",
    "matched_correlation_score",
    "mig",
    "mig_details",
    "dci",
    "sap",
]


# --------------------------------------------------------------------------
# Correlations (the original study's analysis)
# --------------------------------------------------------------------------


def collapsed_latents(latents: Any, tol: float = COLLAPSE_TOL) -> np.ndarray:
    """Flag latents that are constant over the samples (collapsed).

    A latent counts as collapsed when its standard deviation over the samples
    is at most ``tol`` times its largest absolute value (so an all-zero
    latent is collapsed, and the rule does not depend on the units). Raise
    ``tol`` (e.g. to 1e-3) to also flag latents that only jitter around a
    value, as a collapsed VAE posterior mean does.

    Parameters
    ----------
    latents : array_like, shape (n_samples, n_latent)
        Codes, at least 2 samples, finite.
    tol : float, default 1e-10
        Relative tolerance, >= 0.

    Returns
    -------
    np.ndarray of bool, shape (n_latent,)
        True where the latent is collapsed.
    """
    z = _as_2d(latents, "latents")
    if not (_is_real(tol) and np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0; got {tol!r}. Pass e.g. tol=1e-10.")
    return _collapsed(z, float(tol))


def correlation_matrix(latents: Any, factors: Any, tol: float = COLLAPSE_TOL) -> np.ndarray:
    """Pearson correlation of every latent with every factor.

    A collapsed latent or a constant factor (see :func:`collapsed_latents`,
    same ``tol``) has correlation 0 with everything, never NaN. Elsewhere the
    result equals ``np.corrcoef`` (the original used it, and got NaN for
    collapsed latents).

    Parameters
    ----------
    latents : array_like, shape (n_samples, n_latent)
        Codes.
    factors : array_like, shape (n_samples, n_factor)
        Ground-truth factors of the same samples.
    tol : float, default 1e-10
        Relative tolerance below which a column counts as constant.

    Returns
    -------
    np.ndarray, shape (n_latent, n_factor)
        ``C[i, k]`` = correlation of latent ``i`` with factor ``k``, in [-1, 1].
    """
    z, v = _validate_pair(latents, factors)
    if not (_is_real(tol) and np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0; got {tol!r}. Pass e.g. tol=1e-10.")
    return _correlation(z, v, float(tol))


def correlation_score(correlation: Any) -> float:
    """The original study's "mss": mean squared deviation of C from identity.

    ``mss = mean((C - I)**2)`` where ``I[i, k] = 1`` if ``i == k`` else 0 (a
    rectangular identity when ``n_latent != n_factor``). The mean runs over
    all ``n_latent * n_factor`` entries; for a square matrix that is the
    original's divisor ``M**2``. 0 is a perfect, ordered, positively signed
    match; lower is better.

    The score is order- and sign-dependent: it assumes latent ``i`` should
    encode factor ``i`` with a positive sign, as in the original supervised
    and sweep analyses. See :func:`matched_correlation_score` for the variant
    that picks the best pairing and signs.

    Parameters
    ----------
    correlation : array_like, shape (n_latent, n_factor)
        A correlation matrix, e.g. from :func:`correlation_matrix`.

    Returns
    -------
    float
        Mean squared deviation, >= 0.
    """
    c = _check_matrix(correlation, "correlation")
    return float(np.mean((c - np.eye(*c.shape)) ** 2))


def matched_correlation_score(correlation: Any) -> float:
    """The "mss" under the best one-to-one pairing of latents with factors.

    Minimises :func:`correlation_score` over every one-to-one pairing of
    ``min(n_latent, n_factor)`` latents with factors and over the sign of
    each latent (Hungarian algorithm on ``|C|``). Invariant to reordering the
    latents and flipping their signs. When ``n_latent >= n_factor`` this is
    exactly the minimum of the mss over latent permutations and sign flips;
    when ``n_latent < n_factor`` the pairing may also choose which factors
    the latents stand for.

    Parameters
    ----------
    correlation : array_like, shape (n_latent, n_factor)
        A correlation matrix, e.g. from :func:`correlation_matrix`.

    Returns
    -------
    float
        Mean squared deviation from the best-matched signed identity, >= 0.
    """
    from scipy.optimize import linear_sum_assignment  # deferred: keeps imports light

    c = _check_matrix(correlation, "correlation")
    magnitude = np.abs(c)
    rows, cols = linear_sum_assignment(magnitude, maximize=True)
    n_pairs = rows.size
    total = np.sum(c**2) - 2.0 * magnitude[rows, cols].sum() + n_pairs
    return float(max(total, 0.0) / c.size)

