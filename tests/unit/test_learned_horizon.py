"""Extrapolators with a learned horizon (``learn_alpha``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import neurodelay as nd
from neurodelay import Blend, Circuit, Edge, Extrapolator, Relay
from neurodelay.analysis.theory import theory_circuit
from neurodelay.training.objectives import Objective, Supervision
from neurodelay.pipeline import run_study
from neurodelay.study import TrainSettings, load_study
from neurodelay.training import train
from tests.helpers import VEC, run

WORLD = nd.MovingCircle(size=16, n_frames=10)
FACTORS = tuple(WORLD.factor_names)


def horizon(delay_ms: float, alpha: float = 0.0, learn: bool = True) -> Circuit:
    """world.factors -(delay)-> ff, an extrapolator whose horizon may be learned."""
    return Circuit(nodes={"ff": Extrapolator(alpha=alpha, learn_alpha=learn)},
                   edges=[Edge(VEC, "ff", delay_ms=delay_ms)])


def test_a_learned_horizon_runs_as_the_fixed_one_until_trained():
    x = torch.randn(3, 9, 4, dtype=torch.float32)
    for mode in ("sequence", "step"):
        fixed = run(horizon(20.0, alpha=1.7, learn=False), x, mode)["ff"]
        learned = run(horizon(20.0, alpha=1.7), x, mode)["ff"]
        torch.testing.assert_close(learned, fixed, rtol=1e-6, atol=1e-6)
    module = horizon(20.0, alpha=1.7).build(input_shapes={VEC: (4,), "world.frames": (1, 32, 32)})
    module({VEC: x})["ff"].sum().backward()
    (param,) = [p for n, p in module.named_parameters() if n.endswith("alpha_steps")]
    assert param.grad is not None and float(param.grad) != 0.0


def test_a_flag_that_is_no_bool_is_refused():
    with pytest.raises(TypeError, match="learn_alpha must be true or false"):
        Extrapolator(learn_alpha="yes")


def test_the_horizon_learned_on_linear_motion_is_the_delay():
    """Present position from a 20 ms late stream: p(t) = p(t - 2) + 2 v, so the loss is least at alpha 2."""
    module = nd.build_seeded(horizon(20.0), world=WORLD, seed=0)
    objective = Objective(reconstruction=None, supervise=[Supervision("ff", FACTORS, offset_steps=0)])
    settings = TrainSettings(steps=120, batch_size=8, optimizer="adam", lr=1e-3, delay_lr=0.05, log_every=20,
                             checkpoint_every=1000)
    train(module, WORLD, objective, settings, seed=1, progress=False)
    assert module.nodes["ff"].learned_values()["alpha"] == pytest.approx(2.0, abs=0.05)


def test_a_loop_with_a_learned_horizon_is_stepped_not_solved_and_has_no_theory():
    circuit = Circuit(nodes={"z": Blend(gamma=0.5), "p": Extrapolator(alpha=1.0, learn_alpha=True)},
                      edges=[Edge(VEC, "z.drive", delay_ms=10), Edge("z", "p", delay_ms=10),
                             Edge("p", "z.prediction")])
    module = circuit.build(input_shapes={VEC: (2,), "world.frames": (1, 32, 32)})
    assert all(loop is None for loop in module._linear)
    fixed = Circuit(nodes={"z": Blend(gamma=0.5), "p": Extrapolator(alpha=1.0)}, edges=circuit.edges)
    x = torch.randn(2, 12, 2, dtype=torch.float32)
    torch.testing.assert_close(run(circuit, x)["z"], run(fixed, x)["z"], rtol=1e-6, atol=1e-6)
    frames = Circuit(nodes={"r": Relay(), "p": Extrapolator(learn_alpha=True)},
                     edges=[Edge("world.frames", "r"), Edge("r", "p")])
    assert theory_circuit(frames, "p")[0] is None and "learned" in theory_circuit(frames, "p")[1]


STUDY = """\
name: lh
seed: 1
world: {kind: moving_circle, size: 16, n_frames: 10}
circuit:
  nodes:
    ff: {kind: extrapolator, alpha: 0.0, learn_alpha: true}
  edges:
    - {source: world.factors, target: ff, delay_ms: 20}
objective:
  reconstruction: null
  supervise:
    - {node: ff, factors: [blob_x, blob_y, circle_x, circle_y, circle_vx, circle_vy]}
train: {steps: 60, batch_size: 8, optimizer: adam, lr: 1.0e-3, delay_lr: 0.05, log_every: 10, checkpoint_every: 30}
evaluate: {n_sequences: 16}
analyses: []
"""


def test_a_study_records_its_learned_horizon_and_resumes_it(tmp_path):
    (tmp_path / "s.yaml").write_text(STUDY, encoding="utf-8")
    out = run_study(load_study(tmp_path / "s.yaml"), tmp_path / "run", quiet=True)
    with xr.open_dataset(out / "results.nc") as ds:
        assert list(ds["learned_node"].values) == ["ff"]
        assert ds["alpha_learned"].attrs["units"] == "steps"
        assert float(ds["alpha_initial"].sel(learned_node="ff")) == 0.0
        whole = float(ds["alpha_learned"].sel(learned_node="ff"))
    assert 1.0 < whole < 2.5
    # Trained in two halves (30 steps, then resumed to 60): the same horizon, bit for bit.
    (tmp_path / "h.yaml").write_text(STUDY.replace("steps: 60", "steps: 30"), encoding="utf-8")
    run_study(load_study(tmp_path / "h.yaml"), tmp_path / "half", quiet=True)
    out = run_study(load_study(tmp_path / "s.yaml"), tmp_path / "half", quiet=True, resume=True)
    with xr.open_dataset(out / "results.nc") as ds:
        assert float(ds["alpha_learned"].sel(learned_node="ff")) == whole
    plain = STUDY.replace(", learn_alpha: true", "").replace("steps: 60", "steps: 0")
    (tmp_path / "p.yaml").write_text(plain, encoding="utf-8")
    out = run_study(load_study(tmp_path / "p.yaml"), tmp_path / "plain", quiet=True)
    with xr.open_dataset(out / "results.nc") as ds:
        assert "alpha_learned" not in ds and "learned_node" not in ds.coords
    assert np.isfinite(whole)


def test_a_sweep_of_learned_and_fixed_horizons_combines(tmp_path):
    from neurodelay.sweep import run_sweep

    text = STUDY.replace("steps: 60", "steps: 4") + "sweep:\n  circuit.nodes.ff.learn_alpha: [true, false]\n"
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    outcome = run_sweep(load_study(tmp_path / "s.yaml"), tmp_path / "runs", quiet=True)
    assert not outcome.failed
    with xr.open_dataset(tmp_path / "runs" / "sweep.nc") as ds:
        values = ds["alpha_learned"].sel(learned_node="ff").values
        assert np.isfinite(values[0]) and values[0] != 0.0 and np.isnan(values[1])
