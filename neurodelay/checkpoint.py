"""Training checkpoints: written atomically, read without running code.

A checkpoint is a ``torch.save`` file holding only plain values (tensors,
lists, dicts, str, int, float), so that it loads with
``torch.load(weights_only=True)``: opening a file never runs code from it.

Contents (``FORMAT``, version ``VERSION``)::

    format, version   "neurodelay-checkpoint", 1
    step              optimiser steps completed
    seed              the training seed
    study_text        the study (YAML text) the run belongs to
    model             the module's state_dict
    optimizer         the optimiser's state_dict
    history           {"step": [int], <term>: [float], ...}
    rng               {"torch": uint8 tensor, "cuda": [uint8 tensor],
                       "numpy": {...}, "python": {...}}

Training derives every batch and every noise draw from (seed, step), so the
random states are not needed to resume; they are kept so that a resumed
process is in the same state as the one that stopped.
"""

from __future__ import annotations

import difflib
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._files import give_default_mode
from .errors import CheckpointError

__all__ = ["FORMAT", "VERSION", "save_checkpoint", "load_checkpoint", "capture_rng_state",
           "restore_rng_state", "remove_stale_temporaries"]

FORMAT = "neurodelay-checkpoint"
VERSION = 1
_KEYS = ("format", "version", "step", "seed", "study_text", "model", "optimizer", "history", "rng")
_FIX = "delete it to start afresh, or run without --resume (resume=False)"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, **state}
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        give_default_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


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


def _first_difference(a: str, b: str) -> str:
    diff = list(difflib.unified_diff(a.splitlines(), b.splitlines(), "checkpoint", "this run",
                                     lineterm="", n=0))
    lines = [d for d in diff[2:] if not d.startswith("@@")][:4]
    return "; first differences: " + " | ".join(lines) if lines else ""


def load_checkpoint(path: str | os.PathLike, *, study_text: str | None = None,
                    seed: int | None = None) -> dict[str, Any]:
    """Read a checkpoint written by training, checking that it is whole and ours.

    Parameters
    ----------
    path : str or path-like
    study_text : str, optional
        When given, the checkpoint's study text must equal it.
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
        one written by another study or seed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; run without --resume "
                              f"(resume=False) to start afresh.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, bad pickle, disallowed global, ...
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
    if study_text is not None and ckpt["study_text"] != study_text:
        raise CheckpointError(
            f"checkpoint {str(path)!r} belongs to another study: its study text differs from this "
            f"run's{_first_difference(ckpt['study_text'], study_text)}. Resume only with the study "
            f"that wrote it; otherwise {_FIX}, or use another output folder.")
    if seed is not None and ckpt["seed"] != seed:
        raise CheckpointError(f"checkpoint {str(path)!r} was written with seed {ckpt['seed']!r}, this "
                              f"run has seed {seed!r}; resume with the same seed, or {_FIX}.")
    return ckpt
