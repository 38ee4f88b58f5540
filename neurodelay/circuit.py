"""Circuits: components joined by edges that carry conduction delays.

A :class:`Circuit` is a frozen spec: named nodes (components) and edges. Its
structure is checked when it is made (unknown nodes and ports, delays off the
time grid, algebraic loops); shapes are checked when it is built against the
shapes of the world's streams. ``circuit.build(...)`` returns a
:class:`CircuitModule`, a ``torch.nn.Module`` that runs the circuit and that
training can backpropagate through.

Execution
---------
Nodes outside every cycle run over the whole sequence at once (time folded
into the batch); delays on their inputs are shifts. Nodes inside a cycle step
through time together, reading delayed values from their sources' histories.
``mode="step"`` steps every node, which gives the same numbers and is kept
for testing.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Mapping

import attrs
import numpy as np
import torch
from torch import Tensor, nn

from ._linear import analyse_loop
from ._util.timegrid import ms_to_steps
from ._util.validators import is_int, is_real
from .components.base import AbstractComponent, FrameModule, PortShapeError, RunContext
from .components.delays import DelayLine, time_window
from .errors import CircuitError, ShapeError

__all__ = ["Edge", "Circuit", "CircuitModule", "Plan", "WORLD_STREAMS"]

#: Streams every world provides, and the default shapes of a 32 px moving-circle world.
WORLD_STREAMS = ("world.frames", "world.factors")
_INF = math.inf
#: Auxiliary traces a node may add, recorded as ``<node>_<name>``.
_AUX_TRACES = ("mu", "logvar")
#: Linear cycles are solved in closed form only past this many steps after start-up. Measured
#: (benchmarks/RESULTS.md, 2026-11-28 20:45): the closed form overtakes stepping at about 16 steps
#: in all, and every study in studies/ (at most 12 frames) is stepped, so its numbers do not change.
_MIN_CLOSED_FORM_STEPS = 16


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


def _flag(inst, attr, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Edge.{attr.name} must be True or False, got {value!r}.")
    if type(value) is not bool:  # numpy's bool: store the plain one (specs are saved as YAML)
        object.__setattr__(inst, attr.name, bool(value))


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
        :func:`~neurodelay.train.train` keeps the parameter within the
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


@dataclass
class _EdgeInfo:
    index: int
    edge: Edge
    source: str
    node: str
    port: str
    steps: float | np.ndarray
    ceil_steps: int
    instantaneous: bool  # can carry a signal within the same step

    @property
    def label(self) -> str:
        return f"edge {self.index} ({self.edge.source} -> {self.node}.{self.port})"

    @property
    def delayed(self) -> bool:
        return self.edge.learn_delay or bool(np.any(np.asarray(self.steps) != 0))


@dataclass
class Plan:
    """The checked structure of a circuit: edges in steps, execution groups, validity.

    Attributes
    ----------
    edges : list
        Resolved edges with delays in steps.
    groups : list of (str, list of str)
        Execution groups in order: ``("sequence", [node])`` runs over the whole
        sequence at once; ``("loop", nodes)`` steps the nodes through time, in
        that order within each step.
    valid_from : dict
        First valid step of every node and stream.
    shapes : dict
        Output shape (per sample and step) of every node and stream.
    """

    edges: list[_EdgeInfo]
    groups: list[tuple[str, list[str]]]
    valid_from: dict[str, int]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    start_orders: list[list[str]] = field(default_factory=list)
    global_start_order: list[str] = field(default_factory=list)

    def port_valid(self, node: str) -> dict[str, int]:
        """First valid step of each input port of ``node``."""
        valid: dict[str, int] = {}
        for e in self.inputs_of(node):
            v = self.valid_from[e.source] + e.ceil_steps
            valid[e.port] = max(valid.get(e.port, 0), v)
        return valid

    def inputs_of(self, node: str) -> list[_EdgeInfo]:
        return [e for e in self.edges if e.node == node]

    def describe(self, dt_ms: float) -> str:
        """A human-readable schedule: groups, delays in steps, first valid steps."""
        lines = ["execution schedule:"]
        for kind, nodes in self.groups:
            how = "whole sequence" if kind == "sequence" else "steps through time"
            lines.append(f"  {' -> '.join(nodes)}: {how}")
        lines.append("edges (delay in steps):")
        for e in self.edges:
            steps = np.asarray(e.steps)
            d = f"{float(steps):g}" if steps.ndim == 0 else "[" + ", ".join(f"{s:g}" for s in steps) + "]"
            extra = " (learned)" if e.edge.learn_delay else ""
            lines.append(f"  {e.edge.source} -> {e.node}.{e.port}: {d}{extra} = {e.edge.delay_ms} ms")
        lines.append(f"first valid step (dt = {dt_ms:g} ms):")
        for name, v in self.valid_from.items():
            if not name.startswith("world."):
                shape = self.shapes.get(name)
                lines.append(f"  {name}: step {v} ({v * dt_ms:g} ms)" + (f", shape {shape}" if shape else ""))
        return "\n".join(lines)


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
        """Check the circuit and return its execution :class:`Plan`.

        Parameters
        ----------
        input_shapes : dict, optional
            Shape per sample and step of each world stream (for example
            ``{"world.frames": (1, 32, 32), "world.factors": (6,)}``). With it
            every connection's shape is checked.

        Raises
        ------
        CircuitError
            Unknown node or port, bad delay, algebraic loop, unconnected node.
        ShapeError
            Connected shapes that do not fit.
        """
        if not (math.isfinite(self.dt_ms) and self.dt_ms > 0):
            raise CircuitError(f"dt_ms must be a positive number of ms, got {self.dt_ms!r}; use e.g. 10.")
        for name, comp in self.nodes.items():
            if not isinstance(name, str) or not name.isidentifier() or name == "world":
                raise CircuitError(
                    f"node name {name!r} is not allowed: use a Python identifier other than 'world'."
                )
            for other in self.nodes:
                if other != name and name in (f"{other}_{k}" for k in _AUX_TRACES):
                    raise CircuitError(
                        f"node name {name!r} clashes with the auxiliary trace {name!r} of node {other!r} "
                        f"(a Gaussian encoder's {', '.join(_AUX_TRACES)}); rename one of the two nodes."
                    )
            if not isinstance(comp, AbstractComponent):
                raise CircuitError(f"node {name!r} must be a component spec, got {type(comp).__name__}.")
        with np.errstate(over="ignore", invalid="ignore"):  # a delay of inf steps: reported by _resolve_edge
            infos = [self._resolve_edge(i, e) for i, e in enumerate(self.edges)]
        self._check_connected(infos)
        groups = _schedule(list(self.nodes), infos)
        valid = self._valid_from(infos)
        plan = Plan(infos, groups, valid)
        plan.start_orders = [_start_order(nodes, plan, self.nodes) for _, nodes in groups]
        plan.global_start_order = _start_order([n for _, g in groups for n in g], plan, self.nodes)
        if input_shapes is not None:
            plan.shapes = self._infer_shapes(infos, _check_input_shapes(input_shapes))
        return plan

    def _resolve_edge(self, index: int, edge: Edge) -> _EdgeInfo:
        where = f"edge {index} ({edge.label})"
        src = edge.source
        if src.startswith("world."):
            if not src[len("world."):].isidentifier():
                raise CircuitError(f"{where}: source {src!r} is not a valid world stream; "
                                   f"use one of {', '.join(WORLD_STREAMS)}.")
        elif src not in self.nodes:
            raise CircuitError(f"{where}: source {src!r} is not a node or world stream"
                               f"{_suggest(src, list(self.nodes) + list(WORLD_STREAMS))}.")
        node, _, port = edge.target.partition(".")
        if node not in self.nodes:
            raise CircuitError(f"{where}: target node {node!r} does not exist"
                               f"{_suggest(node, list(self.nodes))}.")
        ports = self.nodes[node].ports
        if not port:
            if len(ports) != 1:
                raise CircuitError(f"{where}: node {node!r} ({self.nodes[node].kind}) has ports "
                                   f"{', '.join(ports)}; name one, e.g. '{node}.{ports[0]}'.")
            port = ports[0]
        elif port not in ports:
            raise CircuitError(f"{where}: node {node!r} ({self.nodes[node].kind}) has no port {port!r}; "
                               f"its ports are {', '.join(ports)}{_suggest(port, list(ports))}.")
        if edge.learn_delay:
            if edge.max_delay_ms is None:
                raise CircuitError(f"{where}: learn_delay needs max_delay_ms, the largest delay "
                                   f"it may learn (e.g. max_delay_ms: {4 * self.dt_ms:g}).")
            lo = ms_to_steps(edge.min_delay_ms, self.dt_ms, what=where + " min_delay_ms", fractional=True)
            hi = ms_to_steps(edge.max_delay_ms, self.dt_ms, what=where + " max_delay_ms", fractional=True)
            steps = ms_to_steps(edge.delay_ms, self.dt_ms, what=where, fractional=True)
            _check_finite_steps(where, "max_delay_ms", edge.max_delay_ms, hi, self.dt_ms)
            if hi < lo or np.any(np.asarray(steps) > hi) or np.any(np.asarray(steps) < lo):
                raise CircuitError(f"{where}: delay_ms={edge.delay_ms} must lie in [min_delay_ms, "
                                   f"max_delay_ms] = [{edge.min_delay_ms:g}, {edge.max_delay_ms:g}].")
            ceil_steps, min_steps = int(math.ceil(hi)), lo
        else:
            for key, unset in (("min_delay_ms", 0.0), ("max_delay_ms", None)):
                bound = getattr(edge, key)
                if bound != unset:
                    raise CircuitError(f"{where}: {key}={bound:g} bounds a learned delay, but learn_delay is "
                                       f"False, so the delay stays at delay_ms={edge.delay_ms}: set "
                                       f"learn_delay=True to learn it, or leave {key} out.")
            steps = ms_to_steps(edge.delay_ms, self.dt_ms, what=where, fractional=edge.fractional)
            _check_finite_steps(where, "delay_ms", edge.delay_ms, steps, self.dt_ms)
            ceil_steps = int(math.ceil(float(np.max(steps))))
            min_steps = float(np.min(steps))
        return _EdgeInfo(index, edge, src, node, port, steps, ceil_steps, min_steps < 1.0)

    def _check_connected(self, infos: list[_EdgeInfo]) -> None:
        for name, comp in self.nodes.items():
            connected = {e.port for e in infos if e.node == name}
            missing = [p for p in comp.required_ports() if p not in connected]
            if missing:
                raise CircuitError(f"node {name!r} ({comp.kind}): port(s) {', '.join(missing)} have no "
                                   f"incoming edge; add an edge with target '{name}.{missing[0]}'.")

    def _valid_from(self, infos: list[_EdgeInfo]) -> dict[str, int]:
        valid: dict[str, float] = {e.source: 0 for e in infos if e.source.startswith("world.")}
        valid.update({n: _INF for n in self.nodes})
        for _ in range(len(self.nodes) + 2):
            changed = False
            for name, comp in self.nodes.items():
                port_valid: dict[str, float] = {}
                for e in infos:
                    if e.node == name:
                        v = valid[e.source] + e.ceil_steps
                        port_valid[e.port] = max(port_valid.get(e.port, 0), v)
                v_new = comp.valid_from(port_valid)
                if v_new != valid[name]:
                    valid[name], changed = v_new, True
            if not changed:
                break
        never = [n for n in self.nodes if valid[n] == _INF]
        if never:
            raise CircuitError(
                f"node(s) {', '.join(never)} never receive a signal from the world: every path into "
                f"them starts in a cycle with no outside drive. Connect a world stream (or a node "
                f"fed by one) to them."
            )
        return {k: int(v) for k, v in valid.items()}

    def _infer_shapes(self, infos, input_shapes):
        shapes: dict[str, tuple | None] = {}
        for e in infos:
            if e.source.startswith("world."):
                if e.source not in input_shapes:
                    raise CircuitError(f"{e.label}: the world has no stream {e.source!r}; "
                                       f"available: {', '.join(sorted(input_shapes))}.")
                shapes[e.source] = tuple(input_shapes[e.source])
        shapes.update({n: None for n in self.nodes})

        def port_shapes(name, check):
            out = {}
            for e in infos:
                if e.node != name:
                    continue
                s = shapes[e.source]
                if check and s is not None:
                    self._check_edge_shape(e, s)
                prev = out.get(e.port)
                if check and prev is not None and s is not None and prev != s:
                    raise ShapeError(f"{e.label}: carries shape {s} but another edge into "
                                     f"'{e.node}.{e.port}' carries {prev}; edges into one port are "
                                     f"summed and must have equal shapes.")
                out[e.port] = s if prev is None else prev
            return out

        for _ in range(len(self.nodes) + 1):
            for name, comp in self.nodes.items():
                if shapes[name] is None:
                    try:
                        shapes[name] = comp.out_shape(port_shapes(name, False))
                    except PortShapeError:
                        pass  # reported with full context below
        for name, comp in self.nodes.items():
            ps = port_shapes(name, True)
            try:
                out = comp.out_shape(ps)
            except PortShapeError as err:
                bad = [e for e in infos if e.node == name and e.port == err.port]
                src = bad[0] if bad else None
                got = ps.get(err.port)
                raise ShapeError(
                    f"{src.label if src else f'node {name!r}'}: {src.source if src else ''} has shape "
                    f"{got} but node {name!r} ({comp.kind}) {err}."
                ) from None
            if out is None:
                raise ShapeError(f"node {name!r}: its output shape cannot be inferred; "
                                 f"give it an input with a known shape.")
            shapes[name] = tuple(out)
        return shapes

    @staticmethod
    def _check_edge_shape(e: _EdgeInfo, shape):
        steps = np.asarray(e.steps)
        if steps.ndim == 1 and (len(shape) != 1 or shape[0] != steps.shape[0]):
            raise ShapeError(f"{e.label}: {steps.shape[0]} per-channel delays need a vector source "
                             f"of {steps.shape[0]} channels, but {e.source!r} has shape {shape}.")

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
                from .worlds import MovingCircle

                world = MovingCircle()
            input_shapes = world_shapes(world)
        elif world is not None:
            given, of_world = _check_input_shapes(input_shapes), world_shapes(world)
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


def _check_input_shapes(input_shapes) -> dict[str, tuple[int, ...]]:
    """``input_shapes`` as a dict of stream name -> tuple of positive ints, or a clear error."""
    if not isinstance(input_shapes, Mapping):
        raise TypeError(f"input_shapes must be a dict from world stream to the shape of one sample's step, e.g. "
                        f"{{'world.frames': (1, 32, 32), 'world.factors': (6,)}}; got "
                        f"{type(input_shapes).__name__}.")
    out = {}
    for name, shape in input_shapes.items():
        if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
            ok = False
        else:
            shape = tuple(shape)
            ok = all(is_int(n) and n >= 1 for n in shape)
        if not ok:
            raise TypeError(f"input_shapes[{name!r}] must be a tuple of positive ints (the shape of one "
                            f"sample's step, without the sample and time axes), got {shape!r}; e.g. (6,) "
                            f"for 6 factors or (1, 32, 32) for frames.")
        out[name] = tuple(int(n) for n in shape)
    return out


def _check_finite_steps(where: str, key: str, value_ms, steps, dt_ms: float) -> None:
    """Reject a finite delay in ms that is infinitely many steps of ``dt_ms`` (the division overflows)."""
    if not np.all(np.isfinite(steps)):
        raise CircuitError(f"{where}: {key}={value_ms} is too long for dt_ms={dt_ms:g} ({key} / dt_ms "
                           f"overflows); use a delay of at most a few times the sequence length.")


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    if options:
        return f"; valid: {', '.join(options)}"
    return ""


def _schedule(nodes: list[str], infos: list[_EdgeInfo]) -> list[tuple[str, list[str]]]:
    """Group nodes into strongly connected components in dependency order."""
    succ = {n: [] for n in nodes}
    self_loop = set()
    for e in infos:
        if e.source in succ:
            succ[e.source].append(e.node)
            if e.source == e.node:
                self_loop.add(e.node)
    # Tarjan's algorithm (iterative); emits components in reverse topological order.
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            recurse = False
            for j in range(i, len(succ[v])):
                w = succ[v][j]
                if w not in index:
                    work.append((v, j + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                comps.append(comp)
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
    comps.reverse()
    order = {n: i for i, n in enumerate(nodes)}
    groups = []
    for comp in comps:
        comp.sort(key=order.get)
        if len(comp) == 1 and comp[0] not in self_loop:
            groups.append(("sequence", comp))
        else:
            groups.append(("loop", _order_within_step(comp, infos)))
    return groups


def _order_within_step(comp: list[str], infos: list[_EdgeInfo]) -> list[str]:
    """Order a cycle's nodes by their same-step (instantaneous) edges; reject algebraic loops."""
    members = set(comp)
    inst = [e for e in infos if e.instantaneous and e.source in members and e.node in members]
    deps = {n: {e.source for e in inst if e.node == n} for n in comp}
    done: list[str] = []
    remaining = list(comp)
    while remaining:
        ready = [n for n in remaining if deps[n] <= set(done)]
        if not ready:
            cycle = _find_cycle(remaining, deps)
            # The shortest delay each edge may have: a learned delay's lower bound, else its smallest channel.
            total = sum(e.edge.min_delay_ms if e.edge.learn_delay else float(np.min(np.asarray(e.edge.delay_ms)))
                        for e in inst if e.source in cycle and e.node in cycle)
            raise CircuitError(
                f"algebraic loop: the cycle {' -> '.join(cycle + [cycle[0]])} has no edge of at least one "
                f"step of delay (its edges' shortest delays add up to {total:g} ms), so each node would need "
                f"its own output to compute it. Give one edge of the cycle a delay of at least one step (dt)."
            )
        done.extend(ready)
        remaining = [n for n in remaining if n not in ready]
    return done


def _start_order(nodes: list[str], plan: Plan, specs) -> list[str]:
    """Order of ``nodes`` at the first step.

    At step 0 a delay line holds the first value it will deliver, which is
    its source's value at step 0: every edge acts as if instantaneous, except
    into ports that a component does not read yet (a Blend's prediction before
    it arrives).
    """
    members = set(nodes)
    deps = {n: set() for n in nodes}
    for e in plan.edges:
        if e.source in members and e.node in members:
            if specs[e.node].reads(e.port, 0, plan.port_valid(e.node)):
                deps[e.node].add(e.source)
    done: list[str] = []
    remaining = list(nodes)
    while remaining:
        ready = [n for n in remaining if deps[n] <= set(done)]
        if not ready:
            cycle = _find_cycle(remaining, deps)
            raise CircuitError(
                f"the cycle {' -> '.join(cycle + [cycle[0]])} has no defined first value: before "
                f"their first input arrives delay lines hold the first value they will deliver, "
                f"which here depends on itself. Close the loop through a Blend's prediction port."
            )
        done.extend(ready)
        remaining = [n for n in remaining if n not in ready]
    return done


def _find_cycle(nodes: list[str], deps: dict[str, set[str]]) -> list[str]:
    # Walk backwards along dependencies until a node repeats.
    path, seen = [], {}
    v = nodes[0]
    while v not in seen:
        seen[v] = len(path)
        path.append(v)
        v = next(iter(sorted(d for d in deps[v] if d in nodes)))
    cycle = path[seen[v]:]
    cycle.reverse()  # source -> target order
    return cycle


class CircuitModule(nn.Module):
    """A built circuit: a torch module mapping world streams to node traces.

    Call it with a dict of world streams, each of shape (sample, time, ...),
    and get a dict of traces, one per node (and ``<node>_<extra>`` for
    auxiliary outputs such as ``enc_mu``), each of shape (sample, time, ...).
    """

    def __init__(self, circuit: Circuit, plan: Plan):
        super().__init__()
        self.circuit = circuit
        self.plan = plan
        self.dt_ms = circuit.dt_ms
        self.nodes = nn.ModuleDict({n: c.build() for n, c in circuit.nodes.items()})
        delays = {}
        for e in plan.edges:
            if e.delayed:
                lo = hi = None
                if e.edge.learn_delay:
                    lo = e.edge.min_delay_ms / self.dt_ms
                    hi = e.edge.max_delay_ms / self.dt_ms
                delays[str(e.index)] = DelayLine(e.steps, learnable=e.edge.learn_delay,
                                                 min_steps=lo or 0.0, max_steps=hi)
        self.delays = nn.ModuleDict(delays)
        # The same modules by edge index: looked up per step in stepped loops.
        self._lines = {int(k): line for k, line in delays.items()}
        # Fixed by the plan: each node's input edges and its ports' first valid steps.
        self._inputs = {n: plan.inputs_of(n) for n in circuit.nodes}
        self._valid = {n: plan.port_valid(n) for n in circuit.nodes}
        self._linear = [analyse_loop(nodes, plan, circuit.nodes, self._delay) if kind == "loop" else None
                        for kind, nodes in plan.groups]
        # Memoryless nodes outside cycles that read one input: their frames are computed
        # directly from the undelayed source. Those no node reads may skip unneeded steps.
        read = {e.source for e in plan.edges}
        self._framewise = {
            nodes[0] for kind, nodes in plan.groups
            if kind == "sequence" and isinstance(self.nodes[nodes[0]], FrameModule)
            and len(self._inputs[nodes[0]]) == 1 and self._inputs[nodes[0]][0].port == "in"}
        self._skippable = {n for n in self._framewise if n not in read}
        # Nodes with a random part (a Gaussian latent): while sampling they are not skipped, so that
        # their draws at the steps kept are those of the whole sequence.
        self._random = {n for n in self._skippable
                        if type(self.nodes[n]).frame_random is not FrameModule.frame_random}
        # The world streams the circuit reads, each with the nodes whose parameters' dtype and device it must
        # have (for _check_streams): the nodes it feeds, then, past nodes without parameters (relays), the
        # nodes those feed, nearest first.
        self._streams_read = {s: _reached_from(s, plan.edges)
                              for s in sorted({e.source for e in plan.edges if e.source.startswith("world.")})}
        # Names of the traces forward returns (a stream may not take one: it would hide the trace).
        self._trace_names = set(circuit.nodes) | {f"{n}_{k}" for n in circuit.nodes for k in _AUX_TRACES}

    def _delay(self, e: _EdgeInfo) -> DelayLine | None:
        return self._lines.get(e.index)

    def forward(self, streams: Mapping[str, Tensor], *, ctx: RunContext | None = None,
                mode: str = "auto", skip_before: Mapping[str, int] | None = None) -> dict[str, Tensor]:
        """Run the circuit.

        Parameters
        ----------
        streams : dict of str -> Tensor
            World streams, each (sample, time, ...).
        ctx : RunContext, optional
            Randomness and sampling settings.
        mode : {"auto", "sequence", "step"}
            ``"sequence"`` runs nodes outside cycles over the whole sequence
            and steps the nodes of each cycle through time; ``"step"`` steps
            every node (the same numbers, slower); ``"auto"`` (default) is
            ``"sequence"`` except that cycles linear in their state (relays,
            blends, extrapolators, fixed whole-step delays) are solved in
            closed form when at least 16 steps follow the cycle's start-up
            and its recurrence does not grow too fast (the same numbers up
            to float rounding, much faster on long sequences); shorter
            sequences are stepped as in ``"sequence"``.
        skip_before : dict of str -> int (>= 0), optional
            Steps that are not needed, per node: a memoryless node (an
            encoder, a decoder) that no other node reads and that is outside
            cycles does not compute the steps before ``skip_before[node]``;
            its trace (and its auxiliary traces) hold zeros there. Training
            passes the first step each loss term scores
            (:func:`neurodelay.objectives.first_scored_steps`). Other nodes,
            nodes with a random part while ``ctx.sample`` (a Gaussian
            encoder: its draws stay those of the whole sequence), and
            ``mode="step"``, compute every step.

        Returns
        -------
        dict of str -> Tensor
            One trace per node (and auxiliary traces), (sample, time, ...).
        """
        ctx = _check_ctx(ctx)
        plan = self.plan
        n_t = self._check_streams(streams)
        if mode not in ("auto", "sequence", "step"):
            raise ValueError(f"mode must be 'auto', 'sequence' or 'step', got {mode!r}.")
        if skip_before is not None and not isinstance(skip_before, Mapping):
            raise TypeError(f"skip_before must be a dict from node name to its first needed step (e.g. "
                            f"first_scored_steps(...)), or None; got {type(skip_before).__name__} {skip_before!r}.")
        skip = {}
        for node, first in (skip_before or {}).items():
            if node not in self.nodes:
                raise ValueError(f"skip_before: node {node!r} does not exist; the circuit's nodes are "
                                 f"{', '.join(self.nodes)}.")
            if not is_int(first) or first < 0:
                raise ValueError(f"skip_before[{node!r}] must be a whole number of steps >= 0 (the first step "
                                 f"the node must compute), got {first!r}.")
            if node in self._skippable and int(first) > 0 and not (ctx.sample and node in self._random):
                skip[node] = min(int(first), n_t - 1)
        if mode == "step":
            groups = [("loop", _global_step_order(plan), plan.global_start_order, None)]
        else:
            groups = [(kind, nodes, start, self._linear[i] if mode == "auto" else None)
                      for i, ((kind, nodes), start) in enumerate(zip(plan.groups, plan.start_orders))]
        traces: dict[str, Tensor] = dict(streams)
        for kind, nodes, start, linear in groups:
            if kind == "sequence":
                self._run_sequence(nodes[0], traces, ctx, skip.get(nodes[0], 0))
            else:
                self._run_loop(nodes, traces, ctx, n_t, start, linear)
        return {k: v for k, v in traces.items() if k not in streams}


    def _check_streams(self, streams) -> int:
        """Check the world streams against the shapes this module was built for; the number of steps.

        Each stream the circuit reads must be there, a floating-point tensor
        (sample, time, ...) whose per-step shape is the one given to
        :meth:`Circuit.build`, with the same samples and steps as the others
        and the dtype and device of the parameters of the nodes it feeds
        (past nodes without parameters, such as relays, of the nearest nodes
        it reaches that have some). No stream may be named like a trace
        (a node, or ``<node>_mu``/``<node>_logvar``).
        """
        if not isinstance(streams, Mapping) or not streams:
            got = repr(streams) if isinstance(streams, Mapping) else type(streams).__name__
            raise ValueError(f"streams must be a non-empty dict of world streams (name -> tensor (sample, time, "
                             f"...)), e.g. episode.streams(); got {got}.")
        hidden = sorted(k for k in streams if k in self._trace_names)
        if hidden:
            raise ValueError(f"streams: {hidden[0]!r} names one of the circuit's traces (its nodes are "
                             f"{', '.join(self.nodes)}); pass the world streams only, e.g. episode.streams() "
                             f"({', '.join(WORLD_STREAMS)}).")
        rebuild = "build the circuit for this world: circuit.build(world) or build_seeded(circuit, world=world)"
        needed = list(self._streams_read)
        missing = [k for k in needed if k not in streams]
        if missing:
            raise ValueError(f"streams: the circuit reads {', '.join(map(repr, missing))}, which streams lacks "
                             f"(it has {', '.join(map(repr, streams))}).")
        lead = None
        for name in needed:
            x = streams[name]
            if not isinstance(x, Tensor):
                raise TypeError(f"stream {name!r} must be a torch.Tensor (sample, time, ...), got "
                                f"{type(x).__name__}; convert it with torch.as_tensor(..., dtype=torch.float32).")
            want = self.plan.shapes.get(name)
            if x.dim() < 2 or (want is not None and tuple(x.shape[2:]) != tuple(want)):
                built = ("tensors (sample, time, ...)" if want is None else
                         f"steps of shape {tuple(want)} (tensors (sample, time, {', '.join(map(str, want))}))")
                raise ShapeError(f"stream {name!r}: this module was built for {built}, got a tensor of shape "
                                 f"{tuple(x.shape)}; {rebuild}.")
            if not x.is_floating_point():
                raise TypeError(f"stream {name!r} has dtype {x.dtype}; the circuit needs floating-point "
                                f"values (frames in [0, 1]): convert with .float() (and / 255 for 8-bit images).")
            # The parameters of the first node it feeds that has any (an encoder, say).
            param = next((p for node in self._streams_read[name] for p in self.nodes[node].parameters()), None)
            if param is not None and (x.dtype != param.dtype or x.device != param.device):
                raise TypeError(f"stream {name!r} is {x.dtype} on {x.device}, but the module's parameters are "
                                f"{param.dtype} on {param.device}: convert the stream with "
                                f".to({param.device.type!r}, {param.dtype}) (or the module with module.to(...)).")
            if lead is None:
                lead = (name, tuple(x.shape[:2]))
            elif tuple(x.shape[:2]) != lead[1]:
                raise ShapeError(f"streams disagree on (sample, time): {lead[0]!r} has {lead[1]}, {name!r} has "
                                 f"{tuple(x.shape[:2])}.")
        if lead is None:  # the circuit reads no stream (every node is fed from a cycle): take any
            x = next(iter(streams.values()))
            lead = ("", tuple(x.shape[:2]) if isinstance(x, Tensor) and x.dim() >= 2 else (0, 0))
        if min(lead[1]) < 1:
            raise ValueError(f"streams have {lead[1][0]} samples and {lead[1][1]} steps; at least one of each "
                             f"is needed.")
        return lead[1][1]

    def _run_sequence(self, node: str, traces: dict[str, Tensor], ctx: RunContext, skip: int = 0) -> None:
        if node in self._framewise:
            self._run_framewise(node, traces, ctx, skip)
            return
        inputs: dict[str, Tensor] = {}
        for e in self._inputs[node]:
            x = traces[e.source]
            d = self._delay(e)
            if d is not None:
                x = d(x)
            inputs[e.port] = x if e.port not in inputs else inputs[e.port] + x
        out, extras = self.nodes[node].forward_sequence(inputs, self._valid[node], ctx)
        traces[node] = out
        for k, x in extras.items():
            traces[f"{node}_{k}"] = x

    def _run_framewise(self, node: str, traces: dict[str, Tensor], ctx: RunContext, skip: int) -> None:
        """A memoryless node on one input: each distinct frame it needs is computed once.

        Output step ``t`` is the node applied to the source at ``max(t - k, 0)``
        for a whole-step delay of ``k``. While the delay line holds its first
        value (``t < k``) the deterministic part of the node
        (:meth:`~neurodelay.components.base.FrameModule.frame_deterministic`)
        repeats, so only the source's frames ``a .. T - k - 1`` are computed
        (``a = max(skip - k, 0)``), the first is repeated, and the random part
        (``frame_random``) is applied to every step, drawing as it would for
        the full sequence. Steps before ``skip`` hold zeros.
        """
        module = self.nodes[node]
        e = self._inputs[node][0]
        x = traces[e.source]
        n_s, n_t = x.shape[:2]
        d = self._delay(e)
        k = 0 if d is None else d.whole_steps
        probe = None
        if k is None:
            x, k = d(x), 0  # fractional, per-channel or learned delays: delay the sequence first
        elif k > 0:
            k = min(k, n_t - 1)
            a = max(skip - k, 0)
            frames = x[:, a:n_t - k]
            probe = module.frame_deterministic(frames.reshape(-1, *x.shape[2:]), ctx)
            if probe is None:
                x, k = d(x), 0  # no deterministic part declared: every step on its own
        if skip == 0 and k == 0:
            out, extras = module.forward_sequence({"in": x}, self._valid[node], ctx)
        else:
            if probe is None:  # no delay to exploit: only the skipped steps are left out
                out, extras = module.frame(x[:, skip:].reshape(-1, *x.shape[2:]), ctx)
            else:
                hold = max(k - skip, 0)  # steps at which the line still holds the first frame

                def held(y: Tensor) -> Tensor:
                    y = y.reshape(n_s, -1, *y.shape[1:])
                    if hold:
                        y = torch.cat([y[:, :1].expand(n_s, hold, *y.shape[2:]), y], dim=1)
                    return y.reshape(-1, *y.shape[2:])

                out, extras = module.frame_random(held(probe[0]), {name: held(v) for name, v in probe[1].items()},
                                                  ctx)
            out, extras = _after_skip(out, skip, n_s), {name: _after_skip(v, skip, n_s)
                                                        for name, v in extras.items()}
        traces[node] = out
        for name, v in extras.items():
            traces[f"{node}_{name}"] = v

    def _run_loop(self, nodes: list[str], traces: dict[str, Tensor], ctx: RunContext, n_t: int,
                  start_order: list[str], linear=None) -> None:
        plan = self.plan
        members = set(nodes)
        external: dict[int, Tensor] = {}
        for n in nodes:
            for e in self._inputs[n]:
                if e.source not in members:
                    x = traces[e.source]
                    d = self._delay(e)
                    external[e.index] = d(x) if d is not None else x
        if linear is not None and (n_t - linear.t0 < _MIN_CLOSED_FORM_STEPS or not linear.suits(n_t - linear.t0)):
            linear = None  # short sequences (stepping is cheaper) or growing recurrences (stepping is exact)
        n_stepped = n_t if linear is None else min(n_t, linear.t0)
        hist: dict[str, list[Tensor]] = {n: [] for n in nodes}
        extra_hist: dict[tuple[str, str], list[Tensor]] = {}
        states = {n: self.nodes[n].init_state() for n in nodes}
        valids = self._valid
        specs = self.circuit.nodes
        # One unbind per outside input instead of a select per step: the backward
        # of a select writes a zero tensor of the whole sequence for every step.
        ext_steps = {k: time_window(x, 0, n_stepped).unbind(1) for k, x in external.items()}
        # Per node, once: its step function, its reads() if it overrides the default
        # (every port at every step), its valid steps, per edge (port, outside steps
        # or None, delay line or None, source history), and its own history.
        steppers = {}
        for n in nodes:
            edges = [(e.port, ext_steps.get(e.index), self._delay(e), hist.get(e.source))
                     for e in self._inputs[n]]
            may_skip = type(specs[n]).reads is not AbstractComponent.reads
            steppers[n] = (self.nodes[n].forward_step, specs[n].reads if may_skip else None, valids[n], edges,
                           hist[n])
        for t in range(n_stepped):
            for n in (start_order if t == 0 else nodes):
                step, reads, valid, edges, own = steppers[n]
                inputs: dict[str, Tensor] = {}
                for port, outside, d, source in edges:
                    if reads is not None and not reads(port, t, valid):
                        continue
                    if outside is not None:
                        x = outside[t]
                    else:
                        x = d.read(source, t) if d is not None else source[t]
                    inputs[port] = x if port not in inputs else inputs[port] + x
                out, extras, states[n] = step(inputs, t, valid, states[n], ctx)
                own.append(out)
                for k, x in extras.items():
                    extra_hist.setdefault((n, k), []).append(x)
        if n_stepped < n_t:
            traces.update(linear.solve(hist, external, n_t, plan.shapes))
            return
        for n in nodes:
            traces[n] = torch.stack(hist[n], dim=1)
        for (n, k), xs in extra_hist.items():
            traces[f"{n}_{k}"] = torch.stack(xs, dim=1)


def _check_ctx(ctx) -> RunContext:
    """``ctx`` (a default :class:`RunContext` for None), checked."""
    if ctx is None:
        return RunContext()
    if not isinstance(ctx, RunContext):
        raise TypeError(f"ctx must be a RunContext (or None), got {type(ctx).__name__} {ctx!r}; use e.g. "
                        f"RunContext(generator=torch.Generator().manual_seed(0), sample=True).")
    if ctx.generator is not None and not isinstance(ctx.generator, torch.Generator):
        raise TypeError(f"ctx.generator must be a torch.Generator (or None for torch's global generator), got "
                        f"{type(ctx.generator).__name__} {ctx.generator!r}; use torch.Generator().manual_seed(seed).")
    if not isinstance(ctx.sample, (bool, np.bool_)):
        raise TypeError(f"ctx.sample must be True or False (draw Gaussian latents or use their means), got "
                        f"{ctx.sample!r}.")
    return ctx


def _reached_from(stream: str, edges: list[_EdgeInfo]) -> list[str]:
    """Nodes a stream reaches, breadth first: the nodes it feeds, then the nodes those feed, and so on."""
    order: list[str] = []
    frontier = [stream]
    while frontier:
        nxt = []
        for src in frontier:
            for e in edges:
                if e.source == src and e.node not in order:
                    order.append(e.node)
                    nxt.append(e.node)
        frontier = nxt
    return order


def _after_skip(y: Tensor, skip: int, n_s: int) -> Tensor:
    """(sample * steps, ...) -> (sample, skip + steps, ...) with zeros for the first ``skip`` steps."""
    y = y.reshape(n_s, -1, *y.shape[1:])
    if not skip:
        return y
    return torch.cat([y.new_zeros((n_s, skip, *y.shape[2:])), y], dim=1)


def _global_step_order(plan: Plan) -> list[str]:
    order: list[str] = []
    for _, nodes in plan.groups:
        order.extend(nodes)
    return order
