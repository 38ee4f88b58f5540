"""Bad input to the analyses, presets, recording and simulation gets a clear error naming the argument.

Covers: NaN in a readout's representation, latent traversals of a node that
is not a decoder or of latents of the wrong width, numeric arguments of the
region, lag and readout analyses (bins, batch sizes, steps, seeds, pixels per
unit, a single lag), ``presets.compensated`` arithmetic before validation,
``traces_to_dataset`` inputs, and the sample count, node names, readout/node
pairing and seed of the world, ``perception_latency``, ``flash_lag`` and
``simulate``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurodelay as nd
from neurodelay.analysis.flash_lag import flash_lag, perception_latency
from neurodelay.analysis.lag import LinearReadout, fit_readout, px_per_unit, representational_lag
from neurodelay.analysis.regions import moving_region_errors, region_errors, static_region_errors
from neurodelay.analysis.traversals import latent_traversals
from neurodelay.errors import CircuitError
from neurodelay.record import traces_to_dataset

NAN = float("nan")
WORLD = nd.MovingCircle(n_frames=3)


@pytest.fixture(scope="module")
def inertia():
    return nd.build_seeded(nd.presets.inertia(n_latents=2), world=WORLD)


@pytest.fixture(scope="module")
def autoencoder():
    return nd.build_seeded(nd.presets.autoencoder(n_latents=2), world=WORLD)


@pytest.fixture(scope="module")
def results(autoencoder):
    return nd.simulate(autoencoder, WORLD.sample(3, seed=0))


def _lag_dataset(nan_at=None):
    g = torch.Generator().manual_seed(0)
    z = torch.rand(6, 5, 2, generator=g)
    if nan_at is not None:
        z[nan_at] = NAN
    return traces_to_dataset({"z": z}, dt_ms=10, factors=torch.rand(6, 5, 6, generator=g),
                             frames=torch.zeros(6, 5, 1, 8, 8), factor_names=nd.MovingCircle().factor_names)


# ------------------------------------------------ 1. NaN in the readout's representation
def test_fit_readout_names_a_nan_in_the_representation():
    ds = _lag_dataset(nan_at=(1, 3, 0))
    msg = r"the representation 'z' .*must contain only finite values; found 1 NaN .*sample 1, step 3, unit 0"
    with pytest.raises(ValueError, match=msg):
        fit_readout(ds, lags=[0, 1], from_step=1)
    with pytest.raises(ValueError, match=msg):
        representational_lag(ds, lags=[0, 1], from_step=1)


def test_fit_readout_ignores_a_nan_before_the_steps_used():
    readout, info = fit_readout(_lag_dataset(nan_at=(1, 0, 0)), lags=[0, 1], from_step=1)
    assert np.isfinite(info["mse"])


# ------------------------------------------------ 2. latent traversals check the decoder and the latents
def test_latent_traversals_reject_a_node_that_is_not_a_decoder(inertia, autoencoder):
    z = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(KeyError, match=r"recon_node='decx' is not a node \(enc, z, pred, dec\)"):
        latent_traversals(inertia, "decx", z, n_steps=2)
    with pytest.raises(ValueError, match=r"node 'enc' must have exactly one input from a node.*world.frames"):
        latent_traversals(inertia, "enc", z, n_steps=2)
    with pytest.raises(ValueError, match=r"node 'z' must have exactly one input from a node.*'enc', 'pred'"):
        latent_traversals(inertia, "z", z, n_steps=2)  # a Blend
    with pytest.raises(ValueError, match=r"node 'z' outputs shape \(2,\) per step, not a one-channel image"):
        latent_traversals(autoencoder, "z", z, n_steps=2)  # a Relay: memoryless, but no image


def test_latent_traversals_check_the_latents_and_quantiles(inertia):
    z = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=r"latents must have the width of the decoder's input: 'dec' decodes "
                                         r"'z' of shape \(2,\).*got latents of shape \(5, 3\)"):
        latent_traversals(inertia, "dec", np.zeros((5, 3)), n_steps=2)
    with pytest.raises(ValueError, match=r"latents must contain only finite values; found 1 NaN .*row 4, column 1"):
        latent_traversals(inertia, "dec", np.where(np.arange(20).reshape(10, 2) == 9, NAN, z), n_steps=2)
    with pytest.raises(ValueError, match=r"quantiles must be a pair \(lo, hi\).*got \(0.1, 0.5, 0.9\)"):
        latent_traversals(inertia, "dec", z, n_steps=2, quantiles=(0.1, 0.5, 0.9))
    assert latent_traversals(inertia, "dec", z, n_steps=2)["traversal_images"].shape == (2, 2, 32, 32)


# ------------------------------------------------ 3. numeric arguments of the analyses
def test_static_region_errors_check_batch_size_bins_and_node(autoencoder):
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match=rf"batch_size must be an integer >= 1, got {bad}"):
            static_region_errors(autoencoder, WORLD, "dec", grid_size=2, batch_size=bad)
    with pytest.raises(ValueError, match=r"n_bins must be an integer >= 1, got 0"):
        static_region_errors(autoencoder, WORLD, "dec", grid_size=2, n_bins=0)
    with pytest.raises(ValueError, match=r"recon_node='z' must output images shaped like the world's frames, "
                                         r"\(1, 32, 32\).*has shape \(2,\)"):
        static_region_errors(autoencoder, WORLD, "z", grid_size=2)


def test_region_errors_check_bins():
    rng = np.random.default_rng(0)
    images = rng.random((2, 8, 8))
    masks = {k: np.ones((2, 8, 8), bool) for k in ("inside", "edge", "object", "background")}
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match=rf"n_bins must be an integer >= 1, got {bad}"):
            region_errors(images, images, masks, distance_px=[1.0, 2.0], n_bins=bad)


def test_moving_region_errors_check_recon_world_steps_and_bins(results):
    with pytest.raises(ValueError, match=r"n_bins must be an integer >= 1, got 0"):
        moving_region_errors(results, WORLD, recon="dec", n_bins=0)
    with pytest.raises(ValueError, match=r"recon='z' must be images shaped like the frames"):
        moving_region_errors(results, WORLD, recon="z")
    with pytest.raises(ValueError, match=r"world.size=64 must be the frames' width, 32 px"):
        moving_region_errors(results, nd.MovingCircle(size=64), recon="dec")
    for bad in ([1.7], [-1], [3]):
        with pytest.raises(ValueError, match=r"steps must be whole steps in \[0, 2\].*got \["):
            moving_region_errors(results, WORLD, recon="dec", offset_steps=0, steps=bad)
    with pytest.raises(ValueError, match=r"offset_steps must be a whole number of steps, got 0.5"):
        moving_region_errors(results, WORLD, recon="dec", offset_steps=0.5)


def test_pixels_per_unit_must_be_positive():
    ds = _lag_dataset()
    for bad in (-24, NAN, "24"):
        with pytest.raises(ValueError, match=r"pixels_per_unit must be a finite number > 0, got"):
            representational_lag(ds, lags=[0, 1], from_step=1, pixels_per_unit=bad)
    with pytest.raises(ValueError, match=r"size must be a finite number > 0, got -1"):
        px_per_unit(-1)
    assert px_per_unit(32) == 24.0


def test_readout_seed_and_a_single_lag():
    ds = _lag_dataset()
    for bad in (1.7, -1, True):
        with pytest.raises(ValueError, match=r"seed must be a non-negative integer; got"):
            fit_readout(ds, lags=[0, 1], from_step=1, seed=bad)
    # 6 random sequences: a linear readout (a quadratic one overfits them and reads no position)
    one, info = fit_readout(ds, lags=1, from_step=1, readout_degree=1)
    listed, info_listed = fit_readout(ds, lags=[1], from_step=1, readout_degree=1)
    assert one.lag_steps == 1.0
    np.testing.assert_array_equal(info["mse_curve"], info_listed["mse_curve"])
    with pytest.raises(ValueError, match=r"lags must be a whole number of steps or a non-empty sequence.*got 1.5"):
        fit_readout(ds, lags=1.5, from_step=1)


# ------------------------------------------------ 4. presets validate before their arithmetic
def test_compensated_checks_dt_and_delay_before_dividing():
    with pytest.raises(CircuitError, match=r"dt_ms must be a positive number of ms, got 0"):
        nd.presets.compensated(dt_ms=0)
    for bad in ("10", None, NAN):
        with pytest.raises(CircuitError, match=r"input_delay_ms must be a finite number of ms >= 0.*got"):
            nd.presets.compensated(input_delay_ms=bad)
    with pytest.raises(CircuitError, match=r"horizon_steps must be a finite number of steps.*got '2'"):
        nd.presets.compensated(horizon_steps="2")
    assert nd.presets.compensated(input_delay_ms=20.0).nodes["z"].alpha == 2.0


# ------------------------------------------------ 5. traces_to_dataset
def test_traces_to_dataset_checks_dt_shapes_and_names():
    x = torch.zeros(2, 3, 4)
    for bad in (0, -10, NAN):
        with pytest.raises(ValueError, match=r"dt_ms must be a positive finite number of ms.*got"):
            traces_to_dataset({"z": x}, dt_ms=bad)
    with pytest.raises(ValueError, match=r"same \(sample, time\) sizes, got trace 'a' \(2, 3\), trace 'b' \(2, 5\)"):
        traces_to_dataset({"a": x, "b": torch.zeros(2, 5, 4)}, dt_ms=10)
    with pytest.raises(ValueError, match=r"factors \(2, 4\)"):
        traces_to_dataset({"a": x}, dt_ms=10, factors=torch.zeros(2, 4, 6))
    with pytest.raises(ValueError, match=r"factor_names must name each of the 4 factors, got 1 names \['a'\]"):
        traces_to_dataset({"a": x}, dt_ms=10, factors=x, factor_names=["a"])
    with pytest.raises(ValueError, match=r"trace 'z' must have shape \(sample, time, \.\.\.\), got shape \(3,\)"):
        traces_to_dataset({"z": torch.zeros(3)}, dt_ms=10)
    ds = traces_to_dataset({"z": x.double()}, dt_ms=10)
    assert ds["z"].dtype == np.float32  # by design: results are float32
    np.testing.assert_array_equal(ds["time"].values, [0.0, 10.0, 20.0])


# ------------------------------------------------ 6. sample count, node names, readout/node, seed
def test_moving_circle_sample_names_n_samples():
    with pytest.raises(ValueError, match=r"n_samples must be a positive integer, got 0; use e.g. n_samples=64"):
        WORLD.sample(0)


def test_perception_latency_rejects_unknown_auxiliary_names(inertia):
    with pytest.raises(KeyError, match=r"node='z_bogus' is not a node of the circuit \(enc, z, pred, dec\)"):
        perception_latency(inertia, "z_bogus")
    assert perception_latency(inertia, "enc_mu") == perception_latency(inertia, "enc")


def test_flash_lag_rejects_a_readout_of_another_node(inertia):
    readout = LinearReadout(node="z", lag_steps=0.0, dt_ms=10.0, mean=np.zeros(2), scale=np.ones(2),
                            coef=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"node='enc' is not the node the readout was fitted on \('z'\)"):
        flash_lag(inertia, WORLD, readout, node="enc")


def test_simulate_checks_the_seed():
    circuit = nd.Circuit(nodes={"r": nd.Relay()}, edges=[nd.Edge("world.factors", "r")])
    episode = WORLD.sample(2)
    for bad in ("a", -1, 1.5, True):
        with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got"):
            nd.simulate(circuit, episode, seed=bad)
    assert nd.simulate(circuit, episode, seed=np.int64(3))["r"].shape == (2, 3, 6)
