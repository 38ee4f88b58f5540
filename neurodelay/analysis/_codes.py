"""Checks and standardisation of code and factor arrays, shared by the disentanglement metrics.

:mod:`neurodelay.analysis.disentanglement` (correlations),
:mod:`neurodelay.analysis.mutual_info` (MIG) and
:mod:`neurodelay.analysis.predictability` (DCI, SAP) take their ``latents``
and ``factors`` through :func:`_validate_pair` and standardise them here, so a
collapsed (constant) column is handled the same way by every metric.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["COLLAPSE_TOL"]

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
# Standardisation
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


def _correlation(z: np.ndarray, v: np.ndarray, tol: float = COLLAPSE_TOL) -> np.ndarray:
    n = z.shape[0]
    c = _standardize(z, tol).T @ _standardize(v, tol) / n
    return np.clip(c, -1.0, 1.0)

