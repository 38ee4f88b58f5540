"""The component contract's checks, one function each, and their names in order (``CHECKS``).

Each check builds what it needs from the component spec, runs it, and raises
an ``AssertionError`` that names the component, the check and the fix. The
checks use small inputs (2 samples, 6 steps, the shapes ``out_shape``
accepts), so a whole battery takes well under a second for the vector
components and about a second for a 16-pixel conv area on a CPU. The entry
points that run them are in ``_components`` (``check_component``,
``component_checks``).
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import attrs
import numpy as np
import torch
import yaml
from torch import Tensor, nn

from ..components import COMPONENTS, AbstractComponent, NodeModule, PortShapeError, RunContext
from ..study import StudyError, structure_component, unstructure_component

__all__ = ["CHECKS"]

Shape = tuple[int, ...]

#: The float32 tolerance of "step equals sequence" (the one the built-in contract tests always used).
_RTOL32, _ATOL32 = 1e-5, 1e-6
#: The float64 tolerance, relative to the output's magnitude.
_TOL64 = 1e-10


@attrs.frozen
class _Case:
    """What every check is given: the spec, its class, and the run's sizes."""

    spec: AbstractComponent
    input_shapes: Mapping[str, Shape] | None
    n_samples: int
    n_steps: int
    seed: int

    @property
    def cls(self) -> type:
        return type(self.spec)

    @property
    def label(self) -> str:
        kind = getattr(self.cls, "kind", None)
        return f"component {self.cls.__name__} (kind {kind!r}) {self.spec!r}"


def _fail(case: _Case, check: str, problem: str, fix: str) -> None:
    raise AssertionError(f"{case.label} fails check {check!r}: {problem}\n  fix: {fix}")


# --------------------------------------------------------------------------- shared helpers

def _candidate_shapes(spec) -> list[Shape]:
    shapes: list[Shape] = [(3,)]
    n_latents = getattr(spec, "n_latents", None)
    if isinstance(n_latents, int) and not isinstance(n_latents, bool) and n_latents > 0:
        shapes.append((n_latents,))
    size = getattr(spec, "size", None)
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        shapes.append((getattr(spec, "in_channels", 1), size, size))
    return shapes


def _shapes(case: _Case, check: str) -> tuple[dict[str, Shape], Shape]:
    """Input shapes per port that the component accepts (given, or found), and its output shape."""
    spec = case.spec
    if case.input_shapes is not None:
        tries = [dict(case.input_shapes)]
    else:
        tries = [dict(zip(spec.ports, combo))
                 for combo in itertools.product(_candidate_shapes(spec), repeat=len(spec.ports))]
    problems = []
    for shapes in tries:
        try:
            out = spec.out_shape(dict(shapes))
        except PortShapeError as err:
            problems.append(f"{shapes}: {err}")
            continue
        if out is None:
            problems.append(f"{shapes}: out_shape returned None")
            continue
        if (not isinstance(out, (tuple, list))
                or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in out)):
            _fail(case, check, f"out_shape({shapes}) returned {out!r}, not a tuple of positive ints",
                  "return the output shape per sample and step, e.g. in_shapes['in'] or (self.n_latents,)")
        return {p: tuple(s) for p, s in shapes.items()}, tuple(int(n) for n in out)
    _fail(case, check, "found no input shapes that out_shape accepts (tried: " + "; ".join(problems) + ")",
          "pass input_shapes={port: shape per sample and step} to check_component")
    raise AssertionError  # unreachable: _fail raises


def _inputs(shapes: Mapping[str, Shape], n_s: int, n_t: int, seed: int,
            dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Seeded inputs of shape (sample, time, ...): images in [0, 1], vectors standard normal."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for port, shape in shapes.items():
        draw = torch.rand if len(shape) == 3 else torch.randn
        out[port] = draw(n_s, n_t, *shape, generator=g, dtype=torch.float64).to(dtype)
    return out


def _build(case: _Case, check: str, dtype: torch.dtype = torch.float32) -> NodeModule:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(case.seed)
        module = case.spec.build()
    if not isinstance(module, NodeModule):
        _fail(case, check, f"build() returned {type(module).__name__}, not a NodeModule",
              "return a subclass of neurodelay.components.NodeModule (FrameModule for a memoryless map)")
    return module.to(dtype)


def _sequence(module: NodeModule, inputs: Mapping[str, Tensor], valid: Mapping[str, int],
              ctx: RunContext) -> tuple[Tensor, dict[str, Tensor]]:
    return module.forward_sequence(dict(inputs), dict(valid), ctx)


def _steps(spec: AbstractComponent, module: NodeModule, inputs: Mapping[str, Tensor], valid: Mapping[str, int],
           ctx: RunContext, keep: list | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Step ``module`` through time from ``init_state()``, passing the ports ``spec.reads`` at each step,
    as a circuit's loop does; the outputs stacked along time. ``keep`` collects a clone of each output."""
    n_t = next(iter(inputs.values())).shape[1]
    state = module.init_state()
    outs, extras = [], {}
    for t in range(n_t):
        now = {p: x[:, t] for p, x in inputs.items() if spec.reads(p, t, dict(valid))}
        out, extra, state = module.forward_step(now, t, dict(valid), state, ctx)
        if keep is not None:
            keep.append(out.detach().clone())
        outs.append(out)
        for name, x in extra.items():
            extras.setdefault(name, []).append(x)
    return torch.stack(outs, dim=1), {name: torch.stack(xs, dim=1) for name, xs in extras.items()}


def _valids(ports: Sequence[str], n_t: int) -> list[dict[str, int]]:
    """All ports valid from step 0, and the ports valid from steps 1, 2, ... in turn."""
    return [{p: 0 for p in ports}, {p: min(i + 1, n_t - 1) for i, p in enumerate(ports)}]


def _close(a: Tensor, b: Tensor, rtol: float, atol: float) -> str | None:
    """None when a and b agree, else what differs."""
    if a.shape != b.shape:
        return f"shapes {tuple(a.shape)} and {tuple(b.shape)}"
    try:
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, equal_nan=True)
    except AssertionError:
        diff = (a.detach().double() - b.detach().double()).abs()
        where = tuple(int(i) for i in np.unravel_index(int(diff.nan_to_num(math.inf).argmax()), diff.shape))
        return f"largest difference {float(diff.max()):.3g} at index {where} (tolerance rtol={rtol:g}, atol={atol:g})"
    return None


def _describe(obj: Any) -> str:
    if isinstance(obj, Tensor):
        return f"Tensor of shape {tuple(obj.shape)}"
    return type(obj).__name__


def _not_plain(value: Any, path: str) -> str | None:
    """The first part of a field's value that is not a plain value (a tensor, array or module), or None."""
    if isinstance(value, (Tensor, nn.Module, np.ndarray)):
        return f"{path} is a {_describe(value)}"
    if isinstance(value, Mapping):
        return next((p for k, v in value.items() if (p := _not_plain(v, f"{path}[{k!r}]"))), None)
    if isinstance(value, (list, tuple)):
        return next((p for i, v in enumerate(value) if (p := _not_plain(v, f"{path}[{i}]"))), None)
    return None


def _extra_kinds(case: _Case, check: str) -> dict[str, type]:
    kind = case.cls.kind
    built_in = COMPONENTS.get(kind)
    if built_in is case.cls:
        return {}
    if built_in is not None:
        _fail(case, check, f"its kind {kind!r} is that of the built-in {built_in.__name__}",
              "give the component a kind of its own")
    return {kind: case.cls}


# --------------------------------------------------------------------------- the checks

def check_frozen_attrs_spec(case: _Case) -> None:
    """A frozen attrs class deriving from AbstractComponent, with a ``kind``, holding plain values."""
    name, cls, spec = "frozen_attrs_spec", case.cls, case.spec
    if not isinstance(spec, AbstractComponent):
        _fail(case, name, f"{cls.__name__} does not derive from AbstractComponent",
              "subclass neurodelay.components.AbstractComponent")
    if isinstance(spec, nn.Module):
        _fail(case, name, f"{cls.__name__} is a torch.nn.Module (a frozen attrs class loses its parameters)",
              "keep the spec a plain attrs class and return the torch module from build()")
    if not attrs.has(cls):
        _fail(case, name, f"{cls.__name__} is not an attrs class", "decorate it with @attrs.frozen")
    fields = attrs.fields(cls)
    probe = fields[0].name if fields else "_neurodelay_probe"
    try:
        setattr(spec, probe, getattr(spec, probe, None))  # the value it has: nothing changes if this works
    except attrs.exceptions.FrozenInstanceError:
        pass
    except AttributeError:
        _fail(case, name, f"{cls.__name__} is not frozen", "decorate it with @attrs.frozen")
    else:
        if not fields:
            delattr(spec, probe)
        _fail(case, name, f"{cls.__name__} is not frozen: setting {probe!r} worked",
              "decorate it with @attrs.frozen (a spec never changes once made)")
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind.strip():
        _fail(case, name, f"its kind is {kind!r}, not a name",
              "set a class attribute kind = 'my_kind' (its name in study files)")
    if "kind" in attrs.fields_dict(cls):
        _fail(case, name, "kind is an attrs field", "declare it as a class attribute: kind: ClassVar[str] = ...")
    for field in fields:
        problem = _not_plain(getattr(spec, field.name), field.name)
        if problem:
            _fail(case, name, f"field {problem}",
                  "hold plain values (numbers, strings, tuples) in the spec and make tensors in build()")


def check_ports(case: _Case) -> None:
    """``ports`` are distinct names, the required ports among them, and ``out_shape`` accepts some shapes."""
    name, spec = "ports", case.spec
    ports = spec.ports
    if (not isinstance(ports, tuple) or not ports
            or not all(isinstance(p, str) and p for p in ports) or len(set(ports)) != len(ports)):
        _fail(case, name, f"ports is {ports!r}", "set ports to a tuple of distinct names, e.g. ('in',)")
    required = spec.required_ports()
    if not set(required) <= set(ports):
        _fail(case, name, f"required_ports() {required!r} names ports outside ports {ports!r}",
              "return a subset of ports from required_ports()")
    _shapes(case, name)
    first = spec.valid_from({p: 0 for p in ports})
    if not isinstance(first, numbers.Real) or not math.isfinite(first) or first < 0:
        _fail(case, name, f"valid_from with every port valid from step 0 returned {first!r}",
              "return the first valid output step, a number >= 0 (the default is the latest port's)")


def check_spec_round_trip(case: _Case) -> None:
    """The spec survives the study schema: unstructure, YAML and JSON text, structure again, equal."""
    name, spec = "spec_round_trip", case.spec
    extra = _extra_kinds(case, name)
    raw = unstructure_component(spec)
    if raw.get("kind") != case.cls.kind:
        _fail(case, name, f"its study-file mapping has kind {raw.get('kind')!r}",
              f"keep the class attribute kind ({case.cls.kind!r}) out of the attrs fields")
    for fmt, dump, load in (("YAML", yaml.safe_dump, yaml.safe_load), ("JSON", json.dumps, json.loads)):
        try:
            text = dump(raw)
        except (TypeError, ValueError, yaml.YAMLError) as err:
            _fail(case, name, f"its mapping {raw!r} cannot be written as {fmt}: {err}",
                  "hold plain values (numbers, strings, lists) in the fields")
        try:
            again = structure_component(load(text), extra_kinds=extra)
        except StudyError as err:
            _fail(case, name, f"its {fmt} text does not load back: {err}",
                  "make every field's converter and validator accept the value it stores")
        if again != spec:
            _fail(case, name, f"it comes back from {fmt} as {again!r}",
                  "make each field's converter give back the value it was given (e.g. a tuple for a list)")


def check_unknown_key_rejected(case: _Case) -> None:
    """A study-file mapping with a key the component does not have is refused, at that key."""
    name = "unknown_key_rejected"
    extra = _extra_kinds(case, name)
    raw = {**unstructure_component(case.spec), "no_such_parameter": 1}
    try:
        structure_component(raw, extra_kinds=extra)
    except StudyError as err:
        if "$.no_such_parameter" not in str(err):
            _fail(case, name, f"the error does not name the key: {err}",
                  "let the study converter structure the class (no structure hook of its own)")
        return
    _fail(case, name, "a mapping with the unknown key no_such_parameter was accepted",
          "let the study converter structure the class (it forbids extra keys); take no **kwargs")


def check_builds(case: _Case) -> None:
    """``build()`` returns a fresh NodeModule each call and leaves the spec as it was."""
    name = "builds"
    before = attrs.evolve(case.spec)
    a, b = _build(case, name), _build(case, name)
    if a is b:
        _fail(case, name, "build() returned the same module twice",
              "make a new module in every build() call (each circuit node owns its own)")
    if case.spec != before:
        _fail(case, name, "build() changed the spec", "leave the spec's fields alone in build()")


def check_output_shape_and_dtype(case: _Case) -> None:
    """Outputs have the shape ``out_shape`` declares and the inputs' dtype, in float32 and float64."""
    name = "output_shape_and_dtype"
    shapes, out_shape = _shapes(case, name)
    n_s, n_t = case.n_samples, case.n_steps
    valid = {p: 0 for p in shapes}
    for dtype in (torch.float32, torch.float64):
        module = _build(case, name, dtype)
        inputs = _inputs(shapes, n_s, n_t, case.seed, dtype)
        for path, run in (("forward_sequence", _sequence), ("forward_step", partial(_steps, case.spec))):
            with torch.no_grad():
                out, extras = run(module, inputs, valid, RunContext())
            if not isinstance(out, Tensor) or tuple(out.shape) != (n_s, n_t, *out_shape):
                _fail(case, name, f"{path} on inputs {shapes} gave {_describe(out)}, out_shape declares "
                                  f"{out_shape} (per sample and step, after the sample and time axes {(n_s, n_t)})",
                      "make out_shape and the module agree")
            if out.dtype != dtype:
                _fail(case, name, f"{path} on {dtype} inputs gave {out.dtype}",
                      "compute in the inputs' dtype (make new tensors with dtype=x.dtype, device=x.device)")
            for key, x in extras.items():
                if not isinstance(x, Tensor) or tuple(x.shape[:2]) != (n_s, n_t):
                    _fail(case, name, f"{path}'s extra {key!r} is {_describe(x)}, not (sample, time, ...) = "
                                      f"{(n_s, n_t)} first", "give each extra the output's leading axes")


def check_step_matches_sequence(case: _Case) -> None:
    """Stepping ``forward_step`` through T steps gives ``forward_sequence`` over T steps, values and gradients."""
    name = "step_matches_sequence"
    shapes, _ = _shapes(case, name)
    n_s, n_t = case.n_samples, case.n_steps
    fix = ("make forward_step and forward_sequence compute the same thing (or define only forward_step: "
           "NodeModule's forward_sequence then steps it)")
    for valid in _valids(list(shapes), n_t):
        # Values in float32 (to the tolerance of float32 rounding) and float64; gradients, whose sums
        # float32 rounds in other orders on the two paths, in float64 only.
        for dtype, rtol, atol in ((torch.float32, _RTOL32, _ATOL32), (torch.float64, _TOL64, None)):
            module = _build(case, name, dtype)
            inputs = {p: x.requires_grad_() for p, x in _inputs(shapes, n_s, n_t, case.seed, dtype).items()}
            runs = {}
            for path, run in (("sequence", _sequence), ("step", partial(_steps, case.spec))):
                module.zero_grad(set_to_none=True)
                for x in inputs.values():
                    x.grad = None
                out, extras = run(module, inputs, valid, RunContext())
                weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(case.seed + 1),
                                      dtype=torch.float64).to(dtype)
                loss = (out * weights).sum() + sum(x.sum() for x in extras.values())
                grads = {}
                if loss.requires_grad and dtype == torch.float64:
                    loss.backward()
                    grads = {f"input {p!r}": x.grad for p, x in inputs.items() if x.grad is not None}
                    grads.update({f"parameter {k!r}": v.grad for k, v in module.named_parameters()
                                  if v.grad is not None})
                runs[path] = ({"output": out.detach(), **{f"extra {k!r}": x.detach() for k, x in extras.items()}},
                              grads)
            (seq, g_seq), (step, g_step) = runs["sequence"], runs["step"]
            if seq.keys() != step.keys():
                _fail(case, name, f"forward_sequence gives {sorted(seq)}, forward_step {sorted(step)}",
                      "return the same extras from both")
            if g_seq.keys() != g_step.keys():
                _fail(case, name, f"gradients reach {sorted(g_seq)} through forward_sequence, "
                                  f"{sorted(g_step)} through forward_step", fix)
            for what, pair in (("", (seq, step)), ("the gradient of ", (g_seq, g_step))):
                for key in pair[0]:
                    a, b = pair[0][key], pair[1][key]
                    scale = 1.0 + (float(a.abs().max()) if a.numel() else 0.0)
                    tol = atol if atol is not None else _TOL64 * scale
                    diff = _close(b, a, rtol, tol)
                    if diff:
                        _fail(case, name, f"in {dtype}, with ports valid from {valid}, {what}the {key} of "
                                          f"{n_t} steps differs from the whole sequence's: {diff}", fix)


def check_finite_on_zero_input(case: _Case) -> None:
    """Zero inputs give finite outputs and extras (no NaN, no infinity) on both paths."""
    name = "finite_on_zero_input"
    shapes, _ = _shapes(case, name)
    module = _build(case, name)
    zeros = {p: torch.zeros(case.n_samples, case.n_steps, *s) for p, s in shapes.items()}
    valid = {p: 0 for p in shapes}
    for path, run in (("forward_sequence", _sequence), ("forward_step", partial(_steps, case.spec))):
        with torch.no_grad():
            out, extras = run(module, zeros, valid, RunContext())
        for key, x in {"output": out, **{f"extra {k!r}": v for k, v in extras.items()}}.items():
            if not bool(torch.isfinite(x).all()):
                _fail(case, name, f"{path} on zero inputs gives {int((~torch.isfinite(x)).sum())} non-finite "
                                  f"values in its {key}", "guard divisions, logs and square roots against 0")


def check_deterministic(case: _Case) -> None:
    """Under a fixed seed: equal parameters, equal outputs, and equal draws from an equal generator."""
    name = "deterministic"
    shapes, _ = _shapes(case, name)
    a, b = _build(case, name), _build(case, name)
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys() or any(not torch.equal(sa[k], sb[k]) for k in sa):
        _fail(case, name, "two builds under the same torch seed have different parameters or buffers",
              "draw initial values from torch's global generator only (no numpy or random, no fresh seeds)")
    inputs = _inputs(shapes, case.n_samples, case.n_steps, case.seed)
    valid = {p: 0 for p in shapes}
    for sample in (False, True):
        outs = []
        for module in (a, b):
            ctx = RunContext(generator=torch.Generator().manual_seed(case.seed), sample=sample)
            with torch.no_grad():
                out, extras = _sequence(module, inputs, valid, ctx)
            outs.append([out, *(extras[k] for k in sorted(extras))])
        if any(not torch.equal(x, y) for x, y in zip(*outs)):
            _fail(case, name, f"equal modules on equal inputs give different outputs (RunContext(sample={sample}) "
                              f"with generators of the same seed)",
                  "draw random numbers only from ctx.generator (torch.randn(..., generator=ctx.generator))")


def check_state_and_reset(case: _Case) -> None:
    """``init_state()`` starts afresh: a run after another gives what it gives alone, on both paths."""
    name = "state_and_reset"
    shapes, _ = _shapes(case, name)
    module = _build(case, name)
    valid = {p: 0 for p in shapes}
    first = _inputs(shapes, case.n_samples, case.n_steps, case.seed)
    other = _inputs(shapes, case.n_samples, case.n_steps, case.seed + 7)
    for path, run in (("forward_step", partial(_steps, case.spec)), ("forward_sequence", _sequence)):
        with torch.no_grad():
            alone = run(module, first, valid, RunContext())[0]
            run(module, other, valid, RunContext())
            again = run(module, first, valid, RunContext())[0]
        if not torch.equal(alone, again):
            _fail(case, name, f"{path} on the same inputs gives other numbers after a run on other inputs",
                  "carry state between steps only in the state forward_step returns, from init_state() "
                  "(never in attributes of the module)")


def check_no_in_place_changes(case: _Case) -> None:
    """Neither path changes its inputs, and a step does not change the outputs of earlier steps."""
    name = "no_in_place_changes"
    shapes, _ = _shapes(case, name)
    module = _build(case, name)
    valid = {p: 0 for p in shapes}
    inputs = _inputs(shapes, case.n_samples, case.n_steps, case.seed)
    copies = {p: x.clone() for p, x in inputs.items()}
    kept: list[Tensor] = []
    with torch.no_grad():
        _sequence(module, inputs, valid, RunContext())
        changed = [p for p in inputs if not torch.equal(inputs[p], copies[p])]
        if changed:
            _fail(case, name, f"forward_sequence changed its input on port(s) {changed}",
                  "compute out of place (x + y, not x.add_(y)) on inputs")
        stepped, _ = _steps(case.spec, module, inputs, valid, RunContext(), keep=kept)
    changed = [p for p in inputs if not torch.equal(inputs[p], copies[p])]
    if changed:
        _fail(case, name, f"forward_step changed its input on port(s) {changed}",
              "compute out of place (x + y, not x.add_(y)) on inputs")
    late = [t for t, y in enumerate(kept) if not torch.equal(stepped[:, t], y)]
    if late:
        _fail(case, name, f"the outputs of steps {late} changed after they were returned",
              "return a fresh tensor each step; do not update the state in place when it is also the output")


def check_gradients(case: _Case) -> None:
    """A loss on the outputs gives finite gradients to every trainable parameter and to the inputs."""
    name = "gradients"
    shapes, _ = _shapes(case, name)
    module = _build(case, name)
    inputs = {p: x.requires_grad_() for p, x in _inputs(shapes, case.n_samples, case.n_steps, case.seed).items()}
    ctx = RunContext(generator=torch.Generator().manual_seed(case.seed), sample=True)
    out, extras = _sequence(module, inputs, {p: 0 for p in shapes}, ctx)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(case.seed + 1))
    loss = (out * weights).sum() + sum(x.sum() for x in extras.values())
    params = {k: v for k, v in module.named_parameters() if v.requires_grad}
    if not loss.requires_grad:
        _fail(case, name, "the outputs do not depend on the inputs or parameters through autograd",
              "compute the output from the inputs with torch operations (no .detach(), no numpy round trip)")
    loss.backward()
    for what, tensors in (("parameter", params), ("input on port", inputs)):
        for key, x in tensors.items():
            if x.grad is not None and not bool(torch.isfinite(x.grad).all()):
                _fail(case, name, f"the gradient of {what} {key!r} is not finite",
                      "guard divisions, logs and square roots in the forward computation")
    missing = [k for k, v in params.items() if v.grad is None]
    if missing:
        _fail(case, name, f"no gradient reaches the parameter(s) {missing}",
              "use every trainable parameter in forward_sequence without detaching it, or set "
              "requires_grad=False on those that are not trained")
    if params and not any(bool(v.grad.ne(0).any()) for v in params.values()):
        _fail(case, name, "every parameter's gradient is zero", "check that the parameters enter the output")
    if all(x.grad is None for x in inputs.values()):
        _fail(case, name, "no gradient reaches any input", "compute the output from the inputs without detaching")


def check_linear_taps(case: _Case) -> None:
    """A component that declares ``linear_taps`` computes that sum of its delayed inputs (none: nothing to check)."""
    name = "linear_taps"
    taps = case.spec.linear_taps()
    if taps is None:
        return
    shapes, _ = _shapes(case, name)
    if set(taps) - set(shapes):
        _fail(case, name, f"linear_taps names ports {sorted(set(taps) - set(shapes))} outside {case.spec.ports}",
              "give taps for the component's ports only")
    module = _build(case, name, torch.float64)
    inputs = _inputs(shapes, case.n_samples, case.n_steps, case.seed, torch.float64)
    with torch.no_grad():
        out, _ = _sequence(module, inputs, {p: 0 for p in shapes}, RunContext())
    n_t = case.n_steps
    want = torch.zeros_like(out)
    for port, port_taps in taps.items():
        for lag, weight in port_taps:
            idx = [max(t - int(lag), 0) for t in range(n_t)]
            want = want + float(weight) * inputs[port][:, idx]
    start = max((int(lag) for port_taps in taps.values() for lag, _ in port_taps), default=0)
    # Learned taps start from float32 parameters: the declared weights hold to float32's rounding.
    tol = _RTOL32 if case.spec.learns_taps() else _TOL64
    diff = _close(out[:, start:], want[:, start:], tol, tol * (1.0 + float(want.abs().max())))
    if diff:
        _fail(case, name, f"from step {start} on, the output is not the sum of taps {taps}: {diff}",
              "make linear_taps describe what the module computes, or return None (a cycle through the "
              "component is then stepped instead of solved in closed form)")


_CHECKS: dict[str, Callable[[_Case], None]] = {
    "frozen_attrs_spec": check_frozen_attrs_spec,
    "ports": check_ports,
    "spec_round_trip": check_spec_round_trip,
    "unknown_key_rejected": check_unknown_key_rejected,
    "builds": check_builds,
    "output_shape_and_dtype": check_output_shape_and_dtype,
    "no_in_place_changes": check_no_in_place_changes,
    "step_matches_sequence": check_step_matches_sequence,
    "finite_on_zero_input": check_finite_on_zero_input,
    "deterministic": check_deterministic,
    "state_and_reset": check_state_and_reset,
    "gradients": check_gradients,
    "linear_taps": check_linear_taps,
}

#: The names of the checks, in the order ``check_component`` runs them.
CHECKS: tuple[str, ...] = tuple(_CHECKS)
