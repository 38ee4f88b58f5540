"""Blanking: the decoded circle carries on along its path when its latents extrapolate it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from neurodelay import MovingCircle
from neurodelay.analysis.blank import blank_extrapolation


class _Renderer:
    """A decoder that draws the scene its latents name: z = (blob_x, blob_y, circle_x, circle_y)."""

    def __init__(self, world, freeze_circle=False):
        self.world, self.freeze = world, freeze_circle

    def frame(self, x, ctx):
        f = torch.cat([x, torch.zeros(x.shape[0], 2)], dim=1)
        if self.freeze:  # draws the circle where the first latent row says, whatever the latents: "stops"
            f[:, 2:4] = 0.5
        return self.world.render(f[:, None])[:, 0], {}


class _Module:
    def __init__(self, world, **kw):
        self.nodes = {"dec": _Renderer(world, **kw)}


def _results(world, n=24):
    ep = world.sample(n, seed=4)
    f = ep.factors.numpy().astype(np.float64)
    return xr.Dataset({"z": (("sample", "time", "latent"), f[..., :4]), "factors": (("sample", "time", "factor"), f)},
                      coords={"factor": list(world.factor_names)})


def test_a_decoder_of_extrapolated_latents_carries_the_circle_on():
    world = MovingCircle(size=32, n_frames=10)
    ds = _results(world)
    out = blank_extrapolation(_Module(world), ds, world, node="z", recon_node="dec", n_boot=50)
    np.testing.assert_allclose(out["blank_progress"].values, 1.0, atol=0.05)
    assert (out["blank_position_error_px"].values < 0.2).all()
    speed = np.linalg.norm(ds["factors"].sel(factor=["circle_vx", "circle_vy"]).values[:, 0], axis=-1) * 24
    np.testing.assert_allclose(out["hold_position_error_px"].values, speed.mean() * out["blank_steps"].values,
                               rtol=0.1)  # holding the last value stops the circle: k steps of motion behind
    lo, hi = out["blank_progress_ci"].values.T
    assert (lo <= out["blank_progress"].values).all() and (out["blank_progress"].values <= hi).all()


def test_a_decoder_that_draws_no_moving_circle_gives_no_verdict():
    world = MovingCircle(size=32, n_frames=10)
    out = blank_extrapolation(_Module(world, freeze_circle=True), _results(world), world, node="z", recon_node="dec",
                              n_boot=0)
    assert np.isnan(out["blank_progress"].values).all()
    assert "does not draw the moving circle" in out["blank_progress"].attrs["nan_reason"]


def test_blanking_needs_linear_motion_and_room():
    world = MovingCircle(size=32, n_frames=10, motion="reversal")
    with pytest.raises(ValueError, match="linear motion"):
        blank_extrapolation(_Module(world), _results(world), world, node="z", recon_node="dec")
    lin = MovingCircle(size=32, n_frames=10)
    with pytest.raises(ValueError, match="t0"):
        blank_extrapolation(_Module(lin), _results(lin), lin, node="z", recon_node="dec", t0=1)
