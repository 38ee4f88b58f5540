"""Time-resolved decoding per area: when is a flashed circle decodable, and how late is a moving one?

EEG and MEG studies of motion ask at what latency an object's position can
be decoded from brain activity, for a flashed object and for one in
predictable motion (Hogendoorn & Burkitt 2018, NeuroImage 171:55-61: the
position of an object in predictable motion was represented about 16 +- 2
ms earlier than in unpredictable motion, at the later of two decodable
stages, 140-150 ms; the earlier one, 80-90 ms, was not advanced). This
analysis asks the same two questions of every area of a circuit, with the
circuit's own time step, so that a model makes a prediction in ms:

* **Flash onset** (per area): the circle is shown for one frame, at step
  ``flash_step``, at a random place (blank frames before and after: the
  circle is drawn outside the image). For each latency ``k`` (steps after the
  flash) a linear readout with an intercept is fitted from the area's
  activity at ``flash_step + k`` to the flash's place on half of the
  sequences and scored on the other half (held-out R^2, mean over x and y):
  ``decoding_flash_r2``. The onset is the first ``k`` at which the held-out
  R^2 reaches ``min_r2`` (0.5 by default, the lag instrument's own
  threshold). R^2 does not depend on the sign or scale of a response, so a
  delay line of ``D`` steps has its onset at ``D`` exactly; a fractional
  delay, which spreads the flash over two steps, at its integer part (the
  earliest step at which anything of the flash arrives). The interval is a
  percentile bootstrap over the held-out sequences, the readouts fixed.
* **Motion latency** (per area): the lag of the area's activity behind the
  circle on straight paths of the same world (sequences drawn with linear
  motion), read by the calibrated encoding-model lag of
  :func:`~neurodelay.analysis.lag.representational_lag` with its bootstrap
  interval over sequences. An area that extrapolates ``alpha`` steps on a
  path ``D`` steps late has a motion latency of ``D - alpha`` steps.
* **Latency advantage** = flash onset - motion latency, in ms: 0 for an area
  that only relays what it receives, ``alpha * dt_ms`` for one that
  extrapolates, the total conduction delay for one that keeps up with the
  circle.

Calibrated on theory circuits (an exact centroid "encoder" followed by delay
lines and extrapolators, tests/unit/test_decoding_latency.py): flash onsets
equal the path's delay, motion latencies ``D - alpha``, within 0.05 steps.
With pixel noise on the moving world (the flashes are noise-free) the motion
latency reads slightly early: -0.02 to -0.03 steps at noise 0.05, -0.03 to
-0.06 at 0.1, -0.06 to -0.10 at 0.2 (horizons 0 to 3; at 0.2 a 3-step
extrapolation amplifies the noise past the lag instrument's gate and reads
NaN). tests/properties/test_decoding_latency_calibration.py keeps onsets
exact and motion latencies within 0.1 steps up to noise 0.1.

The comparison differs from the EEG design in one respect, said where the
numbers are reported: the studies compared predictable with unpredictable
apparent motion, both decoded with readouts trained on flashes; here the
flash gives the area's arrival time directly, and motion is decoded through
readouts fitted on motion (the calibrated lag), so an extrapolating area's
advantage is the horizon it extrapolates, whatever its readout.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch
import xarray as xr

from neurodelay.analysis._dataset import dt_ms_of
from neurodelay.analysis.lag import MIN_R2, representational_lag
from neurodelay.analysis.readout import _design as design, _fit_lstsq as fit_lstsq
from neurodelay.simulation import simulate
from neurodelay.worlds import Episode

__all__ = ["decoding_latency", "flash_episode", "vector_areas"]

#: Where a blank frame draws the circle (factor units): wholly outside the image.
_AWAY = -10.0
#: Stream tags of the analysis's own draws (not the evaluation's).
_FLASH_TAG, _MOTION_TAG, _BOOT_TAG = 0x666C61, 0x6D6F74, 0x626F6F


def flash_episode(world, n_samples: int, flash_step: int, *, seed: int = 0, device="cpu") -> Episode:
    """Sequences of ``world``'s frames in which the circle is shown for one frame only, at ``flash_step``.

    The circle's place is uniform over [0, 1]^2 (factor units); the blob (if
    the world draws one) is that of the world's own first frames for
    ``seed``. Every other frame draws the circle wholly outside the image.
    The factors hold the flash's place at every step. Noise-free (the
    world's ``pixel_noise`` is not added).
    """
    n_frames = int(world.n_frames)
    if not 0 <= flash_step < n_frames:
        raise ValueError(f"flash_step must be in [0, n_frames - 1] = [0, {n_frames - 1}], got {flash_step!r}; "
                         f"the flash must be shown within the sequence.")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _FLASH_TAG]))
    place = rng.uniform(0.0, 1.0, size=(n_samples, 2))
    # The world's own first blobs for this seed, without rendering its frames (float32, as sample() stores them).
    blob = world.trajectories(n_samples, seed)[:, 0, :2].astype(np.float32).astype(np.float64)
    still = np.zeros((n_samples, 2))
    shown = world.episode_from_trajectories(place, still, blob, device=device)
    blank = world.episode_from_trajectories(np.full((n_samples, 2), _AWAY), still, blob, device=device)
    frames = blank.frames.clone()
    frames[:, flash_step] = shown.frames[:, flash_step]
    return Episode(frames, shown.factors, shown.factor_names)


def vector_areas(ds: xr.Dataset) -> list[str]:
    """Variables of ``ds`` holding a node's vector trace (sample, time, unit), in order (auxiliary traces aside)."""
    out = []
    for name, v in ds.data_vars.items():
        if v.ndim == 3 and v.dims[:2] == ("sample", "time") and "kind" in v.attrs:  # a node's own trace
            out.append(str(name))
    return out


def _held_out_r2(z: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[float, np.ndarray]:
    """Held-out R^2 (mean over the columns of y) of a least-squares readout with an intercept; and per-row errors."""
    mean, scale, coef = fit_lstsq(z[train], y[train])
    err = y[test] - design(z[test], mean, scale) @ coef
    centred = y[test] - y[test].mean(axis=0)
    sst = (centred ** 2).sum(axis=0)
    r2 = 1.0 - (err ** 2).sum(axis=0) / np.where(sst > 0, sst, np.nan)
    return float(np.mean(r2)), err


def _onset(r2: np.ndarray, min_r2: float) -> float:
    hit = np.flatnonzero(r2 >= min_r2)
    return float(hit[0]) if len(hit) else float("nan")


def _flash_curve(z: np.ndarray, place: np.ndarray, flash_step: int, n_boot: int, min_r2: float, seed: int):
    """R^2 by latency, the onset and its bootstrap interval over the held-out sequences."""
    n, n_lat = z.shape[0], z.shape[1] - flash_step
    order = np.random.default_rng(np.random.SeedSequence([int(seed), _FLASH_TAG, 1])).permutation(n)
    train, test = np.sort(order[: n // 2]), np.sort(order[n // 2:])
    r2, errs = np.empty(n_lat), []
    for k in range(n_lat):
        r2[k], err = _held_out_r2(z[:, flash_step + k], place, train, test)
        errs.append(err)
    onset = _onset(r2, min_r2)
    ci = np.array([np.nan, np.nan])
    if n_boot > 0 and np.isfinite(onset):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), _BOOT_TAG]))
        y = place[test]
        idx = rng.integers(0, len(test), size=(int(n_boot), len(test)))
        boot_r2 = np.empty((int(n_boot), n_lat))
        for k, err in enumerate(errs):
            sse = (err[idx] ** 2).sum(axis=1)  # (boot, 2)
            yb = y[idx]
            sst = ((yb - yb.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            boot_r2[:, k] = np.mean(1.0 - sse / np.where(sst > 0, sst, np.nan), axis=1)
        onsets = np.array([_onset(row, min_r2) for row in boot_r2])
        onsets = np.where(np.isfinite(onsets), onsets, n_lat)  # never decodable: past the last latency
        ci = np.percentile(onsets, [2.5, 97.5])
    return r2, onset, ci


def decoding_latency(module, world, areas=None, *, n_samples: int = 256, flash_step: int = 2, seed: int = 0,
                     n_boot: int = 1000, min_r2: float = MIN_R2, settle_steps: int = 3,
                     device=None) -> xr.Dataset:
    """Flash onset, motion latency and their difference for each area of a circuit (module docstring).

    Parameters
    ----------
    module : CircuitModule
        A built (trained) circuit reading ``world.frames``.
    world : MovingCircle
        Its world; flashes are drawn with its renderer, motion on its straight
        paths (``motion="linear"``, its own speeds and pixel noise).
    areas : sequence of str, optional
        Nodes (or their variables) to read; default every node with a vector
        trace (sample, time, unit).
    n_samples : int
        Sequences of each kind (>= 8): half fit the flash readouts, half score them.
    flash_step : int
        Step of the flash (default 2; ``n_frames - flash_step`` latencies are read).
    seed : int
        Seed of the flashes, of the straight paths and of the bootstraps.
    n_boot : int
        Bootstrap resamples for the intervals (0: none).
    min_r2 : float
        Held-out R^2 at which a flash counts as decodable, and the lag
        instrument's gate (default 0.5).
    settle_steps : int
        The motion latency is scored from ``settle_steps`` after the area's
        first valid step (default 3): a chain of extrapolators starts up with
        velocities taken from its own start-up values, which take a step per
        extrapolating stage to leave its output (a two-stage chain read from
        its first valid step + 1 reads 0.64 steps for a true 1).
    device : str or torch.device, optional
        Where the circuit runs.

    Returns
    -------
    xarray.Dataset
        Over ``area`` (and ``latency_step``, ``bound``): ``decoding_flash_r2``
        (area, latency_step), ``flash_onset_ms`` / ``_ci``,
        ``motion_latency_ms`` / ``_ci`` and ``latency_advantage_ms`` / ``_ci``
        (flash onset minus motion latency; positive: a moving circle is
        represented earlier than its arrival time). NaN where the area never
        decodes the flash linearly (attribute ``nan_reasons`` of
        ``flash_onset_ms``: a per-frame autoencoder's code, nonlinear in the
        position, reads at most R^2 0.39 in the quickstart), or where the lag
        instrument cannot read it (``motion_nan_reasons``).
    """
    n_samples = int(n_samples)
    if n_samples < 8:
        raise ValueError(f"n_samples must be >= 8 (half fit the readouts, half score them), got {n_samples!r}.")
    if not hasattr(world, "episode_from_trajectories") or not hasattr(world, "motion"):
        raise ValueError(f"decoding_latency needs a moving-circle world (flashes are drawn with its renderer), "
                         f"got {type(world).__name__}.")
    device = torch.device("cpu") if device is None else device
    flashes = flash_episode(world, n_samples, int(flash_step), seed=seed, device=device)
    straight = attrs.evolve(world, motion="linear")
    moving = straight.sample(n_samples, seed=int(np.random.SeedSequence([int(seed), _MOTION_TAG])
                                                 .generate_state(1)[0] >> 1), device=device)
    flash_ds = simulate(module, flashes, device=device)
    motion_ds = simulate(module, moving, device=device)
    names = vector_areas(flash_ds)
    if areas is not None:
        wanted = [str(a) for a in areas]
        by_node = {flash_ds[v].attrs.get("node", v): v for v in names}
        missing = [a for a in wanted if a not in by_node and a not in names]
        if missing:
            raise KeyError(f"areas={missing!r}: no vector trace of that node; areas with one: "
                           f"{sorted(by_node)!r}.")
        names = [a if a in names else by_node[a] for a in wanted]
    if not names:
        raise ValueError("decoding_latency: the circuit has no area with a vector trace (sample, time, unit) to read.")
    dt = dt_ms_of(motion_ds)
    place = flashes.factors[:, 0, 2:4].cpu().numpy().astype(np.float64)
    n_lat = int(world.n_frames) - int(flash_step)
    # An area may run ahead of the circle by more than the lag instrument's default two steps (an early area that
    # extrapolates for the whole chain): candidate lags reach a third of the sequence ahead.
    n_frames = int(world.n_frames)
    lags = np.arange(-min(6, n_frames // 3 + 1), max(7, min(n_frames - 6, 12)))
    r2 = np.full((len(names), n_lat), np.nan)
    onset, onset_ci = np.full(len(names), np.nan), np.full((len(names), 2), np.nan)
    motion, motion_ci = np.full(len(names), np.nan), np.full((len(names), 2), np.nan)
    reasons, flash_reasons = {}, {}
    for i, var in enumerate(names):
        z = flash_ds[var].values.astype(np.float64)
        r2[i], onset[i], onset_ci[i] = _flash_curve(z, place, int(flash_step), n_boot, min_r2, seed)
        if not np.isfinite(onset[i]):
            best = int(np.nanargmax(r2[i])) if np.isfinite(r2[i]).any() else 0
            flash_reasons[var] = (f"no latency reaches held-out R^2 >= {min_r2:g} with a linear readout of the "
                                  f"flash's place (best {np.nanmax(r2[i]):.2f}, {best} steps after the flash): a "
                                  f"code nonlinear in the position reads weakly through it")
        start = int(motion_ds[var].attrs.get("first_valid_step", 0)) + int(settle_steps)
        lag = representational_lag(motion_ds, var, lags=lags, seed=seed, n_boot=n_boot, min_r2=min_r2,
                                   from_step=start)
        motion[i], motion_ci[i] = float(lag["lag_steps"]), lag["lag_steps_ci"].values
        if "nan_reason" in lag["lag_steps"].attrs:
            reasons[var] = lag["lag_steps"].attrs["nan_reason"]
    adv = onset - motion
    adv_ci = np.stack([onset_ci[:, 0] - motion_ci[:, 1], onset_ci[:, 1] - motion_ci[:, 0]], axis=1)
    area_names = [str(flash_ds[v].attrs.get("node", v)) for v in names]
    common = {"n_samples": n_samples, "flash_step": int(flash_step), "settle_steps": int(settle_steps),
              "dt_ms": float(dt), "min_r2": float(min_r2), "n_boot": int(n_boot)}
    ci_attrs = {"confidence_level": 0.95, "method": "percentile bootstrap over sequences"}
    return xr.Dataset(
        {
            "decoding_flash_r2": (("area", "latency_step"), r2, {
                "units": "1", "long_name": "held-out R^2 of the flash's place decoded from the area, by steps "
                                           "after the flash", **common}),
            "flash_onset_ms": ("area", onset * dt, {
                "units": "ms", "long_name": "first latency at which the flash's place is decodable "
                                            "(held-out R^2 >= min_r2)", **common,
                **({"nan_reasons": "; ".join(f"{k}: {v}" for k, v in flash_reasons.items())} if flash_reasons
                   else {})}),
            "flash_onset_ms_ci": (("area", "bound"), onset_ci * dt, {"units": "ms", **ci_attrs}),
            "motion_latency_ms": ("area", motion * dt, {
                "units": "ms", "long_name": "lag of the area behind a circle on straight paths (encoding-model "
                                            "lag)", **common,
                **({"motion_nan_reasons": "; ".join(f"{k}: {v}" for k, v in reasons.items())} if reasons else {})}),
            "motion_latency_ms_ci": (("area", "bound"), motion_ci * dt, {"units": "ms", **ci_attrs}),
            "latency_advantage_ms": ("area", adv * dt, {
                "units": "ms", "long_name": "flash onset minus motion latency (positive: the moving circle is "
                                            "represented ahead of its arrival time)", **common}),
            "latency_advantage_ms_ci": (("area", "bound"), adv_ci * dt, {
                "units": "ms", "long_name": "interval of the advantage (the two intervals' extremes combined)"}),
        },
        coords={"area": ("area", area_names), "latency_step": ("latency_step", np.arange(n_lat), {
                    "units": "steps", "long_name": "steps after the flash"}),
                "bound": ("bound", ["lower", "upper"])})
