"""Sweeps: one run per point of a grid of study parameters, combined into one Dataset.

Modules: ``runner`` (:func:`run_sweep`, :func:`collect`), ``stale`` (which points
run again), ``combine`` (``sweep.nc``), ``outcome`` (what became of each point).
The points themselves are the study's (:func:`neurodelay.study.expand`); each
runs through :func:`neurodelay.pipeline.run_point` on an executor
(:mod:`neurodelay.executors`).

A study's ``sweep:`` section maps dotted paths to lists of values. Every path
outside ``zip:`` is a grid dimension (all combinations are run); the paths of
a ``zip:`` group take their i-th values together and share one dimension.

Each point runs in its own subfolder ``<out>/<name>/<point>/`` (named from the
point's values, e.g. ``gamma=0.5``) through :func:`run_point`, a pure function
of (study, point, output folder): the engine that runs points (sequentially
here, see :func:`run_sweep`) can be swapped for one that spreads them over
processes or machines. A rerun skips points finished for the study as it
stands (see :func:`neurodelay.sweep.stale.stale_reason`): a point whose study changed only outside
training (evaluate, analyses) resumes from its checkpoint and is evaluated
again, one given a larger ``train.steps`` trains on from its checkpoint, one
whose training changed runs afresh (an unfinished one too: its
checkpoint is cleared rather than resumed). A point that fails is recorded
while the others run: the lines of its error that say what went wrong in
the report's table (see :func:`error_summary`), the whole text, traceback
included, under the report's Failures.
:func:`combine` gathers the points' results into ``sweep.nc`` with one
dimension per swept parameter (one per zip group), failed points filled
with NaN.
"""

from ..executors import ERROR_FILE, record_error
from ..pipeline import run_point
from ..study import Point, SweepDim, expand, point_study, sweep_dims
from .combine import combine, combined_dims
from .outcome import PointOutcome, SweepOutcome, error_summary
from .runner import collect, run_sweep

__all__ = ["SweepDim", "Point", "PointOutcome", "SweepOutcome", "sweep_dims", "expand", "point_study", "run_point",
           "run_sweep", "collect", "combine", "combined_dims", "error_summary", "record_error", "ERROR_FILE"]
