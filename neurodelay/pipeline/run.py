"""One study (no sweep) from spec to results, figures and report.

:func:`run_study` is a pure function of (study, output folder): it builds the
world and circuit, trains (with checkpoints), evaluates on the study's fixed
evaluation set (:mod:`neurodelay.results`), runs the registered analyses
(:mod:`neurodelay.registry`), and writes into the folder::

    results.nc            netCDF, written atomically
    checkpoint.pt         when something was trained
    study.resolved.yaml   the study with every default filled in
    figures/*.png         loss curves, frames/reconstruction/error, latents vs factors
    report.md             key numbers, figures, the circuit's schedule, the study

:func:`run_point` runs one point of a sweep the same way.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import attrs
import numpy as np
import torch
import xarray as xr

from .. import registry
from .._util.files import check_writable, folder_lock, write_text_atomic
from ..circuit import world_shapes
from ..errors import CheckpointError, ConfigError, NeurodelayError
from ..record import write_netcdf
from ..results import assemble_results, storable_attrs
from ..simulation import build_seeded
from ..study import GraphCircuit, Point, Study, check_study, point_study, study_to_yaml
from ..training import train
from ..training.checkpoint import load_checkpoint
from ..training.loop import steps_below_checkpoint
from ..training.warmstart import resolve_init_from, warm_start
from .plots import plot_run
from .report import write_report

__all__ = ["run_study", "run_point", "resolve_device", "AnalysisError", "CHECKPOINT", "RESULTS"]

CHECKPOINT = "checkpoint.pt"
RESULTS = "results.nc"

_INIT_TAG = 0x696E6974  # "init": parameter initialisation draws of the study's seed


class AnalysisError(NeurodelayError, RuntimeError):
    """One or more analyses failed (the results and report are written regardless)."""


def resolve_device(device: str) -> str:
    """Check that ``device`` exists here.

    Raises
    ------
    ConfigError
        ``cuda`` without a CUDA device, or a CUDA index beyond the devices.
    """
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: no CUDA device is available here "
                              f"(torch.cuda.is_available() is False); use --device cpu.")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here; "
                              f"use cuda:0..cuda:{torch.cuda.device_count() - 1}.")
    return device


def _seed(seed: int, tag: int) -> int:
    ss = np.random.SeedSequence(int(seed), spawn_key=(tag,))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> 1)


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, flush=True)


def _clear_outputs(out: Path, checkpoint: bool = False) -> None:
    """Remove a previous run's results, report and figures (and, ``checkpoint``, its checkpoint)."""
    names = (RESULTS, "report.md") + ((CHECKPOINT,) if checkpoint else ())
    for name in names:
        (out / name).unlink(missing_ok=True)
    if (out / "figures").is_dir():
        shutil.rmtree(out / "figures")


def _made_folders(out: Path) -> list[Path]:
    """The folders that making ``out`` would create (``out`` first, then its missing parents)."""
    made, folder = [], Path(out)
    while not folder.exists() and folder.parent != folder:
        made.append(folder)
        folder = folder.parent
    return made


def _remove_if_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (the run wrote something), or gone
            return


def run_study(study: Study, out_dir, *, resume: bool = False, device: str | None = None,
              quiet: bool = False) -> Path:
    """Run one study into ``out_dir`` (train, evaluate, analyse, record, plot, report).

    Parameters
    ----------
    study : Study
        A single-run study (no ``sweep``; see :func:`neurodelay.sweep.run_sweep`).
    out_dir : path-like
        The run's folder; created if needed. Nothing is written before the
        study and device are checked, and before a checkpoint to resume is.
    resume : bool
        Continue training from ``out_dir/checkpoint.pt`` if it exists (a
        finished one is not trained further), then evaluate, analyse and
        report this study afresh. The checkpoint's study may differ from
        this one only outside training (its name, device, ``evaluate``,
        ``analyses``, ``executor``) and in how long it trains and how often
        it logs and saves (``train.steps``, at least the checkpoint's step,
        ``log_every``, ``checkpoint_every``): see
        :func:`neurodelay.training.checkpoint.training_text`. The outputs record
        this study.
    device : str, optional
        Replaces the study's device (``cpu``, ``cuda``, ``cuda:N``).
    quiet : bool
        No progress output.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ConfigError
        Invalid study, or a device that is not available (nothing written).
    CheckpointError
        ``resume`` with a truncated checkpoint, or one whose study trains
        differently (the message names the first differing field).
    TrainingError
        The loss became NaN or infinite.
    AnalysisError
        An analysis failed (after results, figures and report are written).
    FolderLockedError
        Another run or sweep is writing ``out_dir`` (nothing written).
    OutputError
        ``out_dir`` cannot be written: no space left on its device, or not
        writable (the files written so far are whole: every write is atomic).

    Notes
    -----
    The run holds ``out_dir/.lock`` while it writes (see
    :func:`neurodelay._util.files.folder_lock`). Without ``resume`` (or without
    a checkpoint to resume) it replaces the folder's run: the old results,
    report, figures and checkpoint are removed before it writes. A
    checkpoint that ``resume`` refuses leaves the folder as it was. A run
    that fails before writing anything leaves no folder it made.
    """
    if not isinstance(study, Study):
        raise TypeError(f"study must be a neurodelay.study.Study, got {type(study).__name__}.")
    if study.sweep is not None:
        raise ConfigError("run_study runs a single point; this study has a sweep: use "
                          "neurodelay.sweep.run_sweep (or python -m neurodelay.run).")
    if device is not None and device != study.device:
        study = attrs.evolve(study, device=device)
    resolve_device(study.device)
    extra = ({type(s).kind: type(s) for s in study.circuit.nodes.values()}
             if isinstance(study.circuit, GraphCircuit) else None)
    check_study(study, extra_kinds=extra)
    out = Path(out_dir)
    made = _made_folders(out)
    try:
        with folder_lock(out, "run"):
            return _run_locked(study, out, resume=resume, quiet=quiet)
    except BaseException:
        _remove_if_empty(made)  # a run that failed before it wrote anything leaves no folder behind
        raise


def _run_locked(study: Study, out: Path, *, resume: bool, quiet: bool) -> Path:
    """:func:`run_study` once the study is checked and ``out`` is locked."""
    t_start = time.perf_counter()
    dev = study.device
    circuit = study.build_circuit()
    world = study.world
    module = build_seeded(circuit, input_shapes=world_shapes(world), seed=_seed(study.seed, _INIT_TAG))
    if study.train.init_from is not None:  # a warm start; a checkpoint that is resumed replaces it
        warm_start(module, resolve_init_from(study.train.init_from, out=out, study_name=study.name,
                                             seed=study.seed))
    n_params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    study_text = study_to_yaml(study)
    ckpt = out / CHECKPOINT
    resuming = resume and ckpt.exists()
    if resuming and not (study.train.steps > 0 and n_params > 0):  # train() would not read the checkpoint
        held = load_checkpoint(ckpt, study_text=study_text, seed=study.seed)["step"]
        if not isinstance(held, int) or held > study.train.steps:
            raise CheckpointError(steps_below_checkpoint(ckpt, held, study.train.steps))
    check_writable(out)
    if not resuming:  # a fresh run replaces the folder's run, its checkpoint included
        _clear_outputs(out, checkpoint=True)
        write_text_atomic(out / "study.resolved.yaml", study_text)

    result = None
    if study.train.steps > 0 and n_params > 0:
        _say(quiet, f"{study.name}: training {study.train.steps} steps on {dev}"
                    f"{' (resuming)' if resuming else ''} -> {out}")
        result = train(module, world, study.objective, study.train, seed=study.seed, device=dev,
                       checkpoint_path=ckpt, resume=resume, study_text=study_text,
                       progress=False if quiet else None)
    else:
        why = "train.steps is 0" if study.train.steps == 0 else "the circuit has no learnable parameters"
        _say(quiet, f"{study.name}: nothing to train ({why}); simulating")
    if resuming:  # the checkpoint was accepted: replace the previous outputs
        _clear_outputs(out)
        write_text_atomic(out / "study.resolved.yaml", study_text)

    _say(quiet, f"{study.name}: evaluating {study.evaluate.n_sequences} sequences")
    module.to(dev)
    ds, names, recon_node = assemble_results(module, study, dev, result=result, n_parameters=n_params,
                                              study_text=study_text)

    ctx = registry.AnalysisContext(study=study, circuit=circuit, module=module, world=world, device=dev, out_dir=out)
    registered = registry.available() if study.analyses != () else {}
    wanted = list(study.analyses) if study.analyses is not None else list(registered)
    failures: list[tuple[str, str]] = []
    for name in wanted:
        _say(quiet, f"{study.name}: analysis {name}")
        try:
            extra_ds = registered[name](ds, ctx)
            if extra_ds is not None:
                clash = sorted(set(extra_ds.data_vars) & set(ds.data_vars))
                if clash:
                    raise ValueError(f"analysis {name!r} returned variables that already exist: {clash}")
                ds = xr.merge([ds, extra_ds], compat="no_conflicts", combine_attrs="override")
        except Exception as exc:  # noqa: BLE001 - reported after everything is written
            failures.append((name, f"{type(exc).__name__}: {exc}"))
    if failures:
        ds.attrs["failed_analyses"] = "\n".join(f"{n}: {m}" for n, m in failures)

    storable_attrs(ds)
    for v in ds.data_vars.values():
        if v.ndim >= 3 and v.dtype.kind == "f":
            v.encoding.update({"zlib": True, "complevel": 4})
    write_netcdf(ds, out / RESULTS)
    _say(quiet, f"{study.name}: wrote {out / RESULTS}")

    figures = plot_run(ds, out / "figures", recon_node=recon_node) + list(ctx.figures)
    schedule = circuit.plan(world_shapes(world)).describe(study.dt_ms)
    write_report(out, study, ds, figures=figures, schedule=schedule, study_text=study_text,
                 failures=failures, wall_seconds=time.perf_counter() - t_start, resumed=resuming)
    _say(quiet, f"{study.name}: report {out / 'report.md'}")
    if failures:
        raise AnalysisError("analyses failed: " + "; ".join(f"{n} ({m})" for n, m in failures)
                            + f". Results and report are in {out}.")
    return out



def run_point(study: Study, point: Point, out_dir, *, resume: bool = False, device: str | None = None,
              quiet: bool = False) -> Path:
    """Run one sweep point into ``out_dir``: a pure function of (study, point, folder).

    Returns
    -------
    Path
        The point's output folder.
    """
    return run_study(point_study(study, point), out_dir, resume=resume, device=device, quiet=quiet)
