"""Traces of a built circuit: which trace a name stands for, and when a stimulus first reaches it.

Used by the analyses that show a circuit new stimuli (:mod:`neurodelay.analysis.flash_lag`,
:mod:`neurodelay.analysis.traversals`).
"""

from __future__ import annotations

from neurodelay.circuit import AUX_TRACES
from neurodelay.record import variable_name

__all__ = ["perception_latency", "trace_name"]


def perception_latency(module, node: str) -> int:
    """First valid step of a node: the steps a stimulus needs to reach it.

    Parameters
    ----------
    module : CircuitModule
    node : str
        A node, or an auxiliary trace ``<node>_mu`` / ``<node>_logvar``.

    Returns
    -------
    int
        Steps.

    Raises
    ------
    TypeError
        ``module`` is not a built circuit.
    KeyError
        ``node`` is neither a node nor an auxiliary trace of one.
    """
    plan = getattr(module, "plan", None)
    if plan is None or not hasattr(plan, "valid_from"):
        raise TypeError(f"module must be a built circuit (CircuitModule), got {type(module).__name__}; "
                        f"build it with neurodelay.build_seeded(circuit, world=world).")
    valid = plan.valid_from
    if node in valid:
        return int(valid[node])
    base, _, extra = str(node).rpartition("_")
    if base in module.circuit.nodes and extra in AUX_TRACES:
        return int(valid[base])
    raise KeyError(f"node={node!r} is not a node of the circuit ({', '.join(module.circuit.nodes)}) nor an "
                   f"auxiliary trace <node>_{'/_'.join(AUX_TRACES)} of one.")


def trace_name(module, name: str) -> str:
    """The circuit trace that ``name`` stands for: a trace (node or ``<node>_mu`` / ``<node>_logvar``) itself,
    or the results variable of one (``simulate`` stores a trace named like a results variable or dimension,
    e.g. a node ``latent``, as ``node_latent``); ``name`` unchanged if it is neither."""
    circuit = getattr(module, "circuit", None)
    nodes = getattr(circuit, "nodes", None)
    if not isinstance(nodes, dict):
        return name
    traces = set(nodes) | {f"{n}_{k}" for n in nodes for k in AUX_TRACES}
    if name in traces:
        return name
    for trace in sorted(traces):
        if variable_name(trace, taken=traces - {trace}) == name:
            return trace
    return name
