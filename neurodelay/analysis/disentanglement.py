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
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from neurodelay.analysis._discretize import (
    equal_width_codes,
    factor_code_matrix,
    resolve_factor_discrete,
)

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

#: Default relative tolerance below which a column counts as constant.
COLLAPSE_TOL = 1e-10


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------


def _to_numpy(value: Any) -> Any:
    """Detach and move a torch tensor (or similar) to a host numpy array."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        tensor = value.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.double()  # numpy has no bfloat16
        return tensor.numpy()
    return value


def _as_2d(value: Any, name: str, *, min_samples: int = 2) -> np.ndarray:
    """Return ``value`` as a finite float64 array of shape (n, d), n >= min_samples."""
    try:
        array = np.asarray(_to_numpy(value))
    except Exception as error:  # ragged lists and the like
        raise ValueError(
            f"{name} must be an array of shape (n_samples, n_{name[:-1]}); "
            f"it could not be converted to an array ({error}). Pass a "
            "rectangular numpy array or torch tensor."
        ) from error
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_{name[:-1]}); "
            f"got {array.ndim}-D with shape {array.shape}. Reshape a single "
            f"column with {name}.reshape(-1, 1), or stack samples along the "
            "first axis."
        )
    if not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(
            f"{name} must hold real numbers; got dtype {array.dtype}. "
            "Convert it to a float array."
        )
    n_samples, n_columns = array.shape
    if n_samples < min_samples:
        raise ValueError(
            f"{name} must have at least {min_samples} samples (rows); got "
            f"shape {array.shape} (n_samples={n_samples}). Pass more samples."
        )
    if n_columns < 1:
        raise ValueError(
            f"{name} must have at least one column; got shape {array.shape}. "
            f"Pass at least one {name[:-1]}."
        )
    array = array.astype(np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name} must contain only finite values; found "
            f"{int((~finite).sum())} NaN or infinite entries (first at row "
            f"{row}, column {col}: {array[row, col]}). Drop or impute those "
            "samples before computing the metric."
        )
    return array


def _validate_pair(
    latents: Any, factors: Any, *, min_samples: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``latents`` and ``factors`` together."""
    z = _as_2d(latents, "latents", min_samples=min_samples)
    v = _as_2d(factors, "factors", min_samples=min_samples)
    if z.shape[0] != v.shape[0]:
        raise ValueError(
            "latents and factors must have the same number of samples (rows); "
            f"got latents of shape {z.shape} and factors of shape {v.shape}. "
            "Pass the codes and the factors of the same samples, in the same "
            "order."
        )
    return z, v


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, (bool, np.bool_)) or not isinstance(n_bins, (int, np.integer)):
        raise ValueError(
            f"n_bins must be an integer >= 2; got {n_bins!r} of type "
            f"{type(n_bins).__name__}. Pass e.g. n_bins=20."
        )
    if n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2; got {n_bins}. Pass e.g. n_bins=20.")
    return int(n_bins)


def _check_matrix(matrix: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(_to_numpy(matrix), dtype=np.float64)
    except (TypeError, ValueError) as error:  # strings, ragged lists, None
        raise ValueError(
            f"{name} must be a 2-D array of numbers of shape (n_latent, n_factor); "
            f"{type(matrix).__name__} {matrix!r:.80} could not be read as one ({error}). "
            "Pass the output of correlation_matrix."
        ) from None
    if array.ndim != 2 or array.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-D array of shape (n_latent, n_factor); "
            f"got shape {array.shape}. Pass the output of correlation_matrix."
        )
    if not np.isfinite(array).all():
        raise ValueError(
            f"{name} must contain only finite values; got "
            f"{int((~np.isfinite(array)).sum())} NaN or infinite entries. "
            "Compute it with correlation_matrix, which never returns NaN."
        )
    # Correlations lie in [-1, 1]; allow float rounding of a computed one.
    outside = np.abs(array) > 1.0 + 1e-9
    if outside.any():
        i, k = np.argwhere(outside)[0]
        raise ValueError(
            f"{name} must hold correlations in [-1, 1]; got {int(outside.sum())} entries "
            f"outside (first at row {i}, column {k}: {array[i, k]}). Pass the output "
            "of correlation_matrix, not covariances or raw codes."
        )
    return array


# --------------------------------------------------------------------------
# Correlations (the original study's analysis)
# --------------------------------------------------------------------------


def _prescale(values: np.ndarray) -> np.ndarray:
    """Divide each column by its largest magnitude (all-zero columns stay).

    Every quantity computed from second moments here is scale-invariant;
    rescaling first keeps squares of very small or very large values out of
    the subnormal and overflow ranges.
    """
    scale = np.abs(values).max(axis=0)
    return values / np.where(scale > 0, scale, 1.0)


def _collapsed(values: np.ndarray, tol: float) -> np.ndarray:
    values = _prescale(values)
    return values.std(axis=0) <= tol * np.abs(values).max(axis=0)


def _standardize(values: np.ndarray, tol: float) -> np.ndarray:
    """Zero-mean, unit-variance columns; collapsed columns become zeros."""
    values = _prescale(values)
    collapsed = _collapsed(values, tol)
    std = np.where(collapsed, 1.0, values.std(axis=0))
    standardized = (values - values.mean(axis=0)) / std
    standardized[:, collapsed] = 0.0
    return standardized


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


def _correlation(z: np.ndarray, v: np.ndarray, tol: float = COLLAPSE_TOL) -> np.ndarray:
    n = z.shape[0]
    c = _standardize(z, tol).T @ _standardize(v, tol) / n
    return np.clip(c, -1.0, 1.0)


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


# --------------------------------------------------------------------------
# MIG
# --------------------------------------------------------------------------


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
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}. Pass e.g. seed=0.")
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
