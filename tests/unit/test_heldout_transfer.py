"""Held-out circle positions of the static world, and gamma transfer (gamma changed at evaluation only)."""

import numpy as np
import pytest
import torch

from neurodelay import Circuit, Edge
from neurodelay.analysis.regions import heldout_region_errors
from neurodelay.analysis.transfer import gamma_transfer
from neurodelay.circuit import world_shapes
from neurodelay.components import Blend, Extrapolator
from neurodelay.simulation import build_seeded
from neurodelay.study import EvaluateSettings, Study, StudyError, structure_study
from neurodelay.worlds import CircleOverBlob, MovingCircle
from neurodelay.worlds.original import CIRCLE_GRID

from .test_lag import Select


@pytest.mark.parametrize("name, values", [("grid", CIRCLE_GRID), ("even", CIRCLE_GRID[0::2]),
                                          ("odd", CIRCLE_GRID[1::2])])
def test_circle_values_restrict_the_circle_positions(name, values):
    f = CircleOverBlob(circle_values=name).factors(4000, seed=3)
    drawn = np.unique(f[:, 2:4])
    np.testing.assert_array_equal(drawn, np.sort(values))


def test_even_and_odd_circle_values_are_disjoint_halves_of_the_grid():
    even, odd = CircleOverBlob(circle_values="even").circle_grid, CircleOverBlob(circle_values="odd").circle_grid
    assert len(even) == len(odd) == 8
    assert not set(even) & set(odd)
    np.testing.assert_array_equal(np.sort(np.concatenate([even, odd])), CIRCLE_GRID)


def test_bad_circle_values_name_the_field_and_the_choices():
    with pytest.raises(ValueError, match=r"circle_values must be one of 'grid', 'even', 'odd', got 'half'"):
        CircleOverBlob(circle_values="half")
    raw = {"name": "x", "world": {"kind": "circle_over_blob", "circle_values": "half"},
           "circuit": {"preset": "autoencoder"}}
    with pytest.raises(StudyError, match=r"\$\.world\.circle_values.*'grid', 'even', 'odd'"):
        structure_study(raw)


class _SnappingDecoder(torch.nn.Module):
    """Renders the scene from its factors, the circle snapped to the nearest value of ``values``."""

    def __init__(self, world, values):
        super().__init__()
        self.world = world
        self.values = torch.as_tensor(np.asarray(values), dtype=torch.float32)

    def forward(self, streams, ctx=None):
        f = streams["world.factors"].clone()
        c = f[..., 2:4]
        idx = (c[..., None] - self.values).abs().argmin(-1)
        f[..., 2:4] = self.values[idx]
        return {"dec": self.world.render(f)}


def test_heldout_errors_separate_memorised_positions_from_generalising_ones():
    world = CircleOverBlob(circle_values="even")
    perfect = heldout_region_errors(_SnappingDecoder(world, CIRCLE_GRID), world, "dec", n_blob=3)
    memorised = heldout_region_errors(_SnappingDecoder(world, world.circle_grid), world, "dec", n_blob=3)
    assert list(perfect["split"].values) == ["trained", "heldout"]
    assert float(perfect["heldout_region_mse"].max()) < 1e-10
    assert float(memorised["heldout_region_mse"].sel(split="trained").max()) < 1e-10
    assert float(memorised["heldout_region_mse"].sel(split="heldout", region="object")) > 0.05
    assert memorised.attrs["heldout_circle_values"] == "odd"


def test_heldout_needs_a_half_grid_world():
    with pytest.raises(ValueError, match="circle_values='grid'"):
        heldout_region_errors(_SnappingDecoder(CircleOverBlob(), CIRCLE_GRID), CircleOverBlob(), "dec")


def _tracking_circuit(gamma, alpha):
    return Circuit(
        nodes={"enc": Select(), "z": Blend(gamma=gamma), "pred": Extrapolator(alpha=alpha)},
        edges=[Edge("world.factors", "enc", delay_ms=10), Edge("enc", "z.drive"), Edge("z", "pred", delay_ms=10),
               Edge("pred", "z.prediction")],
        dt_ms=10,
    )


def test_gamma_transfer_matches_the_analytic_lag_at_each_evaluation_gamma():
    # L = d + gamma (1 - alpha) / (1 - gamma) with d = 1 step (docs/original-study.md section 6)
    alpha = 0.5
    world = MovingCircle(n_frames=40, speed_min=0.01, speed_max=0.02)
    circuit = _tracking_circuit(0.2, alpha)
    module = build_seeded(circuit, input_shapes=world_shapes(world), seed=0)
    study = Study(name="t", world=world, circuit=circuit, evaluate=EvaluateSettings(n_sequences=48))
    gammas = (0.0, 0.4, 0.6)
    out = gamma_transfer(module, study, "cpu", gammas)
    expected = [1.0 + g * (1 - alpha) / (1 - g) for g in gammas]
    np.testing.assert_allclose(out["transfer_lag_steps"].values, expected, atol=0.1)
    assert out.attrs["trained_gamma"] == 0.2
    assert np.isnan(out["transfer_reconstruction_mse"].values).all()  # no image node
    assert module.circuit.nodes["z"].gamma == 0.2  # the trained circuit itself is untouched


def test_gamma_transfer_rejects_bad_gammas_and_ambiguous_blends():
    world = MovingCircle(n_frames=10)
    circuit = _tracking_circuit(0.2, 1.0)
    module = build_seeded(circuit, input_shapes=world_shapes(world), seed=0)
    study = Study(name="t", world=world, circuit=circuit, evaluate=EvaluateSettings(n_sequences=8))
    with pytest.raises(ValueError, match=r"gammas must be a non-empty list of numbers in \[0, 1\], got \[1.5\]"):
        gamma_transfer(module, study, "cpu", [1.5])
    with pytest.raises(ValueError, match="node='enc' is not a Blend node"):
        gamma_transfer(module, study, "cpu", [0.5], node="enc")
