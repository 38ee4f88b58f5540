"""Small builders shared by tests."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from neurodelay import (Blend, Circuit, ConvDecoder, ConvEncoder, Edge, Extrapolator, MovingCircle, Relay,
                        build_seeded, presets, simulate)
from neurodelay.record import traces_to_dataset
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


def tiny_results(n_s=2, n_t=3, n_l=4, size=8, names=("blob_x", "circle_vx")) -> xr.Dataset:
    """A small seeded results Dataset: a latent trace z, frames and factors (no circuit)."""
    rng = np.random.default_rng(0)
    return traces_to_dataset({"z": rng.random((n_s, n_t, n_l), dtype=np.float32)}, dt_ms=10,
                             frames=rng.random((n_s, n_t, 1, size, size), dtype=np.float32),
                             factors=rng.random((n_s, n_t, len(names)), dtype=np.float32), factor_names=names)


KNOWN_LAG_FACTOR_NAMES = ["blob_x", "blob_y", "circle_x", "circle_y", "circle_vx", "circle_vy"]


def known_lag_results(n: int = 20, n_t: int = 30, lag: int = 2, z=None, seed: int = 0,
                      first_valid_step: int | None = None) -> xr.Dataset:
    """A results Dataset of constant-velocity circles; z[t] = circle position at t - lag (held before lag).

    ``first_valid_step`` defaults to ``lag`` for the default z, else 0.
    """
    if first_valid_step is None:
        first_valid_step = lag if z is None else 0
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.3, 0.7, (n, 2))
    vel = rng.uniform(-0.01, 0.01, (n, 2))
    pos = start[:, None] + vel[:, None] * np.arange(n_t)[None, :, None]
    blob = np.repeat(rng.uniform(0.0, 1.0, (n, 1, 2)), n_t, axis=1)
    factors = np.concatenate([blob, pos, np.repeat(vel[:, None], n_t, axis=1)], axis=-1)
    if z is None:
        z = pos[:, np.clip(np.arange(n_t) - lag, 0, None)]
    return xr.Dataset(
        {"z": (("sample", "time", "latent"), np.asarray(z, dtype=np.float64),
               {"node": "z", "first_valid_step": first_valid_step}),
         "factors": (("sample", "time", "factor"), factors),
         "frames": (("sample", "time", "y", "x"), np.zeros((n, n_t, 32, 32), np.float32))},
        coords={"time": np.arange(n_t) * 10.0, "factor": KNOWN_LAG_FACTOR_NAMES},
        attrs={"dt_ms": 10.0},
    )


def latent_named_circuit() -> Circuit:
    """A circuit whose representation node is named ``latent``: results store it as ``node_latent``."""
    return Circuit(
        nodes={"enc": ConvEncoder(n_latents=2, size=16), "latent": Extrapolator(alpha=1.0),
               "dec": ConvDecoder(n_latents=2, size=16)},
        edges=[Edge("world.frames", "enc", delay_ms=10), Edge("enc", "latent"), Edge("latent", "dec")],
    )


def latent_named_run():
    """(world, module, results) of ``latent_named_circuit``: built with seed 0, run on 12 sequences of seed 0."""
    world = MovingCircle(size=16, n_frames=5)
    module = build_seeded(latent_named_circuit(), world=world, seed=0)
    return world, module, simulate(module, world.sample(12, seed=0))


#: The world the argument-check tests build their small presets for.
SMALL_WORLD = MovingCircle(n_frames=3)


def small_preset(name: str):
    """The preset ``name`` with two latents, built seeded for SMALL_WORLD."""
    return build_seeded(getattr(presets, name)(n_latents=2), world=SMALL_WORLD)
