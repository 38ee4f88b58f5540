"""Small builders shared by tests."""

from __future__ import annotations

import torch

from neurodelay import Blend, Circuit, Edge, Extrapolator, Relay
from neurodelay.testing.strategies import VECTOR as VEC
from neurodelay.testing.strategies import vector_shapes as shapes


def run(circuit: Circuit, x: torch.Tensor, mode: str = "auto") -> dict:
    """Run a circuit whose only input is a vector stream x (sample, time, channel)."""
    module = circuit.build(input_shapes=shapes(x.shape[-1]))
    return module({VEC: x}, mode=mode)


def relay_chain(delays_ms, dt_ms=10.0, **edge_kw) -> Circuit:
    """world.factors -> r0 -> r1 ... with the given delays on each edge."""
    nodes, edges, src = {}, [], VEC
    for i, d in enumerate(delays_ms):
        nodes[f"r{i}"] = Relay()
        edges.append(Edge(src, f"r{i}", delay_ms=d, **edge_kw))
        src = f"r{i}"
    return Circuit(nodes=nodes, edges=edges, dt_ms=dt_ms)


def linear_inertia(gamma: float, alpha: float, delay_steps: int, dt_ms: float = 10.0) -> Circuit:
    """The inertia loop on a vector input (no conv areas)."""
    return Circuit(
        nodes={"enc": Relay(), "z": Blend(gamma=gamma), "pred": Extrapolator(alpha=alpha)},
        edges=[
            Edge(VEC, "enc", delay_ms=delay_steps * dt_ms),
            Edge("enc", "z.drive"),
            Edge("z", "pred", delay_ms=dt_ms),
            Edge("pred", "z.prediction"),
        ],
        dt_ms=dt_ms,
    )
