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
    executor                       ExecutorSettings: where a sweep's points run

Errors are collected and reported together, each with its path in the file
(``$.circuit.edges[2].delay_ms``) and the validator's own explanation; an
unknown key gets the closest valid one, an unknown ``kind`` the list of valid
kinds. See ``docs/study-schema.md`` for the whole schema.

Conventions applied while loading (documented in the schema):

* ``dt_ms`` of the study is the circuit's time step;
* conv areas (any component with a ``size`` field) and presets that take a
  ``size`` get the world's image size unless the file gives one.

Modules, each importing only those above it::

    problems   StudyError; the text of messages
    spec       the schema: Study and every *Settings (a leaf)
    convert    cattrs: raw mappings to specs and back (study_to_yaml)
    paths      dotted paths: --set overrides, sweep paths
    sizes      image sizes left to the world
    points     a sweep's points (expand)
    checks     the study as a whole (structure_study, check_study, with_values)
    load       files and scripts (load_study)
"""

from .checks import check_study, point_study, structure_study, with_values
from .convert import structure_component, study_to_yaml, unstructure_component, unstructure_study
from .load import load_study, script_module_name
from .paths import apply_overrides, parse_override
from .points import Point, SweepDim, expand, sweep_dims
from .problems import StudyError
from .spec import (EVAL_SEED, WORLDS, EvaluateSettings, ExecutorSettings, GraphCircuit, PresetCircuit, Study,
                   Sweep, TrainSettings, local_dask, parse_executor)

__all__ = [
    "Study", "EvaluateSettings", "TrainSettings", "ExecutorSettings", "PresetCircuit", "GraphCircuit", "Sweep",
    "StudyError", "WORLDS", "EVAL_SEED", "load_study", "structure_study", "unstructure_study", "study_to_yaml",
    "check_study", "parse_override", "apply_overrides", "with_values", "structure_component",
    "unstructure_component", "script_module_name", "parse_executor", "local_dask", "Point", "SweepDim",
    "expand", "sweep_dims", "point_study",
]
