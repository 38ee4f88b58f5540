"""The study's schema: frozen attrs classes holding plain values, one per section of a study file.

A leaf of the study layer: every ``*Settings`` class is here (``train:``,
``evaluate:``, ``executor:``), with :class:`Study` itself; converting,
checking and loading live beside it. See ``docs/study-schema.md``.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from typing import Any, Union

import attrs

from .._util import bounds as _bounds
from .._util.validators import finite_at_least, int_at_least, one_of, suggest
from ..circuit import Circuit, Edge
from ..components.base import AbstractComponent
from ..errors import ConfigError
from ..presets import PRESETS
from ..training.objectives import Objective
from ..training.warmstart import check_init_from
from ..worlds import CircleOverBlob, MovingCircle
from .problems import _freeze, _key_path

__all__ = ["Study", "EvaluateSettings", "TrainSettings", "ExecutorSettings", "PresetCircuit", "GraphCircuit",
           "Sweep", "WORLDS", "EVAL_SEED", "World", "CircuitSpec", "parse_executor", "local_dask"]

#: World classes by their study-file ``kind``.
WORLDS: dict[str, type] = {cls.kind: cls for cls in (CircleOverBlob, MovingCircle)}

#: Default seed of the evaluation set: fixed, and distinct from training seeds.
EVAL_SEED = 1_000_003

_DEVICE_RE = re.compile(r"(cpu|cuda(:[0-9]{1,9})?)\Z")


def _check_name(inst, attr, value):
    problem = _bounds.name_problem(value)
    if problem is not None:
        raise ValueError(problem)


_check_seed = int_at_least(0, fix="use e.g. {name}: 0")
_positive_int = int_at_least(1)
_optional_non_negative_int = int_at_least(0, optional=True)
_positive = finite_at_least(0, above=True, optional=True)


def _check_dt(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"dt_ms must be a positive number of ms, got {value!r}; use e.g. dt_ms: 10 "
                         f"(one frame per step).")


def _check_device(inst, attr, value):
    if not isinstance(value, str) or not _DEVICE_RE.match(value):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {value!r}.")


def _init_from(inst, attr, value):
    if value is not None:
        check_init_from(value)



# ============================================================ train:
@attrs.frozen
class TrainSettings:
    """How to train.

    Parameters
    ----------
    steps : int
        Optimiser steps (0: no training, only simulate and analyse).
    batch_size : int
        Sequences per step.
    optimizer : {"rmsprop", "adam"}
        PyTorch's RMSprop or Adam with their default settings except ``lr``.
    lr : float
        Learning rate.
    delay_lr : float or None
        Learning rate of the circuit's parameters measured in steps: learned
        delays (edges with ``learn_delay``) and learned extrapolation
        horizons (extrapolators with ``learn_alpha``); None: ``lr``. With
        Adam a parameter moves by about its learning rate per step, so a
        delay learned alongside weights at ``lr`` 1e-3 moves about one step
        of delay in 1000 updates; ``delay_lr`` 0.01 to 0.05 lets it move in
        tens to hundreds.
    grad_clip : float or None
        Clip the gradient norm (2-norm over all parameters) to this value.
    log_every : int
        Record the loss history every N steps (and at the first and last step).
    checkpoint_every : int
        Write a checkpoint every N steps (and at the end).
    precision : {"float32", "bfloat16"}
        ``bfloat16`` runs the circuit's forward pass under bf16 autocast
        (parameters, gradients, losses and the optimiser stay float32);
        faster on GPUs with bf16 units, about 3 significant digits per value.
        Where the device has no bf16 units (:func:`neurodelay._util.perf.bf16_native`)
        bf16 is emulated and slower than float32, and :func:`train` warns.
    init_from : str or None
        Start from another run's weights: a checkpoint whose parameters of
        matching names and shapes initialise the circuit before training
        (a warm start; the others keep their seeded initialisation). It may
        hold ``{out}`` (the output root, ``--out``) and ``{seed}`` (the
        study's seed), e.g. ``"{out}/pretrain_ae/seed={seed}/checkpoint.pt"``,
        or be ``"package:NAME"`` for a file shipped in
        ``neurodelay/pretrained``; see :mod:`neurodelay.warmstart`. With
        ``steps: 0`` the run evaluates the warm-started circuit as it is.
    """

    steps: int = attrs.field(default=1000, validator=int_at_least(0, fix="0 only simulates"))
    batch_size: int = attrs.field(default=64, validator=_positive_int)
    optimizer: str = attrs.field(default="rmsprop", validator=one_of("rmsprop", "adam"))
    lr: float = attrs.field(default=1e-4, validator=_positive)
    delay_lr: float | None = attrs.field(default=None, validator=_positive, kw_only=True)
    grad_clip: float | None = attrs.field(default=None, validator=_positive)
    log_every: int = attrs.field(default=10, validator=_positive_int)
    checkpoint_every: int = attrs.field(default=500, validator=_positive_int)
    precision: str = attrs.field(default="float32", validator=one_of("float32", "bfloat16"))
    init_from: str | None = attrs.field(default=None, kw_only=True, validator=_init_from)



# ============================================================ executor:
@attrs.frozen
class ExecutorSettings:
    """The study's ``executor:`` block.

    Parameters
    ----------
    name : str
        ``local``, ``processes:N``, ``dask:ADDRESS``, ``dask:local:N``,
        ``slurm`` or ``slurm:local``.
    partition : str or None
        Slurm partition.
    time_min : int
        Slurm time limit per point, in minutes.
    gpus_per_point : int
        GPUs per Slurm job.
    cpus_per_point : int
        CPU cores per Slurm job.
    array_parallelism : int
        Most Slurm jobs of the array running at once.
    mem_gb : int or None
        Memory per Slurm job in GB.
    """

    name: str = "local"
    partition: str | None = None
    time_min: int = attrs.field(default=60, validator=_optional_non_negative_int)
    gpus_per_point: int = attrs.field(default=0, validator=_optional_non_negative_int)
    cpus_per_point: int = attrs.field(default=2, validator=_optional_non_negative_int)
    array_parallelism: int = attrs.field(default=32, validator=_optional_non_negative_int)
    mem_gb: int | None = attrs.field(default=None, validator=_optional_non_negative_int)

    def __attrs_post_init__(self):
        parse_executor(self.name)




def parse_executor(name: str) -> tuple[str, str]:
    """Split an executor name into (kind, argument), checking it.

    Raises
    ------
    ConfigError
        For an unknown executor or a bad argument.
    """
    text = str(name).strip()
    kind, _, arg = text.partition(":")
    valid = "local, processes:N, dask:ADDRESS, dask:local:N, slurm or slurm:local"
    if kind == "local" and not arg:
        return kind, ""
    if kind == "processes":
        if not _worker_count(arg):
            raise ConfigError(f"executor {text!r}: processes needs a worker count >= 1 (at "
                              f"most {_bounds.MAX_WORKERS}), e.g. processes:2.", field="name")
        return kind, arg
    if kind == "dask":
        if not arg:
            raise ConfigError(f"executor {text!r}: give a scheduler address (dask:tcp://host:8786) "
                              f"or dask:local:N for a local cluster of N workers.", field="name")
        if local_dask(arg):
            n = arg.partition(":")[2]
            if not _worker_count(n):
                raise ConfigError(f"executor {text!r}: dask:local needs a worker count >= 1 (at "
                                  f"most {_bounds.MAX_WORKERS}), e.g. dask:local:2.", field="name")
        return kind, arg
    if kind == "slurm" and arg in ("", "local"):
        return kind, arg
    raise ConfigError(f"executor {text!r} is not known; valid: {valid}.", field="name")


def local_dask(address: str) -> bool:
    """Whether a ``dask:`` address names a local cluster (``local:N``), not a scheduler (``localhost:8786``)."""
    return address == "local" or address.startswith("local:")


def _worker_count(text: str) -> bool:
    """Whether ``text`` is a worker count within bounds (ASCII digits, 1 to ``MAX_WORKERS``)."""
    return text.isascii() and text.isdigit() and len(text) <= 6 and 1 <= int(text) <= _bounds.MAX_WORKERS



# ============================================================ the study
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
        return [(".preset", f"unknown preset {name!r}; {suggest(name, PRESETS, label='valid presets', cutoff=0.6)}")]
    valid = _preset_parameters(name)
    problems = []
    for key in keys:
        if key == "dt_ms":
            problems.append((".dt_ms", "dt_ms is the study's: set it at the top of the file "
                                       "(dt_ms: 10), not in the circuit."))
        elif key not in valid:
            problems.append((_key_path(key), f"unknown parameter {key!r} of preset {name!r}; "
                                             f"{suggest(key, valid)}"))
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

