"""Audit of the stimulus worlds: bad arguments raise clear errors, docstrings state the factor units.

Each test here failed before the fix it covers; valid worlds render the same frames and factors as before.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodelay.errors import ConfigError
from neurodelay.worlds import CircleOverBlob, Episode, MovingCircle
from neurodelay.worlds.flash import FlashLagProbe

WORLDS = [CircleOverBlob(), CircleOverBlob(seed_compatible=True), MovingCircle(n_frames=3),
          MovingCircle(n_frames=3, seed_compatible=True)]
ONE = np.array([[0.3, 0.4]])


# --- devices ---------------------------------------------------------------------------------


@pytest.mark.parametrize("world", WORLDS[::2])
@pytest.mark.parametrize("device", ["gpu", "cpu:x", 1.5])
def test_sample_rejects_a_device_torch_does_not_know(world, device):
    # was torch's RuntimeError from deep inside (a list of twenty device types) or a TypeError
    with pytest.raises(ValueError, match=r"device must be a torch device such as 'cpu', 'cuda' or 'cuda:0', "
                                         r"got .*; use e\.g\. device='cpu'"):
        world.sample(2, device=device)
    for valid in ("cpu", torch.device("cpu"), None):  # still accepted, same frames
        assert torch.equal(world.sample(2, device=valid).frames, world.sample(2).frames)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_cuda_device_is_a_clear_error():
    # was "AssertionError: Torch not compiled with CUDA enabled" from torch.cuda's lazy init
    pattern = r"device 'cuda': no CUDA device is available here .*; use device='cpu'"
    w = MovingCircle(n_frames=3)
    for call in (lambda: w.sample(2, device="cuda"), lambda: CircleOverBlob().sample(2, device="cuda"),
                 lambda: w.episode_from_trajectories(ONE, ONE * 0, ONE, device="cuda"),
                 lambda: FlashLagProbe().episode(MovingCircle(), "standard", 0.02, 10, device="cuda"),
                 lambda: FlashLagProbe().reference_episode(MovingCircle(), 10, device="cuda")):
        with pytest.raises(ValueError, match=pattern):
            call()


# --- factors given to render -------------------------------------------------------------------


@pytest.mark.parametrize("world", WORLDS[:2])
def test_render_of_factors_that_require_grad_says_detach(world):
    # was "mul(): functions with out=... arguments don't support automatic differentiation" from render.py
    f = torch.rand(3, 4, requires_grad=True)
    with pytest.raises(ValueError, match=r"factors require grad, but rendering is not differentiable.*"
                                         r"pass factors\.detach\(\)"):
        world.render(f)
    torch.testing.assert_close(world.render(f.detach()), world.render(f.detach().clone()), rtol=0, atol=0)


@pytest.mark.parametrize("factors, match", [
    # was "too many dimensions 'str'":
    ([["a", "b", "c", "d"]], r"factors must be an array of real numbers .* got list"),
    (torch.ones(2, 4, dtype=torch.complex64), r"factors must hold real numbers, got dtype torch\.complex64"),
    (torch.ones(2, 4, dtype=torch.bool), r"factors must hold real numbers, got dtype torch\.bool"),
])
def test_render_rejects_factors_that_are_not_real_numbers(factors, match):
    # complex factors lost their imaginary part with only a warning; bool ones drew circles at 0 and 1
    with pytest.raises(TypeError, match=match):
        CircleOverBlob().render(factors)


# --- fields and arguments ------------------------------------------------------------------------


def test_bad_circle_values_is_a_config_error_naming_the_field():
    # was a plain ValueError, unlike every other world field, without the class name
    with pytest.raises(ConfigError, match=r"CircleOverBlob\.circle_values must be one of 'grid', 'even', 'odd', "
                                          r"got 'all'"):
        CircleOverBlob(circle_values="all")


def test_episode_from_no_trajectories_names_the_arguments():
    # was "Episode.frames must hold at least one sample", after rendering
    empty = np.zeros((0, 2))
    with pytest.raises(ValueError, match=r"start, velocity and blob must hold at least one trajectory \(n >= 1\), "
                                         r"got n = 0"):
        MovingCircle().episode_from_trajectories(empty, empty, empty)


# --- flash-lag probe -----------------------------------------------------------------------------


@pytest.mark.parametrize("blob", [(0.5,), (0.1, 0.2, 0.3), "ab", None, (float("nan"), 0.5), (True, 0.5)])
def test_probe_blob_must_be_two_finite_numbers(blob):
    # was IndexError at render time (one value), silently dropped values (three), float() or
    # iteration errors (a str, None), or a NaN blob reported as a render error
    with pytest.raises(ConfigError, match=r"FlashLagProbe\.blob must be the blob position \(x, y\), two finite "
                                          r"numbers .*; use e\.g\. blob=\(0\.5, 0\.5\)"):
        FlashLagProbe(blob=blob)


@pytest.mark.parametrize("speeds", ["fast", None, True, [0.02, True]])
def test_probe_speeds_must_be_numbers(speeds):
    # was "could not convert string to float", "'NoneType' object is not iterable", or a bool taken as speed 1.0
    with pytest.raises(ConfigError, match=r"FlashLagProbe\.speeds must be a speed or a sequence of speeds > 0"):
        FlashLagProbe(speeds=speeds)


def test_probe_episode_checks_its_speed():
    probe, world = FlashLagProbe(speeds=(0.02,)), MovingCircle(n_frames=10)
    # a speed faster than the probe's own passed check_fits and left the image silently
    with pytest.raises(ConfigError, match=r"at speed 0\.5 the circle travels 4 factor units .* lower the speeds"):
        probe.episode(world, "standard", 0.5, 10)
    with pytest.raises(ConfigError, match=r"at speed 0\.5"):
        probe.factors(world, "standard", 0.5, 10)
    # a negative speed reversed the labelled direction; NaN surfaced as a non-finite circle_x
    for speed in (-0.02, 0.0, float("nan"), "0.02"):
        with pytest.raises(ValueError, match=r"speed must be a finite number > 0 .* got "):
            probe.episode(world, "standard", speed, 10)
    ep = probe.episode(world, "standard", 0.02, 10)
    assert isinstance(ep, Episode) and ep.frames.shape == (4, 10, 1, 32, 32)


def test_probe_rejects_a_world_that_is_not_one():
    # was AttributeError: 'NoneType' object has no attribute 'factor_names'
    with pytest.raises(TypeError, match=r"world must be a world spec such as MovingCircle\(\).*got NoneType"):
        FlashLagProbe().episode(None, "standard", 0.02, 10)


def test_probe_short_n_frames_says_the_fix():
    with pytest.raises(ValueError, match=r"n_frames must be an integer > flash_step \(8\), got 5; use n_frames >= 9"):
        FlashLagProbe().episode(MovingCircle(), "standard", 0.02, 5)


# --- units in the docstrings ---------------------------------------------------------------------


def test_circle_speeds_are_in_factor_units_as_documented():
    # A circle factor unit is 0.75 image widths: velocity v moves the disc by 0.75 * size * v px a frame.
    # The docstrings said "image widths per frame" (and min_travel "in image widths").
    w = MovingCircle(blob_brightness=0.0, n_frames=2, size=64)
    ep = w.episode_from_trajectories([[0.2, 0.6]], [[0.4, -0.2]], [[0.5, 0.5]])
    frames = ep.frames[0, :, 0].double()
    centre = torch.arange(64.0, dtype=torch.float64) + 0.5
    mass = frames.sum((-1, -2))
    col = (frames.sum(-2) * centre).sum(-1) / mass
    row = (frames.sum(-1) * centre).sum(-1) / mass
    torch.testing.assert_close(col[1] - col[0], torch.tensor(0.75 * 64 * 0.4, dtype=torch.float64), atol=0.02, rtol=0)
    torch.testing.assert_close(row[1] - row[0], torch.tensor(-0.75 * 64 * 0.2, dtype=torch.float64), atol=0.02, rtol=0)
    doc = MovingCircle.__doc__ + MovingCircle.trajectories.__doc__ + Episode.__doc__
    assert "image widths per frame" not in doc and "factor units per frame" in doc
    assert "circle factor units" in MovingCircle.__doc__
    with pytest.raises(ConfigError, match=r"factor units per frame"):
        MovingCircle(speed_min=-1.0, speed_max=0.1)
