"""Property tests of delays, extrapolation, blending and execution modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from neurodelay import Blend, Circuit, Edge, Extrapolator, Relay
from neurodelay.circuit import linear as _linear
from neurodelay.components import delay_sequence, shift
from neurodelay.components.delays import time_window
from neurodelay.testing.strategies import signals
from tests.helpers import VEC, linear_inertia, relay_chain, run, shapes

DT = 10.0


def signal(data, n_t, n_c=None, dtype=torch.float64):
    """Two samples of n_t steps of a standard normal signal with n_c (drawn: 1 to 4) channels."""
    return data.draw(signals(n_t, n_c, dtype=dtype), label="signal")


@given(st.data())
def test_delay_equals_shift(data):
    n_t = data.draw(st.integers(1, 30), label="n_t")
    d = data.draw(st.integers(0, n_t + 2), label="delay")
    x = signal(data, n_t)
    out = run(relay_chain([d * DT]), x)["r0"]
    idx = [max(t - d, 0) for t in range(n_t)]
    assert torch.equal(out, x[:, idx])


@given(st.data())
def test_shift_and_window_gradients_are_autograds_to_the_bit(data):
    """The one-pass backwards of shift and time_window give the gradient that
    autograd gives for the same cat and slices, bit for bit (the held first
    value collects the gradients of the first k + 1 steps)."""
    n_t = data.draw(st.integers(1, 12), label="n_t")
    k = data.draw(st.integers(1, n_t + 2), label="k")
    start = data.draw(st.integers(0, n_t - 1), label="start")
    length = data.draw(st.integers(1, n_t - start), label="length")
    x = signal(data, n_t, dtype=torch.float32).requires_grad_()
    w = signal(data, n_t, x.shape[-1], dtype=torch.float32)
    kk = min(k, n_t)

    def plain_shift(x):
        return torch.cat([x[:, :1].expand(x.shape[0], kk, *x.shape[2:]), x[:, : n_t - kk]], dim=1)

    for fast, plain, weight in (
        (lambda x: shift(x, k), plain_shift, w),
        (lambda x: time_window(x, start, length), lambda x: x[:, start:start + length], w[:, :length]),
    ):
        g_fast, = torch.autograd.grad((fast(x) * weight).sum(), x)
        g_plain, = torch.autograd.grad((plain(x) * weight).sum(), x)
        assert torch.equal(fast(x), plain(x))
        assert torch.equal(g_fast, g_plain)


@given(st.data())
def test_delays_add(data):
    n_t = data.draw(st.integers(1, 30), label="n_t")
    d1 = data.draw(st.integers(0, n_t), label="d1")
    d2 = data.draw(st.integers(0, n_t), label="d2")
    x = signal(data, n_t)
    two = run(relay_chain([d1 * DT, d2 * DT]), x)["r1"]
    one = run(relay_chain([(d1 + d2) * DT]), x)["r0"]
    assert torch.equal(two, one)


@given(st.data())
def test_per_channel_delays_shift_each_channel(data):
    n_t = data.draw(st.integers(1, 25), label="n_t")
    n_c = data.draw(st.integers(1, 5), label="n_c")
    ds = data.draw(st.lists(st.integers(0, n_t + 1), min_size=n_c, max_size=n_c), label="delays")
    x = signal(data, n_t, n_c)
    out = run(relay_chain([[d * DT for d in ds]]), x)["r0"]
    for c, d in enumerate(ds):
        idx = [max(t - d, 0) for t in range(n_t)]
        assert torch.equal(out[:, :, c], x[:, idx, c])


@given(st.data())
def test_fractional_delay_interpolates_linearly(data):
    n_t = data.draw(st.integers(2, 25), label="n_t")
    d = data.draw(st.floats(0, n_t - 1, allow_nan=False), label="delay_steps")
    x = signal(data, n_t)
    out = run(relay_chain([d * DT], fractional=True), x)["r0"]
    k, f = int(np.floor(d)), d - np.floor(d)
    for t in range(n_t):
        hi, lo = x[:, max(t - k, 0)], x[:, max(t - k - 1, 0)]
        want = (1 - f) * hi + f * lo
        torch.testing.assert_close(out[:, t], want, rtol=1e-9, atol=1e-9 * float(x.abs().max()))


@given(st.data())
def test_fractional_delay_gradient_matches_finite_differences(data):
    n_t = data.draw(st.integers(3, 20), label="n_t")
    d0 = data.draw(st.floats(0.05, n_t - 2, allow_nan=False).filter(lambda v: abs(v - round(v)) > 0.02),
                   label="delay_steps")
    n_c = data.draw(st.integers(1, 3), label="n_c")
    x = signal(data, n_t, n_c)
    w = signal(data, n_t, n_c)
    d = torch.tensor(d0, dtype=torch.float64, requires_grad=True)
    loss = (delay_sequence(x, d) * w).sum()
    (grad,) = torch.autograd.grad(loss, d)
    eps = 1e-4  # stays within one interpolation segment thanks to the filter above
    with torch.no_grad():
        up = (delay_sequence(x, torch.tensor(d0 + eps, dtype=torch.float64)) * w).sum()
        down = (delay_sequence(x, torch.tensor(d0 - eps, dtype=torch.float64)) * w).sum()
    fd = (up - down) / (2 * eps)
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-6 * (1 + float(fd.abs())))


@given(st.data())
def test_per_channel_fractional_step_and_sequence_agree(data):
    n_t = data.draw(st.integers(3, 20), label="n_t")
    n_c = data.draw(st.integers(1, 4), label="n_c")
    ds = data.draw(st.lists(st.floats(1.0, 4.0), min_size=n_c, max_size=n_c), label="delays")
    x = signal(data, n_t, n_c)
    # A loop through a per-channel fractional delay (>= 1 step, so no algebraic loop).
    circuit = Circuit(
        nodes={"z": Blend(gamma=0.3), "p": Relay()},
        edges=[Edge(VEC, "z.drive"), Edge("z", "p", delay_ms=[d * DT for d in ds], fractional=True),
               Edge("p", "z.prediction")],
        dt_ms=DT,
    )
    auto, step = run(circuit, x), run(circuit, x, mode="step")
    for k in auto:
        torch.testing.assert_close(auto[k], step[k], rtol=1e-12, atol=1e-12)


@given(st.data())
def test_extrapolator_exact_on_linear_sequences(data):
    n_t = data.draw(st.integers(2, 40), label="n_t")
    alpha = data.draw(st.floats(-3, 5, allow_nan=False), label="alpha")
    slope = data.draw(st.floats(-10, 10, allow_nan=False), label="slope")
    offset = data.draw(st.floats(-10, 10, allow_nan=False), label="offset")
    t = torch.arange(n_t, dtype=torch.float64)
    x = (offset + slope * t).view(1, n_t, 1)
    c = Circuit(nodes={"e": Extrapolator(alpha=alpha)}, edges=[Edge(VEC, "e")])
    y = run(c, x)["e"][0, :, 0]
    want = offset + slope * (t + alpha)
    want[0] = offset  # zero velocity at the first step
    scale = 1 + abs(offset) + abs(slope) * (n_t + abs(alpha))
    torch.testing.assert_close(y, want, rtol=0, atol=1e-12 * scale)


@given(st.data())
def test_extrapolator_is_bitwise_the_formula(data):
    # The module computes s + alpha * (s - prev) in place and skips the product when
    # alpha = 1; values and gradients must be those of the formula written out, bit for bit.
    n_t = data.draw(st.integers(1, 12), label="n_t")
    alpha = data.draw(st.sampled_from([1.0, 0.5, 0.7, 2.5, -1.3]), label="alpha")
    x = signal(data, n_t, dtype=torch.float32).requires_grad_(True)
    c = Circuit(nodes={"e": Extrapolator(alpha=alpha)}, edges=[Edge(VEC, "e")])
    want = x + alpha * (x - shift(x, 1))
    g = torch.randn_like(want)
    (g_want,) = torch.autograd.grad(want, x, g)
    y = run(c, x, mode="sequence")["e"]
    (g_y,) = torch.autograd.grad(y, x, g)
    assert torch.equal(y, want) and torch.equal(g_y, g_want)
    # One step, against the formula on the same input and previous input.
    s, prev = x[:, -1].detach().requires_grad_(True), x[:, 0].detach().requires_grad_(True)
    out, _, state = Extrapolator(alpha=alpha).build().forward_step({"in": s}, 1, {}, prev, None)
    want = s + alpha * (s - prev)
    assert torch.equal(out, want) and state is s
    for a, b in zip(torch.autograd.grad(out, (s, prev), g[:, 0]), torch.autograd.grad(want, (s, prev), g[:, 0])):
        assert torch.equal(a, b)


@given(st.data())
def test_blend_extremes(data):
    n_t = data.draw(st.integers(2, 25), label="n_t")
    d = data.draw(st.integers(1, min(3, n_t - 1)), label="loop_delay")
    x = signal(data, n_t)

    def loop(gamma):
        return Circuit(
            nodes={"z": Blend(gamma=gamma), "p": Extrapolator(alpha=1.0)},
            edges=[Edge(VEC, "z.drive"), Edge("z", "p", delay_ms=d * DT), Edge("p", "z.prediction")],
            dt_ms=DT,
        )

    assert torch.equal(run(loop(0.0), x)["z"], x)
    # gamma = 1: once the prediction arrives (step d; d = 1 is "after the first
    # step") the output no longer depends on the drive.
    x2 = x.clone()
    x2[:, d:] = signal(data, n_t - d, x.shape[-1])
    z1, z2 = run(loop(1.0), x)["z"], run(loop(1.0), x2)["z"]
    assert torch.equal(z1, z2)
    assert torch.equal(z1[:, :d], x[:, :d])


@given(st.data())
def test_whole_sequence_and_step_by_step_agree(data):
    n_t = data.draw(st.integers(1, 90), label="n_t")
    d = data.draw(st.integers(0, min(n_t - 1, 4)), label="input_delay")
    gamma = data.draw(st.floats(0, 1), label="gamma")
    alpha = data.draw(st.floats(-2, 2), label="alpha")
    x = signal(data, n_t)
    c = linear_inertia(gamma, alpha, d)
    c = Circuit(nodes={**c.nodes, "out": Extrapolator(alpha=0.5)},
                edges=[*c.edges, Edge("z", "out", delay_ms=DT)], dt_ms=DT)
    seq, step, auto = run(c, x, mode="sequence"), run(c, x, mode="step"), run(c, x)
    assert seq.keys() == step.keys() == auto.keys()
    for k in seq:
        assert torch.equal(seq[k], step[k]), k
        # The closed-form solution of the linear cycle: equal up to rounding.
        scale = 1 + float(step[k].abs().max())
        torch.testing.assert_close(auto[k], step[k], rtol=0, atol=1e-9 * scale)


@given(st.data())
def test_closed_form_cycle_matches_stepping_in_float32(data):
    n_t = data.draw(st.integers(1, 160), label="n_t")  # closed form from 16 steps past start-up
    d = data.draw(st.integers(0, 4), label="input_delay")
    gamma = data.draw(st.floats(0, 0.95), label="gamma")
    alpha_max = 2.0 if gamma == 0 else min(2.0, 0.95 / gamma)
    alpha = data.draw(st.floats(-1, alpha_max), label="alpha")
    x = signal(data, n_t, 8, dtype=torch.float32)
    c = linear_inertia(gamma, alpha, d)
    auto, step = run(c, x), run(c, x, mode="step")
    for k in step:
        scale = 1 + float(step[k].abs().max())
        torch.testing.assert_close(auto[k], step[k], rtol=0, atol=1e-5 * scale)


@given(st.data())
def test_closed_form_gradients_match_stepping(data):
    """Values and input gradients of the closed form equal stepping's, for any
    length (chunk tails included) and chunk length (shorter or longer than the
    loop's delay), with outside input entering two nodes of the cycle through
    different delays, and optionally the extrapolator too (whose taps then
    read the outside input at two lags)."""
    n_t = data.draw(st.integers(1, 200), label="n_t")
    d = data.draw(st.integers(0, 3), label="input_delay")
    into_p = data.draw(st.booleans(), label="input_into_extrapolator")
    # The recurrence's order is the loop delay: chunks shorter than it carry part
    # of the state over from earlier chunks.
    loop_delay = data.draw(st.integers(1, 4), label="loop_delay")
    chunk = data.draw(st.sampled_from([1, 2, 5, _linear._CHUNK]), label="chunk")
    gamma = data.draw(st.floats(0, 0.9), label="gamma")
    alpha_max = 2.0 if gamma == 0 else min(2.0, 0.9 / gamma)
    alpha = data.draw(st.floats(-1, alpha_max), label="alpha")
    c = Circuit(
        nodes={"z": Blend(gamma=gamma), "r": Relay(), "p": Extrapolator(alpha=alpha)},
        edges=[
            Edge(VEC, "z.drive", delay_ms=d * DT),
            Edge("z", "r", delay_ms=loop_delay * DT),
            Edge(VEC, "r", delay_ms=2 * DT),
            Edge("r", "p"),
            Edge("p", "z.prediction"),
        ] + ([Edge(VEC, "p", delay_ms=DT)] if into_p else []),
        dt_ms=DT,
    )
    x = signal(data, n_t)
    weights = {k: torch.randn(2, n_t, x.shape[-1], generator=torch.Generator().manual_seed(i), dtype=x.dtype)
               for i, k in enumerate(("z", "r", "p"))}
    module = c.build(input_shapes=shapes(x.shape[-1]))
    results = {}
    default_chunk, _linear._CHUNK = _linear._CHUNK, chunk
    try:
        for mode in ("auto", "step"):
            xg = x.clone().requires_grad_()
            out = module({VEC: xg}, mode=mode)
            sum((out[k] * w).sum() for k, w in weights.items()).backward()
            results[mode] = out, xg.grad
    finally:
        _linear._CHUNK = default_chunk
    (auto, g_auto), (step, g_step) = results["auto"], results["step"]
    for k in step:
        scale = 1 + float(step[k].detach().abs().max())
        torch.testing.assert_close(auto[k], step[k], rtol=0, atol=1e-9 * scale)
    scale = 1 + float(g_step.abs().max())
    torch.testing.assert_close(g_auto, g_step, rtol=0, atol=1e-9 * scale)


@given(st.data())
def test_inertia_steady_state_lag(data):
    d = data.draw(st.integers(0, 5), label="input_delay")
    gamma = data.draw(st.floats(0, 0.9), label="gamma")
    alpha_max = 3.0 if gamma == 0 else min(3.0, 0.95 / gamma)
    alpha = data.draw(st.floats(-1.0, alpha_max), label="alpha")
    v = data.draw(st.floats(0.01, 2.0), label="velocity")
    # Steps needed for the transient to decay below 1e-10 of the signal.
    rho = max(np.abs(np.roots([1.0, -gamma * (1 + alpha), gamma * alpha])).max(), 1e-3)
    n_t = int(min(np.ceil(np.log(1e-12) / np.log(rho)), 2000)) + d + 10
    x = (v * torch.arange(n_t, dtype=torch.float64)).view(1, n_t, 1)
    z = run(linear_inertia(gamma, alpha, d), x)["z"][0, -1, 0]
    lag = (n_t - 1) - float(z) / v
    want = d + gamma * (1 - alpha) / (1 - gamma)
    assert abs(lag - want) < 1e-6 * (1 + abs(want))


def test_shift_holds_first_value():
    x = torch.arange(5.0).view(1, 5, 1)
    assert shift(x, 2)[0, :, 0].tolist() == [0, 0, 0, 1, 2]
    assert shift(x, 9)[0, :, 0].tolist() == [0, 0, 0, 0, 0]


def test_growing_recurrence_is_not_solved_in_closed_form():
    # gamma = 1, alpha = 2: z_t = 3 z_(t-1) - 2 z_(t-2) has a mode growing as 2^t that a held start
    # never excites; stepping keeps it at exactly 0, a closed form would amplify rounding by 2^t
    # (found by Hypothesis: 0.25 off after 50 steps). Such cycles are stepped.
    x = torch.randn(2, 60, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    c = linear_inertia(1.0, 2.0, 0)
    auto, step = run(c, x), run(c, x, mode="step")
    for k in step:
        assert torch.equal(auto[k], step[k]), k


def test_shift_and_window_work_under_torch_func_and_forward_ad():
    """Their custom backwards keep torch.func transforms and forward-mode AD
    working, with the plain ops' results."""
    import torch.autograd.forward_ad as fwAD
    from torch.func import grad, jacrev, jvp, vmap

    g = torch.Generator().manual_seed(0)
    x, t = (torch.randn(3, 6, 2, generator=g, dtype=torch.float64) for _ in range(2))
    xb = torch.randn(4, 3, 6, 2, generator=g, dtype=torch.float64)  # vmapped over a leading axis
    cases = [(lambda x, k=k: shift(x, k), lambda x, k=k: torch.cat(
                 [x[:, :1].expand(3, min(k, 6), 2), x[:, : 6 - min(k, 6)]], dim=1)) for k in (1, 2, 7)]
    cases += [(lambda x, a=a, n=n: time_window(x, a, n), lambda x, a=a, n=n: x[:, a:a + n])
              for a, n in ((0, 3), (2, 4), (5, 1))]
    for fast, plain in cases:
        assert torch.equal(jvp(fast, (x,), (t,))[1], jvp(plain, (x,), (t,))[1])
        assert torch.equal(jacrev(fast)(x), jacrev(plain)(x))
        assert torch.equal(vmap(grad(lambda x: (fast(x) ** 2).sum()))(xb),
                           vmap(grad(lambda x: (plain(x) ** 2).sum()))(xb))
        want = jvp(plain, (x,), (t,))[1]
        with fwAD.dual_level():
            out = fast(fwAD.make_dual(x.clone().requires_grad_(), t))
            assert torch.equal(fwAD.unpack_dual(out).tangent, want)


@pytest.mark.parametrize("call, match", [
    (lambda x: shift(x, -1), r"k must be a whole number of steps >= 0, got -1 \(a negative delay"),
    (lambda x: shift(x, 1.5), r"got 1.5; delay_sequence takes fractional"),
    (lambda x: shift(x, True), r"got True\.$"),
    (lambda x: shift(x[0, :, 0], 1), r"x must be a tensor of shape \(sample, time, \.\.\.\), got \(5,\)"),
    (lambda x: delay_sequence(x, -0.5), r"steps must be finite and >= 0 .*got -0.5"),
    (lambda x: delay_sequence(x, float("nan")), r"steps must be finite and >= 0 .*got nan"),
    (lambda x: delay_sequence(x, torch.tensor([1.0, 2.0, -1.0])), r"got \[1.0, 2.0, -1.0\]"),
    (lambda x: delay_sequence(x, torch.tensor([1.0, 2.0])),
     r"one per channel .* got steps of shape \(2,\) for x of shape \(2, 5, 3\)"),
])
def test_shift_and_delay_sequence_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.randn(2, 5, 3))
