"""Ground truth for the instruments: representations whose lag is known, with readout noise.

:func:`linear_representation` builds a results-like Dataset whose
representation is an ideal linear circuit (input delay ``d``, inertia blend
``gamma``, extrapolation ``alpha``) driven by the true circle position of a
moving world, embedded in ``n_latents`` latents by a random affine map, plus
noise in position units (px) that is either independent at every step or
constant over each sequence, plus distractor latents that carry no
position. Its noise-free twin (same seed, ``noise_px = 0``) reads the lag
the estimator should report: the transients, the sequence length and the
start-up of the real runs are all in it, so the calibration compares like
with like. ``docs/calibration.md`` gives the bias table that
``studies/calibrate_instruments.py`` computes with these functions, and
``tests/properties/test_lag_calibration.py`` keeps it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from neurodelay.analysis.lag import CIRCLE_FACTORS, px_per_unit
from neurodelay.analysis.theory import theory_circuit, theory_trace
from neurodelay.presets import inertia

__all__ = ["inertia_theory", "linear_representation", "NOISE_KINDS", "EMBEDDINGS"]

#: Kinds of readout noise: independent at every step, or constant over each sequence.
NOISE_KINDS = ("independent", "sequence")
#: How the position enters the latents: an affine map, or smooth tuning curves (a nonlinear code).
EMBEDDINGS = ("affine", "tuning")


def inertia_theory(gamma: float, alpha: float, delay_steps: int, *, dt_ms: float = 10.0):
    """The theory circuit of the inertia preset (encoder replaced by the true factors)."""
    circuit = inertia(n_latents=2, gamma=gamma, alpha=alpha, input_delay_ms=delay_steps * dt_ms, dt_ms=dt_ms)
    theory, why = theory_circuit(circuit, "z")
    if theory is None:  # pragma: no cover - the inertia preset always has one
        raise RuntimeError(why)
    return theory


def linear_representation(world, n: int, *, gamma: float = 0.5, alpha: float = 1.0, delay_steps: int = 1,
                          n_latents: int = 4, n_distractors: int = 0, noise_px: float = 0.0,
                          noise_kind: str = "independent", seed: int = 0, trajectory_seed: int = 0,
                          embedding: str = "affine") -> xr.Dataset:
    """A Dataset whose ``z`` is an ideal inertia circuit's position, affinely embedded, plus noise.

    Parameters
    ----------
    world : MovingCircle
        Trajectories (factors); no frames are rendered.
    n : int
        Sequences.
    gamma, alpha, delay_steps
        The linear circuit: input delay ``delay_steps`` (whole steps), blend
        ``gamma``, extrapolation horizon ``alpha``.
    n_latents : int
        Latents carrying the position (>= 2): ``z = p_theory A' + b``.
    n_distractors : int
        Extra latents of unit-variance noise constant over each sequence
        (like a blob's position), carrying no circle position.
    noise_px : float
        Standard deviation of the noise, in px per coordinate of the
        position, added before the embedding (so that a perfect readout of
        ``z`` would err by ``noise_px``).
    noise_kind : {"independent", "sequence"}
    seed : int
        Embedding and noise.
    trajectory_seed : int
        The world's trajectories.
    embedding : {"affine", "tuning"}
        ``"affine"``: ``z = p A' + b``. ``"tuning"``: each latent a Gaussian
        tuning curve of the (noisy) position, ``exp(-|p - c_i|^2 / (2 s^2))``
        with centres ``c_i`` drawn in [0, 1]^2 and ``s = 0.3``: a smooth
        nonlinear code, as an autoencoder's latents are, on which a model
        linear in the position is misspecified.

    Returns
    -------
    xarray.Dataset
        ``factors`` (sample, time, factor), ``z`` (sample, time, latent)
        with ``first_valid_step``, ``z_theory`` (sample, time, coordinate):
        the noise-free circle position of the circuit; attributes
        ``dt_ms``, ``pixels_per_unit``.
    """
    if embedding not in EMBEDDINGS:
        raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}.")
    if noise_kind not in NOISE_KINDS:
        raise ValueError(f"noise_kind must be one of {NOISE_KINDS}, got {noise_kind!r}.")
    factors = world.trajectories(n, seed=trajectory_seed)
    names = list(world.factor_names)
    theory = inertia_theory(gamma, alpha, delay_steps)
    p = theory_trace(theory, "z", factors, names, CIRCLE_FACTORS)  # (n, T, 2)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    ppu = px_per_unit(world.size)
    a = rng.normal(size=(n_latents, 2))
    b = rng.normal(size=n_latents)
    if noise_kind == "independent":
        e = rng.normal(size=p.shape)
    else:
        e = np.repeat(rng.normal(size=(p.shape[0], 1, 2)), p.shape[1], axis=1)
    noisy = p + e * noise_px / ppu
    if embedding == "affine":
        z = noisy @ a.T + b
    else:
        centres = rng.uniform(0.0, 1.0, size=(n_latents, 2))
        z = np.exp(-((noisy[..., None, :] - centres) ** 2).sum(-1) / (2 * 0.3 ** 2))
    if n_distractors:
        z = np.concatenate([z, np.repeat(rng.normal(size=(p.shape[0], 1, n_distractors)), p.shape[1], 1)], -1)
    t = np.arange(p.shape[1]) * 10.0
    ds = xr.Dataset(
        {"factors": (("sample", "time", "factor"), factors),
         "z": (("sample", "time", "latent"), z, {"first_valid_step": int(delay_steps)}),
         "z_theory": (("sample", "time", "coordinate"), p)},
        coords={"sample": np.arange(p.shape[0]), "time": ("time", t, {"units": "ms"}), "factor": names,
                "coordinate": list(CIRCLE_FACTORS)},
        attrs={"dt_ms": 10.0, "pixels_per_unit": ppu, "gamma": float(gamma), "alpha": float(alpha),
               "delay_steps": int(delay_steps), "noise_px": float(noise_px), "noise_kind": noise_kind,
               "embedding": embedding},
    )
    return ds
