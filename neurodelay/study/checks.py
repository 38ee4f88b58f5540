"""A study checked as a whole: its circuit builds, its objective fits, its values keep their bounds, and
every point of its sweep is a valid study. Problems are located at the key of the file that causes them.

:func:`structure_study` reads and checks a raw study; :func:`check_study`
checks a structured one; :func:`with_values` (a sweep point, an override)
sets dotted paths and checks the result.
"""

from __future__ import annotations

import inspect
import math
import re
import weakref
from collections.abc import Mapping
from typing import Any

import attrs
import torch

from .._util import bounds as _bounds
from .._util.validators import is_real, suggest
from ..circuit import Circuit, world_shapes
from ..errors import ConfigError, TimeGridError
from ..presets import PRESETS
from .. import registry
from ..simulation import build_seeded
from ..training.objectives import check_objective
from .convert import _EMPTY_SWEEP, _converter, _custom_kinds, _flatten, unstructure_study
from .paths import _PathError, _dollar_key, _overlap, _path_key, _set_path, apply_overrides
from .points import Point, expand
from .problems import _FIX_RE, StudyError, _key_path, _message, _show, _yaml_value
from .sizes import _at_world_size, _fill_sizes, _follow_world_size
from .spec import GraphCircuit, PresetCircuit, Study, Sweep, _preset_key_problems, local_dask, parse_executor

__all__ = ["structure_study", "check_study", "with_values", "point_study"]


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
        _mark_checked(study)
    return study


# ============================================================ checked once
#: The studies checked as a whole in this process, by id (each entry holds a weak reference to its study,
#: so that an id reused by a later object does not count as checked). A Study is frozen: one checked stays
#: valid, and any change (attrs.evolve, a --device) makes a new object that is checked afresh.
_CHECKED: dict[int, weakref.ref] = {}

#: The single-run studies of sweep points made by :func:`with_values`, by (id of the study they came from,
#: values, extra kinds): a point is structured and checked once (when its sweep is loaded) and reused by
#: the staleness check and the point's run. Weakly keyed like ``_CHECKED``.
_POINTS: dict[int, tuple[weakref.ref, dict]] = {}


def _forget(table: dict, key: int, ref: weakref.ref) -> None:
    if key in table and (table[key] is ref or (isinstance(table[key], tuple) and table[key][0] is ref)):
        del table[key]


def _mark_checked(study: Study) -> None:
    key = id(study)
    _CHECKED[key] = weakref.ref(study, lambda ref, key=key: _forget(_CHECKED, key, ref))


def is_checked(study: Study) -> bool:
    """Whether this very ``study`` object has been checked as a whole (:func:`structure_study`, :func:`check_study`)."""
    ref = _CHECKED.get(id(study))
    return ref is not None and ref() is study


def _known_point(study: Study, key) -> Study | None:
    entry = _POINTS.get(id(study))
    if entry is None or entry[0]() is not study:
        return None
    return entry[1].get(key)


def _remember_point(study: Study, key, point: Study) -> None:
    entry = _POINTS.get(id(study))
    if entry is None or entry[0]() is not study:
        sid = id(study)
        entry = _POINTS[sid] = (weakref.ref(study, lambda ref, sid=sid: _forget(_POINTS, sid, ref)), {})
    entry[1][key] = point



def _circuit_path(exc: BaseException) -> str:
    """The graph circuit's key a circuit error is about (``$.circuit.edges[2].target``...).

    Read from the error's data (:class:`~neurodelay.errors.ConfigError`'s
    ``edge``, ``field`` and ``node``), not from its message.
    """
    edge, field, node = (getattr(exc, key, None) for key in ("edge", "field", "node"))
    if edge is not None:
        return f"$.circuit.edges[{edge}]" + (f".{field}" if field else "")
    if node is not None:
        return f"$.circuit.nodes{_key_path(node)}"
    return "$.circuit"


def _objective_path(exc: BaseException) -> str:
    """The objective's key an error of :func:`check_objective` is about: its ``field``, else the objective."""
    field = getattr(exc, "field", None)
    if isinstance(field, str) and (field == "objective" or field.startswith(("objective.", "objective["))):
        return "$." + field
    return "$.objective"


def _delay_of(exc: BaseException) -> float | None:
    """The delay in ms (finite, >= 0) that an edge's ``delay_ms`` error is about, from its ``value``; else None."""
    value = getattr(exc, "value", None)
    if getattr(exc, "field", None) == "delay_ms" and is_real(value) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _preset_problem(study: Study, exc: BaseException, fails) -> tuple[str, str]:
    """Locate an error of a preset circuit at the parameter (or study key) that causes it.

    The preset's edges and nodes are not in the file, so an error about them
    belongs to a parameter: the one given parameter that, left out (the
    preset's default; ``size``: the world's), makes ``fails`` pass; else the
    one that is the error's ``field``; else one whose value is the delay the
    error is about (its ``value``); else ``dt_ms`` for a delay off the time
    grid; else the circuit.
    """
    message = _message(exc)
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
    if key is None and getattr(exc, "field", None) in params:
        key = exc.field
    delay = _delay_of(exc)
    if key is None and delay is not None:
        key = next((k for k, v in params.items() if k.endswith("delay_ms") and is_real(v)
                    and float(v) == delay), None)
    message = re.sub(r" \(or set fractional: true[^)]*\)", "", message)  # not a preset parameter
    if key is None:
        if delay is not None and isinstance(exc, TimeGridError):  # a delay that dt_ms puts off the grid
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
    if is_checked(study):  # checked already (at load, or as a sweep point): a Study does not change
        return
    problems = _check_study(study, extra_kinds, {}, True)
    if problems:
        raise StudyError(source, problems)
    _mark_checked(study)


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
        registered = registry.available()
        for i, name in enumerate(study.analyses):
            if name not in registered:
                hint = suggest(name, list(registered)) if registered else "none is registered."
                problems.append((f"$.analyses[{i}]", f"unknown analysis {name!r}; {hint}"))
    return problems


#: While a sweep's points are checked: the circuits built so far, by (circuit, world shapes, dt), since
#: most sweeps vary settings that leave the circuit as it is (seeds, learning rates).
_BUILD_CACHE: dict | None = None


def _build_checked(study: Study):
    """(circuit spec, built module, []) of a study, or (None, None, problems) when it does not build."""
    dt = float(study.dt_ms)
    preset = isinstance(study.circuit, PresetCircuit)
    try:
        circuit = study.build_circuit()
    except (ConfigError, ValueError, TypeError) as exc:
        if preset:
            return None, None, [_preset_problem(study, exc, lambda pc: pc.build(dt))]
        return None, None, [(_circuit_path(exc), _message(exc))]
    problems = _memory_bounds(study, circuit, None)
    if problems:  # the parameters alone would not fit: do not build them
        return None, None, problems
    shapes = world_shapes(study.world)
    module = _build_structure(circuit, shapes)
    if module is not None:
        return circuit, module, []
    try:  # built for real where it does not build on the meta device: the same errors as a training build
        module = build_seeded(circuit, input_shapes=shapes, seed=0)
    except (ConfigError, ValueError, TypeError) as exc:
        if preset:
            return None, None, [_preset_problem(
                study, exc, lambda pc: build_seeded(pc.build(dt), input_shapes=shapes, seed=0))]
        return None, None, [(_circuit_path(exc), _message(exc))]
    return circuit, module, []


def _build_structure(circuit: Circuit, shapes):
    """``circuit`` built on torch's meta device, or None where that fails.

    What the checks read of a built module (its plan, ports, first valid
    steps, parameter shapes and dtypes) is there; no value is, so nothing is
    initialised, no random number is drawn and no memory is taken. The only
    real build of a point is then the one that trains it. A component that
    reads values while it is built, or any error, gives None: the check then
    builds the circuit for real, to report the error a training build would
    raise, word for word.
    """
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            return circuit.build(None, input_shapes=shapes)
    except Exception:  # noqa: BLE001 -- any failure here is retried, and reported, by a real build
        return None


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
        path = _objective_path(exc)
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
    global _BUILD_CACHE

    entries = [(_path_key(p), p, where) for p, where, _ in _sweep_entries(study.sweep)]
    outer, _BUILD_CACHE = _BUILD_CACHE, ({} if _BUILD_CACHE is None else _BUILD_CACHE)
    try:
        return _point_problems(study, extra_kinds, entries)
    finally:
        _BUILD_CACHE = outer


def _point_problems(study: Study, extra_kinds, entries) -> list[tuple[str, str]]:
    for point in expand(study):
        try:  # the point studies made here are the ones its runs use (with_values keeps them)
            with_values(study, point.values, extra_kinds=extra_kinds)
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
    key = None
    if not keep_sweep and study.sweep is not None:  # a sweep point: made and checked once (see _POINTS)
        key = (repr(list(values.items())), tuple(sorted((k, id(v)) for k, v in kinds.items())))
        known = _known_point(study, key)
        if known is not None:
            return known
    raw = unstructure_study(study)
    if not keep_sweep:
        raw["sweep"] = None
    raw = apply_overrides(raw, list(values.items()), source="sweep", extra_kinds=kinds)
    raw = _follow_world_size(raw, study.world.size, list(values), kinds)
    point = structure_study(raw, source=source, extra_kinds=kinds)
    if key is not None:
        _remember_point(study, key, point)
    return point



def point_study(study: Study, point: Point) -> Study:
    """The single-run study of one sweep point (the sweep section dropped)."""
    return with_values(study, point.values, source=f"sweep point {point.name}")

