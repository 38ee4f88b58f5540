"""Loss terms on small hand-made traces: rules, scored steps, normalisation, errors."""

from __future__ import annotations

import math

import pytest
import torch

import neurodelay as nd
from neurodelay import Blend, Circuit, ConvEncoder, Edge, Relay
from neurodelay.errors import ConfigError
from neurodelay.training.objectives import Objective, Supervision, check_objective, compute_losses, scored_steps

FACTORS = ("a", "b", "c")
SHAPES = {"world.frames": (1, 2, 2), "world.factors": (3,)}


def relay_on_frames(delay_steps=1, extra_nodes=None, extra_edges=()):
    nodes = {"r": Relay(), **(extra_nodes or {})}
    edges = [Edge("world.frames", "r", delay_ms=10.0 * delay_steps), *extra_edges]
    return Circuit(nodes=nodes, edges=edges).build(input_shapes=SHAPES)


def frames_by_step(n_s=2, n_t=5):
    """Frame t of every sample is filled with the value t + 1."""
    values = torch.arange(1.0, n_t + 1).view(1, n_t, 1, 1, 1)
    return values.expand(n_s, n_t, 1, 2, 2).clone()


def streams(frames, factors=None):
    n_s, n_t = frames.shape[:2]
    if factors is None:
        factors = torch.zeros(n_s, n_t, 3)
    return {"world.frames": frames, "world.factors": factors}


# ---------------------------------------------------------------- reconstruction
@pytest.mark.parametrize("offset, steps", [(0, [1, 2, 3, 4]), (1, [1, 2, 3]), (2, [1, 2]), (-1, [1, 2, 3, 4])])
def test_gaussian_reconstruction_scores_valid_steps_against_offset_frames(offset, steps):
    m = relay_on_frames(delay_steps=1)
    x = frames_by_step()
    out = torch.zeros_like(x)
    out[:, 0] = math.nan  # step 0 is not valid (the input arrives at step 1): never scored
    losses = compute_losses(Objective(target_offset_steps=offset), {"r": out}, streams(x), m)
    # 4 pixels per frame, frame t holds t + 1; summed over steps, mean over the 2 samples.
    expected = sum(4 * (t + offset + 1) ** 2 for t in steps)
    assert losses["reconstruction"].item() == pytest.approx(expected)
    assert set(losses) == {"reconstruction", "total"}
    assert losses["total"].item() == losses["reconstruction"].item()


def test_reconstruction_is_mean_over_samples_sum_over_pixels():
    m = relay_on_frames(delay_steps=0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 4, 1, 2, 2, generator=g)
    out = torch.rand(3, 4, 1, 2, 2, generator=g)
    losses = compute_losses(Objective(), {"r": out}, streams(x), m)
    assert losses["reconstruction"].item() == pytest.approx(((out - x) ** 2).sum().item() / 3, rel=1e-6)


def test_bernoulli_reconstruction():
    m = relay_on_frames(delay_steps=1)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 4, 1, 2, 2, generator=g)
    p = torch.rand(2, 4, 1, 2, 2, generator=g) * 0.98 + 0.01
    losses = compute_losses(Objective(reconstruction="bernoulli"), {"r": p}, streams(x), m)
    bce = -(x * p.log() + (1 - x) * (1 - p).log())[:, 1:].sum() / 2
    assert losses["reconstruction"].item() == pytest.approx(bce.item(), rel=1e-5)


def test_bernoulli_is_finite_at_saturated_outputs():
    m = relay_on_frames(delay_steps=0)
    x = torch.zeros(1, 2, 1, 2, 2)
    p = torch.ones(1, 2, 1, 2, 2, requires_grad=True)
    loss = compute_losses(Objective(reconstruction="bernoulli"), {"r": p}, streams(x), m)["total"]
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(p.grad).all()


def test_score_from_step_drops_early_steps():
    m = relay_on_frames(delay_steps=1)
    x = frames_by_step()
    losses = compute_losses(Objective(score_from_step=3), {"r": torch.zeros_like(x)}, streams(x), m)
    assert losses["reconstruction"].item() == pytest.approx(4 * (4**2 + 5**2))


def test_no_scored_step_is_an_error():
    m = relay_on_frames(delay_steps=3)
    x = frames_by_step(n_t=5)
    with pytest.raises(ConfigError, match=r"objective.target_offset_steps: .*scores no step.*valid from step 3"):
        compute_losses(Objective(target_offset_steps=2), {"r": x}, streams(x), m)
    with pytest.raises(ConfigError, match=r"scores no step"):
        check_objective(Objective(target_offset_steps=2), m, FACTORS, n_frames=5)
    check_objective(Objective(target_offset_steps=1), m, FACTORS, n_frames=5)


# ---------------------------------------------------------------- KL
def gaussian_encoder(n_latents=2, delay_steps=2):
    circuit = Circuit(nodes={"enc": ConvEncoder(n_latents=n_latents, size=16, gaussian=True)},
                      edges=[Edge("world.frames", "enc", delay_ms=10.0 * delay_steps)])
    return circuit.build(input_shapes={"world.frames": (1, 16, 16), "world.factors": (3,)})


def kl_traces(n_s=2, n_t=5, n_latents=2):
    mu = torch.ones(n_s, n_t, n_latents)  # KL per latent with logvar 0: mu^2 / 2 = 0.5
    logvar = torch.zeros(n_s, n_t, n_latents)
    mu[:, :2] = math.nan  # steps 0, 1 precede the first input: never scored
    return {"enc": mu.clone(), "enc_mu": mu, "enc_logvar": logvar}


def test_kl_closed_form_and_beta():
    m = gaussian_encoder()
    x = torch.zeros(2, 5, 1, 16, 16)
    losses = compute_losses(Objective(reconstruction=None, beta=2.0), kl_traces(), streams(x), m)
    # 2 latents * 0.5 * 3 valid steps (2, 3, 4), times beta 2.
    assert losses["kl"].item() == pytest.approx(2.0 * 2 * 0.5 * 3)
    assert set(losses) == {"kl", "total"}


def test_kl_general_values():
    m = gaussian_encoder(delay_steps=0)
    g = torch.Generator().manual_seed(2)
    mu, logvar = torch.randn(3, 4, 2, generator=g), torch.randn(3, 4, 2, generator=g)
    traces = {"enc": mu, "enc_mu": mu, "enc_logvar": logvar}
    losses = compute_losses(Objective(reconstruction=None, beta=1.0), traces,
                            streams(torch.zeros(3, 4, 1, 16, 16)), m)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum() / 3
    assert losses["kl"].item() == pytest.approx(ref.item(), rel=1e-5)


@pytest.mark.parametrize("n_latents", [2, 4])
def test_beta_norm_scales_with_pixels_per_latent(n_latents):
    m = gaussian_encoder(n_latents=n_latents)
    x = torch.zeros(2, 5, 1, 16, 16)
    losses = compute_losses(Objective(reconstruction=None, beta_norm=0.01), kl_traces(n_latents=n_latents),
                            streams(x), m)
    beta = 0.01 * 256 / n_latents
    assert losses["kl"].item() == pytest.approx(beta * n_latents * 0.5 * 3)


# ---------------------------------------------------------------- prediction
def inertia_module(gaussian=False, seed=0, **kw):
    return nd.build_seeded(nd.presets.inertia(size=16, gaussian=gaussian, **kw),
                           input_shapes={"world.frames": (1, 16, 16), "world.factors": (6,)}, seed=seed)


def test_prediction_term_is_hand_written_sum_from_step_3_for_inertia():
    """The inertia preset encodes frame t at step t + 1: its first true extrapolation (from frames 0 and 1,
    t >= 2 of the intended loss) arrives at step 3; at step 2 it reads z at step 0, before z is valid."""
    m = inertia_module(gamma=0.3, alpha=1.0)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 6, 1, 16, 16, generator=g)
    st = {"world.frames": x, "world.factors": torch.zeros(3, 6, 6)}
    traces = m(st)
    losses = compute_losses(Objective(reconstruction=None, prediction=0.5), traces, st, m)
    z = traces["z"]
    expected = 0.0
    for t in range(3, 6):
        zhat = z[:, t - 1] + 1.0 * (z[:, t - 1] - z[:, t - 2])
        expected = expected + ((z[:, t] - zhat) ** 2).sum()
    expected = 0.5 * expected / 3
    assert losses["prediction"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert scored_steps(Objective(prediction=1.0), m, 6)["prediction"] == range(3, 6)


@pytest.mark.parametrize("input_delay_ms, alpha, first", [(0.0, 1.0, 2), (0.0, 0.5, 2), (0.0, 0.0, 1),
                                                          (20.0, 1.0, 4)])
def test_the_prediction_term_scores_true_extrapolations_only(input_delay_ms, alpha, first):
    """The intended loss (docs/original-study.md 4.2): sum over t >= 2 of ||z_t - zhat_t||^2
    with z_t the encoding of frame t.
    Without an input delay the extrapolation arrives at step 1 as zhat_1 = z_0 (the delay line holds z_0):
    not scored. With alpha = 0, zhat_t = z_(t-1) is exact from step 1."""
    m = inertia_module(gamma=0.0, alpha=alpha, input_delay_ms=input_delay_ms)
    assert scored_steps(Objective(prediction=1.0), m, 10)["prediction"] == range(first, 10)
    g = torch.Generator().manual_seed(4)
    st = {"world.frames": torch.rand(2, 10, 1, 16, 16, generator=g), "world.factors": torch.zeros(2, 10, 6)}
    traces = m(st)
    z = traces["z"]
    expected = sum(((z[:, t] - (z[:, t - 1] + alpha * (z[:, t - 1] - z[:, t - 2]))) ** 2).sum()
                   for t in range(first, 10)) / 2
    got = compute_losses(Objective(reconstruction=None, prediction=1.0), traces, st, m)["prediction"]
    assert got.item() == pytest.approx(float(expected.detach()), rel=1e-5)


def test_prediction_reads_delays_into_the_prediction_port():
    # z.prediction fed by world.factors' first node with a 2-step delay on the edge into the port.
    vec = "world.factors"
    c = Circuit(nodes={"d": Relay(), "p": Relay(), "z": Blend(gamma=0.5)},
                edges=[Edge(vec, "d"), Edge(vec, "p"), Edge("d", "z.drive"),
                       Edge("p", "z.prediction", delay_ms=20.0)])
    m = c.build(input_shapes=SHAPES)
    n_t = 5
    d = torch.zeros(1, n_t, 3)
    p = torch.arange(n_t, dtype=torch.float32).view(1, n_t, 1).expand(1, n_t, 3)
    z = torch.zeros(1, n_t, 3)
    losses = compute_losses(Objective(reconstruction=None, prediction=1.0), {"d": d, "p": p, "z": z},
                            {"world.factors": torch.zeros(1, n_t, 3)}, m)
    # zhat_t = p_{t-2}, scored from step 2: 3 * (0^2 + 1^2 + 2^2)
    assert losses["prediction"].item() == pytest.approx(3 * (0 + 1 + 4))


def test_inertia_with_score_from_step_2_is_the_original_loss():
    """docs/original-study.md §3: dec(z_1..z_8) against x_2..x_9, original recurrence, sum / batch."""
    gamma = 0.4
    m = inertia_module(gamma=gamma, alpha=1.0)
    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, 10, 1, 16, 16, generator=g)
    st = {"world.frames": x, "world.factors": torch.zeros(2, 10, 6)}
    with torch.no_grad():
        traces = m(st)
        ours = compute_losses(Objective(score_from_step=2), traces, st, m)["reconstruction"]
        enc, dec = m.nodes["enc"], m.nodes["dec"]
        z_enc = [enc.frame(x[:, i], nd.RunContext())[0] for i in range(9)]  # x_9 is never encoded
        z = [z_enc[0]]
        zhat = z_enc[0]
        for i in range(1, 9):
            z.append((1 - gamma) * z_enc[i] + gamma * zhat)
            zhat = z[i] + (z[i] - z[i - 1])
        ref = sum(((dec.frame(z[i], None)[0] - x[:, i + 1]) ** 2).sum() for i in range(1, 9)) / 2
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    # The default also scores step 1 (dec(z_0) against x_1): one step more.
    assert scored_steps(Objective(), m, 10)["reconstruction"] == range(1, 10)
    assert scored_steps(Objective(score_from_step=2), m, 10)["reconstruction"] == range(2, 10)


def test_quickstart_scored_steps():
    m = nd.presets.inertia(n_latents=4, gamma=0.5, alpha=1.0, input_delay_ms=10).build()
    steps = scored_steps(Objective(reconstruction="gaussian", beta=0.0), m, 10)
    assert steps == {"reconstruction": range(1, 10)}


# ---------------------------------------------------------------- supervision
def vector_relay(delay_steps=0):
    c = Circuit(nodes={"v": Relay()}, edges=[Edge("world.factors", "v", delay_ms=10.0 * delay_steps)])
    return c.build(input_shapes=SHAPES)


def test_supervision_picks_named_factors_in_order_with_offset():
    m = vector_relay(delay_steps=1)
    n_t = 5
    factors = torch.zeros(2, n_t, 3)
    factors[..., 2] = torch.arange(n_t, dtype=torch.float32)  # "c" = t
    factors[..., 0] = 10.0  # "a"
    factors[..., 1] = 3.0  # "b"
    out = torch.zeros(2, n_t, 3)
    out[..., 2] = 3.0  # matches "b" in the third channel
    out[:, 0] = math.nan
    obj = Objective(reconstruction=None,
                    supervise=[Supervision("v", ["c", "a", "b"], weight=2.0, offset_steps=1)])
    losses = compute_losses(obj, {"v": out}, {"world.factors": factors}, m, factor_names=FACTORS)
    # steps 1..3 against factors at 2..4: channel c = t + 1, channel a = 10.
    expected = 2.0 * sum((t + 1) ** 2 + 100 for t in (1, 2, 3))
    assert losses["supervise_v"].item() == pytest.approx(expected)
    assert set(losses) == {"supervise_v", "total"}


def test_supervision_needs_factor_names():
    m = vector_relay()
    obj = Objective(reconstruction=None, supervise=[Supervision("v", ["a", "b", "c"])])
    with pytest.raises(ConfigError, match="pass factor_names"):
        compute_losses(obj, {"v": torch.zeros(1, 2, 3)}, {"world.factors": torch.zeros(1, 2, 3)}, m)


def test_total_is_sum_of_weighted_terms():
    m = inertia_module(gaussian=True)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(2, 5, 1, 16, 16, generator=g)
    st = {"world.frames": x, "world.factors": torch.rand(2, 5, 6, generator=g)}
    traces = m(st, ctx=nd.RunContext(generator=torch.Generator().manual_seed(0), sample=True))
    obj = Objective(beta=0.1, prediction=2.0, supervise=[Supervision("z", ["a", "b", "c", "d"], weight=0.5)])
    losses = compute_losses(obj, traces, st, m, factor_names=("a", "b", "c", "d", "e", "f"))
    assert list(losses) == ["reconstruction", "kl", "prediction", "supervise_z", "total"]
    assert losses["total"].item() == pytest.approx(sum(v.item() for k, v in losses.items() if k != "total"),
                                                   rel=1e-6)
    losses["total"].backward()
    assert all(p.grad is not None for p in m.parameters())


# ---------------------------------------------------------------- checks and messages
def test_reconstruct_unknown_node():
    m = inertia_module()
    with pytest.raises(ConfigError, match=r"objective.reconstruct: node 'decc' does not exist \(did you "
                                          r"mean 'dec'\?\); the circuit's nodes are enc, z, pred, dec"):
        check_objective(Objective(reconstruct="decc"), m)


def test_reconstruct_wrong_shape():
    m = inertia_module()
    with pytest.raises(ConfigError, match=r"objective.reconstruct: node 'z' outputs shape \(4,\) .* \(1, 16, 16\)"):
        check_objective(Objective(reconstruct="z"), m)


def test_reconstruct_auto_none_and_several():
    m = vector_relay()
    with pytest.raises(ConfigError, match=r"no node reads world.frames"):
        check_objective(Objective(), m)
    m = gaussian_encoder()
    with pytest.raises(ConfigError, match=r"no node outputs images of the frames' shape \(1, 16, 16\).*"
                                          r"reconstruction: null"):
        check_objective(Objective(), m)
    m = relay_on_frames(extra_nodes={"r2": Relay()}, extra_edges=[Edge("world.frames", "r2")])
    with pytest.raises(ConfigError, match=r"nodes r, r2 all output images .* reconstruct: r2"):
        check_objective(Objective(), m)
    check_objective(Objective(reconstruct="r2"), m)


def test_kl_without_gaussian_latent():
    m = inertia_module(gaussian=False)
    with pytest.raises(ConfigError, match=r"objective.beta = 0.5 asks for a KL term, but no node has a "
                                          r"Gaussian latent; set gaussian: true"):
        check_objective(Objective(beta=0.5), m)
    with pytest.raises(ConfigError, match=r"objective.beta_norm = 0.1 asks for a KL term"):
        check_objective(Objective(beta_norm=0.1), m)


def test_beta_and_beta_norm_together():
    m = inertia_module(gaussian=True)
    with pytest.raises(ConfigError, match=r"objective.beta_norm: give beta or beta_norm, not both"):
        check_objective(Objective(beta=1.0, beta_norm=0.1), m)


def test_prediction_without_blend():
    m = relay_on_frames()
    with pytest.raises(ConfigError, match=r"objective.prediction = 1.0 .* the circuit has none"):
        check_objective(Objective(prediction=1.0), m)


def test_supervision_errors():
    m = inertia_module()
    names = ("blob_x", "blob_y", "circle_x", "circle_y", "circle_vx", "circle_vy")
    pos = ("blob_x", "blob_y", "circle_x", "circle_y")

    def check(*sups):
        check_objective(Objective(supervise=list(sups)), m, names)

    with pytest.raises(ConfigError, match=r"objective.supervise\[0\].node: node 'zz' does not exist "
                                          r"\(did you mean 'z'\?\)"):
        check(Supervision("zz", pos))
    with pytest.raises(ConfigError, match=r"objective.supervise\[0\].factors: node 'z' has 4 channels but 2 "
                                          r"factors are given"):
        check(Supervision("z", pos[:2]))
    with pytest.raises(ConfigError, match=r"objective.supervise\[0\].factors\[2\]: the world has no factor "
                                          r"'circle_xx' \(did you mean 'circle_x'\?\); its factors are blob_x, "):
        check(Supervision("z", ("blob_x", "blob_y", "circle_xx", "circle_y")))
    with pytest.raises(ConfigError, match=r"objective.supervise\[0\].node: node 'dec' outputs shape "
                                          r"\(1, 16, 16\), but supervision needs a vector"):
        check(Supervision("dec", pos))
    with pytest.raises(ConfigError, match=r"objective.supervise\[1\].node: node 'z' is already supervised"):
        check(Supervision("z", pos), Supervision("z", pos))
    with pytest.raises(ConfigError, match=r"objective.supervise\[0\].factors is empty"):
        check(Supervision("z", ()))
    check(Supervision("enc", pos), Supervision("z", pos))


def test_empty_objective():
    m = inertia_module()
    with pytest.raises(ConfigError, match=r"objective has no active term"):
        check_objective(Objective(reconstruction=None), m)


def test_spec_validators():
    with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
        Objective(beta=-1.0)
    with pytest.raises(ValueError, match="target_offset_steps must be an integer"):
        Objective(target_offset_steps=0.5)
    with pytest.raises(ValueError, match="score_from_step must be an integer >= 0"):
        Objective(score_from_step=-1)
    with pytest.raises(ValueError):
        Objective(reconstruction="laplace")


def test_compute_losses_and_step_helpers_check_their_arguments():
    m = relay_on_frames()
    obj = Objective(reconstruct="r")
    x = frames_by_step()
    traces = m(streams(x))
    with pytest.raises(ValueError, match=r"stream 'world.frames' has \(sample, time\) = \(2, 7\) but trace 'r' "
                                         r"has \(2, 5\); pass the streams the traces were computed from"):
        compute_losses(obj, traces, streams(frames_by_step(n_t=7)), m)
    with pytest.raises(ValueError, match=r"traces must be the circuit's output"):
        compute_losses(obj, {}, streams(x), m)
    with pytest.raises(TypeError, match=r"module must be a built circuit \(CircuitModule\), got Circuit"):
        check_objective(obj, m.circuit)
    for bad in (2.7, -3, True):
        with pytest.raises(ValueError, match=r"n_frames must be a whole number of frames >= 1"):
            scored_steps(obj, m, bad)
    assert scored_steps(obj, m, 5)["reconstruction"] == range(1, 5)


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
