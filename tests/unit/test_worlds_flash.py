"""worlds.flash: the flash-lag probe world refuses bad arguments with clear errors.

Each test here failed before the fix it covers (the other worlds' cases are in test_worlds.py).
"""

from __future__ import annotations

import pytest

from neurodelay.errors import ConfigError
from neurodelay.worlds import Episode, MovingCircle
from neurodelay.worlds.flash import FlashLagProbe


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


def test_flash_probe_single_condition_and_direction():
    probe = FlashLagProbe(conditions="standard", directions="up")
    assert probe.conditions == ("standard",) and probe.directions == ("up",)
    with pytest.raises(ValueError, match=r"FlashLagProbe.conditions must be a name or a list of names, got 3"):
        FlashLagProbe(conditions=3)
