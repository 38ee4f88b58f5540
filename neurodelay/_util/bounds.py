"""The bounds on every value a study may hold, and the checks that keep them.

One rule, enforced here and nowhere else: a study that loads (and so
passes ``--dry-run``) cannot fail later for a reason its file shows. Every
value is bounded when the study is loaded, to what the run can represent,
hold in memory and write:

=====================  ==========================================================
what                   bound
=====================  ==========================================================
``seed``,              an integer in [0, 2**64): numpy's ``SeedSequence`` takes
``evaluate.seed``      it, netCDF stores it as an unsigned 64-bit integer
every other integer    at most 2**63 - 1 in size: torch, numpy and netCDF store
                       them as 64-bit integers
``name``               letters, digits, ``_ . + -``, starting with a letter or
                       digit, at most ``MAX_NAME_LENGTH`` characters (it names a
                       folder; no line break, no path)
``dt_ms``              in [``DT_MS_MIN``, ``DT_MS_MAX``]: times (step x dt) stay
                       finite numbers that figures can draw
``world.n_frames``     at most ``MAX_STEPS_IN_TIME``
``world.size``         at most ``MAX_IMAGE_SIZE`` pixels
every delay            at most ``MAX_STEPS_IN_TIME`` steps (delay_ms / dt_ms):
                       ``delay_ms``, ``min_delay_ms``, ``max_delay_ms`` and a
                       preset's ``*_delay_ms``
the file itself        nested at most ``MAX_DEPTH`` levels, at most
                       ``MAX_VALUES`` values (an alias counts each time it is
                       used), and no value that contains itself
memory                 a study whose parameters, training batch or evaluation
                       set plainly need more memory than the machine has is
                       refused, with the estimate (:func:`memory_problems`)
a sweep                at most ``MAX_SWEEP_POINTS`` points; from
                       ``LARGE_SWEEP`` points on, loading it says so first
                       (:class:`LargeSweepWarning`)
``processes:N``,       N at most ``MAX_WORKERS``
``dask:local:N``
=====================  ==========================================================

Each check returns problems as ``(path, message)`` pairs (paths like
``$.train.steps``); :mod:`neurodelay.study` reports them with the others.
This module imports nothing else of neurodelay, so any layer may use it.
"""

from __future__ import annotations

import functools
import math
import os
import re
import warnings
from collections.abc import Mapping

__all__ = [
    "SEED_LIMIT", "INT_MAX", "MAX_NAME_LENGTH", "DT_MS_MIN", "DT_MS_MAX", "MAX_STEPS_IN_TIME", "MAX_IMAGE_SIZE",
    "MAX_DEPTH", "MAX_VALUES", "MAX_SWEEP_POINTS", "LARGE_SWEEP", "MAX_WORKERS", "NAME_RE",
    "LargeSweepWarning", "name_problem", "raw_problem", "integer_problems", "time_problems",
    "delay_problems", "sweep_size_problem", "memory_problems", "parameter_bytes", "machine_memory",
]

#: Seeds are integers in [0, SEED_LIMIT).
SEED_LIMIT = 2**64
#: Every other integer is at most this in size (int64).
INT_MAX = 2**63 - 1
#: The longest study name (it names the output folder).
MAX_NAME_LENGTH = 100
#: The range of the simulation step, in ms.
DT_MS_MIN = 1e-6
DT_MS_MAX = 1e6
#: The most frames per sequence, and the longest delay, in steps.
MAX_STEPS_IN_TIME = 100_000
#: The largest world image, in pixels.
MAX_IMAGE_SIZE = 4096
#: How deep a study file (or a --set value) may nest mappings and lists; a study needs about 6.
MAX_DEPTH = 32
#: How many values a study file (or a --set value) may hold, aliases counted at each use.
MAX_VALUES = 1_000_000
#: The most points of a sweep, and the number from which loading a sweep says how many it checks.
MAX_SWEEP_POINTS = 100_000
LARGE_SWEEP = 1_000
#: The most worker processes of ``processes:N`` and ``dask:local:N``.
MAX_WORKERS = 256

#: A study name: a letter or digit, then letters, digits and ``_ . + -`` (``\Z``: no final line break).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")

#: Integer paths that are seeds (the others are bounded by ``INT_MAX``).
_SEED_PATHS = {("seed",), ("evaluate", "seed")}

_BYTES = 4  # float32


class LargeSweepWarning(UserWarning):
    """A sweep of ``LARGE_SWEEP`` points or more is being checked (every point is a run of its own)."""


def name_problem(value) -> str | None:
    """Why ``value`` cannot be a study name (None if it can)."""
    if isinstance(value, str) and len(value) > MAX_NAME_LENGTH:
        return (f"name must be at most {MAX_NAME_LENGTH} characters (it names the output folder), got one of "
                f"{len(value)} ({value[:20]!r}...); use a shorter name.")
    if not isinstance(value, str) or not NAME_RE.match(value):
        return (f"name must be a non-empty name of letters, digits and _ . + - (it names the output "
                f"folder), got {value!r}; use e.g. name: my-study.")
    return None


def _children(value):
    if isinstance(value, Mapping):
        return list(value.keys()) + list(value.values())
    return list(value)


def _container(value) -> bool:
    return isinstance(value, (Mapping, list, tuple))


def raw_problem(value, what: str = "the study") -> str | None:
    """Why a parsed study file (or ``--set`` value) is out of bounds: too deep, too big, or self-containing.

    Walks ``value`` without recursion, each shared part once (a YAML alias
    used many times is counted at each use, as it would be expanded, but
    visited once), so that a hostile file is refused quickly whatever its
    shape. Returns None when it is within bounds.
    """
    if not _container(value):
        return None
    size: dict[int, tuple[int, int]] = {}  # id -> (depth, values), for finished containers
    open_ = set()  # ids on the current path
    stack = [(value, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            depth, count = 1, 1
            for child in _children(node):
                if _container(child):
                    d, c = size[id(child)]
                    depth, count = max(depth, d + 1), count + c
                else:
                    count += 1
            if depth > MAX_DEPTH:
                return (f"{what} nests mappings and lists more than {MAX_DEPTH} levels deep (a study needs "
                        f"about 6); flatten it.")
            if count > MAX_VALUES:
                return (f"{what} holds more than {MAX_VALUES:,} values (YAML aliases counted at each use); "
                        f"a study needs a few hundred: remove the repetition.")
            size[key] = (depth, count)
            continue
        if key in size:
            continue
        open_.add(key)
        stack.append((node, True))
        for child in _children(node):
            if _container(child) and id(child) not in size:
                if id(child) in open_:
                    return (f"{what} holds a value that contains itself (a YAML alias used inside its own "
                            f"anchor, such as &a [*a]); write the value out.")
                stack.append((child, False))
    return None


def _path_text(path: tuple) -> str:
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if re.fullmatch(r"[A-Za-z_]\w*", str(p))
                                                     else f"[{str(p)!r}]")
    return out


def integer_problems(raw: Mapping) -> list[tuple[str, str]]:
    """Integers of a study (its plain, unstructured form) beyond what a run stores (``sweep`` left out).

    Seeds must lie in [0, ``SEED_LIMIT``); every other integer within
    ``INT_MAX`` of zero.
    """
    problems = []
    stack = [((k,), v) for k, v in raw.items() if k != "sweep"]
    while stack:
        path, value = stack.pop()
        if isinstance(value, Mapping):
            stack += [(path + (k,), v) for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            stack += [(path + (i,), v) for i, v in enumerate(value)]
        elif isinstance(value, int) and not isinstance(value, bool):
            if path in _SEED_PATHS:
                if not 0 <= value < SEED_LIMIT:
                    problems.append((_path_text(path), (
                        f"a seed must be an integer in [0, 2**64) (numpy's SeedSequence takes it and results.nc "
                        f"stores it as an unsigned 64-bit integer), got {_big(value)}; use e.g. "
                        f"{path[-1]}: 0.")))
            elif abs(value) > INT_MAX:
                problems.append((_path_text(path), (
                    f"{path[-1]} must be at most 2**63 - 1 in size (runs store integers as 64-bit numbers), got "
                    f"{_big(value)}; use a smaller number.")))
    return sorted(problems)


def _big(value: int) -> str:
    text = str(value)
    return text if len(text) <= 30 else f"{text[:12]}...{text[-6:]} ({len(text)} digits)"


def time_problems(dt_ms, n_frames: int | None, size: int | None) -> list[tuple[str, str]]:
    """The time step, sequence length and image size, against their bounds."""
    problems = []
    if not DT_MS_MIN <= dt_ms <= DT_MS_MAX:
        problems.append(("$.dt_ms", (
            f"dt_ms must be in [{DT_MS_MIN:g}, {DT_MS_MAX:g}] ms, so that the times of a run (step x dt_ms) and "
            f"its delays in steps stay numbers it can store and draw, got {dt_ms!r}; use e.g. dt_ms: 10 "
            f"(one frame per step).")))
    if n_frames is not None and n_frames > MAX_STEPS_IN_TIME:
        problems.append(("$.world.n_frames", (
            f"world.n_frames must be at most {MAX_STEPS_IN_TIME:,} frames per sequence, got {_big(n_frames)}; "
            f"use fewer frames (the original used 10).")))
    if size is not None and size > MAX_IMAGE_SIZE:
        problems.append(("$.world.size", (
            f"world.size must be at most {MAX_IMAGE_SIZE} pixels, got {_big(size)}; use e.g. 32 or 64.")))
    return problems


def delay_problems(delays, dt_ms: float) -> list[tuple[str, str]]:
    """Delays longer than ``MAX_STEPS_IN_TIME`` steps.

    Parameters
    ----------
    delays : iterable of (path, value in ms)
        Each delay (a number or a list of numbers) with the path it is
        written at.
    dt_ms : float
        The study's step (already within bounds).
    """
    problems = []
    limit = MAX_STEPS_IN_TIME * dt_ms
    for path, value in delays:
        values = value if isinstance(value, (list, tuple)) else [value]
        worst = max((v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)),
                    key=abs, default=None)
        if worst is not None and math.isfinite(worst) and abs(worst) > limit:
            problems.append((path, (
                f"a delay must be at most {MAX_STEPS_IN_TIME:,} steps ({limit:g} ms at dt_ms {dt_ms:g}), got "
                f"{worst:g} ms = {worst / dt_ms:.4g} steps; use a shorter delay (a delay longer than a "
                f"sequence never delivers anything).")))
    return problems


def sweep_size_problem(n_points: int) -> str | None:
    """Refuse a sweep of more than ``MAX_SWEEP_POINTS`` points; warn from ``LARGE_SWEEP`` on."""
    if n_points > MAX_SWEEP_POINTS:
        return (f"the sweep has {n_points:,} points (the product of its lists' lengths), more than "
                f"{MAX_SWEEP_POINTS:,}; each point is a run of its own: sweep fewer values, or split it into "
                f"several studies.")
    if n_points >= LARGE_SWEEP:
        warnings.warn(f"the sweep has {n_points:,} points, each a run of its own; checking them all takes about "
                      f"{max(1, round(n_points * 0.001))} s or more before anything runs.",
                      LargeSweepWarning, stacklevel=3)
    return None


# ------------------------------------------------------------------------------------------- memory
def machine_memory(device: str = "cpu") -> int | None:
    """Bytes of memory this machine (or its CUDA device) has, None when unknown.

    For the CPU: the physical memory, or the control group's limit when
    lower (a container, a Slurm job).
    """
    if device.startswith("cuda"):
        try:
            import torch

            if not torch.cuda.is_available():
                return None
            index = int(device.split(":")[1]) if ":" in device else 0
            return int(torch.cuda.get_device_properties(index).total_memory)
        except Exception:  # noqa: BLE001 - unknown: nothing is refused
            return None
    return _host_memory()


@functools.lru_cache(maxsize=1)
def _host_memory() -> int | None:
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = int(text) if total is None else min(total, int(text))
            break
    return total


def parameter_bytes(nodes: Mapping) -> int:
    """Bytes of the parameters of a circuit's nodes (component specs), counted without allocating them.

    Each node's module is built on PyTorch's ``meta`` device; a node that
    cannot be built there (a component of one's own that reads values while
    it builds) counts 0, so that the sum stays a lower bound.
    """
    import torch

    total = 0
    for spec in nodes.values():
        try:
            with torch.device("meta"):
                module = spec.build()
            total += sum(p.numel() * p.element_size() for p in module.parameters())
        except Exception:  # noqa: BLE001 - unknown: counts nothing
            continue
    return total


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def memory_problems(*, parameter_bytes: int, trace_values: int, frame_values: int, batch_size: int,
                    n_frames: int, n_sequences: int, optimizer: str, trains: bool, device: str,
                    memory: int | None, gpu_memory: int | None = None, where: str = "this machine",
                    extra: list[tuple[str, str, int]] = ()) -> list[tuple[str, str]]:
    """Refuse what plainly needs more memory than there is, each with its lower-bound estimate.

    Every estimate counts only what the run must hold at once (so a study
    refused here cannot run): the parameters (with their gradients and the
    optimiser's state when it trains), a training batch's traces (every
    node's output, kept for the backward pass, float32), and the evaluation
    set's frames and traces (kept for results.nc).

    Parameters
    ----------
    parameter_bytes : int
        Bytes of the circuit's parameters.
    trace_values, frame_values : int
        Values per sample and step of all node traces together, and of a frame.
    batch_size, n_frames, n_sequences : int
        ``train.batch_size``, frames per sequence, ``evaluate.n_sequences``.
    optimizer : str
        ``rmsprop`` (one state per parameter) or ``adam`` (two).
    trains : bool
        Whether the study trains.
    device : str
        Where it trains.
    memory, gpu_memory : int or None
        Bytes of host memory and (for a CUDA device) of the device's; None
        checks nothing there.
    where : str
        How to name the host in messages.
    extra : list of (path, what, bytes)
        Further needs of host memory (a fixed dataset, say).
    """
    problems = []
    cuda = device.startswith("cuda")
    train_mem = gpu_memory if cuda else memory
    train_where = f"the {device} device" if cuda else where
    copies = 1 + (({"adam": 2}.get(optimizer, 1) + 1) if trains else 0)
    if memory is not None or train_mem is not None:
        need = parameter_bytes * copies
        limit = train_mem if train_mem is not None else memory
        if need > limit:
            held = (f" x {copies} (weights, gradients and optimiser state)" if copies > 1 else "")
            problems.append(("$.circuit", (
                f"the circuit's parameters need at least {_gib(need)} ({parameter_bytes // _BYTES:,} float32 "
                f"values{held}), more than the {_gib(limit)} of {train_where}; use fewer latents or a smaller "
                f"world.size.")))
    if trains and train_mem is not None:
        need = batch_size * n_frames * (trace_values + frame_values) * _BYTES
        if need > train_mem:
            problems.append(("$.train.batch_size", (
                f"a training batch needs at least {_gib(need)} ({batch_size:,} sequences x {n_frames:,} frames x "
                f"{trace_values + frame_values:,} values per frame (frames and every node's output) x 4 bytes), "
                f"more than the {_gib(train_mem)} of {train_where}; lower train.batch_size (or n_frames, "
                f"world.size).")))
    if memory is not None:
        need = n_sequences * n_frames * (trace_values + frame_values) * _BYTES
        if need > memory:
            problems.append(("$.evaluate.n_sequences", (
                f"the evaluation set needs at least {_gib(need)} ({n_sequences:,} sequences x {n_frames:,} frames x "
                f"{trace_values + frame_values:,} values per frame (frames and every node's output, all kept for "
                f"results.nc) x 4 bytes), more than the {_gib(memory)} of {where}; lower evaluate.n_sequences.")))
        for path, what, need in extra:
            if need > memory:
                problems.append((path, f"{what} needs at least {_gib(need)}, more than the {_gib(memory)} of "
                                       f"{where}; use fewer."))
    return problems
