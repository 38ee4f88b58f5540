"""Training: the loop, its randomness, checkpoints and resuming.

Every optimiser step ``s`` (1, 2, ..., ``steps``) draws a fresh batch from the
world and a fresh reparameterisation noise stream, both seeded from
``(seed, s)`` through :class:`numpy.random.SeedSequence` (:func:`step_seeds`).
Nothing random is carried from one step to the next, so a run resumed from a
checkpoint at step ``k`` needs only the model, the optimiser state and ``k``
to continue exactly as the uninterrupted run would have: on the CPU the final
parameters are bit-identical.

The loop does not wait for the device between steps: the loss values and a
record of non-finite losses stay on the device and are read only at logging
and checkpoint steps. A NaN or infinite loss is therefore detected at the
next such step; the run stops with :class:`~neurodelay.errors.TrainingError`
naming the first bad step and term, before any checkpoint is written past it,
so the last checkpoint on disk is the last good one.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .._util.perf import autocast, bf16_native, tune_allocator
from .._util.validators import check_seed
from ..circuit import CircuitModule
from ..components.base import RunContext
from ..errors import CheckpointError, ConfigError, TrainingError
from .checkpoint import (capture_rng_state, load_checkpoint, remove_stale_temporaries, restore_rng_state,
                         save_checkpoint)
from .interrupts import DeferredInterrupts
from .objectives import Objective, check_objective, compute_losses, first_scored_steps

__all__ = ["TrainResult", "train", "step_seeds", "steps_below_checkpoint"]


@dataclass
class TrainResult:
    """What a training run did.

    Attributes
    ----------
    steps : numpy.ndarray of int64, shape (n_logged,)
        The logged step numbers (step s = the s-th optimiser update).
    history : dict of str -> numpy.ndarray of float64, shape (n_logged,)
        Per loss term (and ``total``): the loss of the batch of that step,
        before its update.
    steps_per_second : float
        Optimiser steps per second of wall time in this call (0 if none ran).
    final_step : int
        Steps completed, including those before a resume.
    seconds : float
        Wall time of this call's training loop, in s.
    total_seconds : float
        Training wall time of the whole run, across resumes (as recorded in
        its checkpoints), in s.
    timed_steps : int
        Steps that ``total_seconds`` covers (every step, unless the run was
        resumed from a checkpoint that did not record its time).
    delays : dict of str -> numpy.ndarray of float64, shape (n_logged, n_values)
        Per learned delay (keyed by its edge's index in the circuit, as in
        ``module.delays``): the delay in ms after each logged step's update,
        one column per channel (one column for a single delay). NaN at steps
        logged by a checkpoint that did not record delays. Empty when the
        circuit learns no delay.
    """

    steps: np.ndarray
    history: dict[str, np.ndarray] = field(default_factory=dict)
    steps_per_second: float = 0.0
    final_step: int = 0
    seconds: float = 0.0
    total_seconds: float = 0.0
    timed_steps: int = 0
    delays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def run_steps_per_second(self) -> float:
        """Steps per second over the whole run, across resumes (0 if no step was timed)."""
        return self.timed_steps / self.total_seconds if self.timed_steps and self.total_seconds > 0 else 0.0


#: The fields of :class:`neurodelay.study.TrainSettings` that training reads (the study's ``train:`` section;
#: the study layer, above this one, defines the class).
_SETTINGS_FIELDS = ("steps", "batch_size", "optimizer", "lr", "delay_lr", "grad_clip", "log_every",
                    "checkpoint_every", "precision")

_TRAIN_TAG = 0x747261696E  # "train": separates training draws from any other use of the seed


def step_seeds(seed: int, step: int) -> tuple[int, int]:
    """Seeds of training step ``step``: (world batch, reparameterisation noise).

    Derived with ``numpy.random.SeedSequence(seed, spawn_key=(TAG, step))``,
    so they depend on nothing but ``(seed, step)``.

    Returns
    -------
    (int, int)
        Non-negative integers < 2**63.
    """
    ss = np.random.SeedSequence(int(seed), spawn_key=(_TRAIN_TAG, int(step)))
    a, b = ss.generate_state(2, dtype=np.uint64)
    return int(a) >> 1, int(b) >> 1


def _make_optimizer(settings, params, delay_params=()):
    """The optimiser: one parameter group, or, with ``settings.delay_lr``, a second for the learned delays."""
    groups = params
    if settings.delay_lr is not None and delay_params:
        ids = {id(p) for p in delay_params}
        rest = [p for p in params if id(p) not in ids]
        groups = ([{"params": rest}] if rest else []) + [{"params": list(delay_params), "lr": settings.delay_lr}]
    if settings.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=settings.lr)
    return torch.optim.Adam(groups, lr=settings.lr)


def _check_args(module, world, objective, settings, seed, checkpoint_path=None, on_log=None):
    if checkpoint_path is not None:
        if not isinstance(checkpoint_path, (str, os.PathLike)):
            raise TypeError(f"checkpoint_path must be a file path, got {type(checkpoint_path).__name__}.")
        if Path(checkpoint_path).is_dir():
            raise ConfigError(f"checkpoint_path {str(checkpoint_path)!r} is a directory; give a file in it, "
                              f"e.g. {str(Path(checkpoint_path) / 'checkpoint.pt')!r}.")
    if on_log is not None and not callable(on_log):
        raise TypeError(f"on_log must be a function on_log(step, losses) or None, got {on_log!r}.")

    if not isinstance(module, CircuitModule):
        raise TypeError(f"module must be a built circuit (CircuitModule), got {type(module).__name__}; "
                        f"use circuit.build(world).")
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be an Objective, got {type(objective).__name__}.")
    if not all(hasattr(settings, name) for name in _SETTINGS_FIELDS):
        raise TypeError(f"settings must be a TrainSettings, got {type(settings).__name__}.")
    check_seed(seed, error=ConfigError)
    for attr in ("sample", "factor_names", "frame_shape"):
        if not hasattr(world, attr):
            raise TypeError(f"world must be a world spec with .{attr} (e.g. MovingCircle()), "
                            f"got {type(world).__name__}.")


def _resolve_progress(progress):
    if progress is None:
        return None  # tqdm: quiet when not on a terminal
    return not bool(progress)


def train(module, world, objective: Objective, settings, *, seed: int,
          device: str | torch.device = "cpu", checkpoint_path: str | Path | None = None,
          resume: bool = False, study_text: str = "", progress: bool | None = None,
          on_log: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
    """Train a built circuit on fresh batches from a world.

    Parameters
    ----------
    module : CircuitModule
        The built circuit, parameters initialised (e.g. by
        :func:`~neurodelay.build_seeded`); trained in place and moved to ``device``.
    world : world spec
        Provides ``sample(n_samples, seed=..., device=...) -> Episode``,
        ``frame_shape``, ``factor_names`` (and ``n_frames`` for a moving world).
    objective : Objective
        What to minimise (checked against the circuit and world first).
    settings : TrainSettings
    seed : int
        Seeds every batch and noise draw, via :func:`step_seeds`.
    device : str or torch.device
        Where to train.
    checkpoint_path : str or path-like, optional
        Write checkpoints here (every ``settings.checkpoint_every`` steps and
        at the end), atomically.
    resume : bool
        Continue from ``checkpoint_path`` if it exists (from step 0 if it
        does not, as for a run stopped before its first checkpoint).
    study_text : str
        The study as text, stored in checkpoints; resuming requires the
        checkpoint's to train alike: equal
        :func:`~neurodelay.training.checkpoint.training_text` (name, device,
        evaluate, analyses, sweep and executor may differ, and so may
        ``settings.steps``, ``log_every`` and ``checkpoint_every``: a
        larger ``steps`` trains on from the checkpoint's step).
    progress : bool or None
        Progress bar: None shows it only on a terminal, True always, False never.
    on_log : callable, optional
        Called as ``on_log(step, losses)`` at every logging step, ``losses``
        a dict of floats per term.

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        The objective does not fit the circuit or world.
    CheckpointError
        ``resume`` with a truncated, corrupt or foreign checkpoint.
    TrainingError
        A loss became NaN or infinite (the last good checkpoint is kept).

    Notes
    -----
    A circuit with no trainable parameters, or ``settings.steps == 0``,
    trains nothing: the result is empty and no checkpoint is written.

    On CPU the first call raises glibc's mmap and trim thresholds for the
    process (:func:`neurodelay._util.perf.tune_allocator`), so that the step's
    activation buffers are reused instead of faulted back in every step;
    this changes speed and resident memory, not results.
    """
    _check_args(module, world, objective, settings, seed, checkpoint_path, on_log)
    if torch.device(device).type == "cpu":
        tune_allocator()
    seed = int(seed)
    device = torch.device(device)
    if settings.precision == "bfloat16" and not bf16_native(device):
        where = (f"this CPU ({torch.backends.cpu.get_cpu_capability()}, no AVX512-BF16 or AMX)"
                 if device.type == "cpu" else f"this {device.type} device")
        warnings.warn(f"train.precision is 'bfloat16', but {where} has no bf16 units: the forward pass "
                      f"emulates bf16 and runs slower than in float32 (about 7 times in the quickstart "
                      f"on an AVX2 CPU). Set precision: float32 here, or train on a device with bf16 units.",
                      stacklevel=2)
    factor_names = tuple(world.factor_names)
    module.to(device)
    params = [p for p in module.parameters() if p.requires_grad]
    if settings.steps == 0 or not params:
        return TrainResult(np.zeros(0, np.int64), {}, 0.0, 0, 0.0)
    check_objective(objective, module, factor_names, n_frames=getattr(world, "n_frames", None),
                    frame_shape=world.frame_shape)
    # Learned delays: their own learning rate (settings.delay_lr), put back within their bounds after every
    # update, logged in ms.
    lines = {k: line for k, line in module.delays.items() if line.learnable}
    step_params = [line.steps_param for line in lines.values() if line.steps_param.requires_grad]
    step_params += [p for node in module.nodes.values() if hasattr(node, "step_parameters")
                    for p in node.step_parameters() if p.requires_grad]  # learned horizons, in steps
    optimizer = _make_optimizer(settings, params, step_params)
    if checkpoint_path is not None:
        checkpoint_path = Path(checkpoint_path)
        remove_stale_temporaries(checkpoint_path)
    elif resume:
        raise ConfigError("resume=True needs checkpoint_path, the checkpoint to continue from.")

    start = 0
    saved_step: list[int] = []  # steps of the checkpoints this run restored or wrote
    logged_steps: list[int] = []
    history: dict[str, list[float]] = {}
    delay_log: dict[str, list[list[float]]] = {k: [] for k in lines}
    prior = {"seconds": 0.0, "steps": 0}  # training time recorded by the checkpoint resumed from
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        start = _restore(checkpoint_path, module, optimizer, settings, study_text, seed, history,
                         logged_steps, prior, delay_log)
        saved_step.append(start)
    module.train()

    def checkpoint(step: int) -> None:
        if checkpoint_path is None:
            return
        save_checkpoint(checkpoint_path, {
            "step": step,
            "seed": seed,
            "study_text": study_text,
            "model": module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": {"step": list(logged_steps), **{k: list(v) for k, v in history.items()}},
            "delay_history": {k: [list(row) for row in v] for k, v in delay_log.items()},
            "rng": capture_rng_state(),
            "train_seconds": prior["seconds"] + (time.perf_counter() - t0),
            "train_timed_steps": prior["steps"] + (step - start),
        })
        saved_step.append(step)

    generator = torch.Generator(device=device)
    ctx = RunContext(generator=generator, sample=True)
    clip = settings.grad_clip
    keys: list[str] | None = None
    first_bad = None  # per term: first step with a non-finite loss (-1: none), on the device
    bf16 = settings.precision == "bfloat16"
    bar = tqdm(total=settings.steps, initial=start, disable=_resolve_progress(progress), unit="step",
               dynamic_ncols=True, leave=True)
    t0 = time.perf_counter()
    step = start
    skip = None
    with DeferredInterrupts() as stop:
        try:
            for step in range(start + 1, settings.steps + 1):
                world_seed, noise_seed = step_seeds(seed, step)
                streams = world.sample(settings.batch_size, seed=world_seed, device=device).streams()
                generator.manual_seed(noise_seed)
                if skip is None:  # the steps no loss term reads are not computed (fixed per run)
                    n_frames = next(iter(streams.values())).shape[1]
                    skip = first_scored_steps(objective, module, n_frames, factor_names)
                with autocast(device, enabled=bf16):
                    traces = module(streams, ctx=ctx, skip_before=skip)
                losses = compute_losses(objective, traces, streams, module, factor_names=factor_names)
                optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, clip)
                optimizer.step()
                for line in lines.values():
                    line.project_()

                values = torch.stack([v.detach() for v in losses.values()])
                if keys is None:
                    keys = list(losses)
                    if logged_steps and set(history) != set(keys):  # before anything is written
                        raise CheckpointError(
                            f"checkpoint {str(checkpoint_path)!r} does not fit this objective: its history "
                            f"has the loss terms {', '.join(sorted(history))}, this run's are "
                            f"{', '.join(sorted(keys))}; delete it or run without --resume.")
                    first_bad = torch.full((len(keys),), -1, dtype=torch.int64, device=values.device)
                first_bad.masked_fill_((first_bad < 0) & ~torch.isfinite(values), step)
                bar.update(1)
                log_now = step == 1 or step % settings.log_every == 0 or step == settings.steps
                ckpt_now = step % settings.checkpoint_every == 0 or step == settings.steps
                if log_now or ckpt_now or stop.received:
                    _raise_if_bad(first_bad, keys, checkpoint_path, saved_step)  # one host sync
                if log_now:
                    numbers = dict(zip(keys, values.tolist()))
                    logged_steps.append(step)
                    for k, v in numbers.items():
                        history.setdefault(k, []).append(v)
                    for k, line in lines.items():
                        delay_log[k].append((line.steps.detach().double().cpu().reshape(-1)
                                             * module.dt_ms).tolist())
                    bar.set_postfix(loss=f"{numbers['total']:.4g}", refresh=False)
                    if on_log is not None:
                        on_log(step, numbers)
                if ckpt_now or stop.received:  # a signal during this step: keep the step, then stop
                    checkpoint(step)
                    if stop.received:
                        stop.raise_now(step, checkpoint_path)
        finally:
            bar.close()
    seconds = time.perf_counter() - t0
    n_done = step - start
    return TrainResult(
        steps=np.asarray(logged_steps, dtype=np.int64),
        history={k: np.asarray(v, dtype=np.float64) for k, v in history.items()},
        steps_per_second=n_done / seconds if n_done and seconds > 0 else 0.0,
        final_step=step,
        seconds=seconds,
        total_seconds=prior["seconds"] + seconds,
        timed_steps=prior["steps"] + n_done,
        delays={k: np.asarray(v, dtype=np.float64).reshape(len(v), lines[k].steps.numel())
                for k, v in delay_log.items()},
    )


def _raise_if_bad(first_bad, keys, checkpoint_path, saved_step) -> None:
    bad = first_bad.tolist()
    steps = [s for s in bad if s >= 0]
    if not steps:
        return
    s = min(steps)
    terms = [k for k, b in zip(keys, bad) if b == s and k != "total"] or ["total"]
    if saved_step:
        kept = f"the last good checkpoint (step {saved_step[-1]}), {str(checkpoint_path)!r}, is kept"
    else:
        kept = "no checkpoint was written"
    what = (f"the {terms[0]} loss" if len(terms) == 1
            else f"the {', '.join(terms[:-1])} and {terms[-1]} losses")
    raise TrainingError(
        f"training diverged: {what} became NaN or infinite at step {s}; {kept}. "
        f"Lower train.lr, set train.grad_clip, or check the world's frames for NaN.")


#: Hyperparameters of an optimiser's parameter group that a checkpoint must hold as this run sets them.
_GROUP_SETTINGS = ("lr", "alpha", "eps", "betas", "momentum", "weight_decay", "centered", "amsgrad")


def _plain_setting(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _optimizer_state_problem(optimizer, settings_now: list[dict]) -> str | None:
    """What in a restored optimiser's state does not fit its parameters or settings (None if it fits).

    ``load_state_dict`` checks the groups and their sizes only: a state tensor
    of another shape would fail at the first step, and a learning rate other
    than the study's would train on silently. ``settings_now``: each group's
    settings before the state was loaded.
    """
    for i, (group, want) in enumerate(zip(optimizer.param_groups, settings_now)):
        for key in _GROUP_SETTINGS:
            if key in group and key in want and _plain_setting(group[key]) != _plain_setting(want[key]):
                return f"its parameter group {i} has {key} {group[key]!r}, this run {want[key]!r}"
        for p in group["params"]:
            for name, value in optimizer.state.get(p, {}).items():
                if not isinstance(value, torch.Tensor):
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        continue
                    return f"its state {name!r} is a {type(value).__name__}, not a tensor"
                if name == "step":
                    if value.numel() != 1:
                        return f"its state 'step' has shape {tuple(value.shape)}, not a single number"
                elif value.shape != p.shape:
                    return (f"its state {name!r} has shape {tuple(value.shape)} for a parameter of shape "
                            f"{tuple(p.shape)}")
                elif value.is_floating_point() and not bool(torch.isfinite(value).all()):
                    return f"its state {name!r} holds NaN or infinite values"
    return None


def steps_below_checkpoint(path, step: int, steps: int) -> str:
    """The message for resuming a checkpoint at ``step`` with ``train.steps = steps`` below it."""
    return (f"checkpoint {str(path)!r} is at step {step}, beyond this run's train.steps = {steps}: a resume "
            f"can train on, not back. Set train.steps to {step} or more to use it (to {step} to evaluate it "
            f"as it is), or delete it or run without --resume to train {steps} steps afresh.")


def _restore(path: Path, module, optimizer, settings, study_text, seed, history, logged_steps,
             prior: dict | None = None, delay_log: dict | None = None) -> int:
    ckpt = load_checkpoint(path, study_text=study_text, seed=seed)
    step = ckpt["step"]
    if not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint {str(path)!r} holds step {step!r}, not a step count; "
                              f"delete it or run without --resume.")
    if step > settings.steps:
        raise CheckpointError(steps_below_checkpoint(path, step, settings.steps))
    settings_now = [{k: g[k] for k in _GROUP_SETTINGS if k in g} for g in optimizer.param_groups]
    try:
        module.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        problem = _optimizer_state_problem(optimizer, settings_now)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
    if problem is not None:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit this circuit or optimiser ({problem}); delete it or run "
            f"without --resume.") from None
    try:
        restore_rng_state(ckpt["rng"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds random states that cannot be restored ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); delete it or run without --resume.") from None
    saved = dict(ckpt["history"])
    logged_steps.extend(int(s) for s in saved.pop("step", []))
    for k, v in saved.items():
        history[k] = [float(x) for x in v]
    if delay_log:
        # Checkpoints written before delays were logged hold none: those steps read NaN.
        saved_delays = ckpt.get("delay_history")
        saved_delays = saved_delays if isinstance(saved_delays, dict) else {}
        for k, line in module.delays.items():
            if k in delay_log:
                rows = saved_delays.get(k)
                if rows and any(len(row) != line.steps.numel() for row in rows):
                    raise CheckpointError(
                        f"checkpoint {str(path)!r} does not fit this circuit: its delay history of edge {k} has "
                        f"{len(rows[0])} value(s) per step, the edge learns {line.steps.numel()}; delete it or "
                        f"run without --resume.")
                if not isinstance(rows, list) or len(rows) != len(logged_steps):
                    rows = [[float("nan")] * line.steps.numel()] * len(logged_steps)
                delay_log[k][:] = [[float(x) for x in row] for row in rows]
    if prior is not None:
        seconds, timed = ckpt.get("train_seconds"), ckpt.get("train_timed_steps")
        if isinstance(seconds, float) and isinstance(timed, int) and seconds >= 0 and 0 <= timed <= step:
            prior.update(seconds=seconds, steps=timed)
    return step
