"""Flash-lag: where the circuit sees a moving circle when a flash beside it is seen.

Definition
----------
The stimuli come from a :class:`~neurodelay.worlds.flash.FlashLagProbe`: a
flash aligned with the circle along the motion is shown for one frame at
step ``t_f``; the circle moves through it (``standard``), appears with it
and moves on (``flash_initiated``), moves up to it and stops
(``flash_terminated``), or comes towards it and reverses there
(``reversal``); ``rest_then_move`` rests at the flash's place, shown, until
the flash. Several speeds, four directions of motion.

"The circuit decides what is decoded": positions are read from the
circuit's representation ``z`` with the linear readout of
:mod:`neurodelay.analysis.lag` (fitted on moving stimuli, lag-aligned), and
times come from the circuit's own conduction delays:

* **When is the flash first represented?** At ``t_f + D``, where ``D`` is
  the first valid step of the representation node
  (``module.plan.valid_from``): the delay along the fastest path from the
  world, the earliest step at which anything shown at ``t_f`` can be
  represented.
* **When is the percept read?** An explicit choice, ``read_at``:

  - ``"first"`` (the default): at ``t_f + D``, the flash's first
    representation;
  - ``"latency"``: at ``t_f + D + L``, a fixed ``L = latency_steps`` later
    (the percept of the flash's moment is formed ``L`` steps after the flash
    arrives);
  - ``"postdiction"``: averaged over the ``W = window_steps`` steps
    ``t_f + D, ..., t_f + D + W - 1`` (the percept of the flash's moment
    integrates what follows it).

* **Where is the flash seen?** Where the circuit represents a *stationary*
  circle at the flash's place: the readout applied to ``z`` of a sequence
  in which the circle rests at the flash's place from the first frame
  (:meth:`FlashLagProbe.reference_episode`), at the same steps as the
  moving circle and averaged the same way. The one-frame flash itself is
  not decoded: after its frame the scene holds no flash, which a
  circle-position readout cannot decode, and a single-circle readout cannot
  separate two disks shown together; the static reference stands for the
  flash at every step read, and keeps any start-up drift of the readout
  common to both places.
* **Where is the moving circle seen then?** The readout applied to ``z`` of
  the moving sequence, which shows the flash disk at ``t_f``
  (``show_flash=True``, the default), at the step read (``first``,
  ``latency``) or averaged over the window's steps (``postdiction``).

The flash-lag is the moving circle's decoded position minus the flash's,
projected on the direction of motion (positive: the moving circle is seen
ahead of the flash; in ``reversal``, along the motion after the flash),
averaged over the directions of motion, in pixels and in ms (pixels divided
by the speed in pixels per ms). Averaging over opposite directions cancels
every displacement that does not depend on the direction of motion (a
readout bias at the flash's place, a pull of the flash disk on the decoded
position): what remains is the motion-induced displacement.

A decoded position exists only where the representation can hold a circle:
at a step ``t`` with ``t >= D`` whose input, the frame ``t - D``, showed
one (:meth:`FlashLagProbe.circle_visible`; ``flash_initiated`` shows none
before ``t_f``). Elsewhere it is NaN, with the reason in ``nan_reason``,
never a number; a readout that needs such a step, or a step past the end
of the sequences, is NaN too.

The analytic answer for linear circuits
---------------------------------------
(docs/flash-lag.md has the derivation and the tables.) A linear circuit
that represents the circle's position with a conduction delay ``d``
(``D = d``) has an impulse response ``g_n`` from its delayed input to
``z`` with unit DC gain (a static circle is represented where it is):

* pure delay: ``g = (1)``;
* feed-forward extrapolation of the delayed signal by ``h`` steps,
  ``z_t = s_(t-d) + h (s_(t-d) - s_(t-d-1))``: ``g = (1 + h, -h)``;
* recurrent inertia ``z_t = (1 - gamma) s_(t-d) + gamma (z_(t-1) + alpha
  (z_(t-1) - z_(t-2)))``: ``g_0 = 1 - gamma``, ``g_1 = gamma (1 + alpha)
  g_0``, ``g_n = gamma (1 + alpha) g_(n-1) - gamma alpha g_(n-2)``.

Write ``lambda = sum_n n g_n`` for its lag beyond ``d`` (0; ``-h``;
``gamma (1 - alpha) / (1 - gamma)``) and ``eps(k) = sum_(n>k) (n - k)
g_n`` for its onset transient: how far, ``k`` steps after a motion starts
from rest, the representation still is from its steady lag (``eps(0) =
lambda``; 0 for a pure delay; ``-h`` at ``k = 0`` and 0 after for
extrapolation; decaying as the loop's poles for inertia). A circle that
starts moving ``k`` steps ago at speed ``v`` from rest is represented at
``v R(k)`` from its start, ``R(k) = sum_(n<=k) (k - n) g_n = k - lambda +
eps(k)``. Reading ``k`` steps after ``t_f + d`` (the flash's place is 0),
with ``t_f`` long enough for the start-up to have settled, the flash-lag
in steps of motion (times ``v`` for px, times ``dt`` for ms) is

=================  ========================  ==============================
condition          flash-lag at offset k     read "first" (k = 0)
=================  ========================  ==============================
standard           ``k - lambda``            ``-lambda``
flash_initiated    ``k - lambda + eps(k)``   ``0``
flash_terminated   ``-eps(k)``               ``-lambda`` (= standard)
reversal           ``k - lambda + 2 eps(k)`` ``lambda``
=================  ========================  ==============================

``read_at="latency"`` takes ``k = L``; ``"postdiction"`` the mean over
``k = 0 .. W - 1``. The delay ``d`` drops out: every circuit is read
relative to its own first representation of the flash. (``flash_initiated``
here is the circuit that takes the circle's appearance as the start of its
input, as a delay line holds its first value and as a circuit driven by the
factors sees it; one that sees frames responds to the blank frames in its
own way.) Exactly, transients included, the standard condition reads
``R(t_f + k) - t_f``, flash-terminated ``R(t_f + k) - t_f - R(k)`` and
reversal ``t_f - R(t_f + k) + 2 R(k)``: :func:`flash_lag_theory`.

Two consequences. Read at the flash's first representation, *no* causal
circuit gives the human pattern: up to ``t_f`` the standard and
flash-terminated stimuli are the same, so their flash-lags are equal, and a
circle that starts at the flash has not moved yet (flash-initiated 0).
Read ``L >= 1`` steps later, a pure delay gives ``(L, L, 0, L)`` and
extrapolation ``(L + h, L + h, 0, L + h)`` for (standard, flash-initiated,
flash-terminated, reversal): the human pattern exactly; averaged over a
window, ``((W-1)/2, (W-1)/2, 0, (W-1)/2)`` and ``((W-1)/2 + h, (W-1)/2 + h
(W-1)/W, h/W, (W-1)/2 + h (W-2)/W)``: the human pattern within ``1/W``.
Inertia gives it where its onset transient ``eps`` has died down within
the steps read.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
import xarray as xr

from neurodelay._util.validators import check_flag
from neurodelay.analysis.flash_theory import (
    DEFAULT_LATENCY_STEPS,
    DEFAULT_WINDOW_STEPS,
    READ_RULES,
    _check_int,
    _read_rule,
    flash_lag_theory,
    impulse_response,
)
from neurodelay.analysis.lag import LinearReadout, px_per_unit
from neurodelay.analysis.traces import perception_latency, trace_name
from neurodelay.errors import ConfigError
from neurodelay.worlds.episode import Episode
from neurodelay.worlds.flash import CONDITION_DESCRIPTIONS, FlashLagProbe
from neurodelay.record import variable_name
from neurodelay.simulation import simulate

__all__ = ["flash_lag", "flash_lag_battery", "flash_lag_theory", "impulse_response", "perception_latency",
           "READ_RULES"]

#: A standard flash-lag below this fraction of a step of motion has no ratio (``flash_lag_battery_ratio``).
RATIO_MIN_STEPS = 0.1


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


# --------------------------------------------------------------------------
# Readout rules
# --------------------------------------------------------------------------

def _read_core(rel: np.ndarray, defined: np.ndarray, start: int, n: int) -> np.ndarray:
    """Mean of ``rel`` over the steps ``start .. start + n - 1`` (last axis); NaN where any is undefined.

    Parameters
    ----------
    rel : numpy.ndarray, shape (..., n_steps)
        Flash-lag read at each step.
    defined : numpy.ndarray of bool, broadcastable to ``rel``
        Whether each step holds a decoded position.
    start, n : int
        First step read and number of steps (>= 1); steps past the end are
        undefined.

    Returns
    -------
    numpy.ndarray, shape (...)
    """
    n_t = rel.shape[-1]
    if start < 0 or n < 1 or start + n > n_t:
        return np.full(rel.shape[:-1], np.nan)
    window = rel[..., start:start + n]
    ok = np.broadcast_to(defined, rel.shape)[..., start:start + n].all(axis=-1)
    return np.where(ok, window.mean(axis=-1), np.nan)


def _defined_steps(probe: FlashLagProbe, n_frames: int, latency: int) -> np.ndarray:
    """bool (n_conditions, n_frames): the representation at step t holds a circle (t >= D, frame t - D shows one)."""
    out = np.zeros((len(probe.conditions), n_frames), dtype=bool)
    for i, cond in enumerate(probe.conditions):
        visible = probe.circle_visible(cond, n_frames)
        out[i, latency:] = visible[: n_frames - latency]
    return out


def _undefined_reason(probe: FlashLagProbe, latency: int) -> str:
    return (f"NaN where the representation holds no circle: before its first valid step (D = {latency}) or "
            f"where the frame it reflects (D steps earlier) showed none (flash_initiated before the flash at "
            f"step {probe.flash_step})")


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------

def _setup(module, readout, probe, node, show_flash):
    if not isinstance(readout, LinearReadout):
        raise TypeError(f"readout must be a LinearReadout (from neurodelay.analysis.fit_readout), got "
                        f"{type(readout).__name__}.")
    probe = FlashLagProbe() if probe is None else probe
    if not isinstance(probe, FlashLagProbe):
        raise TypeError(f"probe must be a FlashLagProbe (or None for the default), got {type(probe).__name__} "
                        f"{probe!r:.60}; pass e.g. FlashLagProbe(speeds=(0.02, 0.04)).")
    check_flag("show_flash", show_flash)
    if node is None:
        node = trace_name(module, readout.node)  # the readout names the results variable (node_<name>)
    elif readout.node not in (node, variable_name(str(node))):
        raise ValueError(f"node={node!r} is not the node the readout was fitted on ({readout.node!r}): it would "
                         f"decode another representation with that node's weights. Omit node (or pass "
                         f"node={readout.node!r}), or fit a readout on {node!r} with fit_readout(ds, {node!r}).")
    return probe, node, perception_latency(module, node)


def _check_n_frames(n_frames, probe: FlashLagProbe, latency: int, last_offset: int) -> int:
    need = probe.flash_step + latency + last_offset
    if isinstance(n_frames, bool) or not isinstance(n_frames, numbers.Integral) or n_frames <= need:
        if last_offset:
            raise ValueError(f"n_frames must exceed flash_step + latency + last step read = {probe.flash_step} + "
                             f"{latency} + {last_offset}, got {n_frames!r}; use n_frames >= {need + 1} or omit it.")
        raise ValueError(f"n_frames must exceed flash_step + latency = {probe.flash_step} + {latency}, "
                         f"got {n_frames!r}.")
    probe.check_fits(int(n_frames))
    return int(n_frames)


def _decode(module, world, readout, probe, node, n_frames, show_flash, device):
    """Decoded positions: moving (C, S, n_dir, T, 2) and static reference (n_dir, T, 2), factor units."""
    episodes = [probe.episode(world, cond, speed, n_frames, show_flash=show_flash, device=device)
                for cond in probe.conditions for speed in probe.speeds]
    episodes.append(probe.reference_episode(world, n_frames, device=device))
    batch = Episode(torch.cat([e.frames for e in episodes]), torch.cat([e.factors for e in episodes]),
                    episodes[0].factor_names)
    decoded = readout.decode(_trace(simulate(module, batch, device=device), node))
    n_dir = len(probe.directions)
    moving = decoded[:-n_dir].reshape(len(probe.conditions), len(probe.speeds), n_dir, n_frames, 2)
    return moving, decoded[-n_dir:]


def _coords(probe: FlashLagProbe, world, dt_ms: float) -> dict:
    ppu = px_per_unit(world.size)
    speeds = np.asarray(probe.speeds)
    return {
        "condition": ("condition", list(probe.conditions), {"long_name": "flash-lag condition"}),
        "condition_description": ("condition", [CONDITION_DESCRIPTIONS[c] for c in probe.conditions],
                                  {"long_name": "what the circle does in the condition"}),
        "speed": ("speed", speeds * ppu / dt_ms * 1000.0, {"units": "px/s", "long_name": "speed of the circle"}),
        "speed_px_per_step": ("speed", speeds * ppu, {"units": "px/step", "long_name": "speed of the circle"}),
        "speed_units_per_step": ("speed", speeds, {"units": "1/step",
                                                   "long_name": "speed in factor units per step"}),
        "direction": ("direction", list(probe.directions), {"long_name": "direction of motion"}),
    }


def _rule_text(read_at: str, offset: int, n: int) -> str:
    if read_at == "latency":
        return f"{offset} step{'s' if offset != 1 else ''} after the flash is first represented"
    if read_at == "postdiction":
        return f"averaged over the {n} step{'s' if n != 1 else ''} from the flash's first representation"
    return "when the flash is first represented"


def flash_lag(module, world, readout: LinearReadout, probe: FlashLagProbe | None = None, *,
              node: str | None = None, n_frames: int | None = None, show_flash: bool = True,
              read_at: str = "first", latency_steps: int | None = None, window_steps: int | None = None,
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
        Steps per sequence (default ``flash_step + D + max(2, steps read)``,
        where the steps read run to ``latency_steps`` or ``window_steps - 1``
        after ``flash_step + D``).
    show_flash : bool
        Draw the flash disk in the moving sequences.
    read_at : {"first", "latency", "postdiction"}
        When the percept is read: at the flash's first representation
        ``flash_step + D`` (the default, this function's only rule before
        the option existed), ``latency_steps`` after it, or averaged over
        ``window_steps`` steps from it (module docstring).
    latency_steps : int, optional
        Steps (>= 0) after ``flash_step + D`` for ``read_at="latency"``
        (default 2); only with that rule.
    window_steps : int, optional
        Steps (>= 1) averaged for ``read_at="postdiction"`` (default 4);
        only with that rule.
    device : str or torch.device

    Returns
    -------
    xarray.Dataset
        ``flash_lag_px`` and ``flash_lag_ms`` (condition, speed): mean over
        directions; ``flash_lag_px_by_direction`` (condition, speed,
        direction); ``flash_position_error_px`` (direction): decoded minus
        true flash position along the motion, at the steps read;
        ``flash_latency_steps`` and ``flash_latency_ms``: ``D``. Coordinates
        ``speed`` (px/s), ``speed_px_per_step``, ``speed_units_per_step``
        (factor units), ``condition_description``. The rule is recorded in
        the attributes of ``flash_lag_px`` and ``flash_lag_ms``:
        ``read_at``, ``read_offset_steps`` (first step read after
        ``perceived_step = flash_step + D``), ``read_n_steps``, and
        ``latency_steps`` or ``window_steps``. With a readout that has no
        lag (``readout.lag_steps`` NaN: see
        :func:`~neurodelay.analysis.lag.fit_readout`), or where a step read
        holds no circle, the values are NaN, with the reason in their
        ``nan_reason`` attribute.

    Raises
    ------
    TypeError
        ``readout`` is not a LinearReadout, ``probe`` not a FlashLagProbe,
        or ``show_flash`` not a bool.
    ValueError
        ``node`` is not the readout's node, ``n_frames`` is too short, or
        the readout rule is not one of :data:`READ_RULES` with its own
        option (ConfigError, a ValueError, where the probe's paths leave
        the image over ``n_frames``).
    """
    probe, node, latency = _setup(module, readout, probe, node, show_flash)
    read_at, offset, n_read, rule_attrs = _read_rule(read_at, latency_steps, window_steps)
    last = offset + n_read - 1
    if n_frames is None:
        n_frames = probe.flash_step + latency + max(2, last + 1)
    n_frames = _check_n_frames(n_frames, probe, latency, last)
    t_seen = probe.flash_step + latency
    dt_ms = float(module.dt_ms)
    ppu = px_per_unit(world.size)

    moving, flash = _decode(module, world, readout, probe, node, n_frames, show_flash, device)
    dirs = probe.directions_array()
    rel = _flash_lag_core(moving, flash, dirs[:, None, :]) * ppu  # (C, S, n_dir, T) px
    defined = _defined_steps(probe, n_frames, latency)[:, None, None, :]
    along = _read_core(rel, defined, t_seen + offset, n_read)  # (C, S, n_dir)
    speeds = np.asarray(probe.speeds)
    lag_px = along.mean(axis=-1)
    lag_ms = lag_px / (speeds * ppu)[None, :] * dt_ms
    flash_read = flash[:, t_seen + offset:t_seen + offset + n_read].mean(axis=1)
    flash_err = _flash_lag_core(flash_read, probe.flash_positions(), dirs) * ppu
    nan_reason, flash_nan = {}, {}
    if not np.isfinite(readout.lag_steps):
        # fit_readout found no lag: the readout decodes no position, so neither place means anything.
        lag_px, lag_ms, along, flash_err = (np.full_like(a, np.nan) for a in (lag_px, lag_ms, along, flash_err))
        nan_reason = {"nan_reason": f"the readout of {readout.node!r} has no lag (lag_steps is NaN: "
                                    f"fit_readout found no decodable circle position), so it decodes no position"}
        flash_nan = nan_reason
    elif np.isnan(along).any():
        nan_reason = {"nan_reason": _undefined_reason(probe, latency)}
    attrs = {"node": node, "flash_step": int(probe.flash_step), "perceived_step": int(t_seen),
             "show_flash": int(bool(show_flash)), "readout_lag_steps": float(readout.lag_steps),
             "read_at": read_at, "read_offset_steps": int(offset), "read_n_steps": int(n_read), **rule_attrs,
             **nan_reason}
    text = (f"moving circle's decoded position minus the flash's, along the motion, "
            f"{_rule_text(read_at, offset, n_read)} (positive: moving circle seen ahead)")
    return xr.Dataset(
        {
            "flash_lag_px": (("condition", "speed"), lag_px, {"units": "px", "long_name": f"flash-lag: {text}",
                                                              **attrs}),
            "flash_lag_ms": (("condition", "speed"), lag_ms, {
                "units": "ms", "long_name": "flash-lag as time: flash_lag_px divided by the speed", **attrs}),
            "flash_lag_px_by_direction": (("condition", "speed", "direction"), along, {
                "units": "px", "long_name": f"flash-lag per direction of motion: {text}", **nan_reason}),
            "flash_position_error_px": ("direction", flash_err, {
                "units": "px", "long_name": "decoded minus true flash position along the motion (readout bias), "
                                            "at the steps read", **flash_nan}),
            "flash_latency_steps": ((), int(latency), {"units": "steps", "long_name": "steps from the world to "
                                                       "the representation (when a flash is first seen)"}),
            "flash_latency_ms": ((), latency * dt_ms, {"units": "ms", "long_name": "latency of the flash"}),
        },
        coords=_coords(probe, world, dt_ms),
    )


def _battery_frames(probe: FlashLagProbe, latency: int, last: int) -> int:
    """The longest sequence the battery wants (flash_step + D + max(2, last + 1)) that the probe's paths fit."""
    want = probe.flash_step + latency + max(2, last + 1)
    for n in range(want, probe.flash_step + latency, -1):
        try:
            probe.check_fits(n)
        except ConfigError:
            continue
        return n
    probe.check_fits(probe.flash_step + latency + 1)  # raises, naming the fix
    return want  # pragma: no cover


def flash_lag_battery(module, world, readout: LinearReadout, probe: FlashLagProbe | None = None, *,
                      node: str | None = None, n_frames: int | None = None, show_flash: bool = True,
                      latency_steps: int = DEFAULT_LATENCY_STEPS, window_steps: int = DEFAULT_WINDOW_STEPS,
                      device="cpu") -> xr.Dataset:
    """The flash-lag under every readout rule, from one simulation of the probe.

    Parameters are those of :func:`flash_lag`; ``latency_steps`` and
    ``window_steps`` set the ``latency`` and ``postdiction`` rules.
    ``n_frames`` defaults to ``flash_step + D + max(2, latency_steps + 1,
    window_steps)``, shortened to the longest the probe's paths fit in; a
    rule whose steps run past the sequences is NaN with the reason.

    Returns
    -------
    xarray.Dataset
        ``flash_lag_battery_px`` and ``flash_lag_battery_ms`` (read_at,
        condition, speed): mean over directions;
        ``flash_lag_battery_px_by_direction`` (read_at, condition, speed,
        direction); ``flash_lag_battery_ratio`` (read_at, condition): the
        condition's flash-lag over the standard one, each averaged over the
        speeds in px (NaN where the standard one is below
        :data:`RATIO_MIN_STEPS` of a step of motion, or absent);
        ``flash_lag_px_by_read_offset`` (condition, speed, read_offset): the
        flash-lag read at each single step from the representation's first
        valid step on (``read_offset`` from ``-flash_step``), NaN where the
        representation holds no circle. Coordinates ``read_at`` with
        ``read_at_offset_steps`` and ``read_at_n_steps`` (the steps each
        rule reads, from ``perceived_step``), ``read_offset`` (ms, with
        ``read_offset_steps``) from ``perceived_step``, and those of
        :func:`flash_lag`.
    """
    probe, node, latency = _setup(module, readout, probe, node, show_flash)
    lat = _check_int("latency_steps", latency_steps, 0, DEFAULT_LATENCY_STEPS)
    win = _check_int("window_steps", window_steps, 1, DEFAULT_WINDOW_STEPS)
    rules = (("first", 0, 1), ("latency", lat, 1), ("postdiction", 0, win))
    last = max(o + n - 1 for _, o, n in rules)
    if n_frames is None:
        n_frames = _battery_frames(probe, latency, last)
    n_frames = _check_n_frames(n_frames, probe, latency, 0)
    t_seen = probe.flash_step + latency
    dt_ms = float(module.dt_ms)
    ppu = px_per_unit(world.size)

    moving, flash = _decode(module, world, readout, probe, node, n_frames, show_flash, device)
    dirs = probe.directions_array()
    rel = _flash_lag_core(moving, flash, dirs[:, None, :]) * ppu  # (C, S, n_dir, T) px
    defined = _defined_steps(probe, n_frames, latency)[:, None, None, :]
    along = np.stack([_read_core(rel, defined, t_seen + o, n) for _, o, n in rules])  # (R, C, S, n_dir)
    speeds = np.asarray(probe.speeds)
    v_px = speeds * ppu
    lag_px = along.mean(axis=-1)
    lag_ms = lag_px / v_px * dt_ms
    # From the representation's first valid step on: read_offset runs from -flash_step whatever D is, so
    # that runs with different delays share the coordinate (a sweep over delays combines without gaps).
    course = np.where(defined, rel, np.nan).mean(axis=2)[..., latency:]  # (C, S, T - D)

    reasons = []
    for i, (name, o, n) in enumerate(rules):
        if t_seen + o + n > n_frames:
            reasons.append(f"read_at={name!r} reads up to {o + n - 1} steps after step {t_seen}, past the "
                           f"sequences' {n_frames} steps (the probe's paths fit no longer ones; lower its speeds "
                           f"or pass a shorter latency_steps / window_steps)")
        elif np.isnan(along[i]).any():
            reasons.append(f"read_at={name!r}: " + _undefined_reason(probe, latency))
    course_reason = [_undefined_reason(probe, latency)] if np.isnan(course).any() else []
    ratio, ratio_reason = _ratio(lag_px, probe, v_px)
    if not np.isfinite(readout.lag_steps):
        reason = (f"the readout of {readout.node!r} has no lag (lag_steps is NaN: fit_readout found no "
                  f"decodable circle position), so it decodes no position")
        along, lag_px, lag_ms, ratio, course = (np.full_like(a, np.nan) for a in (along, lag_px, lag_ms, ratio,
                                                                                  course))
        reasons = course_reason = [reason]
        ratio_reason = reason
    nan_reason = {"nan_reason": "; ".join(reasons)} if reasons else {}
    course_nan = {"nan_reason": "; ".join(course_reason)} if course_reason else {}
    attrs = {"node": node, "flash_step": int(probe.flash_step), "perceived_step": int(t_seen),
             "show_flash": int(bool(show_flash)), "readout_lag_steps": float(readout.lag_steps),
             "latency_steps": lat, "window_steps": win, "n_frames": int(n_frames)}
    text = ("moving circle's decoded position minus the flash's, along the motion, read by each rule "
            "(positive: moving circle seen ahead)")
    offsets = np.arange(latency, n_frames) - t_seen
    coords = _coords(probe, world, dt_ms)
    coords.update({
        "read_at": ("read_at", [r for r, _, _ in rules], {"long_name": "when the percept is read"}),
        "read_at_offset_steps": ("read_at", np.array([o for _, o, _ in rules]), {
            "units": "steps", "long_name": "first step read, after the flash's first representation"}),
        "read_at_n_steps": ("read_at", np.array([n for _, _, n in rules]), {
            "units": "steps", "long_name": "steps read (averaged)"}),
        "read_offset": ("read_offset", offsets * dt_ms, {
            "units": "ms", "long_name": "time read, from the flash's first representation"}),
        "read_offset_steps": ("read_offset", offsets, {
            "units": "steps", "long_name": "steps read, from the flash's first representation"}),
    })
    dims = ("read_at", "condition", "speed")
    return xr.Dataset(
        {
            "flash_lag_battery_px": (dims, lag_px, {"units": "px", "long_name": f"flash-lag: {text}", **attrs,
                                                    **nan_reason}),
            "flash_lag_battery_ms": (dims, lag_ms, {"units": "ms", "long_name": "flash-lag as time: "
                                                    "flash_lag_battery_px divided by the speed", **attrs,
                                                    **nan_reason}),
            "flash_lag_battery_px_by_direction": (dims + ("direction",), along, {
                "units": "px", "long_name": f"flash-lag per direction of motion: {text}", **nan_reason}),
            "flash_lag_battery_ratio": (("read_at", "condition"), ratio, {
                "units": "1", "long_name": "flash-lag over the standard condition's (each the mean over speeds, "
                                           "px)", **({"nan_reason": ratio_reason} if ratio_reason else {})}),
            "flash_lag_px_by_read_offset": (("condition", "speed", "read_offset"), course, {
                "units": "px", "long_name": "flash-lag read at a single step (moving circle's decoded position "
                                            "minus the static reference's, along the motion, mean over "
                                            "directions)", **course_nan}),
        },
        coords=coords,
    )


def _ratio(lag_px: np.ndarray, probe: FlashLagProbe, v_px: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Each condition's flash-lag over the standard one, per rule (means over speeds); NaN and a reason."""
    if "standard" not in probe.conditions:
        return (np.full(lag_px.shape[:2], np.nan),
                "the probe has no standard condition to compare with (add 'standard' to its conditions)")
    mean = lag_px.mean(axis=-1)  # (R, C)
    std = mean[:, probe.conditions.index("standard")]
    floor = RATIO_MIN_STEPS * float(v_px.mean())
    small = ~(np.abs(std) >= floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(small[:, None], np.nan, mean / np.where(small, 1.0, std)[:, None])
    reason = None
    if small.any():
        reason = (f"NaN where the standard condition's flash-lag is below {RATIO_MIN_STEPS:g} of a step of motion "
                  f"({floor:.3g} px) in size or undefined: no effect to compare with")
    return ratio, reason
