"""Combining a sweep's points: their ``results.nc`` in one Dataset with one dimension per swept parameter."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from ..study import Point, Study, SweepDim, expand, study_to_yaml, sweep_dims
from ..study.points import values_coordinate

__all__ = ["combined_is_current", "combine", "combined_dims"]


def _open(path: Path) -> xr.Dataset:
    """Open a point's results lazily (dask) when dask is installed, else load it."""
    try:
        import dask  # noqa: F401
    except ImportError:
        return xr.load_dataset(path)
    return xr.open_dataset(path, chunks={})


def combine(study: Study, out_dir, points: list[Point] | None = None) -> xr.Dataset | None:
    """Combine the points' ``results.nc`` into one Dataset with one dimension per swept parameter.

    Variables that are equal at every point (the evaluation frames, say) keep
    their shape; the others, and every scalar (metric) of a point, gain the
    sweep dimensions. Points without results (failed or not run) are NaN.

    Returns
    -------
    xarray.Dataset or None
        None when no point has results.
    """
    out_dir = Path(out_dir)
    points = expand(study) if points is None else points
    dims = sweep_dims(study)
    found = [(p, out_dir / p.name / "results.nc") for p in points]
    found = [(p, f) for p, f in found if f.exists()]
    if not found:
        return None
    parts = _with_every_variable([_open(f) for _, f in found])
    taken = set(parts[0].variables) | set(parts[0].dims)
    renamed = _avoid(dims, taken)
    index = pd.Index([p.index for p, _ in found], name="point")
    combined = xr.concat(parts, dim=index, data_vars="different", coords="different", compat="equals",
                         join="outer", combine_attrs="drop_conflicts")
    # A point's scalars are its metrics: they keep the sweep dimensions even where every point
    # (or the only one) has the same value, so that tables and figures find them.
    scalars = {n: combined[n].expand_dims(point=index) for n, v in parts[0].data_vars.items()
               if v.ndim == 0 and "point" not in combined[n].dims}
    if scalars:
        combined = combined.assign(scalars)
    combined = combined.assign_coords(
        {r.name: ("point", [d.coordinate()[p.position[d.name]] for p, _ in found]) for d, r in zip(dims, renamed)})
    dims = renamed
    names = [d.name for d in dims]
    if len(names) == 1:
        combined = combined.swap_dims(point=names[0]).drop_vars("point")
    else:
        combined = combined.set_index(point=names).unstack("point")
    combined = combined.reindex({d.name: d.coordinate() for d in dims})
    combined = combined.transpose(*names, ...)
    for v in combined.variables.values():
        # An integer variable that became float to hold NaN (points whose dimension is shorter,
        # e.g. fewer latents) must not be written back with its integer encoding.
        enc = v.encoding.get("dtype")
        if enc is not None and np.dtype(enc).kind in "biu" and v.dtype.kind == "f":
            v.encoding.pop("dtype")
            v.encoding.pop("_FillValue", None)
    for d in dims:
        attrs = {"long_name": f"swept {' and '.join(d.paths)}", "path": ", ".join(d.paths)}
        combined[d.name].attrs.update(attrs)
        if d.zipped:
            for path, cname, vals in zip(d.paths, d.names, d.values):
                combined = combined.assign_coords({cname: (d.name, values_coordinate(vals))})
                combined[cname].attrs.update({"long_name": f"swept {path}", "path": path})
    status = {p.index: "ok" for p, _ in found}
    failed = [p.name for p in points if p.index not in status]
    keep = {k: v for k, v in combined.attrs.items() if k in ("neurodelay_version", "torch_version", "Conventions")}
    combined.attrs = {
        **keep,
        "title": f"neurodelay sweep {study.name}",
        "study": study_to_yaml(study),
        "swept_paths": yaml.safe_dump({d.name: list(d.paths) for d in dims}, sort_keys=False),
        "swept_coordinates": yaml.safe_dump({c: p for d in dims for c, p in zip(d.names, d.paths)},
                                            sort_keys=False),
        "n_points": len(points),
        "n_points_with_results": len(found),
        "points_without_results": yaml.safe_dump(failed) if failed else "[]",
    }
    return combined



def combined_is_current(study: Study, out_dir, points: list[Point] | None = None) -> bool:
    """Whether ``out_dir/sweep.nc`` already combines the points' results as they are now.

    It does when it was written for this very study (its ``study`` attribute), with as many points and
    points with results as there are now, after the last of their ``results.nc`` was written. A sweep
    resumed with nothing left to run then keeps its ``sweep.nc`` instead of combining every point again
    (for 200 points with their frames and reconstructions: 6 GB, 50 min and 9.5 GB of memory).
    """
    out_dir = Path(out_dir)
    path = out_dir / "sweep.nc"
    if not path.exists():
        return False
    points = expand(study) if points is None else points
    results = [out_dir / p.name / "results.nc" for p in points]
    results = [f for f in results if f.exists()]
    try:
        written = path.stat().st_mtime
        if not results or any(f.stat().st_mtime > written for f in results):
            return False
        with xr.open_dataset(path) as old:
            attrs = dict(old.attrs)
    except (OSError, ValueError):  # unreadable: combine again
        return False
    return (attrs.get("study") == study_to_yaml(study) and int(attrs.get("n_points", -1)) == len(points)
            and int(attrs.get("n_points_with_results", -1)) == len(results))


def _with_every_variable(parts: list[xr.Dataset]) -> list[xr.Dataset]:
    """Give every point every variable: NaN where a point lacks one.

    Points of one sweep can record different variables (a Gaussian encoder
    records ``enc_mu`` and ``enc_logvar``, a deterministic one does not);
    concatenation needs each variable at every point.
    """
    templates: dict[str, xr.DataArray] = {}
    coord_templates: dict[str, xr.DataArray] = {}
    for ds in parts:
        for name, var in ds.data_vars.items():
            templates.setdefault(name, var)
        for name, coord in ds.coords.items():
            coord_templates.setdefault(name, coord.variable)
    out = []
    for ds in parts:
        own_dims = set(ds.dims)
        missing = [n for n in templates if n not in ds.data_vars]
        if missing:
            new = {}
            for n in missing:
                t = templates[n]
                shape = tuple(ds.sizes.get(d, t.sizes[d]) for d in t.dims)
                coords = {d: t[d] for d in t.dims if d not in ds.dims and d in t.coords}
                new[n] = xr.DataArray(np.full(shape, np.nan), dims=t.dims, coords=coords, attrs=t.attrs)
            ds = ds.assign(new)
        # Coordinates along a dimension this point lacks (the learned delays' labels, say) are taken as
        # they are elsewhere, so that every point has every coordinate.
        extra = {n: c for n, c in coord_templates.items()
                 if n not in ds.coords and c.dims and not set(c.dims) & own_dims and set(c.dims) <= set(ds.dims)}
        if extra:
            ds = ds.assign_coords(extra)
        out.append(ds)
    return out


def _avoid(dims: list[SweepDim], taken: set[str]) -> list[SweepDim]:
    """Rename sweep dimensions (and zipped coordinates) that clash with names in the results."""
    def name(n):
        while n in taken:
            n = f"swept_{n}"
        return n

    return [dataclasses.replace(d, name=name(d.name), names=tuple(name(n) for n in d.names)) for d in dims]


def combined_dims(study: Study, combined: xr.Dataset) -> list[SweepDim]:
    """The sweep's dimensions as named in a combined Dataset (see :func:`combine`)."""
    dims = sweep_dims(study)
    by_paths = {tuple(v): k for k, v in (yaml.safe_load(combined.attrs.get("swept_paths", "")) or {}).items()}
    coords = {p: c for c, p in (yaml.safe_load(combined.attrs.get("swept_coordinates", "")) or {}).items()}
    return [dataclasses.replace(d, name=by_paths.get(d.paths, d.name),
                                names=tuple(coords.get(p, n) for p, n in zip(d.paths, d.names))) for d in dims]
