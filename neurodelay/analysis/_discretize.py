"""Discretisation of codes and factors for histogram-based metrics.

Private helpers of :mod:`neurodelay.analysis.disentanglement`. Inputs are
assumed already validated (2-D, finite, float64).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def equal_width_codes(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Assign every column of ``values`` to ``n_bins`` equal-width bins.

    The bins of column ``j`` split ``[min_j, max_j]`` into ``n_bins`` equal
    parts; bin ``b`` is ``[lo + b*w, lo + (b+1)*w)`` with ``w = (max_j -
    min_j) / n_bins``, and the last bin also holds ``max_j``. The code is
    ``min(floor((x - min_j) / (max_j - min_j) * n_bins), n_bins - 1)``.
    A constant column puts every sample in bin 0.

    Each column is first divided by a power of two near its largest
    magnitude. That division is exact (values below about 1e-308 times the
    column's largest magnitude lose digits far below the bin width), so the
    codes are those of the formula above, but ``max_j - min_j`` can no longer overflow: a column
    spanning more than the largest float (e.g. from -1e308 to 1e308) is
    binned like any other instead of landing entirely in bin 0.

    Parameters
    ----------
    values : np.ndarray, shape (n_samples, n_columns)
        Finite float values.
    n_bins : int
        Number of bins per column, at least 2.

    Returns
    -------
    np.ndarray of int64, shape (n_samples, n_columns)
        Bin index of each value, in ``0 .. n_bins - 1``.
    """
    # frexp gives magnitude = m * 2**e with 0.5 <= m < 1 (e = 0 for 0), so
    # after ldexp every value lies in [-1, 1] and every span in [0, 2].
    _, exponent = np.frexp(np.abs(values).max(axis=0))
    values = np.ldexp(values, -exponent)
    lo = values.min(axis=0)
    hi = values.max(axis=0)
    span = hi - lo
    varying = span > 0
    # Constant columns get a unit span so that the division is defined; their
    # offsets are all zero, so every sample lands in bin 0.
    safe_span = np.where(varying, span, 1.0)
    scaled = (values - lo) / safe_span * n_bins
    codes = np.floor(scaled).astype(np.int64)
    return np.clip(codes, 0, n_bins - 1)


def resolve_factor_discrete(
    factors: np.ndarray,
    n_bins: int,
    factor_discrete: bool | Sequence[bool] | np.ndarray | None,
) -> np.ndarray:
    """Decide, per factor, whether it is used by its discrete values.

    Parameters
    ----------
    factors : np.ndarray, shape (n_samples, n_factor)
        Finite factor values.
    n_bins : int
        Bin count; a factor with at most ``n_bins`` distinct values counts as
        discrete when ``factor_discrete`` is None.
    factor_discrete : None, bool or sequence of bool of length n_factor
        None: automatic rule above. A bool applies to every factor. A
        sequence gives one flag per factor.

    Returns
    -------
    np.ndarray of bool, shape (n_factor,)
    """
    n_factor = factors.shape[1]
    if factor_discrete is None:
        return np.array(
            [np.unique(factors[:, k]).size <= n_bins for k in range(n_factor)],
            dtype=bool,
        )
    if isinstance(factor_discrete, (bool, np.bool_)):
        return np.full(n_factor, bool(factor_discrete))
    flags = np.asarray(factor_discrete)
    if flags.dtype != bool or flags.shape != (n_factor,):
        raise ValueError(
            "factor_discrete must be None, a bool, or a sequence of "
            f"{n_factor} bools (one per factor); got {factor_discrete!r} "
            f"(dtype {flags.dtype}, shape {flags.shape}). Pass e.g. "
            f"[True] * {n_factor}, or None to use the automatic rule."
        )
    return flags.copy()


def factor_code_matrix(factors: np.ndarray, n_bins: int, discrete: np.ndarray) -> np.ndarray:
    """Integer codes for the factors.

    Parameters
    ----------
    factors : np.ndarray, shape (n_samples, n_factor)
        Finite factor values.
    n_bins : int
        Number of equal-width bins for the non-discrete factors.
    discrete : np.ndarray of bool, shape (n_factor,)
        Which factors are coded by their distinct values (ranked, 0 for the
        smallest) instead of by equal-width bins.

    Returns
    -------
    np.ndarray of int64, shape (n_samples, n_factor)
    """
    codes = equal_width_codes(factors, n_bins)
    for k in np.flatnonzero(discrete):
        _, inverse = np.unique(factors[:, k], return_inverse=True)
        codes[:, k] = inverse.reshape(-1)
    return codes
