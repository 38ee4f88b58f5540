"""Learned delays: kept within their bounds by training, logged, resumed, and recorded in results."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import xarray as xr

import neurodelay as nd
from neurodelay import Circuit, Edge, Relay
from neurodelay.training.checkpoint import load_checkpoint, save_checkpoint
from neurodelay.components import DelayLine, project_delays
from neurodelay.training.objectives import Objective, Supervision
from neurodelay.pipeline import run_study
from neurodelay.study import load_study
from neurodelay.study import TrainSettings
from neurodelay.training import train
from tests.helpers import VEC

WORLD = nd.MovingCircle(size=16, n_frames=8)
FACTORS = tuple(WORLD.factor_names)


def learned_relay(delay_ms=5.0, max_delay_ms=40.0, min_delay_ms=0.0):
    """world.factors -> r through a learned delay (dt 10 ms)."""
    circuit = Circuit(nodes={"r": Relay()}, edges=[
        Edge(VEC, "r", delay_ms=delay_ms, learn_delay=True, min_delay_ms=min_delay_ms,
             max_delay_ms=max_delay_ms)])
    return nd.build_seeded(circuit, world=WORLD, seed=0)


def supervised(offset_steps):
    """Relay output at t against the factors at t + offset: a delay of -offset steps is exact."""
    return Objective(reconstruction=None, supervise=[Supervision("r", FACTORS, offset_steps=offset_steps)])


def delay_param(module):
    (line,) = [m for m in module.modules() if isinstance(m, DelayLine)]
    return line.steps_param


def fit(module, objective, steps=40, lr=0.1, **kw):
    settings = TrainSettings(steps=steps, batch_size=8, optimizer="adam", lr=lr, log_every=5,
                             checkpoint_every=kw.pop("checkpoint_every", 1000))
    return train(module, WORLD, objective, settings, seed=1, progress=False, **kw)


def test_a_delay_pushed_past_its_bound_stays_at_it_and_can_come_back():
    # The loss wants 3 steps; the bound allows 1.5. Adam carries the parameter past 1.5 within a few steps.
    module = learned_relay(delay_ms=10.0, max_delay_ms=15.0)
    fit(module, supervised(-3), steps=30, lr=0.2)
    param = delay_param(module)
    assert param.item() == 1.5  # projected back onto the bound, not left beyond it
    # From the bound, a loss that wants a shorter delay gets a gradient (zero beyond the bound).
    out = module(WORLD.sample(4, seed=5).streams())["r"]
    target = WORLD.sample(4, seed=5).streams()[VEC]
    ((out[:, 3:] - target[:, 2:-1]) ** 2).sum().backward()
    assert param.grad is not None and float(param.grad) > 0  # descent lowers the delay


def test_the_lower_bound_holds_too_and_a_delay_within_bounds_is_learned():
    low = learned_relay(delay_ms=25.0, min_delay_ms=20.0)
    fit(low, supervised(-1), steps=30, lr=0.2)
    assert delay_param(low).item() == 2.0
    free = learned_relay(delay_ms=5.0)
    result = fit(free, supervised(-2), steps=80, lr=0.1)
    assert abs(delay_param(free).item() - 2.0) < 0.05
    (k,) = result.delays
    assert result.delays[k].shape == (len(result.steps), 1)
    assert abs(result.delays[k][-1, 0] - 20.0) < 0.5  # ms
    assert np.all((result.delays[k] >= 0) & (result.delays[k] <= 40))


def test_project_delays():
    module = learned_relay(delay_ms=10.0, max_delay_ms=20.0)
    with torch.no_grad():
        delay_param(module).fill_(3.7)
    assert module.delays["0"].steps.item() == 2.0
    assert project_delays(module) == 1
    assert delay_param(module).item() == 2.0
    fixed = nd.build_seeded(Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r", delay_ms=10)]), world=WORLD)
    assert project_delays(fixed) == 0
    with pytest.raises(TypeError, match=r"project_delays: module must be a torch.nn.Module .* got str"):
        project_delays("circuit")


def test_delay_history_resumes_bit_for_bit(tmp_path):
    whole = learned_relay()
    full = fit(whole, supervised(-2), steps=20, checkpoint_path=tmp_path / "a.pt", checkpoint_every=10)
    part = learned_relay()
    fit(part, supervised(-2), steps=10, checkpoint_path=tmp_path / "b.pt", checkpoint_every=10)
    resumed = fit(learned_relay(), supervised(-2), steps=20, checkpoint_path=tmp_path / "b.pt",
                  checkpoint_every=10, resume=True)
    np.testing.assert_array_equal(resumed.steps, full.steps)
    assert resumed.delays.keys() == full.delays.keys()
    for k in full.delays:
        np.testing.assert_array_equal(resumed.delays[k], full.delays[k])


def test_a_checkpoint_without_delay_history_reads_nan_for_its_steps(tmp_path):
    path = tmp_path / "ck.pt"
    fit(learned_relay(), supervised(-2), steps=10, checkpoint_path=path, checkpoint_every=10)
    ckpt = load_checkpoint(path, study_text="", seed=1)
    del ckpt["delay_history"]  # as written before delays were logged
    save_checkpoint(path, ckpt)
    result = fit(learned_relay(), supervised(-2), steps=20, checkpoint_path=path, checkpoint_every=10,
                 resume=True)
    (k,) = result.delays
    n_old = int(np.sum(result.steps <= 10))
    assert n_old == 3 and np.isnan(result.delays[k][:n_old]).all()
    assert np.isfinite(result.delays[k][n_old:]).all()


STUDY = """\
name: learned
seed: 3
world: {kind: moving_circle, size: 16, n_frames: 8}
circuit:
  nodes:
    r: {kind: relay}
  edges:
    - {source: world.factors, target: r, delay_ms: [5, 5, 5, 5, 30, 30], learn_delay: true, max_delay_ms: 40}
objective:
  reconstruction: null
  supervise:
    - {node: r, factors: [blob_x, blob_y, circle_x, circle_y, circle_vx, circle_vy], offset_steps: -2}
train: {steps: 100, batch_size: 16, optimizer: adam, lr: 0.05, log_every: 10, checkpoint_every: 50}
evaluate: {n_sequences: 8}
analyses: []
"""


def test_a_study_records_its_learned_delays(tmp_path):
    (tmp_path / "s.yaml").write_text(STUDY, encoding="utf-8")
    out = run_study(load_study(tmp_path / "s.yaml"), tmp_path / "run", quiet=True)
    with xr.open_dataset(out / "results.nc") as ds:
        assert ds.sizes["delay"] == 6
        assert list(ds["delay_channel"].values) == [0, 1, 2, 3, 4, 5]
        assert set(ds["delay_edge"].values) == {"world.factors -> r.in"}
        assert list(ds["delay_edge_index"].values) == [0] * 6
        np.testing.assert_array_equal(ds["delay_initial_ms"].values, [5, 5, 5, 5, 30, 30])
        assert (ds["delay_min_ms"] == 0).all() and (ds["delay_max_ms"] == 40).all()
        assert ds["delay_ms"].attrs["units"] == "ms"
        # circle_x and circle_y move: their delays are learned; the others are constant in a sequence.
        np.testing.assert_allclose(ds["delay_ms"].values[2:4], 20.0, atol=1.0)
        assert ds["delay_ms_history"].dims == ("step", "delay")
        assert ds["delay_ms_history"].shape == (ds.sizes["step"], 6)
        np.testing.assert_array_equal(ds["delay_ms_history"].values[-1], ds["delay_ms"].values)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Learned delays" in report
    assert "| `world.factors -> r.in` | 2 | 5 |" in report
    assert (out / "figures" / "learned_delays.png").stat().st_size > 0


def test_a_study_without_learned_delays_has_no_delay_variables(tmp_path):
    (tmp_path / "s.yaml").write_text(
        STUDY.replace("delay_ms: [5, 5, 5, 5, 30, 30], learn_delay: true, max_delay_ms: 40", "delay_ms: 20")
        .replace("offset_steps: -2", "offset_steps: 0").replace("steps: 100", "steps: 0"), encoding="utf-8")
    out = run_study(load_study(tmp_path / "s.yaml"), tmp_path / "run", quiet=True)
    with xr.open_dataset(out / "results.nc") as ds:
        assert "delay" not in ds.dims and "delay_ms" not in ds
    assert "Learned delays" not in (out / "report.md").read_text(encoding="utf-8")


def test_delay_lr_is_the_learned_delays_own_learning_rate():
    settings = TrainSettings(steps=1, batch_size=2, optimizer="adam", lr=1e-3, delay_lr=0.05)
    encoder = Circuit(nodes={"enc": nd.ConvEncoder(n_latents=2, size=16), "r": Relay()}, edges=[
        Edge("world.frames", "enc"), Edge("enc", "r", delay_ms=[0, 10], learn_delay=True, max_delay_ms=40)])
    module = nd.build_seeded(encoder, world=WORLD, seed=0)
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    train(module, WORLD, Objective(reconstruction=None, supervise=[Supervision("r", ("circle_x", "circle_y"),
                                                                                 offset_steps=-2)]),
          settings, seed=0, progress=False)
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in module.named_parameters()}
    # Adam's first update moves every parameter with a gradient by its learning rate.
    assert moved.pop("delays.1.steps_param") == pytest.approx(0.05, rel=1e-3)
    assert max(moved.values()) == pytest.approx(1e-3, rel=1e-3)
    with pytest.raises(ValueError, match=r"delay_lr must be a finite number > 0, got 0"):
        TrainSettings(delay_lr=0)


def test_delay_lr_null_trains_alike_with_a_checkpoint_written_before_it_existed():
    from neurodelay.training.checkpoint import trains_alike

    old = "name: a\nseed: 1\ntrain: {steps: 10, lr: 0.001}\n"
    assert trains_alike(old, "name: a\nseed: 1\ntrain: {steps: 20, lr: 0.001, delay_lr: null}\n")
    assert not trains_alike(old, "name: a\nseed: 1\ntrain: {steps: 10, lr: 0.001, delay_lr: 0.05}\n")


def test_a_sweep_of_points_with_and_without_learned_delays_combines(tmp_path):
    from neurodelay.sweep import run_sweep

    text = (STUDY.replace("steps: 100,", "steps: 4,").replace("log_every: 10", "log_every: 2")
            + "sweep:\n  zip:\n    circuit.edges[0].learn_delay: [true, false]\n"
              "    circuit.edges[0].max_delay_ms: [40, null]\n    circuit.edges[0].fractional: [false, true]\n")
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    outcome = run_sweep(load_study(tmp_path / "s.yaml"), tmp_path / "runs", quiet=True)
    assert not outcome.failed
    with xr.open_dataset(tmp_path / "runs" / "sweep.nc") as ds:
        assert ds["delay_ms"].dims == ("zip", "delay") and ds.sizes["delay"] == 6
        assert ds["delay"].values[4] == "edge 0 (world.factors -> r.in)[4]"
        assert list(ds["delay_channel"].values) == [0, 1, 2, 3, 4, 5]
        learned = ds["delay_ms"].isel(zip=0).values
        assert np.isfinite(learned).all() and np.isnan(ds["delay_ms"].isel(zip=1).values).all()
        report = (tmp_path / "runs" / "report.md").read_text(encoding="utf-8")
        assert "| learned delays (ms) |" in report
        row = [line for line in report.splitlines() if line.startswith("| [learn_delay=true")][0]
        assert ", ".join(f"{v:.4g}" for v in learned) in row
        assert "`edge 0 (world.factors -> r.in)[0]`" in report
