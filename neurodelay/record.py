"""Traces to labelled xarray Datasets, and netCDF I/O.

Layout: dims ``sample``, ``time`` (ms), ``latent``, ``factor``, ``y``, ``x``.
``frames`` and image traces drop a single channel; vector traces use
``latent`` (or ``<name>_unit`` when their size differs from the first vector
trace's).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from ._files import give_default_mode

__all__ = ["traces_to_dataset", "write_netcdf"]


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x)


def traces_to_dataset(traces: dict, *, dt_ms: float, frames=None, factors=None,
                      factor_names=None) -> xr.Dataset:
    """Build a Dataset from traces of shape (sample, time, ...).

    Parameters
    ----------
    traces : dict of str -> Tensor or array
        One trace per node, (sample, time, ...).
    dt_ms : float
        Step in ms; the ``time`` coordinate is ``step * dt_ms``.
    frames, factors : Tensor, optional
        World frames (sample, time, 1, y, x) and factors (sample, time, factor).
    factor_names : sequence of str, optional
    """
    data_vars = {}
    latent_size = None
    n_t = None
    for name, x in traces.items():
        x = _np(x)
        n_t = x.shape[1]
        rest = x.shape[2:]
        if len(rest) == 1:
            if latent_size is None:
                latent_size = rest[0]
            dims = ("latent",) if rest[0] == latent_size else (f"{name}_unit",)
            data_vars[name] = (("sample", "time", *dims), x,
                               {"long_name": f"trace of node {name}", "units": "1"})
        elif len(rest) == 3:
            y, xx = ("y", "x") if frames is None or _np(frames).shape[-2:] == rest[-2:] \
                else (f"{name}_y", f"{name}_x")
            if rest[0] == 1:
                data_vars[name] = (("sample", "time", y, xx), x[:, :, 0],
                                   {"long_name": f"image trace of node {name}", "units": "1"})
            else:
                data_vars[name] = (("sample", "time", f"{name}_channel", y, xx), x,
                                   {"long_name": f"image trace of node {name}", "units": "1"})
        else:
            dims = tuple(f"{name}_dim{i}" for i in range(len(rest)))
            data_vars[name] = (("sample", "time", *dims), x, {"long_name": f"trace of node {name}"})
    coords = {}
    if frames is not None:
        f = _np(frames)
        n_t = f.shape[1]
        data_vars["frames"] = (("sample", "time", "y", "x"), f[:, :, 0],
                               {"long_name": "stimulus frames (luminance)", "units": "1"})
    if factors is not None:
        fa = _np(factors)
        n_t = fa.shape[1]
        names = list(factor_names) if factor_names is not None else [f"factor{i}" for i in range(fa.shape[-1])]
        coords["factor"] = ("factor", names)
        data_vars["factors"] = (("sample", "time", "factor"), fa,
                                {"long_name": "generative factors of the world", "units": "1"})
    if n_t is not None:
        coords["time"] = ("time", np.arange(n_t) * float(dt_ms),
                          {"units": "ms", "long_name": "time since sequence start"})
    ds = xr.Dataset(data_vars, coords=coords)
    if "sample" in ds.dims:
        ds = ds.assign_coords(sample=np.arange(ds.sizes["sample"]))
    ds.attrs["dt_ms"] = float(dt_ms)
    return ds


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4")
        give_default_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
