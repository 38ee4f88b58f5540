"""Warm starts (train.init_from): parameters copied by name from another run's checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import neurodelay as nd
from neurodelay.training.checkpoint import save_checkpoint, training_text
from neurodelay.errors import CheckpointError, ConfigError
from neurodelay.study import TrainSettings
from neurodelay.training.warmstart import check_init_from, resolve_init_from, runs_root, warm_start


def _save(path: Path, module) -> Path:
    save_checkpoint(path, {"format": "neurodelay-checkpoint", "version": 1, "step": 1, "seed": 0,
                           "study_text": "", "model": module.state_dict(), "optimizer": {}, "history": {},
                           "rng": {}})
    return path


def test_matching_parameters_are_copied_and_the_rest_kept(tmp_path):
    world = nd.MovingCircle(n_frames=6)
    shapes = {"world.frames": world.frame_shape, "world.factors": (world.n_factors,)}
    pre = nd.build_seeded(nd.presets.inertia(n_latents=6, gamma=0.0), input_shapes=shapes, seed=1)
    path = _save(tmp_path / "checkpoint.pt", pre)
    fresh = nd.build_seeded(nd.presets.inertia(n_latents=6, gamma=0.5, alpha=0.0), input_shapes=shapes, seed=2)
    copied = warm_start(fresh, path)
    assert copied and all(k.startswith(("nodes.enc.", "nodes.dec.")) for k in copied)
    for key, value in pre.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value)
    # The pretrained encoder in the new loop gives the pretrained encoding.
    ep = world.sample(3, seed=0)
    a, b = nd.simulate(pre, ep), nd.simulate(fresh, ep)
    assert torch.equal(torch.as_tensor(a["enc"].values), torch.as_tensor(b["enc"].values))


def test_a_checkpoint_of_another_shape_or_with_nothing_in_common_is_refused(tmp_path):
    world = nd.MovingCircle(n_frames=6)
    shapes = {"world.frames": world.frame_shape, "world.factors": (world.n_factors,)}
    small = _save(tmp_path / "small.pt", nd.build_seeded(nd.presets.inertia(n_latents=4), input_shapes=shapes))
    big = nd.build_seeded(nd.presets.inertia(n_latents=8), input_shapes=shapes)
    with pytest.raises(CheckpointError, match="does not fit this circuit"):
        warm_start(big, small)
    other = nd.Circuit(nodes={"r": nd.Relay()}, edges=[nd.Edge("world.factors", "r")])
    foreign = _save(tmp_path / "foreign.pt", torch.nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="shares no parameter"):
        warm_start(big, foreign)
    with pytest.raises(CheckpointError, match="does not exist; run the study that writes it first"):
        warm_start(nd.build_seeded(other, input_shapes=shapes), tmp_path / "nope.pt")


def test_fields_and_packaged_names_are_checked_at_load():
    check_init_from("{out}/pre/seed={seed}/checkpoint.pt")
    check_init_from("package:quickstart_ae")
    for bad, match in (("{outt}/x.pt", "holds the field"), ("", "checkpoint path"), ("{out", "not a valid path"),
                       ("package:../x", "letters, digits")):
        with pytest.raises(ConfigError, match=match):
            check_init_from(bad)
    with pytest.raises(ConfigError, match="holds the field"):
        TrainSettings(init_from="{seeds}/x.pt")


def test_the_output_root_of_a_run_and_of_a_sweep_point(tmp_path):
    assert runs_root(tmp_path / "study", "study") == tmp_path
    assert runs_root(tmp_path / "study" / "seed=3", "study") == tmp_path
    got = resolve_init_from("{out}/pre/seed={seed}/checkpoint.pt", out=tmp_path / "study" / "seed=3",
                            study_name="study", seed=3)
    assert got == tmp_path / "pre" / "seed=3" / "checkpoint.pt"
    assert str(resolve_init_from("package:x", out=tmp_path, study_name="s", seed=0)).endswith("pretrained/x.pt")


def test_checkpoints_written_before_the_key_existed_still_train_alike():
    before = "seed: 1\ntrain: {steps: 10, lr: 0.001}\n"
    now = "seed: 1\ntrain: {steps: 20, lr: 0.001, init_from: null}\n"
    assert training_text(before) == training_text(now)
    assert training_text(now) != training_text("seed: 1\ntrain: {steps: 20, lr: 0.001, init_from: a.pt}\n")
