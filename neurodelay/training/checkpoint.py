"""Training checkpoints: written atomically, read without running code.

A checkpoint is a ``torch.save`` file holding only plain values (tensors,
lists, dicts, str, int, float), so that it loads with
``torch.load(weights_only=True)``: opening a file never runs code from it.

Contents (``FORMAT``, version ``VERSION``)::

    format, version   "neurodelay-checkpoint", 1
    step              optimiser steps completed
    seed              the training seed
    study_text        the study (YAML text) of the run that wrote the checkpoint
    model             the module's state_dict
    optimizer         the optimiser's state_dict
    history           {"step": [int], <term>: [float], ...}
    rng               {"torch": uint8 tensor, "cuda": [uint8 tensor],
                       "numpy": {...}, "python": {...}}

and, written by :func:`neurodelay.training.train` but not required when
reading (older checkpoints lack them)::

    delay_history     {<edge index>: [[float]]}: each learned delay in ms
                      at the logged steps, one row per step
    train_seconds     training wall time of the run so far, in s
    train_timed_steps the steps ``train_seconds`` covers

Training derives every batch and every noise draw from (seed, step), so the
random states are not needed to resume; they are kept so that a resumed
process is in the same state as the one that stopped.

A checkpoint belongs to the training of its study, not to the whole study:
resuming compares only the training parts of the two studies
(:func:`trains_alike`; :func:`training_text` gives that part as text), which
leave out the sections that training does not read (``NOT_TRAINING``: the
name, the device, ``evaluate``, ``analyses``, ``sweep`` and ``executor``)
and the keys of ``train`` that say how long to train and how often to log
and save (``RESUMABLE_TRAIN``: ``steps``, ``log_every``,
``checkpoint_every``), which do not change the parameters at any step. So a
run can be resumed, finished training re-evaluated and re-analysed, or
trained for longer, after those change. A key of ``train`` or ``world`` added later
(``LATER_TRAIN_DEFAULTS``: ``delay_lr``, ``init_from``;
``LATER_WORLD_DEFAULTS``: ``motion``, ``reversal_rate``, ``speed_jitter``,
``pixel_noise``, ``occlusion_frames``, ``occlusion_start``) is also left out where it holds the value its absence meant,
so that checkpoints written before it existed still resume. The whole text is still stored (it is the
study of the last run that wrote the file), and checkpoints written before
this rule, which store the same whole text, are reduced the same way.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from .._util.files import atomic_file
from ..errors import CheckpointError

__all__ = ["FORMAT", "VERSION", "NOT_TRAINING", "RESUMABLE_TRAIN", "LATER_TRAIN_DEFAULTS", "LATER_WORLD_DEFAULTS",
           "training_text",
           "trains_alike", "save_checkpoint", "load_checkpoint", "capture_rng_state", "restore_rng_state",
           "remove_stale_temporaries"]

FORMAT = "neurodelay-checkpoint"
VERSION = 1
_KEYS = ("format", "version", "step", "seed", "study_text", "model", "optimizer", "history", "rng")
_FIX = "delete it to start afresh, or run without --resume (resume=False)"

#: Top-level study sections that training does not read: a checkpoint resumes across changes to them.
#: ``device`` is among them (as for a sweep point's identity): a run may continue on another device,
#: at the price of numbers that then match neither device's uninterrupted run bit for bit.
NOT_TRAINING = ("name", "device", "evaluate", "analyses", "sweep", "executor")
#: Keys of ``train`` a resume may change: every batch and noise draw comes from (seed, step) and the
#: learning rate has no schedule, so the parameters after step s do not depend on them. A larger
#: ``steps`` trains on from the checkpoint (to the same parameters as an uninterrupted run that long).
RESUMABLE_TRAIN = ("steps", "log_every", "checkpoint_every")

#: Keys of ``train`` added after checkpoints were first written, with the value that means what their
#: absence meant: a study holding that value trains alike with a checkpoint whose study lacks the key.
LATER_TRAIN_DEFAULTS = {"delay_lr": None, "init_from": None}
#: The same for keys of ``world`` added later (the motion models, pixel noise and occluder of the moving
#: circle): a linear, noise-free, unoccluded world's study trains alike with a checkpoint written before they existed.
LATER_WORLD_DEFAULTS = {"motion": "linear", "reversal_rate": 0.15, "speed_jitter": 0.3, "pixel_noise": 0.0,
                        "occlusion_frames": 0, "occlusion_start": None}
_LATER_DEFAULTS = {"train": LATER_TRAIN_DEFAULTS, "world": LATER_WORLD_DEFAULTS}


def _training_part(study_text: str):
    """The study text parsed, without the ``NOT_TRAINING`` sections (the text itself if it is no mapping)."""
    try:
        raw = yaml.safe_load(study_text) if study_text else None
    except yaml.YAMLError:
        return study_text
    if not isinstance(raw, dict):
        return study_text
    part = {k: v for k, v in raw.items() if k not in NOT_TRAINING}
    if isinstance(part.get("train"), dict):
        part["train"] = {k: v for k, v in part["train"].items() if k not in RESUMABLE_TRAIN}
    for section, later in _LATER_DEFAULTS.items():
        if isinstance(part.get(section), dict):
            part[section] = {k: v for k, v in part[section].items() if not (k in later and v == later[k])}
    return part


def training_text(study_text: str) -> str:
    """The part of a study that training depends on, as canonical YAML text.

    It is what identifies the training a checkpoint holds: the study
    (``neurodelay.study.study_to_yaml``) without its ``NOT_TRAINING``
    sections (name, device, evaluate, analyses, sweep, executor) and without
    the ``RESUMABLE_TRAIN`` keys of ``train`` (steps, log_every,
    checkpoint_every), mapping keys sorted, so that two studies whose
    parameters follow the same path give the same text whatever the order
    of their keys and however long they train.

    Parameters
    ----------
    study_text : str
        A study as YAML text: the whole study, or already reduced (the
        function is idempotent).

    Returns
    -------
    str
        The reduced text; ``study_text`` itself when it is not a YAML
        mapping (e.g. ``""``, the text of a bare :func:`~neurodelay.training.train` call).
    """
    part = _training_part(study_text)
    if not isinstance(part, dict):
        return study_text
    return yaml.safe_dump(part, sort_keys=True, default_flow_style=None, width=100)


def trains_alike(a: str, b: str) -> bool:
    """Whether studies ``a`` and ``b`` (YAML text) train alike: equal :func:`training_text` parts.

    The one comparison behind resuming (:func:`load_checkpoint`) and a
    sweep rerun's choice of points to keep: the parsed parts are compared,
    so key order and YAML spelling do not matter.
    """
    return _training_part(a) == _training_part(b)


def capture_rng_state() -> dict[str, Any]:
    """All global random states as plain values (torch CPU and CUDA, numpy, Python)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = list(torch.cuda.get_rng_state_all())
    return {
        "torch": torch.get_rng_state(),
        "cuda": cuda,
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the global random states saved by :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically.

    The data go to a temporary file in the same folder, which is flushed to
    disk and then renamed over ``path``: a reader (or a resumed run after a
    crash) sees either the old checkpoint or the new one, never a partial file.

    Parameters
    ----------
    path : str or path-like
    state : dict
        Plain values only (see the module docstring); ``format`` and
        ``version`` are added.
    """
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **state}
    with atomic_file(path, "wb", prefix=_temporary_prefix(path), fsync=True) as f:
        torch.save(payload, f)


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Delete temporary files left beside ``path`` by a writer that was killed mid-write."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    prefix = _temporary_prefix(path)
    for p in path.parent.iterdir():
        if p.name.startswith(prefix) and p.name.endswith(".tmp") and p.is_file():
            try:
                p.unlink()
            except FileNotFoundError:
                pass


def _short(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").strip()  # the document end YAML writes after a bare scalar
    return text if len(text) <= 60 else text[:57] + "..."


_ABSENT = object()


def _first_changed(a, b, path: str = ""):
    """(dotted path, old, new) of the first place where ``a`` and ``b`` differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            found = _first_changed(a.get(key, _ABSENT), b.get(key, _ABSENT),
                                   f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_changed(x, y, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return None if a == b else (path or "the study", a, b)


def _changed_field(a, b) -> str:
    found = _first_changed(a, b)
    if found is None:
        return ""
    where, old, new = found

    def show(value) -> str:
        return "absent" if value is _ABSENT else _short(value)

    return f" at {where} ({show(old)} in the checkpoint, {show(new)} in this run)"


_TERM_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _contents_problem(ckpt: dict) -> str | None:
    """What in a checkpoint's contents does not hold together (None if everything does).

    Checked before anything is restored or any file touched: the step, the
    seed, the study text, the kinds of the model, optimiser and random
    states, and the histories (logged steps increasing within the step,
    one value per logged step for each loss term and learned delay, terms
    named like variables).
    """
    step, seed = ckpt["step"], ckpt["seed"]
    if not _is_int(step) or step < 0:
        return f"its step is {_short_value(step)}, not a count of steps >= 0"
    if not _is_int(seed) or not 0 <= seed < 2**64:
        return f"its seed is {_short_value(seed)}, not an integer in [0, 2**64)"
    if not isinstance(ckpt["study_text"], str):
        return f"its study_text is a {type(ckpt['study_text']).__name__}, not text"
    model = ckpt["model"]
    if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in model.items()):
        return "its model is not a mapping of parameter names to tensors"
    bad = [k for k, v in model.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        return f"its model holds NaN or infinite values (in {bad[0]})"
    if not isinstance(ckpt["optimizer"], dict) or not isinstance(ckpt["rng"], dict):
        return "its optimizer or rng entry is not a mapping"
    history = ckpt["history"]
    if not isinstance(history, dict):
        return "its history is not a mapping"
    steps = history.get("step", [])
    if not isinstance(steps, list) or not all(_is_int(s) for s in steps):
        return "its history's logged steps are not a list of integers"
    if any(b <= a for a, b in zip(steps, steps[1:])) or (steps and not 1 <= steps[0] <= steps[-1] <= step):
        return (f"its history's logged steps ({_short_value(steps)}) are not increasing steps from 1 to its step "
                f"{step}")
    for term, values in history.items():
        if term == "step":
            continue
        if not isinstance(term, str) or not _TERM_RE.match(term):
            return f"its history names a loss term {_short_value(term)}, not a name of letters, digits and _"
        if not isinstance(values, list) or len(values) != len(steps) or not all(_is_number(v) for v in values):
            return (f"its history of the {term} loss is not one number per logged step ({len(steps)} logged "
                    f"steps)")
    delays = ckpt.get("delay_history", {})
    if not isinstance(delays, dict):
        return "its delay_history is not a mapping"
    for edge, rows in delays.items():
        if not (isinstance(edge, str) and edge.isdigit() and isinstance(rows, list)
                and all(isinstance(r, list) and r and all(_is_number(v) for v in r) for r in rows)
                and len({len(r) for r in rows}) <= 1):
            return f"its delay_history of edge {_short_value(edge)} is not rows of numbers of one width"
        if len(rows) not in (0, len(steps)):
            return (f"its delay_history of edge {edge} has {len(rows)} rows for {len(steps)} logged steps")
    return None


def _short_value(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_checkpoint(path: str | os.PathLike, *, study_text: str | None = None,
                    seed: int | None = None) -> dict[str, Any]:
    """Read a checkpoint written by training, checking that it is whole and ours.

    Parameters
    ----------
    path : str or path-like
    study_text : str, optional
        When given, the checkpoint's study must train alike: its
        :func:`training_text` must equal that of ``study_text`` (the
        ``NOT_TRAINING`` sections and the ``RESUMABLE_TRAIN`` keys may
        differ; the caller checks that the checkpoint's step is within
        ``train.steps``). Checkpoints that store the
        whole study text, old ones included, are compared this way.
    seed : int, optional
        When given, the checkpoint's seed must equal it.

    Returns
    -------
    dict
        The checkpoint (tensors on the CPU).

    Raises
    ------
    CheckpointError
        Missing, truncated or corrupt file, not a neurodelay checkpoint, or
        one written by a study that trains differently (the message names
        the first differing field), or with another seed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; run without --resume "
                              f"(resume=False) to start afresh.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - truncated zip, bad pickle, disallowed global, ...
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or corrupt and cannot be read "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); {_FIX}."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a neurodelay checkpoint; {_FIX}.")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} has format version {ckpt.get('version')!r}, "
                              f"this neurodelay reads version {VERSION}; {_FIX}.")
    missing = [k for k in _KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} lacks {', '.join(missing)}; {_FIX}.")
    problem = _contents_problem(ckpt)
    if problem is not None:
        raise CheckpointError(f"checkpoint {str(path)!r} is inconsistent: {problem}; a checkpoint that training "
                              f"wrote never is, so it was damaged or made by hand: {_FIX}.")
    if study_text is not None:
        stored = str(ckpt["study_text"])
        if not trains_alike(stored, study_text):
            old, new = _training_part(stored), _training_part(study_text)
            raise CheckpointError(
                f"checkpoint {str(path)!r} belongs to another study: the part of its study that "
                f"training depends on differs from this run's{_changed_field(old, new)}. Only "
                f"{', '.join(NOT_TRAINING)} and train.{', train.'.join(RESUMABLE_TRAIN)} may change on "
                f"resume: change the rest back to resume; otherwise {_FIX}, or use another output folder.")
    if seed is not None and ckpt["seed"] != seed:
        raise CheckpointError(f"checkpoint {str(path)!r} was written with seed {ckpt['seed']!r}, this "
                              f"run has seed {seed!r}; resume with the same seed, or {_FIX}.")
    return ckpt
