"""The CPU fast paths of the conv areas compute what the plain layers compute.

The reference here is the original architecture written with plain
``torch.nn.functional`` calls on the modules' own parameters; the optimised
modules must match it in output and in every parameter's gradient, with every
combination of fast-path switches.
"""

import itertools
import sys

import pytest
import torch
import torch.nn.functional as F

from neurodelay._util import perf as _perf
from neurodelay.components import ConvDecoder, ConvEncoder, RunContext
from neurodelay.components import areas
from neurodelay.components.areas import conv_transpose3x3s2, elu

SWITCHES = ("channels_last", "elu", "last_deconv")
COMBOS = [dict(zip(SWITCHES, bits)) for bits in itertools.product((False, True), repeat=3)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These checks are about numbers, not speed; on a shared, loaded machine
    # two OpenMP threads make tiny convolutions wait for each other's time slices.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _id(combo):
    on = [k for k, v in combo.items() if v]
    return "+".join(on) or "plain"


def plain_encoder(enc, x):
    h = x
    for i in range(0, 8, 2):
        conv = enc.features[i]
        h = F.relu(F.conv2d(h, conv.weight, conv.bias, stride=2, padding=1))
    h = h.reshape(h.shape[0], -1)
    mu = F.linear(h, enc.mu.weight, enc.mu.bias)
    logvar = F.linear(h, enc.logvar.weight, enc.logvar.bias) if enc.logvar is not None else None
    return mu, logvar


def plain_decoder(dec, z):
    h = F.linear(z, dec.linear.weight, dec.linear.bias).view(z.shape[0], 64, dec.side, dec.side)
    for i in range(0, 8, 2):
        conv = dec.deconv[i]
        h = F.conv_transpose2d(h, conv.weight, conv.bias, stride=2, padding=1, output_padding=1)
        h = F.elu(h) if i < 6 else torch.sigmoid(h)
    return h


def _modules(seed=0, gaussian=True, size=32, n_latents=4):
    torch.manual_seed(seed)
    enc = ConvEncoder(n_latents=n_latents, size=size, gaussian=gaussian).build()
    dec = ConvDecoder(n_latents=n_latents, size=size).build()
    return enc, dec


def _loss_and_grads(fn, modules):
    for m in modules:
        m.zero_grad(set_to_none=True)
    out = fn()
    loss = sum((o.double() * w).sum() for o, w in out)
    loss.backward()
    grads = {f"{i}.{n}": p.grad.clone() for i, m in enumerate(modules) for n, p in m.named_parameters()
             if p.grad is not None}
    return [o.detach() for o, _ in out], grads


def _assert_grads_close(got, want, rtol=2e-4):
    assert got.keys() == want.keys()
    for k in want:
        scale = want[k].abs().max().item() + 1e-12
        err = (got[k] - want[k]).abs().max().item()
        assert err <= rtol * scale, f"{k}: max |difference| {err:.3g} > {rtol} * max |gradient| {scale:.3g}"


def test_parameter_count_and_names_unchanged():
    enc, dec = _modules()
    n = sum(p.numel() for p in enc.parameters()) + sum(p.numel() for p in dec.parameters())
    assert n == 133_257
    assert list(enc.state_dict()) == [
        "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
        "features.4.weight", "features.4.bias", "features.6.weight", "features.6.bias",
        "mu.weight", "mu.bias", "logvar.weight", "logvar.bias"]
    assert list(dec.state_dict()) == [
        "linear.weight", "linear.bias", "deconv.0.weight", "deconv.0.bias", "deconv.2.weight",
        "deconv.2.bias", "deconv.4.weight", "deconv.4.bias", "deconv.6.weight", "deconv.6.bias"]


@pytest.mark.parametrize("combo", COMBOS, ids=_id)
def test_encoder_decoder_match_plain_layers(combo):
    enc, dec = _modules(seed=1)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(12, 1, 32, 32, generator=gen)
    w_img = torch.randn(12, 1, 32, 32, generator=gen)
    w_lat = torch.randn(12, 4, generator=gen)
    ctx = RunContext(sample=False)

    def fast():
        with _perf.fast_paths(**combo):
            z, extras = enc.frame(x, ctx)
            y, _ = dec.frame(z, ctx)
        return [(y, w_img), (z, w_lat), (extras["logvar"], w_lat)]

    def plain():
        mu, logvar = plain_encoder(enc, x)
        return [(plain_decoder(dec, mu), w_img), (mu, w_lat), (logvar, w_lat)]

    out_fast, g_fast = _loss_and_grads(fast, (enc, dec))
    out_plain, g_plain = _loss_and_grads(plain, (enc, dec))
    for a, b in zip(out_fast, out_plain):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    _assert_grads_close(g_fast, g_plain)


def test_sequence_path_and_size_64_match_plain_layers():
    enc, dec = _modules(seed=2, gaussian=False, size=64, n_latents=3)
    x = torch.rand(2, 3, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    ctx = RunContext()
    z, _ = enc.forward_sequence({"in": x}, {"in": 0}, ctx)
    y, _ = dec.forward_sequence({"in": z}, {"in": 0}, ctx)
    mu, _ = plain_encoder(enc, x.reshape(6, 1, 64, 64))
    want = plain_decoder(dec, mu).reshape(2, 3, 1, 64, 64)
    torch.testing.assert_close(z, mu.reshape(2, 3, 3), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("c_in,c_out,h,w,bias", [(32, 1, 16, 16, True), (5, 2, 3, 7, True),
                                                 (4, 3, 1, 1, False), (8, 6, 4, 5, True)])
def test_conv_transpose3x3s2_matches_torch(c_in, c_out, h, w, bias):
    gen = torch.Generator().manual_seed(c_in * 10 + c_out)
    x = torch.randn(3, c_in, h, w, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(c_in, c_out, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(c_out, generator=gen, dtype=torch.float64, requires_grad=True) if bias else None
    g = torch.randn(3, c_out, 2 * h, 2 * w, generator=gen, dtype=torch.float64)
    inputs = [t for t in (x, weight, b) if t is not None]
    got = conv_transpose3x3s2(x, weight, b)
    want = F.conv_transpose2d(x, weight, b, stride=2, padding=1, output_padding=1)
    torch.testing.assert_close(got, want)
    for a, c in zip(torch.autograd.grad(got, inputs, g), torch.autograd.grad(want, inputs, g)):
        torch.testing.assert_close(a, c)


def test_conv_transpose3x3s2_without_input_gradient_and_in_channels_last():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, 5, 5, generator=gen).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(6, 1, 3, 3, generator=gen, requires_grad=True)
    got = conv_transpose3x3s2(x, weight)
    want = F.conv_transpose2d(x, weight, stride=2, padding=1, output_padding=1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    (gw,) = torch.autograd.grad(got.sum(), [weight])
    (gw_want,) = torch.autograd.grad(want.sum(), [weight])
    torch.testing.assert_close(gw, gw_want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("elu_input", [True, False])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_conv_transpose3x3s2_with_elu_input_matches_elu_then_torch(layout, elu_input):
    gen = torch.Generator().manual_seed(7)
    # More rows than the blocks of 64 of the input gradient, so that several blocks are used.
    x = torch.randn(70, 5, 3, 4, generator=gen, dtype=torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    weight = torch.randn(5, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True)
    g = torch.randn(70, 2, 6, 8, generator=gen, dtype=torch.float64)
    before = x.detach().clone()
    got = conv_transpose3x3s2(x, weight, b, elu_input=elu_input)
    want = F.conv_transpose2d(F.elu(x) if elu_input else x, weight, b, stride=2, padding=1, output_padding=1)
    assert torch.equal(x.detach(), before)
    torch.testing.assert_close(got, want)
    grads = torch.autograd.grad(got, [x, weight, b], g)
    for a, c in zip(grads, torch.autograd.grad(want, [x, weight, b], g)):
        torch.testing.assert_close(a, c)
    # The input gradient comes back in the input's layout.
    assert grads[0].is_contiguous(memory_format=torch.channels_last) == (layout == "channels_last")
    assert grads[0].is_contiguous() == (layout == "contiguous")
    # With and without the ELU the results differ: the flag is not ignored.
    assert not torch.allclose(conv_transpose3x3s2(x, weight, b, elu_input=not elu_input), got)


@pytest.mark.parametrize("grad_layout", ["same", "other"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("transposed", [True, False])
def test_conv_layer_with_its_own_bias_gradient_matches_torch(transposed, layout, grad_layout):
    gen = torch.Generator().manual_seed(11)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x = torch.randn(6, 5, 6, 4, generator=gen, dtype=torch.float64).contiguous(memory_format=fmt)
    x.requires_grad_()
    shape = (5, 3, 3, 3) if transposed else (3, 5, 3, 3)
    weight = torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    if transposed:
        want = F.conv_transpose2d(x, weight, b, stride=2, padding=1, output_padding=1)
    else:
        want = F.conv2d(x, weight, b, stride=2, padding=1)
    got = areas._ConvLayer.apply(x, weight, b, transposed)
    torch.testing.assert_close(got, want)
    g = torch.randn(want.shape, generator=gen, dtype=torch.float64)
    other = torch.contiguous_format if layout == "channels_last" else torch.channels_last
    g = g.contiguous(memory_format=fmt if grad_layout == "same" else other)
    grads_want = torch.autograd.grad(want, [x, weight, b], g, retain_graph=True)
    for a, c in zip(torch.autograd.grad(got, [x, weight, b], g), grads_want):
        torch.testing.assert_close(a, c)
    # Without an input gradient (a first layer), and in float32 through oneDNN.
    x32, w32, b32 = (t.detach().float().requires_grad_() for t in (x, weight, b))
    gw, gb = torch.autograd.grad(areas._ConvLayer.apply(x32.detach(), w32, b32, transposed), [w32, b32], g.float())
    gw_want, gb_want = torch.autograd.grad(want, [weight, b], g)
    torch.testing.assert_close(gw, gw_want.float(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gb, gb_want.float(), rtol=1e-5, atol=1e-5)


def test_elu_contiguous_output_from_channels_last_input():
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    y = elu(x, contiguous=True)
    assert y.is_contiguous() and not x.is_contiguous()
    torch.testing.assert_close(y, F.elu(x))
    g = torch.randn(3, 4, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad(y, [x], g)[0], torch.autograd.grad(F.elu(x), [x], g)[0])


def test_conv_transpose3x3s2_rejects_other_kernels():
    with pytest.raises(ValueError, match="c_in, c_out, 3, 3"):
        conv_transpose3x3s2(torch.zeros(1, 2, 4, 4), torch.zeros(2, 1, 5, 5))


def test_elu_matches_torch_including_edge_values():
    x = torch.cat([torch.linspace(-30, 30, 2001), torch.tensor([0.0, -0.0, 1e-30, -1e-30, -1e-7, 1e-7, -100.0])])
    x64 = x.double().requires_grad_()
    x32 = x.clone().requires_grad_()
    y = elu(x32)
    want = F.elu(x64)
    torch.testing.assert_close(y.double(), want, rtol=0, atol=1.2e-7)
    assert torch.equal(y[x > 0], x[x > 0])
    (g,) = torch.autograd.grad(y, [x32], torch.ones_like(y))
    (g_want,) = torch.autograd.grad(want, [x64], torch.ones_like(want))
    torch.testing.assert_close(g.double(), g_want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("contiguous", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_elu_in_blocks_matches_the_whole_tensor(layout, contiguous):
    # 9 samples of 256 KiB: blocks of 4 samples (1 MiB), the last one short.
    x = torch.randn(9, 64, 32, 32, generator=torch.Generator().manual_seed(2)) * 3
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    assert areas._ELU_BLOCK_BYTES // (x[0].numel() * 4) == 4
    y = areas._elu_forward(x, contiguous=contiguous)
    want = torch.maximum(torch.clamp_max(x, 0.0).exp_().sub_(1.0), x)  # the same formula, in one block
    assert torch.equal(y, want)
    assert y.is_contiguous() if contiguous else y.stride() == x.stride()


def test_elu_leaves_its_input_alone():
    x = torch.randn(5, 4)
    before = x.clone()
    elu(x)
    assert torch.equal(x, before)


def test_channels_last_helper_makes_one_channel_layout_explicit():
    x = torch.rand(3, 1, 8, 8)
    y = areas._channels_last(x)
    assert y.stride(1) == 1 and torch.equal(x, y)
    z = torch.rand(3, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    assert areas._channels_last(z) is z


def test_fast_paths_context_restores_and_checks_names():
    before = (_perf.FAST.channels_last, _perf.FAST.elu, _perf.FAST.last_deconv)
    with _perf.fast_paths(elu=False, channels_last=False):
        assert not _perf.FAST.elu and not _perf.FAST.channels_last
    assert (_perf.FAST.channels_last, _perf.FAST.elu, _perf.FAST.last_deconv) == before
    with pytest.raises(TypeError, match="unknown fast path"):
        with _perf.fast_paths(winograd=True):
            pass


def test_tune_allocator_is_idempotent_and_a_no_op_off_glibc(monkeypatch):
    first = _perf.tune_allocator()
    assert set(first) >= {"applied", "reason"}
    assert _perf.tune_allocator() == first
    monkeypatch.setattr(_perf, "_tuned", None)
    monkeypatch.setattr(sys, "platform", "darwin")
    off = _perf.tune_allocator()
    assert off["applied"] is False and "not glibc" in off["reason"]


def test_tune_allocator_can_be_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setattr(_perf, "_tuned", None)
    monkeypatch.setenv("NEURODELAY_ALLOCATOR", "default")
    off = _perf.tune_allocator()
    assert off["applied"] is False and off["reason"] == "NEURODELAY_ALLOCATOR=default"
    monkeypatch.setattr(_perf, "_tuned", None)
    monkeypatch.setenv("NEURODELAY_ALLOCATOR", "fast")
    with pytest.raises(ValueError, match=r"NEURODELAY_ALLOCATOR='fast'.*'tuned'.*'default'"):
        _perf.tune_allocator()


def test_autocast_helper_is_opt_in():
    enc, dec = _modules(seed=4, gaussian=False)
    x = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    ctx = RunContext()
    with _perf.autocast("cpu", enabled=False):
        y32, _ = dec.frame(enc.frame(x, ctx)[0], ctx)
    assert y32.dtype == torch.float32
    with _perf.autocast("cpu"):
        y16, _ = dec.frame(enc.frame(x, ctx)[0], ctx)
    assert y16.dtype == torch.bfloat16
    # bf16 keeps about 3 significant digits; the images are in [0, 1].
    assert (y16.float() - y32).abs().max().item() < 0.05


def test_cpu_bf16_autocast_backward_gives_float32_gradients():
    enc, dec = _modules(seed=6, gaussian=False)
    x = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(7))
    ctx = RunContext()
    with _perf.autocast("cpu"):
        y, _ = dec.frame(enc.frame(x, ctx)[0], ctx)
        loss = ((y.float() - x) ** 2).sum()
    loss.backward()
    for p in list(enc.parameters()) + list(dec.parameters()):
        if p.grad is not None:
            assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()


def test_areas_work_under_torch_func_and_forward_ad():
    """The fast paths' own autograd Functions and channels-last layouts do not
    support torch.func transforms or forward-mode AD; inside them the plain
    layers run, with the plain layers' results."""
    import torch.autograd.forward_ad as fwAD
    from torch.func import grad, jacrev, jvp, vmap

    torch.manual_seed(0)
    dec, enc = ConvDecoder(n_latents=4).build(), ConvEncoder(n_latents=4).build()
    z, tz = torch.randn(2, 4), torch.randn(2, 4)
    img, timg = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    cases = [(lambda z: dec._images(z)[0], z, tz), (lambda x: enc._heads(x)[0], img, timg)]

    def transformed(f, x, t):
        out = [jvp(f, (x,), (t,))[1], jacrev(f)(x[:1]), vmap(f)(x.unsqueeze(1)),
               grad(lambda x: f(x).square().sum())(x)]
        with fwAD.dual_level():
            out.append(fwAD.unpack_dual(f(fwAD.make_dual(x, t))).tangent)
        return out

    for f, x, t in cases:
        with _perf.fast_paths(channels_last=True, elu=True, last_deconv=True):
            fast = transformed(f, x, t)
        with _perf.fast_paths(channels_last=False, elu=False, last_deconv=False):
            plain = transformed(f, x, t)
        for a, b in zip(fast, plain):
            assert torch.equal(a, b)
