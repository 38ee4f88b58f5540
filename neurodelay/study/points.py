"""The points of a study's sweep: one dimension per swept path (one per ``zip:`` group), row-major.

Each point has its values (path -> value), its position along each
dimension and a folder name made from its values (``gamma=0.5``).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass

import numpy as np

from .spec import Study

__all__ = ["SweepDim", "Point", "sweep_dims", "expand", "values_coordinate", "MAX_POINT_NAME", "RESERVED_DIMS"]


#: Names a sweep dimension may not take (result dims and variables).
RESERVED_DIMS = {"sample", "time", "latent", "factor", "y", "x", "step", "frames", "factors",
             "reconstruction", "point"}


@dataclass(frozen=True)
class SweepDim:
    """One dimension of a sweep.

    Attributes
    ----------
    name : str
        Dimension name in ``sweep.nc`` (the shortest unambiguous tail of the
        path, e.g. ``gamma``; ``zip``/``zip0``... for zip groups).
    paths : tuple of str
        The swept paths (one for a grid dimension, several for a zip group).
    names : tuple of str
        Coordinate name of each path (equal to ``name`` for a grid dimension).
    values : tuple of tuple
        For each path, its values along the dimension.
    zipped : bool
        Whether this is a zip group.
    """

    name: str
    paths: tuple[str, ...]
    names: tuple[str, ...]
    values: tuple[tuple, ...]
    zipped: bool = False

    @property
    def size(self) -> int:
        """Number of values along the dimension."""
        return len(self.values[0])

    def coordinate(self) -> np.ndarray:
        """The dimension's index values in ``sweep.nc``."""
        if self.zipped:
            return np.arange(self.size)
        return values_coordinate(self.values[0])


@dataclass(frozen=True)
class Point:
    """One point of a sweep.

    Attributes
    ----------
    index : int
        Position in :func:`expand`'s order (row-major over the dimensions).
    values : dict of str -> value
        Path -> value for this point.
    position : dict of str -> int
        Dimension name -> index along it.
    name : str
        The point's folder name.
    """

    index: int
    values: dict
    position: dict
    name: str


def _tail_names(paths: list[str], taken: set[str]) -> list[str]:
    parts = [[re.sub(r"\W", "", t) or "p" for t in re.split(r"[.\[\]]+", p) if t] for p in paths]
    depth = [1] * len(paths)
    while True:
        names = ["_".join(pp[-d:]) for pp, d in zip(parts, depth)]
        clash = [i for i, n in enumerate(names)
                 if n in taken or names.count(n) > 1 or (n and n[0].isdigit())]
        if not clash:
            return names
        grew = False
        for i in clash:
            if depth[i] < len(parts[i]):
                depth[i] += 1
                grew = True
        if not grew:
            return [f"{n}_{i}" for i, n in enumerate(names)]


def sweep_dims(study: Study) -> list[SweepDim]:
    """The dimensions of a study's sweep (grid dimensions first, then zip groups)."""
    sweep = study.sweep
    if sweep is None:
        return []
    paths = sweep.paths
    names = dict(zip(paths, _tail_names(paths, RESERVED_DIMS | {"zip"} | {f"zip{i}" for i in range(9)})))
    dims = [SweepDim(names[p], (p,), (names[p],), (tuple(v),)) for p, v in sweep.grid]
    for gi, group in enumerate(sweep.zip):
        dname = "zip" if len(sweep.zip) == 1 else f"zip{gi}"
        dims.append(SweepDim(dname, tuple(p for p, _ in group), tuple(names[p] for p, _ in group),
                             tuple(tuple(v) for _, v in group), zipped=True))
    return dims


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(_fmt(v) for v in value)
    return str(value)


#: The longest point folder name; longer ones keep their start and a hash of the whole (a folder name may have
#: at most 255 bytes, and files such as ``.results.nc.XXXXXXXX.tmp`` go inside it).
MAX_POINT_NAME = 200


def _folder(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)
    if len(name) > MAX_POINT_NAME:
        digest = hashlib.sha1(name.encode("ascii")).hexdigest()[:12]
        name = f"{name[:MAX_POINT_NAME - 13]}~{digest}"
    return name


def expand(study: Study) -> list[Point]:
    """The points of a study's sweep, row-major (the last dimension varies fastest)."""
    dims = sweep_dims(study)
    if not dims:
        return []
    points, used = [], set()
    for index, combo in enumerate(itertools.product(*(range(d.size) for d in dims))):
        values, parts = {}, []
        for d, i in zip(dims, combo):
            for path, name, vals in zip(d.paths, d.names, d.values):
                values[path] = vals[i]
                parts.append(f"{name}={_fmt(vals[i])}")
        name = _folder(",".join(parts))
        if name in used or name in ("", ".", ".."):
            name = f"{name}#{index}" if name else f"point{index}"
            name = _folder(name)
        used.add(name)
        points.append(Point(index, values, {d.name: i for d, i in zip(dims, combo)}, name))
    return points



def values_coordinate(values) -> np.ndarray:
    """Swept values as a coordinate: numbers stay numbers (floats if any is one), text stays text,
    anything else (lists, booleans, None, mixtures) becomes its text form."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if all(-2**63 <= v < 2**63 for v in values):
            return np.asarray(values, dtype=np.int64)
        if all(0 <= v < 2**64 for v in values):  # seeds reach 2**64 - 1
            return np.asarray(values, dtype=np.uint64)
        return np.asarray([_fmt(v) for v in values])
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.float64)
    if all(isinstance(v, str) for v in values):
        return np.asarray(values)
    return np.asarray([_fmt(v) for v in values])


