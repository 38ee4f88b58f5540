"""The run-level analyses a study can name in its ``analyses:`` list.

=================  ==========================================================
name               adds to ``results.nc`` (and figures)
=================  ==========================================================
disentanglement    ``correlation`` (latent x factor), ``correlation_score``,
                   ``matched_correlation_score``, ``collapsed_latent``,
                   ``mig``, ``dci_disentanglement``, ``dci_completeness``,
                   ``dci_informativeness``, ``sap`` (figure: correlation
                   heatmap)
lag                ``lag_steps``, ``lag_ms``, ``lag_readout_rmse_px`` (lag),
                   ``readout_rmse_px``, ``position_error_px``,
                   ``position_error_px_by_time`` (time), the lag-resolved
                   ``lag_correlation``, ``lag_mig``, ``lag_dci_*``,
                   ``lag_sap`` (lag) and ``latent_lag_steps`` / ``_ms`` /
                   ``_factor`` (figure: lag curves)
flash_lag          ``flash_lag_px``, ``flash_lag_ms`` (condition, speed),
                   ``flash_lag_px_by_direction``, ``flash_position_error_px``,
                   ``flash_latency_steps`` / ``_ms`` (read at the flash's
                   first representation); the battery
                   ``flash_lag_battery_px`` / ``_ms`` (read_at, condition,
                   speed), ``flash_lag_battery_px_by_direction``,
                   ``flash_lag_battery_ratio`` (read_at, condition),
                   ``flash_lag_px_by_read_offset`` (condition, speed,
                   read_offset) (figure: bars per rule, time course)
decoding_latency   per ``area``: ``decoding_flash_r2`` (area, latency_step),
                   ``flash_onset_ms``, ``motion_latency_ms``,
                   ``latency_advantage_ms`` with ``_ci`` (bound) (figure:
                   flash decoding by latency, latencies per area)
regions            ``region_mse`` (region), ``region_pixels``,
                   ``region_mse_by_distance`` (distance_bin, region),
                   ``distance_bin_images``, and for moving worlds
                   ``region_mse_by_time`` (figure: region errors)
occlusion          on worlds with an occluder: ``occlusion_error_px``,
                   ``occlusion_along_px``, ``occlusion_hold_px``
                   (steps_since_vanish), ``occlusion_reappear_error_px``,
                   ``occlusion_reappear_along_px`` (steps_since_reappear),
                   ``occlusion_visible_error_px``,
                   ``occlusion_mean_error_px``,
                   ``occlusion_reappear_mean_error_px``, with intervals
                   (figure: error against steps since the circle vanished)
traversals         ``traversal_images`` (latent, traversal, y, x),
                   ``latent_mean``, ``sweep_latents``, ``sweep_correlation``,
                   ``sweep_correlation_score``,
                   ``sweep_matched_correlation_score`` (figures: traversal
                   grid, factor sweeps)
=================  ==========================================================

An analysis that does not apply to a run returns None and adds nothing:
``lag`` and ``flash_lag`` need a moving world (at least 3 steps), ``regions``
a reconstruction, latent traversals a memoryless decoder.

The representation analysed is the node that feeds the reconstruction's
decoder when there is one (``z`` in the presets), else the trace named
``z``, else the only vector trace.

Disentanglement on moving worlds pools every sample and every step from the
representation's first valid step on, at lag 0. ``correlation`` covers every
factor of the world (velocities included); MIG, DCI, SAP and the mss
(``correlation_score``) use the four position factors, as the original did.
"""

from __future__ import annotations

import numbers

import attrs

import numpy as np
import torch
import xarray as xr

from neurodelay.analysis.disentanglement import (
    collapsed_latents,
    correlation_score,
    matched_correlation_score,
)
from neurodelay.analysis.figures import (
    plot_correlation,
    plot_decoding_latency,
    plot_flash_lag,
    plot_gamma_transfer,
    plot_lag,
    plot_occlusion,
    plot_regions,
    plot_sweeps,
    plot_traversals,
)
from neurodelay.analysis.flash_lag import flash_lag as _flash_lag
from neurodelay.analysis._checks import check_seed
from neurodelay.analysis._dataset import (
    CIRCLE_FACTORS,
    POSITION_FACTORS,
    check_has_time,
    representation_variable,
    score_inputs,
)
from neurodelay.analysis.lag import fit_readout, representational_lag
from neurodelay.analysis.lag_scores import lag_resolved_scores, lag_scores_core
from neurodelay.analysis.regions import heldout_region_errors, moving_region_errors, static_region_errors
from neurodelay.analysis.registry import register
from neurodelay.analysis.theory import theory_lag
from neurodelay.analysis.transfer import blend_nodes, gamma_transfer
from neurodelay.analysis.traversals import decoder_input, factor_sweeps, latent_traversals
from neurodelay.results import reconstruction_node
from neurodelay.analysis.flash_lag import flash_lag_battery
from neurodelay.analysis.blank import blank_extrapolation
from neurodelay.components import Extrapolator
from neurodelay.analysis.reversal import reversal_overshoot
from neurodelay.analysis.occlusion import OCCLUSION_FACTOR, occlusion_error
from neurodelay.analysis.decoding_latency import decoding_latency
from neurodelay.simulation import simulate
from neurodelay.worlds import Episode

__all__ = ["disentanglement_scores", "run_disentanglement", "run_lag", "run_flash_lag", "run_regions",
           "run_traversals"]


# --------------------------------------------------------------------------
# Dataset-level disentanglement
# --------------------------------------------------------------------------


def disentanglement_scores(ds: xr.Dataset, node: str | None = None, *, from_step: int | None = None,
                           factors=None, max_rows: int = 20000, seed: int = 0) -> xr.Dataset:
    """Disentanglement of a representation over a results Dataset.

    Rows are ``(z[s, t], factors[s, t])`` for every sample ``s`` and every
    step ``t >= from_step`` (default: the representation's first valid
    step, the ``first_valid_step`` attribute, 0 if absent), at most
    ``max_rows`` of them (seeded subsample).

    Parameters
    ----------
    ds : xarray.Dataset
        ``factors`` (sample, time, factor) and the representation trace
        (sample, time, unit).
    node : str, optional
        Representation node or variable (see
        :func:`neurodelay.analysis.lag.representation_variable`).
    from_step : int, optional
    factors : str or sequence of str, optional
        Factors scored by MIG, DCI, SAP and the mss, distinct (default: the
        four position factors present); the mss pairs latent ``i`` with the
        ``i``-th of them, in the order given. A single name (a str) scores
        that factor alone.
    max_rows : int
        Rows at most, >= 3.
    seed : int
        Seed (>= 0) of the subsample and of DCI's split.

    Returns
    -------
    xarray.Dataset
        ``correlation`` (unit, factor), ``correlation_score`` (mss over the
        scored factors, latent i ~ factor i), ``matched_correlation_score``,
        ``collapsed_latent`` (unit; 1 = constant), ``mig``,
        ``dci_disentanglement``, ``dci_completeness``,
        ``dci_informativeness``, ``sap`` (scalars in [0, 1]; NaN, with a
        ``nan_reason`` attribute, when every scored factor is constant over
        the rows).

    Raises
    ------
    ValueError
        Bad arguments, fewer than 3 rows, or a NaN or infinite value in the
        representation (from ``from_step``) or in the factors.
    KeyError
        Unknown node or factors.
    """
    var = representation_variable(ds, node)
    seed = check_seed(seed)
    check_has_time(ds)
    n_t = ds.sizes["time"]
    if from_step is None:
        from_step = min(int(ds[var].attrs.get("first_valid_step", 0)), n_t - 1)
    if isinstance(from_step, (bool, np.bool_)) or not isinstance(from_step, numbers.Integral) \
            or not 0 <= from_step < n_t:
        raise ValueError(f"from_step must be an integer step in [0, {n_t - 1}] (the sequence has {n_t} steps), "
                         f"got {from_step!r}.")
    from_step = int(from_step)
    names, scored_names, scored, z, f = score_inputs(ds, var, from_step, factors, max_rows)
    n_rows = z.shape[0] * (n_t - from_step)
    if n_rows < 3:
        raise ValueError(f"disentanglement needs at least 3 rows (samples x steps from from_step={from_step}), "
                         f"got {z.shape[0]} sample(s) x {n_t - from_step} step(s) = {n_rows}; evaluate more "
                         f"samples or start earlier.")
    out = lag_scores_core(z, f, np.array([0]), from_step, scored, int(max_rows), seed)
    corr = out["correlation"][0]
    sub = corr[:, [names.index(n) for n in scored_names]]  # in the order given: latent i ~ factor i
    rows = z[:, from_step:].reshape(-1, z.shape[-1])
    unit = ds[var].dims[2]
    common = {"node": var, "from_step": int(from_step)}
    text = f"over the position factors ({', '.join(scored_names)})"
    data = {
        "correlation": ((unit, "factor"), corr, {"units": "1", "long_name": "Pearson correlation of each latent "
                                                 "with each factor (0 for a constant latent)", **common}),
        "correlation_score": ((), correlation_score(sub), {
            "units": "1", "long_name": f"mss: mean squared deviation of the correlation from the identity {text}"}),
        "matched_correlation_score": ((), matched_correlation_score(sub), {
            "units": "1", "long_name": f"mss under the best pairing and signs of latents and factors {text}"}),
        "collapsed_latent": ((unit,), collapsed_latents(rows, tol=1e-3).astype(np.int8), {
            "units": "1", "long_name": "latent is collapsed (std <= 1e-3 of its magnitude): 1, else 0"}),
    }
    texts = {"mig": "mutual information gap", "dci_disentanglement": "DCI disentanglement",
             "dci_completeness": "DCI completeness", "dci_informativeness": "DCI informativeness (held-out R^2)",
             "sap": "separated attribute predictability"}
    reason = out["nan_reason"][0]
    for key, label in texts.items():
        data[key] = ((), float(out[key][0]), {"units": "1", "long_name": f"{label} {text}", **common,
                                              **({"nan_reason": reason} if reason else {})})
    coords = {"factor": ds["factor"]}
    if unit in ds.coords:
        coords[unit] = ds[unit]
    return xr.Dataset(data, coords=coords)


# --------------------------------------------------------------------------
# Helpers over the run context
# --------------------------------------------------------------------------


def _recon_node(results: xr.Dataset, ctx) -> str | None:
    if "reconstruction" in results.data_vars and "node" in results["reconstruction"].attrs:
        return str(results["reconstruction"].attrs["node"])
    try:
        return reconstruction_node(ctx.study, ctx.module)
    except Exception:  # noqa: BLE001 - no study or no unambiguous image node
        return None


def _var_of_node(results: xr.Dataset, node: str) -> str | None:
    for name, v in results.data_vars.items():
        if v.attrs.get("node") == node or (name == node and "node" not in v.attrs):
            return str(name)
    return None


def _representation(results: xr.Dataset, ctx) -> tuple[str, str]:
    """(results variable, circuit trace) of the representation."""
    recon = _recon_node(results, ctx)
    if recon is not None and ctx.module is not None:
        try:
            node = decoder_input(ctx.module, recon)
        except (KeyError, ValueError):
            node = None
        if node is not None:
            var = _var_of_node(results, node)
            if var is not None and results[var].ndim == 3:
                return var, node
    var = representation_variable(results)
    return var, str(results[var].attrs.get("node", var))


def _static(world) -> bool:
    """A world of single frames (CircleOverBlob)."""
    return int(getattr(world, "n_frames", 1)) == 1


def _moving(results: xr.Dataset) -> bool:
    names = [str(n) for n in results["factor"].values] if "factor" in results.coords else []
    return results.sizes.get("time", 1) >= 3 and all(n in names for n in CIRCLE_FACTORS)


# --------------------------------------------------------------------------
# Registered analyses
# --------------------------------------------------------------------------


@register("disentanglement")
def run_disentanglement(results: xr.Dataset, ctx) -> xr.Dataset:
    """Correlation matrix, mss, MIG, DCI and SAP of the representation (see the module docstring)."""
    var, _ = _representation(results, ctx)
    out = disentanglement_scores(results, var)
    ctx.save_figure(plot_correlation(out["correlation"], title=f"correlation of {var} with the factors"),
                    "correlation", f"Latent-factor correlation of `{var}` (evaluation set, lag 0).")
    return out


@register("lag")
def run_lag(results: xr.Dataset, ctx) -> xr.Dataset | None:
    """Representational lag of the readout and lag-resolved scores (moving worlds only)."""
    if not _moving(results):
        return None
    var, node = _representation(results, ctx)
    lag = representational_lag(results, var)
    scores = lag_resolved_scores(results, var)
    circuit = ctx.module.circuit if ctx.module is not None else None
    theory = theory_lag(results, circuit, node, from_step=int(lag["lag_steps"].attrs["from_step"]))
    estimate = (f"estimate {float(lag['lag_ms']):.1f} ms" if np.isfinite(float(lag["lag_ms"]))
                else "no lag read: " + lag["lag_steps"].attrs.get("nan_reason", ""))
    ctx.save_figure(plot_lag(xr.merge([lag, theory]), scores), "lag",
                    f"Lag of `{var}`: encoding error and readout error against lag ({estimate}), "
                    f"lag-resolved disentanglement, signed position error over time.")
    return xr.merge([lag, scores, theory], compat="no_conflicts", join="outer", combine_attrs="override")


@register("flash_lag")
def run_flash_lag(results: xr.Dataset, ctx) -> xr.Dataset | None:
    """Flash-lag in the probe's conditions (moving worlds only): read at the flash's first representation
    (``flash_lag_px`` ...), and the battery of readout rules (``flash_lag_battery_px`` ...: first, 2 steps
    later, averaged over 4 steps)."""
    if not _moving(results) or ctx.module is None or _static(ctx.world):
        return None
    var, node = _representation(results, ctx)
    readout, _ = fit_readout(results, var)
    out = _flash_lag(ctx.module, ctx.world, readout, node=node, device=ctx.device)
    battery = flash_lag_battery(ctx.module, ctx.world, readout, node=node, device=ctx.device)
    out = xr.merge([out, battery], compat="no_conflicts", join="outer", combine_attrs="override")
    ctx.save_figure(plot_flash_lag(out), "flash_lag",
                    "Flash-lag: decoded moving-circle position minus decoded flash position along the motion, "
                    "read at the flash's first representation, a fixed latency after it, and averaged over a "
                    "postdiction window; and read at each step around the flash.")
    return out


@register("regions")
def run_regions(results: xr.Dataset, ctx) -> xr.Dataset | None:
    """Reconstruction error inside / on the edge of / around the circle."""
    recon = _recon_node(results, ctx)
    if recon is None:
        return None
    if _static(ctx.world):
        out = static_region_errors(ctx.module, ctx.world, recon, device=ctx.device)
    elif "reconstruction" in results.data_vars:
        out = moving_region_errors(results, ctx.world)
    else:
        return None
    ctx.save_figure(plot_regions(out), "regions", "Reconstruction error by region (inside, edge, object, "
                    "background), against circle-blob distance" + (" and over time." if "time" in out.dims else "."))
    return out


@register("heldout")
def run_heldout(results: xr.Dataset, ctx) -> xr.Dataset | None:
    """Region errors on trained and held-out circle positions (static worlds with ``circle_values`` even/odd)."""
    if ctx.module is None or not _static(ctx.world) or getattr(ctx.world, "circle_values", "grid") == "grid":
        return None
    recon = _recon_node(results, ctx)
    if recon is None:
        return None
    return heldout_region_errors(ctx.module, ctx.world, recon, device=ctx.device)


@register("blank")
def run_blank(results: xr.Dataset, ctx) -> xr.Dataset | None:
    """Blank the input for 1-4 steps and decode the representation's own extrapolation (moving, linear worlds)."""
    if not _moving(results) or ctx.module is None or _static(ctx.world) \
            or getattr(ctx.world, "motion", "linear") != "linear" or "circle_vx" not in results["factor"].values:
        return None
    recon = _recon_node(results, ctx)
    if recon is None:
        return None
    var, node = _representation(results, ctx)
    circuit = ctx.module.circuit
    alphas = [circuit.nodes[e.target_node].alpha for e in circuit.edges
              if e.source == node and isinstance(circuit.nodes.get(e.target_node), Extrapolator)]
    return blank_extrapolation(ctx.module, results, ctx.world, node=var, recon_node=recon,
                               alpha=float(alphas[0]) if alphas else 1.0, device=ctx.device)


#: Seed of the straight paths on which the reversal and occlusion analyses calibrate their readout (not the
#: evaluation's).
_CALIBRATION_SEED = 7_340_033


def _straight_calibration(results: xr.Dataset, ctx, var: str, node: str) -> xr.Dataset | None:
    """The circuit's traces on straight, unoccluded paths of its world (None without a module).

    The world's other settings (size, speeds, pixel noise) are kept; an occluded world's factors keep their
    layout, ``circle_occluded`` 0 throughout, so that a circuit that reads ``world.factors`` runs unchanged.
    """
    if ctx.module is None:
        return None
    changes = {"motion": "linear"}
    if getattr(ctx.world, "occlusion_frames", 0):
        changes.update(occlusion_frames=0, occlusion_start=None)
    episode = attrs.evolve(ctx.world, **changes).sample(int(results.sizes["sample"]), seed=_CALIBRATION_SEED)
    names = tuple(ctx.world.factor_names)
    if len(names) > len(episode.factor_names):  # the occluder's factor: nothing hidden
        pad = episode.factors.new_zeros(episode.factors.shape[:-1] + (len(names) - len(episode.factor_names),))
        episode = Episode(episode.frames, torch.cat([episode.factors, pad], -1), names)
    calibration = simulate(ctx.module, episode, device=ctx.device)
    return calibration.rename({v: var for v in calibration.data_vars
                               if calibration[v].attrs.get("node") == node and v != var})


@register("reversal")
def run_reversal(results: xr.Dataset, ctx) -> xr.Dataset | None:
    """Overshoot of the reported position past the turning points (moving worlds with reversals)."""
    if not _moving(results) or getattr(ctx.world, "motion", "linear") != "reversal":
        return None
    var, node = _representation(results, ctx)
    return reversal_overshoot(results, var, calibration=_straight_calibration(results, ctx, var, node))


@register("occlusion")
def run_occlusion(results: xr.Dataset, ctx) -> xr.Dataset | None:
    """Error of the reported position while the circle is hidden and after it reappears (worlds with an
    occluder); the readout is calibrated on straight, unoccluded paths of the same world."""
    if not _moving(results) or OCCLUSION_FACTOR not in results["factor"].values:
        return None
    var, node = _representation(results, ctx)
    out = occlusion_error(results, var, calibration=_straight_calibration(results, ctx, var, node))
    if out is not None:
        ctx.save_figure(plot_occlusion(out), "occlusion",
                        "Distance of the reported position from the circle while it is hidden behind the occluder "
                        "and after it reappears (mean over sequences, 95 % bootstrap interval), against the error "
                        "of a report that holds the last seen position.")
    return out


@register("decoding_latency")
def run_decoding_latency(results: xr.Dataset, ctx) -> xr.Dataset | None:
    """Flash onset, motion latency and latency advantage of every area (moving-circle worlds, a built circuit)."""
    if ctx.module is None or not _moving(results) or _static(ctx.world) \
            or not hasattr(ctx.world, "episode_from_trajectories"):
        return None
    out = decoding_latency(ctx.module, ctx.world, n_samples=int(results.sizes["sample"]), device=ctx.device)
    ctx.save_figure(plot_decoding_latency(out), "decoding_latency",
                    "Time-resolved decoding per area: a flash's place by latency, and each area's flash onset "
                    "against its lag behind a moving circle.")
    return out


@register("gamma_transfer")
def run_gamma_transfer(results: xr.Dataset, ctx) -> xr.Dataset | None:
    """The trained circuit re-evaluated with its Blend's gamma set to 0, 0.2, ..., 1 (moving worlds, one Blend)."""
    if ctx.module is None or not _moving(results) or _static(ctx.world) or ctx.study is None:
        return None
    if len(blend_nodes(ctx.module.circuit)) != 1:
        return None
    out = gamma_transfer(ctx.module, ctx.study, ctx.device)
    ctx.save_figure(plot_gamma_transfer(out), "gamma_transfer",
                    f"Trained at gamma = {out.attrs['trained_gamma']:g}, evaluated with other gammas: "
                    f"reconstruction error and lag.")
    return out


@register("traversals")
def run_traversals(results: xr.Dataset, ctx) -> xr.Dataset | None:
    """Latent traversals through the decoder and factor sweeps through the encoder."""
    if ctx.module is None:
        return None
    var, node = _representation(results, ctx)
    unit = results[var].dims[2]
    parts = []
    recon = _recon_node(results, ctx)
    if recon is not None:
        try:
            source = decoder_input(ctx.module, recon)
        except (KeyError, ValueError):
            source = None
        if source == node:
            start = min(int(results[var].attrs.get("first_valid_step", 0)), results.sizes["time"] - 1)
            z = np.asarray(results[var].values[:, start:], dtype=np.float64).reshape(-1, results.sizes[unit])
            trav = latent_traversals(ctx.module, recon, z, unit_dim=unit, device=ctx.device)
            ctx.save_figure(plot_traversals(trav), "traversals",
                            f"Latent traversals: decoder `{recon}` on `{node}` with one latent swept.")
            parts.append(trav)
    names = list(ctx.world.factor_names)
    factors = [f for f in POSITION_FACTORS if f in names]
    if factors:
        sweeps = factor_sweeps(ctx.module, ctx.world, node, factors=factors, unit_dim=unit, device=ctx.device)
        ctx.save_figure(plot_sweeps(sweeps), "factor_sweeps",
                        f"Factor sweeps (16 steps, others at 0.5): `{node}` against each factor, and their "
                        f"correlation.")
        parts.append(sweeps)
    if not parts:
        return None
    out = xr.merge(parts, compat="no_conflicts", join="outer", combine_attrs="override")
    if unit in results.coords:
        out = out.assign_coords({unit: results[unit]})
    return out
