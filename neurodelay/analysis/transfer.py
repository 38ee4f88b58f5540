"""Gamma transfer: a trained circuit evaluated with its blend's gamma changed.

The original study trained its inertia autoencoder at one gamma (0.75) and
then applied other gammas only when evaluating it. :func:`gamma_transfer`
does exactly that, on purpose and labelled as such: the trained parameters
are kept, the circuit is rebuilt with the Blend's ``gamma`` replaced by each
evaluation value, and the study's evaluation set is run through it. It
records the reconstruction error and the representational lag for every
evaluation gamma, so that a model trained at gamma can be set beside models
trained at each evaluation gamma (a sweep over ``circuit.gamma``).
"""

from __future__ import annotations

import attrs
import numpy as np
import xarray as xr

from neurodelay.analysis.lag import representational_lag
from neurodelay.circuit import world_shapes
from neurodelay.components.temporal import Blend
from neurodelay.results import add_reconstruction, evaluate

__all__ = ["EVAL_GAMMAS", "blend_nodes", "gamma_transfer"]

#: Evaluation gammas: the original's ``linspace(0, 1, 6)``.
EVAL_GAMMAS = tuple(float(g) for g in np.linspace(0.0, 1.0, 6))


def blend_nodes(circuit) -> list[str]:
    """Names of the circuit's Blend nodes."""
    return [n for n, s in circuit.nodes.items() if isinstance(s, Blend)]


def gamma_transfer(module, study, device: str = "cpu", gammas=EVAL_GAMMAS, *, node: str | None = None,
                   representation: str | None = None) -> xr.Dataset:
    """Evaluate a trained circuit with its Blend's gamma replaced by each of ``gammas``.

    Parameters
    ----------
    module : CircuitModule
        The trained circuit.
    study : Study
        The run's study: its evaluation set, world and objective (the
        reconstruction is scored as in training: same target offset and
        first scored step).
    device : str
    gammas : sequence of float in [0, 1]
        Evaluation gammas.
    node : str, optional
        The Blend node (default: the circuit's only Blend).
    representation : str, optional
        The trace whose lag is measured (default: the Blend node).

    Returns
    -------
    xarray.Dataset
        Over ``eval_gamma``: ``transfer_reconstruction_mse`` (NaN without an
        image node), ``transfer_lag_steps`` and ``transfer_position_error_px``
        (signed error along the motion; negative = behind), with the trained
        gamma in the attribute ``trained_gamma``.
    """
    circuit = module.circuit
    blends = blend_nodes(circuit)
    if node is None:
        if len(blends) != 1:
            raise ValueError(f"node=None: the circuit has {len(blends)} Blend nodes ({', '.join(blends) or 'none'}); "
                             f"name the one whose gamma to change.")
        node = blends[0]
    elif node not in blends:
        raise ValueError(f"node={node!r} is not a Blend node of the circuit "
                         f"(Blend nodes: {', '.join(blends) or 'none'}).")
    gammas = [float(g) for g in gammas]
    bad = [g for g in gammas if not 0.0 <= g <= 1.0]
    if bad or not gammas:
        raise ValueError(f"gammas must be a non-empty list of numbers in [0, 1], got {gammas!r}.")
    representation = representation or node
    state = module.state_dict()
    shapes = world_shapes(study.world)
    mse, lag, err = [], [], []
    for g in gammas:
        nodes = dict(circuit.nodes)
        nodes[node] = attrs.evolve(nodes[node], gamma=g)
        variant = type(circuit)(nodes=nodes, edges=circuit.edges, dt_ms=circuit.dt_ms)
        m = variant.build(input_shapes=shapes)
        m.load_state_dict(state)
        m.to(device)
        m.eval()
        ds, names = evaluate(m, study, device)
        add_reconstruction(ds, study, m, names)
        mse.append(float(ds["reconstruction_mse"]) if "reconstruction_mse" in ds else float("nan"))
        var = names.get(representation, representation)
        res = representational_lag(ds, var)
        lag.append(float(res["lag_steps"]))
        err.append(float(res["position_error_px"]))
    trained = float(circuit.nodes[node].gamma)
    coord = {"eval_gamma": ("eval_gamma", np.asarray(gammas), {
        "units": "1", "long_name": f"gamma of blend {node!r} applied at evaluation only"})}
    return xr.Dataset({
        "transfer_reconstruction_mse": ("eval_gamma", np.asarray(mse), {
            "units": "1", "long_name": "reconstruction error per pixel with gamma changed at evaluation"}),
        "transfer_lag_steps": ("eval_gamma", np.asarray(lag), {
            "units": "steps", "long_name": f"representational lag of {representation!r} with gamma changed at "
                                           f"evaluation"}),
        "transfer_position_error_px": ("eval_gamma", np.asarray(err), {
            "units": "px", "long_name": "signed decoded position error along the motion (negative = behind)"}),
    }, coords=coord, attrs={"trained_gamma": trained, "blend_node": node})
