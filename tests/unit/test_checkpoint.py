"""Checkpoint identity: a checkpoint belongs to the training part of its study (``training_text``)."""

from __future__ import annotations

import re

import pytest
import torch
import yaml

from neurodelay.training.checkpoint import FORMAT, NOT_TRAINING, RESUMABLE_TRAIN, load_checkpoint, training_text
from neurodelay.errors import CheckpointError
from neurodelay.study import structure_study, study_to_yaml

RAW = {
    "name": "tiny",
    "seed": 3,
    "world": {"kind": "moving_circle", "size": 16, "n_frames": 4},
    "circuit": {"preset": "inertia", "n_latents": 2, "gamma": 0.5},
    "objective": {"reconstruction": "gaussian"},
    "train": {"steps": 3, "batch_size": 2, "lr": 1.0e-3},
    "evaluate": {"n_sequences": 3, "batch_size": 2},
    "analyses": [],
}


def text(**changes) -> str:
    """The resolved study text of RAW with top-level sections replaced (None: left out)."""
    raw = {**RAW, **changes}
    return study_to_yaml(structure_study({k: v for k, v in raw.items() if v is not None}))


def old_checkpoint(path, study_text: str) -> None:
    """A checkpoint as neurodelay wrote it before identity was reduced to training: exactly the
    version-1 keys, the whole study text (name, evaluate, analyses... included)."""
    torch.save({"format": FORMAT, "version": 1, "step": 3, "seed": 3, "study_text": study_text,
                "model": {}, "optimizer": {}, "history": {"step": [1, 2, 3]}, "rng": {}}, path)


def test_training_text_keeps_only_what_training_reads():
    full = text()
    reduced = yaml.safe_load(training_text(full))
    assert set(reduced) == set(yaml.safe_load(full)) - set(NOT_TRAINING)
    assert {"seed", "dt_ms", "world", "circuit", "objective", "train"} <= set(reduced)
    assert set(NOT_TRAINING) == {"name", "device", "evaluate", "analyses", "sweep", "executor"}
    assert training_text(training_text(full)) == training_text(full)  # idempotent
    same = text(name="renamed", device="cuda", evaluate={"n_sequences": 9, "seed": 1, "batch_size": 4},
                analyses=None, executor={"name": "processes:2"})
    assert same != full and training_text(same) == training_text(full)
    # how long to train, and how often to log and save, do not change the parameters at any step
    assert set(RESUMABLE_TRAIN) == {"steps", "log_every", "checkpoint_every"}
    assert not set(RESUMABLE_TRAIN) & set(reduced["train"]) and "lr" in reduced["train"]
    longer = text(train={**RAW["train"], "steps": 30, "log_every": 7, "checkpoint_every": 9})
    assert longer != full and training_text(longer) == training_text(full)
    for changed in (text(seed=4), text(train={**RAW["train"], "lr": 0.01}), text(dt_ms=5.0),
                    text(world={**RAW["world"], "n_frames": 5}),
                    text(circuit={**RAW["circuit"], "gamma": 0.25}),
                    text(objective={"reconstruction": "bernoulli"}),
                    text(train={**RAW["train"], "precision": "bfloat16"})):
        assert training_text(changed) != training_text(full)


def test_training_text_ignores_key_order_and_passes_non_studies_through():
    assert training_text("seed: 1\ntrain: {lr: 0.1, steps: 2}\nname: a\n") == \
        training_text("name: b\ntrain: {steps: 2, lr: 0.1}\nseed: 1\n")
    for other in ("", "just text", "[1, 2]", "a: [unclosed"):
        assert training_text(other) == other


def test_old_whole_text_checkpoint_resumes_after_changes_outside_training(tmp_path):
    path = tmp_path / "checkpoint.pt"
    old_checkpoint(path, text())
    new = text(name="renamed", device="cuda:1", evaluate={"n_sequences": 7, "seed": 2, "batch_size": 1},
               analyses=["lag"], executor={"name": "processes:2"})
    ckpt = load_checkpoint(path, study_text=new, seed=3)
    assert ckpt["study_text"] == text() and ckpt["step"] == 3
    load_checkpoint(path, study_text=text(), seed=3)  # the unchanged study, as before


@pytest.mark.parametrize("changes, field", [
    ({"train": {**RAW["train"], "lr": 0.01}}, r"train\.lr \(0\.001 in the checkpoint, 0\.01 in this run\)"),
    ({"world": {**RAW["world"], "n_frames": 5}}, r"world\.n_frames \(4 in the checkpoint, 5 in this run\)"),
    ({"dt_ms": 5.0}, r"dt_ms \(10\.0 in the checkpoint, 5\.0 in this run\)"),
    ({"objective": {"reconstruction": "gaussian", "prediction": 0.5}},
     r"objective\.prediction \(0\.0 in the checkpoint, 0\.5 in this run\)"),
    ({"circuit": {**RAW["circuit"], "gamma": 0.25}}, r"circuit\.gamma \(0\.5 in the checkpoint, 0\.25 in this run\)"),
])
def test_checkpoint_of_a_study_that_trains_differently_is_refused_naming_the_field(tmp_path, changes, field):
    path = tmp_path / "checkpoint.pt"
    old_checkpoint(path, text())
    with pytest.raises(CheckpointError, match=rf"belongs to another study: the part of its study that training "
                                              rf"depends on differs from this run's at {field}\. "
                                              rf"Only name, device, evaluate, analyses, sweep, executor and "
                                              rf"train\.steps, train\.log_every, train\.checkpoint_every may "
                                              rf"change on resume.*delete it to start afresh"):
        load_checkpoint(path, study_text=text(**changes))


def test_a_section_only_one_side_has_is_named_as_absent(tmp_path):
    path = tmp_path / "checkpoint.pt"
    old_checkpoint(path, "name: a\nseed: 3\n")
    with pytest.raises(CheckpointError, match=r"at objective \(absent in the checkpoint, \{beta: 1\} in this run\)"):
        load_checkpoint(path, study_text="name: b\nseed: 3\nobjective: {beta: 1}\n")


def whole_checkpoint(path, **changes) -> None:
    """A version-1 checkpoint with consistent contents (3 steps logged), ``changes`` applied."""
    ckpt = {"format": FORMAT, "version": 1, "step": 3, "seed": 3, "study_text": text(),
            "model": {"w": torch.zeros(2)}, "optimizer": {}, "rng": {},
            "history": {"step": [1, 2, 3], "total": [3.0, 2.0, 1.0], "reconstruction": [3.0, 2.0, 1.0]}}
    ckpt.update(changes)
    torch.save(ckpt, path)


@pytest.mark.parametrize("changes, text_", [
    ({"history": {"step": [1, 2, 3], "total": [3.0, 2.0]}},
     "its history of the total loss is not one number per logged step"),
    ({"history": {"step": [1, 3, 2], "total": [1.0, 1.0, 1.0]}}, "are not increasing steps from 1 to its step 3"),
    ({"history": {"step": [1, 2, 4], "total": [1.0, 1.0, 1.0]}}, "are not increasing steps from 1 to its step 3"),
    ({"history": {"step": [1], "a b": [1.0]}}, "names a loss term 'a b', not a name"),
    ({"history": {"step": [1], "total": ["1"]}}, "its history of the total loss is not one number"),
    ({"step": -1}, "its step is -1"),
    ({"seed": 2**64}, "its seed is 18446744073709551616"),
    ({"study_text": 3}, "its study_text is a int"),
    ({"model": {"w": torch.tensor([float("nan")])}}, "its model holds NaN or infinite values (in w)"),
    ({"delay_history": {"0": [[1.0]]}}, "its delay_history of edge 0 has 1 rows for 3 logged steps"),
    ({"delay_history": {"0": [[1.0], [1.0, 2.0], [1.0]]}}, "is not rows of numbers of one width"),
])
def test_a_checkpoint_whose_contents_do_not_hold_together_is_refused(tmp_path, changes, text_):
    path = tmp_path / "checkpoint.pt"
    whole_checkpoint(path)
    assert load_checkpoint(path, study_text=text(), seed=3)["step"] == 3
    whole_checkpoint(path, **changes)
    with pytest.raises(CheckpointError, match="is inconsistent: ") as caught:
        load_checkpoint(path, study_text=text())
    assert text_ in str(caught.value) and "delete it to start afresh" in str(caught.value)


def test_a_linear_world_trains_alike_with_a_checkpoint_written_before_the_motion_models():
    """World keys added later (motion, reversal_rate, speed_jitter, pixel_noise) left out at their defaults."""
    from neurodelay.training.checkpoint import trains_alike

    old = "seed: 1\nworld: {kind: moving_circle, size: 32}\ntrain: {steps: 10, lr: 0.001}\n"
    new = ("seed: 1\nworld: {kind: moving_circle, size: 32, motion: linear, reversal_rate: 0.15, "
           "speed_jitter: 0.3, pixel_noise: 0.0}\ntrain: {steps: 20, lr: 0.001}\n")
    assert trains_alike(old, new)
    for changed in ("motion: reversal", "reversal_rate: 0.2", "speed_jitter: 0.5", "pixel_noise: 0.1"):
        key = changed.split(":")[0]
        other = re.sub(rf"{key}: [^,}}]+", changed, new)
        assert other != new and not trains_alike(old, other), changed
