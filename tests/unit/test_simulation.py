"""``simulate`` on episodes holding NaN or infinite values: a warning, or a refusal with ``check_finite``."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

import neurodelay as nd
from neurodelay import Circuit, Edge, Relay
from neurodelay.simulation import NonFiniteInputWarning
from tests.helpers import SMALL_WORLD, VEC


WORLD = nd.MovingCircle(size=16, n_frames=4)
CIRCUIT = nd.presets.autoencoder(n_latents=2, size=16)


def poisoned(value=float("nan")):
    episode = WORLD.sample(3, seed=0)
    frames = episode.frames.clone()
    frames[1, 2, 0, 5, 5] = value
    return dataclasses.replace(episode, frames=frames)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_frames_warn_and_pass_through(value):
    with pytest.warns(NonFiniteInputWarning, match=r"world\.frames holds 1 NaN or infinite value \(first at sample 1, "
                                                   r"step 2\).*check_finite=True refuses"):
        ds = nd.simulate(CIRCUIT, poisoned(value))
    assert not np.isfinite(ds["enc"].values[1, 2]).all() and np.isfinite(ds["enc"].values[0]).all()


def test_check_finite_refuses_them():
    with pytest.raises(ValueError, match=r"the episode's world\.frames holds 1 NaN .*torch\.nan_to_num"):
        nd.simulate(CIRCUIT, poisoned(), check_finite=True)
    with pytest.raises(TypeError, match="check_finite must be True or False"):
        nd.simulate(CIRCUIT, WORLD.sample(2), check_finite="yes")


def test_finite_episodes_run_without_a_word():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = nd.simulate(CIRCUIT, WORLD.sample(2, seed=1))
        b = nd.simulate(CIRCUIT, WORLD.sample(2, seed=1), check_finite=True)
    assert a.identical(b)


def test_build_seeded_checks_seed_and_circuit():
    """seed=1.5 silently seeded 1, seed=-1 was accepted, a non-circuit failed with AttributeError."""
    c = Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r")])
    for bad in (1.5, -1, "a", 2**64):
        with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got"):
            nd.build_seeded(c, seed=bad)
    with pytest.raises(TypeError, match=r"circuit must be a Circuit spec, got str"):
        nd.build_seeded("inertia")


def test_simulate_checks_the_episode():
    with pytest.raises(TypeError, match=r"episode must be an Episode .* got dict"):
        nd.simulate(Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r")]), {VEC: torch.rand(1, 3, 6)})


@pytest.mark.parametrize("device", ["gpu", "cuda:7"], ids=["unknown-name", "absent-cuda"])
def test_simulate_rejects_an_unknown_or_absent_device_clearly(device):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    world = nd.MovingCircle(size=16, n_frames=3)
    with pytest.raises(ValueError, match=rf"device.*{device!r}.*use") as info:
        nd.simulate(nd.presets.autoencoder(n_latents=2, size=16), world.sample(2), device=device)
    assert "Expected one of" not in str(info.value) and "not compiled" not in str(info.value)


def test_simulate_checks_the_seed():
    circuit = nd.Circuit(nodes={"r": nd.Relay()}, edges=[nd.Edge("world.factors", "r")])
    episode = SMALL_WORLD.sample(2)
    for bad in ("a", -1, 1.5, True):
        with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got"):
            nd.simulate(circuit, episode, seed=bad)
    assert nd.simulate(circuit, episode, seed=np.int64(3))["r"].shape == (2, 3, 6)
