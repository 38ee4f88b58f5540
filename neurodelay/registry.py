"""The analysis registry: analyses a study can name in its ``analyses:`` list.

An analysis is a function ``fn(results, ctx) -> xarray.Dataset | None``:

* ``results`` is the run's evaluation Dataset (frames, reconstruction, node
  traces, factors, loss histories; see ``docs/study-schema.md``);
* ``ctx`` is an :class:`AnalysisContext`: the study, the trained circuit
  module, the world, the device, and :meth:`AnalysisContext.save_figure` for
  figures that go into ``figures/`` and the report.

Variables of the returned Dataset are merged into ``results.nc`` (their
names must not clash with existing ones). Register with the decorator::

    from neurodelay.registry import register

    @register("lag")
    def lag(results, ctx):
        ...

Modules under ``neurodelay/analysis/`` are imported by :func:`available`, so
an analysis defined there is registered without further wiring: that lookup
by name is the one way the layers below the analyses (the study's checks of
its ``analyses:`` names, the pipeline that runs them) reach them, so that
``neurodelay.analysis`` may read results and never the pipeline.
``neurodelay.analysis.registry`` names this module too.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ._util.figures import save_figure

__all__ = ["ANALYSES", "register", "available", "AnalysisContext"]

#: Registered analyses by name.
ANALYSES: dict[str, Callable[..., Any]] = {}


def register(name: str):
    """Register the decorated function as the analysis ``name``.

    A function with the same qualified name as the one registered (the
    same module imported again, say) replaces it.

    Raises
    ------
    ValueError
        If another function (another qualified name) is already
        registered under ``name``.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"analysis name must be an identifier, got {name!r}.")

    def decorate(fn):
        old = ANALYSES.get(name)
        if old is not None and old is not fn and getattr(old, "__qualname__", None) != fn.__qualname__:
            raise ValueError(f"analysis {name!r} is already registered ({old.__module__}.{old.__qualname__}).")
        ANALYSES[name] = fn
        return fn

    return decorate


#: The modules of ``neurodelay.analysis`` found on disk by the first :func:`available` of this process.
_DISCOVERED: list[str] | None = None


def available() -> dict[str, Callable[..., Any]]:
    """Import the modules of ``neurodelay.analysis`` and return the registered analyses.

    The package's folder is listed once per process: a long sweep does not import a module added to the
    installed package while it runs (whose imports would meet the modules it already holds, older than the
    file: a sweep of 2026-12-07 failed every point from the moment a new analysis module appeared). Analyses
    registered later with :func:`register` are returned all the same.
    """
    global _DISCOVERED
    if _DISCOVERED is None:
        package = importlib.import_module("neurodelay.analysis")
        _DISCOVERED = [f"neurodelay.analysis.{info.name}" for info in pkgutil.iter_modules(package.__path__)
                       if not info.name.startswith("_") and info.name != "registry"]
    for name in _DISCOVERED:
        importlib.import_module(name)
    return dict(ANALYSES)


@dataclass
class AnalysisContext:
    """What an analysis may use besides the results Dataset.

    Attributes
    ----------
    study : Study
        The (point) study being run.
    circuit : Circuit
        The circuit spec on the study's time grid.
    module : CircuitModule
        The trained circuit (evaluation mode, on ``device``).
    world : world spec
        The stimulus world (``world.sample(n, seed=..., device=...)``).
    device : str
        The torch device of the run.
    out_dir : Path
        The run's output folder.
    figures : list of (Path, str)
        Figures saved so far with their captions (for the report).
    """

    study: Any
    circuit: Any
    module: Any
    world: Any
    device: str
    out_dir: Path
    figures: list = field(default_factory=list)

    @property
    def figures_dir(self) -> Path:
        """``<out_dir>/figures``."""
        return self.out_dir / "figures"

    def save_figure(self, fig, name: str, caption: str = "") -> Path:
        """Save a matplotlib figure as ``figures/<name>.png`` (atomically) and list it in the report."""
        path = save_figure(fig, self.figures_dir / f"{name}.png", dpi=100)
        self.figures.append((path, caption or name))
        return path
