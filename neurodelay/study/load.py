"""Loading a study file: YAML (read safely, a key given twice refused) or a Python script; ``--set`` overrides.

:func:`load_study` is the one entry point: it reads, overrides and checks
the study once, and returns it checked.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from .._util import bounds as _bounds
from .checks import check_study, structure_study
from .convert import _custom_kinds, unstructure_study
from .paths import _override_conflicts, _unreadable, apply_overrides, parse_override
from .problems import StudyError, _show, _yaml_value
from .sizes import _follow_world_size
from .spec import Study

__all__ = ["load_study", "script_module_name"]


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

