"""Hypothesis strategies for worlds, circuits and signals, small enough for fast property tests.

This module needs Hypothesis (``pip install -e '.[test]'``), which
``import neurodelay`` and ``import neurodelay.testing`` do not: it is the only
module of the package that imports it, and nothing imports this module but
your tests (``from neurodelay.testing import strategies``).

Examples
--------
>>> from hypothesis import given
>>> from neurodelay.testing import strategies as nds
>>> @given(nds.circuits(), nds.signals(n_steps=12))
... def test_paths_agree(circuit, x):
...     module = circuit.build(input_shapes=nds.vector_shapes(x.shape[-1]))
...     auto, step = module({nds.VECTOR: x}), module({nds.VECTOR: x}, mode="step")
...     ...
"""

from __future__ import annotations

import hypothesis.strategies as st
import torch

from ..circuit import Circuit, Edge
from ..components import Blend, ConvDecoder, ConvEncoder, Extrapolator, Relay
from ..worlds import CircleOverBlob, MovingCircle
from ..worlds.circle import MOTIONS

__all__ = ["VECTOR", "unit_floats", "positions", "worlds", "moving_circles", "static_worlds", "signals",
           "vector_shapes", "circuits"]

#: The world stream the vector circuits of :func:`circuits` read.
VECTOR = "world.factors"

#: Image sizes the strategies draw from: multiples of 16, as conv areas need.
SIZES = (16, 32)


def unit_floats() -> st.SearchStrategy[float]:
    """Floats in [0, 1] (no NaN)."""
    return st.floats(0.0, 1.0, allow_nan=False)


def positions() -> st.SearchStrategy[tuple[float, float]]:
    """Points of the unit square, ``(x, y)``: blob and circle positions in factor units."""
    return st.tuples(unit_floats(), unit_floats())


@st.composite
def moving_circles(draw, *, sizes=SIZES, max_frames: int = 8, motions=MOTIONS) -> MovingCircle:
    """A :class:`~neurodelay.worlds.MovingCircle` with drawn settings, valid by construction.

    Sizes from ``sizes``, 2 to ``max_frames`` frames, any motion of
    ``motions``, with or without a speed range, and sometimes pixel noise.
    """
    n_frames = draw(st.integers(2, max_frames), label="n_frames")
    steps = n_frames - 1
    kw = {}
    if draw(st.booleans(), label="speed_range"):
        speed_max = draw(st.floats(0.01 / steps, 1.0 / steps), label="speed_max")
        kw["speed_min"] = draw(st.floats(0.0, speed_max), label="speed_min")
        kw["speed_max"] = speed_max
        kw["min_travel"] = draw(st.floats(0.0, min(speed_max * steps, 0.8)), label="min_travel")
    else:
        kw["min_travel"] = draw(st.floats(0.0, 0.8), label="min_travel")
    return MovingCircle(
        size=draw(st.sampled_from(sizes), label="size"),
        radius=draw(st.floats(0.03, 0.2), label="radius"),
        blob_brightness=draw(unit_floats(), label="blob_brightness"),
        n_frames=n_frames,
        motion=draw(st.sampled_from(motions), label="motion"),
        reversal_rate=draw(unit_floats(), label="reversal_rate"),
        speed_jitter=draw(st.floats(0.0, 0.5), label="speed_jitter"),
        pixel_noise=draw(st.sampled_from([0.0, 0.0, 0.05]), label="pixel_noise"),
        **kw,
    )


@st.composite
def static_worlds(draw, *, sizes=SIZES) -> CircleOverBlob:
    """A :class:`~neurodelay.worlds.CircleOverBlob` with drawn size, radius, brightness and circle values."""
    return CircleOverBlob(
        size=draw(st.sampled_from(sizes), label="size"),
        radius=draw(st.floats(0.03, 0.2), label="radius"),
        blob_brightness=draw(unit_floats(), label="blob_brightness"),
        circle_values=draw(st.sampled_from(["grid", "even", "odd"]), label="circle_values"),
    )


def worlds(*, sizes=SIZES, max_frames: int = 8) -> st.SearchStrategy:
    """Any world of the study schema (moving or static), small: :func:`moving_circles` or :func:`static_worlds`."""
    return st.one_of(moving_circles(sizes=sizes, max_frames=max_frames), static_worlds(sizes=sizes))


def signals(n_steps: int, n_channels: int | None = None, *, n_samples: int = 2,
            dtype: torch.dtype = torch.float64) -> st.SearchStrategy[torch.Tensor]:
    """Standard normal vector signals of shape ``(n_samples, n_steps, n_channels)``, from a drawn seed.

    ``n_channels`` None draws 1 to 4 channels.
    """
    channels = st.integers(1, 4) if n_channels is None else st.just(n_channels)

    def make(drawn):
        n_c, seed = drawn
        return torch.randn(n_samples, n_steps, n_c, generator=torch.Generator().manual_seed(seed), dtype=dtype)

    return st.tuples(channels, st.integers(0, 2**31 - 1)).map(make)


def vector_shapes(n_channels: int, size: int = 32) -> dict[str, tuple[int, ...]]:
    """The input shapes a circuit of :func:`circuits` is built with: ``world.factors`` of ``n_channels``."""
    return {"world.frames": (1, size, size), VECTOR: (n_channels,)}


@st.composite
def circuits(draw, *, max_nodes: int = 4, max_delay_steps: int = 3, dt_ms: float = 10.0, cycles: bool = True,
             n_channels: int | None = None, image_size: int | None = None) -> Circuit:
    """A valid :class:`~neurodelay.circuit.Circuit` of relays, extrapolators and blends.

    Nodes ``n0``, ``n1``, ... in order; each port of node ``i`` is fed by
    ``world.factors`` or an earlier node, through a whole-step delay of 0 to
    ``max_delay_steps`` steps, so the graph has no cycle, except that with
    ``cycles`` a blend's prediction may come from a later node through at
    least one step of delay (a loop, never an algebraic one). Gains are
    kept small (``|alpha| <= 1``, ``gamma <= 0.9``) so that loops stay
    bounded.

    Parameters
    ----------
    n_channels : int or None
        The channels of ``world.factors``: given, edges may also carry
        per-channel delays (a list of that length).
    image_size : int or None
        Given (a multiple of 16), the circuit also reads ``world.frames``
        through a ``ConvEncoder`` ``enc`` (whose latents the vector nodes
        may read) and ends in a ``ConvDecoder`` ``dec`` fed by the last node.
        Its latents number ``n_channels`` (2 when None).
    """
    n_nodes = draw(st.integers(1, max_nodes), label="n_nodes")
    names = [f"n{i}" for i in range(n_nodes)]
    nodes: dict = {}
    edges: list[Edge] = []
    sources = [VECTOR]
    n_latents = n_channels or 2
    if image_size is not None:
        nodes["enc"] = ConvEncoder(n_latents=n_latents, size=image_size)
        edges.append(Edge("world.frames", "enc", delay_ms=draw(st.integers(0, max_delay_steps), label="enc_delay")
                          * dt_ms))
        sources = ["enc"]  # every vector node then carries n_latents channels

    def delay(least: int = 0):
        per_channel = n_channels is not None and draw(st.booleans(), label="per_channel")
        if per_channel:
            steps = draw(st.lists(st.integers(least, max_delay_steps), min_size=n_channels, max_size=n_channels),
                         label="delay_steps")
            return [s * dt_ms for s in steps]
        return draw(st.integers(least, max_delay_steps), label="delay_steps") * dt_ms

    for i, name in enumerate(names):
        kind = draw(st.sampled_from(["relay", "extrapolator", "blend"]), label=f"{name}.kind")
        if kind == "relay":
            nodes[name] = Relay()
        elif kind == "extrapolator":
            nodes[name] = Extrapolator(alpha=draw(st.floats(-1.0, 1.0), label=f"{name}.alpha"))
        else:
            nodes[name] = Blend(gamma=draw(st.floats(0.0, 0.9), label=f"{name}.gamma"))
        earlier = sources + names[:i]
        for port in nodes[name].ports:
            later = names[i + 1:] if cycles and port == "prediction" else []
            source = draw(st.sampled_from(earlier + later), label=f"{name}.{port} source")
            target = name if nodes[name].ports == ("in",) else f"{name}.{port}"
            edges.append(Edge(source, target, delay_ms=delay(1 if source in later else 0)))
    if image_size is not None:
        nodes["dec"] = ConvDecoder(n_latents=n_latents, size=image_size)
        edges.append(Edge(names[-1], "dec"))
    return Circuit(nodes=nodes, edges=edges, dt_ms=dt_ms)
