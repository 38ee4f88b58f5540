"""Validators and the rendering plumbing shared by the world specs.

Validator messages name the class and field, the constraint, the value and
a fix; they raise :class:`neurodelay.errors.ConfigError` (a ``ValueError``).
The common checks are built with the factories of
:mod:`neurodelay._util.validators`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from .._util.validators import check_int, check_seed, finite_at_least, flag, int_at_least
from ..errors import ConfigError
from . import render as _render
from .original import FACTOR_NAMES

BLOB_SIGMA = math.sqrt(15 * 64) / 64  # the original's covariance 960 px^2 at 64 px, in image widths
BLOB_BRIGHTNESS = 0.8
MIN_SIZE = 8


def _where(inst, attr) -> str:
    return f"{type(inst).__name__}.{attr.name}"


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


is_bool = flag(words="true or false", fix="use {name}=True or False", qualified=True, error=ConfigError)

image_size = int_at_least(MIN_SIZE, what=f"an integer number of pixels >= {MIN_SIZE}",
                          fix="use e.g. {name}=32 (the original) or 64", qualified=True, error=ConfigError)


def radius(inst, attr, value):
    if not _is_real(value) or not 0 < value <= 0.5:
        raise ConfigError(
            f"{_where(inst, attr)} must be in (0, 0.5] (a fraction of the image width), got {value!r}; "
            f"use e.g. {attr.name}=0.1 (the original: 3.2 px at 32 px)."
        )


positive = finite_at_least(0, above=True, what="a positive finite number (image widths)",
                           fix=f"the original blob uses {BLOB_SIGMA:.4f}", qualified=True, error=ConfigError)


def unit_interval(inst, attr, value):
    if not _is_real(value) or not 0 <= value <= 1:
        raise ConfigError(f"{_where(inst, attr)} must be in [0, 1], got {value!r}; the original uses 0.8.")


def probability(inst, attr, value):
    if not _is_real(value) or not 0 <= value <= 1:
        raise ConfigError(f"{_where(inst, attr)} must be a probability in [0, 1], got {value!r}; use e.g. 0.15.")


non_negative = finite_at_least(0, fix="use 0 to turn it off", qualified=True, error=ConfigError)

frame_count = int_at_least(2, what="an integer >= 2 (a velocity needs two frames)",
                           fix="use e.g. {name}=10 (the original)", qualified=True, error=ConfigError)


def travel(inst, attr, value):
    if not _is_real(value) or not 0 <= value < 1:
        raise ConfigError(
            f"{_where(inst, attr)} must be in [0, 1) (factor units between the first and last "
            f"circle position), got {value!r}; use {attr.name}=0.1 (the original) or 0 for no minimum."
        )


def optional_speed(inst, attr, value):
    if value is not None and (not _is_real(value) or value < 0):
        raise ConfigError(
            f"{_where(inst, attr)} must be None or a finite speed >= 0 (factor units per frame), "
            f"got {value!r}; e.g. {attr.name}=0.05, or None for the original start/end-point sampling."
        )


positive_int = int_at_least(1, what="a positive integer", fix="the original uses 200000", qualified=True,
                            error=ConfigError)


def check_count(name: str, value) -> int:
    """Check a sample count argument; return it as int."""
    return check_int(name, value, 1, what="a positive integer", fix="use e.g. {name}=64")


def seed_sequence(seed) -> np.random.SeedSequence:
    """Check a seed (int >= 0) and return its SeedSequence."""
    return np.random.SeedSequence(check_seed(seed))


def check_device(device):
    """Check a ``device`` argument before anything is drawn; return it unchanged.

    Accepts what ``torch.device`` accepts (a str such as ``"cpu"`` or
    ``"cuda:0"``, a ``torch.device``) and None (the default device). Raises
    ValueError for a name torch does not know, or a CUDA device that is not
    here, instead of torch's errors from deep inside rendering.
    """
    if device is None:
        return device
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device must be a torch device such as 'cpu', 'cuda' or 'cuda:0', got {device!r}; "
            f"use e.g. device='cpu'."
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r}: no CUDA device is available here (torch.cuda.is_available() is False); "
                f"use device='cpu'."
            )
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"device {device!r}: only {n} CUDA device(s) here; use cuda:0..cuda:{n - 1}.")
    return device


def as_factors(factors, n_min: int = 4) -> torch.Tensor:
    """Return factors as a float32 tensor (on their device) with >= n_min entries in the last dim.

    Raises TypeError for values that are not real numbers (strings, None,
    complex or bool), ValueError for a wrong shape.
    """
    try:
        f = torch.as_tensor(factors)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"factors must be an array of real numbers (a tensor, numpy array or nested list) of shape "
            f"(..., >= {n_min}), got {type(factors).__name__} {factors!r:.60} ({exc}); pass e.g. "
            f"torch.tensor([[blob_x, blob_y, circle_x, circle_y]])."
        ) from None
    if f.is_complex() or f.dtype == torch.bool:
        raise TypeError(
            f"factors must hold real numbers, got dtype {f.dtype}; convert them to float "
            f"(factors.float(), positions in factor units, e.g. 0.5 for the centre)."
        )
    if f.ndim < 1 or f.shape[-1] < n_min:
        raise ValueError(
            f"factors must have shape (..., >= {n_min}) with [blob_x, blob_y, circle_x, circle_y] "
            f"first, got shape {tuple(f.shape)}."
        )
    return f.to(torch.float32)


def check_finite(values: torch.Tensor, names, what: str = "factors") -> None:
    """Raise ValueError naming the first NaN or infinite entry of ``values`` (..., len(names)).

    ``names`` names the last dim's columns. Reads one flag from the values'
    device (a host sync on a GPU), so it guards the user-facing entry points
    only; the worlds' own ``sample`` draws finite factors and skips it.
    """
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        row, col = where[:-1], where[-1]
        at = f" at row {row[0] if len(row) == 1 else row}" if row else ""
        n = int(bad.sum())
        raise ValueError(
            f"{what} must be finite, got {names[col]} = {float(values[where])}{at} "
            f"({n} non-finite value{'s' if n > 1 else ''} in all); replace the NaN or infinite entries "
            f"with finite numbers (positions in factor units, e.g. 0.5 for the centre)."
        )


def _not_differentiable(f: torch.Tensor) -> None:
    if f.requires_grad:
        raise ValueError(
            "factors require grad, but rendering is not differentiable (frames are drawn with in-place "
            "writes and carry no gradient); pass factors.detach()."
        )


def render(world, factors) -> torch.Tensor:
    """Render factors (..., >= 4) to frames (..., 1, H, W); non-finite used factors raise ValueError.

    Factors that require grad raise ValueError: the frames carry no gradient.
    """
    f = as_factors(factors)
    _not_differentiable(f)
    check_finite(f[..., :4], FACTOR_NAMES)
    return render_parts(world, f[..., :2], f[..., 2:4])


def render_unchecked(world, factors) -> torch.Tensor:
    """:func:`render` without the finiteness check (no host sync): for factors a world drew itself."""
    f = as_factors(factors)
    return render_parts(world, f[..., :2], f[..., 2:4])


def render_parts(world, blob: torch.Tensor, circle: torch.Tensor) -> torch.Tensor:
    """Render blob and circle positions (..., 2), whose leading dims broadcast, to (..., 1, H, W)."""
    fn = _render.render_seed_compatible if world.seed_compatible else _render.render_default
    out = fn(blob, circle, world.size, world.radius, world.blob_sigma, world.blob_brightness)
    return out.unsqueeze(-3)


def render_blob(world, blob: torch.Tensor) -> torch.Tensor:
    """The scene without the circle: blob positions (..., 2) to (..., 1, H, W), drawn by the world's renderer."""
    out = _render.render_blob(blob, world.size, world.blob_sigma, world.blob_brightness, world.seed_compatible)
    return out.unsqueeze(-3)


def masks(world, factors) -> dict:
    """Region masks (..., 1, H, W) bool, keyed inside / edge / object / background.

    Only the circle factors are used; a non-finite one raises ValueError.
    """
    f = as_factors(factors)
    check_finite(f[..., 2:4], FACTOR_NAMES[2:4])
    lead = f.shape[:-1]
    out = _render.masks(f[..., 2:4].reshape(-1, 2), world.size, world.radius, world.seed_compatible)
    return {k: v.reshape(*lead, 1, world.size, world.size) for k, v in out.items()}
