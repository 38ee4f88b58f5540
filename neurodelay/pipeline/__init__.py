"""The pipeline: one study from spec to ``results.nc``, figures and report.

``run``     :func:`run_study` (one study), :func:`run_point` (one point of a sweep)
``plots``   the run's figures
``report``  ``report.md`` of a run and of a sweep

The results Dataset itself is assembled by :mod:`neurodelay.results`; the
analyses are found through :mod:`neurodelay.registry`.
"""

from .run import CHECKPOINT, RESULTS, AnalysisError, resolve_device, run_point, run_study

__all__ = ["run_study", "run_point", "resolve_device", "AnalysisError", "CHECKPOINT", "RESULTS"]
