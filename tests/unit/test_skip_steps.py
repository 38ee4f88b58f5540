"""Frames computed once under a held delay line, and steps no loss reads skipped."""

from __future__ import annotations

import pytest
import torch

from neurodelay import MovingCircle, build_seeded, presets
from neurodelay.study import TrainSettings
from neurodelay.training import train
from neurodelay.components.base import RunContext
from neurodelay.components.delays import shift
from neurodelay.training.objectives import Objective, compute_losses, first_scored_steps
import neurodelay.training.loop as train_module


def inertia(gaussian=False, input_delay_ms=10.0, seed=1):
    world = MovingCircle()
    module = build_seeded(presets.inertia(gamma=0.75, alpha=1.0, gaussian=gaussian, input_delay_ms=input_delay_ms),
                          world=world, seed=seed)
    return world, module


def test_held_frames_are_encoded_once_and_equal_the_full_computation():
    world, module = inertia(input_delay_ms=20.0)
    frames = world.sample(3, seed=2).frames
    calls = []
    enc = module.nodes["enc"]
    original = enc.frame_deterministic

    def counting(x, ctx):
        calls.append(x.shape[0])
        return original(x, ctx)

    enc.frame_deterministic = counting
    with torch.no_grad():
        out = module({"world.frames": frames})
    del enc.frame_deterministic
    with torch.no_grad():
        full, _ = enc.frame(shift(frames, 2).flatten(0, 1), RunContext())
    assert calls == [3 * 8]  # 8 of the 10 steps' frames are encoded: frame 0 once, for steps 0-2
    torch.testing.assert_close(out["enc"], full.view(3, 10, -1), rtol=0, atol=1e-6)
    assert torch.equal(out["enc"][:, 0], out["enc"][:, 2])  # held: the same frame 0


def test_sampling_encoder_draws_each_held_step():
    world, module = inertia(gaussian=True)
    frames = world.sample(2, seed=2).frames
    ctx = RunContext(generator=torch.Generator().manual_seed(0), sample=True)
    with torch.no_grad():
        out = module({"world.frames": frames}, ctx=ctx)
    # steps 0 and 1 both see frame 0: same mean, independent samples
    assert torch.equal(out["enc_mu"][:, 0], out["enc_mu"][:, 1])
    assert not torch.equal(out["enc"][:, 0], out["enc"][:, 1])


def test_first_scored_steps_of_the_original_loss():
    _, module = inertia()
    assert first_scored_steps(Objective(score_from_step=2), module, 10) == {"dec": 2}
    assert first_scored_steps(Objective(), module, 10) == {"dec": 1}  # valid from step 1
    both = first_scored_steps(Objective(score_from_step=2, prediction=1.0), module, 10)
    assert both == {"dec": 2, "z": 3, "pred": 0}  # the first true extrapolation of z arrives at step 3


def test_skipped_steps_give_the_same_loss_and_gradients():
    world, module = inertia()
    frames = world.sample(4, seed=5).frames
    streams = {"world.frames": frames}
    objective = Objective(score_from_step=2)
    results = []
    for skip in (None, first_scored_steps(objective, module, 10)):
        module.zero_grad(set_to_none=True)
        traces = module(streams, skip_before=skip)
        loss = compute_losses(objective, traces, streams, module)["total"]
        loss.backward()
        results.append((traces["dec"].detach(), loss.detach(),
                        [p.grad.clone() for p in module.parameters()]))
    (dec_full, loss_full, g_full), (dec_skip, loss_skip, g_skip) = results
    assert torch.equal(dec_skip[:, :2], torch.zeros_like(dec_skip[:, :2]))
    assert not torch.equal(dec_full[:, :2], torch.zeros_like(dec_full[:, :2]))
    torch.testing.assert_close(dec_skip[:, 2:], dec_full[:, 2:], rtol=0, atol=1e-6)
    torch.testing.assert_close(loss_skip, loss_full, rtol=1e-6, atol=0)
    for a, b in zip(g_skip, g_full):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


def test_skip_before_names_unknown_nodes():
    world, module = inertia()
    with pytest.raises(ValueError, match=r"skip_before: node 'deco' does not exist; the circuit's nodes are enc, z"):
        module({"world.frames": world.sample(1, seed=0).frames}, skip_before={"deco": 2})


def test_skip_before_ignores_nodes_that_others_read():
    world, module = inertia()
    streams = {"world.frames": world.sample(2, seed=0).frames}
    with torch.no_grad():
        full = module(streams)
        part = module(streams, skip_before={"enc": 5, "z": 5})
    for k in full:
        assert torch.equal(full[k], part[k]), k


def test_training_with_and_without_skipping_agrees(monkeypatch):
    settings = TrainSettings(steps=3, batch_size=4, lr=1e-3, log_every=1, checkpoint_every=3)
    objective = Objective(score_from_step=2)
    histories = []
    for skipping in (True, False):
        if not skipping:
            monkeypatch.setattr(train_module, "first_scored_steps", lambda *a, **k: {})
        world, module = inertia()
        result = train(module, world, objective, settings, seed=3, progress=False)
        histories.append(result.history["total"])
    torch.testing.assert_close(torch.tensor(histories[0]), torch.tensor(histories[1]), rtol=1e-5, atol=0)
