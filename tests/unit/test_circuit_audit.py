"""Circuit, components and simulate: inputs that used to fail deep inside torch or silently.

Each test names the defect it guards.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

import neurodelay as nd
from neurodelay import Blend, Circuit, ConvEncoder, Edge, Extrapolator, Relay, presets
from neurodelay.components.base import RunContext
from neurodelay.components.delays import DelayLine
from neurodelay.errors import CircuitError, ShapeError
from tests.helpers import VEC, run, shapes


@pytest.fixture(scope="module")
def relay():
    return Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r")]).build(input_shapes=shapes(3))


# ---------------------------------------------------------------- specs
def test_a_two_dimensional_delay_array_is_rejected_not_flattened():
    """A (2, 2) array became four per-channel delays."""
    with pytest.raises(TypeError, match=r"delay_ms must be .* flat list .* got an array of shape \(2, 2\)"):
        Edge(VEC, "r", delay_ms=np.array([[10.0, 20.0], [30.0, 40.0]]))


def test_numpy_bools_are_stored_plain_and_other_flags_named():
    """np.bool_ flags stayed numpy (the spec could not be written as YAML); gaussian=1 gave attrs' raw repr."""
    e = Edge(VEC, "r", delay_ms=15, fractional=np.True_)
    assert type(e.fractional) is bool
    yaml.safe_dump({"fractional": e.fractional})
    assert type(ConvEncoder(gaussian=np.True_).gaussian) is bool
    with pytest.raises(TypeError, match=r"^gaussian must be True or False, got 1; use e.g. gaussian=True\.$"):
        ConvEncoder(gaussian=1)


@pytest.mark.parametrize("key, value", [("max_delay_ms", 40.0), ("min_delay_ms", 10.0)])
def test_delay_bounds_without_learn_delay_are_rejected(key, value):
    """Bounds on an edge that does not learn its delay were silently ignored."""
    with pytest.raises(CircuitError, match=rf"edge 0 \(world.factors -> r\): {key}={value:g} bounds a learned "
                                           rf"delay, but learn_delay is False.*set learn_delay=True"):
        Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r", delay_ms=20, **{key: value})])


def test_a_delay_of_infinitely_many_steps_is_rejected():
    """delay_ms / dt_ms overflowing to inf ended in an OverflowError from math.ceil."""
    with pytest.raises(CircuitError, match=r"edge 0 .*delay_ms=1e\+300 is too long for dt_ms=1e-10"):
        Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r", delay_ms=1e300)], dt_ms=1e-10)
    with pytest.raises(CircuitError, match=r"edge 0 .*max_delay_ms=1e\+300 is too long"):
        Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r", learn_delay=True, max_delay_ms=1e300)], dt_ms=1e-10)


def test_algebraic_loop_message_counts_a_learned_delays_lower_bound():
    """The message added up delay_ms (10 ms here, a full step) instead of the 5 ms the delay may shrink to."""
    with pytest.raises(CircuitError, match=r"algebraic loop: the cycle .* shortest delays add up to 5 ms"):
        Circuit(nodes={"z": Blend(), "p": Extrapolator()},
                edges=[Edge(VEC, "z.drive"), Edge("z", "p", delay_ms=10, learn_delay=True, min_delay_ms=5,
                                                  max_delay_ms=20),
                       Edge("p", "z.prediction")])


def test_inertia_preset_names_dt_ms():
    """inertia(dt_ms='10') blamed delay_ms (the recurrent edge's delay is dt_ms)."""
    with pytest.raises(CircuitError, match=r"^dt_ms must be a positive number of ms, got '10'"):
        presets.inertia(dt_ms="10")


def test_delay_line_checks_its_arguments():
    """A NaN or negative delay failed deep in torch (or read the future); bounds were not checked."""
    for steps in (float("nan"), -1.0, [1.0, -2.0]):
        with pytest.raises(ValueError, match=r"DelayLine: steps must be finite and >= 0"):
            DelayLine(steps)
    with pytest.raises(ValueError, match=r"DelayLine: steps must be one delay or one per channel"):
        DelayLine([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"initial steps 2\.0 must lie in \[min_steps, max_steps\] = \[3, 4\]"):
        DelayLine(2.0, learnable=True, min_steps=3.0, max_steps=4.0)
    with pytest.raises(ValueError, match=r"finite bounds 0 <= min_steps <= max_steps"):
        DelayLine(2.0, learnable=True, min_steps=3.0, max_steps=1.0)


# ---------------------------------------------------------------- build
def test_input_shapes_and_world_are_checked():
    c = Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r")])
    with pytest.raises(TypeError, match=r"input_shapes\['world.factors'\] must be a tuple of positive ints.*got 3"):
        c.plan({VEC: 3})
    with pytest.raises(TypeError, match=r"input_shapes must be a dict .* got list"):
        c.build(input_shapes=[(3,)])
    with pytest.raises(TypeError, match=r"world must be a world spec .* got str 'moving'"):
        c.build("moving")
    with pytest.raises(ShapeError, match=r"input_shapes\['world.factors'\] = \(3,\) disagrees with the world's \(6,\)"):
        c.build(nd.MovingCircle(), input_shapes=shapes(3))  # the world's shapes used to be ignored


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


# ---------------------------------------------------------------- forward
def test_a_stream_named_like_a_trace_is_rejected(relay):
    """The node's trace was silently left out of the result."""
    x = torch.randn(2, 4, 3)
    for name in ("r", "r_mu"):
        with pytest.raises(ValueError, match=rf"streams: '{name}' names one of the circuit's traces"):
            relay({VEC: x, name: x})
    with pytest.raises(ValueError, match=r"non-empty dict of world streams .*; got list\.$"):
        relay([x])  # the message no longer prints the tensors


def test_stream_dtype_is_checked_past_nodes_without_parameters():
    """float64 frames through a relay into a float32 encoder failed inside conv2d."""
    c = Circuit(nodes={"r": Relay(), "enc": ConvEncoder()},
                edges=[Edge("world.frames", "r", delay_ms=10), Edge("r", "enc")])
    frames = torch.rand(1, 3, 1, 32, 32, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"stream 'world.frames' is torch.float64 on cpu, but the module's "
                                        r"parameters are torch.float32"):
        c.build()({"world.frames": frames})


@pytest.mark.parametrize("skip, error, match", [
    (["r"], TypeError, r"skip_before must be a dict .* got list"),
    ({"r": "a"}, ValueError, r"skip_before\['r'\] must be a whole number of steps >= 0 .* got 'a'"),
    ({"r": 2.5}, ValueError, r"got 2\.5"),  # was truncated to 2
    ({"r": -1}, ValueError, r"got -1"),
])
def test_skip_before_is_checked(relay, skip, error, match):
    with pytest.raises(error, match=match):
        relay({VEC: torch.randn(2, 4, 3)}, skip_before=skip)


@pytest.mark.parametrize("ctx, match", [
    ({"sample": True}, r"ctx must be a RunContext \(or None\), got dict"),
    (RunContext(generator=5, sample=True), r"ctx.generator must be a torch.Generator .* got int 5"),
    (RunContext(sample="yes"), r"ctx.sample must be True or False"),
])
def test_run_context_is_checked(ctx, match):
    c = Circuit(nodes={"enc": ConvEncoder(gaussian=True)}, edges=[Edge("world.frames", "enc")])
    with pytest.raises(TypeError, match=match):
        c.build()({"world.frames": torch.rand(1, 2, 1, 32, 32)}, ctx=ctx)


# ---------------------------------------------------------------- known defects, left unfixed
def test_blend_outside_a_cycle_sequence_and_step_agree_before_the_prediction_arrives():
    """Sequence mode blended before the prediction was valid when it was valid no later than the drive."""
    c = Circuit(nodes={"a": Relay(), "p": Relay(), "b": Blend(gamma=0.5)},
                edges=[Edge(VEC, "a", delay_ms=30), Edge("a", "b.drive"), Edge(VEC, "p"), Edge(VEC, "p"),
                       Edge("p", "b.prediction", delay_ms=10)])
    x = torch.randn(1, 6, 2)
    assert torch.equal(run(c, x, "sequence")["b"], run(c, x, "step")["b"])


def test_skip_before_keeps_the_draws_of_a_sampled_leaf_encoder():
    """A sampled Gaussian encoder that no node reads drew for the kept steps only under skip_before."""
    c = Circuit(nodes={"enc": ConvEncoder(gaussian=True)}, edges=[Edge("world.frames", "enc", delay_ms=10)])
    module = nd.build_seeded(c)
    frames = torch.rand(2, 5, 1, 32, 32)
    outs = []
    for skip in (None, {"enc": 2}):
        ctx = RunContext(generator=torch.Generator().manual_seed(0), sample=True)
        with torch.no_grad():
            outs.append(module({"world.frames": frames}, ctx=ctx, skip_before=skip)["enc"])
    assert torch.equal(outs[0][:, 2:], outs[1][:, 2:])
    with torch.no_grad():  # without sampling the skipped steps are still left out (zeros)
        means = module({"world.frames": frames}, skip_before={"enc": 2})["enc"]
    assert torch.count_nonzero(means[:, :2]) == 0 and torch.count_nonzero(means[:, 2:]) == means[:, 2:].numel()
