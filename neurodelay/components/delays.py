"""Conduction delays: ``out[t] = in[t - d]``.

Before the first input arrives a delay line holds the first value it will
deliver (``out[t] = in[0]`` for ``t < d``): a moving object appears at rest
where it started, which reproduces the original study's zero-velocity start.

Delays are given in steps here (the circuit converts ms). They may be

* a whole number of steps (a shift),
* one value per channel of a vector signal (each channel shifted by its own
  amount),
* fractional: linear interpolation between the two neighbouring steps,
  ``out[t] = (1 - f) in[t - k] + f in[t - k - 1]`` with ``d = k + f``, which is
  differentiable with respect to ``d`` so that delays can be learned.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor, nn

__all__ = ["shift", "time_window", "delay_sequence", "DelayLine", "project_delays"]


def shift(x: Tensor, k: int) -> Tensor:
    """Delay a sequence by ``k`` whole steps along dim 1, holding the first value.

    Parameters
    ----------
    x : Tensor, shape (sample, time, ...)
    k : int, >= 0

    Returns
    -------
    Tensor, same shape: ``out[:, t] = x[:, max(t - k, 0)]``.

    Raises
    ------
    ValueError
        ``k`` is not a whole number >= 0, or ``x`` has no time axis.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        hint = "."
        if isinstance(k, numbers.Real) and not isinstance(k, bool):
            hint = (" (a negative delay would read the future)." if k < 0
                    else "; delay_sequence takes fractional delays.")
        raise ValueError(f"shift: k must be a whole number of steps >= 0, got {k!r}{hint}")
    _check_sequence("shift", x)
    k = int(k)
    if k == 0:
        return x
    k = min(k, x.shape[1])
    if x.requires_grad and torch.is_grad_enabled():
        return _Shift.apply(x, k)
    return _shift(x, k)


def _shift(x: Tensor, k: int) -> Tensor:
    n_t = x.shape[1]
    head = x[:, :1].expand(x.shape[0], k, *x.shape[2:])
    return torch.cat([head, x[:, : n_t - k]], dim=1)


class _Shift(torch.autograd.Function):
    """:func:`shift` with a backward that writes the input gradient in one pass.

    Autograd's own backward of the concatenation goes through two slices,
    and each slice's backward fills a zero tensor of the whole sequence
    before copying its part in, so the gradient was written three times and
    summed. Here ``grad_x[:, s] = grad[:, s + k]``, the first step also
    collects ``grad[:, :k]``, and only the last ``k`` steps are zeroed. The
    additions are the ones autograd made, in the same order, so the
    gradient is the same to the bit.
    """

    generate_vmap_rule = True  # so that torch.func transforms (vmap, jacrev, ...) work too

    @staticmethod
    def forward(x, k):
        return _shift(x, k)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.k = inputs[1]

    @staticmethod
    def backward(ctx, grad):
        k, n_t = ctx.k, grad.shape[1]
        g = torch.empty_like(grad, memory_format=torch.contiguous_format)
        held = grad[:, :k].sum(1, keepdim=True)  # what the held first value collects
        if k < n_t:
            g[:, : n_t - k].copy_(grad[:, k:])
            g[:, :1].add_(held)
            g[:, n_t - k:].zero_()
        else:
            g[:, :1].copy_(held)
            g[:, 1:].zero_()
        return g, None

    @staticmethod
    def jvp(ctx, tangent, _):
        return _shift(tangent, ctx.k)  # shift is linear


def time_window(x: Tensor, start: int, length: int) -> Tensor:
    """``x[:, start : start + length]``, with a backward that writes the input gradient in one pass.

    The backward of a plain slice fills a zero tensor of the whole sequence
    and then copies the window's gradient in; here only the steps outside
    the window are zeroed. Values and gradients are the same to the bit.
    """
    if start == 0 and length == x.shape[1]:
        return x
    if x.requires_grad and torch.is_grad_enabled():
        return _TimeWindow.apply(x, start, length)
    return x.narrow(1, start, length)


class _TimeWindow(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x, start, length):
        return x.narrow(1, start, length)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, start, length = inputs
        ctx.window = start, length, x.shape[1]

    @staticmethod
    def backward(ctx, grad):
        start, length, n_t = ctx.window
        g = grad.new_empty((grad.shape[0], n_t, *grad.shape[2:]))
        g[:, :start].zero_()
        g[:, start:start + length].copy_(grad)
        g[:, start + length:].zero_()
        return g, None, None

    @staticmethod
    def jvp(ctx, tangent, *_):
        start, length, _n_t = ctx.window
        return tangent.narrow(1, start, length)


def _time_index(n_t: int, k: Tensor) -> Tensor:
    """Indices ``max(t - k, 0)`` for t in range(n_t); k of shape (C,) -> (n_t, C)."""
    t = torch.arange(n_t, device=k.device).unsqueeze(1)
    return (t - k.unsqueeze(0)).clamp_min(0)


def delay_sequence(x: Tensor, steps: Tensor | float) -> Tensor:
    """Delay a whole sequence by (possibly per-channel, fractional) ``steps``.

    Parameters
    ----------
    x : Tensor, shape (sample, time, ...) or (sample, time, channel)
        The signal. Per-channel delays need a vector signal.
    steps : float or Tensor, shape () or (channel,)
        Delay in steps, >= 0. A tensor that requires grad gets gradients
        through the interpolation weight.

    Returns
    -------
    Tensor, same shape as ``x``.

    Raises
    ------
    ValueError
        ``x`` has no time axis, ``steps`` is negative or not finite, or
        per-channel ``steps`` do not match ``x``'s channels. (This check reads
        ``steps`` on the host; circuits call the unchecked form, their delay
        lines being validated when the circuit is built.)
    """
    _check_sequence("delay_sequence", x)
    steps_t = torch.as_tensor(steps, dtype=x.dtype, device=x.device)
    if steps_t.dim() > 1 or (steps_t.dim() == 1 and (x.dim() != 3 or x.shape[2] != steps_t.shape[0])):
        raise ValueError(f"delay_sequence: steps must be one delay, or one per channel of a (sample, time, channel) "
                         f"signal; got steps of shape {tuple(steps_t.shape)} for x of shape {tuple(x.shape)}.")
    bad = ~torch.isfinite(steps_t.detach()) | (steps_t.detach() < 0)
    if bool(bad.any()):
        raise ValueError(f"delay_sequence: steps must be finite and >= 0 (a delay cannot read the future), "
                         f"got {steps_t.detach().cpu().tolist()}.")
    return _delay_sequence(x, steps_t)


def _check_sequence(name: str, x) -> None:
    if not isinstance(x, Tensor) or x.dim() < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: x must be a tensor of shape (sample, time, ...), got {shape}.")


def _delay_sequence(x: Tensor, steps_t: Tensor) -> Tensor:
    """:func:`delay_sequence` without the checks (``steps_t`` a tensor of x's dtype and device)."""
    if steps_t.dim() == 0:
        k = int(math.floor(float(steps_t.detach())))
        f = steps_t - k
        if not steps_t.requires_grad and float(f) == 0.0:
            return shift(x, k)
        hi = shift(x, k)
        lo = shift(x, k + 1)
        return hi + f * (lo - hi)
    # Per-channel delays on a (sample, time, channel) signal.
    k = torch.floor(steps_t.detach())
    f = steps_t - k
    k = k.long()
    n_s, n_t, n_c = x.shape
    idx_hi = _time_index(n_t, k).unsqueeze(0).expand(n_s, n_t, n_c)
    hi = x.gather(1, idx_hi)
    if not steps_t.requires_grad and bool((f == 0).all()):
        return hi
    idx_lo = _time_index(n_t, k + 1).unsqueeze(0).expand(n_s, n_t, n_c)
    lo = x.gather(1, idx_lo)
    return hi + f * (lo - hi)


def _check_line(value: Tensor, learnable: bool, min_steps, max_steps) -> None:
    """Check a :class:`DelayLine`'s arguments (delays in steps)."""
    if value.dim() > 1 or value.numel() == 0:
        raise ValueError(f"DelayLine: steps must be one delay or one per channel (a flat sequence), got shape "
                         f"{tuple(value.shape)}.")
    if not bool(torch.isfinite(value).all()) or bool((value < 0).any()):
        raise ValueError(f"DelayLine: steps must be finite and >= 0 (a delay cannot read the future), got "
                         f"{value.tolist()}.")
    if learnable:
        lo = float(min_steps)
        hi = float(max_steps) if max_steps is not None else float(value.max())
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
            raise ValueError(f"DelayLine: a learnable delay needs finite bounds 0 <= min_steps <= max_steps, "
                             f"got min_steps={min_steps!r}, max_steps={max_steps!r}.")
        if bool((value < lo).any()) or bool((value > hi).any()):
            raise ValueError(f"DelayLine: the initial steps {value.tolist()} must lie in [min_steps, max_steps] "
                             f"= [{lo:g}, {hi:g}].")


class DelayLine(nn.Module):
    """The torch module of one delayed edge.

    Parameters
    ----------
    steps : float or sequence of float
        Initial delay in steps (scalar, or one per channel).
    learnable : bool
        Make the delay a trainable parameter (fractional by construction).
    min_steps, max_steps : float
        Bounds of a learnable delay. The delay a line applies is its
        parameter clamped to them; after each optimiser step
        :func:`~neurodelay.training.train` puts the parameter itself back
        within them (:meth:`project_`), so that a step that carries it past
        a bound leaves it at the bound, where its gradient can still bring it
        back. A training loop of one's own calls :func:`project_delays`
        after each ``optimizer.step()`` for the same reason: a parameter
        left beyond its bound gets zero gradient and never moves again.
    """

    def __init__(self, steps, *, learnable: bool = False, min_steps: float = 0.0,
                 max_steps: float | None = None):
        super().__init__()
        # the delays are read and checked on the CPU (a spec's numbers), so that the line also builds
        # under a meta or other default device, where its tensors are made
        value = torch.as_tensor(steps, dtype=torch.float64, device="cpu")
        _check_line(value, learnable, min_steps, max_steps)
        self.per_channel = value.dim() == 1
        self.learnable = learnable
        self.min_steps = float(min_steps)
        self.max_steps = float(max_steps) if max_steps is not None else float(value.max())
        made = torch.empty(value.shape, dtype=value.dtype)  # on the default device
        if made.device.type != "meta":
            made = value.to(made.device, copy=True)
        if learnable:
            self.steps_param = nn.Parameter(made)
        else:
            self.register_buffer("steps_fixed", made, persistent=False)
        fixed = value.numpy()
        self._whole = (not learnable) and bool((fixed == fixed.round()).all())
        self._uniform_int = self._whole and not self.per_channel
        self._k = int(round(float(value))) if self._uniform_int else None
        self._ceil_fixed = int(math.ceil(float(value.max())))

    @property
    def whole_steps(self) -> int | None:
        """The delay as a whole number of steps when it is one fixed shift (else None)."""
        return self._k

    @property
    def steps(self) -> Tensor:
        """The current delay in steps (clamped to its bounds when learnable)."""
        if self.learnable:
            return self.steps_param.clamp(self.min_steps, self.max_steps)
        return self.steps_fixed

    @property
    def ceil_steps(self) -> int:
        """Steps after which the first input has certainly arrived."""
        if self.learnable:
            return int(math.ceil(self.max_steps))
        return self._ceil_fixed

    def project_(self) -> None:
        """Put a learnable delay's parameter back within [min_steps, max_steps] (in place; a no-op otherwise)."""
        if self.learnable:
            with torch.no_grad():
                self.steps_param.clamp_(self.min_steps, self.max_steps)

    def forward(self, x: Tensor) -> Tensor:
        """Delay a whole sequence, shape (sample, time, ...)."""
        if self._uniform_int:
            return shift(x, self._k)
        return _delay_sequence(x, self.steps.to(x.dtype))

    def read(self, history: list[Tensor], t: int) -> Tensor:
        """The delayed value at step ``t`` from the per-step ``history`` of the source.

        ``history[s]`` is the source at step ``s``; indices before 0 read
        ``history[0]`` (the line holds its first value).
        """
        if self._uniform_int:
            return history[max(t - self._k, 0)]
        steps = self.steps
        if not self.per_channel:
            k = int(math.floor(float(steps.detach())))
            f = steps - k
            hi = history[max(t - k, 0)]
            if self._whole:
                return hi
            lo = history[max(t - k - 1, 0)]
            return hi + f.to(hi.dtype) * (lo - hi)
        k = torch.floor(steps.detach()).long()
        f = (steps - k).to(history[0].dtype)
        first = max(t - int(k.max()) - 1, 0)
        window = torch.stack(history[first : t + 1], dim=1)  # (sample, window, C)
        n_s, _, n_c = window.shape
        hi_idx = ((t - k).clamp_min(0) - first).view(1, 1, n_c).expand(n_s, 1, n_c)
        hi = window.gather(1, hi_idx).squeeze(1)
        if self._whole:
            return hi
        lo_idx = ((t - k - 1).clamp_min(0) - first).view(1, 1, n_c).expand(n_s, 1, n_c)
        lo = window.gather(1, lo_idx).squeeze(1)
        return hi + f * (lo - hi)


def project_delays(module: nn.Module) -> int:
    """Put every learnable delay of ``module`` back within its bounds (in place).

    Call it after each optimiser step of a training loop of one's own
    (:func:`~neurodelay.training.train` does): a delay parameter that a step
    carried past a bound is otherwise clamped there with zero gradient, and
    never moves back however the loss changes.

    Returns
    -------
    int
        The number of learnable delay lines projected.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"project_delays: module must be a torch.nn.Module (a built circuit), "
                        f"got {type(module).__name__}.")
    lines = [m for m in module.modules() if isinstance(m, DelayLine) and m.learnable]
    for line in lines:
        line.project_()
    return len(lines)
