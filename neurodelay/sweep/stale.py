"""Which points of a rerun must run again: :func:`stale_reason` compares a point's folder with its study as it stands.

A point whose results came from a study that trains differently is cleared
(its checkpoint too) and runs afresh; one whose study changed only outside
training, or trains longer, loses its results and resumes from its
checkpoint (see ``docs/study-schema.md#resuming``).
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import xarray as xr
import yaml

from ..errors import CheckpointError
from ..study import Point, Study, point_study, study_to_yaml
from ..training.checkpoint import NOT_TRAINING, RESUMABLE_TRAIN, load_checkpoint, trains_alike

__all__ = ["stale_reason"]


def stale_reason(study: Study, point: Point, folder: Path, device: str | None) -> str | None:
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

    return not trains_alike(stored, now)


def _checkpoint_study(folder: Path) -> tuple[str | None, int | None]:
    """The study text that trained ``folder/checkpoint.pt``, and the checkpoint's step.

    The checkpoint's own ``study_text`` (what resuming compares); when the
    file cannot be read, the point's ``study.resolved.yaml`` (the runner
    writes it before it trains afresh, and again once a resume is
    accepted) and no step; (None, None) if there is no checkpoint.
    """

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
