"""Convolutional areas: the encoder and decoder backbone of the original study.

Encoder: 4 x Conv2d(kernel 3, stride 2, padding 1), channels 1->32->32->64->64,
ReLU after each, flatten, Linear to the latent mean (and a second Linear to
the log-variance for a Gaussian latent). Decoder: Linear(latents -> 64 x s x s)
with no activation, 4 x ConvTranspose2d(kernel 3, stride 2, padding 1,
output_padding 1), channels 64->64->32->32->1, ELU after the first three,
sigmoid output. At 32 px and 4 latents the Gaussian encoder plus decoder has
133,257 parameters, as in the original. PyTorch's default initialisation is
used (the original's intended Kaiming init never ran).
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor, nn

from ._validators import image_size, positive_int
from .base import AbstractComponent, FrameModule, PortShapeError, RunContext

__all__ = ["ConvEncoder", "ConvDecoder"]

_CHANNELS = (32, 32, 64, 64)


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
        reparameterisation trick while training (the mean otherwise). The
        traces ``<node>_mu`` and ``<node>_logvar`` are recorded.
    """

    kind = "conv_encoder"
    n_latents: int = attrs.field(default=4, validator=positive_int)
    size: int = attrs.field(default=32, validator=image_size)
    in_channels: int = attrs.field(default=1, validator=positive_int)
    gaussian: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

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
        h = self.features(x).flatten(1)
        mu = self.mu(h)
        if self.logvar is None:
            return mu, {}
        logvar = self.logvar(h)
        if ctx.sample:
            eps = torch.randn(mu.shape, generator=ctx.generator, device=mu.device, dtype=mu.dtype)
            z = mu + eps * torch.exp(0.5 * logvar)
        else:
            z = mu
        return z, {"mu": mu, "logvar": logvar}


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
        h = self.linear(x).view(x.shape[0], _CHANNELS[-1], self.side, self.side)
        return self.deconv(h), {}
