"""Theory matched to the experiment: a circuit's linear loop driven by the true circle position.

A trained circuit is compared with what its own linear parts (blends,
extrapolators, relays, delays) would do if its encoder reported the circle's
position perfectly: the *theory circuit*. It is made from the circuit spec by
:func:`theory_circuit`:

* every ancestor of the representation node that is linear in its inputs
  (its component has ``linear_taps``) is kept, with its edges and delays;
* every ancestor that is not linear but reads only the world's frames (an
  encoder area) becomes a :class:`~neurodelay.components.Relay` of the world's
  factors, reached through the same edge and delay: it reports the true
  factors where the area had to infer them from the frames;
* anything else (a nonlinear node fed by another node, a learned delay)
  leaves no theory, and the reason is returned instead.

:func:`theory_trace` runs that circuit on given factor trajectories (the
evaluation set's: transients, sequence length and start-up included) and
returns the representation's circle-position channels;
:func:`steady_state_lag` drives it with a long ramp and reads the lag it
settles to (for inertia, ``d + gamma (1 - alpha) / (1 - gamma)`` steps).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from neurodelay.circuit import Circuit, Edge
from neurodelay.components import Relay
from neurodelay.worlds.episode import Episode
from neurodelay.simulation import simulate
from neurodelay.analysis._dataset import CIRCLE_FACTORS, DEFAULT_LAGS
from neurodelay.analysis.lag import representational_lag

__all__ = ["theory_circuit", "theory_trace", "steady_state_lag", "theory_lag"]

_FRAMES, _FACTORS = "world.frames", "world.factors"


def _ancestors(circuit: Circuit, node: str) -> set[str]:
    seen, todo = set(), [node]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(e.source for e in circuit.edges if e.target_node == n and not e.source.startswith("world."))
    return seen


def theory_circuit(circuit: Circuit, node: str) -> tuple[Circuit | None, str | None]:
    """The linear theory circuit of ``node`` (see the module docstring).

    Returns
    -------
    (Circuit or None, str or None)
        The theory circuit, whose node ``node`` carries the world's factors
        through the linear loop, or None and the reason there is none.
    """
    if node not in circuit.nodes:
        return None, f"node {node!r} is not a node of the circuit"
    keep = _ancestors(circuit, node)
    nodes, edges = {}, []
    for name in sorted(keep):
        comp = circuit.nodes[name]
        incoming = [e for e in circuit.edges if e.target_node == name]
        if any(e.learn_delay for e in incoming):
            return None, f"the delay into {name!r} is learned (the theory takes the delays of the spec)"
        if any(np.ndim(e.delay_ms) > 0 for e in incoming):
            return None, f"an edge into {name!r} has per-channel delays (one per latent, not per factor)"
        if comp.learns_taps():
            return None, f"the taps of {name!r} are learned (the theory takes the weights of the spec)"
        if comp.linear_taps() is not None:
            nodes[name] = comp
            edges.extend(e for e in incoming)
        elif incoming and all(e.source == _FRAMES for e in incoming):
            nodes[name] = Relay()
            edges.extend(Edge(_FACTORS, name, delay_ms=e.delay_ms, fractional=e.fractional) for e in incoming)
        else:
            return None, (f"node {name!r} ({type(comp).__name__}) is not linear and does not read the world's "
                          f"frames alone")
    if not any(e.source == _FACTORS for e in edges):
        return None, f"no encoder area reads the world's frames on the way to {node!r}"
    return Circuit(nodes=nodes, edges=edges, dt_ms=circuit.dt_ms), None


def theory_trace(theory: Circuit, node: str, factors: np.ndarray, factor_names, channels) -> np.ndarray:
    """Run the theory circuit on factor trajectories.

    Parameters
    ----------
    theory : Circuit
        From :func:`theory_circuit`.
    node : str
    factors : numpy.ndarray, shape (n, T, F)
    factor_names : sequence of str, length F
    channels : sequence of str
        The factors to return (e.g. ``("circle_x", "circle_y")``).

    Returns
    -------
    numpy.ndarray, shape (n, T, len(channels))
    """
    f = torch.as_tensor(np.asarray(factors, dtype=np.float64), dtype=torch.float64)
    ep = Episode(frames=torch.zeros(f.shape[0], f.shape[1], 1, 1, 1, dtype=torch.float64), factors=f,
                 factor_names=tuple(factor_names))
    ds = simulate(theory, ep)
    var = next(n for n, v in ds.data_vars.items() if v.attrs.get("node", n) == node)
    idx = [list(factor_names).index(c) for c in channels]
    return np.asarray(ds[var].values, dtype=np.float64)[..., idx]


def steady_state_lag(theory: Circuit, node: str, factor_names, channel: str = "circle_x", *,
                     n_steps: int = 400) -> tuple[float, str | None]:
    """The lag (steps) the theory circuit settles to on a constant-velocity ramp.

    The factor ``channel`` ramps at ``1 / n_steps`` per step for ``n_steps`` steps;
    the lag is ``(p[T] - z[T]) / v`` at the last step. NaN, with the reason,
    when the output does not settle (an unstable loop, ``gamma alpha >= 1``
    for inertia) to within 1e-3 steps over the last 10 steps (circuits run
    in float32: the lag is good to about 1e-4 steps).
    """
    names = list(factor_names)
    f = np.zeros((1, n_steps, len(names)))
    v = 1.0 / n_steps
    f[0, :, names.index(channel)] = v * np.arange(n_steps)
    z = theory_trace(theory, node, f, names, (channel,))[0, :, 0]
    lag = (f[0, :, names.index(channel)] - z) / v
    if not np.all(np.isfinite(lag[-11:])) or abs(lag[-1] - lag[-11]) > 1e-3:
        return float("nan"), (f"the linear loop does not settle on a constant-velocity ramp within {n_steps} steps "
                              f"(unstable, or slower than that)")
    return float(lag[-1]), None


def theory_lag(ds, circuit: Circuit | None, node: str, *, from_step: int, lags=None, seed: int = 0,
               pixels_per_unit: float | None = None):
    """The lag the theory circuit shows on the evaluation trajectories, and in steady state.

    The theory circuit of ``node`` (:func:`theory_circuit`) is driven by the
    evaluation set's own factors, and its circle-position channels are read
    by :func:`~neurodelay.analysis.lag.representational_lag` exactly as the
    trained representation is (same steps, split and candidate lags; no
    readout noise, so no gate and no interval): the lag a perfect encoder
    would give on these sequences, transients included. Beside it, the lag
    the loop settles to on an endless ramp (:func:`steady_state_lag`).

    Parameters
    ----------
    ds : xarray.Dataset
        Results of a moving world: ``factors`` (sample, time, factor).
    circuit : Circuit or None
        The circuit spec (None: no theory).
    node : str
        The representation node.
    from_step : int
        First step used (that of the trained representation's lag).
    lags, seed, pixels_per_unit
        As given to the trained representation's lag.

    Returns
    -------
    xarray.Dataset
        ``lag_theory_steps`` and ``lag_theory_steady_steps`` (scalars,
        steps; NaN with ``nan_reason`` where the circuit has no linear
        theory or the loop does not settle).
    """
    lags = DEFAULT_LAGS if lags is None else lags
    names = [str(n) for n in ds["factor"].values]
    transient, steady, why_t, why_s = float("nan"), float("nan"), None, None
    theory, why = (None, "no circuit spec was given") if circuit is None else theory_circuit(circuit, node)
    if theory is None:
        why_t = why_s = f"no linear theory: {why}"
    else:
        f = np.asarray(ds["factors"].values, dtype=np.float64)
        z = theory_trace(theory, node, f, names, CIRCLE_FACTORS)
        th = xr.Dataset({"factors": ds["factors"], "z_theory": (("sample", "time", "coordinate"), z)},
                        coords={"time": ds["time"]}, attrs={"dt_ms": float(circuit.dt_ms)})
        out = representational_lag(th, "z_theory", lags=lags, from_step=from_step, seed=seed, n_boot=0, min_r2=0.0,
                                   pixels_per_unit=pixels_per_unit or 1.0, max_velocity_gain=np.inf)
        transient = float(out["lag_steps"])
        why_t = out["lag_steps"].attrs.get("nan_reason")
        steady, why_s = steady_state_lag(theory, node, names)
    attrs = {"units": "steps"}
    return xr.Dataset({
        "lag_theory_steps": ((), transient, {**attrs, "long_name": "lag of the circuit's linear loop driven by the "
                                             "true circle position, on the evaluation trajectories, read by the "
                                             "same estimator", **({"nan_reason": why_t} if why_t else {})}),
        "lag_theory_steady_steps": ((), steady, {**attrs, "long_name": "lag the circuit's linear loop settles to "
                                                 "on constant-velocity motion (steady state)",
                                                 **({"nan_reason": why_s} if why_s else {})}),
    })
