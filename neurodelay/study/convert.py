"""Study files to spec objects and back, with cattrs: strict scalars, tagged unions and located errors.

:func:`unstructure_study` and :func:`study_to_yaml` write a study out;
:class:`_StudyConverter` reads one in (``structure_study`` in
:mod:`neurodelay.study.checks` adds the checks of the whole study).
"""

from __future__ import annotations

import functools
import math
import re
import sys
import types
import typing
from collections.abc import Mapping
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

if sys.version_info < (3, 11):  # Python 3.10: cattrs raises the exceptiongroup backport's groups
    from exceptiongroup import BaseExceptionGroup

from .._util.validators import suggest
from ..circuit import Circuit, Edge
from ..components import COMPONENTS
from ..components.base import AbstractComponent
from ..presets import PRESETS
from .problems import (StudyError, _KindProblem, _Located, _message, _Problem, _show, _key_path,
                       _thaw, _freeze, _with_default_fix)
from .spec import (WORLDS, CircuitSpec, GraphCircuit, PresetCircuit, Study, Sweep, World, _preset_key_problems,
                   _preset_parameters)

__all__ = ["unstructure_study", "study_to_yaml", "structure_component", "unstructure_component"]

_NUMBER_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")


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
        class valid; failing that, at the error's ``field``
        (:class:`~neurodelay.errors.ConfigError`) when the file gives it;
        failing that, at the class.
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
            name = self._culprit(obj, cl, without[0])
            if name is None:
                return exc
            e = without[0]
            e.__notes__ = [AttributeValidationNote(f"@ {name}", name, attrs.fields_dict(cl)[name].type)]
            found.append(e)
        if not found:
            return exc
        return ClassValidationError(exc.message, found, cl)

    def _culprit(self, obj: Mapping, cl, exc: BaseException) -> str | None:
        """The one given field whose absence makes ``cl`` valid (else the error's ``field``, if given)."""
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
        field = getattr(exc, "field", None)
        return field if field in given else None

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
            raise _KindProblem(f"unknown {what} kind {kind!r}; "
                               f"{suggest(kind, registry, label='valid kinds', cutoff=0.6)}")
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
                                           f"{suggest(k, ['nodes', 'edges'])}"))
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



@functools.lru_cache(maxsize=16)
def _converter_for(kinds: tuple[tuple[str, type], ...]) -> _StudyConverter:
    return _StudyConverter(dict(kinds))


def _converter(extra_kinds: Mapping[str, type] | None = None) -> _StudyConverter:
    kinds = dict(COMPONENTS)
    kinds.update(extra_kinds or {})
    return _converter_for(tuple(kinds.items()))



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
    return [(path + _key_path(k), f"unknown key {k!r} in {what}; {suggest(k, valid)}")
            for k in sorted(exc.extra_fields, key=str)]



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

