"""Time-resolved decoding per area, calibrated on theory circuits whose latencies are known exactly.

The "encoder" is an exact centroid of the frame (the world draws no blob), so
every area's activity is a known function of the circle's place: a chain of
delay lines and extrapolators then has a flash onset equal to its path's
delay and a motion latency of that delay minus its horizons.
"""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch

from neurodelay import Circuit, Edge, Extrapolator, MovingCircle, Relay
from neurodelay.analysis.decoding_latency import decoding_latency, flash_episode
from neurodelay.simulation import build_seeded
from neurodelay.components import AbstractComponent, FrameModule


@attrs.frozen
class Centroid(AbstractComponent):
    """The intensity-weighted centre of a frame (2 outputs; 0 for an empty frame)."""

    kind = "test_centroid"

    def out_shape(self, in_shapes):
        return (2,)

    def build(self):
        return _CentroidModule()


class _CentroidModule(FrameModule):
    def frame(self, x, ctx):
        img = x[:, 0]
        h, w = img.shape[-2:]
        ys = torch.arange(h, dtype=img.dtype).view(1, h, 1)
        xs = torch.arange(w, dtype=img.dtype).view(1, 1, w)
        mass = img.sum(dim=(-2, -1)) + 1e-6
        return torch.stack([(img * xs).sum(dim=(-2, -1)) / mass, (img * ys).sum(dim=(-2, -1)) / mass], dim=-1), {}


WORLD = MovingCircle(size=32, n_frames=16, blob_brightness=0.0, speed_min=0.02, speed_max=0.05)


def _chain(d1: int, d2: int, a1: float, a2: float):
    circuit = Circuit(
        nodes={"enc": Centroid(), "v1": Extrapolator(alpha=a1), "v2": Extrapolator(alpha=a2), "r": Relay()},
        edges=[Edge("world.frames", "enc", delay_ms=10), Edge("enc", "v1", delay_ms=10 * d1),
               Edge("v1", "v2", delay_ms=10 * d2), Edge("v2", "r")])
    shapes = {"world.frames": (1, 32, 32), "world.factors": (6,)}
    return build_seeded(circuit, input_shapes=shapes, seed=0)


def test_flash_episode_shows_the_circle_once():
    ep = flash_episode(WORLD, 6, 3, seed=1)
    mass = ep.frames.sum(dim=(2, 3, 4))
    assert torch.all(mass[:, 3] > 10) and torch.all(mass[:, [0, 1, 2, 4, 5]] == 0)
    assert torch.equal(ep.factors[:, 0], ep.factors[:, -1])
    assert ep.factor_names[2:4] == ("circle_x", "circle_y")
    with pytest.raises(ValueError, match="flash_step must be in"):
        flash_episode(WORLD, 4, 16)


@pytest.mark.parametrize(("d1", "d2", "a1", "a2"),
                         [(2, 2, 0.0, 0.0), (2, 2, 2.0, 0.0), (1, 3, 1.0, 3.0), (1, 3, 5.0, -0.5)])
def test_theory_chain_reads_its_delays_and_horizons(d1, d2, a1, a2):
    # Every area in the first case; the two extrapolating ones after it (the lag instrument takes seconds per area).
    first = (d1, d2, a1, a2) == (2, 2, 0.0, 0.0)
    out = decoding_latency(_chain(d1, d2, a1, a2), WORLD, areas=None if first else ["v1", "v2"], n_samples=96,
                           n_boot=100)
    areas = list(out["area"].values)
    assert areas == (["enc", "v1", "v2", "r"] if first else ["v1", "v2"])
    delay = {"enc": 1, "v1": 1 + d1, "v2": 1 + d1 + d2, "r": 1 + d1 + d2}
    # The horizon an area carries: an extrapolation of an extrapolation adds, for linear motion.
    horizon = {"enc": 0.0, "v1": a1, "v2": a1 + a2, "r": a1 + a2}
    for area in areas:
        onset = float(out["flash_onset_ms"].sel(area=area)) / 10
        motion = float(out["motion_latency_ms"].sel(area=area)) / 10
        assert onset == delay[area], (area, onset)
        assert motion == pytest.approx(delay[area] - horizon[area], abs=0.05), (area, motion)
        adv = float(out["latency_advantage_ms"].sel(area=area))
        assert adv == pytest.approx(10 * horizon[area], abs=0.5)
        lo, hi = out["latency_advantage_ms_ci"].sel(area=area).values
        assert lo - 0.5 <= adv <= hi + 0.5
    r2 = out["decoding_flash_r2"].sel(area="v1").values
    assert r2[delay["v1"]] > 0.99 and np.all(r2[: delay["v1"]] < 0.5)


def test_areas_are_chosen_and_bad_ones_named():
    module = _chain(1, 1, 0.0, 0.0)
    out = decoding_latency(module, WORLD, areas=["v2"], n_samples=32, n_boot=0)
    assert list(out["area"].values) == ["v2"] and np.isnan(out["flash_onset_ms_ci"].values).all()
    with pytest.raises(KeyError, match="areas=\\['nope'\\]"):
        decoding_latency(module, WORLD, areas=["nope"], n_samples=32, n_boot=0)
    with pytest.raises(ValueError, match="n_samples must be >= 8"):
        decoding_latency(module, WORLD, n_samples=4)


def test_an_area_that_never_decodes_the_flash_says_why():
    # Flashed on the last frame, the flash never reaches an area one step late within the sequence.
    out = decoding_latency(_chain(1, 1, 0.0, 0.0), WORLD, areas=["enc"], flash_step=15, n_samples=32, n_boot=0)
    assert np.isnan(float(out["flash_onset_ms"].sel(area="enc")))
    assert "enc: no latency reaches held-out R^2 >= 0.5" in out["flash_onset_ms"].attrs["nan_reasons"]
    assert np.isfinite(float(out["motion_latency_ms"].sel(area="enc")))
