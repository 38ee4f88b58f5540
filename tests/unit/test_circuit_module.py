"""circuit.module (CircuitModule): inputs that used to fail deep inside torch or silently, and its two paths.

Each test names the defect it guards. The spec's cases are in test_circuit.py,
build_seeded's and simulate's in test_simulation.py.
"""

from __future__ import annotations

import pytest
import torch

import neurodelay as nd
from neurodelay import Blend, Circuit, ConvEncoder, Edge, Relay
from neurodelay.components.base import RunContext
from neurodelay.errors import ShapeError
from tests.helpers import VEC, run, shapes


@pytest.fixture(scope="module")
def relay():
    return Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r")]).build(input_shapes=shapes(3))


# ---------------------------------------------------------------- specs


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
