"""Python study scripts on workers: a study whose classes live in a script loaded by path travels with it.

A Python study may define its own components (see ``studies/custom_circuit.py``).
Their classes live in the study script, which :func:`neurodelay.study.load_study`
loads by path under a module name no other process can import. A job whose
study refers to such a module carries the script's path and digest with it,
and a worker loads the script by path under the same name before it unpickles
the study (:func:`load_script`); every engine runs such studies, provided the
script is at the same path on the worker's host.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import os
import pickle
import sys
import types
from pathlib import Path

from ..errors import ConfigError

__all__ = ["study_scripts", "load_script", "ScriptChangedError", "ExecutorUnavailable", "check_scripts_here",
           "check_main_rerunnable", "require_extra", "script_paths", "modules_of", "pickle_recording_globals",
           "script_records"]


class ExecutorUnavailable(ConfigError):
    """The executor named cannot run here (no Slurm, no Dask scheduler at the address)."""


def pickle_recording_globals(obj) -> tuple[bytes, list]:
    """``pickle.dumps(obj)`` and the classes and functions it refers to by name, in order."""
    found: list = []

    class Recorder(pickle.Pickler):
        def reducer_override(self, o):
            if isinstance(o, (type, types.FunctionType)) and o not in found:
                found.append(o)
            return NotImplemented

    buffer = io.BytesIO()
    Recorder(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue(), found


def modules_of(found) -> list[str]:
    out = []
    for o in found:
        name = getattr(o, "__module__", None)
        if name and name not in out:
            out.append(name)
    return out


def _importable_by_name(name: str) -> bool:
    """Whether a fresh process finds module ``name`` through the import system (not through sys.modules)."""
    if name in ("__main__", "__mp_main__"):
        return True  # each engine handles the main script itself (spawn reruns it; Dask, submitit: cloudpickle)
    top = name.partition(".")[0]
    if top in sys.builtin_module_names:
        return True
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            if find_spec(top, None) is not None:
                return True
        except Exception:  # noqa: BLE001 - a finder that cannot answer
            continue
    return False


def script_records(modules) -> tuple[tuple[str, str, str], ...]:
    """``(name, absolute path, SHA-256)`` of each module loaded by path that is not importable by name."""
    out = []
    for name in modules:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path and not _importable_by_name(name):
            path = os.path.abspath(path)
            out.append((name, path, _digest(path)))
    return tuple(out)


def _digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def study_scripts(study) -> tuple[tuple[str, str], ...]:
    """The Python study scripts a worker must load, by path, before it can unpickle ``study``.

    Parameters
    ----------
    study : Study

    Returns
    -------
    tuple of (str, str)
        ``(module name, absolute path)`` of each module that the study's
        classes or functions come from and that a new process cannot import
        by name (e.g. ``neurodelay_study_custom_circuit_<hash>``, loaded from
        ``studies/custom_circuit.py``); empty for a YAML study.
    """
    try:
        _, found = pickle_recording_globals(study)
    except Exception:  # noqa: BLE001 - not picklable by plain pickle: the engine's pickler decides
        return ()
    return tuple((name, path) for name, path, _ in script_records(modules_of(found)))


class ScriptChangedError(RuntimeError):
    """The study script on the worker is not the one the sweep was started with."""


def load_script(name: str, path: str, digest: str = "") -> types.ModuleType:
    """Load the Python study script at ``path`` as module ``name``, once per process and version.

    A module ``name`` already loaded from ``path`` (with the same contents,
    when ``digest`` is given) is reused; otherwise the script runs and
    replaces it (a long-lived Dask worker then runs the edited script of a
    later sweep, not the first one it saw).

    Parameters
    ----------
    name : str
        Module name (``neurodelay_study_<stem>_<hash>``, as given by
        :func:`neurodelay.study.load_study`).
    path : str
        Absolute path of the script.
    digest : str
        SHA-256 of the script as the sweep was started; empty: not checked.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist on this host.
    ScriptChangedError
        When the file at ``path`` differs from ``digest``.
    """
    module = sys.modules.get(name)
    same_file = module is not None and os.path.abspath(getattr(module, "__file__", "") or "") == path
    if same_file and getattr(module, "__neurodelay_script_digest__", digest) == digest:
        return module
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    if digest and _digest(path) != digest:
        raise ScriptChangedError(path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module.__neurodelay_script_digest__ = digest
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if previous is None:
            del sys.modules[name]
        else:
            sys.modules[name] = previous
        raise
    return module


def check_main_rerunnable(jobs, executor: str) -> None:
    """Refuse a study using classes of an interactive ``__main__``, which spawned workers cannot import.

    A spawned worker gets ``__main__``'s classes by running the main script
    again (``python script.py``, ``python -m module``); a notebook, ``python
    -c`` or standard input leaves no file to run, and the worker would die
    reading the job.
    """
    if not jobs:
        return
    try:
        _, found = pickle_recording_globals(jobs[0].study)
    except Exception:  # noqa: BLE001 - not picklable at all: the pool reports it per point
        return
    names = [o.__qualname__ for o in found if getattr(o, "__module__", None) == "__main__"]
    main = sys.modules["__main__"]
    if not names or getattr(getattr(main, "__spec__", None), "name", None) \
            or os.path.isfile(getattr(main, "__file__", None) or ""):
        return
    raise ExecutorUnavailable(
        f"--executor {executor}: the study uses {', '.join(names)} defined in this interactive session "
        f"(module __main__ of a notebook, python -c or standard input), which its worker processes cannot "
        f"import. Move them to a .py file and import them from there (or write the study as a Python study "
        f"script), or use dask:local:N, which sends them to its workers by value.")


def script_paths(jobs) -> list[str]:
    """Paths of the study scripts the jobs need (every job of a sweep has the same study)."""
    return sorted({path for job in jobs[:1] for _, path in study_scripts(job.study)})


def _missing_scripts(jobs) -> list[str]:
    """Study scripts the jobs need that do not exist on this host."""
    return [p for p in script_paths(jobs) if not os.path.isfile(p)]


def check_scripts_here(jobs, executor: str) -> None:
    missing = _missing_scripts(jobs)
    if missing:
        raise ExecutorUnavailable(
            f"--executor {executor}: the study script {', '.join(missing)} no longer exists; its workers load "
            f"it by path to get the study's own classes. Restore the file (or load the study again from where "
            f"it is now) and rerun.")


def require_extra(module: str, extra: str, executor: str) -> None:
    """Raise :class:`ExecutorUnavailable` if ``module``, which ``executor`` needs, is not installed."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ExecutorUnavailable(f"--executor {executor} needs the Python package {module}, which is not "
                                  f"installed here ({exc}); pip install 'neurodelay[{extra}]', or use "
                                  f"processes:N.") from None
