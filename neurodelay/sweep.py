"""Sweeps: one run per point of a grid of study parameters, combined into one Dataset.

A study's ``sweep:`` section maps dotted paths to lists of values. Every path
outside ``zip:`` is a grid dimension (all combinations are run); the paths of
a ``zip:`` group take their i-th values together and share one dimension.

Each point runs in its own subfolder ``<out>/<name>/<point>/`` (named from the
point's values, e.g. ``gamma=0.5``) through :func:`run_point`, a pure function
of (study, point, output folder): the engine that runs points (sequentially
here, see :func:`run_sweep`) can be swapped for one that spreads them over
processes or machines. A rerun skips points finished for the study as it
stands (see :func:`_stale`): a point whose study changed only outside
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

from __future__ import annotations

import dataclasses
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import attrs
import numpy as np
import pandas as pd
import xarray as xr
import yaml

from ._util.files import write_text_atomic
from .errors import ConfigError, OutputError
from .record import write_netcdf
from .study import Study, study_to_yaml
from .study.points import Point, SweepDim, _coordinate, expand, sweep_dims
from .study.checks import point_study
from .pipeline import run_point

__all__ = ["SweepDim", "Point", "PointOutcome", "SweepOutcome", "sweep_dims", "expand", "point_study",
           "run_point", "run_sweep", "combine", "combined_dims", "error_summary"]

@dataclass
class PointOutcome:
    """What happened to one point: ``status`` is ``ok``, ``skipped``, ``failed`` or ``missing``.

    ``error`` is one line saying what went wrong (:func:`error_summary`),
    ``detail`` the whole error as reported (traceback, a Slurm job's error
    stream), empty when ``error`` is all there is.
    """

    point: Point
    status: str
    error: str = ""
    seconds: float = 0.0
    detail: str = ""


#: In a point's folder: the whole error of its last run, when that run failed (removed when it runs again).
ERROR_FILE = "error.txt"


def record_error(folder, text: str | None) -> None:
    """Write a failed point's whole error to ``folder/error.txt``; ``None`` removes an old one.

    Written where the point ran (a worker, a Slurm job), so that
    :func:`collect` can report why a detached point failed. Best effort: a
    folder that cannot be written (a worker without the shared file system)
    is left as it is; the error still reaches the sweep through the engine.
    """
    path = Path(folder) / ERROR_FILE
    try:
        if text is None:
            path.unlink(missing_ok=True)
        else:
            write_text_atomic(path, text.rstrip() + "\n")
    except OSError:
        pass


def _failure(point: Point, text: str, seconds: float = 0.0) -> PointOutcome:
    summary = error_summary(text)
    return PointOutcome(point, "failed", summary, seconds, text.strip() if text.strip() != summary else "")


_TRACEBACK = "Traceback (most recent call last):"
_SEPARATOR = re.compile(r"^\s*[-=]{4,}\s*$")
_QUALIFIED = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*:)")  # "neurodelay.errors." of "neurodelay.errors.X: ..."


def error_summary(text: str, limit: int = 600) -> str:
    """The part of a failed point's error that says what went wrong, as one line.

    A one-line error is kept as it is. A longer one keeps its first line
    and the exception that ended the last Python traceback in it (its
    message on one line); without a traceback, the text after its last
    separator line (``-----``) when that is at most three lines, else its
    last line. A Slurm job's error (``FailedJobError: Job (task=0) failed
    during processing with trace:``, ``UncompletedJobError: Job 123 (task:
    0) with path ...``) is then followed by the exception, or the error
    stream, that says why. The result is cut to ``limit`` characters.

    Parameters
    ----------
    text : str
        The error as reported by the point's runner or executor.
    limit : int
        Most characters kept.
    """
    lines = [line.rstrip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    head = lines[0].strip()
    tail = _final_exception(lines[1:])
    if tail is None:  # the block after the last separator (a Slurm job's error stream) when short, else the last line
        cut = max([0] + [i + 1 for i, line in enumerate(lines) if _SEPARATOR.match(line)])
        block = [line.strip() for line in lines[max(cut, 1):]]
        tail = " ".join(block) if cut and len(block) <= 3 else (block[-1] if block else "")
    tail = _QUALIFIED.sub("", tail)
    if not tail or tail == head or tail in head:
        summary = head
    elif tail.startswith(head):  # the same exception, its message longer than the first line
        summary = tail
    else:
        summary = f"{head} ... {tail}"
    return summary if len(summary) <= limit else summary[:limit - 3] + "..."


def _final_exception(lines: list[str]) -> str | None:
    """The exception line(s), joined, that end the last Python traceback in ``lines``; None if there is none.

    After ``Traceback (most recent call last):`` come the frames (indented);
    the first line that is not indented starts the exception, whose message
    runs on to the end or to a separator line (``-----``).
    """
    starts = [i for i, line in enumerate(lines) if line.strip() == _TRACEBACK]
    if not starts:
        return None
    block: list[str] = []
    for line in lines[starts[-1] + 1:]:
        if block and _SEPARATOR.match(line):
            break
        if block or not line[:1].isspace():
            block.append(line.strip())
    return " ".join(block) or None


@dataclass
class SweepOutcome:
    """The result of :func:`run_sweep`."""

    out_dir: Path
    points: list[PointOutcome] = field(default_factory=list)
    sweep_nc: Path | None = None

    @property
    def failed(self) -> list[PointOutcome]:
        """The points that failed."""
        return [p for p in self.points if p.status in ("failed", "missing")]


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
    from .executors import ExecutorSettings, PointJob, make_executor, parse_executor, sweep_lock

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
            redo = _stale(study, point, out_dir / point.name, device)
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
                    outcome.points.append(_failure(point, result.error, result.seconds))
                else:
                    outcome.points.append(PointOutcome(point, result.status, error_summary(result.error),
                                                       result.seconds))
        outcome.points.sort(key=lambda po: po.point.index)
        return _finish(study, out_dir, points, outcome, quiet)


def _stale(study: Study, point: Point, folder: Path, device: str | None) -> str | None:
    """None if ``folder`` holds this point's finished results; else why it must run ("" if never run).

    Finished means: ``results.nc`` of this point's study as it stands now
    (device and executor aside), a ``report.md``, and no failed analysis.
    A point whose results came from a study that trains differently
    (:func:`_trains_differently`) is cleared, its checkpoint included (it
    holds the old training), so that it runs afresh; so is a point without
    results whose checkpoint (a run that did not finish) was trained by such
    a study, which would otherwise fail to resume. One whose study changed
    only outside training (name, ``evaluate``, ``analyses``) or in how long
    it trains (a larger ``train.steps``: it trains on) and how often it logs
    and saves, whose analyses failed, or that stopped before its report
    loses its results and report and resumes from its checkpoint: training
    is not redone, evaluation, analyses and report are. A point trained for
    more steps than ``train.steps`` now asks runs afresh.
    """
    from .training.checkpoint import NOT_TRAINING, RESUMABLE_TRAIN

    ps = point_study(study, point)
    if device is not None:
        ps = attrs.evolve(ps, device=device)
    now = study_to_yaml(ps)

    results = folder / "results.nc"
    if not results.exists():
        return _unfinished(folder, now)
    try:
        with xr.open_dataset(results) as ds:
            attrs_ = dict(ds.attrs)
    except Exception:  # noqa: BLE001 - unreadable results are redone
        _clear(folder, "results.nc", "report.md")
        return _unfinished(folder, now) or "its results.nc cannot be read"
    stored = str(attrs_.get("study", ""))

    if _trains_differently(stored, now):
        _clear(folder, "results.nc", "report.md", "checkpoint.pt")
        return "its results come from a different version of the study"
    trained = attrs_.get("trained_steps")
    trains = (isinstance(trained, (int, np.integer)) and int(attrs_.get("n_parameters", 0)) > 0
              and ps.train.steps > 0)  # a point that trains nothing has no step count to compare
    if trains and trained > ps.train.steps:
        _clear(folder, "results.nc", "report.md", "checkpoint.pt")
        return f"it was trained for {int(trained)} steps and the study now trains {ps.train.steps}"

    old_raw, new_raw = _mapping(stored), _mapping(now)
    old_train, new_train = _mapping(old_raw.get("train")), _mapping(new_raw.get("train"))
    changed = [k for k in NOT_TRAINING if k not in ("device", "executor") and old_raw.get(k) != new_raw.get(k)]
    if trains and trained < ps.train.steps:  # logging settings matter only if it trains on
        changed += [f"train.{k}" for k in RESUMABLE_TRAIN if old_train.get(k) != new_train.get(k)]
    kept = "its checkpoint" if (folder / "checkpoint.pt").exists() else "the start (its checkpoint is gone)"
    why = None
    if trains and trained < ps.train.steps:
        why = f"train.steps rose from {int(trained)} to {ps.train.steps}: it trains on from {kept}"
    elif changed:
        why = (f"its study changed outside training ({', '.join(changed)}): "
               + ("training is kept, the rest is redone" if (folder / "checkpoint.pt").exists() or not trains
                  else "its checkpoint is gone, so it trains again"))
    elif attrs_.get("failed_analyses"):
        why = "analyses failed in its last run (" + attrs_["failed_analyses"].splitlines()[0] + ")"
    elif not (folder / "report.md").exists():
        why = "its last run stopped before the report"
    if why is not None:  # cleared, so that every executor runs it (its checkpoint is kept: it resumes)
        _clear(folder, "results.nc", "report.md")
    return why


def _mapping(value) -> dict:
    """``value`` as a dict: parsed if it is YAML text, {} if it is no mapping."""
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value) if value else None
        except yaml.YAMLError:
            value = None
    return value if isinstance(value, dict) else {}


def _unfinished(folder: Path, now: str) -> str:
    """For a point without results: "" (it runs, resuming its checkpoint if it has one), or why its
    checkpoint is cleared first (it was trained by a study that trains differently from ``now``)."""
    trained, step = _checkpoint_study(folder)
    if trained is not None and _trains_differently(trained, now):
        _clear(folder, "report.md", "checkpoint.pt")
        return ("its checkpoint (from a run that did not finish) was trained by a different version of the "
                "study, so it is cleared")
    steps = _train_steps(now)
    if step is not None and steps is not None and step > steps:
        _clear(folder, "report.md", "checkpoint.pt")
        return (f"its checkpoint (from a run that did not finish) is at step {step}, beyond the study's "
                f"train.steps = {steps}, so it is cleared")
    return ""


def _train_steps(study_text: str) -> int | None:
    steps = _mapping(_mapping(study_text).get("train")).get("steps")
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None


def _trains_differently(stored: str, now: str) -> bool:
    """Whether training under study text ``stored`` is not training under ``now``: its results and
    checkpoint cannot serve ``now`` (:func:`~neurodelay.training.checkpoint.trains_alike`)."""
    from .training.checkpoint import trains_alike

    return not trains_alike(stored, now)


def _checkpoint_study(folder: Path) -> tuple[str | None, int | None]:
    """The study text that trained ``folder/checkpoint.pt``, and the checkpoint's step.

    The checkpoint's own ``study_text`` (what resuming compares); when the
    file cannot be read, the point's ``study.resolved.yaml`` (the runner
    writes it before it trains afresh, and again once a resume is
    accepted) and no step; (None, None) if there is no checkpoint.
    """
    from .training.checkpoint import load_checkpoint
    from .errors import CheckpointError

    ckpt = folder / "checkpoint.pt"
    if not ckpt.exists():
        return None, None
    try:
        held = load_checkpoint(ckpt)
    except CheckpointError:  # truncated or foreign: resuming it would say so
        resolved = folder / "study.resolved.yaml"
        return (resolved.read_text(encoding="utf-8") if resolved.exists() else None), None
    step = held.get("step")
    return str(held["study_text"]), (step if isinstance(step, int) else None)


def _clear(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).unlink(missing_ok=True)


def collect(study: Study, out_dir, *, quiet: bool = False) -> SweepOutcome:
    """Combine the points that have results into ``sweep.nc`` and the report, running nothing.

    Points without results are listed as ``failed`` with their error
    when their last run left one (``error.txt``, see :func:`record_error`),
    or when the Slurm job of a detached sweep (``jobs.yaml``) ended without
    one (killed for its time limit or memory, cancelled: see
    :func:`neurodelay.executors.detached_job_fate`); else as ``missing``.
    Use it after ``--detach``; run it again as more points finish.
    """
    from .executors import detached_job_fate, sweep_lock

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
                outcome.points.append(_failure(point, (folder / ERROR_FILE).read_text(encoding="utf-8")))
            elif point.name in job_ids:
                status, text = detached_job_fate(out_dir, job_ids[point.name])
                outcome.points.append(_failure(point, text) if status == "failed"
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
            failure = _failure(point, text, time.perf_counter() - t0)
            outcome.points.append(failure)
            _say(quiet, f"    failed: {failure.error}")
            if not quiet and not isinstance(exc, OutputError):  # a full disk is said, not traced
                traceback.print_exc()
            continue
        outcome.points.append(PointOutcome(point, "ok", "", time.perf_counter() - t0))


def _finish(study, out_dir, points, outcome, quiet) -> SweepOutcome:
    from .report import write_sweep_report

    combined = combine(study, out_dir, points)
    if combined is not None:
        outcome.sweep_nc = write_netcdf(combined, out_dir / "sweep.nc")
    write_sweep_report(out_dir, study, sweep_dims(study), outcome, combined)
    n_done = sum(p.status in ("ok", "skipped") for p in outcome.points)
    _say(quiet, f"sweep {study.name}: {n_done} of {len(points)} points done; {len(outcome.failed)} failed; "
                f"see {out_dir / 'report.md'}")
    return outcome


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, flush=True)


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
                combined = combined.assign_coords({cname: (d.name, _coordinate(vals))})
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
