"""The optimal observer of a delayed, noisy position: the steady-state Kalman filter and its lag-noise frontier.

The world is one coordinate of the circle (the two are independent). The
observer receives ``y[t] = p[t - d] + e[t]``: the position ``d`` steps late,
with white noise of variance ``r`` (a frame's pixel noise read as position),
and estimates the position now, ``p[t]``. Two models of the motion:

``"random_walk"``
    ``p[t + 1] = p[t] + w[t]``, ``w`` of variance ``q``: the observer
    assumes the position wanders. Its steady-state estimate is exponential
    smoothing, ``x[t] = x[t - 1] + K (y[t] - x[t - 1])``, which lags a ramp by
    ``d + (1 - K) / K`` steps and passes ``K / (2 - K)`` of the noise
    variance. This is the inertia circuit with ``alpha = 0`` and ``gamma = 1
    - K``: the frontier of this model is where inertia without
    extrapolation can land.
``"constant_velocity"``
    ``p[t + 1] = p[t] + v[t]``, ``v[t + 1] = v[t] + w[t]``: the observer
    assumes the velocity wanders. Its steady-state estimate of ``p[t - d]``
    and ``v[t - d]``, extrapolated ``d`` steps, follows a ramp with no lag
    and passes more of the noise the longer the extrapolation.

Both are computed, not simulated: the steady-state prior covariance is the
solution of the discrete algebraic Riccati equation
(``scipy.linalg.solve_discrete_are``), the gain ``K = P H' (H P H' + r)^-1``.
Sweeping the ratio ``q / r`` (how much the observer trusts the motion model
against the observations) traces each model's trade-off between lag (steps)
and noise (the estimate's variance over ``r``), a *frontier* on which
trained circuits can be placed by their measured lag and readout noise.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.linalg import solve_discrete_are
from scipy.optimize import minimize_scalar

__all__ = ["MODELS", "steady_state_gain", "observer_lag_noise", "frontier", "kalman_noise_at_lag", "best_horizon",
           "memory_frontier"]

#: Motion models of the observer.
MODELS = ("random_walk", "constant_velocity")


def _system(model: str, q: float):
    if model == "random_walk":
        return np.array([[1.0]]), np.array([[1.0]]), np.array([[q]])
    if model == "constant_velocity":
        return np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([[1.0, 0.0]]), np.array([[0.0, 0.0], [0.0, q]])
    raise ValueError(f"model must be one of {MODELS}, got {model!r}.")


def steady_state_gain(model: str, q_over_r: float) -> tuple[np.ndarray, np.ndarray]:
    """Steady-state Kalman gain K (n, 1) and filtered error covariance P (n, n), in units of ``r``.

    Parameters
    ----------
    model : {"random_walk", "constant_velocity"}
    q_over_r : float
        Process noise variance over observation noise variance, > 0.
    """
    if not np.isfinite(q_over_r) or q_over_r <= 0:
        raise ValueError(f"q_over_r must be a finite number > 0, got {q_over_r!r}; use e.g. 0.1.")
    f, h, q = _system(model, float(q_over_r))
    prior = solve_discrete_are(f.T, h.T, q, np.array([[1.0]]))  # r = 1: everything in units of r
    k = prior @ h.T @ np.linalg.inv(h @ prior @ h.T + 1.0)
    post = (np.eye(f.shape[0]) - k @ h) @ prior
    return k, post


def observer_lag_noise(model: str, q_over_r: float, delay_steps: float) -> tuple[float, float]:
    """Lag on a ramp (steps) and noise gain of the optimal observer of ``p[t]`` from ``y[t] = p[t - d] + e``.

    The steady-state filter is a linear time-invariant map from the
    observations to the estimate, ``x[t] = sum_k h[k] y[t - k]`` with
    ``h[k] = c F^d A^k K`` (``A = (I - K H) F``; the filtered state
    extrapolated ``d`` steps). On constant-velocity motion it lags by
    ``d + sum_k k h[k]`` steps (its gain ``sum_k h[k]`` is 1), and it passes
    ``sum_k h[k]^2`` of the observation noise's variance (the noise gain; a
    discrete Lyapunov equation).

    Returns
    -------
    (float, float)
        The lag in steps (``d + (1 - K) / K`` for the random walk, 0 for
        the constant-velocity model) and the noise gain (``K / (2 - K)``
        for the random walk).
    """
    from scipy.linalg import solve_discrete_lyapunov

    if not np.isfinite(delay_steps) or delay_steps < 0 or delay_steps != int(delay_steps):
        raise ValueError(f"delay_steps must be a whole number of steps >= 0, got {delay_steps!r}.")
    k, _ = steady_state_gain(model, q_over_r)
    f, h, _ = _system(model, float(q_over_r))
    n = f.shape[0]
    a = (np.eye(n) - k @ h) @ f
    out = np.linalg.matrix_power(f, int(delay_steps))[:1]  # c F^d
    inv = np.linalg.inv(np.eye(n) - a)
    dc = float((out @ inv @ k)[0, 0])
    first_moment = float((out @ a @ inv @ inv @ k)[0, 0])
    lag = float(delay_steps) + first_moment / dc
    x = solve_discrete_lyapunov(a, k @ k.T)
    noise = float((out @ x @ out.T)[0, 0])
    return lag, noise


def frontier(model: str, delay_steps: float, q_over_r=None) -> xr.Dataset:
    """Lag and noise of the optimal observer over a range of ``q / r`` (its trade-off curve).

    Returns
    -------
    xarray.Dataset
        ``observer_lag_steps`` and ``observer_noise`` (the noise gain: the
        estimate's variance from observation noise of variance ``r``, over
        ``r``) over ``q_over_r`` (default: 41 values from 1e-4 to 1e4), and
        for the random walk ``observer_gain`` (K, so that inertia with
        ``gamma = 1 - K`` and ``alpha = 0`` is that observer).
    """
    qs = np.logspace(-4, 4, 41) if q_over_r is None else np.asarray(q_over_r, dtype=np.float64)
    lag, noise, gain = [], [], []
    for x in qs:
        a, b = observer_lag_noise(model, float(x), delay_steps)
        lag.append(a)
        noise.append(b)
        gain.append(float(steady_state_gain(model, float(x))[0][0, 0]))
    return xr.Dataset(
        {"observer_lag_steps": ("q_over_r", np.array(lag), {"units": "steps", "long_name": "steady-state lag of "
                                                            "the optimal observer on constant-velocity motion"}),
         "observer_noise": ("q_over_r", np.array(noise), {"units": "1", "long_name": "noise gain of the optimal "
                                                          "observer: its estimate's variance over the observation "
                                                          "noise's"}),
         "observer_gain": ("q_over_r", np.array(gain), {"units": "1", "long_name": "steady-state Kalman gain "
                                                        "of the position"})},
        coords={"q_over_r": ("q_over_r", qs, {"units": "1", "long_name": "process noise over observation noise"})},
        attrs={"model": model, "delay_steps": float(delay_steps)},
    )


def kalman_noise_at_lag(q_over_r: float, delay_steps: float, lag_steps) -> np.ndarray:
    """Noise gain of the steady-state constant-velocity Kalman observer read out to lag a ramp by ``lag_steps``.

    The filter of :func:`observer_lag_noise` (model ``"constant_velocity"``)
    estimates the position and velocity ``d`` steps ago; extrapolated ``d``
    steps it reports the present (lag 0), extrapolated ``m = d - lag`` steps
    (``c F^m = (1, m)``, any real ``m``) it follows a ramp ``lag`` steps late,
    and for ``0 <= lag <= d`` it is the filter's minimum mean-square estimate
    of the position ``lag`` steps ago. Its noise gain is ``(1, m) X (1, m)'``
    with ``X`` the steady-state covariance the observation noise leaves in
    the filtered state (a discrete Lyapunov equation), so the observer's
    lag-noise trade-off at a given ``q / r`` is computed, not simulated.

    ``q / r`` is how fast the observer assumes the velocity wanders (per
    step, against the observation noise): the gain at every lag falls to 0
    as ``q / r`` falls to 0, the limit of unbounded memory of a path whose
    velocity never changes (the ``"linear"`` world's). :func:`memory_frontier`
    is the bound for a finite memory.

    Parameters
    ----------
    q_over_r : float
        Process noise over observation noise, > 0.
    delay_steps : float
        ``d`` >= 0, a whole number of steps.
    lag_steps : float or array-like
        Lags on a ramp (steps).

    Returns
    -------
    numpy.ndarray
        The noise gain (estimate's variance over ``r``) at each lag (the shape of ``lag_steps``).
    """
    from scipy.linalg import solve_discrete_lyapunov

    if not np.isfinite(delay_steps) or delay_steps < 0 or delay_steps != int(delay_steps):
        raise ValueError(f"delay_steps must be a whole number of steps >= 0, got {delay_steps!r}.")
    lag = np.asarray(lag_steps, dtype=np.float64)
    if not np.all(np.isfinite(lag)):
        raise ValueError(f"lag_steps must be finite, got {lag_steps!r}.")
    k, _ = steady_state_gain("constant_velocity", q_over_r)
    f, h, _ = _system("constant_velocity", float(q_over_r))
    x = solve_discrete_lyapunov((np.eye(2) - k @ h) @ f, k @ k.T)
    out = np.stack([np.ones_like(lag), float(delay_steps) - lag], axis=-1)
    return np.einsum("...i,ij,...j->...", out, x, out)


def best_horizon(world, delay_steps: int, *, n: int = 2048, seed: int = 0, from_step: int = 5) -> dict:
    """The extrapolation horizon that best reports the present from a delayed position, for ``world``'s motion.

    An extrapolator reading the circle's position ``d`` steps late reports
    ``p(t - d) + alpha (p(t - d) - p(t - d - 1))``. For a perfect, noise-free
    encoder the ``alpha`` with the least squared error against the present
    ``p(t)`` is a least-squares slope over the world's own paths: ``d`` for
    linear motion; less where the circle turns (a reversal makes the
    extrapolation overshoot). It is the horizon a circuit trained only to
    report the present should learn when its encoder is perfect; encoder
    noise, which extrapolation amplifies, pulls it lower.

    With an occluder (a world whose factors include ``circle_occluded``) the
    perfect encoder sees no circle on the hidden frames: there it reports
    the one position that is best given ``alpha`` (fitted with it, by least
    squares; the blob tells nothing of the circle), and ``alpha`` is found by
    a bounded search in ``[-2, d + 2]``. Extrapolating then amplifies the
    jumps between a frame with the circle and one without, so the best
    horizon falls far below ``d`` (about -0.2 for ``d = 3`` and 4 of 16
    frames hidden).

    Parameters
    ----------
    world : MovingCircle
        Its ``trajectories(n, seed)`` are used (both coordinates pooled).
    delay_steps : int
        ``d`` >= 0.
    n, seed : int
        Paths drawn.
    from_step : int
        First step scored (as a study's ``score_from_step``); at least ``d + 1``.

    Returns
    -------
    dict
        ``alpha`` (steps), ``rmse`` at it and ``rmse_at_delay`` at ``alpha = d``
        (factor units, per coordinate); with an occluder also
        ``hidden_report``, the (x, y) reported on hidden frames at ``alpha``.
    """
    d = int(delay_steps)
    if d < 0:
        raise ValueError(f"delay_steps must be >= 0, got {delay_steps!r}.")
    f = np.asarray(world.trajectories(int(n), seed=seed))
    p = f[..., 2:4]
    t = np.arange(max(int(from_step), d + 1), p.shape[1])
    if len(t) == 0:
        raise ValueError(f"no step to score: from_step {from_step} with {p.shape[1]} frames and delay {d}.")
    names = tuple(getattr(world, "factor_names", ()))
    if "circle_occluded" in names:
        return _best_horizon_occluded(p, f[..., names.index("circle_occluded")] > 0.5, t, d)
    y = (p[:, t] - p[:, t - d]).ravel()
    x = (p[:, t - d] - p[:, t - d - 1]).ravel()
    alpha = float(x @ y / (x @ x)) if x @ x > 0 else 0.0
    return {"alpha": alpha, "rmse": float(np.sqrt(np.mean((y - alpha * x) ** 2))),
            "rmse_at_delay": float(np.sqrt(np.mean((y - d * x) ** 2)))}


def _best_horizon_occluded(p: np.ndarray, hidden: np.ndarray, t: np.ndarray, d: int) -> dict:
    """:func:`best_horizon` where a perfect encoder reports a fitted constant ``c`` on the hidden frames."""
    h0, h1 = hidden[:, t - d], hidden[:, t - d - 1]
    e0 = np.where(h0[..., None], 0.0, p[:, t - d])  # the visible part of the encoder's output
    e1 = np.where(h1[..., None], 0.0, p[:, t - d - 1])

    def fit(alpha):
        coef = (1 + alpha) * h0 - alpha * h1  # how much of c the report holds: p(t) - report = r - coef c
        r = p[:, t] - ((1 + alpha) * e0 - alpha * e1)
        cc = float((coef**2).sum())
        c = (coef[..., None] * r).sum((0, 1)) / cc if cc > 0 else np.zeros(2)
        return float(np.mean((r - coef[..., None] * c) ** 2)), c

    best = minimize_scalar(lambda a: fit(a)[0], bounds=(-2.0, d + 2.0), method="bounded",
                           options={"xatol": 1e-4})
    mse, c = fit(float(best.x))
    return {"alpha": float(best.x), "rmse": float(np.sqrt(mse)), "rmse_at_delay": float(np.sqrt(fit(float(d))[0])),
            "hidden_report": c}


def memory_frontier(delay_steps: float, n_taps: int, lag_steps) -> np.ndarray:
    """Least noise gain of any linear observer with ``n_taps`` steps of memory that lags a ramp by ``lag_steps``.

    The observer ``x[t] = sum_{k < n} h[k] y[t - k]`` of ``y[t] = p[t - d] + e[t]``
    (``e`` white, variance ``r``) follows a ramp with lag ``d + sum_k k h[k]``
    if ``sum_k h[k] = 1``, and passes ``sum_k h[k]^2`` of the noise's variance.
    The least such gain at a given lag is a least-norm problem with two
    constraints, solved in closed form: ``b' (A A')^-1 b`` with ``A`` the rows
    ``(1, ..., 1)`` and ``(0, 1, ..., n - 1)``, ``b = (1, lag - d)``. Two taps
    leave one observer per lag, the extrapolator ``h = (1 + alpha, -alpha)``
    (gain ``(1 + alpha)^2 + alpha^2`` at lag ``d - alpha``): a circuit that
    extrapolates from its last two inputs is on its own frontier by
    construction, and this curve for more taps says how much noise memory
    would save at the same lag (the steady-state Kalman filter of
    :func:`frontier` is the limit of unbounded memory for its motion model).
    For paths of constant velocity it is what the Kalman filter of that
    motion (no process noise, started with no prior) passes after ``n``
    observations: the least-squares line through them, read at the lag; its
    steady state passes nothing (:func:`kalman_noise_at_lag` as ``q / r`` falls to 0).

    Parameters
    ----------
    delay_steps : float
        ``d`` >= 0.
    n_taps : int
        Steps of memory, >= 2.
    lag_steps : float or array-like
        Lags on a ramp (steps) at which to evaluate.

    Returns
    -------
    numpy.ndarray
        The least noise gain at each lag (the shape of ``lag_steps``).
    """
    n = int(n_taps)
    if n < 2:
        raise ValueError(f"n_taps must be >= 2 (a lag other than the delay needs two taps), got {n_taps!r}.")
    if not np.isfinite(delay_steps) or delay_steps < 0:
        raise ValueError(f"delay_steps must be a finite number >= 0, got {delay_steps!r}.")
    k = np.arange(n, dtype=np.float64)
    gram = np.array([[n, k.sum()], [k.sum(), (k ** 2).sum()]])
    lag = np.asarray(lag_steps, dtype=np.float64)
    b = np.stack([np.ones_like(lag), lag - float(delay_steps)], axis=-1)
    return np.einsum("...i,ij,...j->...", b, np.linalg.inv(gram), b)
