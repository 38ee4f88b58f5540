"""``assert_results_equal``: two results Datasets (or results.nc files) hold the same numbers."""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable

import numpy as np
import xarray as xr

__all__ = ["TIMING_ATTRS", "assert_results_equal"]

#: Attributes that measure time, and so differ between runs that compute the same numbers.
TIMING_ATTRS: tuple[str, ...] = ("train_steps_per_second", "train_seconds")


def _dataset(x, arg: str) -> xr.Dataset:
    if isinstance(x, xr.Dataset):
        return x
    if isinstance(x, (str, os.PathLike)):
        return xr.load_dataset(x)
    raise TypeError(f"{arg} must be an xarray.Dataset or the path of a results.nc file, got {type(x).__name__}.")


def _short(value, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 5] + " ...]"


def _is_numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "biufc"


def _differences(a: np.ndarray, b: np.ndarray, exact: bool, rtol: float, atol: float) -> np.ndarray:
    """Where a and b differ (NaN equals NaN), as a boolean array."""
    if not (_is_numeric(a) and _is_numeric(b)):
        return np.asarray(a != b)
    if exact:
        same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind in "fc" else a == b
    else:
        same = np.isclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
    return ~np.asarray(same)


def _py(value):
    """A numpy scalar as the Python value it holds (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _where(index: tuple, dims: tuple, coords) -> str:
    parts = []
    for dim, i in zip(dims, index):
        label = _py(coords[dim].values[i]) if dim in coords else None
        parts.append(f"{dim}={i}" + (f" ({dim} {label!r})" if label is not None else ""))
    return ", ".join(parts) if parts else "the scalar"


def _compare_values(what: str, va: xr.Variable, vb: xr.Variable, coords, exact: bool, rtol: float,
                    atol: float) -> str | None:
    """None when the two variables hold the same values, else a sentence saying how they differ."""
    if va.dims != vb.dims:
        return f"{what} has dims {va.dims} in a and {vb.dims} in b"
    if va.shape != vb.shape:
        return f"{what} has shape {va.shape} in a and {vb.shape} in b"
    if exact and va.dtype != vb.dtype:
        return f"{what} has dtype {va.dtype} in a and {vb.dtype} in b (compared exactly)"
    a, b = np.asarray(va.values), np.asarray(vb.values)
    if _is_numeric(a) != _is_numeric(b):
        return f"{what} has dtype {va.dtype} in a and {vb.dtype} in b"
    differ = _differences(a, b, exact, rtol, atol)
    n = int(differ.sum())
    if not n:
        return None
    how = "compared exactly" if exact else f"rtol={rtol:g}, atol={atol:g}"
    first = tuple(int(i) for i in np.argwhere(differ)[0]) if differ.ndim else ()
    text = f"{what}: {n} of {differ.size} values differ ({how})"
    if _is_numeric(a) and a.dtype.kind != "b":
        fa, fb = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64), b.astype(
            np.complex128 if b.dtype.kind == "c" else np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            gap = np.where(differ, np.abs(fa - fb), 0.0)
        finite = np.isfinite(gap)
        if finite[differ].any():
            gap = np.where(finite, gap, -1.0)
            worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(gap)), gap.shape))
            size = float(gap[worst])
            scale = float(np.abs(fb[worst]))
            rel = f", relative {size / scale:.3g}" if scale > 0 else ""
            text += (f"; largest difference {size:.3g}{rel} at {_where(worst, va.dims, coords)}: "
                     f"{_py(fa[worst])!r} in a, {_py(fb[worst])!r} in b")
        n_odd = int((differ & ~finite).sum())
        if n_odd:
            text += f"; {n_odd} differ in NaN or infinity"
            if not finite[differ].any():
                text += f", first at {_where(first, va.dims, coords)}: {_py(a[first])!r} in a, {_py(b[first])!r} in b"
    else:
        text += f"; first at {_where(first, va.dims, coords)}: {_py(a[first])!r} in a, {_py(b[first])!r} in b"
    return text


def _same_attr(x, y) -> bool:
    """Equal attribute values: numbers equal whatever their type (NaN equal to NaN), text and arrays elementwise."""
    ax, ay = np.asarray(x), np.asarray(y)
    if ax.shape != ay.shape or _is_numeric(ax) != _is_numeric(ay):
        return False
    if ax.dtype.kind in "fc" or ay.dtype.kind in "fc":
        return bool(np.array_equal(ax, ay, equal_nan=True))
    return bool(np.all(ax == ay))


def _compare_attrs(what: str, a: dict, b: dict, ignore: frozenset) -> str | None:
    keys_a, keys_b = set(a) - ignore, set(b) - ignore
    if keys_a != keys_b:
        only_a, only_b = sorted(keys_a - keys_b), sorted(keys_b - keys_a)
        return f"{what} attributes differ: only in a {only_a}, only in b {only_b}"
    for key in sorted(keys_a):
        if not _same_attr(a[key], b[key]):
            return f"{what} attribute {key!r} differs: {_short(_py(a[key]))} in a, {_short(_py(b[key]))} in b"
    return None


def assert_results_equal(a, b, *, exact: bool = True, rtol: float = 1e-7, atol: float = 0.0,
                         check_attrs: bool = True, ignore_attrs: Iterable[str] = TIMING_ATTRS) -> None:
    """Assert that two results hold the same dimensions, coordinates, variables and attributes.

    Parameters
    ----------
    a, b : xarray.Dataset or path
        Results Datasets, or paths of ``results.nc`` (or ``sweep.nc``) files.
    exact : bool
        Compare values bit for bit (NaN equals NaN), dtypes included. False:
        numbers within ``atol + rtol * |b|`` are equal (``numpy.isclose``)
        and dtypes may differ.
    rtol, atol : float
        Tolerances when ``exact`` is False.
    check_attrs : bool
        Compare the Dataset's and every variable's attributes too (the
        study's YAML text, seeds, ``units``, ``long_name`` ...), except
        those named in ``ignore_attrs``.
    ignore_attrs : iterable of str
        Attributes not compared, on the Dataset and on every variable. By
        default :data:`TIMING_ATTRS`, the training time and speed, which
        differ between runs that compute the same numbers.

    Raises
    ------
    AssertionError
        Naming the first difference: a dimension, a variable missing from
        one side, the first coordinate or data variable (in ``a``'s order,
        coordinates first) whose values differ, with how many values differ
        and the size and place of the largest difference, or an attribute.
    """
    if not isinstance(exact, bool) or not isinstance(check_attrs, bool):
        raise TypeError(f"exact and check_attrs must be True or False, got exact={exact!r}, "
                        f"check_attrs={check_attrs!r}.")
    for arg, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf"):
            raise ValueError(f"{arg} must be a finite number >= 0, got {value!r}.")
    if isinstance(ignore_attrs, str):
        raise TypeError(f"ignore_attrs must be a collection of attribute names, got the string {ignore_attrs!r}; "
                        f"write ignore_attrs=[{ignore_attrs!r}].")
    ignore = frozenset(ignore_attrs)
    da, db = _dataset(a, "a"), _dataset(b, "b")
    problems = _first_difference(da, db, exact, float(rtol), float(atol), check_attrs, ignore)
    if problems:
        raise AssertionError(f"results differ: {problems}")


def _first_difference(da: xr.Dataset, db: xr.Dataset, exact: bool, rtol: float, atol: float, check_attrs: bool,
                      ignore: frozenset) -> str | None:
    sizes_a, sizes_b = dict(da.sizes), dict(db.sizes)
    if sizes_a != sizes_b:
        differ = sorted(set(sizes_a) | set(sizes_b), key=str)
        parts = [f"{d}: {sizes_a.get(d, 'absent')} in a, {sizes_b.get(d, 'absent')} in b"
                 for d in differ if sizes_a.get(d) != sizes_b.get(d)]
        return "dimensions differ: " + "; ".join(parts)
    for kind, names_a, names_b in (("coordinates", list(da.coords), list(db.coords)),
                                   ("data variables", list(da.data_vars), list(db.data_vars))):
        if set(names_a) != set(names_b):
            only_a = sorted(set(names_a) - set(names_b), key=str)
            only_b = sorted(set(names_b) - set(names_a), key=str)
            return f"{kind} differ: only in a {only_a}, only in b {only_b}"
    for kind, names in (("coordinate", list(da.coords)), ("data variable", list(da.data_vars))):
        for name in names:
            what = f"{kind} {name!r}"
            problem = _compare_values(what, da[name].variable, db[name].variable, da.coords, exact, rtol, atol)
            if problem is None and check_attrs:
                problem = _compare_attrs(what, da[name].attrs, db[name].attrs, ignore)
            if problem:
                return problem
    if check_attrs:
        return _compare_attrs("the Dataset's", da.attrs, db.attrs, ignore)
    return None
