"""Mutual information gap (MIG; Chen et al. 2018), from histograms.

Part of the disentanglement metrics (see :mod:`neurodelay.analysis.disentanglement`,
which names them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neurodelay.analysis._codes import COLLAPSE_TOL, _check_n_bins, _collapsed, _validate_pair
from neurodelay.analysis._discretize import (
    equal_width_codes,
    factor_code_matrix,
    resolve_factor_discrete,
)

__all__ = ["mig", "mig_details"]

def _entropy_from_counts(counts: np.ndarray) -> float:
    """Entropy in nats of the distribution with the given counts."""
    counts = counts[counts > 0]
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def _mig_from_discrete(latent_codes: np.ndarray, factor_codes: np.ndarray) -> dict[str, Any]:
    """MIG from discrete codes: the pure-array core of :func:`mig_details`.

    Parameters
    ----------
    latent_codes : np.ndarray of int, shape (n_samples, n_latent)
        Discrete (e.g. binned) codes, any non-negative integers.
    factor_codes : np.ndarray of int, shape (n_samples, n_factor)
        Discrete factor values, any non-negative integers.

    Returns
    -------
    dict
        ``"mig"`` (float), ``"gap"`` (n_factor,), ``"mutual_info"``
        (n_latent, n_factor) in nats, ``"normalized_mi"`` (n_latent,
        n_factor), ``"factor_entropy"`` (n_factor,) in nats and
        ``"factor_used"`` (n_factor,) bool. See :func:`mig_details`.
    """
    latent_codes = np.asarray(latent_codes)
    factor_codes = np.asarray(factor_codes)
    n, n_latent = latent_codes.shape
    n_factor = factor_codes.shape[1]
    # Relabel every column to 0..k-1 so that joint histograms stay small.
    lat = [np.unique(latent_codes[:, j], return_inverse=True) for j in range(n_latent)]
    fac = [np.unique(factor_codes[:, k], return_inverse=True) for k in range(n_factor)]
    lat = [(u.size, inv.reshape(-1)) for u, inv in lat]
    fac = [(u.size, inv.reshape(-1)) for u, inv in fac]

    factor_entropy = np.array([_entropy_from_counts(np.bincount(inv)) for _, inv in fac])
    mutual_info = np.zeros((n_latent, n_factor))
    for j, (n_a, a) in enumerate(lat):
        count_a = np.bincount(a, minlength=n_a).astype(np.float64)
        for k, (n_b, b) in enumerate(fac):
            count_b = np.bincount(b, minlength=n_b).astype(np.float64)
            joint = np.bincount(a * n_b + b, minlength=n_a * n_b).reshape(n_a, n_b)
            ia, ib = np.nonzero(joint)
            c_ab = joint[ia, ib].astype(np.float64)
            # I = sum p(a,b) log(p(a,b) / (p(a) p(b))) with p = count / n.
            terms = c_ab / n * np.log(c_ab * n / (count_a[ia] * count_b[ib]))
            mutual_info[j, k] = max(terms.sum(), 0.0)

    factor_used = factor_entropy > 0
    if not factor_used.any():
        raise ValueError(
            "factors must vary: every factor takes a single value over the "
            f"{n} samples, so its entropy is 0 and MIG is undefined. Pass "
            "samples in which at least one factor varies."
        )
    normalized = np.zeros_like(mutual_info)
    normalized[:, factor_used] = np.clip(
        mutual_info[:, factor_used] / factor_entropy[factor_used], 0.0, 1.0
    )
    ordered = -np.sort(-normalized, axis=0)  # descending per factor
    second = ordered[1] if n_latent > 1 else np.zeros(n_factor)
    gap = np.where(factor_used, ordered[0] - second, 0.0)
    return {
        "mig": float(gap[factor_used].mean()),
        "gap": gap,
        "mutual_info": mutual_info,
        "normalized_mi": normalized,
        "factor_entropy": factor_entropy,
        "factor_used": factor_used,
    }


def mig_details(
    latents: Any,
    factors: Any,
    n_bins: int = 20,
    factor_discrete: bool | Sequence[bool] | None = None,
) -> dict[str, Any]:
    """Mutual information gap with its intermediate quantities.

    Definition (Chen et al. 2018, histogram estimate):

    1. Each latent is discretised into ``n_bins`` equal-width bins spanning
       its observed range ``[min, max]`` (the last bin includes ``max``). A
       collapsed latent (see :func:`collapsed_latents`, default ``tol``)
       falls in a single bin, so it carries no information, even when its
       tiny jitter (rounding noise) would spread over several bins; DCI and
       SAP treat it the same way.
    2. Each factor is used by its distinct values when it is discrete: by
       default when it takes at most ``n_bins`` distinct values (e.g. grid
       positions, categories), otherwise it is binned like the latents.
       ``factor_discrete`` overrides the rule.
    3. ``I(z_j; v_k)`` is the mutual information (natural log) of the joint
       histogram of latent ``j`` and factor ``k``, ``H(v_k)`` the entropy of
       factor ``k``; ``m[j, k] = I(z_j; v_k) / H(v_k)`` lies in [0, 1].
    4. For each factor, ``gap[k]`` = largest minus second-largest
       ``m[:, k]`` over latents (with one latent, the second is 0).
    5. MIG = mean of ``gap`` over the factors with ``H(v_k) > 0``; constant
       factors are skipped (their ``gap`` is reported as 0 and
       ``factor_used`` is False). A factor counts as constant by the same
       relative tolerance as a collapsed latent, as in DCI and SAP.

    A factor encoded by two latents at once (a duplicated code) has gap 0.

    Parameters
    ----------
    latents : array_like, shape (n_samples, n_latent)
        Codes.
    factors : array_like, shape (n_samples, n_factor)
        Ground-truth factors of the same samples.
    n_bins : int, default 20
        Bins per latent (and per non-discrete factor), >= 2.
    factor_discrete : None, bool or sequence of n_factor bools, default None
        Whether each factor is used by its distinct values (True) or binned
        (False). None applies the "at most ``n_bins`` distinct values" rule.

    Returns
    -------
    dict
        ``"mig"``: float in [0, 1]. ``"gap"``: (n_factor,).
        ``"mutual_info"``: (n_latent, n_factor), nats. ``"normalized_mi"``:
        (n_latent, n_factor). ``"factor_entropy"``: (n_factor,), nats.
        ``"factor_used"``: (n_factor,) bool, False for constant factors.
        ``"factor_discrete"``: (n_factor,) bool, the rule's outcome.

    Raises
    ------
    ValueError
        On invalid inputs, or when every factor is constant.
    """
    z, v = _validate_pair(latents, factors)
    n_bins = _check_n_bins(n_bins)
    discrete = resolve_factor_discrete(v, n_bins, factor_discrete)
    factor_constant = _collapsed(v, COLLAPSE_TOL)
    if factor_constant.all():
        raise ValueError(
            "factors must vary: every factor is constant over the "
            f"{v.shape[0]} samples (standard deviation at most {COLLAPSE_TOL:g} "
            "times its largest magnitude), so MIG is undefined. Pass samples "
            "in which at least one factor varies."
        )
    # Collapsed latents and constant factors go to a single code, so that
    # rounding jitter carries no information (consistent with DCI and SAP).
    latent_codes = equal_width_codes(z, n_bins)
    latent_codes[:, _collapsed(z, COLLAPSE_TOL)] = 0
    factor_codes = factor_code_matrix(v, n_bins, discrete)
    factor_codes[:, factor_constant] = 0
    details = _mig_from_discrete(latent_codes, factor_codes)
    details["factor_discrete"] = discrete
    return details


def mig(
    latents: Any,
    factors: Any,
    n_bins: int = 20,
    factor_discrete: bool | Sequence[bool] | None = None,
) -> float:
    """Mutual information gap (MIG) of codes with respect to factors.

    See :func:`mig_details` for the definition, the discretisation rule and
    the parameters (same signature). 1 means every factor is captured by one
    latent alone; 0 means no factor is captured by one latent more than by
    another (independent codes, or every factor duplicated across codes).

    Parameters
    ----------
    latents : array_like, shape (n_samples, n_latent)
    factors : array_like, shape (n_samples, n_factor)
    n_bins : int, default 20
    factor_discrete : None, bool or sequence of n_factor bools, default None

    Returns
    -------
    float
        MIG in [0, 1].
    """
    return mig_details(latents, factors, n_bins=n_bins, factor_discrete=factor_discrete)["mig"]
