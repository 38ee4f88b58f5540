"""Flash-lag probes: a moving circle and a brief flash aligned with it.

A :class:`FlashLagProbe` is a stimulus condition built on a moving-circle
world (:class:`~neurodelay.worlds.MovingCircle`): it renders, with the
world's own renderer, sequences in which the circle moves along a straight
path and a *flash* (a second disk, shown for a single frame) appears at
step ``flash_step`` beside the path, aligned with the circle along the
direction of motion.

Geometry (positions in factor units, [0, 1], as the world's factors): the
circle moves along x (directions ``right``, ``left``) or y (``down``,
``up``); its path lies at ``path_at`` on the other axis, the flash at
``flash_at`` on that axis (so flash and circle do not overlap) and at
``flash_along`` along the motion, which is where the circle is at the flash
step. The blob sits at ``blob`` throughout.

Conditions (``s(t)`` the circle's coordinate along the motion, ``f`` the
flash's, ``t_f`` the flash step, ``v`` the speed, ``k = t - t_f``):

``standard``
    ``s = f + v k``: constant motion through the flash.
``flash_initiated``
    No circle before the flash: the circle appears at the flash's place
    with the flash (step ``t_f``) and moves on, ``s = f + v k`` for
    ``k >= 0`` (the human paradigm: the moving object starts with the flash).
``flash_terminated``
    ``s = f + v min(k, 0)``: the circle moves up to the flash's place and
    stops there (it stays on screen).
``reversal``
    ``s = f + v |k|``: the circle comes towards the flash's place against
    the named direction, reverses at the flash step and moves back along
    it. The named direction is the motion *after* the flash, the one the
    flash-lag is measured along.
``rest_then_move``
    ``s = f + v max(k, 0)``, shown on every frame: the circle rests at the
    flash's place until the flash, then moves. (Before the faithful
    ``flash_initiated`` existed, this condition was called
    ``flash_initiated``.)

Frames without a circle (``flash_initiated`` before ``t_f``) show the blob
alone, drawn by the world's own renderer (:func:`circle_visible` says which
steps show the circle). The factors cannot say "no circle": there they hold
the place where the circle will appear and zero velocity, as a delay line
holds the first value it will deliver, so a circuit driven by the factors
(``world.factors``) sees the circle at rest there, as in ``rest_then_move``;
only a circuit that sees the frames can tell the two conditions apart. An
analysis must not score those steps as if a circle were there:
:func:`neurodelay.analysis.flash_lag.flash_lag` reads only steps whose
input showed the circle, and reports NaN with a reason for the others.

The velocity factors (``circle_vx``, ``circle_vy``) hold the backward
difference ``s(t) - s(t - 1)`` (the forward one at step 0), i.e. the motion
that brought the circle to where it is: zero before and at the step where
the circle appears, ``-v`` along the named direction at the reversal step.
"""

from __future__ import annotations

import math
import numbers
from typing import ClassVar

import attrs
import numpy as np
import torch

from .._util.validators import as_names, int_at_least
from ..errors import ConfigError
from . import _spec
from .episode import Episode

__all__ = ["FlashLagProbe", "FLASH_CONDITIONS", "DEFAULT_CONDITIONS", "CONDITION_DESCRIPTIONS", "DIRECTIONS"]

#: The conditions a probe can render.
FLASH_CONDITIONS = ("standard", "flash_initiated", "flash_terminated", "reversal", "rest_then_move")
#: The conditions a probe renders by default (the human paradigms).
DEFAULT_CONDITIONS = ("standard", "flash_initiated", "flash_terminated", "reversal")
#: One line per condition (stored with the results).
CONDITION_DESCRIPTIONS = {
    "standard": "constant motion through the flash",
    "flash_initiated": "no circle before the flash; it appears at the flash's place with the flash and moves",
    "flash_terminated": "motion up to the flash's place, then at rest there",
    "reversal": "motion towards the flash's place, reversed at the flash (measured along the motion after it)",
    "rest_then_move": "at rest at the flash's place (shown) until the flash, then motion",
}
#: Directions of motion: (axis moved along, sign).
DIRECTIONS = {"right": (0, 1.0), "left": (0, -1.0), "down": (1, 1.0), "up": (1, -1.0)}


def _unit(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"FlashLagProbe.{attr.name} must be a number in [0, 1] (factor units), got {value!r}.")


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _speeds(value):
    """Converter: one speed or a sequence of speeds to a tuple of floats (ConfigError for anything else)."""
    if _is_number(value):
        value = (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray)) \
            or not all(_is_number(v) for v in value):
        raise ConfigError(f"FlashLagProbe.speeds must be a speed or a sequence of speeds > 0 (factor units per "
                          f"frame), got {value!r}; use e.g. (0.02, 0.04, 0.06).")
    return tuple(float(v) for v in value)


def _blob(value):
    """Converter: an (x, y) pair of numbers to a tuple of two floats (ConfigError for anything else)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray)) or len(value) != 2 \
            or not all(_is_number(v) and math.isfinite(v) for v in value):
        raise ConfigError(f"FlashLagProbe.blob must be the blob position (x, y), two finite numbers (factor "
                          f"units), got {value!r}; use e.g. blob=(0.5, 0.5).")
    return tuple(float(v) for v in value)


def _check_speeds(inst, attr, value):
    if len(value) == 0 or not all(math.isfinite(v) and v > 0 for v in value):
        raise ConfigError(f"FlashLagProbe.speeds must be one or more speeds > 0 (factor units per frame), "
                          f"got {value!r}; use e.g. (0.02, 0.04, 0.06).")


def _names(field: str):
    """Converter to a tuple of names: a single name (a str) is a one-name tuple."""
    return lambda value: as_names(value, f"FlashLagProbe.{field}", error=ConfigError)


def _check_conditions(inst, attr, value):
    bad = [c for c in value if c not in FLASH_CONDITIONS]
    if bad or len(value) == 0 or len(set(value)) != len(value):
        raise ConfigError(f"FlashLagProbe.conditions must be distinct names among {FLASH_CONDITIONS}, "
                          f"got {value!r}; use e.g. conditions={DEFAULT_CONDITIONS}.")


def _check_directions(inst, attr, value):
    bad = [d for d in value if d not in DIRECTIONS]
    if bad or len(value) == 0 or len(set(value)) != len(value):
        raise ConfigError(f"FlashLagProbe.directions must be distinct names among {tuple(DIRECTIONS)}, "
                          f"got {value!r}.")


_check_step = int_at_least(1, what="an integer >= 1 (steps)", fix="use e.g. {name}=8", qualified=True,
                           error=ConfigError)


def _check_radius(inst, attr, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                              or not 0 < value <= 0.5):
        raise ConfigError(f"FlashLagProbe.flash_radius must be None (the world's circle radius) or in "
                          f"(0, 0.5] image widths, got {value!r}.")


def _check_condition(condition) -> None:
    if not isinstance(condition, str) or condition not in FLASH_CONDITIONS:
        raise ValueError(f"condition must be one of {FLASH_CONDITIONS}, got {condition!r}.")


def _check_world(world) -> None:
    if not all(hasattr(world, a) for a in ("factor_names", "render", "radius")):
        raise TypeError(f"world must be a world spec such as MovingCircle() (it supplies the renderer and the "
                        f"factor layout), got {type(world).__name__} {world!r:.60}.")


@attrs.frozen
class FlashLagProbe:
    """A moving circle with a one-frame flash aligned with it (see the module docstring).

    Parameters
    ----------
    speeds : tuple of float
        Speeds of the circle in factor units per frame (one factor unit is
        ``0.75 * size`` pixels).
    conditions : tuple of str
        Among ``standard``, ``flash_initiated``, ``flash_terminated``,
        ``reversal``, ``rest_then_move`` (default: all but
        ``rest_then_move``); a single name (a str) is a one-condition tuple.
    directions : tuple of str
        Directions of motion, one sample each: ``right``, ``left``,
        ``down``, ``up`` (in ``reversal``, the motion after the flash); a
        single name (a str) is a one-direction tuple.
    flash_step : int
        Step (frame) at which the flash is shown; the circle is at the
        flash's place along the motion then.
    flash_along : float
        Flash (and circle at ``flash_step``) coordinate along the motion.
    path_at : float
        The circle's coordinate across the motion.
    flash_at : float
        The flash's coordinate across the motion.
    blob : tuple of float
        Static blob position ``(x, y)``.
    flash_radius : float or None
        Flash disk radius in image widths (None: the world's circle radius).
    """

    kind: ClassVar[str] = "flash_lag"

    speeds: tuple = attrs.field(default=(0.02, 0.04, 0.06), converter=_speeds, validator=_check_speeds)
    conditions: tuple = attrs.field(default=DEFAULT_CONDITIONS, converter=_names("conditions"),
                                    validator=_check_conditions)
    directions: tuple = attrs.field(default=("right", "left", "down", "up"), converter=_names("directions"),
                                    validator=_check_directions)
    flash_step: int = attrs.field(default=8, validator=_check_step)
    flash_along: float = attrs.field(default=0.5, validator=_unit)
    path_at: float = attrs.field(default=0.3, validator=_unit)
    flash_at: float = attrs.field(default=0.7, validator=_unit)
    blob: tuple = attrs.field(default=(0.5, 0.5), converter=_blob)
    flash_radius: float | None = attrs.field(default=None, validator=_check_radius)

    # ------------------------------------------------------------ geometry
    def along(self, condition: str, speed: float, n_frames: int) -> np.ndarray:
        """The circle's coordinate along the motion, per step.

        In ``flash_initiated`` the steps before the flash, where no circle is
        shown, hold the flash's place (see :meth:`circle_visible`).

        Returns
        -------
        numpy.ndarray
            float64, shape (n_frames,), factor units, before the sign of the
            direction is applied (``f + sign * (along - f)`` gives the
            position for a direction of sign ``sign``).
        """
        _check_condition(condition)
        dt = np.arange(n_frames, dtype=np.float64) - self.flash_step
        if condition in ("flash_initiated", "rest_then_move"):
            dt = np.maximum(dt, 0.0)
        elif condition == "flash_terminated":
            dt = np.minimum(dt, 0.0)
        elif condition == "reversal":
            dt = np.abs(dt)
        return self.flash_along + float(speed) * dt

    def circle_visible(self, condition: str, n_frames: int) -> np.ndarray:
        """Which steps show the circle: bool, shape (n_frames,).

        False only in ``flash_initiated`` before ``flash_step`` (the circle
        appears with the flash); the factors there hold the flash's place
        and zero velocity, which no analysis may score as a circle.
        """
        _check_condition(condition)
        self._check_frames(n_frames)
        visible = np.ones(n_frames, dtype=bool)
        if condition == "flash_initiated":
            visible[: self.flash_step] = False
        return visible

    def directions_array(self) -> np.ndarray:
        """Unit direction of motion per sample, shape (n_directions, 2) as (x, y)."""
        out = np.zeros((len(self.directions), 2))
        for i, d in enumerate(self.directions):
            axis, sign = DIRECTIONS[d]
            out[i, axis] = sign
        return out

    def flash_positions(self) -> np.ndarray:
        """Flash centre per sample, shape (n_directions, 2) as (x, y) in factor units."""
        out = np.zeros((len(self.directions), 2))
        for i, d in enumerate(self.directions):
            axis, _ = DIRECTIONS[d]
            out[i, axis] = self.flash_along
            out[i, 1 - axis] = self.flash_at
        return out

    def circle_positions(self, condition: str, speed: float, n_frames: int) -> np.ndarray:
        """Circle centre per sample and step, shape (n_directions, n_frames, 2), factor units."""
        self._check_frames(n_frames)
        s = self.along(condition, speed, n_frames) - self.flash_along  # (T,)
        out = np.zeros((len(self.directions), n_frames, 2))
        for i, d in enumerate(self.directions):
            axis, sign = DIRECTIONS[d]
            out[i, :, axis] = self.flash_along + sign * s
            out[i, :, 1 - axis] = self.path_at
        return out

    def _check_frames(self, n_frames: int) -> None:
        if isinstance(n_frames, bool) or not isinstance(n_frames, numbers.Integral) or n_frames <= self.flash_step:
            raise ValueError(f"n_frames must be an integer > flash_step ({self.flash_step}), got {n_frames!r}; "
                             f"use n_frames >= {self.flash_step + 1} or a smaller flash_step.")

    def check_fits(self, n_frames: int) -> None:
        """Raise ConfigError unless every path of every speed stays inside [0, 1].

        Every condition's circle stays within ``flash_along +- speed *
        max(flash_step, n_frames - 1 - flash_step)`` (the standard
        condition reaches both ends; the others, a part of that range), so
        the check asks that range to lie in [0, 1].
        """
        self._check_frames(n_frames)
        self._check_reach(max(self.speeds), n_frames)

    def _check_speed(self, speed, n_frames: int) -> float:
        """Check a ``speed`` argument (finite, > 0, its path fits in [0, 1]); return it as float."""
        if not _is_number(speed) or not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"speed must be a finite number > 0 (factor units per frame; the direction of "
                             f"motion is set by FlashLagProbe.directions), got {speed!r}; use one of the "
                             f"probe's speeds {self.speeds}.")
        self._check_frames(n_frames)
        self._check_reach(float(speed), n_frames)
        return float(speed)

    def _check_reach(self, v: float, n_frames: int) -> None:
        reach = max(self.flash_step, n_frames - 1 - self.flash_step)
        lo, hi = self.flash_along - v * reach, self.flash_along + v * reach
        if lo < 0 or hi > 1:
            raise ConfigError(
                f"FlashLagProbe: at speed {v:g} the circle travels {v * reach:.3g} factor units from the flash "
                f"({self.flash_step} steps before it, {n_frames - 1 - self.flash_step} after), leaving [0, 1] "
                f"(it reaches [{lo:.3g}, {hi:.3g}]); lower the speeds below "
                f"{min(self.flash_along, 1 - self.flash_along) / reach:.3g} or change flash_step / n_frames."
            )

    def factors(self, world, condition: str, speed: float, n_frames: int) -> np.ndarray:
        """The world's factors for one condition and speed.

        Parameters
        ----------
        world : MovingCircle or CircleOverBlob
            Supplies the factor layout (``factor_names``).

        Returns
        -------
        numpy.ndarray
            float64, shape (n_directions, n_frames, world.n_factors).

        Raises
        ------
        ValueError
            ``speed`` is not a finite number > 0, or its path leaves [0, 1]
            (ConfigError, as :meth:`check_fits`).
        """
        _check_world(world)
        self._check_speed(speed, n_frames)
        pos = self.circle_positions(condition, speed, n_frames)
        return self._fill(world, pos)

    def _fill(self, world, pos: np.ndarray) -> np.ndarray:
        names = tuple(world.factor_names)
        out = np.zeros(pos.shape[:2] + (len(names),))
        values = {"blob_x": self.blob[0], "blob_y": self.blob[1], "circle_x": pos[..., 0],
                  "circle_y": pos[..., 1]}
        if pos.shape[1] > 1:
            vel = np.diff(pos, axis=1, prepend=pos[:, :1])
            vel[:, 0] = pos[:, 1] - pos[:, 0]
        else:
            vel = np.zeros_like(pos)
        # The probe hides no circle behind an occluder (a world's circle_occluded is 0: drawn); the steps of
        # flash_initiated without a circle are blanked by `episode`, not by this factor.
        values.update(circle_vx=vel[..., 0], circle_vy=vel[..., 1], circle_occluded=0.0)
        for i, name in enumerate(names):
            if name not in values:
                raise ValueError(f"FlashLagProbe does not know the factor {name!r} of {type(world).__name__}.")
            out[..., i] = values[name]
        return out

    # ------------------------------------------------------------ rendering
    def episode(self, world, condition: str, speed: float, n_frames: int, *, show_flash: bool = True,
                device="cpu") -> Episode:
        """Render one condition at one speed.

        Parameters
        ----------
        world : MovingCircle
            The world whose renderer and factor layout are used.
        condition : str
            One of :data:`FLASH_CONDITIONS`.
        speed : float
            Factor units per frame, > 0; the path must stay in [0, 1] (as
            :meth:`check_fits` requires of ``speeds``).
        n_frames : int
            Steps (> flash_step).
        show_flash : bool
            Draw the flash disk at ``flash_step`` (composited over the frame,
            clipped at 1). The factors describe the moving circle only.
        device : str or torch.device

        Returns
        -------
        Episode
            frames (n_directions, n_frames, 1, size, size), factors
            (n_directions, n_frames, world.n_factors). Frames at steps where
            :meth:`circle_visible` is False show the blob alone; the factors
            there hold the flash's place and zero velocity (module docstring).
        """
        _check_world(world)
        _check_condition(condition)
        self.check_fits(n_frames)
        self._check_speed(speed, n_frames)
        _spec.check_device(device)
        f = torch.as_tensor(self.factors(world, condition, speed, n_frames), dtype=torch.float32, device=device)
        frames = world.render(f)
        hidden = torch.as_tensor(~self.circle_visible(condition, n_frames), device=frames.device)
        if bool(hidden.any()):
            frames = frames.clone()
            frames[:, hidden] = _spec.render_blob(world, f[:, hidden, :2])
        if show_flash:
            frames = frames.clone()
            frames[:, self.flash_step] = torch.clamp(frames[:, self.flash_step] + self.flash_disk(world, device),
                                                     0.0, 1.0)
        return Episode(frames, f, tuple(world.factor_names))

    def flash_disk(self, world, device="cpu") -> torch.Tensor:
        """The flash alone (no blob, no circle): float32 (n_directions, 1, size, size)."""
        _check_world(world)
        _spec.check_device(device)
        radius = world.radius if self.flash_radius is None else self.flash_radius
        alone = attrs.evolve(world, blob_brightness=0.0, radius=radius)
        f = np.zeros((len(self.directions), 4))
        f[:, :2] = self.blob
        f[:, 2:4] = self.flash_positions()
        return alone.render(torch.as_tensor(f, dtype=torch.float32, device=device))

    def reference_episode(self, world, n_frames: int, *, device="cpu") -> Episode:
        """The flash as a static object: the circle resting at the flash's place on every frame.

        Returns
        -------
        Episode
            frames (n_directions, n_frames, 1, size, size), factors with the
            circle at :meth:`flash_positions` and zero velocity.
        """
        _check_world(world)
        self._check_frames(n_frames)
        _spec.check_device(device)
        pos = np.repeat(self.flash_positions()[:, None], n_frames, axis=1)
        f = torch.as_tensor(self._fill(world, pos), dtype=torch.float32, device=device)
        return Episode(world.render(f), f, tuple(world.factor_names))
