"""Traversals and factor sweeps: what one latent draws, what one factor moves.

Latent traversals (:func:`latent_traversals`)
    One latent at a time is swept over a range (from its 1st to its 99th
    percentile over the evaluation set, by default) while the others are
    held at their mean; each latent vector is decoded to an image by the
    circuit's decoder node (the node whose output is the reconstruction),
    run on its own, outside time. Needs a memoryless decoder (a
    ``FrameModule``, e.g. ``ConvDecoder``).

Factor sweeps (:func:`factor_sweeps`), the original's correlation analysis
    One position factor at a time takes ``n_steps`` values
    ``linspace(0, 1, n_steps)`` (16 in the original) with the other
    position factors at 0.5 and any other factor (velocities) at 0. Each
    scene is shown as a *static* sequence (the same frame at every step)
    and the representation is read at its last step, once the scene has
    reached it (``D + 2`` steps, ``D`` its first valid step). A static
    input keeps the circuit's recurrences at rest (a linear extrapolation
    of a constant is the constant), so this is the circuit's code for the
    scene, not a trajectory through its dynamics (the original passed its
    sweeps through the recurrence as if they were motion). Column ``k`` of
    ``sweep_correlation`` is the Pearson correlation of each latent with
    factor ``k`` over sweep ``k``; a constant latent scores 0, not NaN.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from neurodelay._util.validators import as_names
from neurodelay._util.validators import check_int as _check_int
from neurodelay.analysis._checks import finite_report
from neurodelay.analysis.disentanglement import correlation_matrix, correlation_score, matched_correlation_score
from neurodelay.analysis.traces import perception_latency, trace_name
from neurodelay.analysis.lag import POSITION_FACTORS
from neurodelay.components.base import FrameModule, RunContext
from neurodelay.simulation import simulate
from neurodelay.worlds.episode import Episode

__all__ = ["decoder_input", "latent_traversals", "factor_sweeps"]


def decoder_input(module, recon_node: str) -> str:
    """The node that feeds the decoder ``recon_node``.

    Raises
    ------
    ValueError
        If ``recon_node`` has not exactly one incoming edge or is not a
        memoryless (frame-by-frame) module.
    """
    if recon_node not in module.nodes:
        raise KeyError(f"recon_node={recon_node!r} is not a node ({', '.join(module.nodes)}).")
    edges = module.plan.inputs_of(recon_node)
    if len(edges) != 1 or edges[0].source.startswith("world."):
        raise ValueError(f"node {recon_node!r} must have exactly one input from a node to be decoded on its own; "
                         f"it has {[e.source for e in edges]}.")
    if not isinstance(module.nodes[recon_node], FrameModule):
        raise ValueError(f"node {recon_node!r} ({type(module.nodes[recon_node]).__name__}) is not memoryless; "
                         f"latent traversals need a frame-by-frame decoder such as ConvDecoder.")
    return edges[0].source


def latent_traversals(module, recon_node: str, latents, *, n_steps: int = 8,
                      quantiles: tuple[float, float] = (0.01, 0.99), unit_dim: str = "latent",
                      device="cpu") -> xr.Dataset:
    """Decode one-latent-at-a-time traversals.

    Parameters
    ----------
    module : CircuitModule
    recon_node : str
        The decoder node (memoryless).
    latents : array_like, shape (n, M)
        Representation values over the evaluation set (the decoder's
        input, ``M`` its width), for the mean and the range; finite.
    n_steps : int
        Values per latent.
    quantiles : (float, float)
        The range of each latent, as quantiles of ``latents``:
        ``0 <= lo < hi <= 1``.
    unit_dim : str
        Name of the latent dimension in the result.
    device : str or torch.device

    Returns
    -------
    xarray.Dataset
        ``traversal_images`` (unit_dim, traversal, y, x) in [0, 1], with
        the coordinate ``traversal_value`` (unit_dim, traversal);
        ``latent_mean`` (unit_dim).

    Raises
    ------
    KeyError
        ``recon_node`` is not a node.
    ValueError
        ``recon_node`` is not a memoryless decoder fed by one node (see
        :func:`decoder_input`) or does not output images; ``latents`` is not
        (n, M) with the decoder's input width M, or holds NaN or infinite
        values; bad ``n_steps`` or ``quantiles``.
    """
    source = decoder_input(module, recon_node)
    shapes = getattr(module.plan, "shapes", {}) or {}
    out_shape = shapes.get(recon_node)
    if out_shape is not None and (len(out_shape) != 3 or out_shape[0] != 1):
        raise ValueError(f"node {recon_node!r} outputs shape {tuple(out_shape)} per step, not a one-channel image "
                         f"(1, y, x); latent traversals need the decoder node (the node whose output is the "
                         f"reconstruction), e.g. 'dec'.")
    n_steps = _check_int("n_steps", n_steps, 2)
    try:
        z = np.asarray(latents.detach().cpu() if hasattr(latents, "detach") else latents, dtype=np.float64)
    except (TypeError, ValueError) as error:  # strings, ragged lists
        raise ValueError(f"latents must be an array of numbers of shape (n, M); it could not be read as one "
                         f"({error}). Pass the trace of {source!r} over the evaluation set.") from None
    if z.ndim != 2 or z.shape[0] < 1:
        raise ValueError(f"latents must have shape (n, M), got {z.shape}.")
    in_shape = shapes.get(source)
    if in_shape is not None and tuple(in_shape) != (z.shape[1],):
        raise ValueError(f"latents must have the width of the decoder's input: {recon_node!r} decodes "
                         f"{source!r} of shape {tuple(in_shape)} per step, got latents of shape {z.shape}; "
                         f"pass the trace of {source!r} over the evaluation set, (n, {in_shape[0]}).")
    report = finite_report(z, ("row", "column"))
    if report is not None:
        raise ValueError(f"latents must contain only finite values; found {report}. Drop those rows before "
                         f"the traversal.")
    try:
        q0, q1 = quantiles
    except (TypeError, ValueError):
        q0 = q1 = None
    if not all(isinstance(q, numbers.Real) and not isinstance(q, (bool, np.bool_)) for q in (q0, q1)) \
            or not 0.0 <= q0 < q1 <= 1.0:
        raise ValueError(f"quantiles must be a pair (lo, hi) with 0 <= lo < hi <= 1, got {quantiles!r}; "
                         f"use e.g. quantiles=(0.01, 0.99).")
    m = z.shape[1]
    mean = z.mean(axis=0)
    lo, hi = np.quantile(z, q0, axis=0), np.quantile(z, q1, axis=0)
    values = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, n_steps)[None]  # (M, n_steps)
    batch = np.repeat(np.repeat(mean[None, None], m, 0), n_steps, 1)  # (M, n_steps, M)
    for j in range(m):
        batch[j, :, j] = values[j]
    dec = module.nodes[recon_node]
    with torch.no_grad():
        x = torch.as_tensor(batch.reshape(-1, m), dtype=torch.float32, device=device)
        images, _ = dec.frame(x, RunContext(sample=False))
    images = images.detach().cpu().numpy().astype(np.float64)
    images = images.reshape(m, n_steps, *images.shape[1:])
    if images.ndim == 5:
        images = images[:, :, 0]
    return xr.Dataset(
        {
            "traversal_images": ((unit_dim, "traversal", "y", "x"), images, {
                "units": "1", "long_name": f"decoder {recon_node!r} output as one latent sweeps its range, the "
                                           f"others at their mean", "node": recon_node}),
            "latent_mean": ((unit_dim,), mean, {"units": "1", "long_name": "mean of each latent over the "
                                                "evaluation set"}),
        },
        coords={"traversal_value": ((unit_dim, "traversal"), values, {
            "units": "1", "long_name": f"value of the swept latent (quantiles {q0:g} to {q1:g})"})},
    )


def factor_sweeps(module, world, node: str, *, n_steps: int = 16, factors: str | Sequence[str] = POSITION_FACTORS,
                  others: float = 0.5, n_frames: int | None = None, unit_dim: str = "latent",
                  device="cpu") -> xr.Dataset:
    """Sweep one factor at a time and record the representation (the original's correlation analysis).

    Parameters
    ----------
    module : CircuitModule
    world : CircleOverBlob or MovingCircle
        Renderer and factor layout.
    node : str
        The representation trace: a node (or auxiliary trace), or its
        results variable (``node_latent`` for a node ``latent``).
    n_steps : int
        Values per factor (16 in the original).
    factors : str or sequence of str
        Factors swept (default the four positions); a single name (a str)
        sweeps that factor alone.
    others : float
        Value of the other position factors.
    n_frames : int, optional
        Steps of the static sequence (default ``D + 2``).
    unit_dim : str
        Name of the latent dimension in the result.
    device : str or torch.device

    Returns
    -------
    xarray.Dataset
        ``sweep_latents`` (sweep_factor, sweep_step, unit_dim),
        ``sweep_correlation`` (unit_dim, sweep_factor),
        ``sweep_correlation_score`` (the original's mss, latent i paired
        with factor i) and ``sweep_matched_correlation_score`` (best
        pairing and signs); coordinate ``sweep_value`` (sweep_step).
    """
    n_steps = _check_int("n_steps", n_steps, 2)
    names = list(world.factor_names)
    factors = as_names(factors, "factors")
    unknown = [f for f in factors if f not in names]
    if unknown or not factors:
        raise ValueError(f"factors must be among the world's factors {names}, got {list(factors)!r}.")
    if len(set(factors)) != len(factors):
        raise ValueError(f"factors must not repeat a name (sweep i is paired with latent i by the mss), got "
                         f"{list(factors)!r}.")
    if isinstance(others, bool) or not isinstance(others, numbers.Real) or not np.isfinite(others):
        raise ValueError(f"others must be a finite number (the value of the position factors not swept), "
                         f"got {others!r}; use e.g. others=0.5.")
    trace = trace_name(module, node)  # a node, or its results variable (a node `latent` is `node_latent`)
    latency = perception_latency(module, trace)
    n_t = latency + 2 if n_frames is None else _check_int("n_frames", n_frames, latency + 1)
    sweep = np.linspace(0.0, 1.0, n_steps)
    table = np.zeros((len(factors), n_steps, len(names)))
    for i, name in enumerate(names):
        if name in POSITION_FACTORS:
            table[:, :, i] = others
    for k, name in enumerate(factors):
        table[k, :, names.index(name)] = sweep
    f = torch.as_tensor(table.reshape(-1, 1, len(names)), dtype=torch.float32, device=device)
    frames = world.render(f)
    ep = Episode(frames.expand(-1, n_t, -1, -1, -1).contiguous(), f.expand(-1, n_t, -1).contiguous(), tuple(names))
    traces = simulate(module, ep, device=device)
    var = next((name for name, v in traces.data_vars.items() if v.attrs.get("node") == trace), None)
    if var is None:
        raise KeyError(f"node={node!r} is not a trace of the circuit ({', '.join(map(str, traces.data_vars))}).")
    z = np.asarray(traces[var].values[:, -1], dtype=np.float64).reshape(len(factors), n_steps, -1)
    corr = np.stack([correlation_matrix(z[k], sweep[:, None])[:, 0] for k in range(len(factors))], axis=1)
    return xr.Dataset(
        {
            "sweep_latents": (("sweep_factor", "sweep_step", unit_dim), z, {
                "units": "1", "long_name": f"representation {node!r} of static scenes as one factor sweeps [0, 1], "
                                           f"the other positions at {others:g}", "node": node}),
            "sweep_correlation": ((unit_dim, "sweep_factor"), corr, {
                "units": "1", "long_name": "correlation of each latent with the swept factor over its sweep"}),
            "sweep_correlation_score": ((), correlation_score(corr), {
                "units": "1", "long_name": "original mss: mean squared deviation of the sweep correlation from "
                                           "the identity (latent i ~ factor i)"}),
            "sweep_matched_correlation_score": ((), matched_correlation_score(corr), {
                "units": "1", "long_name": "mss under the best pairing and signs of latents and factors"}),
        },
        coords={"sweep_factor": ("sweep_factor", list(factors), {"long_name": "swept factor"}),
                "sweep_value": ("sweep_step", sweep, {"units": "1", "long_name": "value of the swept factor "
                                                      "(factor units)"})},
    )
