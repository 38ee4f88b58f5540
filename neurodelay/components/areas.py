"""Convolutional areas: the encoder and decoder backbone of the original study.

Encoder: 4 x Conv2d(kernel 3, stride 2, padding 1), channels 1->32->32->64->64,
ReLU after each, flatten, Linear to the latent mean (and a second Linear to
the log-variance for a Gaussian latent). Decoder: Linear(latents -> 64 x s x s)
with no activation, 4 x ConvTranspose2d(kernel 3, stride 2, padding 1,
output_padding 1), channels 64->64->32->32->1, ELU after the first three,
sigmoid output. At 32 px and 4 latents the Gaussian encoder plus decoder has
133,257 parameters, as in the original. PyTorch's default initialisation is
used (the original's intended Kaiming init never ran).

On CPU the modules run faster formulations of the same layers, switched by
:data:`neurodelay._util.perf.FAST` (channels-last convolutions, whose bias
gradients in the decoder are plain sums, an ``exp``-based ELU, the last
transposed convolution as batched matrix products, optional chunking of the
batch); the parameters, their names and the numbers (within
float rounding) are those of the plain layers, which
``tests/unit/test_areas_perf.py`` checks. On other devices the plain layers run.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .._util import perf as _perf
from .._util.validators import flag, image_size, positive_int
from .base import AbstractComponent, FrameModule, PortShapeError, RunContext

__all__ = ["ConvEncoder", "ConvDecoder"]

_CHANNELS = (32, 32, 64, 64)


_flag = flag(fix="use e.g. {name}=True")


@attrs.frozen
class ConvEncoder(AbstractComponent):
    """Image -> latent vector.

    Parameters
    ----------
    n_latents : int
        Size of the latent vector.
    size : int
        Input image size in pixels (square, a multiple of 16).
    in_channels : int
        Input image channels.
    gaussian : bool
        Gaussian latent: mean and log-variance heads, a sample drawn with the
        reparameterisation trick when the run asks for one
        (``RunContext(sample=True)``, as :func:`~neurodelay.training.train`
        does), the mean otherwise (:func:`~neurodelay.simulate`, or a
        module called without a context, in either train or eval mode).
        The traces ``<node>_mu`` and ``<node>_logvar`` are recorded.
    """

    kind = "conv_encoder"
    size_is_image = True
    n_latents: int = attrs.field(default=4, validator=positive_int)
    size: int = attrs.field(default=32, validator=image_size)
    in_channels: int = attrs.field(default=1, validator=positive_int)
    gaussian: bool = attrs.field(default=False, validator=_flag)

    def out_shape(self, in_shapes):
        shape = in_shapes["in"]
        want = (self.in_channels, self.size, self.size)
        if shape is not None and tuple(shape) != want:
            raise PortShapeError("in", f"images of shape {want} (channel, y, x); "
                                 f"set size/in_channels to match the world")
        return (self.n_latents,)

    def build(self):
        return _EncoderModule(self)


class _EncoderModule(FrameModule):
    """Encoder torch module: ``features`` (4 x Conv2d + ReLU), ``mu`` and optional ``logvar``.

    On CPU, with :data:`neurodelay._util.perf.FAST` ``.channels_last``, the
    convolutions run in channels-last layout (same parameters, same numbers
    within float rounding), except under ``torch.func`` transforms and
    forward-mode AD.
    """

    def __init__(self, spec: ConvEncoder):
        super().__init__()
        layers = []
        c_in = spec.in_channels
        for c_out in _CHANNELS:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        n_flat = _CHANNELS[-1] * (spec.size // 16) ** 2
        self.mu = nn.Linear(n_flat, spec.n_latents)
        self.logvar = nn.Linear(n_flat, spec.n_latents) if spec.gaussian else None

    def frame(self, x: Tensor, ctx: RunContext):
        return self.frame_random(*self.frame_deterministic(x, ctx), ctx)

    def frame_deterministic(self, x: Tensor, ctx: RunContext):
        mu, logvar = _in_chunks(self._heads, x)
        return mu, ({} if logvar is None else {"mu": mu, "logvar": logvar})

    def frame_random(self, out: Tensor, extras: dict[str, Tensor], ctx: RunContext):
        if not extras or not ctx.sample:
            return out, extras
        mu, logvar = extras["mu"], extras["logvar"]
        eps = torch.randn(mu.shape, generator=ctx.generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar), extras

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        if x.device.type == "cpu" and _perf.FAST.channels_last and not _perf.plain_layers_needed(x):
            x = _channels_last(x)
        # flatten(1) of a channels-last (n, 64, s, s) tensor copies to (c, y, x) order,
        # so the Linear layers see the same features in either layout.
        h = self.features(x).flatten(1)
        return self.mu(h), (self.logvar(h) if self.logvar is not None else None)


@attrs.frozen
class ConvDecoder(AbstractComponent):
    """Latent vector -> image in [0, 1].

    Parameters
    ----------
    n_latents : int
        Size of the latent vector it reads.
    size : int
        Output image size in pixels (square, a multiple of 16).
    out_channels : int
        Output image channels.
    """

    kind = "conv_decoder"
    size_is_image = True
    n_latents: int = attrs.field(default=4, validator=positive_int)
    size: int = attrs.field(default=32, validator=image_size)
    out_channels: int = attrs.field(default=1, validator=positive_int)

    def out_shape(self, in_shapes):
        shape = in_shapes["in"]
        if shape is not None and tuple(shape) != (self.n_latents,):
            raise PortShapeError("in", f"vectors of shape ({self.n_latents},); "
                                 f"set n_latents to match its source")
        return (self.out_channels, self.size, self.size)

    def build(self):
        return _DecoderModule(self)


class _DecoderModule(FrameModule):
    """Decoder torch module: ``linear``, then ``deconv`` (4 x ConvTranspose2d, ELU x 3, sigmoid).

    On CPU the switches in :data:`neurodelay._util.perf.FAST` select faster
    formulations of the same layers: channels-last transposed convolutions,
    an ``exp``-based ELU, and the last layer (few output channels) as batched
    matrix products. The parameters are those of the plain layers, which run
    instead under ``torch.func`` transforms and forward-mode AD.
    """

    def __init__(self, spec: ConvDecoder):
        super().__init__()
        self.side = spec.size // 16
        self.linear = nn.Linear(spec.n_latents, _CHANNELS[-1] * self.side**2)
        chans = (64, 64, 32, 32, spec.out_channels)
        layers = []
        for i in range(4):
            layers.append(nn.ConvTranspose2d(chans[i], chans[i + 1], 3, stride=2, padding=1,
                                             output_padding=1))
            layers.append(nn.ELU(inplace=True) if i < 3 else nn.Sigmoid())
        self.deconv = nn.Sequential(*layers)

    def frame(self, x: Tensor, ctx: RunContext):
        return _in_chunks(self._images, x)[0], {}

    def frame_deterministic(self, x: Tensor, ctx: RunContext):
        return self.frame(x, ctx)

    def _images(self, x: Tensor) -> tuple[Tensor]:
        h = self.linear(x).view(x.shape[0], _CHANNELS[-1], self.side, self.side)
        fast = _perf.FAST
        if h.device.type != "cpu" or not fast.any() or _perf.plain_layers_needed(h):
            return (self.deconv(h),)
        layers = list(self.deconv)
        last = layers[6]
        fast_last = fast.last_deconv and last.out_channels <= _FAST_DECONV_MAX_OUT
        if fast.channels_last:
            h = _channels_last(h)
        # Under autocast the plain layers run (they cast their inputs themselves).
        own_bias_grad = fast.channels_last and not _cpu_autocast()
        for i in (0, 2, 4):
            if own_bias_grad:
                h = _ConvLayer.apply(h, layers[i].weight, layers[i].bias, True)
            else:
                h = layers[i](h)
            if i == 4 and fast_last and fast.elu:
                break  # the last layer applies this ELU itself (one buffer fewer)
            h = elu(h) if fast.elu else F.elu(h, inplace=True)
        if fast_last:
            h = conv_transpose3x3s2(h, last.weight, last.bias, elu_input=fast.elu)
        else:
            h = last(h)
        return (torch.sigmoid(h),)


# --------------------------------------------------------------------------- CPU fast paths

def _cpu_autocast() -> bool:
    """Whether CPU autocast is on (``torch.is_autocast_enabled`` takes a device from torch 2.4)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:
        return torch.is_autocast_cpu_enabled()


class _ConvLayer(torch.autograd.Function):
    """A 3x3 stride-2 convolution layer, plain or transposed, whose backward sums the bias gradient itself.

    The forward is ``F.conv2d`` / ``F.conv_transpose2d`` (padding 1, output
    padding 1 when transposed). The backward asks oneDNN for the input and
    weight gradients only and sums the output gradient for the bias: in
    channels-last layout oneDNN's own bias gradient made the decoder's third
    layer's backward take 37 ms instead of 22 (B = 64, 8 frames, 2 threads),
    where the sum costs 1.6 ms. The output gradient is first put in the
    input's layout (oneDNN takes a path about twice as slow when they differ).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, transposed):
        ctx.save_for_backward(x, weight)
        ctx.transposed = transposed
        if transposed:
            return F.conv_transpose2d(x, weight, bias, stride=2, padding=1, output_padding=1)
        return F.conv2d(x, weight, bias, stride=2, padding=1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        t = ctx.transposed
        fmt = torch.channels_last if _is_channels_last(x) else torch.contiguous_format
        grad = grad.contiguous(memory_format=fmt)
        need = ctx.needs_input_grad
        gx, gw, _ = torch.ops.aten.convolution_backward(
            grad, x, weight, None, [2, 2], [1, 1], [1, 1], t, [1, 1] if t else [0, 0], 1,
            [need[0], need[1], False])
        gb = grad.sum((0, 2, 3)) if need[2] else None
        return gx, gw, gb, None


#: Samples per block in the backward pass of :func:`conv_transpose3x3s2`.
_BACKWARD_ROWS = 256

#: Largest number of output channels for which the last transposed convolution
#: uses :func:`conv_transpose3x3s2` (oneDNN is slow for few output channels).
_FAST_DECONV_MAX_OUT = 4


def _in_chunks(fn, x: Tensor) -> tuple:
    """``fn(x)`` (a tuple of per-sample outputs, None allowed), in chunks of frames on CPU.

    With :data:`neurodelay._util.perf.FAST` ``.chunk`` = k > 0, a CPU batch larger
    than k runs k frames at a time and the outputs are concatenated. Every
    frame is computed independently, so only the order of the sums in the
    weight gradients changes (float rounding); the backward pass then also
    runs chunk by chunk, so its temporary gradient buffers are k frames
    large instead of the whole batch.
    """
    k = _perf.FAST.chunk
    if x.device.type != "cpu" or k <= 0 or x.shape[0] <= k:
        return fn(x)
    parts = [fn(c) for c in x.split(k)]
    return tuple(None if p[0] is None else torch.cat(p) for p in zip(*parts))


def _is_channels_last(x: Tensor) -> bool:
    """Whether ``x`` is laid out channels-last, unambiguously (channel stride 1, even with one channel)."""
    return x.is_contiguous(memory_format=torch.channels_last) and x.stride(1) == 1


def _channels_last(x: Tensor) -> Tensor:
    """``x`` in channels-last layout, copying even when ``x`` has one channel.

    ``Tensor.contiguous(memory_format=channels_last)`` leaves a one-channel
    tensor as it is (its strides are ambiguous), and oneDNN then picks its
    plain (c, y, x) kernel; an explicit copy makes the layout unambiguous.
    """
    if _is_channels_last(x):
        return x
    return torch.empty_like(x, memory_format=torch.channels_last).copy_(x)


class _ELU(torch.autograd.Function):
    """ELU (alpha 1) from ``exp``: ``y = max(exp(min(x, 0)) - 1, x)``, ``dy/dx = 1 + min(y, 0)``.

    ``exp(min(x, 0)) - 1`` equals ``expm1(x)`` for ``x <= 0`` to within one
    unit in the last place of 1 (6e-8); ``max(., x)`` keeps tiny negative
    inputs exact and returns ``x`` for ``x > 0``. Only the output is saved
    for the backward pass (it is also the next layer's saved input, so the
    activation costs no extra memory), as PyTorch's in-place ELU does, and
    the backward pass allocates one buffer (the gradient).
    """

    @staticmethod
    def forward(ctx, x, contiguous):
        y = _elu_forward(x, contiguous)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        # One new buffer: the derivative 1 + min(y, 0), then times grad, in place.
        return torch.clamp_max(y, 0.0).add_(1.0).mul_(grad), None


#: Bytes per block of :func:`_elu_forward` on CPU: its four passes then run on data in cache.
_ELU_BLOCK_BYTES = 1 << 20


def _elu_forward(x: Tensor, contiguous: bool = False) -> Tensor:
    """ELU with alpha 1 (see :class:`_ELU`) into a new tensor; ``contiguous``: (c, y, x) order.

    On CPU, in blocks of samples of about 1 MiB (on the decoder's largest
    activation, 16 MiB, 6.9 instead of 8.8 ms at 2 threads).
    """
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device) if contiguous else torch.empty_like(x)
    blocks = [(x, y)]
    if x.dim() > 0 and x.device.type == "cpu":
        rows = max(1, _ELU_BLOCK_BYTES // max(1, x[0].numel() * x.element_size()))
        if rows < x.shape[0]:
            blocks = zip(x.split(rows), y.split(rows))
    for a, b in blocks:
        torch.clamp_max(a, 0.0, out=b)
        b.exp_().sub_(1.0)
        torch.maximum(b, a, out=b)
    return y


def _elu_backward_(grad: Tensor, y: Tensor, rows: int = 64) -> Tensor:
    """``grad *= 1 + min(y, 0)`` in place (the ELU's derivative from its output), in blocks of ``rows``.

    ``grad`` must be a buffer the caller owns. Working in blocks keeps the
    temporary small.
    """
    for g, o in zip(grad.split(rows), y.split(rows)):
        g.addcmul_(g, torch.clamp_max(o, 0.0))
    return grad


def elu(x: Tensor, contiguous: bool = False) -> Tensor:
    """ELU with alpha 1, as ``torch.nn.functional.elu`` (see :class:`_ELU`).

    Parameters
    ----------
    x : Tensor, any shape
        Not modified.
    contiguous : bool
        Return the result in (c, y, x) order whatever the layout of ``x``
        (saves a copy when the next layer wants that order).

    Returns
    -------
    Tensor, same shape as ``x``; same layout unless ``contiguous``.
    """
    return _ELU.apply(x, contiguous)


def _col2im(taps: Tensor) -> Tensor:
    """Sum tap contributions into the output of a 3x3, stride-2 transposed convolution.

    ``taps[n, c, ky, kx, i, j]`` is input pixel (i, j)'s contribution through
    kernel tap (ky, kx). With padding 1 and output padding 1 the output pixel
    (2i + a, 2j + b) collects tap 1 from offset 0 for parity 0, and taps 2 (offset
    0) and 0 (offset +1) for parity 1, in each direction.

    Parameters
    ----------
    taps : Tensor, shape (n, c, 3, 3, h, w)

    Returns
    -------
    Tensor, shape (n, c, 2h, 2w), contiguous.
    """
    n, c, _, _, h, w = taps.shape
    out = taps.new_empty(n, c, h, 2, w, 2)
    out[:, :, :, 0, :, 0] = taps[:, :, 1, 1]
    o = out[:, :, :, 0, :, 1]
    o.copy_(taps[:, :, 1, 2])
    o[..., :-1] += taps[:, :, 1, 0, :, 1:]
    o = out[:, :, :, 1, :, 0]
    o.copy_(taps[:, :, 2, 1])
    o[:, :, :-1] += taps[:, :, 0, 1, 1:]
    o = out[:, :, :, 1, :, 1]
    o.copy_(taps[:, :, 2, 2])
    o[..., :-1] += taps[:, :, 2, 0, :, 1:]
    o[:, :, :-1] += taps[:, :, 0, 2, 1:]
    o[:, :, :-1, :-1] += taps[:, :, 0, 0, 1:, 1:]
    return out.view(n, c, 2 * h, 2 * w)


def _im2col(grad: Tensor) -> Tensor:
    """The adjoint of :func:`_col2im`: (n, c, 2h, 2w) -> (n, c, 3, 3, h, w)."""
    n, c, h2, w2 = grad.shape
    h, w = h2 // 2, w2 // 2
    g = grad.view(n, c, h, 2, w, 2)
    t = grad.new_empty(n, c, 3, 3, h, w)
    t[:, :, 1, 1] = g[:, :, :, 0, :, 0]
    t[:, :, 1, 2] = g[:, :, :, 0, :, 1]
    t[:, :, 2, 1] = g[:, :, :, 1, :, 0]
    t[:, :, 2, 2] = g[:, :, :, 1, :, 1]
    t[:, :, 1, 0, :, 1:] = g[:, :, :, 0, :-1, 1]
    t[:, :, 2, 0, :, 1:] = g[:, :, :, 1, :-1, 1]
    t[:, :, 0, 1, 1:] = g[:, :, :-1, 1, :, 0]
    t[:, :, 0, 2, 1:] = g[:, :, :-1, 1, :, 1]
    t[:, :, 0, 0, 1:, 1:] = g[:, :, :-1, 1, :-1, 1]
    # Taps that would land left of or above the output are cropped away.
    t[:, :, :, 0, :, 0] = 0.0
    t[:, :, 0, :, 0, :] = 0.0
    return t


class _ConvTranspose3x3s2(torch.autograd.Function):
    """``conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)`` for a 3x3 kernel.

    Forward: per sample, the taps ``w^T x`` (one batched matrix product with
    the weight shared across the batch), then :func:`_col2im`. Backward:
    :func:`_im2col` of the output gradient, then batched products for the
    input and weight gradients (the weight gradient summed over samples last,
    which keeps each product small and cache-friendly). A channels-last input
    is read as (sample, pixel, channel) matrices and its gradient is made in
    that layout, so neither pass changes the layout of a tensor of the
    input's size (this made the inertia training step 5 % faster than
    converting to (c, y, x) order first).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, elu_input):
        n, c_in, h, w = x.shape
        c_out = weight.shape[1]
        # A channels-last input is used as it is, as (sample, pixel, channel) matrices, and
        # its gradient returned in that layout (oneDNN layers before this one take a path
        # about twice as slow when the input and its gradient differ in layout).
        ctx.pixel_major = c_in > 1 and _is_channels_last(x)
        wt = weight.reshape(c_in, c_out * 9).t()
        if ctx.pixel_major:
            if elu_input:
                x = _elu_forward(x)
            xs = x.permute(0, 2, 3, 1).reshape(n, h * w, c_in)
            taps = torch.bmm(wt.unsqueeze(0).expand(n, -1, -1), xs.transpose(1, 2))
        else:
            if elu_input:
                x = _elu_forward(x, contiguous=True)
            xs = x.contiguous().view(n, c_in, h * w)
            taps = torch.bmm(wt.unsqueeze(0).expand(n, -1, -1), xs)
        out = _col2im(taps.view(n, c_out, 3, 3, h, w))
        if bias is not None:
            out += bias.view(1, c_out, 1, 1)
        ctx.save_for_backward(xs, weight)
        ctx.elu_input = elu_input
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None
        ctx.hw = (h, w)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        xs, weight = ctx.saved_tensors
        pixel_major = ctx.pixel_major  # xs is (n, pixels, c_in), else (n, c_in, pixels)
        n, c_in = xs.shape[0], xs.shape[2 if pixel_major else 1]
        h, w = ctx.hw
        c_out = weight.shape[1]
        # Under autocast the saved input and the incoming gradient may be in a lower
        # precision than the weight: compute in the gradient's dtype, return each
        # gradient in its input's dtype.
        grad = grad.contiguous()
        wm = weight.reshape(c_in, c_out * 9).to(grad.dtype)
        want_x, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gx = xs.new_empty(xs.shape) if want_x else None
        gw = None
        # In blocks of samples: the tap gradients (9 x the output's size per
        # output channel) are never materialised for the whole batch at once.
        for s in range(0, n if (want_x or want_w) else 0, _BACKWARD_ROWS):
            e = min(n, s + _BACKWARD_ROWS)
            gtaps = _im2col(grad[s:e]).view(e - s, c_out * 9, h * w)
            if want_x:
                if pixel_major:
                    a, b = gtaps.transpose(1, 2), wm.t().unsqueeze(0).expand(e - s, -1, -1)
                else:
                    a, b = wm.unsqueeze(0).expand(e - s, -1, -1), gtaps
                if gx.dtype == gtaps.dtype:
                    torch.bmm(a, b, out=gx[s:e])
                else:
                    gx[s:e].copy_(torch.bmm(a, b))
                if ctx.elu_input:
                    # The ELU's output is the saved input: its derivative is
                    # applied to this fresh input gradient in place.
                    _elu_backward_(gx[s:e], xs[s:e])
            if want_w:
                x_block = xs[s:e].to(grad.dtype)
                # Pixel-major: the transposed weight gradient, with no operand transposed.
                part = (torch.bmm(gtaps, x_block) if pixel_major
                        else torch.bmm(x_block, gtaps.transpose(1, 2))).sum(0)
                gw = part if gw is None else gw.add_(part)
        if gx is not None:
            gx = gx.view(n, h, w, c_in).permute(0, 3, 1, 2) if pixel_major else gx.view(n, c_in, h, w)
        if gw is not None:
            gw = (gw.t() if pixel_major else gw).reshape(weight.shape).to(weight.dtype)
        gb = None
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad.sum((0, 2, 3)).to(ctx.bias_dtype)
        return gx, gw, gb, None


def conv_transpose3x3s2(x: Tensor, weight: Tensor, bias: Tensor | None = None, *,
                        elu_input: bool = False) -> Tensor:
    """A 3x3 transposed convolution with stride 2, padding 1 and output padding 1.

    Equal (within float rounding) to ``torch.nn.functional.conv_transpose2d(x,
    weight, bias, stride=2, padding=1, output_padding=1)``, and faster on CPU
    when there are few output channels (see :class:`_ConvTranspose3x3s2`).

    Parameters
    ----------
    x : Tensor, shape (n, c_in, h, w)
    weight : Tensor, shape (c_in, c_out, 3, 3)
    bias : Tensor, shape (c_out,), optional
    elu_input : bool
        Apply :func:`elu` to ``x`` first, as part of this operation: the
        backward pass then multiplies its own input gradient by the ELU's
        derivative in place, instead of the ELU allocating another buffer
        of the input's size.

    Returns
    -------
    Tensor, shape (n, c_out, 2h, 2w), contiguous.
    """
    if weight.shape[2:] != (3, 3) or x.dim() != 4 or x.shape[1] != weight.shape[0]:
        raise ValueError(f"conv_transpose3x3s2 needs x (n, c_in, h, w) and weight (c_in, c_out, 3, 3), "
                         f"got {tuple(x.shape)} and {tuple(weight.shape)}.")
    return _ConvTranspose3x3s2.apply(x, weight, bias, elu_input)
