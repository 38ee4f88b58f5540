"""Results with a known answer: the circle's exact position reported late and extrapolated."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..analysis import px_per_unit

__all__ = ["delayed_report"]


def delayed_report(world, delay: int, alpha: float, *, n: int = 128, seed: int = 3, noise_px: float = 0.0,
                   noise_seed: int = 0, dt_ms: float = 10.0) -> xr.Dataset:
    """Results whose ``z`` is the circle's position ``delay`` steps late, extrapolated ``alpha`` steps.

    ``z[t] = p[t - d] + alpha (p[t - d] - p[t - d - 1])`` (the first position held before step ``d``) on
    ``world.trajectories(n, seed)``, plus Gaussian readout noise of ``noise_px`` px per coordinate (drawn from
    ``noise_seed``): the report of a perfect encoder behind a delay line and an extrapolator, to calibrate an
    analysis on (the reversal and occlusion analyses' tests, FINDINGS 9b's theory). ``factors`` holds the
    world's factors, ``frames`` zeros of the world's size, ``z`` its ``first_valid_step``.
    """
    f = world.trajectories(n, seed=seed)
    p = f[..., 2:4]
    t = np.arange(f.shape[1])
    late = p[:, np.clip(t - delay, 0, None)]
    before = p[:, np.clip(t - delay - 1, 0, None)]
    z = late + alpha * (late - before)
    z = z + np.random.default_rng(noise_seed).normal(0, noise_px / px_per_unit(world.size), z.shape)
    return xr.Dataset(
        {"z": (("sample", "time", "latent"), z, {"node": "z", "first_valid_step": delay}),
         "factors": (("sample", "time", "factor"), f),
         "frames": (("sample", "time", "y", "x"), np.zeros((n, f.shape[1], world.size, world.size), np.float32))},
        coords={"time": t * dt_ms, "factor": list(world.factor_names)}, attrs={"dt_ms": dt_ms})
