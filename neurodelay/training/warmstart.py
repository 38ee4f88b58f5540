"""Warm starts: a circuit's parameters initialised from another run's checkpoint (``train.init_from``).

``train.init_from`` names a checkpoint written by training (``checkpoint.pt``
of a run) or a pretrained file shipped with the package. Every parameter and
buffer of the circuit whose name and shape match one of the checkpoint's
model is copied from it; the others keep their seeded initialisation. So a
per-frame autoencoder trained alone can start the same encoder and decoder
inside a recurrent circuit (the presets name their nodes alike), and every
condition of a paired design can start from the same weights.

The text may hold two fields, filled in when the run starts:

``{out}``
    the output root the run is written under (``--out``, ``runs`` by
    default): the folder holding the study's own folder;
``{seed}``
    the study's (or the sweep point's) seed.

``package:NAME`` names ``neurodelay/pretrained/NAME.pt``. A relative path is
taken from the working directory. Files are read with
``torch.load(weights_only=True)``: reading one runs no code from it.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from pathlib import Path

import torch

from .checkpoint import FORMAT, load_checkpoint
from ..errors import CheckpointError, ConfigError

__all__ = ["FIELDS", "PACKAGE_PREFIX", "check_init_from", "resolve_init_from", "warm_start", "runs_root"]

#: The fields an ``init_from`` text may hold.
FIELDS = ("out", "seed")
#: Prefix of the pretrained files shipped in ``neurodelay/pretrained``.
PACKAGE_PREFIX = "package:"
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


def check_init_from(value: str) -> None:
    """Raise ConfigError unless ``value`` is a usable ``init_from`` text (checked at load, before any run)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"train.init_from must be a checkpoint path (text) or null, got {value!r}; use e.g. "
                          f"'{{out}}/pretrain_ae/seed={{seed}}/checkpoint.pt' or 'package:quickstart_ae'.")
    if value.startswith(PACKAGE_PREFIX):
        name = value[len(PACKAGE_PREFIX):]
        if not _NAME.match(name):
            raise ConfigError(f"train.init_from {value!r}: a packaged file is named by letters, digits and _ . + - "
                              f"only; use e.g. 'package:quickstart_ae'.")
        return
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as err:
        raise ConfigError(f"train.init_from {value!r} is not a valid path template ({err}); write braces only "
                          f"around {', '.join('{' + f + '}' for f in FIELDS)}.") from None
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise ConfigError(f"train.init_from {value!r} holds the field(s) {unknown}; the fields it may hold are "
                          f"{', '.join('{' + f + '}' for f in FIELDS)}.")


def runs_root(out: Path, study_name: str) -> Path:
    """The output root of a run folder: ``<root>/<name>`` (a run) or ``<root>/<name>/<point>`` (a sweep point)."""
    out = Path(out)
    if out.name == study_name:
        return out.parent
    if out.parent.name == study_name:
        return out.parent.parent
    return out.parent


def resolve_init_from(value: str, *, out: Path, study_name: str, seed: int):
    """The file ``value`` names for a run written to ``out``: a Path, or a packaged resource."""
    if value.startswith(PACKAGE_PREFIX):
        return resources.files("neurodelay") / "pretrained" / f"{value[len(PACKAGE_PREFIX):]}.pt"
    return Path(value.format(out=str(runs_root(out, study_name)), seed=int(seed)))


def warm_start(module: torch.nn.Module, source) -> list[str]:
    """Copy the matching parameters and buffers of the checkpoint ``source`` into ``module``.

    Parameters
    ----------
    module : torch.nn.Module
        The built circuit.
    source : pathlib.Path or importlib resource
        A checkpoint written by training, or a file holding a state dict
        (``{"model": state_dict}`` or the state dict itself).

    Returns
    -------
    list of str
        The names copied (in the module's order).

    Raises
    ------
    CheckpointError
        The file is missing or unreadable, or no tensor of it fits the
        module, or a tensor of the module's name has another shape.
    """
    name = str(source)
    if not source.is_file():
        raise CheckpointError(f"train.init_from: {name!r} does not exist; run the study that writes it first "
                              f"(e.g. python -m neurodelay.run studies/pretrain_ae.yaml for "
                              f"'{{out}}/pretrain_ae/seed={{seed}}/checkpoint.pt'), or correct the path.")
    with source.open("rb") as fh:
        try:
            held = torch.load(fh, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - truncated zip, bad pickle, a global weights_only refuses
            raise CheckpointError(f"train.init_from: {name!r} cannot be read ({type(err).__name__}: "
                                  f"{str(err).splitlines()[0] if str(err) else ''}).") from None
    if isinstance(held, dict) and held.get("format") == FORMAT:
        state = load_checkpoint(Path(str(source)))["model"]  # a training checkpoint: checked whole
    else:
        state = held.get("model", held) if isinstance(held, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"train.init_from: {name!r} holds no state dict (a checkpoint of a run, or a file "
                              f"of studies/ship_pretrained.py).")
    own = module.state_dict()
    copied, wrong = [], []
    for key, value in own.items():
        if key in state:
            if tuple(state[key].shape) != tuple(value.shape):
                wrong.append(f"{key} {tuple(state[key].shape)} (the circuit's: {tuple(value.shape)})")
            else:
                copied.append(key)
    if wrong:
        raise CheckpointError(f"train.init_from {name!r} does not fit this circuit: {'; '.join(wrong[:3])}; start "
                              f"from a checkpoint of a circuit with the same nodes and sizes.")
    if not copied:
        raise CheckpointError(f"train.init_from {name!r} shares no parameter with this circuit (its names: "
                              f"{', '.join(list(state)[:4])}...); start from a checkpoint of a circuit whose nodes "
                              f"are named alike.")
    with torch.no_grad():
        for key in copied:
            own[key].copy_(state[key].to(own[key].dtype))
    return copied
