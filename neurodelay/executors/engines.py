"""Choosing the engine an executor name names (:func:`make_executor`)."""

from __future__ import annotations

from pathlib import Path

from ..study import ExecutorSettings, parse_executor
from .dask import DaskExecutor
from .local import LocalExecutor
from .processes import ProcessExecutor
from .slurm import SlurmExecutor

__all__ = ["make_executor"]


def make_executor(settings: ExecutorSettings, folder: Path):
    """The executor named by ``settings.name``."""
    kind, arg = parse_executor(settings.name)
    if kind == "local":
        return LocalExecutor()
    if kind == "processes":
        return ProcessExecutor(int(arg))
    if kind == "dask":
        return DaskExecutor(arg)
    return SlurmExecutor(settings, folder, cluster="local" if arg == "local" else "slurm")
