"""Checkpoint identity: a checkpoint belongs to the training part of its study (``training_text``)."""

from __future__ import annotations

import pytest
import torch
import yaml

from neurodelay.checkpoint import FORMAT, NOT_TRAINING, RESUMABLE_TRAIN, load_checkpoint, training_text
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
