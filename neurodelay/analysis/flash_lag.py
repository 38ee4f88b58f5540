"""Flash-lag: where the circuit sees a moving circle when a flash beside it is seen.

Definition
----------
The stimuli come from a :class:`~neurodelay.worlds.flash.FlashLagProbe`: the
circle moves along a straight path and a flash, aligned with it along the
motion, is shown for one frame at step ``t_f`` (standard,
flash-initiated and flash-terminated conditions, several speeds, four
directions of motion).

"The circuit decides what is decoded": positions are read from the
circuit's representation ``z`` with the linear readout of
:mod:`neurodelay.analysis.lag` (fitted on moving stimuli, lag-aligned), and
times come from the circuit's own conduction delays:

* **When is the flash seen?** At ``t_f + D``, where ``D`` is the first
  valid step of the representation node (``module.plan.valid_from``): the
  delay along the fastest path from the world, the earliest step at which
  anything shown at ``t_f`` can be represented. A flash carries no motion,
  so nothing can move it earlier.
* **Where is the flash seen?** Where the circuit represents a *stationary*
  circle at the flash's place: the readout applied to ``z`` at ``t_f + D``
  of a sequence in which the circle rests at the flash's place from the
  first frame (:meth:`FlashLagProbe.reference_episode`). The one-frame
  flash itself is not decoded: before and after it the scene holds no
  circle at all, which a circle-position readout cannot decode, and a
  single-circle readout cannot separate two disks shown together.
* **Where is the moving circle seen then?** The readout applied to ``z`` at
  ``t_f + D`` of the moving sequence, which shows the flash disk at ``t_f``
  (``show_flash=True``, the default; the readout was fitted on one circle,
  so a circuit that mixes the two disks reports the mixture).

The flash-lag is the moving circle's decoded position minus the flash's
decoded position, projected on the direction of motion (positive: the
moving circle is seen ahead of the flash), averaged over the directions of
motion, in pixels and in ms (pixels divided by the speed in pixels per ms).
Averaging over opposite directions cancels every displacement that does not
depend on the direction of motion (a readout bias at the flash's place, a
pull of the flash disk on the decoded position): what remains is the
motion-induced displacement. ``flash_lag_px_by_direction`` keeps each
direction.

For linear circuits the answer is analytic. A pure conduction delay ``d``
sees both late by ``d``: flash-lag 0 in every condition. Feed-forward
extrapolation of the delayed signal by ``d`` steps (the real-time alignment
circuit) sees the moving circle where it is now, ``v d`` ahead of the flash
in the standard and flash-terminated conditions (where it has moved up to
the flash) and 0 in the flash-initiated one (it has not moved yet at
``t_f``). Recurrent inertia with ``gamma, alpha`` adds a lag
``gamma (1 - alpha) / (1 - gamma)`` to the moving circle only: flash-lag
``-v gamma (1 - alpha) / (1 - gamma)`` (standard, flash-terminated), 0
(flash-initiated).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
import xarray as xr

from neurodelay.analysis.lag import LinearReadout, px_per_unit
from neurodelay.worlds.episode import Episode
from neurodelay.worlds.flash import FlashLagProbe

__all__ = ["flash_lag", "perception_latency"]


def perception_latency(module, node: str) -> int:
    """First valid step of a node: the steps a stimulus needs to reach it.

    Parameters
    ----------
    module : CircuitModule
    node : str
        A node, or an auxiliary trace ``<node>_mu`` / ``<node>_logvar``.

    Returns
    -------
    int
        Steps.

    Raises
    ------
    TypeError
        ``module`` is not a built circuit.
    KeyError
        ``node`` is neither a node nor an auxiliary trace of one.
    """
    from neurodelay.circuit import _AUX_TRACES

    plan = getattr(module, "plan", None)
    if plan is None or not hasattr(plan, "valid_from"):
        raise TypeError(f"module must be a built circuit (CircuitModule), got {type(module).__name__}; "
                        f"build it with neurodelay.build_seeded(circuit, world=world).")
    valid = plan.valid_from
    if node in valid:
        return int(valid[node])
    base, _, extra = str(node).rpartition("_")
    if base in module.circuit.nodes and extra in _AUX_TRACES:
        return int(valid[base])
    raise KeyError(f"node={node!r} is not a node of the circuit ({', '.join(module.circuit.nodes)}) nor an "
                   f"auxiliary trace <node>_{'/_'.join(_AUX_TRACES)} of one.")


def trace_name(module, name: str) -> str:
    """The circuit trace that ``name`` stands for: a trace (node or ``<node>_mu`` / ``<node>_logvar``) itself,
    or the results variable of one (``simulate`` stores a trace named like a results variable or dimension,
    e.g. a node ``latent``, as ``node_latent``); ``name`` unchanged if it is neither."""
    from neurodelay.circuit import _AUX_TRACES
    from neurodelay.record import variable_name

    circuit = getattr(module, "circuit", None)
    nodes = getattr(circuit, "nodes", None)
    if not isinstance(nodes, dict):
        return name
    traces = set(nodes) | {f"{n}_{k}" for n in nodes for k in _AUX_TRACES}
    if name in traces:
        return name
    for trace in sorted(traces):
        if variable_name(trace, taken=traces - {trace}) == name:
            return trace
    return name


def _flash_lag_core(moving: np.ndarray, flash: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Moving minus flash decoded positions along the motion.

    Parameters
    ----------
    moving : numpy.ndarray, shape (..., n_directions, 2)
        Decoded moving-circle positions at the flash's perception step.
    flash : numpy.ndarray, shape (n_directions, 2)
        Decoded flash positions.
    directions : numpy.ndarray, shape (n_directions, 2)
        Unit directions of motion.

    Returns
    -------
    numpy.ndarray, shape (..., n_directions)
        Signed distance, same units as the positions (positive: the moving
        circle is ahead).
    """
    return ((moving - flash) * directions).sum(axis=-1)


def _trace(ds: xr.Dataset, node: str) -> np.ndarray:
    # simulate() stores a trace named like a results variable as node_<name>, with attribute node=<name>.
    for name, var in ds.data_vars.items():
        if var.attrs.get("node") == node:
            return np.asarray(var.values, dtype=np.float64)
    if node not in ds.data_vars:
        raise KeyError(f"the circuit has no trace {node!r}; traces: {sorted(map(str, ds.data_vars))}.")
    return np.asarray(ds[node].values, dtype=np.float64)


def flash_lag(module, world, readout: LinearReadout, probe: FlashLagProbe | None = None, *,
              node: str | None = None, n_frames: int | None = None, show_flash: bool = True,
              device="cpu") -> xr.Dataset:
    """Measure the flash-lag of a circuit (see the module docstring for the definition).

    Parameters
    ----------
    module : CircuitModule
        The (trained) circuit.
    world : MovingCircle
        The world it was built for (renderer, factor layout, frame size).
    readout : LinearReadout
        Circle-position readout of the representation, e.g. from
        :func:`neurodelay.analysis.lag.fit_readout`.
    probe : FlashLagProbe, optional
        Conditions, speeds, geometry (default ``FlashLagProbe()``).
    node : str, optional
        The circuit trace the readout reads (default: the trace of
        ``readout.node``, which names a results variable: a node ``latent``
        is stored as ``node_latent``); it must be the node the readout was
        fitted on.
    n_frames : int, optional
        Steps per sequence (default ``flash_step + D + 2``).
    show_flash : bool
        Draw the flash disk in the moving sequences.
    device : str or torch.device

    Returns
    -------
    xarray.Dataset
        ``flash_lag_px`` and ``flash_lag_ms`` (condition, speed): mean over
        directions; ``flash_lag_px_by_direction`` (condition, speed,
        direction); ``flash_position_error_px`` (direction): decoded minus
        true flash position along the motion; ``flash_latency_steps`` and
        ``flash_latency_ms``: ``D``. Coordinates ``speed`` (px/s),
        ``speed_px_per_step``, ``speed_units_per_step`` (factor units).
        With a readout that has no lag (``readout.lag_steps`` NaN: see
        :func:`~neurodelay.analysis.lag.fit_readout`) the positions and
        flash-lags are NaN, with the reason in their ``nan_reason``
        attribute.

    Raises
    ------
    TypeError
        ``readout`` is not a LinearReadout, ``probe`` not a FlashLagProbe,
        or ``show_flash`` not a bool.
    ValueError
        ``node`` is not the readout's node, or ``n_frames`` is too short.
    """
    from neurodelay.simulation import simulate

    from neurodelay.record import variable_name

    if not isinstance(readout, LinearReadout):
        raise TypeError(f"readout must be a LinearReadout (from neurodelay.analysis.fit_readout), got "
                        f"{type(readout).__name__}.")
    probe = FlashLagProbe() if probe is None else probe
    if not isinstance(probe, FlashLagProbe):
        raise TypeError(f"probe must be a FlashLagProbe (or None for the default), got {type(probe).__name__} "
                        f"{probe!r:.60}; pass e.g. FlashLagProbe(speeds=(0.02, 0.04)).")
    if not isinstance(show_flash, (bool, np.bool_)):
        raise TypeError(f"show_flash must be True or False, got {show_flash!r}.")
    if node is None:
        node = trace_name(module, readout.node)  # the readout names the results variable (node_<name>)
    elif readout.node not in (node, variable_name(str(node))):
        raise ValueError(f"node={node!r} is not the node the readout was fitted on ({readout.node!r}): it would "
                         f"decode another representation with that node's weights. Omit node (or pass "
                         f"node={readout.node!r}), or fit a readout on {node!r} with fit_readout(ds, {node!r}).")
    latency = perception_latency(module, node)
    if n_frames is None:
        n_frames = probe.flash_step + latency + 2
    if isinstance(n_frames, bool) or not isinstance(n_frames, numbers.Integral) \
            or n_frames <= probe.flash_step + latency:
        raise ValueError(f"n_frames must exceed flash_step + latency = {probe.flash_step} + {latency}, "
                         f"got {n_frames!r}.")
    probe.check_fits(int(n_frames))
    t_seen = probe.flash_step + latency
    dt_ms = float(module.dt_ms)
    ppu = px_per_unit(world.size)

    # Every condition, speed and the static reference in one batch of sequences.
    episodes = [probe.episode(world, cond, speed, int(n_frames), show_flash=show_flash, device=device)
                for cond in probe.conditions for speed in probe.speeds]
    episodes.append(probe.reference_episode(world, int(n_frames), device=device))
    batch = Episode(torch.cat([e.frames for e in episodes]), torch.cat([e.factors for e in episodes]),
                    episodes[0].factor_names)
    decoded = readout.decode(_trace(simulate(module, batch, device=device), node)[:, t_seen])
    n_dir = len(probe.directions)
    moving = decoded[:-n_dir].reshape(len(probe.conditions), len(probe.speeds), n_dir, 2)
    flash = decoded[-n_dir:]
    dirs = probe.directions_array()
    along = _flash_lag_core(moving, flash, dirs) * ppu  # (C, S, n_dir) px
    speeds = np.asarray(probe.speeds)
    lag_px = along.mean(axis=-1)
    lag_ms = lag_px / (speeds * ppu)[None, :] * dt_ms
    flash_err = _flash_lag_core(flash, probe.flash_positions(), dirs) * ppu
    nan_reason = {}
    if not np.isfinite(readout.lag_steps):
        # fit_readout found no lag: the readout decodes no position, so neither place means anything.
        lag_px, lag_ms, along, flash_err = (np.full_like(a, np.nan) for a in (lag_px, lag_ms, along, flash_err))
        nan_reason = {"nan_reason": f"the readout of {readout.node!r} has no lag (lag_steps is NaN: "
                                    f"fit_readout found no decodable circle position), so it decodes no position"}
    coords = {
        "condition": ("condition", list(probe.conditions), {"long_name": "flash-lag condition"}),
        "speed": ("speed", speeds * ppu / dt_ms * 1000.0, {"units": "px/s", "long_name": "speed of the circle"}),
        "speed_px_per_step": ("speed", speeds * ppu, {"units": "px/step", "long_name": "speed of the circle"}),
        "speed_units_per_step": ("speed", speeds, {"units": "1/step",
                                                   "long_name": "speed in factor units per step"}),
        "direction": ("direction", list(probe.directions), {"long_name": "direction of motion"}),
    }
    attrs = {"node": node, "flash_step": int(probe.flash_step), "perceived_step": int(t_seen),
             "show_flash": int(bool(show_flash)), "readout_lag_steps": float(readout.lag_steps), **nan_reason}
    text = ("moving circle's decoded position minus the flash's, along the motion, when the flash is "
            "first represented (positive: moving circle seen ahead)")
    return xr.Dataset(
        {
            "flash_lag_px": (("condition", "speed"), lag_px, {"units": "px", "long_name": f"flash-lag: {text}",
                                                              **attrs}),
            "flash_lag_ms": (("condition", "speed"), lag_ms, {
                "units": "ms", "long_name": "flash-lag as time: flash_lag_px divided by the speed", **attrs}),
            "flash_lag_px_by_direction": (("condition", "speed", "direction"), along, {
                "units": "px", "long_name": f"flash-lag per direction of motion: {text}", **nan_reason}),
            "flash_position_error_px": ("direction", flash_err, {
                "units": "px", "long_name": "decoded minus true flash position along the motion (readout bias)",
                **nan_reason}),
            "flash_latency_steps": ((), int(latency), {"units": "steps", "long_name": "steps from the world to "
                                                       "the representation (when a flash is first seen)"}),
            "flash_latency_ms": ((), latency * dt_ms, {"units": "ms", "long_name": "latency of the flash"}),
        },
        coords=coords,
    )
