"""Blanking: does the circuit carry the circle on along its path when its input stops?

For ``k`` steps from a step ``t0`` the input is withdrawn and the
representation is left to its own prediction, as a blend with ``gamma = 1``
would: ``z[t] = z[t-1] + alpha (z[t-1] - z[t-2])`` (the original's predictor,
extrapolating the representation's own history). The extrapolated
representation is decoded by the circuit's decoder, and the circle's place
in each decoded frame is read by template matching along the circle's true
path: the path coordinate ``s`` (steps of motion) whose rendered frame, with
the sequence's blob, is closest to the decoded frame. Compared with the
place read the same way from the frames the circuit decodes with its input
(``s_normal``), this says whether the blanked circuit carries the circle on
(``progress`` 1: it moves as far as with its input), stops (0: it stays
where it was at ``t0 - 1``) or falls behind in between.

Why decode rather than read z linearly? A linear readout of an extrapolated
z is the linear extrapolation of the readout: every circuit would "carry
the circle on". Whether extrapolating the latents moves the circle depends on
how the decoder maps them to images, which only the decoder can say.

Only linear motion (constant velocity) is scored: the path is then known
beyond the frames shown.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import xarray as xr
from scipy import stats

from neurodelay.analysis._dataset import CIRCLE_FACTORS, VELOCITY_FACTORS, factor_array, px_per_unit
from neurodelay.components.base import RunContext

__all__ = ["BLANK_STEPS", "blank_extrapolation"]

#: Blank lengths (steps) scored by the registered analysis.
BLANK_STEPS = (1, 2, 3, 4)
_GRID_STEP = 0.1  # path coordinate resolution of the template match, in steps of motion


def _extrapolate(z: np.ndarray, t0: int, k: int, alpha: float) -> np.ndarray:
    """z (n, T, M) with steps t0..t0+k-1 replaced by the extrapolation of the steps before: (n, k, M)."""
    prev2, prev = z[:, t0 - 2].copy(), z[:, t0 - 1].copy()
    out = []
    for _ in range(k):
        nxt = prev + alpha * (prev - prev2)
        out.append(nxt)
        prev2, prev = prev, nxt
    return np.stack(out, axis=1)


def _decode(module, recon_node: str, z: np.ndarray, device) -> np.ndarray:
    """Decoder images (..., H, W) of latents (..., M), in float32."""
    dec = module.nodes[recon_node]
    with torch.no_grad():
        x = torch.as_tensor(z.reshape(-1, z.shape[-1]), dtype=torch.float32, device=device)
        images, _ = dec.frame(x, RunContext(sample=False))
    images = images.detach().cpu().numpy()
    return images.reshape(*z.shape[:-1], *images.shape[-2:])


def _path_place(images: np.ndarray, start: np.ndarray, vel: np.ndarray, blob: np.ndarray, world,
                grid: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """Path coordinate (n, K) of the circle in each decoded image (n, K, H, W) by template matching."""
    # templates: (n, G, H, W) frames of the circle at start + vel * grid with the sequence's blob;
    # |a - b|^2 = |a|^2 - 2 a.b + |b|^2 without the (n, K, G, H, W) intermediate
    cross = np.einsum("nkhw,nghw->nkg", images, templates)
    d = (images**2).sum(axis=(-2, -1))[..., None] - 2.0 * cross + (templates**2).sum(axis=(-2, -1))[:, None]
    return grid[np.argmin(d, axis=-1)]


def blank_extrapolation(module, ds: xr.Dataset, world, *, node: str, recon_node: str, alpha: float = 1.0,
                        blank_steps=BLANK_STEPS, t0: int | None = None, n_boot: int = 1000,
                        device="cpu") -> xr.Dataset:
    """Blank the input for k steps and see where the decoded circle goes (see the module docstring).

    Parameters
    ----------
    module : CircuitModule
        The trained circuit.
    ds : xarray.Dataset
        Its evaluation results: the representation ``node`` (sample, time,
        unit) and ``factors``; linear motion.
    world : MovingCircle
        Renders the templates (its size must be the frames').
    node, recon_node : str
        The representation variable and the decoder node that decodes it.
    alpha : float
        The predictor's horizon (1: the original's).
    blank_steps : sequence of int
        Blank lengths k (>= 1).
    t0 : int, optional
        First blanked step (default: ``T - max(k)``, so every k fits).
    n_boot : int
        Bootstrap resamples of the sequences for the intervals.

    Returns
    -------
    xarray.Dataset
        Over ``blank_steps``: ``blank_progress`` (how far the decoded
        circle moves during the blank, over how far it moves with the
        input: 1 carries on, 0 stops) with ``blank_progress_ci``,
        ``blank_position_error_px`` (mean absolute distance along the path
        between the blanked and the normal decoded circle at the last
        blanked step, px) with its interval, and ``hold_position_error_px``
        (the same for a representation held at its last value: the error
        of stopping). All NaN, with ``nan_reason``, when the decoded circle
        does not follow the path with the input (it moves less than half a
        step of motion per step: attribute ``decoded_motion_per_step``).
    """
    z = np.asarray(ds[node].values, dtype=np.float64)
    n, n_t = z.shape[:2]
    ks = [int(k) for k in blank_steps]
    if min(ks) < 1:
        raise ValueError(f"blank_steps must be whole steps >= 1, got {list(blank_steps)}.")
    t0 = n_t - max(ks) if t0 is None else int(t0)
    if t0 < 2 or t0 + max(ks) > n_t:
        raise ValueError(f"t0 = {t0} must leave 2 steps before the blank and {max(ks)} after it in {n_t} steps.")
    pos = factor_array(ds, CIRCLE_FACTORS)
    vel = factor_array(ds, VELOCITY_FACTORS)
    if not np.allclose(vel, vel[:, :1], atol=1e-7):
        raise ValueError("blank_extrapolation needs linear motion (constant velocity): the path beyond the frames "
                         "shown must be known.")
    start, v = pos[:, 0], vel[:, 0]
    blob = factor_array(ds, ("blob_x", "blob_y"))[:, 0]
    grid = np.arange(-3.0, n_t + 3.0 + 1e-9, _GRID_STEP)
    f = np.zeros((n, grid.size, int(world.n_factors)))
    f[..., :2] = blob[:, None]
    f[..., 2:4] = start[:, None] + v[:, None] * grid[None, :, None]
    with torch.no_grad():
        templates = world.render(torch.as_tensor(f, dtype=torch.float32))[..., 0, :, :].numpy()  # float32
    speed_px = np.linalg.norm(v, axis=-1) * px_per_unit(world.size)  # px per step
    normal_img = _decode(module, recon_node, z[:, t0 - 1:t0 + max(ks)], device)
    s_normal = _path_place(normal_img, start, v, blob, world, grid, templates)  # (n, 1 + max k)
    out = {name: np.full((len(ks), 3), np.nan) for name in ("progress", "error", "hold")}
    rng = np.random.default_rng(0)
    # The decoded circle must follow the path with the input for a blank to be judged against it.
    follows = float(np.mean(s_normal[:, -1] - s_normal[:, 0])) / max(ks)
    reason = None if follows >= 0.5 else (
        f"with its input the decoded circle moves {follows:.2f} steps of motion per step along its path (less than "
        f"half the circle's): the decoder does not draw the moving circle, so no blank can be judged")
    for i, k in enumerate(ks if reason is None else []):
        zb = _extrapolate(z, t0, k, alpha)
        s_blank = _path_place(_decode(module, recon_node, zb, device), start, v, blob, world, grid, templates)
        moved_normal = s_normal[:, k] - s_normal[:, 0]
        moved_blank = s_blank[:, -1] - s_normal[:, 0]
        err = np.abs(s_blank[:, -1] - s_normal[:, k]) * speed_px
        hold = np.abs(s_normal[:, 0] - s_normal[:, k]) * speed_px
        stats_ = {"progress": (moved_blank, moved_normal), "error": (err, None), "hold": (hold, None)}
        for name, (a, b) in stats_.items():
            def stat(idx, a=a, b=b):
                idx = np.asarray(idx, dtype=np.int64)
                return a[idx].sum() / b[idx].sum() if b is not None else a[idx].mean()
            value = stat(np.arange(n))
            ci = (np.nan, np.nan)
            if n_boot > 0 and n >= 2 and np.isfinite(value):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    res = stats.bootstrap((np.arange(n),), stat, vectorized=False, n_resamples=int(n_boot),
                                          method="percentile", rng=rng)
                ci = (res.confidence_interval.low, res.confidence_interval.high)
            out[name][i] = [value, *ci]
    bound = ["lower", "upper"]
    common = {"t0": int(t0), "alpha": float(alpha), "node": node, "recon_node": recon_node, "n_sequences": int(n),
              "decoded_motion_per_step": follows, **({"nan_reason": reason} if reason else {})}
    ci_attrs = {"confidence_level": 0.95, "method": "percentile bootstrap over sequences", "n_boot": int(n_boot)}
    return xr.Dataset(
        {
            "blank_progress": ("blank_steps", out["progress"][:, 0], {
                "units": "1", "long_name": "distance the decoded circle moves along its path while the input is "
                                           "blanked, over the distance it moves with the input (1: carries on, "
                                           "0: stops)", **common}),
            "blank_progress_ci": (("blank_steps", "bound"), out["progress"][:, 1:], {
                "units": "1", "long_name": "confidence interval of blank_progress", **ci_attrs}),
            "blank_position_error_px": ("blank_steps", out["error"][:, 0], {
                "units": "px", "long_name": "mean distance along the path between the decoded circle with the input "
                                            "blanked and with it, at the last blanked step", **common}),
            "blank_position_error_px_ci": (("blank_steps", "bound"), out["error"][:, 1:], {
                "units": "px", "long_name": "confidence interval of blank_position_error_px", **ci_attrs}),
            "hold_position_error_px": ("blank_steps", out["hold"][:, 0], {
                "units": "px", "long_name": "the same for a representation held at its last value (the error of "
                                            "stopping)", **common}),
        },
        coords={"blank_steps": ("blank_steps", ks, {"units": "steps", "long_name": "steps the input is blanked"}),
                "bound": ("bound", bound, {"long_name": "bound of the confidence interval"})},
    )
