"""Traces to labelled xarray Datasets, and netCDF I/O.

Layout: dims ``sample``, ``time`` (ms), ``latent``, ``factor``, ``y``, ``x``.
``frames`` and image traces drop a single channel; vector traces use
``latent`` (or ``<name>_unit`` when their size differs from the first vector
trace's).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import xarray as xr
import yaml

from ._util.files import atomic_file

__all__ = ["traces_to_dataset", "module_dataset", "variable_name", "RESERVED_NAMES", "write_netcdf",
           "netcdf_attr_value"]


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x)


def traces_to_dataset(traces: dict, *, dt_ms: float, frames=None, factors=None,
                      factor_names=None) -> xr.Dataset:
    """Build a Dataset from traces of shape (sample, time, ...).

    Torch tensors are stored as float32 whatever their dtype (results are
    float32; float64 traces are rounded); numpy arrays keep their dtype.

    Parameters
    ----------
    traces : dict of str -> Tensor or array
        One trace per node, (sample, time, ...), all with the same sample
        and time sizes.
    dt_ms : float
        Step in ms, a finite number > 0; the ``time`` coordinate is
        ``step * dt_ms``.
    frames, factors : Tensor, optional
        World frames (sample, time, 1, y, x) and factors (sample, time,
        factor), with the traces' sample and time sizes.
    factor_names : sequence of str, optional
        One name per factor (default ``factor0``, ``factor1``, ...).

    Raises
    ------
    TypeError
        ``traces`` is not a dict, or ``factor_names`` is a single string.
    ValueError
        Bad ``dt_ms``; a trace, ``frames`` or ``factors`` of the wrong rank;
        sample or time sizes that disagree; a ``factor_names`` of the wrong
        length.
    """
    traces, frames, factors, factor_names = _checked_inputs(traces, dt_ms, frames, factors, factor_names)
    data_vars = {}
    latent_size = None
    n_t = None
    for name, x in traces.items():
        n_t = x.shape[1]
        rest = x.shape[2:]
        if len(rest) == 1:
            if latent_size is None:
                latent_size = rest[0]
            dims = ("latent",) if rest[0] == latent_size else (f"{name}_unit",)
            data_vars[name] = (("sample", "time", *dims), x,
                               {"long_name": f"trace of node {name}", "units": "1"})
        elif len(rest) == 3:
            y, xx = ("y", "x") if frames is None or frames.shape[-2:] == rest[-2:] \
                else (f"{name}_y", f"{name}_x")
            if rest[0] == 1:
                data_vars[name] = (("sample", "time", y, xx), x[:, :, 0],
                                   {"long_name": f"image trace of node {name}", "units": "1"})
            else:
                data_vars[name] = (("sample", "time", f"{name}_channel", y, xx), x,
                                   {"long_name": f"image trace of node {name}", "units": "1"})
        else:
            dims = tuple(f"{name}_dim{i}" for i in range(len(rest)))
            data_vars[name] = (("sample", "time", *dims), x, {"long_name": f"trace of node {name}", "units": "1"})
    coords = {}
    if frames is not None:
        f = frames
        n_t = f.shape[1]
        data_vars["frames"] = (("sample", "time", "y", "x"), f[:, :, 0],
                               {"long_name": "stimulus frames (luminance)", "units": "1"})
    if factors is not None:
        fa = factors
        n_t = fa.shape[1]
        names = list(factor_names) if factor_names is not None else [f"factor{i}" for i in range(fa.shape[-1])]
        coords["factor"] = ("factor", names)
        data_vars["factors"] = (("sample", "time", "factor"), fa,
                                {"long_name": "generative factors of the world", "units": "1",
                                 "comment": "positions in [0, 1] (x the column, y the row): blob_x, blob_y in "
                                            "image widths; circle_x, circle_y in circle units (the centre "
                                            "sits at 0.125 + 0.75 v image widths); circle_vx, circle_vy in "
                                            "circle units per frame"})
    if n_t is not None:
        coords["time"] = ("time", np.arange(n_t) * float(dt_ms),
                          {"units": "ms", "long_name": "time since sequence start"})
    ds = xr.Dataset(data_vars, coords=coords)
    return _index_coords(ds).assign_attrs(dt_ms=float(dt_ms))


def _index_coords(ds: xr.Dataset) -> xr.Dataset:
    """Integer coordinates with CF ``long_name`` and ``units`` for ``sample``, ``latent``, ``y``, ``x``."""
    described = {"sample": "evaluation sequence", "latent": "latent unit", "y": "pixel row (0 = top)",
                 "x": "pixel column (0 = left)"}
    coords = {d: (d, np.arange(ds.sizes[d]), {"long_name": text, "units": "1"})
              for d, text in described.items() if d in ds.dims}
    ds = ds.assign_coords(coords)
    if "factor" in ds.coords:
        ds["factor"].attrs["long_name"] = "generative factor of the world"
    return ds


def _checked_inputs(traces, dt_ms, frames, factors, factor_names):
    """Validate the arguments of :func:`traces_to_dataset`; return traces, frames, factors as arrays."""
    if not isinstance(traces, Mapping):
        raise TypeError(f"traces must be a dict from trace name to a (sample, time, ...) tensor, got "
                        f"{type(traces).__name__}; use e.g. traces={{'z': z}}.")
    if isinstance(dt_ms, (bool, np.bool_)) or not isinstance(dt_ms, numbers.Real) or not math.isfinite(dt_ms) \
            or dt_ms <= 0:
        raise ValueError(f"dt_ms must be a positive finite number of ms (the simulation step), got {dt_ms!r}; "
                         f"use e.g. dt_ms=10.")
    arrays = {}
    for name, x in traces.items():
        x = _np(x)
        if x.ndim < 2:
            raise ValueError(f"trace {name!r} must have shape (sample, time, ...), got shape {x.shape}; "
                             f"add the missing sample or time axis.")
        arrays[name] = x
    sizes = {f"trace {name!r}": x.shape[:2] for name, x in arrays.items()}
    if frames is not None:
        frames = _np(frames)
        if frames.ndim != 5 or frames.shape[2] != 1:
            raise ValueError(f"frames must have shape (sample, time, 1, y, x), got shape {frames.shape}.")
        sizes["frames"] = frames.shape[:2]
    if factors is not None:
        factors = _np(factors)
        if factors.ndim != 3:
            raise ValueError(f"factors must have shape (sample, time, factor), got shape {factors.shape}.")
        sizes["factors"] = factors.shape[:2]
        if factor_names is not None:
            if isinstance(factor_names, str):
                raise TypeError(f"factor_names must be a list of names, one per factor, got the string "
                                f"{factor_names!r}; use e.g. factor_names=[{factor_names!r}].")
            factor_names = list(factor_names)
            if len(factor_names) != factors.shape[-1]:
                raise ValueError(f"factor_names must name each of the {factors.shape[-1]} factors, got "
                                 f"{len(factor_names)} names {factor_names}.")
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{k} {tuple(v)}" for k, v in sizes.items())
        raise ValueError(f"every trace, frames and factors must have the same (sample, time) sizes, got {listed}; "
                         f"pass the traces of one run on one episode.")
    return arrays, frames, factors, factor_names


#: Names a node trace cannot take in a results dataset (it becomes ``node_<name>``).
RESERVED_NAMES = frozenset({"sample", "time", "latent", "factor", "y", "x", "step", "frames", "factors",
                            "reconstruction", "reconstruction_mse", "reconstruction_mse_by_time",
                            # learned delays (see neurodelay.results.add_learned_delays)
                            "delay", "delay_edge", "delay_edge_index", "delay_channel", "delay_ms",
                            "delay_initial_ms", "delay_min_ms", "delay_max_ms", "delay_ms_history"})


def variable_name(trace: str, taken=()) -> str:
    """The dataset variable of a node trace: its name, or ``node_<name>`` if that is reserved.

    A trace named like a dimension (``x``, ``time``, ...), like a results
    variable (``frames``, ``reconstruction``, ...), or starting with
    ``loss_`` is prefixed with ``node_`` (repeatedly, until the name is free).
    """
    name = trace
    while name in RESERVED_NAMES or name.startswith("loss_") or name in taken:
        name = f"node_{name}"
    return name


def module_dataset(module, traces: dict, episode, *, dt_ms: float) -> tuple[xr.Dataset, dict[str, str]]:
    """The Dataset of a circuit module's traces on an episode, and the trace -> variable names.

    Traces named like the dataset's own variables or dimensions are renamed
    by :func:`variable_name`; every trace variable has a ``node`` attribute
    (the trace's name), node traces also ``kind`` and ``first_valid_step``.
    """
    names = {k: variable_name(k, taken=set(traces) - {k}) for k in traces}
    ds = traces_to_dataset({names[k]: v for k, v in traces.items()}, dt_ms=dt_ms,
                           frames=episode.frames.detach().cpu(), factors=episode.factors.detach().cpu(),
                           factor_names=episode.factor_names)
    specs = module.circuit.nodes
    for trace, var in names.items():
        node = trace if trace in specs else trace.rsplit("_", 1)[0]
        ds[var].attrs["node"] = trace
        if trace in specs:
            ds[var].attrs["kind"] = type(specs[trace]).kind
            ds[var].attrs["first_valid_step"] = int(module.plan.valid_from[trace])
        elif node in specs:
            ds[var].attrs["long_name"] = f"{trace.rsplit('_', 1)[1]} of node {node}"
    return ds, names


def netcdf_attr_value(value):
    """``value`` as a netCDF attribute can hold it.

    Strings, numbers, and lists or arrays of numbers (or of strings) are kept;
    booleans become ints 0/1 (arrays of them int8); None, dicts, sets and
    other values become YAML text (``null``, ``{a: 1}``), as DESIGN.md asks.
    """
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, bytes)) or (isinstance(value, (numbers.Real, np.number))
                                           and not isinstance(value, (complex, np.complexfloating))):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind == "b":
        return value.astype(np.int8)
    if isinstance(value, (list, tuple)) and (
            all(isinstance(v, (numbers.Real, np.number)) and not isinstance(v, (bool, np.bool_)) for v in value)
            or all(isinstance(v, str) for v in value)):
        return value
    text = yaml.safe_dump(_plain(value), sort_keys=False, default_flow_style=True).strip()
    return text.removesuffix("\n...").strip()  # a plain scalar (None) ends its document with "..."


def _plain(value):
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return [_plain(v) for v in (sorted(value, key=str) if isinstance(value, (set, frozenset)) else value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _storable(ds: xr.Dataset) -> xr.Dataset:
    """A shallow copy of ``ds`` that netCDF4 can store and CF readers accept (``ds`` is not changed).

    Attributes go through :func:`netcdf_attr_value`; float16 variables are
    stored as float32 (exactly); a float dimension coordinate without NaN
    gets no ``_FillValue`` (CF: coordinates have no missing values).
    """
    out = ds.copy(deep=False)
    out.attrs = {k: netcdf_attr_value(v) for k, v in ds.attrs.items()}
    for name, var in out.variables.items():
        var.attrs = {k: netcdf_attr_value(v) for k, v in var.attrs.items()}
        if var.dtype == np.float16 and "dtype" not in var.encoding:
            var.encoding["dtype"] = np.dtype(np.float32)
        if var.dims == (name,) and var.dtype.kind == "f" and not np.isnan(var.values).any():
            fill = var.encoding.get("_FillValue")
            if fill is None or (isinstance(fill, (float, np.floating)) and np.isnan(fill)):
                var.encoding["_FillValue"] = None
    return out


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` atomically (temporary file in the same folder, then rename).

    What netCDF cannot hold is converted in the file only (``ds`` itself is
    not changed): booleans, None and dicts in attributes (see
    :func:`netcdf_attr_value`), float16 data (stored as float32). Float
    dimension coordinates (``time``, ...) are written without a
    ``_FillValue``.
    """
    path = Path(path)
    ds = _storable(ds)
    with atomic_file(path, None) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")
    return path
