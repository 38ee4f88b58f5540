"""How to train: :class:`TrainSettings`, the study's ``train:`` section."""

from __future__ import annotations

import difflib
import math

import attrs

from .._util.validators import is_int, is_real, store_plain
from .warmstart import check_init_from

__all__ = ["TrainSettings"]


def _positive_int(inst, attr, value):
    if not is_int(value) or value < 1:
        raise ValueError(f"{attr.name} must be an integer >= 1, got {value!r}.")
    store_plain(inst, attr, value, int)


def _non_negative_int(inst, attr, value):
    if not is_int(value) or value < 0:
        raise ValueError(f"{attr.name} must be an integer >= 0, got {value!r}; 0 only simulates.")
    store_plain(inst, attr, value, int)


def _positive(inst, attr, value):
    if value is not None and (not is_real(value) or not value > 0 or not math.isfinite(value)):
        raise ValueError(f"{attr.name} must be a finite number > 0, got {value!r}.")
    if value is not None:
        store_plain(inst, attr, value, float)


def _one_of(*options: str):
    """Validator: the value is one of ``options`` (the message lists them and suggests the closest)."""
    def check(inst, attr, value):
        if not isinstance(value, str) or value not in options:
            close = difflib.get_close_matches(str(value), options, n=1)
            fix = f"did you mean {attr.name}={close[0]!r}?" if close else f"use e.g. {attr.name}={options[0]!r}."
            raise ValueError(f"{attr.name} must be one of {', '.join(map(repr, options))}, got {value!r}; {fix}")
    return check



def _init_from(inst, attr, value):
    if value is not None:
        check_init_from(value)


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

    steps: int = attrs.field(default=1000, validator=_non_negative_int)
    batch_size: int = attrs.field(default=64, validator=_positive_int)
    optimizer: str = attrs.field(default="rmsprop", validator=_one_of("rmsprop", "adam"))
    lr: float = attrs.field(default=1e-4, validator=_positive)
    delay_lr: float | None = attrs.field(default=None, validator=_positive, kw_only=True)
    grad_clip: float | None = attrs.field(default=None, validator=_positive)
    log_every: int = attrs.field(default=10, validator=_positive_int)
    checkpoint_every: int = attrs.field(default=500, validator=_positive_int)
    precision: str = attrs.field(default="float32", validator=_one_of("float32", "bfloat16"))
    init_from: str | None = attrs.field(default=None, kw_only=True, validator=_init_from)

