"""Planning a circuit: its structure checked, delays in steps, the execution schedule.

:func:`make_plan` turns a :class:`~neurodelay.circuit.Circuit` spec into a
:class:`Plan`: every edge resolved (source, node, port, delay in steps),
nodes outside cycles scheduled to run over whole sequences and the nodes of
each cycle stepped together, every signal's first valid step, and (given the
world's stream shapes) every node's output shape. Errors name the edge or
node, the value and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

import numpy as np

from .._util.timegrid import ms_to_steps
from .._util.validators import did_you_mean, is_int
from ..components.base import AbstractComponent, PortShapeError
from ..errors import CircuitError, ShapeError

if TYPE_CHECKING:
    from .spec import Edge

__all__ = ["Plan", "EdgeInfo", "make_plan", "check_input_shapes", "global_step_order", "WORLD_STREAMS",
           "AUX_TRACES"]

#: Streams every world provides.
WORLD_STREAMS = ("world.frames", "world.factors")
#: Auxiliary traces a node may add, recorded as ``<node>_<name>``.
AUX_TRACES = ("mu", "logvar")
_INF = math.inf

@dataclass
class EdgeInfo:
    """An edge of a planned circuit: its source, target node and port, and its delay in steps."""

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

    edges: list[EdgeInfo]
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

    def inputs_of(self, node: str) -> list[EdgeInfo]:
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



def make_plan(circuit, input_shapes: Mapping[str, tuple[int, ...]] | None = None) -> Plan:
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
    if not (math.isfinite(circuit.dt_ms) and circuit.dt_ms > 0):
        raise CircuitError(f"dt_ms must be a positive number of ms, got {circuit.dt_ms!r}; use e.g. 10.")
    for name, comp in circuit.nodes.items():
        if not isinstance(name, str) or not name.isidentifier() or name == "world":
            raise CircuitError(
                f"node name {name!r} is not allowed: use a Python identifier other than 'world'.", node=name
            )
        for other in circuit.nodes:
            if other != name and name in (f"{other}_{k}" for k in AUX_TRACES):
                raise CircuitError(
                    f"node name {name!r} clashes with the auxiliary trace {name!r} of node {other!r} "
                    f"(a Gaussian encoder's {', '.join(AUX_TRACES)}); rename one of the two nodes.", node=name
                )
        if not isinstance(comp, AbstractComponent):
            raise CircuitError(f"node {name!r} must be a component spec, got {type(comp).__name__}.", node=name)
    with np.errstate(over="ignore", invalid="ignore"):  # a delay of inf steps: reported by _resolve_edge
        infos = [_resolve_edge(circuit, i, e) for i, e in enumerate(circuit.edges)]
    _check_connected(circuit, infos)
    groups = _schedule(list(circuit.nodes), infos)
    valid = _valid_from(circuit, infos)
    plan = Plan(infos, groups, valid)
    plan.start_orders = [_start_order(nodes, plan, circuit.nodes) for _, nodes in groups]
    plan.global_start_order = _start_order([n for _, g in groups for n in g], plan, circuit.nodes)
    if input_shapes is not None:
        plan.shapes = _infer_shapes(circuit, infos, check_input_shapes(input_shapes))
    return plan

def _resolve_edge(circuit, index: int, edge: Edge) -> EdgeInfo:
    where = f"edge {index} ({edge.label})"
    at = {"edge": index}  # what each error is about, as data (ConfigError's attributes)
    src = edge.source
    if src.startswith("world."):
        if not src[len("world."):].isidentifier():
            raise CircuitError(f"{where}: source {src!r} is not a valid world stream; "
                               f"use one of {', '.join(WORLD_STREAMS)}.", field="source", **at)
    elif src not in circuit.nodes:
        raise CircuitError(f"{where}: source {src!r} is not a node or world stream"
                           f"{did_you_mean(src, list(circuit.nodes) + list(WORLD_STREAMS), **_HINT)}.",
                           field="source", **at)
    node, _, port = edge.target.partition(".")
    if node not in circuit.nodes:
        raise CircuitError(f"{where}: target node {node!r} does not exist"
                           f"{did_you_mean(node, list(circuit.nodes), **_HINT)}.", field="target", **at)
    ports = circuit.nodes[node].ports
    if not port:
        if len(ports) != 1:
            raise CircuitError(f"{where}: node {node!r} ({circuit.nodes[node].kind}) has ports "
                               f"{', '.join(ports)}; name one, e.g. '{node}.{ports[0]}'.", field="target", **at)
        port = ports[0]
    elif port not in ports:
        raise CircuitError(f"{where}: node {node!r} ({circuit.nodes[node].kind}) has no port {port!r}; "
                           f"its ports are {', '.join(ports)}{did_you_mean(port, list(ports), **_HINT)}.",
                           field="target", **at)
    if edge.learn_delay:
        if edge.max_delay_ms is None:
            raise CircuitError(f"{where}: learn_delay needs max_delay_ms, the largest delay "
                               f"it may learn (e.g. max_delay_ms: {4 * circuit.dt_ms:g}).", field="learn_delay", **at)
        lo = ms_to_steps(edge.min_delay_ms, circuit.dt_ms, what=where + " min_delay_ms", fractional=True,
                         field="min_delay_ms", **at)
        hi = ms_to_steps(edge.max_delay_ms, circuit.dt_ms, what=where + " max_delay_ms", fractional=True,
                         field="max_delay_ms", **at)
        steps = ms_to_steps(edge.delay_ms, circuit.dt_ms, what=where, fractional=True, **at)
        _check_finite_steps(where, "max_delay_ms", edge.max_delay_ms, hi, circuit.dt_ms, index)
        if hi < lo or np.any(np.asarray(steps) > hi) or np.any(np.asarray(steps) < lo):
            raise CircuitError(f"{where}: delay_ms={edge.delay_ms} must lie in [min_delay_ms, "
                               f"max_delay_ms] = [{edge.min_delay_ms:g}, {edge.max_delay_ms:g}].", field="delay_ms",
                               value=edge.delay_ms, **at)
        ceil_steps, min_steps = int(math.ceil(hi)), lo
    else:
        for key, unset in (("min_delay_ms", 0.0), ("max_delay_ms", None)):
            bound = getattr(edge, key)
            if bound != unset:
                raise CircuitError(f"{where}: {key}={bound:g} bounds a learned delay, but learn_delay is "
                                   f"False, so the delay stays at delay_ms={edge.delay_ms}: set "
                                   f"learn_delay=True to learn it, or leave {key} out.", field=key, **at)
        steps = ms_to_steps(edge.delay_ms, circuit.dt_ms, what=where, fractional=edge.fractional, **at)
        _check_finite_steps(where, "delay_ms", edge.delay_ms, steps, circuit.dt_ms, index)
        ceil_steps = int(math.ceil(float(np.max(steps))))
        min_steps = float(np.min(steps))
    return EdgeInfo(index, edge, src, node, port, steps, ceil_steps, min_steps < 1.0)

def _check_connected(circuit, infos: list[EdgeInfo]) -> None:
    for name, comp in circuit.nodes.items():
        connected = {e.port for e in infos if e.node == name}
        missing = [p for p in comp.required_ports() if p not in connected]
        if missing:
            raise CircuitError(f"node {name!r} ({comp.kind}): port(s) {', '.join(missing)} have no "
                               f"incoming edge; add an edge with target '{name}.{missing[0]}'.", node=name)

def _valid_from(circuit, infos: list[EdgeInfo]) -> dict[str, int]:
    valid: dict[str, float] = {e.source: 0 for e in infos if e.source.startswith("world.")}
    valid.update({n: _INF for n in circuit.nodes})
    for _ in range(len(circuit.nodes) + 2):
        changed = False
        for name, comp in circuit.nodes.items():
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
    never = [n for n in circuit.nodes if valid[n] == _INF]
    if never:
        raise CircuitError(
            f"node(s) {', '.join(never)} never receive a signal from the world: every path into "
            f"them starts in a cycle with no outside drive. Connect a world stream (or a node "
            f"fed by one) to them."
        )
    return {k: int(v) for k, v in valid.items()}

def _infer_shapes(circuit, infos, input_shapes):
    shapes: dict[str, tuple | None] = {}
    for e in infos:
        if e.source.startswith("world."):
            if e.source not in input_shapes:
                raise CircuitError(f"{e.label}: the world has no stream {e.source!r}; "
                                   f"available: {', '.join(sorted(input_shapes))}.", edge=e.index, field="source")
            shapes[e.source] = tuple(input_shapes[e.source])
    shapes.update({n: None for n in circuit.nodes})

    def port_shapes(name, check):
        out = {}
        for e in infos:
            if e.node != name:
                continue
            s = shapes[e.source]
            if check and s is not None:
                _check_edge_shape(e, s)
            prev = out.get(e.port)
            if check and prev is not None and s is not None and prev != s:
                raise ShapeError(f"{e.label}: carries shape {s} but another edge into "
                                 f"'{e.node}.{e.port}' carries {prev}; edges into one port are "
                                 f"summed and must have equal shapes.", edge=e.index)
            out[e.port] = s if prev is None else prev
        return out

    for _ in range(len(circuit.nodes) + 1):
        for name, comp in circuit.nodes.items():
            if shapes[name] is None:
                try:
                    shapes[name] = comp.out_shape(port_shapes(name, False))
                except PortShapeError:
                    pass  # reported with full context below
    for name, comp in circuit.nodes.items():
        ps = port_shapes(name, True)
        try:
            out = comp.out_shape(ps)
        except PortShapeError as err:
            bad = [e for e in infos if e.node == name and e.port == err.port]
            src = bad[0] if bad else None
            got = ps.get(err.port)
            raise ShapeError(
                f"{src.label if src else f'node {name!r}'}: {src.source if src else ''} has shape "
                f"{got} but node {name!r} ({comp.kind}) {err}.",
                **({"edge": src.index, "field": "source"} if src else {"node": name})
            ) from None
        if out is None:
            raise ShapeError(f"node {name!r}: its output shape cannot be inferred; "
                             f"give it an input with a known shape.", node=name)
        shapes[name] = tuple(out)
    return shapes

def _check_edge_shape(e: EdgeInfo, shape):
    steps = np.asarray(e.steps)
    if steps.ndim == 1 and (len(shape) != 1 or shape[0] != steps.shape[0]):
        raise ShapeError(f"{e.label}: {steps.shape[0]} per-channel delays need a vector source "
                         f"of {steps.shape[0]} channels, but {e.source!r} has shape {shape}.", edge=e.index,
                         field="source")



def check_input_shapes(input_shapes) -> dict[str, tuple[int, ...]]:
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



def _check_finite_steps(where: str, key: str, value_ms, steps, dt_ms: float, edge: int) -> None:
    """Reject a finite delay in ms that is infinitely many steps of ``dt_ms`` (the division overflows)."""
    if not np.all(np.isfinite(steps)):
        raise CircuitError(f"{where}: {key}={value_ms} is too long for dt_ms={dt_ms:g} ({key} / dt_ms "
                           f"overflows); use a delay of at most a few times the sequence length.",
                           edge=edge, field=key, value=value_ms)


#: How a circuit error proposes a name: "; did you mean 'x'?", else "; valid: a, b".
_HINT = {"form": "; did you mean {!r}?", "otherwise": "; valid: {options}"}


def _schedule(nodes: list[str], infos: list[EdgeInfo]) -> list[tuple[str, list[str]]]:
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


def _order_within_step(comp: list[str], infos: list[EdgeInfo]) -> list[str]:
    """Order a cycle's nodes by their same-step (instantaneous) edges; reject algebraic loops."""
    members = set(comp)
    inst = [e for e in infos if e.instantaneous and e.source in members and e.node in members]
    deps = {n: {e.source for e in inst if e.node == n} for n in comp}

    def algebraic_loop(cycle: list[str]) -> CircuitError:
        # The shortest delay each edge may have: a learned delay's lower bound, else its smallest channel.
        total = sum(e.edge.min_delay_ms if e.edge.learn_delay else float(np.min(np.asarray(e.edge.delay_ms)))
                    for e in inst if e.source in cycle and e.node in cycle)
        return CircuitError(
            f"algebraic loop: the cycle {' -> '.join(cycle + [cycle[0]])} has no edge of at least one "
            f"step of delay (its edges' shortest delays add up to {total:g} ms), so each node would need "
            f"its own output to compute it. Give one edge of the cycle a delay of at least one step (dt)."
        )

    return _dependency_order(comp, deps, algebraic_loop)


def _dependency_order(nodes: list[str], deps: dict[str, set], cycle_error) -> list[str]:
    """``nodes`` in waves, each after the nodes it depends on; ``cycle_error(cycle)`` is raised on a cycle."""
    done: list[str] = []
    remaining = list(nodes)
    while remaining:
        ready = [n for n in remaining if deps[n] <= set(done)]
        if not ready:
            raise cycle_error(_find_cycle(remaining, deps))
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
    return _dependency_order(nodes, deps, lambda cycle: CircuitError(
        f"the cycle {' -> '.join(cycle + [cycle[0]])} has no defined first value: before "
        f"their first input arrives delay lines hold the first value they will deliver, "
        f"which here depends on itself. Close the loop through a Blend's prediction port."))


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


def global_step_order(plan: Plan) -> list[str]:
    order: list[str] = []
    for _, nodes in plan.groups:
        order.extend(nodes)
    return order
