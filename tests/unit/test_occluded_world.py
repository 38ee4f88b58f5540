"""The moving circle behind an occluder (MovingCircle.occlusion_frames / occlusion_start)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from neurodelay.errors import ConfigError
from neurodelay.study import StudyError, structure_study
from neurodelay.training.checkpoint import trains_alike
from neurodelay.worlds import MovingCircle
from neurodelay.worlds._spec import render_blob
from neurodelay.worlds.flash import FlashLagProbe

#: sha256 (first 16 hex digits) of frames, factors, masks (inside, edge, object, background stacked) of
#: ``sample(5, seed=11)`` and of ``trajectories(7, seed=3)``, written by the code of commit 6ff95b3, before
#: the occluder existed (torch 2.13.0+cpu, x86-64). The worlds without an occluder must still give exactly these.
BEFORE_OCCLUSION = {
    "linear": ({}, ("f3ea7727e43056b2", "ce8eb9c261e83860", "0c705c7649d0cb8a", "8fffedad7b8a50f5")),
    "seed_compatible": ({"seed_compatible": True},
                        ("12aaed09f44a1f35", "ce8eb9c261e83860", "e1ca43d09fc97906", "8fffedad7b8a50f5")),
    "reversal": ({"motion": "reversal", "n_frames": 16},
                 ("ec88ed339612cf6d", "d2e9f885c77bcdf9", "fe9dc7bb3cd3901f", "ad62427c24d0a2fe")),
    "accelerating": ({"motion": "accelerating", "n_frames": 16},
                     ("733d9b7a7092c4bc", "fab4c795145e4bf2", "7038b28d4cf9aa1a", "a6fd38d021b5b097")),
    "noise": ({"pixel_noise": 0.3}, ("7f47d0f2f743d450", "ce8eb9c261e83860", "0c705c7649d0cb8a", "8fffedad7b8a50f5")),
    "speed_range": ({"speed_min": 0.02, "speed_max": 0.05, "n_frames": 16, "size": 24},
                    ("d1ccf72087524b6e", "11a2d13aaa9b197d", "0fe53d6d010ed7b8", "de42c903022274b4")),
    "original": ({"dataset": "original", "n_sequences": 40},
                 ("929d478a82ab90a0", "04e9edc5d3a6a1c9", "00df374b66228004", "fe7c81b3962f31e5")),
}
REGIONS = ("inside", "edge", "object", "background")


def _hash(x) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("name", list(BEFORE_OCCLUSION))
def test_worlds_without_an_occluder_give_bit_for_bit_what_they_gave_before_it(name):
    kw, expected = BEFORE_OCCLUSION[name]
    for world in (MovingCircle(**kw), MovingCircle(**kw, occlusion_frames=0)):
        ep = world.sample(5, seed=11)
        m = world.masks(ep.factors)
        got = (_hash(ep.frames.numpy()), _hash(ep.factors.numpy()),
               _hash(np.stack([m[r].numpy() for r in REGIONS])), _hash(world.trajectories(7, seed=3)))
        assert got == expected
        assert world.factor_names[-1] == "circle_vy" and world.n_factors == 6


@pytest.mark.parametrize("seed_compatible", [False, True])
@pytest.mark.parametrize("motion", ["linear", "reversal", "accelerating"])
def test_the_occluder_hides_the_circle_and_changes_nothing_else(seed_compatible, motion):
    kw = dict(n_frames=12, motion=motion, seed_compatible=seed_compatible)
    clear, world = MovingCircle(**kw), MovingCircle(**kw, occlusion_frames=3)
    ep, ref = world.sample(40, seed=4), clear.sample(40, seed=4)
    assert ep.factor_names == clear.factor_names + ("circle_occluded",) and world.n_factors == 7
    assert torch.equal(ep.factors[..., :6], ref.factors)  # the circle moves on behind the occluder
    hidden = ep.factors[..., 6] > 0.5
    assert set(np.unique(ep.factors[..., 6].numpy())) == {0.0, 1.0}
    assert (hidden.sum(1) == 3).all()
    first = hidden.float().argmax(1)
    assert (hidden == ((torch.arange(12) >= first[:, None]) & (torch.arange(12) < first[:, None] + 3))).all()
    assert int(first.min()) >= 2 and int(first.max()) <= 12 - 3 - 1
    assert torch.equal(ep.frames[~hidden], ref.frames[~hidden])
    blob = render_blob(world, ep.factors[..., :2])
    assert torch.equal(ep.frames[hidden], blob[hidden])  # the blob alone, as the renderer draws it
    assert not torch.equal(ep.frames[hidden], ref.frames[hidden])
    assert torch.equal(world.render(ep.factors), ep.frames)  # render honours circle_occluded
    m, m_ref = world.masks(ep.factors), clear.masks(ref.factors)
    for r in REGIONS:
        assert torch.equal(m[r][~hidden], m_ref[r][~hidden])
    assert not m["object"][hidden].any() and not m["inside"][hidden].any() and not m["edge"][hidden].any()
    assert m["background"][hidden].all()


def test_occluded_sampling_is_seed_exact_and_the_start_is_drawn_or_fixed():
    world = MovingCircle(n_frames=16, occlusion_frames=4)
    a, b, c = world.sample(64, seed=3), world.sample(64, seed=3), world.sample(64, seed=4)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.factors, b.factors)
    assert not torch.equal(a.factors[..., 6], c.factors[..., 6])
    starts = world.trajectories(2000, seed=0)[..., 6].argmax(1)
    assert set(starts) == set(range(2, 16 - 4))  # uniform over 2 .. n_frames - k - 1
    assert abs(np.bincount(starts)[2:].std() / np.bincount(starts)[2:].mean()) < 0.15
    fixed = MovingCircle(n_frames=16, occlusion_frames=4, occlusion_start=1).trajectories(5, seed=0)[..., 6]
    np.testing.assert_array_equal(fixed, np.repeat([[0] + [1] * 4 + [0] * 11], 5, 0))
    last = MovingCircle(n_frames=16, occlusion_frames=4, occlusion_start=11).trajectories(2, seed=0)[..., 6]
    assert last[0, 11:15].all() and last[0, 15] == 0


def test_pixel_noise_is_drawn_as_without_the_occluder():
    noisy = MovingCircle(pixel_noise=0.2, occlusion_frames=3).sample(8, seed=2)
    ref = MovingCircle(pixel_noise=0.2).sample(8, seed=2)
    visible = noisy.factors[..., 6] < 0.5
    assert torch.equal(noisy.frames[visible], ref.frames[visible])
    assert float(noisy.frames.min()) >= 0.0 and float(noisy.frames.max()) <= 1.0


def test_probes_and_flash_probes_of_an_occluded_world_show_the_circle():
    world = MovingCircle(n_frames=16, occlusion_frames=4)
    ep = world.episode_from_trajectories([[0.1, 0.2]], [[0.03, 0.01]], [[0.5, 0.5]])
    assert ep.factors.shape == (1, 16, 7) and float(ep.factors[..., 6].abs().sum()) == 0.0
    ref = MovingCircle(n_frames=16).episode_from_trajectories([[0.1, 0.2]], [[0.03, 0.01]], [[0.5, 0.5]])
    assert torch.equal(ep.frames, ref.frames)
    flash = FlashLagProbe(speeds=(0.04,)).episode(world, "standard", 0.04, 16)
    assert flash.factors.shape[-1] == 7 and float(flash.factors[..., 6].abs().sum()) == 0.0


@pytest.mark.parametrize("kw, match", [
    ({"occlusion_frames": -1}, r"occlusion_frames must be an integer >= 0 .* got -1; use 0 for no occluder"),
    ({"occlusion_frames": 2.0}, r"occlusion_frames must be an integer >= 0"),
    ({"occlusion_frames": True}, r"occlusion_frames must be an integer >= 0"),
    ({"occlusion_frames": 9, "n_frames": 10}, r"occlusion_frames must be <= n_frames - 2 = 8 .* got 9 .* raise "
                                              r"n_frames to at least 11"),
    ({"occlusion_frames": 8, "n_frames": 10}, r"<= n_frames - 3 = 7 when occlusion_start is drawn .* got 8"),
    ({"occlusion_start": 3}, r"occlusion_start is only read with occlusion_frames > 0, got occlusion_start=3"),
    ({"occlusion_frames": 2, "occlusion_start": 0}, r"occlusion_start must be in \[1, n_frames - occlusion_frames "
                                                    r"- 1\] = \[1, 7\] .* got 0"),
    ({"occlusion_frames": 2, "occlusion_start": 8}, r"= \[1, 7\] .* got 8; use e.g. occlusion_start=4"),
    ({"occlusion_frames": 2, "occlusion_start": "3"}, r"occlusion_start must be None .* or an integer frame"),
    ({"occlusion_frames": 2, "dataset": "original"}, r"dataset='original' .* occlusion_frames must be 0, got 2"),
])
def test_bad_occlusion_settings_are_refused_with_the_field_the_rule_and_a_fix(kw, match):
    with pytest.raises(ConfigError, match=match):
        MovingCircle(**kw)


def test_occlusion_from_a_study_file_and_old_checkpoints_resume():
    raw = {"name": "o", "world": {"kind": "moving_circle", "n_frames": 16, "occlusion_frames": 4},
           "circuit": {"preset": "inertia"}, "train": {"steps": 0}}
    study = structure_study(raw)
    assert study.world.occlusion_frames == 4 and study.world.occlusion_start is None
    assert structure_study({**raw, "world": {**raw["world"], "occlusion_start": 5}}).world.occlusion_start == 5
    with pytest.raises(StudyError, match=r"occlusion_frames must be <= n_frames - 2"):
        structure_study({**raw, "world": {**raw["world"], "occlusion_frames": 15}})
    old = "seed: 1\nworld: {kind: moving_circle, size: 32}\ntrain: {steps: 10, lr: 0.001}\n"
    new = ("seed: 1\nworld: {kind: moving_circle, size: 32, occlusion_frames: 0, occlusion_start: null}\n"
           "train: {steps: 20, lr: 0.001}\n")
    assert trains_alike(old, new)
    assert not trains_alike(old, new.replace("occlusion_frames: 0", "occlusion_frames: 4"))
