"""``local``: one point after another in this process."""

from __future__ import annotations

from .jobs import JobResult, PointJob, execute_point

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """One point after another in this process.

    Every executor has ``check(jobs)``, which raises
    :class:`ExecutorUnavailable` where it cannot run ``jobs`` here (no Slurm,
    no Dask scheduler, a study script gone, classes of a notebook for
    worker processes) and writes nothing: :func:`neurodelay.sweep.run_sweep`
    calls it before it touches the sweep's folder. ``map`` and ``submit``
    check again.
    """

    def check(self, jobs: list[PointJob]) -> None:
        """Nothing to check: the points run in this process."""

    def map(self, jobs: list[PointJob], *, on_result=None) -> list[JobResult]:
        out = []
        for job in jobs:
            result = execute_point(job)
            out.append(result)
            if on_result:
                on_result(job, result)
        return out
