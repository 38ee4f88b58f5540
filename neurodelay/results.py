"""The results of a study: its evaluation assembled into the Dataset that ``results.nc`` holds.

The one module that assembles results: :func:`assemble_results` runs the
study's evaluation set through the trained module (:func:`evaluate`) and
adds the coordinates, the reconstruction and its error
(:func:`add_reconstruction`), the loss history, the learned delays and the
run's attributes. The pipeline (:mod:`neurodelay.pipeline`) writes it with
the analyses' variables; analyses that evaluate a changed circuit
(:func:`neurodelay.analysis.transfer.gamma_transfer`) use the same functions.

``results.nc``: dims ``sample``, ``time`` (ms), ``latent``, ``factor``, ``y``,
``x``, ``step`` (training step); variables ``frames``, ``reconstruction``
(the decoded images), one trace per node named after the node, ``factors``,
``loss_<term>`` per loss term over ``step``, and the evaluation metrics
``reconstruction_mse`` and ``reconstruction_mse_by_time``. A node (or
auxiliary trace) whose name is a dimension or one of these variable names is
stored as ``node_<name>`` (attribute ``node`` keeps the original name).
Global attributes: the study as YAML text, package and torch versions,
device, seed (netCDF attributes hold no dicts or booleans: YAML text and
integers: :func:`neurodelay.record.netcdf_attr_value`).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from ._util.version import versions
from .components.base import RunContext
from .record import module_dataset, netcdf_attr_value
from .study import Study

__all__ = ["assemble_results", "evaluate", "reconstruction_node", "add_coords", "add_reconstruction",
           "add_history", "add_learned_delays", "add_learned_values", "storable_attrs"]


def image_nodes(module, frame_shape) -> list[str]:
    """The nodes whose output has the shape of the world's frames."""
    shapes = module.plan.shapes
    return [n for n in module.circuit.nodes if shapes.get(n) is not None and tuple(shapes[n]) == tuple(frame_shape)]


def reconstruction_node(study: Study, module) -> str | None:
    """The node whose output is the reconstruction (None if there is none, or it is ambiguous)."""
    if study.objective is not None and study.objective.reconstruct is not None:
        return study.objective.reconstruct
    found = image_nodes(module, study.world.frame_shape)
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


def add_coords(ds: xr.Dataset) -> xr.Dataset:
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


def add_reconstruction(ds: xr.Dataset, study: Study, module, names: dict[str, str]) -> str | None:
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


def add_history(ds: xr.Dataset, result) -> xr.Dataset:
    if result is None or len(result.steps) == 0:
        return ds
    ds = ds.assign_coords(step=("step", np.asarray(result.steps, dtype=np.int64),
                                {"long_name": "training step (optimiser updates)", "units": "1"}))
    for term, values in result.history.items():
        ds[f"loss_{term}"] = ("step", np.asarray(values, dtype=np.float64), {
            "long_name": f"training loss: {term} (summed over elements and scored steps, averaged over "
                         f"the batch's sequences)", "units": "1"})
    return ds


def add_learned_values(ds: xr.Dataset, module) -> xr.Dataset:
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


def add_learned_delays(ds: xr.Dataset, module, result) -> xr.Dataset:
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




def assemble_results(module, study: Study, device: str, *, result=None, n_parameters: int = 0,
                     study_text: str = "") -> tuple[xr.Dataset, dict[str, str], str | None]:
    """The results Dataset of a trained module on the study's evaluation set (the analyses' variables aside).

    Parameters
    ----------
    module : CircuitModule
        The trained circuit, on ``device``.
    study : Study
        The single-run study (its world, evaluation set, objective).
    device : str
    result : TrainResult or None
        What training did (None: nothing was trained).
    n_parameters : int
        The circuit's trainable parameters (recorded).
    study_text : str
        The study as YAML text (recorded).

    Returns
    -------
    (xarray.Dataset, dict, str or None)
        The Dataset, the trace -> variable names, and the node whose
        output is the reconstruction (None if there is none).
    """
    ds, names = evaluate(module, study, device)
    ds = add_coords(ds)
    recon_node = add_reconstruction(ds, study, module, names)
    ds = add_history(ds, result)
    ds = add_learned_delays(ds, module, result)
    ds = add_learned_values(ds, module)
    version, torch_version = versions()
    ds.attrs.update({
        "Conventions": "CF-1.8",
        "title": f"neurodelay study {study.name}",
        "study": study_text,
        "study_name": study.name,
        "neurodelay_version": version,
        "torch_version": torch_version,
        "device": device,
        "seed": int(study.seed),
        "dt_ms": float(study.dt_ms),
        "evaluate_seed": int(study.evaluate.seed),
        "trained_steps": int(result.final_step) if result is not None else 0,
        "train_steps_per_second": float(result.run_steps_per_second) if result is not None else 0.0,
        "train_seconds": float(result.total_seconds) if result is not None else 0.0,
        "n_parameters": int(n_parameters),
    })
    return ds, names, recon_node


def storable_attrs(ds: xr.Dataset) -> None:
    """Make every attribute of ``ds`` storable in netCDF, in place (:func:`neurodelay.record.netcdf_attr_value`)."""
    for obj in (ds, *ds.variables.values()):
        obj.attrs = {k: netcdf_attr_value(v) for k, v in obj.attrs.items()}
