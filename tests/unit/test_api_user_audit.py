"""The Python API as a user meets it: renamed node traces in analyses, devices, preset specs, messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurodelay as nd
from neurodelay import analysis as A
from neurodelay.errors import ConfigError
from neurodelay.study import PresetCircuit, Study, StudyError, check_study
from neurodelay.worlds.flash import FlashLagProbe


def _latent_named_circuit():
    """A circuit whose representation node is named ``latent``: results store it as ``node_latent``."""
    return nd.Circuit(
        nodes={"enc": nd.ConvEncoder(n_latents=2, size=16), "latent": nd.Extrapolator(alpha=1.0),
               "dec": nd.ConvDecoder(n_latents=2, size=16)},
        edges=[nd.Edge("world.frames", "enc", delay_ms=10), nd.Edge("enc", "latent"), nd.Edge("latent", "dec")],
    )


@pytest.fixture(scope="module")
def latent_named():
    world = nd.MovingCircle(size=16, n_frames=5)
    module = nd.build_seeded(_latent_named_circuit(), world=world, seed=0)
    return world, module, nd.simulate(module, world.sample(12, seed=0))


def test_flash_lag_finds_the_node_of_a_readout_fitted_on_a_renamed_trace(latent_named):
    world, module, ds = latent_named
    assert "node_latent" in ds.data_vars and ds["node_latent"].attrs["node"] == "latent"
    readout, _ = A.fit_readout(ds, "latent")
    assert readout.node == "node_latent"
    probe = FlashLagProbe(speeds=(0.04,))
    default = A.flash_lag(module, world, readout, probe)  # was: KeyError 'node_latent' is not a node
    given = A.flash_lag(module, world, readout, probe, node="latent")
    assert default["flash_lag_px"].attrs["node"] == "latent"
    np.testing.assert_array_equal(default["flash_lag_px_by_direction"].values,
                                  given["flash_lag_px_by_direction"].values)
    assert int(default["flash_latency_steps"]) == 1


def test_factor_sweeps_reads_a_renamed_trace_by_node_or_variable(latent_named):
    world, module, _ = latent_named
    by_node = A.factor_sweeps(module, world, "latent", n_steps=3)  # was: KeyError, not a trace
    by_var = A.factor_sweeps(module, world, "node_latent", n_steps=3)  # was: KeyError, not a node
    assert by_node["sweep_latents"].shape == (4, 3, 2)
    np.testing.assert_array_equal(by_node["sweep_latents"].values, by_var["sweep_latents"].values)
    # The representation read is the node's own trace at the last step of each static sequence.
    f = torch.zeros(1, 1, world.n_factors)
    f[..., :4] = 0.5
    f[0, 0, 0] = 0.0  # blob_x at the first sweep value, the other positions at 0.5
    ep = nd.Episode(world.render(f).expand(-1, 3, -1, -1, -1).contiguous(), f.expand(-1, 3, -1).contiguous(),
                    world.factor_names)
    direct = nd.simulate(module, ep)["node_latent"].values[0, -1]
    np.testing.assert_allclose(by_node["sweep_latents"].values[0, 0], direct, rtol=0, atol=1e-6)


@pytest.mark.parametrize("device", ["gpu", "cuda:7"], ids=["unknown-name", "absent-cuda"])
def test_simulate_rejects_an_unknown_or_absent_device_clearly(device):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    world = nd.MovingCircle(size=16, n_frames=3)
    with pytest.raises(ValueError, match=rf"device.*{device!r}.*use") as info:
        nd.simulate(nd.presets.autoencoder(n_latents=2, size=16), world.sample(2), device=device)
    assert "Expected one of" not in str(info.value) and "not compiled" not in str(info.value)


def test_a_python_preset_spec_with_an_unknown_name_is_a_located_study_error():
    world = nd.MovingCircle(size=16, n_frames=3)
    with pytest.raises(StudyError, match=r"\$\.circuit\.preset: unknown preset 'inertai'; did you mean 'inertia'"):
        check_study(Study(name="a", world=world, circuit=PresetCircuit("inertai")))  # was: KeyError 'inertai'
    with pytest.raises(ConfigError, match=r"PresetCircuit\.preset: unknown preset 'inertai'.*valid presets"):
        PresetCircuit("inertai").build(10.0)


def test_a_python_preset_spec_with_an_unknown_parameter_suggests_the_right_one():
    world = nd.MovingCircle(size=16, n_frames=3)
    with pytest.raises(StudyError, match=r"\$\.circuit\.gama: unknown parameter 'gama' of preset 'inertia'; "
                                         r"did you mean 'gamma'\?"):
        check_study(Study(name="a", world=world, circuit=PresetCircuit("inertia", {"gama": 0.3, "size": 16})))
    with pytest.raises(ConfigError, match=r"PresetCircuit\.params\.dt_ms: dt_ms is the study's"):
        PresetCircuit("inertia", {"dt_ms": 5.0}).build(10.0)  # was: TypeError, multiple values for dt_ms


def test_moving_circle_speed_range_message_states_factor_units():
    with pytest.raises(ConfigError) as info:
        nd.MovingCircle(n_frames=10, speed_min=0.1, speed_max=0.2)
    text = str(info.value)
    assert "1 circle factor unit" in text and "image width" not in text
    assert "use speed_max <= 0.1111" in text


def test_moving_region_errors_on_a_simulate_result_names_the_reconstruction_to_pass():
    world = nd.MovingCircle(size=16, n_frames=3)
    ds = nd.simulate(nd.presets.autoencoder(n_latents=2, size=16), world.sample(2))
    with pytest.raises(KeyError, match=r"no 'reconstruction' variable.*recon=.*here: 'dec'"):
        A.moving_region_errors(ds, world)
    assert A.moving_region_errors(ds, world, recon="dec")["region_mse"].shape == (4,)
