"""Cheap temporal components: extrapolator, blend, relay."""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from .._util.validators import finite_float, flag, in_unit_interval
from .base import AbstractComponent, FrameModule, NodeModule, PortShapeError
from .delays import shift

__all__ = ["Extrapolator", "Blend", "Relay"]


_flag = flag(words="true or false", qualified=True)


@attrs.frozen
class Extrapolator(AbstractComponent):
    """Linear extrapolation: ``y[t] = s[t] + alpha * (s[t] - s[t-1])``.

    ``alpha`` is the horizon in steps. At step 0 the velocity is taken as zero
    (``y = s``); a delayed input holds its first value until it arrives, so
    the velocity is zero there too. On a recurrent edge this is the original
    study's inertia predictor; on a feed-forward edge it compensates a
    conduction delay of ``alpha`` steps for linear motion.

    With ``learn_alpha`` the horizon is a parameter trained with the rest of
    the circuit (starting at ``alpha``, at the learning rate ``train.delay_lr``
    of the parameters measured in steps, else ``train.lr``); results record its
    final value (``alpha_learned``). A circuit then learns how far ahead to
    extrapolate, rather than being told: whether that equals its delay is
    a question for the data (studies/emergent_compensation.yaml).
    """

    kind = "extrapolator"
    alpha: float = attrs.field(default=1.0, validator=finite_float)
    learn_alpha: bool = attrs.field(default=False, validator=_flag, kw_only=True)

    def out_shape(self, in_shapes):
        return in_shapes["in"]

    def linear_taps(self):
        return {"in": [(0, 1.0 + self.alpha), (1, -float(self.alpha))]}

    def learns_taps(self) -> bool:
        return self.learn_alpha

    def build(self):
        return _ExtrapolatorModule(float(self.alpha), learn=self.learn_alpha)


class _ExtrapolatorModule(NodeModule):
    def __init__(self, alpha: float, learn: bool = False):
        super().__init__()
        if learn:
            self.alpha_steps = torch.nn.Parameter(torch.tensor(float(alpha)))
        self.alpha = alpha

    def learned_values(self) -> dict[str, float]:
        """The learned parameters in their units ({} when none is learned)."""
        return {"alpha": float(self.alpha_steps.detach())} if hasattr(self, "alpha_steps") else {}

    def step_parameters(self) -> list:
        """Parameters measured in steps (trained at ``train.delay_lr``)."""
        return [self.alpha_steps] if hasattr(self, "alpha_steps") else []

    def _extrapolate(self, s: Tensor, prev: Tensor) -> Tensor:
        if hasattr(self, "alpha_steps"):  # learned: out of place (the difference is saved for backward)
            return s + self.alpha_steps.to(s.dtype) * (s - prev)
        # s + alpha * (s - prev), in place on the fresh difference (nothing saves it for
        # backward); alpha = 1 skips the product, which is exact, so every bit is the same.
        d = s - prev
        if self.alpha != 1.0:
            d.mul_(self.alpha)
        return d.add_(s)

    def forward_sequence(self, inputs, valid, ctx):
        s = inputs["in"]
        return self._extrapolate(s, shift(s, 1)), {}

    def forward_step(self, inputs, t, valid, state, ctx):
        s = inputs["in"]
        return self._extrapolate(s, s if state is None else state), {}, s


@attrs.frozen
class Blend(AbstractComponent):
    """``z = (1 - gamma) * drive + gamma * prediction``.

    Ports ``drive`` and ``prediction``. Until the prediction's first valid
    step the output is the drive alone, so with ``gamma = 1`` the output holds
    its first value for ever (the network "dreams" a static scene).
    """

    kind = "blend"
    ports = ("drive", "prediction")
    gamma: float = attrs.field(default=0.5, validator=in_unit_interval)

    def out_shape(self, in_shapes):
        drive, pred = in_shapes["drive"], in_shapes["prediction"]
        if drive is not None and pred is not None and tuple(drive) != tuple(pred):
            raise PortShapeError("prediction", f"the same shape as the drive, {tuple(drive)}")
        return drive if drive is not None else pred

    def valid_from(self, port_valid):
        return port_valid["drive"]

    def reads(self, port, t, port_valid):
        return port != "prediction" or t >= port_valid["prediction"]

    def linear_taps(self):
        return {"drive": [(0, 1.0 - self.gamma)], "prediction": [(0, float(self.gamma))]}

    def build(self):
        return _BlendModule(float(self.gamma))


class _BlendModule(NodeModule):
    def __init__(self, gamma: float):
        super().__init__()
        self.gamma = gamma

    def forward_sequence(self, inputs, valid, ctx):
        drive, pred = inputs["drive"], inputs["prediction"]
        z = torch.lerp(drive, pred, self.gamma)
        v = valid["prediction"]
        if v > 0:  # the drive alone until the prediction is valid, as forward_step
            v = min(v, drive.shape[1])
            z = torch.cat([drive[:, :v], z[:, v:]], dim=1)
        return z, {}

    def forward_step(self, inputs, t, valid, state, ctx):
        drive = inputs["drive"]
        if t < valid["prediction"]:
            return drive, {}, state
        return torch.lerp(drive, inputs["prediction"], self.gamma), {}, state


@attrs.frozen
class Relay(AbstractComponent):
    """Identity: routes or taps a signal (for example to give it its own delay)."""

    kind = "relay"

    def out_shape(self, in_shapes):
        return in_shapes["in"]

    def linear_taps(self):
        return {"in": [(0, 1.0)]}

    def build(self):
        return _RelayModule()


class _RelayModule(FrameModule):
    def frame(self, x: Tensor, ctx):
        return x, {}
