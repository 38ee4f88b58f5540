"""Dotted paths into a study (``train.lr``, ``circuit.edges[2].delay_ms``): ``--set`` overrides and sweeps.

A path is checked against the schema as it is walked (:func:`_set_path`), so
an unknown key gets the closest valid one; an override of a value the
study's sweep sets at every point is refused (:func:`_override_conflicts`).
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

import attrs
import yaml

from .._util import bounds as _bounds
from .._util.validators import suggest
from ..circuit import Edge
from ..components import COMPONENTS
from ..presets import PRESETS
from .convert import _is_homogeneous_tuple
from .problems import StudyError, _text, _thaw, _yaml_value
from .spec import WORLDS, CircuitSpec, Study, Sweep, World
from ..worlds import MovingCircle

__all__ = ["parse_override", "apply_overrides"]


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
                raise _PathError(f"{what} has no key {tok!r} (in {path!r}); {suggest(tok, list(kids))}")
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
            what = "list" if child_schema[0] == "list" else "section"
            raise _PathError(f"{here} is {_yaml_value(nxt)}, not a {what}, "
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


def _unreadable(exc: BaseException) -> str:
    """Why PyYAML could not build a value (it raised RecursionError, ValueError or TypeError, not a YAMLError)."""
    if isinstance(exc, RecursionError):
        return (f"it nests mappings and lists too deep for the YAML reader (a study needs about 6 levels; "
                f"at most {_bounds.MAX_DEPTH} are allowed)")
    if isinstance(exc, TypeError):
        return f"a mapping has a key that is a list or mapping ({exc}); keys are names"
    return f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; write the value out plainly"
