"""attrs validators whose messages name the field, constraint, value and fix."""

from __future__ import annotations

import math


def positive_int(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attr.name} must be a positive integer, got {value!r}; use e.g. {attr.name}=4.")


def in_unit_interval(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value <= 1.0):
        raise ValueError(
            f"{attr.name} must be in [0, 1], got {value!r}; "
            f"0 uses only the drive, 1 only the prediction."
        )


def finite_float(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{attr.name} must be a finite number, got {value!r}.")


def image_size(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 16 or value % 16:
        raise ValueError(
            f"{attr.name} must be a multiple of 16 (the backbone halves it four times), "
            f"got {value!r}; use 32 or 64."
        )
