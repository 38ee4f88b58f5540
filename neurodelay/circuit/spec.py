"""The circuit spec: components joined by edges that carry conduction delays.

A :class:`Circuit` is a frozen spec: named nodes (components) and edges. Its
structure is checked when it is made (unknown nodes and ports, delays off the
time grid, algebraic loops: :mod:`neurodelay.circuit.plan`); shapes are
checked when it is built against the shapes of the world's streams.
``circuit.build(...)`` returns a :class:`~neurodelay.circuit.CircuitModule`,
a ``torch.nn.Module`` that runs the circuit and that training can
backpropagate through.
"""

from __future__ import annotations

import math
from typing import Mapping

import attrs
import numpy as np

from .._util.validators import flag, is_real
from ..components.base import AbstractComponent
from ..errors import ShapeError
from ..worlds import MovingCircle
from .module import CircuitModule
from .plan import Plan, check_input_shapes, make_plan

__all__ = ["Edge", "Circuit", "world_shapes"]


def _delay_value(value):
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.ndarray) and value.ndim > 1:
        raise TypeError(f"delay_ms must be a number of ms or a flat list of them (one per channel), got an array "
                        f"of shape {value.shape}; give one delay per channel, e.g. delay_ms=[10, 20].")
    if isinstance(value, (list, tuple, np.ndarray)):
        values = list(value)
        if not values:
            raise TypeError("delay_ms is an empty list; give one delay (a number of ms) or one per channel.")
        if not all(is_real(v) for v in values):
            raise TypeError(f"delay_ms must be a number of ms or a list of them (one per channel), got {value!r}.")
        return tuple(float(v) for v in values)
    if not is_real(value):
        raise TypeError(f"delay_ms must be a number of ms or a list of them (one per channel), got {value!r}; "
                        f"use e.g. delay_ms=20.")
    return float(value)


def _name(inst, attr, value):
    if not isinstance(value, str):
        raise TypeError(f"Edge.{attr.name} must be a string (a node name, 'node.port' or a world stream such as "
                        f"'world.frames'), got {value!r}.")


_flag = flag(qualified=True)  # numpy's bool is stored as the plain one (specs are saved as YAML)


def _ms(inst, attr, value):
    if value is None and attr.name == "max_delay_ms":
        return
    if not is_real(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"Edge.{attr.name} must be a finite number of ms >= 0, got {value!r}"
                         + ("; leave it out (None) if the delay is not learned." if attr.name == "max_delay_ms"
                            else "."))


@attrs.frozen
class Edge:
    """A connection from ``source`` to ``target`` with a conduction delay.

    Parameters
    ----------
    source : str
        A node name, or a world stream (``world.frames``, ``world.factors``).
    target : str
        A node name, or ``node.port`` for a node with several ports.
    delay_ms : float or tuple of float
        Delay in ms, >= 0: one value, or one per channel of a vector signal.
        Must be a whole number of steps unless ``fractional``.
    fractional : bool
        Allow delays between steps (linear interpolation).
    learn_delay : bool
        Make the delay a trainable parameter, starting from ``delay_ms`` and
        clamped to [``min_delay_ms``, ``max_delay_ms``] (needs
        ``max_delay_ms``); fractional whatever ``fractional`` says.
        :func:`~neurodelay.training.train` keeps the parameter within the
        bounds and trains it at ``TrainSettings.delay_lr``.
    """

    source: str = attrs.field(validator=_name)
    target: str = attrs.field(validator=_name)
    delay_ms: float | tuple[float, ...] = attrs.field(default=0.0, converter=_delay_value)
    fractional: bool = attrs.field(default=False, validator=_flag)
    learn_delay: bool = attrs.field(default=False, validator=_flag)
    min_delay_ms: float = attrs.field(default=0.0, validator=_ms)
    max_delay_ms: float | None = attrs.field(default=None, validator=_ms)

    @property
    def label(self) -> str:
        return f"{self.source} -> {self.target}"

    @property
    def target_node(self) -> str:
        return self.target.split(".", 1)[0]



def _nodes_converter(nodes):
    if not isinstance(nodes, Mapping):
        raise TypeError(f"nodes must be a mapping from name to component, got {type(nodes).__name__}.")
    return dict(nodes)


def _edges_converter(edges):
    if isinstance(edges, Edge):
        return (edges,)  # a single edge
    if isinstance(edges, (str, bytes, Mapping)) or not hasattr(edges, "__iter__"):
        raise TypeError(f"edges must be a list of Edge, got {type(edges).__name__}; "
                        f"e.g. edges=[Edge('world.frames', 'enc')].")
    edges = tuple(edges)
    for i, e in enumerate(edges):
        if not isinstance(e, Edge):
            hint = f"; write Edge{tuple(e)!r}" if isinstance(e, (tuple, list)) else ""
            raise TypeError(f"edges[{i}] must be an Edge, got {type(e).__name__} {e!r}{hint}.")
    return edges


def _dt_ms(value):
    if not is_real(value):
        raise TypeError(f"dt_ms must be a number of ms (the simulation step), got {value!r}; use e.g. 10.")
    return float(value)



@attrs.frozen(eq=False)
class Circuit:
    """A graph of components joined by delayed edges.

    Parameters
    ----------
    nodes : dict of str -> AbstractComponent
        Named components. Names are identifiers other than ``world`` and
        ``<node>_mu`` / ``<node>_logvar`` of another node (a Gaussian
        encoder's auxiliary traces). In results datasets a node named like
        one of the dataset's own variables or dimensions is stored as
        ``node_<name>``.
    edges : sequence of Edge
    dt_ms : float
        The simulation step in ms (default 10 ms, one frame).
    """

    nodes: dict[str, AbstractComponent] = attrs.field(converter=_nodes_converter)
    edges: tuple[Edge, ...] = attrs.field(converter=_edges_converter)
    dt_ms: float = attrs.field(default=10.0, converter=_dt_ms)

    def __attrs_post_init__(self):
        self.plan()  # check the structure now, so a bad circuit never gets built

    # ------------------------------------------------------------------ checks
    def plan(self, input_shapes: Mapping[str, tuple[int, ...]] | None = None) -> Plan:
        """Check the circuit and return its execution :class:`~neurodelay.circuit.plan.Plan`.

        ``input_shapes``, the world streams' shapes per sample and step, and the errors raised: see
        :func:`~neurodelay.circuit.plan.make_plan`.
        """
        return make_plan(self, input_shapes)

    # ------------------------------------------------------------------ build
    def build(self, world=None, *, input_shapes: Mapping[str, tuple] | None = None) -> "CircuitModule":
        """Build the torch module, checking shapes against the world's streams.

        Parameters
        ----------
        world : world spec, optional
            Supplies the stream shapes (its ``frame_shape`` and ``n_factors``).
        input_shapes : dict, optional
            Stream shapes given directly. Without either, the shapes of a
            default 32 px :class:`~neurodelay.worlds.MovingCircle` are used.
            With both, they must agree.
        """
        if input_shapes is None:
            if world is None:
                world = MovingCircle()
            input_shapes = world_shapes(world)
        elif world is not None:
            given, of_world = check_input_shapes(input_shapes), world_shapes(world)
            differ = {k: (given[k], v) for k, v in of_world.items() if k in given and given[k] != v}
            if differ:
                name, (a, b) = next(iter(differ.items()))
                raise ShapeError(f"build: input_shapes[{name!r}] = {a} disagrees with the world's {b}; give "
                                 f"the world or input_shapes, not both.")
        return CircuitModule(self, self.plan(input_shapes))

    def describe(self, input_shapes=None) -> str:
        """The circuit's schedule as text (see :meth:`Plan.describe`).

        ``input_shapes``: the world streams' shapes (a dict, as for
        :meth:`plan`) or a world spec (as for :meth:`build`); with them the
        schedule lists each node's output shape. None: shapes unchecked and
        not listed.
        """
        if input_shapes is not None and hasattr(input_shapes, "frame_shape") and hasattr(input_shapes, "n_factors"):
            input_shapes = world_shapes(input_shapes)
        return self.plan(input_shapes).describe(self.dt_ms)



def world_shapes(world) -> dict[str, tuple[int, ...]]:
    """Per-sample, per-step shapes of a world's streams."""
    if not (hasattr(world, "frame_shape") and hasattr(world, "n_factors")):
        raise TypeError(f"world must be a world spec (with frame_shape and n_factors, e.g. "
                        f"neurodelay.MovingCircle()), got {type(world).__name__} {world!r}; or give "
                        f"input_shapes instead.")
    return {"world.frames": tuple(world.frame_shape), "world.factors": (int(world.n_factors),)}

