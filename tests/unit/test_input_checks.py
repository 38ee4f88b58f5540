"""Bad input gets a clear error naming the field, the constraint and the value; friendly forms are accepted.

Covers: a single name where a list of names is expected, numpy scalars for
numeric spec fields, project messages instead of attrs' ``in_`` messages,
non-finite factors at the renderer's user-facing entry points, and
``plot_correlation`` of a plain correlation array.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from matplotlib.figure import Figure

import neurodelay as nd
from neurodelay.analysis.disentanglement import correlation_matrix
from neurodelay.analysis.figures import plot_correlation
from neurodelay.analysis.lag import lag_resolved_scores
from neurodelay.analysis.traversals import factor_sweeps
from neurodelay.training.objectives import Objective, Supervision
from neurodelay.record import traces_to_dataset
from neurodelay.study import Study, structure_study, study_to_yaml
from neurodelay.study import TrainSettings
from neurodelay.worlds import _spec
from neurodelay.worlds.flash import FlashLagProbe

NAN = float("nan")


# ------------------------------------------------ a single name where names are expected
def test_supervision_single_factor_name_is_a_one_name_tuple():
    assert Supervision("enc", "circle_x").factors == ("circle_x",)
    assert Supervision("enc", ["circle_x", "circle_y"]).factors == ("circle_x", "circle_y")
    with pytest.raises(TypeError, match=r"Supervision.factors must be a list of factor names.*got None"):
        Supervision("enc", None)


def test_objective_single_supervision_is_a_one_item_tuple():
    sup = Supervision("enc", ("circle_x", "circle_y"))
    assert Objective(supervise=sup).supervise == (sup,)
    assert Objective(supervise=[sup]) == Objective(supervise=sup)
    with pytest.raises(TypeError, match=r"supervise must be a Supervision or a list of them, got None"):
        Objective(supervise=None)


def _lag_dataset():
    g = torch.Generator().manual_seed(0)
    factors = torch.rand(6, 5, 6, generator=g)
    return traces_to_dataset({"z": torch.rand(6, 5, 2, generator=g)}, dt_ms=10, factors=factors,
                             factor_names=nd.MovingCircle().factor_names)


def test_lag_resolved_scores_single_factor_name():
    ds = _lag_dataset()
    one = lag_resolved_scores(ds, factors="circle_x", lags=[0, 1], from_step=0)
    listed = lag_resolved_scores(ds, factors=["circle_x"], lags=[0, 1], from_step=0)
    assert "(circle_x)" in one["lag_mig"].attrs["long_name"]
    np.testing.assert_array_equal(one["lag_mig"].values, listed["lag_mig"].values)


def _relay_module(world):
    circuit = nd.Circuit(nodes={"z": nd.Relay()}, edges=[nd.Edge("world.factors", "z")])
    return nd.build_seeded(circuit, world=world)


def test_factor_sweeps_single_factor_name_and_finite_others():
    world = nd.MovingCircle(n_frames=3)
    module = _relay_module(world)
    one = factor_sweeps(module, world, "z", n_steps=3, factors="circle_x")
    listed = factor_sweeps(module, world, "z", n_steps=3, factors=["circle_x"])
    assert list(one["sweep_factor"].values) == ["circle_x"]
    np.testing.assert_array_equal(one["sweep_latents"].values, listed["sweep_latents"].values)
    with pytest.raises(ValueError, match=r"others must be a finite number .* got nan"):
        factor_sweeps(module, world, "z", n_steps=3, others=NAN)


def test_flash_probe_single_condition_and_direction():
    probe = FlashLagProbe(conditions="standard", directions="up")
    assert probe.conditions == ("standard",) and probe.directions == ("up",)
    with pytest.raises(ValueError, match=r"FlashLagProbe.conditions must be a name or a list of names, got 3"):
        FlashLagProbe(conditions=3)


# ------------------------------------------------ numpy scalars, stored as plain numbers
@pytest.mark.parametrize("make, field, kind", [
    (lambda: nd.ConvEncoder(n_latents=np.int64(4)), "n_latents", int),
    (lambda: nd.ConvDecoder(size=np.int32(32)), "size", int),
    (lambda: nd.Blend(gamma=np.float32(0.5)), "gamma", float),
    (lambda: nd.Extrapolator(alpha=np.float64(2.0)), "alpha", float),
    (lambda: TrainSettings(steps=np.int64(5)), "steps", int),
    (lambda: TrainSettings(lr=np.float32(0.5)), "lr", float),
    (lambda: Objective(beta=np.float32(1)), "beta", float),
    (lambda: Objective(score_from_step=np.int64(2)), "score_from_step", int),
    (lambda: Supervision("enc", "circle_x", offset_steps=np.int16(1)), "offset_steps", int),
])
def test_numpy_scalars_are_accepted_and_stored_plain(make, field, kind):
    spec = make()
    assert type(getattr(spec, field)) is kind


def test_numpy_scalars_round_trip_through_yaml():
    circuit = nd.Circuit(nodes={"enc": nd.ConvEncoder(n_latents=np.int64(2), gaussian=True),
                                "dec": nd.ConvDecoder(n_latents=np.int64(2))},
                         edges=[nd.Edge("world.frames", "enc"), nd.Edge("enc", "dec")])
    study = Study(name="np-scalars", circuit=circuit, objective=Objective(beta=np.float32(1)),
                  train=TrainSettings(steps=np.int64(3), batch_size=np.int64(2)))
    text = study_to_yaml(study)
    assert "n_latents: 2" in text and "steps: 3" in text
    assert structure_study(yaml.safe_load(text)) == study


def test_bools_are_still_not_numbers():
    with pytest.raises(ValueError, match=r"n_latents must be a positive integer, got True"):
        nd.ConvEncoder(n_latents=True)
    with pytest.raises(ValueError, match=r"steps must be an integer >= 0, got np.True_"):
        TrainSettings(steps=np.bool_(True))


# ------------------------------------------------ choices: the project's messages, not attrs'
@pytest.mark.parametrize("make, pattern", [
    (lambda: TrainSettings(optimizer="adam "),
     r"optimizer must be one of 'rmsprop', 'adam', got 'adam '; did you mean optimizer='adam'\?"),
    (lambda: TrainSettings(precision="float16"),
     r"precision must be one of 'float32', 'bfloat16', got 'float16'"),
    (lambda: Objective(reconstruction="mse"),
     r"reconstruction must be 'gaussian' \(squared error\), 'bernoulli' .* or None .*, got 'mse'"),
])
def test_choice_messages_name_field_options_and_value(make, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        make()
    assert "Attribute(" not in str(info.value)


# ------------------------------------------------ non-finite factors at the renderer's entry points
@pytest.mark.parametrize("world", [nd.MovingCircle(size=16), nd.CircleOverBlob(size=16, seed_compatible=True)],
                         ids=["moving", "seed_compatible"])
def test_render_rejects_non_finite_factors(world):
    f = torch.full((2, 3, 4), 0.5)
    f[1, 2, 2] = NAN
    with pytest.raises(ValueError, match=r"factors must be finite, got circle_x = nan at row \(1, 2\)"):
        world.render(f)
    with pytest.raises(ValueError, match=r"factors must be finite, got blob_y = inf at row 0"):
        world.render(torch.tensor([[0.5, float("inf"), 0.5, 0.5]]))


def test_masks_reject_non_finite_circle_factors():
    world = nd.MovingCircle(size=16)
    with pytest.raises(ValueError, match=r"factors must be finite, got circle_y = -inf at row 0"):
        world.masks(torch.tensor([[0.5, 0.5, 0.5, -float("inf")]]))
    # the masks use only the circle factors: a NaN blob does not matter
    assert world.masks(torch.tensor([[NAN, 0.5, 0.5, 0.5]]))["object"].any()


def test_episode_from_trajectories_rejects_non_finite_input():
    world = nd.MovingCircle(size=16, n_frames=3)
    ok = [[0.2, 0.2], [0.3, 0.3]]
    with pytest.raises(ValueError, match=r"velocity must be finite, got circle_vy = nan at row 1"):
        world.episode_from_trajectories(ok, [[0.1, 0.0], [0.1, NAN]], ok)


def test_worlds_sample_without_the_finiteness_check(monkeypatch):
    """sample() draws finite factors itself: no check, so no host sync on the training path."""
    def fail(*args, **kwargs):
        raise AssertionError("sample() must not check its own factors")

    worlds = (nd.MovingCircle(size=16, n_frames=3), nd.CircleOverBlob(size=16))
    with monkeypatch.context() as patch:
        patch.setattr(_spec, "check_finite", fail)
        episodes = [world.sample(3, seed=1) for world in worlds]
    for world, ep in zip(worlds, episodes):
        torch.testing.assert_close(ep.frames, world.render(ep.factors), rtol=0, atol=0)


# ------------------------------------------------ plot_correlation of a plain array
def test_plot_correlation_accepts_correlation_matrix_output():
    rng = np.random.default_rng(0)
    corr = correlation_matrix(rng.normal(size=(20, 3)), rng.normal(size=(20, 2)))
    fig = plot_correlation(corr)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    assert ax.get_xlabel() == "factor" and ax.get_ylabel() == "latent (index)"
    with pytest.raises(TypeError, match=r"corr must be an xarray.DataArray or a 2-D numeric array"):
        plot_correlation({"a": 1})
    with pytest.raises(ValueError, match=r"corr must be 2-D \(latent, factor\), got shape \(3,\)"):
        plot_correlation(np.zeros(3))
