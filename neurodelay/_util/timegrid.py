"""The simulation time grid: converting times in ms to steps, with clear errors."""

from __future__ import annotations

import math

import numpy as np

from ..errors import TimeGridError

#: Relative tolerance when deciding that a time is a whole number of steps.
_RTOL = 1e-9


def ms_to_steps(value_ms, dt_ms: float, *, what: str, fractional: bool = False, field: str = "delay_ms",
                edge: int | None = None):
    """Convert a time (or a vector of times) in ms to steps of ``dt_ms``.

    Parameters
    ----------
    value_ms : float or sequence of float
        Time in ms, or one time per channel.
    dt_ms : float
        The simulation step in ms.
    what : str
        What the time is, for error messages (e.g. ``"edge 'enc' -> 'z'"``).
    fractional : bool
        Allow times that fall between steps. Otherwise a time must be a whole
        number of steps.
    field, edge : str, int or None
        The key the time is written under and the index of its edge: given
        to the error as data (:class:`~neurodelay.errors.ConfigError`).

    Returns
    -------
    float or numpy.ndarray
        Steps (float, whole numbers unless ``fractional``), same layout as
        ``value_ms``.

    Raises
    ------
    TimeGridError
        If a time is negative, not finite, or (without ``fractional``) not a
        whole number of steps; the message names the nearest valid values.
    """
    values = np.atleast_1d(np.asarray(value_ms, dtype=float))
    if not np.all(np.isfinite(values)):
        raise TimeGridError(f"{what}: delay_ms must be finite, got {value_ms!r}.", field=field, edge=edge,
                            value=value_ms)
    if np.any(values < 0):
        raise TimeGridError(
            f"{what}: delay_ms must be >= 0 (signals cannot arrive before they are sent), "
            f"got {value_ms!r}. Use 0 for an instantaneous connection.", field=field, edge=edge, value=value_ms
        )
    steps = values / dt_ms
    if not fractional:
        whole = np.round(steps)
        bad = np.abs(steps - whole) > _RTOL * np.maximum(1.0, np.abs(steps))
        if np.any(bad):
            v = float(values[bad][0])
            lo = math.floor(v / dt_ms) * dt_ms
            hi = math.ceil(v / dt_ms) * dt_ms
            raise TimeGridError(
                f"{what}: delay_ms={_fmt(v)} is not a whole number of steps of "
                f"dt_ms={_fmt(dt_ms)}. Nearest valid values: {_fmt(lo)} or {_fmt(hi)} ms "
                f"(or set fractional: true to interpolate between steps).", field=field, edge=edge, value=v
            )
        steps = whole
    if np.ndim(value_ms) == 0:
        return float(steps[0])
    return steps


def _fmt(x: float) -> str:
    return f"{x:g}"
