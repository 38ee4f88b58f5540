"""Running a sweep: every point on an executor, then combined and reported; collecting a detached one.

Points already finished for the study as it stands are skipped
(:mod:`neurodelay.sweep.stale`); a point that fails is recorded while the
others run (:mod:`neurodelay.sweep.outcome`); the points' results are
combined into ``sweep.nc`` (:mod:`neurodelay.sweep.combine`).
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Callable

import attrs
import xarray as xr
import yaml

from .._util.files import write_text_atomic
from ..errors import ConfigError, OutputError
from ..executors import (ERROR_FILE, ExecutorSettings, PointJob, detached_job_fate, make_executor, parse_executor,
                         record_error, sweep_lock)
from ..pipeline import run_point
from ..pipeline.report import write_sweep_report
from ..record import write_netcdf
from ..study import Study, expand, study_to_yaml, sweep_dims
from .combine import combine, combined_is_current
from .outcome import PointOutcome, SweepOutcome, failed_outcome, error_summary
from .stale import stale_reason

__all__ = ["run_sweep", "collect"]


def run_sweep(study: Study, out_dir, *, resume: bool = False, device: str | None = None, quiet: bool = False,
              runner: Callable[..., Path] | None = None, executor=None, detach: bool = False) -> SweepOutcome:
    """Run every point of a sweep on an executor, then combine and report.

    Parameters
    ----------
    study : Study
        A study with a ``sweep`` section.
    out_dir : path-like
        The sweep's folder (``<out>/<name>``): points go to subfolders,
        ``sweep.nc`` and ``report.md`` to the folder itself. It is locked
        (``.lock``) while the sweep writes it.
    resume : bool
        Resume points from their checkpoints.
    device : str, optional
        Replaces the study's device.
    quiet : bool
        No progress output.
    runner : callable, optional
        ``runner(study, point, folder, resume=, device=, quiet=)``: a point
        runner to use instead of :func:`run_point`, in this process.
    executor : ExecutorSettings or str, optional
        Where points run (default: the study's ``executor`` block, else
        ``local``); see :mod:`neurodelay.executors`.
    detach : bool
        Submit the points (Slurm) and return without waiting; combine later
        with :func:`collect`.

    Returns
    -------
    SweepOutcome
        Failed points are listed, not raised.

    Raises
    ------
    ExecutorUnavailable
        The executor cannot run here (no Slurm, no Dask scheduler at the
        address, a study script gone...): raised before anything is
        written, so ``out_dir`` is left as it was.
    SweepLockedError
        Another sweep is writing ``out_dir``.
    """

    if study.sweep is None:
        raise ValueError("run_sweep needs a study with a sweep section; use run_study for a single run.")
    if isinstance(executor, str):
        base = study.executor or ExecutorSettings()
        executor = ExecutorSettings(**{**attrs.asdict(base), "name": executor})
    settings = executor or study.executor or ExecutorSettings()
    kind, _ = parse_executor(settings.name)
    if detach and kind != "slurm":
        raise ConfigError(f"--detach needs the slurm executor (got {settings.name!r}): other executors run "
                          f"the points in this command.")
    out_dir = Path(out_dir)
    points = expand(study)
    engine = None
    if runner is None and kind != "local":
        engine = make_executor(settings, out_dir)
        # Refused here (no Slurm, no Dask scheduler, a study script gone...), the sweep writes nothing:
        # not the folder, its lock or study.resolved.yaml, and no point is cleared.
        engine.check([PointJob(study, p, str(out_dir / p.name), resume, device) for p in points])
    with sweep_lock(out_dir):
        write_text_atomic(out_dir / "study.resolved.yaml", study_to_yaml(study))
        if not detach:  # the job ids of an earlier detached run no longer say what became of the points
            (out_dir / "jobs.yaml").unlink(missing_ok=True)
        outcome = SweepOutcome(out_dir)
        pending = []
        for k, point in enumerate(points, 1):
            redo = stale_reason(study, point, out_dir / point.name, device)
            if redo is None:
                outcome.points.append(PointOutcome(point, "skipped"))
                _say(quiet, f"[{k}/{len(points)}] {point.name}: results exist, skipped")
            else:
                if redo:
                    _say(quiet, f"[{k}/{len(points)}] {point.name}: {redo}; running it again")
                pending.append(point)
        if engine is None:
            _run_here(study, pending, out_dir, outcome, runner or run_point, resume, device, quiet, len(points))
        else:
            jobs = [PointJob(study, p, str(out_dir / p.name), resume, device) for p in pending]
            if detach:
                submitted = engine.submit(jobs)
                ids = {p.name: str(j.job_id) for p, j in zip(pending, submitted)}
                write_text_atomic(out_dir / "jobs.yaml", yaml.safe_dump(ids, sort_keys=False))
                _say(quiet, f"submitted {len(ids)} points ({settings.name}); combine them later with "
                            f"--collect")
                return outcome
            by_name = {p.name: p for p in pending}

            def report(job, result):
                _say(quiet, f"{job.point.name}: {result.status}"
                            + (f" ({error_summary(result.error)})" if result.error else ""))

            for job, result in zip(jobs, engine.map(jobs, on_result=report)):
                point = by_name[job.point.name]
                if result.status == "failed":
                    outcome.points.append(failed_outcome(point, result.error, result.seconds))
                else:
                    outcome.points.append(PointOutcome(point, result.status, error_summary(result.error),
                                                       result.seconds))
        outcome.points.sort(key=lambda po: po.point.index)
        return _finish(study, out_dir, points, outcome, quiet)


def collect(study: Study, out_dir, *, quiet: bool = False) -> SweepOutcome:
    """Combine the points that have results into ``sweep.nc`` and the report, running nothing.

    Points without results are listed as ``failed`` with their error
    when their last run left one (``error.txt``, see :func:`record_error`),
    or when the Slurm job of a detached sweep (``jobs.yaml``) ended without
    one (killed for its time limit or memory, cancelled: see
    :func:`neurodelay.executors.detached_job_fate`); else as ``missing``.
    Use it after ``--detach``; run it again as more points finish.
    """

    if study.sweep is None:
        raise ValueError("collect needs a study with a sweep section.")
    out_dir = Path(out_dir)
    points = expand(study)
    with sweep_lock(out_dir):
        outcome = SweepOutcome(out_dir)
        job_ids = _job_ids(out_dir)
        for point in points:
            folder = out_dir / point.name
            if (folder / "results.nc").exists():
                outcome.points.append(PointOutcome(point, "ok"))
            elif (folder / ERROR_FILE).exists():
                outcome.points.append(failed_outcome(point, (folder / ERROR_FILE).read_text(encoding="utf-8")))
            elif point.name in job_ids:
                status, text = detached_job_fate(out_dir, job_ids[point.name])
                outcome.points.append(failed_outcome(point, text) if status == "failed"
                                      else PointOutcome(point, "missing", text))
            else:
                outcome.points.append(PointOutcome(point, "missing", "no results yet"))
        return _finish(study, out_dir, points, outcome, quiet)


def _job_ids(out_dir: Path) -> dict[str, str]:
    """Point name -> Slurm job id, from the ``jobs.yaml`` a detached sweep wrote ({} if none or unreadable)."""
    try:
        ids = yaml.safe_load((out_dir / "jobs.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return {str(k): str(v) for k, v in ids.items()} if isinstance(ids, dict) else {}


def _run_here(study, pending, out_dir, outcome, runner, resume, device, quiet, n_points) -> None:
    for point in pending:
        folder = out_dir / point.name
        _say(quiet, f"[{point.index + 1}/{n_points}] {point.name}")
        t0 = time.perf_counter()
        record_error(folder, None)
        try:
            runner(study, point, folder, resume=resume or (folder / "checkpoint.pt").exists(),
                   device=device, quiet=quiet)
        except KeyboardInterrupt:
            raise
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - recorded, the other points run
            text = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            record_error(folder, text)
            failure = failed_outcome(point, text, time.perf_counter() - t0)
            outcome.points.append(failure)
            _say(quiet, f"    failed: {failure.error}")
            if not quiet and not isinstance(exc, OutputError):  # a full disk is said, not traced
                traceback.print_exc()
            continue
        outcome.points.append(PointOutcome(point, "ok", "", time.perf_counter() - t0))


def _finish(study, out_dir, points, outcome, quiet) -> SweepOutcome:

    if combined_is_current(study, out_dir, points):  # nothing ran since it was written: keep it
        outcome.sweep_nc = out_dir / "sweep.nc"
        combined = xr.open_dataset(outcome.sweep_nc)
    else:
        combined = combine(study, out_dir, points)
        if combined is not None:
            outcome.sweep_nc = write_netcdf(combined, out_dir / "sweep.nc")
    try:
        write_sweep_report(out_dir, study, sweep_dims(study), outcome, combined)
    finally:
        if combined is not None:
            combined.close()  # the kept file's handle (a no-op for one combined in memory)
    n_done = sum(p.status in ("ok", "skipped") for p in outcome.points)
    _say(quiet, f"sweep {study.name}: {n_done} of {len(points)} points done; {len(outcome.failed)} failed; "
                f"see {out_dir / 'report.md'}")
    return outcome


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, flush=True)
