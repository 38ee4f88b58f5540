"""Training loop specs (implementation below the specs)."""

from __future__ import annotations

import attrs

__all__ = ["TrainSettings"]


def _positive_int(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attr.name} must be an integer >= 1, got {value!r}.")


def _non_negative_int(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attr.name} must be an integer >= 0, got {value!r}; 0 only simulates.")


def _positive(inst, attr, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
        raise ValueError(f"{attr.name} must be a number > 0, got {value!r}.")


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
    lr : float
        Learning rate.
    grad_clip : float or None
        Clip the gradient norm to this value.
    log_every : int
        Record the loss history every N steps.
    checkpoint_every : int
        Write a checkpoint every N steps (and at the end).
    """

    steps: int = attrs.field(default=1000, validator=_non_negative_int)
    batch_size: int = attrs.field(default=64, validator=_positive_int)
    optimizer: str = attrs.field(default="rmsprop", validator=attrs.validators.in_(("rmsprop", "adam")))
    lr: float = attrs.field(default=1e-4, validator=_positive)
    grad_clip: float | None = attrs.field(default=None, validator=_positive)
    log_every: int = attrs.field(default=10, validator=_positive_int)
    checkpoint_every: int = attrs.field(default=500, validator=_positive_int)
