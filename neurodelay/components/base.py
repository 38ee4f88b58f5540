"""The component protocol: frozen attrs specs that build torch modules.

A component spec holds plain values only. ``spec.build()`` returns a
:class:`NodeModule`, the torch module the circuit runs. A node module can run
over a whole sequence at once (``forward_sequence``) or one step at a time
(``forward_step``); both must give the same numbers. A module that defines
only ``forward_step`` gets a ``forward_sequence`` that steps through time.

Time-validity: every signal has a first valid step, the step at which the
first input from the world has reached it through the delays (before it,
delay lines hold the first value they will deliver, so every signal is
defined at every step, but it does not yet carry news from the world). Most
components are valid as soon as all their inputs are;
:class:`~neurodelay.components.Blend` is valid as soon as its drive is, and
uses the drive alone until its prediction arrives. Objectives score only
valid steps.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

__all__ = ["AbstractComponent", "NodeModule", "FrameModule", "RunContext", "PortShapeError"]

Shape = tuple[int, ...]


class PortShapeError(ValueError):
    """Raised by ``out_shape`` when an input port gets a shape it cannot take.

    The circuit turns it into a :class:`~neurodelay.errors.ShapeError` that names
    the edge and both shapes.
    """

    def __init__(self, port: str, expected: str):
        super().__init__(f"port {port!r} expects {expected}")
        self.port = port
        self.expected = expected


@dataclass
class RunContext:
    """Per-run settings passed to every node module.

    Attributes
    ----------
    generator : torch.Generator or None
        Source of randomness for stochastic nodes (Gaussian latents).
    sample : bool
        Draw stochastic latents (training) instead of using their means.
    """

    generator: torch.Generator | None = None
    sample: bool = False


class AbstractComponent(abc.ABC):
    """A circuit component: a frozen attrs spec of plain values.

    Concrete components are final ``attrs.frozen`` classes with a ``kind``
    (the name used in study files) and the input ``ports`` they accept.
    """

    kind: ClassVar[str]
    ports: ClassVar[tuple[str, ...]] = ("in",)
    #: Whether the component's ``size`` field is the world's image size: a study file may leave it
    #: out (it is taken from ``world.size``), and it follows ``--set world.size`` and swept sizes.
    size_is_image: ClassVar[bool] = False

    @abc.abstractmethod
    def build(self) -> "NodeModule":
        """Return a fresh torch module implementing this component."""

    @abc.abstractmethod
    def out_shape(self, in_shapes: dict[str, Shape | None]) -> Shape | None:
        """Output shape (per sample and step) from input shapes, or None if unknown yet.

        Raises :class:`PortShapeError` when a known input shape does not fit.
        """

    def valid_from(self, port_valid: dict[str, float]) -> float:
        """First valid output step from the first valid step of each port."""
        return max(port_valid.values())

    def linear_taps(self) -> dict[str, list[tuple[int, float]]] | None:
        """For a component linear in its inputs: per port, ``(lag_steps, weight)`` taps.

        ``y[t] = sum over ports and taps of weight * port[t - lag]``. None for
        nonlinear components (the default). Cycles made only of linear
        components are solved in closed form.
        """
        return None

    def learns_taps(self) -> bool:
        """Whether the weights of :meth:`linear_taps` are trained (then they hold only at the start)."""
        return False

    def reads(self, port: str, t: int, port_valid: dict[str, int]) -> bool:
        """Whether the node reads ``port`` at step ``t`` (all ports, always, by default)."""
        return True

    def required_ports(self) -> tuple[str, ...]:
        """Ports that must be connected."""
        return self.ports


class NodeModule(nn.Module):
    """Torch module of a circuit node.

    Subclasses implement ``forward_step`` and, where a whole sequence can be
    computed faster than step by step, ``forward_sequence``. Inputs are dicts
    from port name to tensor; ``valid`` maps each port to its first valid
    step. Outputs are ``(out, extras)``: the node's signal and a dict of
    named auxiliary traces (for example a Gaussian latent's ``mu`` and
    ``logvar``), each with the same leading dims as ``out``.
    """

    def forward_sequence(self, inputs: dict[str, Tensor], valid: dict[str, int],
                         ctx: RunContext) -> tuple[Tensor, dict[str, Tensor]]:
        """Run over whole sequences: inputs of shape (sample, time, ...).

        The default steps through time: ``forward_step`` at every step from
        ``init_state()``, every port's input at that step passed, the outputs
        (and each extra) stacked along the time axis. A module that defines
        only ``forward_step`` so gives the same numbers on both paths;
        override this with a whole-sequence computation where one is faster.
        """
        if not inputs:
            raise ValueError(f"{type(self).__name__}.forward_sequence got no inputs; its default steps "
                             f"forward_step through time, which needs at least one port's sequence.")
        n_t = next(iter(inputs.values())).shape[1]
        steps = {port: x.unbind(1) for port, x in inputs.items()}
        state = self.init_state()
        outs: list[Tensor] = []
        extras: dict[str, list[Tensor]] = {}
        for t in range(n_t):
            out, extra, state = self.forward_step({port: xs[t] for port, xs in steps.items()}, t, valid, state, ctx)
            outs.append(out)
            for name, x in extra.items():
                extras.setdefault(name, []).append(x)
        return torch.stack(outs, dim=1), {name: torch.stack(xs, dim=1) for name, xs in extras.items()}

    def init_state(self) -> Any:
        """State carried between steps (None for memoryless nodes)."""
        return None

    def forward_step(self, inputs: dict[str, Tensor], t: int, valid: dict[str, int],
                     state: Any, ctx: RunContext) -> tuple[Tensor, dict[str, Tensor], Any]:
        """Run one step: inputs of shape (sample, ...) at step ``t``; returns ``(out, extras, state)``."""
        raise NotImplementedError


class FrameModule(NodeModule):
    """A memoryless node: the same map applied to every step independently.

    Subclasses implement ``frame(x, ctx) -> (out, extras)`` on a batch of
    single steps; whole sequences fold time into the batch.
    """

    def frame(self, x: Tensor, ctx: RunContext) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def frame_deterministic(self, x: Tensor, ctx: RunContext) -> tuple[Tensor, dict[str, Tensor]] | None:
        """The part of ``frame`` that maps equal inputs to equal outputs, or None.

        A node that splits ``frame(x, ctx)`` into
        ``frame_random(*frame_deterministic(x, ctx), ctx)`` lets the circuit
        compute a frame that a delay line holds for several steps only once
        (then ``frame_random`` draws for every step). The default, None, says
        the node has not declared such a split: it is applied to every step.
        """
        return None

    def frame_random(self, out: Tensor, extras: dict[str, Tensor],
                     ctx: RunContext) -> tuple[Tensor, dict[str, Tensor]]:
        """The per-step random part of ``frame`` (see :meth:`frame_deterministic`); none by default."""
        return out, extras

    def forward_sequence(self, inputs, valid, ctx):
        x = inputs["in"]
        n_s, n_t = x.shape[:2]
        out, extras = self.frame(x.reshape(n_s * n_t, *x.shape[2:]), ctx)
        unfold = lambda y: y.reshape(n_s, n_t, *y.shape[1:])  # noqa: E731
        return unfold(out), {k: unfold(v) for k, v in extras.items()}

    def forward_step(self, inputs, t, valid, state, ctx):
        out, extras = self.frame(inputs["in"], ctx)
        return out, extras, state
