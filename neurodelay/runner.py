"""The point runner: one study (no sweep) from spec to results, figures and report.

:func:`run_study` is a pure function of (study, output folder): it builds the
world and circuit, trains (with checkpoints), evaluates on the study's fixed
evaluation set, runs the analyses, and writes into the folder::

    results.nc            netCDF, written atomically (see below)
    checkpoint.pt         when something was trained
    study.resolved.yaml   the study with every default filled in
    figures/*.png         loss curves, frames/reconstruction/error, latents vs factors
    report.md             key numbers, figures, the circuit's schedule, the study

``results.nc``: dims ``sample``, ``time`` (ms), ``latent``, ``factor``, ``y``,
``x``, ``step`` (training step); variables ``frames``, ``reconstruction``
(the decoded images), one trace per node named after the node, ``factors``,
``loss_<term>`` per loss term over ``step``, and the evaluation metrics
``reconstruction_mse`` and ``reconstruction_mse_by_time``. A node (or
auxiliary trace) whose name is a dimension or one of these variable names is
stored as ``node_<name>`` (attribute ``node`` keeps the original name).
Global attributes: the study as YAML text, package and torch versions,
device, seed (netCDF attributes hold no dicts or booleans: YAML text and
integers).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import attrs
import numpy as np
import torch
import xarray as xr
import yaml

from ._util.files import check_writable, folder_lock, write_text_atomic
from .training.checkpoint import load_checkpoint
from .circuit import world_shapes
from .components.base import RunContext
from .errors import CheckpointError, ConfigError, NeurodelayError
from . import registry
from .record import RESERVED_NAMES, module_dataset, variable_name, write_netcdf
from .simulation import build_seeded
from .study import GraphCircuit, Study, check_study, study_to_yaml
from .training.warmstart import resolve_init_from, warm_start

__all__ = ["run_study", "resolve_device", "evaluate", "AnalysisError", "CHECKPOINT", "RESULTS",
           "variable_name", "RESERVED_NAMES"]

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


def _image_nodes(module, frame_shape) -> list[str]:
    shapes = module.plan.shapes
    return [n for n in module.circuit.nodes if shapes.get(n) is not None and tuple(shapes[n]) == tuple(frame_shape)]


def reconstruction_node(study: Study, module) -> str | None:
    """The node whose output is the reconstruction (None if there is none, or it is ambiguous)."""
    if study.objective is not None and study.objective.reconstruct is not None:
        return study.objective.reconstruct
    found = _image_nodes(module, study.world.frame_shape)
    return found[0] if len(found) == 1 else None


def evaluate(module, study: Study, device: str) -> tuple[xr.Dataset, dict[str, str]]:
    """Run the circuit on the study's evaluation set.

    Returns
    -------
    (xarray.Dataset, dict)
        The traces, frames and factors over (sample, time, ...), and the
        mapping from trace name to results.nc variable name.
    """
    ev = study.evaluate
    episode = study.world.sample(ev.n_sequences, seed=ev.seed, device=device)
    streams = episode.streams()
    module.eval()
    chunks: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for lo in range(0, ev.n_sequences, ev.batch_size):
            batch = {k: v[lo: lo + ev.batch_size] for k, v in streams.items()}
            traces = module(batch, ctx=RunContext(sample=False))
            for k, v in traces.items():
                chunks.setdefault(k, []).append(v.detach().to("cpu", torch.float32))
    traces = {k: torch.cat(v, dim=0) for k, v in chunks.items()}
    return module_dataset(module, traces, episode, dt_ms=study.dt_ms)


def _add_coords(ds: xr.Dataset) -> xr.Dataset:
    coords = {}
    if "y" in ds.dims:
        coords["y"] = ("y", np.arange(ds.sizes["y"]), {"long_name": "pixel row (0 = top)", "units": "1"})
    if "x" in ds.dims:
        coords["x"] = ("x", np.arange(ds.sizes["x"]), {"long_name": "pixel column (0 = left)", "units": "1"})
    if "latent" in ds.dims:
        coords["latent"] = ("latent", np.arange(ds.sizes["latent"]), {"long_name": "latent unit", "units": "1"})
    ds = ds.assign_coords(coords)
    if "sample" in ds.coords:
        ds["sample"].attrs.update({"long_name": "evaluation sequence", "units": "1"})
    if "factor" in ds.coords:
        ds["factor"].attrs.update({"long_name": "generative factor of the world"})
    return ds


def _add_reconstruction(ds: xr.Dataset, study: Study, module, names: dict[str, str]) -> str | None:
    node = reconstruction_node(study, module)
    if node is None or names.get(node) not in ds or ds[names[node]].dims != ds["frames"].dims:
        return None
    offset = study.objective.target_offset_steps if study.objective is not None else 0
    start = study.objective.score_from_step if study.objective is not None else 0
    rec = ds[names[node]]
    ds["reconstruction"] = rec.copy()
    ds["reconstruction"].attrs = {"long_name": f"reconstruction: the decoded images (output of node {node})",
                                  "units": "1", "node": node, "target_offset_steps": int(offset)}
    n_t = ds.sizes["time"]
    first = max(int(module.plan.valid_from[node]), start, -offset, 0)
    last = min(n_t, n_t - offset)
    target = ds["frames"].shift(time=-offset) if offset else ds["frames"]
    err = ((rec - target) ** 2).mean(("sample", "y", "x"))
    steps = np.arange(n_t)
    scored = (steps >= first) & (steps < last)
    by_time = err.where(xr.DataArray(scored, dims="time"))
    ds["reconstruction_mse_by_time"] = by_time.astype(np.float64)
    ds["reconstruction_mse_by_time"].attrs = {
        "long_name": f"mean squared error per pixel of the reconstruction at step t against the frame "
                     f"at t + {offset} (NaN at unscored steps)", "units": "1"}
    value = float(by_time.mean(skipna=True)) if scored.any() else float("nan")
    ds["reconstruction_mse"] = ((), value, {
        "long_name": f"mean squared error per pixel of the reconstruction over the scored steps "
                     f"{first}..{last - 1}", "units": "1"})
    return node


def _add_history(ds: xr.Dataset, result) -> xr.Dataset:
    if result is None or len(result.steps) == 0:
        return ds
    ds = ds.assign_coords(step=("step", np.asarray(result.steps, dtype=np.int64),
                                {"long_name": "training step (optimiser updates)", "units": "1"}))
    for term, values in result.history.items():
        ds[f"loss_{term}"] = ("step", np.asarray(values, dtype=np.float64), {
            "long_name": f"training loss: {term} (summed over elements and scored steps, averaged over "
                         f"the batch's sequences)", "units": "1"})
    return ds


def _add_learned_values(ds: xr.Dataset, module) -> xr.Dataset:
    """Learned node parameters (an extrapolator's ``alpha``): ``<name>_learned`` over ``learned_node``."""
    found = {name: node.learned_values() for name, node in module.nodes.items() if hasattr(node, "learned_values")}
    found = {name: values for name, values in found.items() if values}
    if not found:
        return ds
    names = sorted(found)
    ds = ds.assign_coords(learned_node=("learned_node", np.asarray(names, dtype=object),
                                        {"long_name": "node with a learned parameter"}))
    for key in sorted({k for values in found.values() for k in values}):
        initial = [float(getattr(module.circuit.nodes[n], key, np.nan)) for n in names]
        ds[f"{key}_learned"] = ("learned_node", np.array([found[n].get(key, np.nan) for n in names]), {
            "long_name": f"learned {key} at the end of training", "units": "steps" if key == "alpha" else "1"})
        ds[f"{key}_initial"] = ("learned_node", np.array(initial), {
            "long_name": f"learned {key}'s initial value", "units": "steps" if key == "alpha" else "1"})
    return ds


def _add_learned_delays(ds: xr.Dataset, module, result) -> xr.Dataset:
    """The learned delays (``delay`` dimension: one row per learned edge and channel), if any."""
    rows = []  # (edge index, edge, channel, initial, final, lo, hi) in ms
    dt = float(module.dt_ms)
    for e in module.plan.edges:
        line = module.delay_line(e)
        if line is None or not line.learnable:
            continue
        initial = np.atleast_1d(np.asarray(e.edge.delay_ms, dtype=np.float64))
        final = line.steps.detach().double().cpu().reshape(-1).numpy() * dt
        initial = np.broadcast_to(initial, final.shape)
        for c in range(final.size):
            rows.append((e.index, f"{e.edge.source} -> {e.node}.{e.port}", c if line.per_channel else -1,
                         float(initial[c]), float(final[c]), float(e.edge.min_delay_ms),
                         float(e.edge.max_delay_ms)))
    if not rows:
        return ds
    index, label, channel, initial, final, lo, hi = (list(col) for col in zip(*rows))
    names = [f"edge {i} ({e})" + (f"[{c}]" if c >= 0 else "") for i, e, c in zip(index, label, channel)]
    ds = ds.assign_coords(
        delay=("delay", np.asarray(names, dtype=object),
               {"long_name": "learned delay: edge index (source -> node.port) and [channel] of a per-channel one"}),
        delay_edge=("delay", np.asarray(label, dtype=object),
                    {"long_name": "learned delay's edge (source -> node.port)"}),
        delay_edge_index=("delay", np.asarray(index, dtype=np.int64),
                          {"long_name": "index of the edge in the circuit's edge list", "units": "1"}),
        delay_channel=("delay", np.asarray(channel, dtype=np.int64),
                       {"long_name": "channel of a per-channel delay (-1: one delay for every channel)",
                        "units": "1"}))
    for name, values, what in (("delay_ms", final, "learned delay at the end of training"),
                               ("delay_initial_ms", initial, "learned delay's initial value"),
                               ("delay_min_ms", lo, "lower bound of the learned delay"),
                               ("delay_max_ms", hi, "upper bound of the learned delay")):
        ds[name] = ("delay", np.asarray(values, dtype=np.float64), {"long_name": what, "units": "ms"})
    if result is not None and len(result.steps) and result.delays:  # keyed by edge index, a column per channel
        cols = [result.delays[str(i)][:, max(c, 0)] for i, c in zip(index, channel)]
        ds["delay_ms_history"] = (("step", "delay"), np.stack(cols, axis=1), {
            "long_name": "learned delay after the update of each logged training step (NaN: not recorded)",
            "units": "ms"})
    return ds


def _versions() -> tuple[str, str]:
    from . import __version__

    return __version__, torch.__version__


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
    from .plots import plot_run
    from .report import write_report
    from .training import train
    from .training.loop import steps_below_checkpoint

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
    ds, names = evaluate(module, study, dev)
    ds = _add_coords(ds)
    recon_node = _add_reconstruction(ds, study, module, names)
    ds = _add_history(ds, result)
    ds = _add_learned_delays(ds, module, result)
    ds = _add_learned_values(ds, module)
    version, torch_version = _versions()
    ds.attrs.update({
        "Conventions": "CF-1.8",
        "title": f"neurodelay study {study.name}",
        "study": study_text,
        "study_name": study.name,
        "neurodelay_version": version,
        "torch_version": torch_version,
        "device": dev,
        "seed": int(study.seed),
        "dt_ms": float(study.dt_ms),
        "evaluate_seed": int(study.evaluate.seed),
        "trained_steps": int(result.final_step) if result is not None else 0,
        "train_steps_per_second": float(result.run_steps_per_second) if result is not None else 0.0,
        "train_seconds": float(result.total_seconds) if result is not None else 0.0,
        "n_parameters": int(n_params),
    })

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

    _netcdf_attrs(ds)
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


def _attr_value(value):
    """A value netCDF can store as an attribute: bools as ints, None and containers as YAML text."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            for v in value):
        return np.asarray(value)
    return yaml.safe_dump(_plain(value), sort_keys=False, default_flow_style=True).strip()


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _netcdf_attrs(ds: xr.Dataset) -> None:
    """Make every attribute storable in netCDF (in place)."""
    for obj in (ds, *ds.variables.values()):
        obj.attrs = {k: _attr_value(v) for k, v in obj.attrs.items()}
