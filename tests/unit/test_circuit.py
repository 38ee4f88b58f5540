"""Circuit structure, errors, presets and execution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

import neurodelay as nd
from neurodelay import Blend, Circuit, CircuitError, ConvDecoder, ConvEncoder, Edge, Extrapolator, Relay
from neurodelay import presets
from neurodelay.errors import ShapeError, TimeGridError
from tests.helpers import VEC, linear_inertia, run, shapes


FRAMES = {"world.frames": (1, 32, 32), "world.factors": (6,)}


def frames(n=3, n_t=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, n_t, 1, 32, 32, generator=g)


# ---------------------------------------------------------------- errors
def test_unknown_target_node_suggests():
    with pytest.raises(CircuitError, match=r"edge 0 .*target node 'rly' does not exist; did you mean 'rel'"):
        Circuit(nodes={"rel": Relay()}, edges=[Edge(VEC, "rly")])


def test_unknown_source_node():
    with pytest.raises(CircuitError, match=r"edge 1 \(ghost -> r\): source 'ghost' is not a node"):
        Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r"), Edge("ghost", "r")])


def test_unknown_port_lists_ports():
    with pytest.raises(CircuitError, match=r"node 'z' \(blend\) has no port 'drve'; its ports are drive, "
                                           r"prediction; did you mean 'drive'"):
        Circuit(nodes={"z": Blend()}, edges=[Edge(VEC, "z.drve")])


def test_port_needed_for_multi_port_node():
    with pytest.raises(CircuitError, match=r"has ports drive, prediction; name one, e.g. 'z.drive'"):
        Circuit(nodes={"z": Blend()}, edges=[Edge(VEC, "z")])


def test_unconnected_port():
    with pytest.raises(CircuitError, match=r"node 'z' \(blend\): port\(s\) prediction have no incoming edge"):
        Circuit(nodes={"z": Blend()}, edges=[Edge(VEC, "z.drive")])


def test_negative_delay():
    with pytest.raises(TimeGridError, match=r"delay_ms must be >= 0 .* got -10.0"):
        Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r", delay_ms=-10)])


def test_delay_not_whole_steps_names_nearest():
    with pytest.raises(TimeGridError, match=r"edge 0 \(world.factors -> r\): delay_ms=25 is not a whole "
                                            r"number of steps of dt_ms=10. Nearest valid values: 20 or 30 ms"):
        Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r", delay_ms=25)])


def test_zero_delay_cycle_names_nodes():
    with pytest.raises(CircuitError, match=r"algebraic loop: the cycle (z -> p -> z|p -> z -> p)"):
        Circuit(nodes={"z": Blend(), "p": Extrapolator()},
                edges=[Edge(VEC, "z.drive"), Edge("z", "p"), Edge("p", "z.prediction")])


def test_undriven_cycle():
    with pytest.raises(CircuitError, match=r"never receive a signal from the world"):
        Circuit(nodes={"a": Relay(), "b": Relay()},
                edges=[Edge("a", "b", delay_ms=10), Edge("b", "a", delay_ms=10)])


def test_shape_mismatch_names_edge_and_shapes():
    c = Circuit(nodes={"enc": ConvEncoder(n_latents=4), "dec": ConvDecoder(n_latents=8)},
                edges=[Edge("world.frames", "enc"), Edge("enc", "dec")])
    with pytest.raises(ShapeError, match=r"edge 1 \(enc -> dec.in\): enc has shape \(4,\) but node 'dec' "
                                         r"\(conv_decoder\) port 'in' expects vectors of shape \(8,\)"):
        c.build(input_shapes=FRAMES)


def test_image_size_mismatch():
    c = Circuit(nodes={"enc": ConvEncoder(size=64)}, edges=[Edge("world.frames", "enc")])
    with pytest.raises(ShapeError, match=r"world.frames has shape \(1, 32, 32\) .* expects images of shape "
                                         r"\(1, 64, 64\)"):
        c.build(input_shapes=FRAMES)


def test_blend_shapes_must_match():
    c = Circuit(nodes={"z": Blend()}, edges=[Edge("world.factors", "z.drive"),
                                             Edge("world.frames", "z.prediction")])
    with pytest.raises(ShapeError, match=r"port 'prediction' expects the same shape as the drive, \(6,\)"):
        c.build(input_shapes=FRAMES)


def test_per_channel_delay_needs_matching_vector():
    c = Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r", delay_ms=[0, 10, 20])])
    with pytest.raises(ShapeError, match=r"3 per-channel delays need a vector source of 3 channels, but "
                                         r"'world.factors' has shape \(6,\)"):
        c.build(input_shapes=FRAMES)


@pytest.mark.parametrize("gamma", [-0.1, 1.5, float("nan")])
def test_gamma_outside_unit_interval(gamma):
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\], got"):
        Blend(gamma=gamma)


def test_learn_delay_needs_bound():
    with pytest.raises(CircuitError, match=r"learn_delay needs max_delay_ms"):
        Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r", delay_ms=10, learn_delay=True)])


def test_world_stream_must_exist():
    c = Circuit(nodes={"r": Relay()}, edges=[Edge("world.velocity", "r")])
    with pytest.raises(CircuitError, match=r"the world has no stream 'world.velocity'; available: "):
        c.build(input_shapes=FRAMES)


def test_reserved_node_name():
    with pytest.raises(CircuitError, match=r"node name 'world' is not allowed"):
        Circuit(nodes={"world": Relay()}, edges=[Edge(VEC, "world")])


# ---------------------------------------------------------------- presets
def test_backbone_parameter_counts():
    ae = nd.presets.inertia(n_latents=4).build(input_shapes=FRAMES)
    vae = nd.presets.inertia(n_latents=4, gaussian=True).build(input_shapes=FRAMES)
    assert sum(p.numel() for p in vae.parameters()) == 133_257
    assert sum(p.numel() for p in ae.parameters()) == 133_257 - (256 * 4 + 4)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.75, 1.0])
def test_inertia_preset_reproduces_original_recurrence(gamma):
    module = nd.presets.inertia(n_latents=4, gamma=gamma, alpha=1.0, input_delay_ms=10).build(
        input_shapes=FRAMES)
    with torch.no_grad():
        tr = module({"world.frames": frames()})
    # Original: z_enc_i = enc(x_i), here enc[:, i + 1] (one step of input delay).
    z_enc = tr["enc"][:, 1:].double()
    z_prev = z = z_enc[:, 0]  # z_0 = z_enc_0, zhat_1 = z_0
    zhat = z_enc[:, 0]
    want = [z]
    for i in range(1, 9):
        z = (1 - gamma) * z_enc[:, i] + gamma * zhat
        zhat = z + (z - z_prev)
        z_prev = z
        want.append(z)
    want = torch.stack(want, dim=1)
    torch.testing.assert_close(tr["z"][:, 1:].double(), want, rtol=0, atol=1e-6)


def test_inertia_gamma_one_dreams_a_static_scene():
    module = nd.presets.inertia(gamma=1.0).build(input_shapes=FRAMES)
    with torch.no_grad():
        z = module({"world.frames": frames()}, mode="sequence")["z"]
        z_fast = module({"world.frames": frames()})["z"]
    assert torch.equal(z, z[:, :1].expand_as(z))
    torch.testing.assert_close(z_fast, z, rtol=0, atol=1e-7)


def test_sequence_and_step_modes_agree_with_conv_areas():
    module = nd.presets.inertia(gamma=0.4, alpha=0.5, input_delay_ms=20).build(input_shapes=FRAMES)
    x = {"world.frames": frames(n_t=8)}
    with torch.no_grad():
        a, b = module(x), module(x, mode="step")
    assert a.keys() == b.keys() == {"enc", "z", "pred", "dec"}
    for k in a:
        # Convolutions over a batch of 3 (step) or 24 (folded) frames may pick
        # different kernels: equal to float32 rounding.
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_schedule_describes_groups_and_delays():
    text = nd.presets.inertia(input_delay_ms=20).describe(FRAMES)
    assert "enc: whole sequence" in text
    assert "pred -> z: steps through time" in text
    assert "world.frames -> enc.in: 2 = 20.0 ms" in text
    assert "pred: step 3 (30 ms)" in text


def test_gaussian_encoder_records_mu_logvar_and_samples_only_when_asked():
    module = nd.presets.inertia(gaussian=True).build(input_shapes=FRAMES)
    x = {"world.frames": frames()}
    with torch.no_grad():
        det = module(x)
        g = torch.Generator().manual_seed(0)
        s1 = module(x, ctx=nd.RunContext(generator=g, sample=True))
        g = torch.Generator().manual_seed(0)
        s2 = module(x, ctx=nd.RunContext(generator=g, sample=True))
    assert {"enc_mu", "enc_logvar"} <= det.keys()
    assert torch.equal(det["enc"], det["enc_mu"])
    assert torch.equal(s1["enc"], s2["enc"])
    assert not torch.equal(s1["enc"], det["enc"])


def test_learned_delay_gets_gradient():
    c = Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r", delay_ms=15, learn_delay=True, max_delay_ms=40)])
    module = c.build(input_shapes=shapes(1))
    x = torch.arange(10.0).view(1, 10, 1) ** 2
    out = module({VEC: x})["r"]
    out[:, 5:].sum().backward()
    (param,) = list(module.parameters())
    assert param.grad is not None and param.grad.abs().item() > 0


def test_summed_inputs_into_one_port():
    c = Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r"), Edge(VEC, "r", delay_ms=10)])
    x = torch.randn(2, 5, 3)
    out = run(c, x)["r"]
    torch.testing.assert_close(out, x + torch.cat([x[:, :1], x[:, :-1]], 1))


def test_linear_loop_valid_steps():
    plan = linear_inertia(0.5, 1.0, 3).plan(shapes(2))
    assert plan.valid_from["enc"] == 3 and plan.valid_from["z"] == 3 and plan.valid_from["pred"] == 4


@pytest.fixture(scope="module")
def inertia_32px():
    return nd.build_seeded(nd.presets.inertia(2), world=nd.MovingCircle()), nd.MovingCircle().sample(2)


@pytest.mark.parametrize("streams, error, match", [
    (lambda ep: nd.MovingCircle(size=64).sample(2).streams(), ShapeError,
     r"'world.frames': this module was built for steps of shape \(1, 32, 32\).*got a tensor of shape "
     r"\(2, 10, 1, 64, 64\); build the circuit"),
    (lambda ep: {}, ValueError, r"non-empty dict of world streams"),
    (lambda ep: {"world.factors": ep.factors}, ValueError, r"reads 'world.frames', which streams lacks"),
    (lambda ep: {"world.frames": ep.frames.double()}, TypeError,
     r"torch.float64 on cpu, but the module's parameters are torch.float32"),
    (lambda ep: {"world.frames": (ep.frames * 255).to(torch.uint8)}, TypeError, r"dtype torch.uint8.*\.float\(\)"),
    (lambda ep: {"world.frames": ep.frames.numpy()}, TypeError, r"must be a torch.Tensor .* got ndarray"),
    (lambda ep: {"world.frames": ep.frames[:0]}, ValueError, r"0 samples and 10 steps"),
    (lambda ep: {"world.frames": ep.frames[0]}, ShapeError, r"got a tensor of shape \(10, 1, 32, 32\)"),
])
def test_streams_are_checked_against_the_built_module(inertia_32px, streams, error, match):
    module, ep = inertia_32px
    with pytest.raises(error, match=match):
        module(streams(ep))


def test_streams_must_agree_on_samples_and_steps():
    c = Circuit(nodes={"a": Relay(), "b": Relay()}, edges=[Edge("world.frames", "a"), Edge(VEC, "b")])
    m = c.build(input_shapes={"world.frames": (1, 4, 4), VEC: (3,)})
    with pytest.raises(ShapeError, match=r"disagree on \(sample, time\): 'world.factors' has \(2, 5\), "
                                         r"'world.frames' has \(2, 6\)"):
        m({"world.frames": torch.rand(2, 6, 1, 4, 4), VEC: torch.rand(2, 5, 3)})
    out = m({"world.frames": torch.rand(2, 5, 1, 4, 4), VEC: torch.rand(2, 5, 3, dtype=torch.float64)})
    assert out["b"].dtype == torch.float64  # parameterless nodes take any float dtype


def test_node_name_may_not_clash_with_an_auxiliary_trace():
    with pytest.raises(CircuitError, match=r"'enc_mu' clashes with the auxiliary trace 'enc_mu' of node 'enc'"):
        Circuit(nodes={"enc": ConvEncoder(gaussian=True), "enc_mu": Relay()},
                edges=[Edge("world.frames", "enc"), Edge("enc", "enc_mu")]).build()


def test_simulate_keeps_nodes_named_like_dataset_variables():
    """simulate() stores them as node_<name>, as results.nc does, instead of
    losing them to the world's data or the dataset's dimensions."""
    c = Circuit(nodes={"x": Relay(), "frames": Relay(), "time": Relay(), "factors": Relay()},
                edges=[Edge(VEC, n) for n in ("x", "frames", "time", "factors")])
    ep = nd.MovingCircle(n_frames=3).sample(2)
    ds = nd.simulate(c, ep)
    for n in ("x", "frames", "time", "factors"):
        assert ds[f"node_{n}"].attrs["node"] == n
        assert (ds[f"node_{n}"].values == ep.factors.numpy()).all()
    assert ds["frames"].dims == ("sample", "time", "y", "x")
    assert (ds["frames"].values == ep.frames[:, :, 0].numpy()).all()


@pytest.mark.parametrize("make, error, match", [
    (lambda: Circuit(nodes={"r": Relay()}, edges=[Edge(VEC, "r")], dt_ms="abc"), TypeError,
     r"dt_ms must be a number of ms .* got 'abc'"),
    (lambda: Circuit(nodes={"r": Relay()}, edges=[(VEC, "r")]), TypeError,
     r"edges\[0\] must be an Edge, got tuple .*; write Edge\('world.factors', 'r'\)"),
    (lambda: Circuit(nodes={"r": Relay()}, edges="world.factors"), TypeError, r"edges must be a list of Edge"),
    (lambda: Edge(VEC, "r", delay_ms=[]), TypeError, r"delay_ms is an empty list"),
    (lambda: Edge(VEC, "r", delay_ms="20"), TypeError, r"delay_ms must be a number of ms .* got '20'"),
    (lambda: Edge(VEC, "r", delay_ms=[10, None]), TypeError, r"got \[10, None\]"),
    (lambda: Edge(VEC, "r", max_delay_ms="20"), ValueError, r"Edge.max_delay_ms must be a finite number of ms"),
    (lambda: Edge(VEC, "r", min_delay_ms=None), ValueError, r"Edge.min_delay_ms must be a finite number"),
    (lambda: Edge(VEC, "r", fractional="no"), TypeError, r"Edge.fractional must be True or False, got 'no'"),
    (lambda: Edge(3, "r"), TypeError, r"Edge.source must be a string .* got 3"),
])
def test_edge_and_circuit_arguments_are_checked(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_edge_and_circuit_accept_numpy_numbers_and_a_single_edge():
    import numpy as np

    e = Edge(VEC, "r", delay_ms=np.float64(20))
    assert e.delay_ms == 20.0 and type(e.delay_ms) is float
    assert Edge(VEC, "r", delay_ms=np.array(20.0)).delay_ms == 20.0
    assert Edge(VEC, "r", delay_ms=np.array([10.0, 20.0])).delay_ms == (10.0, 20.0)
    c = Circuit(nodes={"r": Relay()}, edges=Edge(VEC, "r"), dt_ms=np.int64(10))
    assert c.edges == (Edge(VEC, "r"),) and c.dt_ms == 10.0


def test_describe_takes_a_world_like_build_and_lists_no_unknown_shapes():
    world = nd.MovingCircle(size=32)
    circuit = nd.presets.inertia(2)
    by_world = circuit.describe(world)
    assert by_world == circuit.describe({"world.frames": (1, 32, 32), "world.factors": (6,)})
    assert "enc: step 1 (10 ms), shape (2,)" in by_world
    bare = circuit.describe()
    assert "enc: step 1 (10 ms)\n" in bare and "shape None" not in bare


# --------------------------------------------------------------------------
# Bad specs that used to fail deep inside torch or silently
# --------------------------------------------------------------------------


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
