"""Properties of the stimulus worlds over drawn positions, radii and trajectory settings."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from neurodelay.testing.strategies import positions
from neurodelay.worlds import CircleOverBlob, MovingCircle

position = positions()


RENDERS = settings(max_examples=60)  # each example renders; the trajectory properties keep the profile's count


@RENDERS
@given(circle=position, radius=st.floats(0.02, 0.12), size=st.sampled_from([16, 32, 64]))
def test_default_disc_area_is_exact_inside_the_image(circle, radius, size):
    # circle centres lie in [0.125, 0.875] image widths: a disc of radius <= 0.12 stays inside
    w = CircleOverBlob(size=size, radius=radius, blob_brightness=0.0)
    frame = w.render(torch.tensor([[0.5, 0.5, *circle]], dtype=torch.float64))
    assert 0.0 <= frame.min() and frame.max() <= 1.0
    assert math.isclose(float(frame.double().sum()), math.pi * (radius * size) ** 2, rel_tol=1e-4)


@RENDERS
@given(blob=position, circle=position, brightness=st.floats(0.0, 1.0))
@example(blob=(0.0, 0.0), circle=(0.13494214157450982, 0.34929215867262525), brightness=1.0)
def test_default_frame_is_the_clipped_sum_of_blob_and_disc(blob, circle, brightness):
    # Up to 2 float32 ulps of 1 (the sum here and the renderer round once each). The example,
    # found by Hypothesis in CI, gave 1.2e-6 while the renderer added the blob to disc coverage
    # that rounding had left at -1.2e-6 outside the disc; it now clamps the coverage first.
    f = torch.tensor([[*blob, *circle]])
    frame = CircleOverBlob(blob_brightness=brightness).render(f)
    blob_only = CircleOverBlob(blob_brightness=brightness, radius=1e-9).render(f)
    disc_only = CircleOverBlob(blob_brightness=0.0).render(f)
    torch.testing.assert_close(frame, (blob_only + disc_only).clamp(max=1.0), rtol=0, atol=1.2e-7)
    assert math.isclose(float(blob_only.max()), brightness, rel_tol=1e-6, abs_tol=1e-7)


@RENDERS
@given(blob=position, circle=position)
def test_seed_compatible_frames_are_uint8_levels(blob, circle):
    frame = CircleOverBlob(seed_compatible=True).render(torch.tensor([[*blob, *circle]]))
    levels = frame.double() * 255
    assert (levels - levels.round()).abs().max() < 1e-4
    assert 0.0 <= frame.min() and frame.max() <= 1.0


@given(
    seed=st.integers(0, 2**32 - 1),
    n_frames=st.integers(2, 12),
    min_travel=st.floats(0.0, 0.8),
)
def test_fresh_trajectories_obey_their_settings(seed, n_frames, min_travel):
    w = MovingCircle(n_frames=n_frames, min_travel=min_travel)
    f = w.trajectories(16, seed=seed)
    pos, vel = f[..., 2:4], f[..., 4:6]
    assert f.shape == (16, n_frames, 6)
    assert pos.min() >= 0.0 and pos.max() <= 1.0
    assert np.linalg.norm(pos[:, -1] - pos[:, 0], axis=-1).min() >= min_travel
    np.testing.assert_allclose(np.diff(pos, axis=1), vel[:, 1:], atol=1e-12)
    np.testing.assert_array_equal(vel, np.broadcast_to(vel[:, :1], vel.shape))
    np.testing.assert_array_equal(w.trajectories(16, seed=seed), f)


@given(data=st.data(), n_frames=st.integers(2, 12), seed=st.integers(0, 1000))
def test_speed_range_trajectories(data, n_frames, seed):
    steps = n_frames - 1
    speed_max = data.draw(st.floats(0.01 / steps, 1.0 / steps), label="speed_max")
    speed_min = data.draw(st.floats(0.0, speed_max), label="speed_min")
    min_travel = data.draw(st.floats(0.0, min(speed_max * steps, 0.99)), label="min_travel")
    w = MovingCircle(n_frames=n_frames, speed_min=speed_min, speed_max=speed_max, min_travel=min_travel)
    f = w.trajectories(8, seed=seed)
    speed = np.linalg.norm(f[:, 0, 4:6], axis=-1)
    assert speed.min() >= max(speed_min, min_travel / steps) * (1 - 1e-9)
    assert speed.max() <= speed_max * (1 + 1e-9)
    assert f[..., 2:4].min() >= -1e-9 and f[..., 2:4].max() <= 1 + 1e-9
