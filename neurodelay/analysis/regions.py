"""Reconstruction error by region: inside the circle, on its edge, in the background.

Regions (docs/original-study.md section 1; the world's ``masks``): the circle
alone is rendered at radius r, r/2 and 1.5 r and thresholded at > 0.4;
``object`` = disc(r), ``edge`` = object XOR disc(r/2), ``inside`` = object minus edge,
``background`` = NOT disc(1.5 r). The masks are those of the *target*
frame (the frame the reconstruction is scored against).

The mean squared error of a region is pooled over pixels: the sum of the
squared errors over every pixel of the region in every image, divided by
the number of such pixels (images in which a region is empty, e.g. a circle
outside the image, add nothing). Pixel values are in [0, 1], so errors are
in (intensity)^2, unit ``1``.

Two settings:

* static models (:func:`static_region_errors`): an ``n x n x n x n`` grid of
  factor values (``linspace(0, 1, n)`` for blob x, blob y, circle x, circle
  y; n = 8 by default) is rendered and run through the circuit;
* moving models (:func:`moving_region_errors`): every scored frame of the
  evaluation set, the reconstruction at step t against the frame at
  ``t + target_offset_steps``.

Both also bin the error by the distance between the circle centre and the
blob centre, in pixels (``circle_blob_distance_px``).

How much of the circle is drawn (``drawn``)
    ``1 - E / E0`` over the inside of the circle, where ``E`` is the
    reconstruction's summed squared error there and ``E0`` that of the
    *mean scene* (the world's frames averaged over :data:`N_MEAN_SCENE`
    draws, the picture a decoder that has collapsed to its training mean
    draws) on the same images: 0 for a decoder that draws the mean scene, 1
    for one that draws the circle perfectly, negative for one that does
    worse than the mean scene. (Measured against a decoder that draws the
    blob and no circle instead, a collapsed decoder scored 0.25.)

Intervals
    ``region_mse_ci`` and ``drawn_ci`` are percentile bootstrap intervals
    (``scipy.stats.bootstrap``, ``n_boot`` resamples) over the images scored
    (static) or over the sequences (moving: the frames of a sequence are
    resampled together); they cover the images drawn, not the training run.
"""

from __future__ import annotations

import numbers

import warnings

import numpy as np
import torch
import xarray as xr
from scipy import stats

from neurodelay._util.validators import check_int
from neurodelay.analysis._regionstats import (
    _BOUND,
    REGIONS,
    _check_finite_images,
    _check_masks,
    _dataset,
    _from_sums,
    _image_array,
    _interval_vars,
    _intervals,
    _ratio,
    _region_sums,
)
from neurodelay.components.base import RunContext
from neurodelay.worlds.circle import circle_value_set

__all__ = ["REGIONS", "N_MEAN_SCENE", "region_errors", "static_region_errors", "moving_region_errors",
           "circle_blob_distance_px", "factor_grid", "heldout_region_errors", "mean_scene"]

#: Scenes averaged into the mean scene (the reference that "drawn" counts from).
N_MEAN_SCENE = 4096
_MEAN_SCENE_SEED = 0x6D65616E  # "mean"
#: Bootstrap resamples of the intervals.
N_BOOT = 1000


def mean_scene(world, n: int = N_MEAN_SCENE, seed: int = _MEAN_SCENE_SEED) -> np.ndarray:
    """The world's frames averaged over ``n`` seeded draws (and over time): shape (H, W).

    What a decoder collapsed to its training mean draws: the reference of
    ``drawn`` (0 for this picture).
    """
    ep = world.sample(int(n), seed=int(seed))
    frames = ep.frames.detach().cpu().numpy().astype(np.float64)
    return frames.reshape(-1, frames.shape[-2], frames.shape[-1]).mean(axis=0)


def factor_grid(n: int = 8) -> np.ndarray:
    """All combinations of ``linspace(0, 1, n)`` for the four position factors.

    Returns
    -------
    numpy.ndarray
        float64, shape (n**4, 4): ``[blob_x, blob_y, circle_x, circle_y]``,
        the last factor varying fastest.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise ValueError(f"grid_size must be an integer >= 2, got {n!r}; the original used 8.")
    v = np.linspace(0.0, 1.0, int(n))
    return np.stack(np.meshgrid(v, v, v, v, indexing="ij"), axis=-1).reshape(-1, 4)


def circle_blob_distance_px(factors: np.ndarray, size: int) -> np.ndarray:
    """Distance between the circle centre and the blob centre in pixels.

    The circle centre sits at ``0.75 c + 0.125`` image widths, the blob's at
    ``b`` image widths.

    Parameters
    ----------
    factors : numpy.ndarray, shape (..., >= 4)
        ``[blob_x, blob_y, circle_x, circle_y, ...]``.
    size : int
        Image size in pixels.

    Returns
    -------
    numpy.ndarray, shape (...)

    Raises
    ------
    ValueError
        Fewer than 4 factors along the last axis, or ``size`` not an
        integer >= 1.
    """
    f = np.asarray(factors, dtype=np.float64)
    if f.ndim < 1 or f.shape[-1] < 4:
        raise ValueError(f"factors must have at least 4 values along the last axis ([blob_x, blob_y, circle_x, "
                         f"circle_y, ...]), got shape {f.shape}.")
    size = check_int("size", size, 1)
    circle = 0.75 * f[..., 2:4] + 0.125
    return np.linalg.norm(circle - f[..., 0:2], axis=-1) * float(size)


def region_errors(recon, target, masks: dict, distance_px=None, *, n_bins: int = 10,
                  size: int | None = None) -> dict:
    """Pooled squared error per region, overall and by circle-blob distance.

    Parameters
    ----------
    recon, target : array_like, shape (N, H, W)
        Reconstructions and the frames they are scored against, in [0, 1].
    masks : dict of str -> array_like of bool, shape (N, H, W)
        Region masks of the targets (keys as :data:`REGIONS`).
    distance_px : array_like, shape (N,), optional
        Circle-blob distance per image, px.
    n_bins : int
        Distance bins (>= 1), equal width over ``[0, 1.25 * size]`` px.
    size : int, optional
        Image size in pixels (>= 1; default: W).

    Returns
    -------
    dict
        ``mse`` (R,), ``pixels`` (R,): mean pixel count per image;
        with distances also ``mse_by_distance`` (n_bins, R), NaN for empty
        bins, ``bin_edges`` (n_bins + 1,) px and ``images_by_distance``
        (n_bins,).
    """
    recon = _image_array("recon", recon)
    target = _image_array("target", target)
    if recon.shape != target.shape or recon.ndim != 3:
        raise ValueError(f"recon and target must both have shape (N, H, W), got {recon.shape} and {target.shape}.")
    if recon.shape[0] < 1:
        raise ValueError(f"recon and target must hold at least one image, got shape {recon.shape}.")
    for name, images in (("recon", recon), ("target", target)):
        _check_finite_images(name, images, ("image", "y", "x"), "Drop those images before scoring.")
    n_bins = check_int("n_bins", n_bins, 1)
    size = recon.shape[-1] if size is None else check_int("size", size, 1)
    masks = _check_masks(masks, recon.shape)
    sums, counts = _region_sums(recon, target, masks)
    if distance_px is None:
        return {"mse": _ratio(sums.sum(0), counts.sum(0)), "pixels": counts.mean(0)}
    d = np.asarray(distance_px, dtype=np.float64).reshape(-1)
    if d.shape[0] != recon.shape[0]:
        raise ValueError(f"distance_px must hold one distance per image ({recon.shape[0]}), got {d.shape[0]}.")
    bad = ~np.isfinite(d) | (d < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"distance_px must hold finite distances >= 0 (px), got {int(bad.sum())} that are not "
                         f"(first at image {i}: {d[i]}); compute them with circle_blob_distance_px(factors, size).")
    return _from_sums(sums, counts, d, n_bins, size)


def static_region_errors(module, world, recon_node: str, *, grid_size: int = 8, batch_size: int = 512,
                         n_bins: int = 10, device="cpu", factors=None, setting: str | None = None,
                         n_boot: int = N_BOOT) -> xr.Dataset:
    """Region errors of a static model over the ``grid_size**4`` factor grid.

    Each grid point is rendered as a one-frame sequence (factors beyond the
    four positions, if the world has any, are 0) and run through the
    circuit; the output of ``recon_node`` at step 0 is scored against the
    frame.

    Parameters
    ----------
    module : CircuitModule
    world : CircleOverBlob or MovingCircle
        Renderer, masks and factor layout.
    recon_node : str
        The node whose output is the reconstruction: images shaped like the
        world's frames.
    grid_size : int
        Values per factor (8: 4096 images).
    batch_size : int
        Images per forward pass (>= 1; memory only).
    n_bins : int
        Distance bins (>= 1).
    device : str or torch.device
    factors : array (n, 4), optional
        Score these factor combinations instead of the grid.
    setting : str, optional
        Description stored in the ``setting`` attribute (default: the grid's).
    n_boot : int
        Bootstrap resamples of the images for the intervals (>= 0; 0: none).

    Returns
    -------
    xarray.Dataset
        ``region_mse`` (region), ``region_pixels`` (region),
        ``region_mse_by_distance`` (distance_bin, region),
        ``distance_bin_images`` (distance_bin), ``region_mse_ci`` (region,
        bound), ``region_mse_mean_scene`` (region), ``drawn`` and
        ``drawn_ci`` (bound): see the module docstring.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    n_bins = check_int("n_bins", n_bins, 1)
    n_boot = check_int("n_boot", n_boot, 0)
    if factors is None:
        grid = factor_grid(grid_size)
        setting = setting or f"static factor grid of {grid_size}^4 = {grid.shape[0]} images"
    else:
        grid = np.asarray(factors, dtype=np.float64)
        if grid.ndim != 2 or grid.shape[1] != 4 or grid.shape[0] == 0:
            raise ValueError(f"factors must have shape (n, 4) with n >= 1, got {grid.shape}.")
        setting = setting or f"{grid.shape[0]} given factor combinations"
    n_f = int(world.n_factors)
    factors = np.zeros((grid.shape[0], n_f))
    factors[:, :4] = grid
    sums, counts, mean_sums = [], [], []
    scene = mean_scene(world)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for lo in range(0, grid.shape[0], batch_size):
                f = torch.as_tensor(factors[lo:lo + batch_size], dtype=torch.float32, device=device)[:, None]
                frames = world.render(f)
                out = module({"world.frames": frames, "world.factors": f}, ctx=RunContext(sample=False))
                if recon_node not in out:
                    raise KeyError(f"recon_node={recon_node!r} is not a trace of the circuit "
                                   f"({', '.join(sorted(out))}).")
                if tuple(out[recon_node].shape[2:]) != tuple(frames.shape[2:]):
                    raise ValueError(f"recon_node={recon_node!r} must output images shaped like the world's "
                                     f"frames, {tuple(frames.shape[2:])} per step; its output has shape "
                                     f"{tuple(out[recon_node].shape[2:])}. Pass the decoder node (e.g. 'dec').")
                rec = out[recon_node][:, 0, 0].detach().cpu().numpy()
                bad = ~np.isfinite(rec)
                if bad.any():
                    i = lo + int(np.argwhere(bad)[0][0])
                    raise ValueError(f"recon_node={recon_node!r} output {int(bad.sum())} NaN or infinite pixels "
                                     f"(first for factors {grid[i].tolist()}, image {i} of the grid); the circuit "
                                     f"has diverged: check its training loss.")
                m = {k: v[:, 0, 0].cpu().numpy() for k, v in world.masks(f).items()}
                target = frames[:, 0, 0].cpu().numpy()
                s, c = _region_sums(rec, target, m)
                sums.append(s)
                counts.append(c)
                mean_sums.append(_region_sums(np.broadcast_to(scene, target.shape), target, m)[0])
    finally:
        module.train(was_training)
    sums, counts, mean_sums = np.concatenate(sums), np.concatenate(counts), np.concatenate(mean_sums)
    res = _from_sums(sums, counts, circle_blob_distance_px(grid, world.size), n_bins, world.size)
    iv = _intervals(sums, mean_sums, counts, n_boot)
    return _dataset(res, _interval_vars(iv, sums.shape[0], "images", n_boot), coords=_BOUND,
                    attrs={"setting": setting, "node": recon_node})


def moving_region_errors(ds: xr.Dataset, world, *, recon: str = "reconstruction", offset_steps: int | None = None,
                         steps=None, n_bins: int = 10, n_boot: int = N_BOOT) -> xr.Dataset:
    """Region errors of a moving model, per frame, from a results Dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        ``frames`` and ``recon`` (sample, time, y, x), ``factors``
        (sample, time, factor).
    world : MovingCircle
        Supplies the masks; its ``size`` must be the frames' width.
    recon : str
        The reconstruction variable, shaped like ``frames``.
    offset_steps : int, optional
        The reconstruction at t is scored against the frame at t + offset
        (default: the variable's ``target_offset_steps`` attribute, else 0).
    steps : int or sequence of int, optional
        Steps t scored, in ``[0, n_time)`` (default: where
        ``reconstruction_mse_by_time`` is defined, else every t with
        t + offset in range).
    n_bins : int
        Distance bins (>= 1).
    n_boot : int
        Bootstrap resamples of the sequences for the intervals (>= 0).

    Returns
    -------
    xarray.Dataset
        As :func:`static_region_errors`, plus ``region_mse_by_time``
        (time, region; NaN at unscored steps). The mean scene is the mean of
        the evaluation frames (every step). And whether the reconstruction
        lags the moving circle: ``error_behind`` and ``error_ahead``, the
        mean signed error (reconstruction - frame) over the pixels within 2
        circle radii of the target circle's centre that lie behind it / ahead
        of it along its motion, and ``motion_asymmetry`` = behind - ahead
        with its interval (``motion_asymmetry_ci``, over sequences): a
        reconstruction that draws the circle where it was is too bright
        behind and too dark ahead, so positive means lagging, 0 neither.
    """
    if recon not in ds.data_vars:
        images = [str(n) for n, v in ds.data_vars.items()
                  if n != "frames" and "frames" in ds.data_vars and v.shape == ds["frames"].shape]
        which = f"here: {', '.join(map(repr, images))}" if images else "e.g. recon='dec'"
        raise KeyError(f"the Dataset has no {recon!r} variable; region errors need a reconstruction: pass "
                       f"recon=<the decoder's trace> (a simulate result names it after the node; {which}).")
    for name in ("frames", "factors"):
        if name not in ds.data_vars:
            raise KeyError(f"the Dataset has no {name!r} variable; region errors need the world's frames and "
                           f"factors (a results Dataset of simulate or a run).")
    n_bins = check_int("n_bins", n_bins, 1)
    n_boot = check_int("n_boot", n_boot, 0)
    if ds[recon].shape != ds["frames"].shape:
        raise ValueError(f"recon={recon!r} must be images shaped like the frames {tuple(ds['frames'].dims)} "
                         f"{tuple(ds['frames'].shape)}, got {tuple(ds[recon].dims)} {tuple(ds[recon].shape)}; "
                         f"pass the reconstruction variable (the decoder's trace).")
    size = int(ds["frames"].shape[-1])
    if int(world.size) != size:
        raise ValueError(f"world.size={world.size} must be the frames' width, {size} px; pass the world the "
                         f"Dataset was simulated with (e.g. MovingCircle(size={size})).")
    rec = np.asarray(ds[recon].values, dtype=np.float64)
    frames = np.asarray(ds["frames"].values, dtype=np.float64)
    fac = np.asarray(ds["factors"].values, dtype=np.float64)
    n_s, n_t = rec.shape[:2]
    if offset_steps is None:
        offset = int(ds[recon].attrs.get("target_offset_steps", 0))
    elif isinstance(offset_steps, (bool, np.bool_)) or not isinstance(offset_steps, numbers.Integral):
        raise ValueError(f"offset_steps must be a whole number of steps, got {offset_steps!r}; use e.g. "
                         f"offset_steps=0 (score each reconstruction against its own frame).")
    else:
        offset = int(offset_steps)
    if steps is None:
        if recon == "reconstruction" and "reconstruction_mse_by_time" in ds.data_vars:
            steps = np.flatnonzero(np.isfinite(ds["reconstruction_mse_by_time"].values))
        else:
            steps = np.arange(max(0, -offset), min(n_t, n_t - offset))
    arr = np.atleast_1d(np.asarray(steps))
    if arr.size and (arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer)
                     or arr.min() < 0 or arr.max() >= n_t):
        raise ValueError(f"steps must be whole steps in [0, {n_t - 1}] (the sequences have {n_t} steps), got "
                         f"{steps!r}; use e.g. steps=range(1, {n_t}).")
    steps = arr.astype(np.int64)
    if steps.size == 0 or steps.min() + offset < 0 or steps.max() + offset >= n_t:
        raise ValueError(f"no steps to score, or steps {steps.tolist()} + offset {offset} leave [0, {n_t}).")
    for name, images, at in ((recon, rec, steps), ("frames", frames, steps + offset)):
        bad = ~np.isfinite(images[:, at])
        if bad.any():
            i, j, y, x = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(f"{name!r} must contain only finite values at the steps scored; found {int(bad.sum())} "
                             f"NaN or infinite entries (first at sample {i}, step {int(at[j])}, pixel y {y}, x {x}: "
                             f"{images[i, at[j], y, x]}). Score other steps (steps=...) or drop those samples "
                             f"(ds.isel(sample=...)).")
    target_f = fac[:, steps + offset]  # (n_s, S, F)
    masks = world.masks(torch.as_tensor(target_f, dtype=torch.float32))
    masks = {k: v[:, :, 0].cpu().numpy() for k, v in masks.items()}
    sums, counts = _region_sums(rec[:, steps], frames[:, steps + offset], masks)  # (n_s, S, R)
    scene = frames.reshape(-1, frames.shape[-2], frames.shape[-1]).mean(axis=0)
    mean_sums, _ = _region_sums(np.broadcast_to(scene, frames[:, steps + offset].shape), frames[:, steps + offset],
                                masks)
    iv = _intervals(sums.sum(1), mean_sums.sum(1), counts.sum(1), n_boot)
    by_time = np.full((n_t, len(REGIONS)), np.nan)
    by_time[steps] = _ratio(sums.sum(0), counts.sum(0))
    dist = circle_blob_distance_px(target_f, size).reshape(-1)
    res = _from_sums(sums.reshape(-1, len(REGIONS)), counts.reshape(-1, len(REGIONS)), dist, n_bins, size)
    extra = {"region_mse_by_time": (("time", "region"), by_time, {
        "units": "1", "long_name": f"mean squared error per pixel by region of the reconstruction at t against "
                                   f"the frame at t + {offset} (NaN: unscored step)"})}
    extra.update(_interval_vars(iv, n_s, "sequences", n_boot))
    extra.update(_motion_asymmetry(rec[:, steps] - frames[:, steps + offset], target_f, fac, steps, ds, world,
                                   n_boot))
    return _dataset(res, extra, coords={"time": ds["time"], **_BOUND},
                    attrs={"setting": f"evaluation frames, steps {steps.min()}..{steps.max()}",
                           "target_offset_steps": offset})


def _motion_asymmetry(err: np.ndarray, target_f: np.ndarray, fac: np.ndarray, steps: np.ndarray, ds: xr.Dataset,
                      world, n_boot: int) -> dict:
    """Signed reconstruction error behind minus ahead of the circle along its motion (see moving_region_errors).

    Parameters
    ----------
    err : numpy.ndarray, shape (n, S, H, W)
        Reconstruction minus target frame at the scored steps.
    target_f : numpy.ndarray, shape (n, S, F)
        Factors of the target frames.
    fac : numpy.ndarray, shape (n, T, F)
        Every factor (for the velocity).
    """
    names = [str(f) for f in ds["factor"].values]
    size = err.shape[-1]
    cx = (0.75 * target_f[..., names.index("circle_x")] + 0.125) * size  # px; pixel j's centre at j + 0.5
    cy = (0.75 * target_f[..., names.index("circle_y")] + 0.125) * size
    if "circle_vx" in names and "circle_vy" in names:
        vel = target_f[..., [names.index("circle_vx"), names.index("circle_vy")]]
    else:
        grad = np.gradient(fac[..., [names.index("circle_x"), names.index("circle_y")]], axis=1)
        vel = grad[:, steps]
    speed = np.linalg.norm(vel, axis=-1)
    moving = speed > 1e-9
    ux, uy = (vel / np.where(moving, speed, 1.0)[..., None]).transpose(2, 0, 1)
    grid = np.arange(size) + 0.5
    dx = grid[None, None, None, :] - cx[..., None, None]
    dy = grid[None, None, :, None] - cy[..., None, None]
    near = (dx**2 + dy**2 <= (2.0 * float(world.radius) * size) ** 2) & moving[..., None, None]
    along = dx * ux[..., None, None] + dy * uy[..., None, None]
    behind, ahead = near & (along < 0), near & (along > 0)
    sums = np.stack([(err * behind).sum(axis=(1, 2, 3)), behind.sum(axis=(1, 2, 3)),
                     (err * ahead).sum(axis=(1, 2, 3)), ahead.sum(axis=(1, 2, 3))], axis=-1)  # per sequence

    def asym(i):
        t = sums[np.asarray(i, dtype=np.int64)].sum(0)
        return t[0] / t[1] - t[2] / t[3] if t[1] > 0 and t[3] > 0 else np.nan

    value = float(asym(np.arange(sums.shape[0])))
    ci = np.full(2, np.nan)
    if n_boot > 0 and sums.shape[0] >= 2 and np.isfinite(value):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.bootstrap((np.arange(sums.shape[0]),), asym, vectorized=False, n_resamples=int(n_boot),
                                  method="percentile",
                                  rng=np.random.default_rng(np.random.SeedSequence([0, 0x617379])))
        ci = np.array([res.confidence_interval.low, res.confidence_interval.high], dtype=np.float64)
    tot = sums.sum(0)
    text = ("mean signed reconstruction error (reconstruction - frame) within 2 circle radii of the circle's "
            "centre")
    return {
        "motion_asymmetry": ((), value, {
            "units": "1", "long_name": f"{text}, behind the circle minus ahead of it along its motion (positive: "
                                       f"the reconstruction lags the circle)", "n_sequences": int(sums.shape[0])}),
        "motion_asymmetry_ci": ("bound", ci, {"units": "1", "long_name": "confidence interval of motion_asymmetry",
                                              "confidence_level": 0.95, "n_boot": int(n_boot),
                                              "method": "percentile bootstrap over sequences"}),
        "error_behind": ((), float(tot[0] / tot[1]) if tot[1] else np.nan, {
            "units": "1", "long_name": f"{text}, behind the circle along its motion"}),
        "error_ahead": ((), float(tot[2] / tot[3]) if tot[3] else np.nan, {
            "units": "1", "long_name": f"{text}, ahead of the circle along its motion"}),
    }


def heldout_region_errors(module, world, recon_node: str, *, n_blob: int = 6, batch_size: int = 512,
                          device="cpu") -> xr.Dataset:
    """Region errors on the circle positions a static world trains on and on those it holds out.

    For a :class:`~neurodelay.worlds.CircleOverBlob` with ``circle_values``
    ``"even"`` (or ``"odd"``), every combination of the trained circle
    values (8 for x, 8 for y) and ``linspace(0, 1, n_blob)`` for the blob's x
    and y is scored (``split = "trained"``), and the same with the other
    half of the 16-value grid (``split = "heldout"``): positions the model
    never saw.

    Returns
    -------
    xarray.Dataset
        ``heldout_region_mse`` (split, region), ``heldout_region_pixels``
        (split, region) and ``heldout_drawn`` (split).
    """
    n_blob = check_int("n_blob", n_blob, 1)
    trained = str(getattr(world, "circle_values", "grid"))
    if trained not in ("even", "odd"):
        raise ValueError(f"circle_values={trained!r}: held-out errors need a world that trains on one half "
                         f"of the circle grid ('even' or 'odd').")
    other = "odd" if trained == "even" else "even"
    blob = np.linspace(0.0, 1.0, int(n_blob))
    parts = []
    for name in (trained, other):
        circle = circle_value_set(name)
        bx, by, cx, cy = np.meshgrid(blob, blob, circle, circle, indexing="ij")
        f = np.stack([bx, by, cx, cy], axis=-1).reshape(-1, 4)
        parts.append(static_region_errors(module, world, recon_node, factors=f, batch_size=batch_size,
                                          device=device, setting=f"circle values {name!r}"))
    split = xr.DataArray(["trained", "heldout"], dims="split",
                         attrs={"long_name": f"circle values trained on ({trained!r}) or held out ({other!r})"})
    mse = xr.concat([p["region_mse"] for p in parts], dim=split)
    pix = xr.concat([p["region_pixels"] for p in parts], dim=split)
    drawn = xr.concat([p["drawn"] for p in parts], dim=split)
    drawn.attrs.update({"units": "1", "long_name": "fraction of the circle's inside drawn (see drawn), trained and "
                        "held-out circle positions"})
    mse.attrs.update({"units": "1", "long_name": "mean squared error per pixel by region, trained and held-out "
                      "circle positions"})
    pix.attrs.update({"units": "1", "long_name": "pixels scored per region"})
    return xr.Dataset({"heldout_region_mse": mse, "heldout_region_pixels": pix, "heldout_drawn": drawn},
                      attrs={"node": recon_node, "trained_circle_values": trained, "heldout_circle_values": other})
