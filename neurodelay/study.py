"""The study file: its schema, loading, ``--set`` overrides and error messages.

A study is a YAML file (or a Python script, see :func:`load_study`) that
becomes a frozen :class:`Study` spec at the edge, with cattrs. Sections::

    name, seed, dt_ms, device      run identity and time grid
    world                          a world spec, tagged by ``kind``
    circuit                        {preset: NAME, ...params} or {nodes: ..., edges: [...]}
    objective                      an Objective (optional when nothing is trained)
    train                          TrainSettings
    evaluate                       EvaluateSettings
    analyses                       names of registered analyses (default: all)
    sweep                          dotted paths -> lists of values (a grid); ``zip:`` pairs lists

Errors are collected and reported together, each with its path in the file
(``$.circuit.edges[2].delay_ms``) and the validator's own explanation; an
unknown key gets the closest valid one, an unknown ``kind`` the list of valid
kinds. See ``docs/study-schema.md`` for the whole schema.

Conventions applied while loading (documented in the schema):

* ``dt_ms`` of the study is the circuit's time step;
* conv areas (any component with a ``size`` field) and presets that take a
  ``size`` get the world's image size unless the file gives one.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib.util
import inspect
import math
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import attrs
import cattrs
import yaml
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from ._util import bounds as _bounds
from .circuit import Circuit, Edge, world_shapes
from .components import COMPONENTS
from ._util.validators import is_real
from .components.base import AbstractComponent
from .errors import ConfigError
from .executors import ExecutorSettings
from .training.objectives import Objective
from .presets import PRESETS
from .training import TrainSettings
from .worlds import CircleOverBlob, MovingCircle

__all__ = [
    "Study", "EvaluateSettings", "PresetCircuit", "GraphCircuit", "Sweep", "StudyError", "WORLDS",
    "load_study", "structure_study", "unstructure_study", "study_to_yaml", "check_study",
    "parse_override", "apply_overrides", "with_values", "structure_component",
    "unstructure_component",
]

#: World classes by their study-file ``kind``.
WORLDS: dict[str, type] = {cls.kind: cls for cls in (CircleOverBlob, MovingCircle)}

#: Default seed of the evaluation set: fixed, and distinct from training seeds.
EVAL_SEED = 1_000_003

_DEVICE_RE = re.compile(r"(cpu|cuda(:[0-9]{1,9})?)\Z")
_NUMBER_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")


class StudyError(ConfigError):
    """An invalid study: every problem with its path in the file.

    Attributes
    ----------
    source : str
        The file (or ``<study>``) the problems are in.
    problems : list of (str, str)
        ``(path, message)`` pairs; paths look like ``$.circuit.edges[2].delay_ms``.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = list(problems)
        if len(self.problems) == 1:
            path, msg = self.problems[0]
            text = f"invalid study {source}: {path}: {msg}" if path else f"invalid study {source}: {msg}"
        else:
            lines = [f"invalid study {source} ({len(self.problems)} problems):"]
            lines += [f"  {p}: {m}" if p else f"  {m}" for p, m in self.problems]
            text = "\n".join(lines)
        super().__init__(text)


class _Problem(ValueError):
    """A structuring problem whose message is complete as it stands."""


# ============================================================ validators
def _check_name(inst, attr, value):
    problem = _bounds.name_problem(value)
    if problem is not None:
        raise ValueError(problem)


def _check_seed(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attr.name} must be an integer >= 0, got {value!r}; use e.g. {attr.name}: 0.")


def _check_dt(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"dt_ms must be a positive number of ms, got {value!r}; use e.g. dt_ms: 10 "
                         f"(one frame per step).")


def _check_device(inst, attr, value):
    if not isinstance(value, str) or not _DEVICE_RE.match(value):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {value!r}.")


def _positive_int(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attr.name} must be an integer >= 1, got {value!r}.")


def _text(value) -> str | None:
    """``value`` if it is text, else None: a name to look up in a registry (a list is no key of one)."""
    return value if isinstance(value, str) else None


def _freeze(value):
    """Lists (nested) to tuples, so that specs stay hashable and immutable."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value):
    """Tuples (nested) back to lists, for YAML and raw study dicts."""
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    return value


# ============================================================ spec classes
@attrs.frozen
class EvaluateSettings:
    """The evaluation run after training, recorded in ``results.nc``.

    Parameters
    ----------
    n_sequences : int
        Sequences (samples) in the evaluation set.
    seed : int
        Seed of the evaluation set: fixed and independent of the study's
        seed, so that runs with different seeds are evaluated on the same
        sequences.
    batch_size : int
        Sequences run through the circuit at once (memory only; results do
        not depend on it).
    """

    n_sequences: int = attrs.field(default=256, validator=_positive_int)
    seed: int = attrs.field(default=EVAL_SEED, validator=_check_seed)
    batch_size: int = attrs.field(default=64, validator=_positive_int)


def _preset_params(value):
    if isinstance(value, Mapping):
        value = value.items()
    return tuple((str(k), _freeze(v)) for k, v in value)


def _preset_parameters(name: str) -> list[str]:
    """The parameters a study may give preset ``name`` (a key of PRESETS): its function's, but ``dt_ms``."""
    return [p for p in inspect.signature(PRESETS[name]).parameters if p != "dt_ms"]


def _preset_key_problems(name, keys) -> list[tuple[str, str]]:
    """(sub-path, message) for an unknown preset ``name``, or for each of ``keys`` it does not take."""
    if not isinstance(name, str) or name not in PRESETS:
        close = difflib.get_close_matches(str(name), list(PRESETS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return [(".preset", f"unknown preset {name!r}; {hint}valid presets: {', '.join(PRESETS)}.")]
    valid = _preset_parameters(name)
    problems = []
    for key in keys:
        if key == "dt_ms":
            problems.append((".dt_ms", "dt_ms is the study's: set it at the top of the file "
                                       "(dt_ms: 10), not in the circuit."))
        elif key not in valid:
            problems.append((_key_path(key), f"unknown parameter {key!r} of preset {name!r}; "
                                             f"{_suggest(key, valid)}"))
    return problems


@attrs.frozen
class PresetCircuit:
    """A circuit from :data:`neurodelay.presets.PRESETS` with its parameters.

    In a study file: ``circuit: {preset: inertia, n_latents: 4, gamma: 0.5}``.

    Parameters
    ----------
    preset : str
        The preset's name.
    params : tuple of (str, value)
        Keyword arguments of the preset function (``dt_ms`` excepted: it is
        the study's).
    """

    preset: str
    params: tuple[tuple[str, Any], ...] = attrs.field(default=(), converter=_preset_params)

    def build(self, dt_ms: float) -> Circuit:
        """The circuit, on the time grid ``dt_ms``.

        Raises
        ------
        ConfigError
            ``preset`` is not a preset, or ``params`` names a parameter the
            preset does not take (``dt_ms`` among them: it is the study's).
        """
        problems = _preset_key_problems(self.preset, [k for k, _ in self.params])
        if problems:
            raise ConfigError("; ".join(f"PresetCircuit{'' if path == '.preset' else '.params'}{path}: {msg}"
                                        for path, msg in problems))
        return PRESETS[self.preset](**dict(self.params), dt_ms=dt_ms)


def _nodes(value):
    if not isinstance(value, Mapping):
        raise TypeError(f"nodes must be a mapping from name to component, got {type(value).__name__}.")
    return dict(value)


@attrs.frozen(eq=False)
class GraphCircuit:
    """A circuit given as a graph: named nodes (components) and edges.

    In a study file: ``circuit: {nodes: {enc: {kind: conv_encoder}, ...}, edges: [...]}``.

    Parameters
    ----------
    nodes : dict of str -> component spec
    edges : tuple of Edge
    dt_ms : float or None
        The time step of a :class:`~neurodelay.Circuit` this spec was made
        from (Python studies), checked against the study's; not part of the
        study file.
    """

    nodes: dict[str, AbstractComponent] = attrs.field(converter=_nodes)
    edges: tuple[Edge, ...] = attrs.field(default=(), converter=tuple)
    dt_ms: float | None = attrs.field(default=None)

    def __eq__(self, other):
        if not isinstance(other, GraphCircuit):
            return NotImplemented
        return self.nodes == other.nodes and self.edges == other.edges

    __hash__ = None  # holds a dict

    @classmethod
    def from_circuit(cls, circuit: Circuit) -> "GraphCircuit":
        """The graph spec of a built :class:`~neurodelay.Circuit`."""
        return cls(nodes=dict(circuit.nodes), edges=tuple(circuit.edges), dt_ms=circuit.dt_ms)

    def build(self, dt_ms: float) -> Circuit:
        """The circuit, on the time grid ``dt_ms``."""
        return Circuit(nodes=self.nodes, edges=self.edges, dt_ms=dt_ms)


def _circuit_spec(value):
    if isinstance(value, Circuit):
        return GraphCircuit.from_circuit(value)
    return value


@attrs.frozen
class Sweep:
    """Parameters to sweep: a grid, and groups of parameters that vary together.

    In a study file::

        sweep:
          circuit.nodes.z.gamma: [0.0, 0.5, 1.0]     # grid dimension
          zip:                                       # one shared dimension
            train.lr: [1.0e-3, 1.0e-4]
            seed: [0, 1]

    Parameters
    ----------
    grid : tuple of (path, values)
        Each swept path with its values; every combination is run.
    zip : tuple of groups
        Each group a tuple of (path, values) with equally many values; the
        group's paths take their i-th values together.
    """

    grid: tuple[tuple[str, tuple], ...] = attrs.field(default=(), converter=_freeze)
    zip: tuple[tuple[tuple[str, tuple], ...], ...] = attrs.field(default=(), converter=_freeze)

    @property
    def paths(self) -> list[str]:
        """Every swept path, grid first, then the zip groups."""
        return [p for p, _ in self.grid] + [p for g in self.zip for p, _ in g]

    @property
    def n_points(self) -> int:
        """Number of points (runs) of the sweep."""
        n = 1
        for _, values in self.grid:
            n *= len(values)
        for group in self.zip:
            n *= len(group[0][1])
        return n


World = Union[CircleOverBlob, MovingCircle]
CircuitSpec = Union[PresetCircuit, GraphCircuit]


@attrs.frozen
class Study:
    """A study: a world, a circuit, how to train it, evaluate it and analyse it.

    Parameters
    ----------
    name : str
        Names the output folder ``<out>/<name>/``.
    circuit : PresetCircuit or GraphCircuit (or a Circuit, converted)
        The circuit. Its time step is ``dt_ms``.
    seed : int
        Seeds parameter initialisation and training.
    dt_ms : float
        The simulation step in ms (10 = one frame per step).
    device : str
        ``cpu``, ``cuda`` or ``cuda:N``.
    world : CircleOverBlob or MovingCircle
        The stimulus world.
    objective : Objective or None
        What training minimises; needed only when something is trained.
    train : TrainSettings
        ``steps: 0`` only simulates, records and analyses.
    evaluate : EvaluateSettings
        The evaluation set recorded in ``results.nc``.
    analyses : tuple of str or None
        Registered analyses to run after evaluation (None: all registered).
    sweep : Sweep or None
        Parameters to sweep; each point is a run of its own.
    executor : ExecutorSettings or None
        Where sweep points run (see :mod:`neurodelay.executors`); default
        ``local``.
    """

    name: str = attrs.field(validator=_check_name)
    seed: int = attrs.field(default=0, validator=_check_seed)
    dt_ms: float = attrs.field(default=10.0, validator=_check_dt)
    device: str = attrs.field(default="cpu", validator=_check_device)
    world: World = attrs.field(factory=MovingCircle)
    circuit: CircuitSpec = attrs.field(kw_only=True, converter=_circuit_spec)
    objective: Objective | None = None
    train: TrainSettings = attrs.field(factory=TrainSettings)
    evaluate: EvaluateSettings = attrs.field(factory=EvaluateSettings)
    analyses: tuple[str, ...] | None = attrs.field(default=None, converter=attrs.converters.optional(tuple))
    sweep: Sweep | None = None
    executor: ExecutorSettings | None = None

    def build_circuit(self) -> Circuit:
        """The circuit spec on the study's time grid (structure checked)."""
        return self.circuit.build(float(self.dt_ms))

    @property
    def n_frames(self) -> int:
        """Frames per sequence of the world (1 for a static world)."""
        return int(getattr(self.world, "n_frames", 1))


# ============================================================ the converter
#: Words by which a message proposes a fix ("use e.g. ...", "did you mean ...", "set both").
_FIX_RE = re.compile(r"e\.g\.|did you mean|valid:|valid kinds|nearest valid|the original uses|\b(use|set|give|add|"
                     r"remove|write|swap|rename|raise|lower|choose|name one|connect)\b", re.I)


def _yaml_value(value) -> str:
    """``value`` as it is written in a study file (``null``, ``true``, ``0.0001``)."""
    return yaml.safe_dump(_thaw(value), default_flow_style=True, width=1000).split("\n")[0]


def _with_default_fix(exc: BaseException, field) -> BaseException:
    """``exc``, or a copy whose message proposes the field's default when it proposes no fix."""
    msg = _message(exc)
    default = field.default
    if _FIX_RE.search(msg) or default is attrs.NOTHING or isinstance(default, attrs.Factory):
        return exc
    return _Problem(f"{msg.rstrip('.')}; use e.g. {field.name}: {_yaml_value(default)} (the default).")


def _show(value) -> str:
    if isinstance(value, bool):
        return f"{value!r} (a boolean)"
    if isinstance(value, str):
        return f"{value!r} (text)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return f"a list {list(value)!r}"
    if value is None:
        return "null"
    return repr(value)


def _s_int(value, _):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer() and math.isfinite(value) and abs(value) < 1e15:
        raise _Problem(f"expected an integer, got {value!r} (a number with a decimal point); write it "
                       f"without one: {int(value)}.")
    raise _Problem(f"expected an integer, got {_show(value)}.")


def _s_float(value, _):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        return float(value)  # YAML 1.1 reads 1e-3 (no dot) as text
    raise _Problem(f"expected a number, got {_show(value)}.")


def _s_str(value, _):
    if isinstance(value, str):
        return value
    raise _Problem(f"expected text, got {_show(value)}.")


def _s_bool(value, _):
    if isinstance(value, bool):
        return value
    raise _Problem(f"expected true or false, got {_show(value)}.")


def _s_any(value, _):
    return _freeze(value)


def _is_homogeneous_tuple(tp) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_delay_union(tp) -> bool:
    args = set(typing.get_args(tp))
    return typing.get_origin(tp) in (Union, types.UnionType) and float in args and tuple[float, ...] in args


def _key_path(key) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    key = str(key)
    return f".{key}" if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) else f"[{key!r}]"


def _suggest(word, options) -> str:
    options = [str(o) for o in options]
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}Valid: {', '.join(options)}." if options else hint


class _StudyConverter:
    """A cattrs converter with strict scalars, tagged unions and located errors."""

    def __init__(self, kinds: Mapping[str, type]):
        self.kinds = dict(kinds)
        c = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
        self.c = c
        c.register_structure_hook_factory(attrs.has, self._attrs_factory)
        for tp, fn in ((int, _s_int), (float, _s_float), (str, _s_str), (bool, _s_bool)):
            c.register_structure_hook(tp, fn)
        c.register_structure_hook_func(lambda t: t is Any, _s_any)
        c.register_structure_hook_func(_is_homogeneous_tuple, self._s_tuple)
        c.register_structure_hook_func(_is_delay_union, self._s_delay)
        c.register_structure_hook_func(lambda t: t == World, self._s_world)
        c.register_structure_hook_func(lambda t: t == CircuitSpec, self._s_circuit)
        c.register_structure_hook_func(lambda t: t is AbstractComponent, self._s_component)
        c.register_structure_hook(Sweep, self._s_sweep)
        c.register_structure_hook(PresetCircuit, self._s_preset)
        c.register_structure_hook(GraphCircuit, self._s_graph)
        # unstructuring: plain YAML-ready values, kinds first
        c.register_unstructure_hook_func(
            lambda t: isinstance(t, type) and (issubclass(t, AbstractComponent) or t in WORLDS.values()),
            self._u_tagged)
        c.register_unstructure_hook(PresetCircuit, lambda p: {"preset": p.preset, **_thaw(dict(p.params))})
        c.register_unstructure_hook(GraphCircuit, self._u_graph)
        c.register_unstructure_hook(Sweep, self._u_sweep)
        c.register_unstructure_hook_func(lambda t: t is tuple or typing.get_origin(t) is tuple,
                                         lambda v: [c.unstructure(x) for x in v])

    # -------------------------------------------------------- attrs classes
    def _attrs_factory(self, cl):
        fn = make_dict_structure_fn(cl, self.c)

        def structure(obj, _type=cl):
            if not isinstance(obj, Mapping):
                raise _Problem(f"expected a mapping of {cl.__name__} settings (key: value), got {_show(obj)}.")
            try:
                return fn(obj, cl)
            except ClassValidationError as exc:
                raise self._locate(exc, obj, cl) from None

        return structure

    def _locate(self, exc: ClassValidationError, obj: Mapping, cl) -> ClassValidationError:
        """Attach field names to errors raised by a class's validators at instantiation.

        A field validator's error is located at its field (with the field's
        default as a fix when the message gives none). An error of the class
        as a whole (``__attrs_post_init__``: executor names, speed ranges) is
        located at the field given in the file that, left out, makes the
        class valid; failing that, at the first given field the message
        names; failing that, at the class.
        """
        with_notes, without = exc.group_exceptions()
        if with_notes or not without:
            return exc
        found = []
        inst = object.__new__(cl)
        for f in attrs.fields(attrs.resolve_types(cl)):
            if f.validator is None or f.name not in obj:
                continue
            try:
                value = self.c.structure(obj[f.name], f.type)
                if f.converter is not None:
                    value = f.converter(value)
                f.validator(inst, f, value)
            except AttributeError:
                continue
            except Exception as e:  # noqa: BLE001 - reported with its path
                e = _with_default_fix(e, f)
                e.__notes__ = [AttributeValidationNote(f"@ {f.name}", f.name, f.type)]
                found.append(e)
        if not found and not any(isinstance(e, ForbiddenExtraKeysError) for e in without):
            name = self._culprit(obj, cl, _message(without[0]))
            if name is None:
                return exc
            e = without[0]
            e.__notes__ = [AttributeValidationNote(f"@ {name}", name, attrs.fields_dict(cl)[name].type)]
            found.append(e)
        if not found:
            return exc
        return ClassValidationError(exc.message, found, cl)

    def _culprit(self, obj: Mapping, cl, message: str) -> str | None:
        """The one given field whose absence makes ``cl`` valid (else the first one the message names)."""
        fields = attrs.fields_dict(cl)
        given = [k for k in obj if k in fields]

        def valid_without(name) -> bool:
            try:
                cl(**{k: self.c.structure(obj[k], fields[k].type) for k in given if k != name})
            except Exception:  # noqa: BLE001 - invalid
                return False
            return True

        if valid_without(None):
            return None
        alone = [name for name in given if valid_without(name)]
        if len(alone) == 1:
            return alone[0]
        named = [(m.start(), k) for k in given for m in [re.search(rf"(?<![\w]){re.escape(k)}\b", message)] if m]
        return min(named)[1] if named else None

    def _s_tuple(self, value, tp):
        if not isinstance(value, (list, tuple)):
            raise _Problem(f"expected a list, got {_show(value)}.")
        item = typing.get_args(tp)[0]
        out, errors = [], []
        for i, x in enumerate(value):
            try:
                out.append(self.c.structure(x, item))
            except Exception as e:  # noqa: BLE001
                e.__notes__ = [IterableValidationNote(f"@ index {i}", i, item)]
                errors.append(e)
        if errors:
            raise IterableValidationError("while structuring a list", errors, tp)
        return tuple(out)

    def _s_delay(self, value, tp):
        if isinstance(value, (list, tuple)):
            return self._s_tuple(value, tuple[float, ...])
        try:
            return _s_float(value, float)
        except _Problem:
            raise _Problem(f"expected a delay in ms (a number, or a list of numbers, one per "
                           f"channel), got {_show(value)}.") from None

    # -------------------------------------------------------- tagged unions
    def _tagged(self, value, registry: Mapping[str, type], what: str):
        if isinstance(value, tuple(registry.values())):
            return value
        if not isinstance(value, Mapping):
            raise _Problem(f"expected a mapping with a kind ({', '.join(registry)}), got {_show(value)}.")
        if "kind" not in value:
            raise _Problem(f"{what} needs a kind: one of {', '.join(registry)}.")
        kind = value["kind"]
        if not isinstance(kind, str) or kind not in registry:
            close = difflib.get_close_matches(str(kind), list(registry), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise _KindProblem(f"unknown {what} kind {kind!r}; {hint}valid kinds: {', '.join(registry)}.")
        rest = {k: v for k, v in value.items() if k != "kind"}
        return self.c.structure(rest, registry[kind])

    def _s_world(self, value, _):
        return self._tagged(value, WORLDS, "world")

    def _s_component(self, value, _):
        return self._tagged(value, self.kinds, "component")

    def _u_tagged(self, spec):
        out = {"kind": type(spec).kind}
        for f in attrs.fields(type(spec)):
            out[f.name] = self.c.unstructure(getattr(spec, f.name))
        return out

    # -------------------------------------------------------- circuits
    def _s_circuit(self, value, _):
        if isinstance(value, (PresetCircuit, GraphCircuit)):
            return value
        if isinstance(value, Circuit):
            return GraphCircuit.from_circuit(value)
        if not isinstance(value, Mapping):
            raise _Problem(f"expected a mapping: either {{preset: NAME, ...parameters}} or "
                           f"{{nodes: ..., edges: [...]}}, got {_show(value)}.")
        if "preset" in value:
            return self._s_preset(value, PresetCircuit)
        if "nodes" in value or "edges" in value:
            return self._s_graph(value, GraphCircuit)
        raise _Problem("a circuit is either a preset ({preset: NAME, ...parameters}; presets: "
                       f"{', '.join(PRESETS)}) or a graph ({{nodes: ..., edges: [...]}}); found keys "
                       f"{', '.join(map(str, value)) or 'none'}.")

    def _s_preset(self, value, _):
        if isinstance(value, PresetCircuit):
            return value
        name = value.get("preset")
        if not isinstance(name, str) or name not in PRESETS:
            raise _Located(_preset_key_problems(name, []))
        fn = PRESETS[name]
        hints = typing.get_type_hints(fn)
        valid = _preset_parameters(name)
        problems, params = [], []
        for key, v in value.items():
            if key == "preset":
                continue
            if key not in valid:
                problems += _preset_key_problems(name, [key])
            else:
                try:
                    params.append((key, self.c.structure(v, hints.get(key, Any))))
                except _Problem as e:
                    problems.append((_key_path(key), str(e)))
        if problems:
            raise _Located(problems)
        return PresetCircuit(name, tuple(params))

    def _s_graph(self, value, _):
        if isinstance(value, GraphCircuit):
            return value
        problems = []
        extra = [k for k in value if k not in ("nodes", "edges")]
        for k in extra:
            problems.append((_key_path(k), f"unknown key {k!r} of a graph circuit; "
                                           f"{_suggest(k, ['nodes', 'edges'])}"))
        nodes_raw = value.get("nodes")
        nodes = {}
        if not isinstance(nodes_raw, Mapping) or not nodes_raw:
            problems.append((".nodes", f"a graph circuit needs nodes: a mapping from node name to "
                                       f"{{kind: ..., ...}}, got {_show(nodes_raw)}."))
        else:
            for name, spec in nodes_raw.items():
                try:
                    nodes[name] = self.c.structure(spec, AbstractComponent)
                except Exception as e:  # noqa: BLE001
                    problems += [(f".nodes{_key_path(name)}{p}", m) for p, m in _flatten(e, "")]
        edges_raw = value.get("edges", [])
        edges = ()
        try:
            edges = self._s_tuple(edges_raw, tuple[Edge, ...])
        except Exception as e:  # noqa: BLE001
            problems += [(f".edges{p}", m) for p, m in _flatten(e, "")]
        if problems:
            raise _Located(problems)
        return GraphCircuit(nodes=nodes, edges=edges)

    def _u_graph(self, g: GraphCircuit):
        return {"nodes": {n: self.c.unstructure(s, type(s)) for n, s in g.nodes.items()},
                "edges": [self.c.unstructure(e) for e in g.edges]}

    # -------------------------------------------------------- sweeps
    def _s_sweep(self, value, _):
        if isinstance(value, Sweep):
            return value
        if not isinstance(value, Mapping):
            raise _Problem(f"expected a mapping from dotted paths to lists of values, got {_show(value)}.")
        problems, grid, groups = [], [], []
        for key, vals in value.items():
            if key == "zip":
                zraw = vals if isinstance(vals, list) else [vals]
                for gi, group in enumerate(zraw):
                    where = ".zip" if not isinstance(vals, list) else f".zip[{gi}]"
                    if not isinstance(group, Mapping) or not group:
                        problems.append((where, f"zip pairs lists: a mapping from paths to lists of "
                                                f"equal length, got {_show(group)}."))
                        continue
                    items = []
                    for path, gv in group.items():
                        p = _sweep_values(path, gv)
                        if isinstance(p, str):
                            problems.append((f"{where}[{path!r}]", p))
                        else:
                            items.append((str(path), p))
                    lengths = {len(v) for _, v in items}
                    if len(lengths) > 1:
                        problems.append((where, "zipped lists must have equal lengths (the paths take their "
                                                "i-th values together), got "
                                         + ", ".join(f"{p}: {len(v)}" for p, v in items)
                                         + "; give each path as many values, or move a path out of zip: "
                                           "into the grid to combine it with every value."))
                    elif items:
                        groups.append(tuple(items))
            else:
                p = _sweep_values(key, vals)
                if isinstance(p, str):
                    problems.append((f"[{key!r}]", p))
                else:
                    grid.append((str(key), p))
        if not problems and not grid and not groups:
            problems.append(("", _EMPTY_SWEEP))
        if problems:
            raise _Located(problems)
        return Sweep(grid=tuple(grid), zip=tuple(groups))

    def _u_sweep(self, s: Sweep):
        out = {p: _thaw(v) for p, v in s.grid}
        if s.zip:
            groups = [{p: _thaw(v) for p, v in g} for g in s.zip]
            out["zip"] = groups[0] if len(groups) == 1 else groups
        return out

    # -------------------------------------------------------- entry points
    def structure(self, value, tp):
        return self.c.structure(value, tp)

    def unstructure(self, value):
        return self.c.unstructure(value, type(value))


_EMPTY_SWEEP = ("the sweep names no path, so it would run no point; give at least one path with its values "
                "(e.g. sweep: {seed: [0, 1]}), or no sweep (sweep: null) to run the study once.")

#: Top-level keys a sweep cannot vary, with the reason.
_NOT_SWEPT = {
    "name": "the study's name names the sweep's folder (each point gets a subfolder of its own)",
    "sweep": "a sweep point is a single run",
    "executor": "the executor runs the sweep's points, so it is one for the whole sweep (set it once, or "
                "with --executor)",
}


def _sweep_values(path, values):
    if not isinstance(path, str) or not path:
        return f"a swept parameter is a dotted path such as circuit.nodes.z.gamma, got {path!r}."
    head = path.split(".")[0].split("[")[0]
    if head in _NOT_SWEPT:
        return f"{path!r} cannot be swept: {_NOT_SWEPT[head]}; remove it from sweep."
    if not isinstance(values, list) or not values:
        return (f"expected a non-empty list of values for {path!r}, got {_show(values)}; "
                f"e.g. {path}: [0.0, 0.5].")
    return tuple(_freeze(_number(v)) for v in values)


def _number(value):
    """A number written as text (YAML 1.1 reads 1e-3 as text) as a float; anything else as is."""
    if isinstance(value, str) and _NUMBER_RE.match(value.strip()) and not value.strip().lstrip("+-").isdigit():
        return float(value)
    return value


class _Located(ValueError):
    """Problems already located relative to the value being structured."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(m for _, m in problems))
        self.problems = problems


class _KindProblem(_Problem):
    """An unknown ``kind``: located at the ``kind`` key."""


@functools.lru_cache(maxsize=16)
def _converter_for(kinds: tuple[tuple[str, type], ...]) -> _StudyConverter:
    return _StudyConverter(dict(kinds))


def _converter(extra_kinds: Mapping[str, type] | None = None) -> _StudyConverter:
    kinds = dict(COMPONENTS)
    kinds.update(extra_kinds or {})
    return _converter_for(tuple(kinds.items()))


# ============================================================ error formatting
def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return "required, but missing."
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc) or type(exc).__name__


def _flatten(exc: BaseException, path: str) -> list[tuple[str, str]]:
    """Walk a cattrs error tree into ``(path, message)`` pairs, keeping validator texts."""
    if isinstance(exc, _Located):
        return [(path + p, m) for p, m in exc.problems]
    if isinstance(exc, _KindProblem):
        return [(path + ".kind", _message(exc))]
    if isinstance(exc, StudyError):
        return [(path + p.lstrip("$"), m) for p, m in exc.problems]
    if isinstance(exc, ClassValidationError):
        out = []
        with_notes, without = exc.group_exceptions()
        for e, note in with_notes:
            out += _flatten(e, path + "." + note.name)
        for e in without:
            out += _flatten_extra(e, path, exc.cl) if isinstance(e, ForbiddenExtraKeysError) \
                else _flatten(e, path)
        return out
    if isinstance(exc, IterableValidationError):
        out = []
        with_notes, without = exc.group_exceptions()
        for e, note in with_notes:
            out += _flatten(e, path + _key_path(note.index))
        for e in without:
            out += _flatten(e, path)
        return out
    if isinstance(exc, ForbiddenExtraKeysError):
        return _flatten_extra(exc, path, exc.cl)
    if isinstance(exc, BaseExceptionGroup):
        return [p for e in exc.exceptions for p in _flatten(e, path)]
    return [(path, _message(exc))]


def _flatten_extra(exc: ForbiddenExtraKeysError, path: str, cl) -> list[tuple[str, str]]:
    valid = [f.name for f in attrs.fields(exc.cl)]
    what = getattr(exc.cl, "kind", None) or exc.cl.__name__
    return [(path + _key_path(k), f"unknown key {k!r} in {what}; {_suggest(k, valid)}")
            for k in sorted(exc.extra_fields, key=str)]


# ============================================================ structuring
def structure_study(raw, *, source: str = "<study>", extra_kinds: Mapping[str, type] | None = None,
                    check: bool = True) -> Study:
    """Turn a raw study mapping (from YAML) into a checked :class:`Study`.

    Parameters
    ----------
    raw : dict
        The parsed study file.
    source : str
        Where it came from, for messages.
    extra_kinds : dict of str -> component class, optional
        Component kinds besides :data:`neurodelay.components.COMPONENTS`
        (Python studies defining their own components).
    check : bool
        Also check the study as a whole (:func:`check_study`).

    Raises
    ------
    StudyError
        Listing every problem with its path.
    """
    if not isinstance(raw, Mapping):
        raise StudyError(source, [("$", f"a study file is a mapping of sections (name: ..., world: ..., "
                                        f"circuit: ...), got {_show(raw)}.")])
    problem = _bounds.raw_problem(raw)
    if problem is not None:
        raise StudyError(source, [("$", problem)])
    raw, filled = _fill_sizes(dict(raw), extra_kinds)
    world_given = isinstance(raw.get("world"), Mapping) and "size" in raw["world"]
    conv = _converter(extra_kinds)
    try:
        study = conv.structure(raw, Study)
    except Exception as exc:  # noqa: BLE001 - every structuring error is reported
        raise StudyError(source, _at_world_size(_flatten(exc, "$"), filled, world_given)) from None
    if check:
        problems = _check_study(study, extra_kinds, filled, world_given)
        if problems:
            raise StudyError(source, problems)
    return study


def _world_size(raw: Mapping):
    """The image size of the raw study's world (given, or its kind's default); None if unknown."""
    world = raw.get("world")
    size = None
    if isinstance(world, Mapping):
        cls = WORLDS.get(_text(world.get("kind")))
        size = world.get("size", attrs.fields_dict(cls)["size"].default if cls else None)
    elif world is None:
        size = attrs.fields_dict(MovingCircle)["size"].default
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def _image_sized(cls) -> bool:
    """Whether component class ``cls`` takes the world's image size as its ``size`` (``size_is_image``)."""
    return (cls is not None and getattr(cls, "size_is_image", False) is True
            and attrs.has(cls) and "size" in attrs.fields_dict(cls))


def _fill_sizes(raw: dict, extra_kinds: Mapping[str, type] | None = None) -> tuple[dict, dict[str, int]]:
    """Give conv areas and presets the world's image size unless the file sets one.

    ``extra_kinds``: component kinds besides the built-in ones (a Python
    study's own); those that set ``size_is_image`` take it too.

    Returns
    -------
    raw : dict
        The study with the sizes filled in.
    filled : dict of str -> int
        The paths filled (``$.circuit.size``, ``$.circuit.nodes.enc.size``)
        with the size given them, so that an error about one of them is
        reported at ``$.world.size``, the key the file wrote.
    """
    size = _world_size(raw)
    circuit = raw.get("circuit")
    if size is None or not isinstance(circuit, Mapping):
        return raw, {}
    circuit, filled = dict(circuit), {}
    kinds = {**COMPONENTS, **(extra_kinds or {})}
    if _text(circuit.get("preset")) in PRESETS:
        if "size" in inspect.signature(PRESETS[circuit["preset"]]).parameters and "size" not in circuit:
            circuit["size"] = size
            filled["$.circuit.size"] = size
    elif isinstance(circuit.get("nodes"), Mapping):
        nodes = {}
        for name, spec in circuit["nodes"].items():
            cls = kinds.get(_text(spec.get("kind"))) if isinstance(spec, Mapping) else None
            if _image_sized(cls) and "size" not in spec:
                spec = {**spec, "size": size}
                filled[f"$.circuit.nodes{_key_path(name)}.size"] = size
            nodes[name] = spec
        circuit["nodes"] = nodes
    raw["circuit"] = circuit
    return raw, filled


def _at_world_size(problems: list[tuple[str, str]], filled: Mapping[str, int], world_given: bool
                   ) -> list[tuple[str, str]]:
    """Problems at sizes filled from the world, moved to ``$.world.size`` (once per message).

    ``world_given``: whether the file gives ``world.size`` (else the world's default).
    """
    out, moved = [], {}
    for path, msg in problems:
        if path in filled:
            moved.setdefault(msg, []).append(path[2:])
        else:
            out.append((path, msg))
    if "$.world.size" in {p for p, _ in out}:
        return out  # the world's own check already reports its size
    for msg, paths in moved.items():
        size = next(filled[f"$.{p}"] for p in paths)
        given = "given" if world_given else "the default"
        out.append(("$.world.size", f"world.size ({given}: {size}) is also the image size of "
                                    f"{', '.join(paths)}, which the file leaves to the world: {msg}"))
    return out


def unstructure_study(study: Study) -> dict:
    """The study as a plain dict (YAML-ready; :func:`structure_study` reads it back)."""
    kinds = _custom_kinds(study)
    out = _converter(kinds).unstructure(study)
    return _thaw(out)


def study_to_yaml(study: Study) -> str:
    """The study as YAML text (the resolved study written next to the results)."""
    return yaml.safe_dump(unstructure_study(study), sort_keys=False, default_flow_style=None, width=100)


def structure_component(raw: Mapping, extra_kinds: Mapping[str, type] | None = None) -> AbstractComponent:
    """A component spec from its study-file mapping (``{kind: ..., ...}``)."""
    conv = _converter(extra_kinds)
    try:
        return conv.structure(raw, AbstractComponent)
    except Exception as exc:  # noqa: BLE001
        raise StudyError("<component>", _flatten(exc, "$")) from None


def unstructure_component(spec: AbstractComponent) -> dict:
    """A component spec as its study-file mapping (``{kind: ..., ...}``)."""
    return _thaw(_converter({type(spec).kind: type(spec)}).unstructure(spec))


def _custom_kinds(study: Study) -> dict[str, type]:
    if isinstance(study.circuit, GraphCircuit):
        return {type(s).kind: type(s) for s in study.circuit.nodes.values()
                if COMPONENTS.get(type(s).kind) is not type(s)}
    return {}


# ============================================================ whole-study checks
_EDGE_HEAD_RE = re.compile(r"^edge (\d+) \([^()]*\)")


def _circuit_path(message: str) -> str:
    """The graph circuit's key a circuit error is about (``$.circuit.edges[2].target``...).

    Messages about an edge start ``edge N (SOURCE -> TARGET)``; the rest
    tells which of the edge's keys is wrong. Messages about a node start
    ``node 'NAME'`` or ``node name 'NAME'``.
    """
    m = _EDGE_HEAD_RE.match(message)
    if m:
        path = f"$.circuit.edges[{m.group(1)}]"
        head = message[m.end():].lstrip(" :")
        if re.search(r"\bsource\b|has no stream|not a valid world stream", head):
            return path + ".source"
        if re.search(r"\btarget\b|has no port|has ports", head):
            return path + ".target"
        if head.startswith("learn_delay needs"):
            return path + ".learn_delay"
        for key in ("min_delay_ms", "max_delay_ms"):
            if head.startswith(key):
                return f"{path}.{key}"
        if re.search(r"\bdelay_ms\b|delays need", head):
            return path + ".delay_ms"
        return path
    m = re.match(r"^node name (['\"])(.+?)\1 ", message) or re.match(r"^node (['\"])(.+?)\1[ :]", message)
    if m:
        return f"$.circuit.nodes{_key_path(m.group(2))}"
    return "$.circuit"


def _objective_path(message: str) -> str:
    m = re.match(r"^(objective(?:\.[A-Za-z_]\w*|\[\d+\])*)", message)
    return "$." + m.group(1) if m else "$.objective"


def _preset_problem(study: Study, message: str, fails) -> tuple[str, str]:
    """Locate an error of a preset circuit at the parameter (or study key) that causes it.

    The preset's edges and nodes are not in the file, so an error about them
    belongs to a parameter: the one given parameter that, left out (the
    preset's default; ``size``: the world's), makes ``fails`` pass; else one
    the message names; else one whose value is the delay the message is
    about; else ``dt_ms`` for a delay off the time grid; else the circuit.
    """
    params = dict(study.circuit.params)
    preset = study.circuit.preset
    signature = inspect.signature(PRESETS[preset]).parameters
    alone = []
    for key in params:
        trial = {k: v for k, v in params.items() if k != key}
        if key == "size":
            trial["size"] = study.world.size
        try:
            fails(PresetCircuit(preset, tuple(trial.items())))
        except Exception:  # noqa: BLE001 - still failing without it
            continue
        alone.append(key)
    key = alone[0] if len(alone) == 1 else None
    if key is None:
        named = [(m.start(), k) for k in params for m in [re.search(rf"(?<![\w.]){re.escape(k)}\b", message)] if m]
        key = min(named)[1] if named else None
    delay = re.search(r"\bdelay_ms=([-+0-9.eE]+)", message)
    if key is None and delay:
        try:
            said = float(delay.group(1))
        except ValueError:  # e.g. "delay_ms=-." in some message: no number to match
            said = None
        key = next((k for k, v in params.items() if k.endswith("delay_ms") and is_real(v)
                    and float(v) == said), None)
    message = re.sub(r" \(or set fractional: true[^)]*\)", "", message)  # not a preset parameter
    if key is None:
        if delay and "dt_ms=" in message:
            return "$.dt_ms", f"the {preset!r} preset's delays are not on the time grid: {message}"
        return "$.circuit", message
    if not re.search(rf"(?<![\w.]){re.escape(key)}\b", message):
        message = f"{key}={_yaml_value(params[key])} does not work in the {preset!r} preset: {message}"
    if not _FIX_RE.search(message) and key in signature \
            and signature[key].default is not inspect.Parameter.empty:
        message = f"{message.rstrip('.')}; use e.g. {key}: {_yaml_value(signature[key].default)} (the default)."
    return f"$.circuit.{key}", message


def check_study(study: Study, *, source: str = "<study>",
                extra_kinds: Mapping[str, type] | None = None) -> None:
    """Check a study as a whole: circuit structure and shapes, objective, analyses, sweep.

    Builds nothing that trains and writes nothing. For a sweep, its paths
    are checked (each in the schema, none swept twice, none inside another)
    and so is every point.

    Raises
    ------
    StudyError
        Listing the problems with their paths.
    """
    problems = _check_study(study, extra_kinds, {}, True)
    if problems:
        raise StudyError(source, problems)


def _check_study(study: Study, extra_kinds, filled: Mapping[str, int], world_given: bool
                 ) -> list[tuple[str, str]]:
    """The problems of a structured study; ``filled``: the sizes :func:`_fill_sizes` took from the world."""
    problems = _at_world_size(_check_point(study), filled, world_given)
    if study.sweep is not None:
        problems += _check_sweep_paths(study, extra_kinds)
        if not problems:
            too_many = _bounds.sweep_size_problem(study.sweep.n_points)
            if too_many is not None:
                return [("$.sweep", too_many)]
            problems += _check_sweep_points(study, extra_kinds)
    return problems


def _check_point(study: Study) -> list[tuple[str, str]]:
    if isinstance(study.circuit, GraphCircuit) and study.circuit.dt_ms is not None \
            and float(study.circuit.dt_ms) != float(study.dt_ms):
        return [("$.dt_ms", f"the circuit was made with dt_ms={study.circuit.dt_ms:g} but the study has "
                            f"dt_ms={study.dt_ms:g}; make them equal (the study's dt is the circuit's).")]
    dt = float(study.dt_ms)
    preset = isinstance(study.circuit, PresetCircuit)
    if preset:  # a PresetCircuit made in Python has not been through the study file's checks
        problems = _preset_key_problems(study.circuit.preset, [k for k, _ in study.circuit.params])
        if problems:
            return [("$.circuit" + path, msg) for path, msg in problems]
    problems = _value_bounds(study)
    if problems:  # out of bounds: building the circuit could take forever, or all the memory there is
        return problems
    key = (repr(study.circuit), repr(world_shapes(study.world)), dt)
    if _BUILD_CACHE is not None and key in _BUILD_CACHE:
        circuit, module, problems = _BUILD_CACHE[key]
    else:
        circuit, module, problems = _build_checked(study)
        if _BUILD_CACHE is not None:
            if len(_BUILD_CACHE) >= 8:  # a few circuits at a time: a sweep's points vary them in order
                del _BUILD_CACHE[next(iter(_BUILD_CACHE))]
            _BUILD_CACHE[key] = (circuit, module, problems)
    if module is None:
        return problems
    problems = _memory_bounds(study, circuit, module)
    if problems:
        return problems
    learnable = any(p.requires_grad for p in module.parameters())
    if study.objective is None:
        if study.train.steps > 0 and learnable:
            problems.append(("$.objective", (
                f"this study trains (train.steps: {study.train.steps}) a circuit with learnable "
                f"parameters but has no objective; add e.g. objective: {{reconstruction: gaussian}}, "
                f"or set train.steps: 0 to only simulate.")))
    else:
        problems += _check_objective(study, module)
    if study.analyses:
        from .analysis.registry import available

        registered = available()
        for i, name in enumerate(study.analyses):
            if name not in registered:
                problems.append((f"$.analyses[{i}]", f"unknown analysis {name!r}; "
                                                     f"{_suggest(name, list(registered)) if registered else 'none is registered.'}"))
    return problems


#: While a sweep's points are checked: the circuits built so far, by (circuit, world shapes, dt), since
#: most sweeps vary settings that leave the circuit as it is (seeds, learning rates).
_BUILD_CACHE: dict | None = None


def _build_checked(study: Study):
    """(circuit spec, built module, []) of a study, or (None, None, problems) when it does not build."""
    from .simulation import build_seeded

    dt = float(study.dt_ms)
    preset = isinstance(study.circuit, PresetCircuit)
    try:
        circuit = study.build_circuit()
    except (ConfigError, ValueError, TypeError) as exc:
        msg = _message(exc)
        if preset:
            return None, None, [_preset_problem(study, msg, lambda pc: pc.build(dt))]
        return None, None, [(_circuit_path(msg), msg)]
    problems = _memory_bounds(study, circuit, None)
    if problems:  # the parameters alone would not fit: do not build them
        return None, None, problems
    try:
        shapes = world_shapes(study.world)
        module = build_seeded(circuit, input_shapes=shapes, seed=0)
    except (ConfigError, ValueError, TypeError) as exc:
        msg = _message(exc)
        if preset:
            return None, None, [_preset_problem(
                study, msg, lambda pc: build_seeded(pc.build(dt), input_shapes=shapes, seed=0))]
        return None, None, [(_circuit_path(msg), msg)]
    return circuit, module, []


def _delays(study: Study):
    """(path, delay in ms) of every delay the study writes: a graph's edges', a preset's ``*delay_ms``."""
    if isinstance(study.circuit, GraphCircuit):
        for i, e in enumerate(study.circuit.edges):
            for key in ("delay_ms", "min_delay_ms", "max_delay_ms"):
                value = getattr(e, key, None)
                if value is not None:
                    yield f"$.circuit.edges[{i}].{key}", value
    elif isinstance(study.circuit, PresetCircuit):
        for key, value in study.circuit.params:
            if key.endswith("delay_ms"):
                yield f"$.circuit.{key}", value


def _value_bounds(study: Study) -> list[tuple[str, str]]:
    """The study's values against the bounds of :mod:`neurodelay._util.bounds` (integers, times, delays)."""
    problems = _bounds.integer_problems(unstructure_study(study))
    if problems:
        return problems
    size = getattr(study.world, "size", None)
    problems = _bounds.time_problems(float(study.dt_ms), getattr(study.world, "n_frames", None),
                                     size if isinstance(size, int) else None)
    if problems:
        return problems
    return _bounds.delay_problems(_delays(study), float(study.dt_ms))


def _memory_limits(study: Study) -> tuple[int | None, int | None, str]:
    """(host bytes, device bytes, how to name the host) that the study's points run with; None: unknown."""
    from .executors import local_dask, parse_executor

    if study.executor is not None:
        try:
            kind, arg = parse_executor(study.executor.name)
        except ConfigError:
            kind, arg = "local", ""
        if kind == "slurm" and arg != "local":
            mem = study.executor.mem_gb
            return (mem * 2**30 if mem else None), None, "a Slurm job (executor.mem_gb)"
        if kind == "dask" and not local_dask(arg):
            return None, None, "a Dask worker"
    gpu = _bounds.machine_memory(study.device) if study.device.startswith("cuda") else None
    return _bounds.machine_memory("cpu"), gpu, "this machine"


def _memory_bounds(study: Study, circuit: Circuit, module) -> list[tuple[str, str]]:
    """Refuse a study whose memory need plainly exceeds the machine's (see :func:`_bounds.memory_problems`).

    Before the circuit is built (``module`` None) only its parameters are
    estimated, so that checking never allocates what cannot fit.
    """
    memory, gpu, where = _memory_limits(study)
    if memory is None and gpu is None:
        return []
    world = study.world
    frame_values = math.prod(world.frame_shape) + int(world.n_factors)
    n_frames = study.n_frames
    trace_values = 0
    if module is not None:
        trace_values = sum(math.prod(shape) for name, shape in module.plan.shapes.items()
                           if shape is not None and not name.startswith("world."))
    extra = []
    if getattr(world, "dataset", None) == "original":
        n = int(world.n_sequences)
        extra.append(("$.world.n_sequences", f"the original dataset of {n:,} sequences (x 10 frames x 4 factors "
                                             f"x 8 bytes)", n * 10 * 4 * 8))
    trains = study.train.steps > 0 and module is not None  # before building: the weights alone
    param_bytes = (_bounds.parameter_bytes(circuit.nodes) if module is None
                   else sum(p.numel() * p.element_size() for p in module.parameters()))
    return _bounds.memory_problems(
        parameter_bytes=param_bytes, trace_values=trace_values, frame_values=frame_values,
        batch_size=study.train.batch_size if module is not None else 0, n_frames=n_frames,
        n_sequences=study.evaluate.n_sequences if module is not None else 0, optimizer=study.train.optimizer,
        trains=trains, device=study.device, memory=memory, gpu_memory=gpu, where=where,
        extra=extra if module is None else [])


def _check_objective(study: Study, module) -> list[tuple[str, str]]:
    from .training.objectives import check_objective

    def check(objective):
        check_objective(objective, module, study.world.factor_names, n_frames=study.n_frames)

    try:
        check(study.objective)
    except (ConfigError, ValueError, TypeError) as exc:
        msg = _message(exc)
        start = study.objective.score_from_step
        if start > 0:
            try:
                check(attrs.evolve(study.objective, score_from_step=0))
            except (ConfigError, ValueError, TypeError):
                pass
            else:  # scoring from step 0 would do: score_from_step leaves no step to score
                return [("$.objective.score_from_step", (
                    f"score_from_step: {start} leaves a loss term no step to score: sequences have "
                    f"{study.n_frames} frame(s) (steps 0..{study.n_frames - 1}), and delays and "
                    f"target_offset_steps leave fewer; use a smaller score_from_step (e.g. 0, the default) "
                    f"or more world.n_frames."))]
        path = _objective_path(msg)
        if msg.startswith(path[2:] + ":"):
            msg = msg[len(path) - 1:].lstrip()
        return [(path, msg)]
    return []



def _same_run_key(value):
    """A hashable form of a swept value in which equal settings are equal (1 and 1.0 alike)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return tuple(_same_run_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _same_run_key(v)) for k, v in value.items()))
    return repr(value)


def _repeated(values) -> list:
    """The values that occur more than once (1 and 1.0 count as one)."""
    seen, out = set(), []
    for v in values:
        key = _same_run_key(v)
        if key in seen and v not in out:
            out.append(v)
        seen.add(key)
    return out


def _sweep_entries(sweep: Sweep) -> list[tuple[str, str, tuple]]:
    """``(path, location, values)`` of every swept path: ``$.sweep['train.lr']``, ``$.sweep.zip['seed']``."""
    out = [(p, f"$.sweep[{p!r}]", v) for p, v in sweep.grid]
    for gi, group in enumerate(sweep.zip):
        where = "$.sweep.zip" if len(sweep.zip) == 1 else f"$.sweep.zip[{gi}]"
        out += [(p, f"{where}[{p!r}]", v) for p, v in group]
    return out


def _path_key(path) -> tuple | None:
    """A path's tokens (``edges[0]`` and ``edges.0`` alike), or None when it is not a path."""
    try:
        return tuple(_tokens(path))
    except _PathError:
        return None


def _dollar_key(path: str) -> tuple:
    """The tokens of a located path such as ``$.circuit.edges[2].delay_ms`` or ``$.sweep['a.b']``."""
    out = []
    for name, index, quoted in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]|\[(['\"].*?['\"])\]", path[1:]):
        out.append(int(index) if index else (quoted[1:-1] if quoted else name))
    return tuple(out)


def _overlap(a: tuple, b: tuple) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _check_sweep_paths(study: Study, extra_kinds=None) -> list[tuple[str, str]]:
    """Problems of the sweep's definition: unknown paths, paths swept twice or inside one another, repeats."""
    sweep = study.sweep
    kinds = {**_custom_kinds(study), **(extra_kinds or {})}
    if not sweep.paths:
        return [("$.sweep", _EMPTY_SWEEP)]
    raw = unstructure_study(study)
    problems = []
    for path, values in sweep.grid:
        twice = _repeated(list(values))
        if twice:
            problems.append((f"$.sweep[{path!r}]", f"repeats {', '.join(map(_yaml_value, twice))}: two points would be "
                                                   f"the same run; "
                                                   f"give each value once."))
    for gi, group in enumerate(sweep.zip):
        rows = list(zip(*(values for _, values in group)))
        twice = _repeated([list(r) for r in rows])
        if twice:
            paths = ", ".join(p for p, _ in group)
            problems.append(("$.sweep.zip" if len(sweep.zip) == 1 else f"$.sweep.zip[{gi}]",
                             f"the zipped values of {paths} repeat {'; '.join(map(_yaml_value, twice))}: two points "
                             f"would be the same run; give each combination once."))
    seen: list[tuple[tuple, str, str]] = []
    for path, where, _ in _sweep_entries(sweep):
        try:
            _set_path(raw, path, None, check_only=True, extra_kinds=kinds)
        except _PathError as e:
            problems.append((where, str(e)))
            continue
        key = _path_key(path)
        for other_key, other_path, other_where in seen:
            if not _overlap(key, other_key):
                continue
            if key == other_key:
                written = f" (written {other_path!r})" if other_path != path else ""
                problems.append((where, (
                    f"{path} is swept twice: also at {other_where}{written}. A point gives a path one "
                    f"value, so the later list would replace the earlier one at every point and the earlier "
                    f"dimension would only repeat runs; keep one of the two lists (in the grid, or in the "
                    f"zip group of the paths it varies with).")))
            else:
                outer, inner = (other_path, path) if len(other_key) < len(key) else (path, other_path)
                problems.append((where, (
                    f"{path} overlaps {other_path}, also swept at {other_where}: each value of {outer} "
                    f"replaces the whole {outer} section, {inner} included, so which of the two a point "
                    f"gets would depend on the order they are applied in; sweep only one of them (e.g. "
                    f"give {inner} inside each value of {outer}).")))
            break
        seen.append((key, path, where))
    return problems


def _check_sweep_points(study: Study, extra_kinds) -> list[tuple[str, str]]:
    """Every point of the sweep, checked; a problem at a swept path is located at its sweep entry."""
    from .sweep import expand  # noqa: PLC0415 - sweep imports this module

    global _BUILD_CACHE

    entries = [(_path_key(p), p, where) for p, where, _ in _sweep_entries(study.sweep)]
    outer, _BUILD_CACHE = _BUILD_CACHE, ({} if _BUILD_CACHE is None else _BUILD_CACHE)
    try:
        return _point_problems(study, extra_kinds, entries)
    finally:
        _BUILD_CACHE = outer


def _point_problems(study: Study, extra_kinds, entries) -> list[tuple[str, str]]:
    from .sweep import expand  # noqa: PLC0415 - sweep imports this module

    base = attrs.evolve(study, sweep=None)  # what with_values makes of each point, without the sweep's lists
    for point in expand(study):
        try:
            with_values(base, point.values, extra_kinds=extra_kinds)
        except StudyError as e:
            label = ", ".join(f"{k}={_yaml_value(v)}" for k, v in point.values.items())
            problems = []
            for p, m in e.problems:
                key = _dollar_key(p) if p.startswith("$") else None
                hit = next(((sp, where) for sk, sp, where in entries
                            if key is not None and key[:len(sk)] == sk), None)
                if hit is None:
                    problems.append((p, f"at sweep point {label}: {m}"))
                    continue
                swept, where = hit
                inside = "" if _dollar_key(p) == _path_key(swept) else f" ({p[2:]})"
                problems.append((where, f"the value {_yaml_value(point.values[swept])} (sweep point "
                                        f"{label}){inside}: {m}"))
            return problems
    return []


# ============================================================ paths and overrides
class _PathError(ValueError):
    pass


_TOKEN_RE = re.compile(r"[^.\[\]]+|\[\d+\]")


def _tokens(path: str) -> list[str | int]:
    if not isinstance(path, str) or not path or path.startswith(".") or path.endswith(".") or ".." in path:
        raise _PathError(f"{path!r} is not a dotted path such as train.lr or circuit.edges[2].delay_ms.")
    out: list[str | int] = []
    for t in _TOKEN_RE.findall(path):
        if t.startswith("["):
            out.append(int(t[1:-1]))
        elif t.isdigit():
            out.append(int(t))
        else:
            out.append(t)
    return out


def _field_schema(cls, name):
    tp = attrs.fields_dict(attrs.resolve_types(cls))[name].type
    return _schema_of(tp)


def _schema_of(tp):
    if tp == World:
        return ("world",)
    if tp == CircuitSpec:
        return ("circuit",)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _schema_of(inner[0])
        return ("leaf",)
    if _is_homogeneous_tuple(tp) and attrs.has(args[0]):
        return ("list", _schema_of(args[0]))
    if isinstance(tp, type) and attrs.has(tp) and tp is not Sweep:
        return ("attrs", tp)
    return ("leaf",)


def _children(schema, raw, kinds: Mapping[str, type] | None = None) -> tuple[str, dict]:
    """(description, {key: child schema}) of a schema node, given its raw value.

    ``kinds``: the component classes by kind (default: the built-in
    :data:`~neurodelay.components.COMPONENTS`; :func:`_set_path` adds a
    Python study's own).
    """
    kind = schema[0]
    if kind == "attrs":
        cls = schema[1]
        return cls.__name__, {f.name: _field_schema(cls, f.name) for f in attrs.fields(cls)}
    if kind == "world":
        k = _text(raw.get("kind", MovingCircle.kind)) if isinstance(raw, Mapping) else MovingCircle.kind
        cls = WORLDS.get(k, MovingCircle)
        return f"world ({cls.kind})", {"kind": ("leaf",), **{f.name: ("leaf",) for f in attrs.fields(cls)}}
    if kind == "circuit":
        if isinstance(raw, Mapping) and "preset" in raw:
            fn = PRESETS.get(_text(raw["preset"]))
            params = [p for p in inspect.signature(fn).parameters if p != "dt_ms"] if fn else []
            return f"the {raw['preset']!r} preset", {"preset": ("leaf",), **{p: ("leaf",) for p in params}}
        return "the graph circuit", {"nodes": ("nodes",), "edges": ("list", ("attrs", Edge))}
    if kind == "nodes":
        names = list(raw) if isinstance(raw, Mapping) else []
        return "the circuit's nodes", {n: ("component",) for n in names}
    if kind == "component":
        registry = COMPONENTS if kinds is None else kinds
        cls = registry.get(_text(raw.get("kind"))) if isinstance(raw, Mapping) else None
        fields = [f.name for f in attrs.fields(cls)] if cls is not None else []
        return f"a {cls.kind if cls else 'component'}", {"kind": ("leaf",), **{f: ("leaf",) for f in fields}}
    return "a value", {}


def _set_path(raw: dict, path: str, value, *, check_only: bool = False,
              extra_kinds: Mapping[str, type] | None = None) -> None:
    """Set ``path`` in a raw study dict, checking it against the schema.

    ``extra_kinds``: component kinds besides the built-in ones (a Python
    study's own), whose fields a path may reach.
    """
    tokens = _tokens(path)
    kinds = {**COMPONENTS, **(extra_kinds or {})}
    schema, node, done = ("attrs", Study), raw, []
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        shown = ".".join(str(t) for t in done) or "the study"
        if schema[0] == "list":
            if not isinstance(tok, int):
                raise _PathError(f"{shown} is a list: index it with a number, e.g. {shown}[0].")
            if not isinstance(node, list) or not 0 <= tok < len(node):
                n = len(node) if isinstance(node, list) else 0
                raise _PathError(f"{shown} has {n} entries; index {tok} does not exist"
                                 f"{f' (use 0..{n - 1})' if n else ''}.")
            child_schema = schema[1]
        else:
            if schema[0] == "leaf" and done == ["sweep"]:
                if isinstance(tok, int):
                    raise _PathError(
                        "the sweep is a mapping from dotted paths to lists of values, not a list, so it "
                        "cannot be indexed; set the whole section, e.g. --set 'sweep={train.lr: "
                        "[0.001, 0.0001]}' (or --set sweep=null to run the study once).")
                rest = ".".join(str(t) for t in tokens[i:])
                raise _PathError(
                    f"the sweep's keys are dotted paths themselves, so a path cannot reach into it; set "
                    f"the whole section, e.g. --set 'sweep={{{rest}: "
                    f"{_yaml_value(value) if isinstance(value, list) else '[...]'}}}' (or --set sweep=null "
                    f"to run the study once).")
            if schema[0] == "leaf":
                raise _PathError(f"{shown} is a value, not a section: it has no key {tok!r}.")
            what, kids = _children(schema, node if isinstance(node, Mapping) else {}, kinds)
            if tok not in kids:
                raise _PathError(f"{what} has no key {tok!r} (in {path!r}); {_suggest(tok, list(kids))}")
            child_schema = kids[tok]
        if last:
            if not check_only:
                node[tok] = _thaw(value)
            return
        nxt = node[tok] if isinstance(node, list) else (node.get(tok) if isinstance(node, Mapping) else None)
        if nxt is None:
            nxt = [] if child_schema[0] == "list" else {}
            if not check_only:
                node[tok] = nxt
        elif not isinstance(nxt, list if child_schema[0] == "list" else dict) and child_schema[0] != "leaf":
            here = ".".join(str(t) for t in done + [tok])
            raise _PathError(f"{here} is {_yaml_value(nxt)}, not a {'list' if child_schema[0] == 'list' else 'section'}, "
                             f"so it has no entry {tokens[i + 1]!r}; set the whole of {here} instead, e.g. "
                             f"--set '{here}={'[...]' if child_schema[0] == 'list' else '{...}'}'.")
        node, schema = nxt, child_schema
        done.append(tok)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key.path=value`` (the value read as YAML) into ``(path, value)``.

    Raises
    ------
    StudyError
        When there is no ``=`` or the value is not valid YAML.
    """
    if "=" not in text:
        raise StudyError("--set", [("", f"--set {_cut(text)}: expected key.path=value, e.g. --set train.steps=100.")])
    path, _, value_text = text.partition("=")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else None
    except yaml.YAMLError as e:
        raise StudyError("--set", [("", f"--set {_cut(text)}: the value is not valid YAML ({e}).")]) from None
    except (RecursionError, ValueError, TypeError) as e:  # too deep; an integer of too many digits; a list as a key
        raise StudyError("--set", [("", f"--set {_cut(text)}: the value cannot be read ({_unreadable(e)}).")]) from None
    problem = _bounds.raw_problem(value, "the value")
    if problem is not None:
        raise StudyError("--set", [("", f"--set {_cut(text)}: {problem}")])
    return path.strip(), value


def _cut(text: str, limit: int = 80) -> str:
    """``text`` quoted, cut to about ``limit`` characters (a --set may carry a whole file)."""
    return repr(text) if len(text) <= limit else f"{text[:limit - 20]!r}...({len(text)} characters)"


def apply_overrides(raw: dict, overrides, *, source: str = "--set",
                    extra_kinds: Mapping[str, type] | None = None) -> dict:
    """Apply ``(path, value)`` overrides to a raw study dict (a copy); paths are checked.

    ``extra_kinds``: component kinds besides the built-in ones (a Python
    study's own, as for :func:`structure_study`), so that a path can reach
    their fields (``circuit.nodes.smooth.rate``).

    Raises
    ------
    StudyError
        For a path that does not exist in the schema (with the closest valid key).
    """
    problems = []
    for path, value in overrides:
        problem = _bounds.raw_problem(value, "the value")
        if problem is not None:
            problems.append(("", f"{source} {path}: {problem}"))
    if problems:
        raise StudyError(source, problems)
    problem = _bounds.raw_problem(raw)
    if problem is not None:
        raise StudyError(source, [("$", problem)])
    raw = _thaw(raw)
    for path, value in overrides:
        try:
            _set_path(raw, path, value, extra_kinds=extra_kinds)
        except _PathError as e:
            problems.append(("", f"{source} {path}: {e}"))
    if problems:
        raise StudyError(source, problems)
    return raw


def _raw_sweep_entries(raw) -> list[tuple[str, str, Any]]:
    """``(path, location, values)`` of the swept paths of a raw study, as far as they can be read."""
    sweep = raw.get("sweep") if isinstance(raw, Mapping) else None
    if not isinstance(sweep, Mapping):
        return []
    out = []
    for key, values in sweep.items():
        if key != "zip":
            out.append((str(key), f"$.sweep[{str(key)!r}]", values))
            continue
        groups = values if isinstance(values, list) else [values]
        for gi, group in enumerate(groups):
            if isinstance(group, Mapping):
                where = f"$.sweep.zip[{gi}]" if isinstance(values, list) else "$.sweep.zip"
                out += [(str(p), f"{where}[{str(p)!r}]", v) for p, v in group.items()]
    return out


def _reaches(value, tokens) -> bool:
    """Whether the raw ``value`` has an entry at ``tokens`` (keys and list indices)."""
    for t in tokens:
        if isinstance(value, Mapping) and t in value:
            value = value[t]
        elif isinstance(value, list) and isinstance(t, int) and 0 <= t < len(value):
            value = value[t]
        else:
            return False
    return True


def _override_conflicts(raw, overrides) -> list[tuple[str, str]]:
    """Overrides (``--set``, ``--device``) of values that the study's sweep sets at every point.

    A sweep point is the study with the swept values set after the
    overrides, so an override of a swept path (or of a path inside a swept
    section, or a section whose value gives a swept path) would be checked
    but never run.

    Parameters
    ----------
    raw : dict
        The raw study, overrides applied.
    overrides : sequence of (label, path, value)
        ``label`` names the override in messages (``--set train.lr=0.1``).
    """
    entries = [(key, p, where, v) for p, where, v in _raw_sweep_entries(raw)
               if (key := _path_key(p)) is not None]
    problems = []
    for label, path, value in overrides:
        key = _path_key(path)
        if key is None or key[0] == "sweep":
            continue
        for skey, spath, where, values in entries:
            if not _overlap(key, skey):
                continue
            shown = ", ".join(map(_yaml_value, values)) if isinstance(values, list) else _yaml_value(values)
            if key == skey:
                why = f"every sweep point sets {spath} to its swept value ({shown}), replacing this one"
            elif len(key) > len(skey):
                why = (f"every sweep point replaces the whole {spath} section with its swept value, "
                       f"{path} included")
            elif _reaches(value, skey[len(key):]):
                why = (f"its value gives {spath}, which every sweep point sets to its swept value ({shown}), "
                       f"replacing the given one")
            else:
                continue
            problems.append((where, (
                f"{label} overrides a swept value: {why}. The override would be checked but never run; "
                f"drop it, or change the swept values instead (--set 'sweep={{...}}', or --set sweep=null "
                f"to run the study once with the override).")))
    return problems


def _follow_world_size(raw: dict, old_size, set_paths, extra_kinds: Mapping[str, type] | None = None) -> dict:
    """Let conv sizes equal to the old world size follow a new one (``raw`` is changed in place).

    A resolved study (a sweep's, a Python study's) gives every conv area
    its size explicitly, so ``_fill_sizes`` no longer tells a size the
    file gave from one taken from the world. When overrides change the
    world's size, the sizes equal to the old one are taken out (and filled
    again from the new world), unless an override sets them itself.

    ``extra_kinds``: a Python study's own component kinds (those that set
    ``size_is_image`` follow too).
    """
    new_size = _world_size(raw)
    circuit = raw.get("circuit")
    if new_size is None or old_size is None or new_size == old_size or not isinstance(circuit, dict):
        return raw
    given = [k for k in map(_path_key, set_paths) if k is not None]
    kinds = {**COMPONENTS, **(extra_kinds or {})}

    def free(*key) -> bool:
        return not any(key[:len(g)] == g for g in given)

    def same(v) -> bool:
        return type(v) is int and v == old_size

    if _text(circuit.get("preset")) in PRESETS:
        if same(circuit.get("size")) and free("circuit", "size"):
            del circuit["size"]
    elif isinstance(circuit.get("nodes"), dict):
        for name, spec in circuit["nodes"].items():
            cls = kinds.get(_text(spec.get("kind"))) if isinstance(spec, dict) else None
            if _image_sized(cls) and same(spec.get("size")) \
                    and free("circuit", "nodes", name, "size"):
                del spec["size"]
    return raw


def with_values(study: Study, values: Mapping[str, Any], *, extra_kinds=None, source: str = "<sweep point>",
                keep_sweep: bool = False) -> Study:
    """The study with dotted-path ``values`` set (a sweep point), checked.

    Conv sizes equal to the study's world size follow a ``world.size`` (or
    ``world``) that ``values`` change, as if the file had left them to the
    world.

    Parameters
    ----------
    study : Study
    values : dict of path -> value
    keep_sweep : bool
        Keep the ``sweep`` section (default: drop it; a point is a single run).
    """
    kinds = dict(_custom_kinds(study))
    kinds.update(extra_kinds or {})
    raw = unstructure_study(study)
    if not keep_sweep:
        raw["sweep"] = None
    raw = apply_overrides(raw, list(values.items()), source="sweep", extra_kinds=kinds)
    raw = _follow_world_size(raw, study.world.size, list(values), kinds)
    return structure_study(raw, source=source, extra_kinds=kinds)


# ============================================================ loading files
def _read_yaml(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError(str(path), [("", f"file not found: {path}")]) from None
    except IsADirectoryError:
        raise StudyError(str(path), [("", f"{path} is a folder, not a study file.")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise StudyError(str(path), [("", f"cannot read {path}: {e}")]) from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except (RecursionError, ValueError, TypeError) as e:  # too deep; an integer of too many digits; a list as a key
        raise StudyError(str(path), [("", f"cannot read {path}: {_unreadable(e)}.")]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        context = getattr(e, "context", None)
        detail = f"{context}: {problem}" if context else problem
        raise StudyError(str(path), [("", f"YAML syntax error{where}: {detail}.")]) from None
    problem = _bounds.raw_problem(raw, "the file")
    if problem is not None:
        raise StudyError(str(path), [("$", problem)])
    return raw


def _unreadable(exc: BaseException) -> str:
    """Why PyYAML could not build a value (it raised RecursionError, ValueError or TypeError, not a YAMLError)."""
    if isinstance(exc, RecursionError):
        return (f"it nests mappings and lists too deep for the YAML reader (a study needs about 6 levels; "
                f"at most {_bounds.MAX_DEPTH} are allowed)")
    if isinstance(exc, TypeError):
        return f"a mapping has a key that is a list or mapping ({exc}); keys are names"
    return f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; write the value out plainly"


class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping (YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    f"while reading a mapping (line {node.start_mark.line + 1})", seen[key],
                    f"key {key!r} is given twice (lines {seen[key].line + 1} and {key_node.start_mark.line + 1}); "
                    f"YAML would keep only the second: merge them into one", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def script_module_name(path) -> str:
    """The module name a Python study script is loaded under: ``neurodelay_study_<stem>_<hash>``.

    The hash (of the absolute path) keeps two scripts of the same file name
    in different folders apart, in this process and in the workers that
    load them (:mod:`neurodelay.executors`).
    """
    path = Path(path).resolve()
    digest = hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:8]
    return f"neurodelay_study_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"


def _load_python(path: Path) -> Study:
    if not path.is_file():
        raise StudyError(str(path), [("", f"file not found: {path}")])
    name = script_module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if callable(getattr(module, "study", None)):
        study = module.study()
    elif hasattr(module, "STUDY"):
        study = module.STUDY
    else:
        raise StudyError(str(path), [("", "a Python study defines study() returning a "
                                          "neurodelay.study.Study (or a STUDY variable); found neither.")])
    if not isinstance(study, Study):
        raise StudyError(str(path), [("", f"study() must return a neurodelay.study.Study, "
                                          f"got {type(study).__name__}.")])
    return study


def load_study(path, overrides=(), *, device: str | None = None) -> Study:
    """Load, override and check a study file.

    A YAML file is read with ``yaml.safe_load`` (no tags that build Python
    objects). A ``.py`` file is a Python study: it is executed and must
    define ``study()`` returning a :class:`Study` (or a ``STUDY`` variable);
    it can use any component, including its own.

    Parameters
    ----------
    path : str or Path
    overrides : sequence of str or (path, value)
        ``key.path=value`` texts (``--set``; values read as YAML) or pairs.
    device : str, optional
        Replaces the study's ``device``.

    Returns
    -------
    Study
        Structured and checked (points of a sweep included).

    Raises
    ------
    StudyError
        For a missing file, a YAML syntax error (with its line), any
        invalid value (with its path), or an override of a value the
        study's sweep sets at every point (located at the sweep's entry).
    """
    path = Path(path)
    labelled = []  # (label, path, value)
    for o in overrides:
        key, value = parse_override(o) if isinstance(o, str) else tuple(o)
        labelled.append((f"--set {o}" if isinstance(o, str) else f"the override {key}={_yaml_value(value)}",
                         key, value))
    if device is not None:
        labelled.append((f"--device {device}", "device", device))
    pairs = [(key, value) for _, key, value in labelled]
    if path.suffix == ".py":
        study = _load_python(path)
        kinds = _custom_kinds(study)
        if not pairs:
            check_study(study, source=str(path), extra_kinds=kinds)
            return study
        raw = apply_overrides(unstructure_study(study), pairs, extra_kinds=kinds)
        _refuse_conflicts(raw, labelled, path)
        raw = _follow_world_size(raw, study.world.size, [key for key, _ in pairs], kinds)
        return structure_study(raw, source=str(path), extra_kinds=kinds)
    raw = _read_yaml(path)
    if raw is None:
        raise StudyError(str(path), [("$", "the file is empty; a study needs at least name and circuit.")])
    if pairs:
        if not isinstance(raw, Mapping):
            raise StudyError(str(path), [("$", f"a study file is a mapping of sections, got {_show(raw)}.")])
        raw = apply_overrides(raw, pairs)
        _refuse_conflicts(raw, labelled, path)
    return structure_study(raw, source=str(path))


def _refuse_conflicts(raw, labelled, path) -> None:
    problems = _override_conflicts(raw, labelled)
    if problems:
        raise StudyError(str(path), problems)

