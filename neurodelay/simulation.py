"""``simulate``: run a circuit on an episode and get a labelled Dataset."""

from __future__ import annotations

import warnings

import torch
import xarray as xr

from ._util.validators import check_flag, check_seed
from .circuit import Circuit, CircuitModule
from .components.base import RunContext
from .record import module_dataset
from .worlds._spec import check_device

__all__ = ["simulate", "build_seeded", "NonFiniteInputWarning"]


def build_seeded(circuit: Circuit, *, input_shapes=None, world=None, seed: int = 0) -> CircuitModule:
    """Build ``circuit`` with parameters initialised from ``seed`` (global RNG left untouched)."""
    if not isinstance(circuit, Circuit):
        raise TypeError(f"circuit must be a Circuit spec, got {type(circuit).__name__} {circuit!r}; e.g. "
                        f"neurodelay.presets.inertia().")
    check_seed(seed, below_2_64=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return circuit.build(world, input_shapes=input_shapes)


class NonFiniteInputWarning(RuntimeWarning):
    """:func:`simulate` ran a circuit on an episode holding NaN or infinite values."""


def _non_finite(streams: dict) -> str | None:
    """Where the first stream with NaN or infinite values has them (None if every value is finite)."""
    for name, x in streams.items():
        if not torch.is_tensor(x) or not x.is_floating_point():
            continue
        bad = ~torch.isfinite(x)
        n = int(bad.sum())
        if n:
            first = [int(i) for i in bad.nonzero()[0][:2]]
            return (f"{name} holds {n} NaN or infinite value{'s' if n > 1 else ''} (first at sample {first[0]}"
                    + (f", step {first[1]}" if len(first) > 1 else "") + ")")
    return None


def simulate(circuit: Circuit | CircuitModule, episode, *, seed: int = 0, device=None,
             mode: str = "auto", check_finite: bool = False) -> xr.Dataset:
    """Run ``circuit`` on ``episode`` without gradients and return its traces.

    The module runs in evaluation mode: Gaussian latents give their means
    (no noise is drawn).

    Parameters
    ----------
    circuit : Circuit or CircuitModule
        A spec (built here, parameters initialised from ``seed``) or a built,
        possibly trained, module.
    episode : Episode
        World frames and factors, (sample, time, ...).
    seed : int
        Seed (>= 0) for parameter initialisation when ``circuit`` is a spec.
    device : str or torch.device, optional
        Where to run (default: the episode's device; ValueError if torch
        does not know it or it is a CUDA device that is not here). A
        built module is moved there in place (``module.to(device)``) and
        stays there; its training or evaluation mode is restored afterwards.
    mode : {"auto", "sequence", "step"}
        Execution mode (see :meth:`CircuitModule.forward`).
    check_finite : bool
        Refuse an episode holding NaN or infinite values (ValueError). By
        default such an episode runs (the values pass through the circuit
        into its traces) with a :class:`NonFiniteInputWarning`.

    Returns
    -------
    xarray.Dataset
        ``frames``, ``factors`` and one variable per node over
        (sample, time, ...), time in ms. A node named like one of these
        variables or dimensions (``x``, ``time``, ``frames``, ...) is stored
        as ``node_<name>``; each variable's ``node`` attribute keeps the name.
    """
    check_seed(seed, below_2_64=True)
    if not callable(getattr(episode, "streams", None)):
        raise TypeError(f"episode must be an Episode (world frames and factors, e.g. world.sample(4)), got "
                        f"{type(episode).__name__}; a dict of streams goes to the built module instead: "
                        f"module(streams).")
    check_device(device)  # a clear error for an unknown name or an absent GPU, not torch's from inside .to()
    check_flag("check_finite", check_finite)
    streams = episode.streams()
    bad = _non_finite(streams)
    if bad is not None:
        if check_finite:
            raise ValueError(f"simulate: the episode's {bad}; replace them (torch.nan_to_num), or pass "
                             f"check_finite=False to run it anyway.")
        warnings.warn(f"simulate: the episode's {bad}; they pass through the circuit into its traces "
                      f"(check_finite=True refuses such an episode).", NonFiniteInputWarning, stacklevel=2)
    device = torch.device(device) if device is not None else next(iter(streams.values())).device
    streams = {k: v.to(device) for k, v in streams.items()}
    if isinstance(circuit, Circuit):
        shapes = {k: tuple(v.shape[2:]) for k, v in streams.items()}
        module = build_seeded(circuit, input_shapes=shapes, seed=seed)
    elif isinstance(circuit, CircuitModule):
        module = circuit
    else:
        raise TypeError(f"circuit must be a Circuit or CircuitModule, got {type(circuit).__name__}.")
    module = module.to(device)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            traces = module(streams, ctx=RunContext(sample=False), mode=mode)
    finally:
        module.train(was_training)
    return module_dataset(module, traces, episode, dt_ms=module.dt_ms)[0]
