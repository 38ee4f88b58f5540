"""The flash-lag of linear circuits in closed form, and the readout rules (see :mod:`neurodelay.analysis.flash_lag`).

:func:`impulse_response` gives the response of the three linear circuit
classes (pure delay, feed-forward extrapolation, recurrent inertia) and
:func:`flash_lag_theory` the flash-lag they show in each condition and under
each readout rule, transients included; docs/flash-lag.md derives it.
"""

from __future__ import annotations

import numbers

import numpy as np

from neurodelay.worlds.flash import FLASH_CONDITIONS

__all__ = ["READ_RULES", "impulse_response", "flash_lag_theory"]

#: The times at which a flash-lag percept can be read (``read_at``).
READ_RULES = ("first", "latency", "postdiction")
#: Default ``latency_steps`` of ``read_at="latency"`` and ``window_steps`` of ``read_at="postdiction"``.
DEFAULT_LATENCY_STEPS = 2
DEFAULT_WINDOW_STEPS = 4
_CIRCUITS = ("delay", "extrapolation", "inertia")


# --------------------------------------------------------------------------
# Readout rules
# --------------------------------------------------------------------------

def _check_int(name: str, value, low: int, example: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low} (steps), got {value!r}; use e.g. {name}={example}.")
    return int(value)


def _check_read_at(read_at) -> str:
    if not isinstance(read_at, str) or read_at not in READ_RULES:
        raise ValueError(f"read_at must be one of 'first' (at the flash's first representation), 'latency' "
                         f"(latency_steps after it) or 'postdiction' (averaged over window_steps from it), got "
                         f"{read_at!r}.")
    return read_at


def _read_rule(read_at, latency_steps, window_steps) -> tuple[str, int, int, dict]:
    """Check a readout rule; return (read_at, first offset read, steps read, attributes to record)."""
    read_at = _check_read_at(read_at)
    for name, value, rule in (("latency_steps", latency_steps, "latency"),
                              ("window_steps", window_steps, "postdiction")):
        if value is not None and read_at != rule:
            raise ValueError(f"{name} applies to read_at={rule!r} only, got {name}={value!r} with "
                             f"read_at={read_at!r}; drop {name} or pass read_at={rule!r}.")
    if read_at == "latency":
        lat = _check_int("latency_steps", DEFAULT_LATENCY_STEPS if latency_steps is None else latency_steps, 0,
                         DEFAULT_LATENCY_STEPS)
        return read_at, lat, 1, {"latency_steps": lat}
    if read_at == "postdiction":
        win = _check_int("window_steps", DEFAULT_WINDOW_STEPS if window_steps is None else window_steps, 1,
                         DEFAULT_WINDOW_STEPS)
        return read_at, 0, win, {"window_steps": win}
    return read_at, 0, 1, {}


# --------------------------------------------------------------------------
# Theory
# --------------------------------------------------------------------------

def impulse_response(circuit: str, n_steps: int, *, horizon_steps: float = 0.0, gamma: float = 0.0,
                     alpha: float = 1.0) -> np.ndarray:
    """Impulse response of a linear circuit class, from its conduction delay on.

    Parameters
    ----------
    circuit : {"delay", "extrapolation", "inertia"}
        Pure delay (``g = (1)``); feed-forward extrapolation of the delayed
        signal by ``horizon_steps`` (``g = (1 + h, -h)``); recurrent inertia
        ``z_t = (1 - gamma) u_t + gamma (z_(t-1) + alpha (z_(t-1) -
        z_(t-2)))``.
    n_steps : int
        Length (>= 1); a finite response is padded with zeros.
    horizon_steps : float
        ``h``, for ``extrapolation``.
    gamma, alpha : float
        For ``inertia``; ``gamma`` in [0, 1).

    Returns
    -------
    numpy.ndarray
        float64, shape (n_steps,): ``g[n]``, the weight of the input ``n``
        steps before (after the delay). Its whole response sums to 1.
    """
    if circuit not in _CIRCUITS:
        raise ValueError(f"circuit must be one of {_CIRCUITS}, got {circuit!r}.")
    n_steps = _check_int("n_steps", n_steps, 1, 16)
    for name, value in (("horizon_steps", horizon_steps), ("gamma", gamma), ("alpha", alpha)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}.")
    g = np.zeros(n_steps)
    if circuit == "delay":
        g[0] = 1.0
    elif circuit == "extrapolation":
        g[0] = 1.0 + horizon_steps
        if n_steps > 1:
            g[1] = -float(horizon_steps)
        elif horizon_steps != 0:
            raise ValueError(f"n_steps must be >= 2 for an extrapolation (its response has 2 terms), got {n_steps}.")
    else:
        if not 0.0 <= gamma < 1.0:
            raise ValueError(f"gamma must be in [0, 1) for an inertia response (gamma = 1 never follows its "
                             f"input), got {gamma!r}.")
        a, b = gamma * (1.0 + alpha), -gamma * alpha
        for n in range(n_steps):
            g[n] = (1.0 - gamma) * (n == 0) + (a * g[n - 1] if n >= 1 else 0.0) + (b * g[n - 2] if n >= 2 else 0.0)
    return g


def _ramp_response(g: np.ndarray, k: int) -> float:
    """R(k) = sum_(n<=k) (k - n) g_n: a motion started k steps ago from rest, in steps of motion."""
    if k <= 0:
        return 0.0
    m = min(k + 1, g.shape[0])
    return float(((k - np.arange(m)) * g[:m]).sum())


def _theory_at(g: np.ndarray, condition: str, t_f: int, k: int) -> float:
    """Flash-lag read k steps after the flash's first representation, in steps of motion."""
    r, r_f = _ramp_response(g, k), _ramp_response(g, t_f + k)
    if condition == "standard":
        return r_f - t_f
    if condition in ("flash_initiated", "rest_then_move"):
        return r
    if condition == "flash_terminated":
        return r_f - t_f - r
    return t_f - r_f + 2.0 * r  # reversal


def flash_lag_theory(kernel, condition: str, *, flash_step: int, read_at: str = "first",
                     latency_steps: int | None = None, window_steps: int | None = None) -> float:
    """The flash-lag of a linear circuit, in steps of motion (module docstring).

    Parameters
    ----------
    kernel : array_like, shape (n,)
        Impulse response of the representation to its delayed input
        (:func:`impulse_response`), with unit DC gain (its whole response
        sums to 1); only its first ``flash_step + last offset read + 1``
        terms matter, and terms past its end are 0.
    condition : str
        One of :data:`~neurodelay.worlds.flash.FLASH_CONDITIONS`
        (``flash_initiated`` as a circuit that takes the circle's appearance
        as the start of its input: the same as ``rest_then_move``).
    flash_step : int
        ``t_f``: steps of the sequence before the flash (the start-up).
    read_at, latency_steps, window_steps
        The readout rule, as :func:`flash_lag`.

    Returns
    -------
    float
        Flash-lag divided by the speed: steps (times the speed in px per
        step for px, times ``dt_ms`` for ms). The delay drops out.
    """
    g = np.asarray(kernel, dtype=np.float64)
    if g.ndim != 1 or g.shape[0] < 1 or not np.isfinite(g).all():
        raise ValueError(f"kernel must be a 1-D array of finite numbers with at least one term, got shape "
                         f"{g.shape}; build one with impulse_response(...).")
    if not isinstance(condition, str) or condition not in FLASH_CONDITIONS:
        raise ValueError(f"condition must be one of {FLASH_CONDITIONS}, got {condition!r}.")
    t_f = _check_int("flash_step", flash_step, 1, 8)
    _, offset, n, _ = _read_rule(read_at, latency_steps, window_steps)
    return float(np.mean([_theory_at(g, condition, t_f, k) for k in range(offset, offset + n)]))
