"""The built circuit: a torch module that runs a planned circuit over world streams.

Nodes outside every cycle run over the whole sequence at once (time folded
into the batch); delays on their inputs are shifts. Nodes inside a cycle step
through time together, reading delayed values from their sources' histories;
cycles linear in their state may be solved in closed form
(:mod:`neurodelay.circuit.linear`). ``mode="step"`` steps every node, which
gives the same numbers and is kept for testing.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from .._util.validators import check_flag, is_int
from ..components.base import AbstractComponent, FrameModule, RunContext
from ..components.delays import DelayLine, time_window
from ..errors import ShapeError
from .linear import analyse_loop
from .plan import AUX_TRACES, WORLD_STREAMS, EdgeInfo, Plan, global_step_order

__all__ = ["CircuitModule", "MIN_CLOSED_FORM_STEPS"]

#: Linear cycles are solved in closed form only past this many steps after start-up. Measured
#: (benchmarks/RESULTS.md, 2026-11-28 20:45): the closed form overtakes stepping at about 16 steps
#: in all, and every study in studies/ (at most 12 frames) is stepped, so its numbers do not change.
MIN_CLOSED_FORM_STEPS = 16


class CircuitModule(nn.Module):
    """A built circuit: a torch module mapping world streams to node traces.

    Call it with a dict of world streams, each of shape (sample, time, ...),
    and get a dict of traces, one per node (and ``<node>_<extra>`` for
    auxiliary outputs such as ``enc_mu``), each of shape (sample, time, ...).
    """

    def __init__(self, circuit, plan: Plan):
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
        self._linear = [analyse_loop(nodes, plan, circuit.nodes, self.delay_line) if kind == "loop" else None
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
        self._trace_names = set(circuit.nodes) | {f"{n}_{k}" for n in circuit.nodes for k in AUX_TRACES}

    def delay_line(self, e: EdgeInfo) -> DelayLine | None:
        """The delay line of edge ``e`` (None for an edge without delay)."""
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
            (:func:`neurodelay.training.objectives.first_scored_steps`). Other nodes,
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
            groups = [("loop", global_step_order(plan), plan.global_start_order, None)]
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
            d = self.delay_line(e)
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
        d = self.delay_line(e)
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
                    d = self.delay_line(e)
                    external[e.index] = d(x) if d is not None else x
        if linear is not None and (n_t - linear.t0 < MIN_CLOSED_FORM_STEPS or not linear.suits(n_t - linear.t0)):
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
            edges = [(e.port, ext_steps.get(e.index), self.delay_line(e), hist.get(e.source))
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
    check_flag("ctx.sample", ctx.sample, words="True or False (draw Gaussian latents or use their means)")
    return ctx


def _reached_from(stream: str, edges: list[EdgeInfo]) -> list[str]:
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


