"""Training objectives: what a circuit is trained to minimise, over time.

Terms
-----
``reconstruction``
    An image node (default: the only node whose output has the frames'
    shape) against the world's frames: squared error (``"gaussian"``) or
    binary cross-entropy (``"bernoulli"``), per pixel.
``kl``
    KL divergence from the standard normal prior of every Gaussian latent
    (every node that records ``<node>_mu`` and ``<node>_logvar``), weighted by
    ``beta``, or by ``beta_norm * pixels per frame / n_latents`` of that node.
``prediction``
    ``lambda * ||z_t - zhat_t||^2`` for every :class:`~neurodelay.Blend` node
    ``z``, where ``zhat_t`` is what arrives at its ``prediction`` port at step
    t (the sum of the traces of the edges' sources, each delayed by its edge).
    Gradients flow into both ``z`` and ``zhat``. Only true extrapolations are
    scored: from the first step whose ``zhat_t`` was made from valid values
    alone (see below).
``supervise_<node>``
    Squared error between a node's vector output and chosen world factors.

Every term is returned already weighted (``beta * KL``, ``lambda * ...``,
``weight * ...``), so that ``total`` is their sum.

One normalisation rule
----------------------
Every term is **summed over its elements** (pixels, latents, factors) **and
over the scored steps** of a sequence, then **averaged over the samples** of
the batch. For a single frame this is the original study's "sum over pixels
divided by batch size"; over time it weights every scored step equally, so
that a longer sequence gives a proportionally larger loss (and ``beta_norm``
keeps its per-frame meaning: beta and the reconstruction both scale with the
number of scored steps).

Which steps count
-----------------
A term scores the output of its node at step ``t`` against the world at step
``t + offset`` (``Objective.target_offset_steps`` for the reconstruction,
``Supervision.offset_steps`` for supervision, 0 for the KL and prediction
terms) at exactly the steps ``t`` with

* ``t >= plan.valid_from[node]``: the first world input has reached the node
  through the circuit's delays (before it, delay lines hold their first
  value, so the output carries no news from the world). For the prediction
  term it is the first valid step of the Blend's ``prediction`` port,
  ``plan.port_valid(z)["prediction"]``, plus the steps of history its
  source reads: one for an Extrapolator (with ``alpha != 0``), whose first
  valid output reads its previous input from before that input was valid
  (a start-up value: the extrapolation is no true one there);
* ``0 <= t + offset < n_frames``: the target exists;
* ``t >= Objective.score_from_step`` (default 0).

:func:`scored_steps` lists them. Example, the inertia preset
(``input_delay_ms = dt_ms``: the encoder sees frame ``t - 1`` at step ``t``)
on 10 frames with offset 0: the decoder output is valid from step 1, so the
reconstruction scores steps 1..9 (``dec`` at step t, which has seen frames up
to t - 1, against frame t: one frame of lag to make up), the KL steps 1..9
(frames 0..8, each encoded once) and the prediction steps 3..9: the
extrapolation of ``z`` arrives at step 2, but there it reads ``z`` at steps
1 and 0, and ``z`` is valid from step 1; at step 3 it extrapolates from
frames 0 and 1, the sum over t >= 2 of the original's intended prediction
loss (frame t is encoded at step t + 1). The original study scored the
reconstruction against the same frames over steps 2..9 only (it never
scored the step before its first prediction); ``score_from_step=2``
reproduces its loss exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Mapping, Sequence

import attrs
import torch.nn.functional as F
from torch import Tensor

from .._util.validators import as_names, did_you_mean, finite_at_least, int_at_least, is_int, store_plain
from ..circuit import CircuitModule
from ..components.temporal import Blend
from ..errors import ConfigError

__all__ = ["Supervision", "Objective", "check_objective", "compute_losses", "scored_steps",
           "first_scored_steps"]


_non_negative = finite_at_least(0, optional=True)


def _int(inst, attr, value):
    if not is_int(value):
        raise ValueError(f"{attr.name} must be an integer number of steps, got {value!r}.")
    store_plain(inst, attr, value, int)


_non_negative_int = int_at_least(0, what="an integer >= 0 (a step index)")


def _factor_names(value):
    """Supervision.factors as a tuple: a single name (a str) counts as a one-name list."""
    return as_names(value, "Supervision.factors", "a list of factor names (one per channel of the node)",
                    "; use e.g. factors=('circle_x', 'circle_y')")


def _supervisions(value):
    """Objective.supervise as a tuple: a single Supervision counts as a one-item list."""
    if isinstance(value, Supervision):
        return (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"supervise must be a Supervision or a list of them, got {value!r}; "
                        f"use e.g. supervise=[Supervision('enc', ('circle_x', 'circle_y'))].")
    return tuple(value)


def _reconstruction(inst, attr, value):
    if value is not None and value not in _RECONSTRUCTIONS:
        raise ValueError(f"reconstruction must be 'gaussian' (squared error), 'bernoulli' (binary "
                         f"cross-entropy) or None (no reconstruction term), got {value!r}"
                         f"{did_you_mean(value, _RECONSTRUCTIONS, **_HINT)}.")


_RECONSTRUCTIONS = ("gaussian", "bernoulli")


@attrs.frozen
class Supervision:
    """Supervise a node's output with world factors (squared error).

    Parameters
    ----------
    node : str
        The node whose output (a vector of ``len(factors)`` channels) is scored.
    factors : tuple of str
        Factor names, one per channel of the node's output, in order. A
        single name (a str) is taken as a one-name tuple: ``"circle_x"`` is
        ``("circle_x",)``.
    weight : float
        Weight of the term.
    offset_steps : int
        Score the output at step t against the factors at step t + offset.
    """

    node: str
    factors: tuple[str, ...] = attrs.field(converter=_factor_names)
    weight: float = attrs.field(default=1.0, validator=_non_negative)
    offset_steps: int = attrs.field(default=0, validator=_int)


@attrs.frozen
class Objective:
    """What training minimises (see the module docstring for the rules).

    Parameters
    ----------
    reconstruction : {"gaussian", "bernoulli"} or None
        Reconstruction term on the node named ``reconstruct`` against the
        world's frames: squared error (gaussian) or binary cross-entropy
        (bernoulli), summed over pixels.
    reconstruct : str or None
        The node whose output is an image to compare with the frames
        (default: the only node whose output has the frames' shape).
    target_offset_steps : int
        Score the reconstruction at step t against the frame at t + offset
        (1 = predict the next frame).
    beta : float
        Weight of the KL term of every Gaussian latent.
    beta_norm : float or None
        Alternatively, beta = beta_norm * pixels per frame / n_latents.
    prediction : float
        lambda: weight of sum over samples and steps of ||z_t - zhat_t||^2 for
        every Blend node z (zhat = its prediction input), over the steps where
        the prediction is valid.
    supervise : tuple of Supervision
        Supervised terms; a single Supervision is taken as a one-item
        tuple.
    score_from_step : int
        Score no step before this one, in every term (0: every valid step;
        2 with the inertia preset reproduces the original study's loss).
    """

    reconstruction: str | None = attrs.field(
        default="gaussian", validator=_reconstruction)
    reconstruct: str | None = None
    target_offset_steps: int = attrs.field(default=0, validator=_int)
    beta: float = attrs.field(default=0.0, validator=_non_negative)
    beta_norm: float | None = attrs.field(default=None, validator=_non_negative)
    prediction: float = attrs.field(default=0.0, validator=_non_negative)
    supervise: tuple[Supervision, ...] = attrs.field(default=(), converter=_supervisions)
    score_from_step: int = attrs.field(default=0, validator=_non_negative_int)


# ---------------------------------------------------------------- resolution
@dataclass(frozen=True)
class _Term:
    key: str           # loss name
    kind: str          # "reconstruction", "kl", "prediction", "supervise"
    node: str
    first_valid: int   # first valid step of the scored output
    offset: int        # target step = t + offset
    weight: float
    field: str         # objective field that asks for it, for messages
    channels: tuple[int, ...] = ()  # factor indices (supervision)


#: How an objective error proposes a name: " (did you mean 'x'?)", else nothing.
_HINT = {"form": " (did you mean {!r}?)"}


def _frame_shape(module, frame_shape=None) -> tuple[int, ...] | None:
    if frame_shape is not None:
        return tuple(int(s) for s in frame_shape)
    shape = module.plan.shapes.get("world.frames")
    return tuple(shape) if shape is not None else None


def _gaussian_nodes(module) -> list[str]:
    return [n for n, spec in module.circuit.nodes.items() if getattr(spec, "gaussian", False)]


def _prediction_from(module, node: str) -> int:
    """First step at which what arrives at ``node.prediction`` was made from valid values only.

    That is the port's first valid step, later by the steps of history its
    sources read: an Extrapolator's output at step t reads its input at t
    and t - 1, so at its first valid step the older of the two is a
    start-up value (a delay line's held first value, or a node's output
    before news of the world reached it): a zero-velocity guess, not an
    extrapolation. Sources without taps into the past add nothing.
    """
    plan, nodes = module.plan, module.circuit.nodes
    first = 0
    for e in plan.inputs_of(node):
        if e.port != "prediction":
            continue
        spec = nodes.get(e.source)
        taps = spec.linear_taps() if spec is not None else None
        history = max((lag for port_taps in (taps or {}).values() for lag, w in port_taps if w != 0), default=0)
        first = max(first, plan.valid_from[e.source] + history + e.ceil_steps)
    return first


def _blend_nodes(module) -> list[str]:
    return [n for n, spec in module.circuit.nodes.items() if isinstance(spec, Blend)]


def _reconstruct_node(objective: Objective, module, frame_shape) -> str:
    nodes = module.circuit.nodes
    shapes = module.plan.shapes
    name = objective.reconstruct
    if name is not None:
        if name not in nodes:
            raise ConfigError(
                f"objective.reconstruct: node {name!r} does not exist{did_you_mean(name, nodes, **_HINT)}; "
                f"the circuit's nodes are {', '.join(nodes)}.", field="objective.reconstruct")
        if frame_shape is not None and shapes.get(name) is not None and tuple(shapes[name]) != frame_shape:
            raise ConfigError(
                f"objective.reconstruct: node {name!r} outputs shape {tuple(shapes[name])} but the "
                f"reconstruction must have the frames' shape {frame_shape}; name an image node "
                f"(e.g. a conv_decoder) or set reconstruction: null.", field="objective.reconstruct")
        return name
    if frame_shape is None:
        raise ConfigError(
            "objective.reconstruction needs the frames' shape, but no node reads world.frames; "
            "set objective.reconstruct, or reconstruction: null.", field="objective.reconstruction")
    found = [n for n in nodes if shapes.get(n) is not None and tuple(shapes[n]) == frame_shape]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConfigError(
            f"objective.reconstruct: no node outputs images of the frames' shape {frame_shape}, so "
            f"there is nothing to reconstruct with reconstruction: {objective.reconstruction}; add a "
            f"decoder node (conv_decoder) or set reconstruction: null.", field="objective.reconstruct")
    raise ConfigError(
        f"objective.reconstruct: nodes {', '.join(found)} all output images of the frames' shape "
        f"{frame_shape}; name the one to score, e.g. reconstruct: {found[-1]}.", field="objective.reconstruct")


def _resolve(objective: Objective, module, factor_names=None, frame_shape=None) -> list[_Term]:
    """Check ``objective`` against the circuit and list its active terms."""
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be an Objective, got {type(objective).__name__}.")
    if not isinstance(module, CircuitModule):
        raise TypeError(f"module must be a built circuit (CircuitModule), got {type(module).__name__}; "
                        f"use circuit.build(world).")
    plan = module.plan
    nodes = module.circuit.nodes
    frame_shape = _frame_shape(module, frame_shape)
    start = objective.score_from_step
    terms: list[_Term] = []

    if objective.reconstruction is not None:
        node = _reconstruct_node(objective, module, frame_shape)
        terms.append(_Term("reconstruction", "reconstruction", node, max(plan.valid_from[node], start),
                           objective.target_offset_steps, 1.0, "objective.target_offset_steps"))

    if objective.beta_norm is not None and objective.beta != 0:
        raise ConfigError(
            f"objective.beta_norm: give beta or beta_norm, not both (got beta={objective.beta!r}, "
            f"beta_norm={objective.beta_norm!r}); remove one of them.", field="objective.beta_norm")
    kl_field = "objective.beta_norm" if objective.beta_norm is not None else "objective.beta"
    kl_value = objective.beta_norm if objective.beta_norm is not None else objective.beta
    if kl_value > 0:
        gaussian = _gaussian_nodes(module)
        if not gaussian:
            raise ConfigError(
                f"{kl_field} = {kl_value!r} asks for a KL term, but no node has a Gaussian latent; "
                f"set gaussian: true on an encoder (conv_encoder) or set {kl_field.split('.')[-1]}: 0.",
                field=kl_field)
        if objective.beta_norm is not None and frame_shape is None:
            raise ConfigError(f"{kl_field} needs the number of pixels per frame, but no node reads "
                              f"world.frames; use beta instead.", field=kl_field)
        for n in gaussian:
            shape = plan.shapes.get(n)
            n_latents = shape[-1] if shape else getattr(nodes[n], "n_latents", 1)
            if objective.beta_norm is not None:
                beta = objective.beta_norm * math.prod(frame_shape) / n_latents
            else:
                beta = objective.beta
            terms.append(_Term("kl", "kl", n, max(plan.valid_from[n], start), 0, float(beta), kl_field))

    if objective.prediction > 0:
        blends = _blend_nodes(module)
        if not blends:
            raise ConfigError(
                f"objective.prediction = {objective.prediction!r} weights the prediction error of Blend "
                f"nodes, but the circuit has none; add a blend node or set prediction: 0.",
                field="objective.prediction")
        for n in blends:
            terms.append(_Term("prediction", "prediction", n, max(_prediction_from(module, n), start), 0,
                               float(objective.prediction), "objective.prediction"))

    seen: dict[str, int] = {}
    for i, sup in enumerate(objective.supervise):
        where = f"objective.supervise[{i}]"
        if not isinstance(sup, Supervision):
            raise ConfigError(f"{where} must be a Supervision, got {type(sup).__name__}.", field=where)
        if sup.node not in nodes:
            raise ConfigError(f"{where}.node: node {sup.node!r} does not exist"
                              f"{did_you_mean(sup.node, nodes, **_HINT)}; "
                              f"the circuit's nodes are {', '.join(nodes)}.", field=f"{where}.node")
        if sup.node in seen:
            raise ConfigError(
                f"{where}.node: node {sup.node!r} is already supervised by "
                f"objective.supervise[{seen[sup.node]}]; supervise each node once, listing all its "
                f"factors in one entry.", field=f"{where}.node")
        seen[sup.node] = i
        if not sup.factors:
            raise ConfigError(f"{where}.factors is empty; list one factor name per channel of "
                              f"{sup.node!r}.", field=f"{where}.factors")
        shape = plan.shapes.get(sup.node)
        if shape is not None and len(shape) != 1:
            raise ConfigError(f"{where}.node: node {sup.node!r} outputs shape {tuple(shape)}, but "
                              f"supervision needs a vector (one channel per factor); supervise a "
                              f"latent node instead.", field=f"{where}.node")
        if shape is not None and shape[0] != len(sup.factors):
            raise ConfigError(
                f"{where}.factors: node {sup.node!r} has {shape[0]} channels but {len(sup.factors)} "
                f"factors are given ({', '.join(sup.factors)}); give exactly one factor per channel "
                f"or change the node's n_latents.", field=f"{where}.factors")
        channels: tuple[int, ...] = ()
        if factor_names is not None:
            names = list(factor_names)
            for j, f in enumerate(sup.factors):
                if f not in names:
                    raise ConfigError(
                        f"{where}.factors[{j}]: the world has no factor {f!r}{did_you_mean(f, names, **_HINT)}; "
                        f"its factors are {', '.join(names)}.", field=f"{where}.factors[{j}]")
            channels = tuple(names.index(f) for f in sup.factors)
        if sup.weight > 0:
            terms.append(_Term(f"supervise_{sup.node}", "supervise", sup.node,
                               max(plan.valid_from[sup.node], start), sup.offset_steps,
                               float(sup.weight), f"{where}.offset_steps", channels))

    if not terms:
        raise ConfigError(
            "objective has no active term: set reconstruction (gaussian or bernoulli), beta or "
            "beta_norm > 0, prediction > 0, or supervise a node; or train for 0 steps to only "
            "simulate.", field="objective")
    return terms


def _window(term: _Term, n_frames: int) -> tuple[int, int]:
    """Scored steps ``range(lo, hi)`` of a term on sequences of ``n_frames``."""
    lo = max(term.first_valid, -term.offset, 0)
    hi = min(n_frames, n_frames - term.offset)
    return lo, hi


def _empty_window_error(term: _Term, n_frames: int) -> ConfigError:
    where = term.field
    valid = ("what arrives at its prediction port is a true extrapolation (made from valid values only) "
             if term.kind == "prediction" else "the output is valid ")
    return ConfigError(
        f"{where}: the {term.key} term of node {term.node!r} scores no step: {valid}"
        f"from step {term.first_valid} and its target is step t + {term.offset}, but sequences have "
        f"{n_frames} frames (steps 0..{n_frames - 1}); use longer sequences, a smaller offset or "
        f"shorter delays.", field=where)


# ---------------------------------------------------------------- public API
def _check_n_frames(n_frames) -> int:
    if not is_int(n_frames) or n_frames < 1:
        raise ValueError(f"n_frames must be a whole number of frames >= 1, got {n_frames!r}.")
    return int(n_frames)


def check_objective(objective: Objective, module, factor_names: Sequence[str] | None = None, *,
                    n_frames: int | None = None, frame_shape: Sequence[int] | None = None) -> None:
    """Check an objective against a built circuit and the world it will see.

    Parameters
    ----------
    objective : Objective
    module : CircuitModule
        The built circuit (its plan gives node names, shapes and first valid steps).
    factor_names : sequence of str, optional
        The world's factor names (checks supervision factors).
    n_frames : int, optional
        Frames per sequence (checks that every term scores at least one step).
    frame_shape : sequence of int, optional
        Shape of one frame, (channel, y, x) (default: from the circuit's plan).

    Raises
    ------
    ConfigError
        With a message naming the field (e.g. ``objective.supervise[0].node``),
        the constraint, the value and the fix.
    """
    terms = _resolve(objective, module, factor_names, frame_shape)
    if n_frames is not None:
        n_frames = _check_n_frames(n_frames)
        for term in terms:
            lo, hi = _window(term, n_frames)
            if hi <= lo:
                raise _empty_window_error(term, n_frames)


def scored_steps(objective: Objective, module, n_frames: int,
                 factor_names: Sequence[str] | None = None) -> dict[str, range]:
    """The steps each loss term scores on sequences of ``n_frames`` frames.

    Returns
    -------
    dict of str -> range
        For each term (``"kl"``, ``"prediction"`` with several nodes: the
        widest), the steps t whose output is scored (against the world at
        t + offset).
    """
    n_frames = _check_n_frames(n_frames)
    out: dict[str, range] = {}
    for term in _resolve(objective, module, factor_names):
        lo, hi = _window(term, n_frames)
        r = range(lo, max(lo, hi))
        if term.key in out:
            old = out[term.key]
            r = range(min(old.start, r.start), max(old.stop, r.stop))
        out[term.key] = r
    return out


def first_scored_steps(objective: Objective, module, n_frames: int,
                       factor_names: Sequence[str] | None = None) -> dict[str, int]:
    """The first step of each node's trace that some loss term reads.

    The map to pass as ``skip_before`` to the circuit while training: a
    decoder scored from step 2 need not draw steps 0 and 1. Nodes the loss
    does not read are absent (the circuit computes them in full).

    Returns
    -------
    dict of str -> int
    """
    n_frames = _check_n_frames(n_frames)
    out: dict[str, int] = {}
    for term in _resolve(objective, module, factor_names):
        lo, _ = _window(term, n_frames)
        out[term.node] = min(out.get(term.node, lo), lo)
        if term.kind == "prediction":  # also reads what arrives at the prediction port, in full
            for e in module.plan.inputs_of(term.node):
                if e.port == "prediction" and e.source in module.circuit.nodes:
                    out[e.source] = 0
    return out


def compute_losses(objective: Objective, traces: Mapping[str, Tensor], streams: Mapping[str, Tensor],
                   module, *, factor_names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """The loss terms of one batch (see the module docstring for the rules).

    Parameters
    ----------
    objective : Objective
    traces : dict of str -> Tensor
        The circuit's output, ``module(streams, ...)``: one trace per node,
        (sample, time, ...), and ``<node>_mu``/``<node>_logvar`` of Gaussian
        latents, (sample, time, n_latents).
    streams : dict of str -> Tensor
        World streams: ``world.frames`` (sample, time, 1, y, x) in [0, 1]
        and ``world.factors`` (sample, time, n_factor).
    module : CircuitModule
        The circuit that produced ``traces`` (its plan and delay lines).
    factor_names : sequence of str, optional
        Names of the factors' channels; needed when the objective supervises.

    Returns
    -------
    dict of str -> Tensor
        Scalar tensors: ``reconstruction``, ``kl``, ``prediction`` and
        ``supervise_<node>`` when active, each already weighted (nats or
        squared intensity per sample, summed over scored steps), and
        ``total``, their sum.

    Raises
    ------
    ConfigError
        When the objective does not fit the circuit or a term scores no step.
    """
    if not isinstance(traces, Mapping) or not traces:
        raise ValueError("compute_losses: traces must be the circuit's output, module(streams), a non-empty dict "
                         f"of node -> tensor; got {traces!r}.")
    lead_name, lead = next(iter(traces.items()))
    for name, x in streams.items():
        if isinstance(x, Tensor) and tuple(x.shape[:2]) != tuple(lead.shape[:2]):
            raise ValueError(f"compute_losses: stream {name!r} has (sample, time) = {tuple(x.shape[:2])} but "
                             f"trace {lead_name!r} has {tuple(lead.shape[:2])}; pass the streams the traces "
                             f"were computed from.")
    frames = streams.get("world.frames")
    frame_shape = tuple(frames.shape[2:]) if frames is not None else None
    if objective.supervise and factor_names is None:
        raise ConfigError("compute_losses: the objective supervises nodes by factor name; pass "
                          "factor_names (the world's, e.g. episode.factor_names).")
    terms = _resolve(objective, module, factor_names, frame_shape)
    n_t = next(iter(traces.values())).shape[1]
    out: dict[str, Tensor] = {}
    for term in terms:
        lo, hi = _window(term, n_t)
        if hi <= lo:
            raise _empty_window_error(term, n_t)
        value = _TERM_FNS[term.kind](objective, term, traces, streams, module, lo, hi)
        if term.weight != 1.0:
            value = term.weight * value
        out[term.key] = out[term.key] + value if term.key in out else value
    out["total"] = sum(out.values())  # type: ignore[assignment]
    return out


# ---------------------------------------------------------------- term bodies
def _reconstruction(objective, term, traces, streams, module, lo, hi) -> Tensor:
    k = term.offset
    pred = traces[term.node][:, lo:hi]
    target = streams["world.frames"][:, lo + k:hi + k].to(pred.dtype)
    n = pred.shape[0]
    if objective.reconstruction == "gaussian":
        return F.mse_loss(pred, target, reduction="sum") / n
    # binary_cross_entropy clamps log(p) at -100: finite for p in {0, 1}.
    eps = 1e-7
    return F.binary_cross_entropy(pred.clamp(eps, 1 - eps), target, reduction="sum") / n


def _kl(objective, term, traces, streams, module, lo, hi) -> Tensor:
    mu = traces[f"{term.node}_mu"][:, lo:hi]
    logvar = traces[f"{term.node}_logvar"][:, lo:hi]
    kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)
    return kl.sum() / mu.shape[0]


def _prediction_input(node: str, traces, streams, module) -> Tensor:
    """What arrives at ``node.prediction``: source traces delayed by their edges, summed."""
    zhat = None
    for e in module.plan.inputs_of(node):
        if e.port != "prediction":
            continue
        x = traces[e.source] if e.source in traces else streams[e.source]
        d = module.delay_line(e)
        if d is not None:
            x = d(x)
        zhat = x if zhat is None else zhat + x
    return zhat


def _prediction(objective, term, traces, streams, module, lo, hi) -> Tensor:
    z = traces[term.node]
    zhat = _prediction_input(term.node, traces, streams, module)
    return F.mse_loss(z[:, lo:hi], zhat[:, lo:hi], reduction="sum") / z.shape[0]


def _supervise(objective, term, traces, streams, module, lo, hi) -> Tensor:
    k = term.offset
    pred = traces[term.node][:, lo:hi]
    factors = streams["world.factors"][:, lo + k:hi + k]
    idx = list(term.channels)
    if idx != list(range(factors.shape[-1])):
        factors = factors[..., idx]
    return F.mse_loss(pred, factors.to(pred.dtype), reduction="sum") / pred.shape[0]


_TERM_FNS = {"reconstruction": _reconstruction, "kl": _kl, "prediction": _prediction,
             "supervise": _supervise}
