"""Ready-made circuits built from the generic components."""

from __future__ import annotations

import math

from .circuit import Circuit, Edge
from ._util.validators import is_real
from .components import Blend, ConvDecoder, ConvEncoder, Extrapolator, Relay
from .errors import CircuitError

__all__ = ["inertia", "compensated", "PRESETS"]


def inertia(n_latents: int = 4, gamma: float = 0.5, alpha: float = 1.0, input_delay_ms: float = 10.0,
            *, dt_ms: float = 10.0, size: int = 32, gaussian: bool = False) -> Circuit:
    """The representational-inertia circuit of the original study.

    ``enc`` encodes frames arriving ``input_delay_ms`` late; ``z`` blends the
    encoding with ``pred``, a linear extrapolation (horizon ``alpha`` steps)
    of ``z`` one step earlier; ``dec`` decodes ``z``::

        world.frames --(input delay)--> enc --> z.drive
                               z --(1 step)--> pred --> z.prediction
                               z --> dec

    With ``input_delay_ms = dt_ms`` and the decoder scored against the
    current frame, this is the original's recurrence exactly
    (z_0 = z_enc_0, zhat_1 = z_0, z_i = (1 - gamma) z_enc_i + gamma zhat_i,
    zhat_{i+1} = z_i + alpha (z_i - z_{i-1})), shifted by one step.

    Parameters
    ----------
    n_latents : int
    gamma : float in [0, 1]
        Weight of the prediction in the blend.
    alpha : float
        Extrapolation horizon in steps (1 in the original).
    input_delay_ms : float
        Conduction delay from the world to the encoder, in ms.
    dt_ms : float
        Simulation step in ms.
    size : int
        Image size in pixels.
    gaussian : bool
        Gaussian (beta-VAE) latent instead of a deterministic one.

    Raises
    ------
    CircuitError
        ``dt_ms`` is not a positive finite number (it is also the delay of
        the recurrent edge), or another parameter is out of range.
    """
    _check_dt(dt_ms)  # before it becomes the recurrent edge's delay_ms, whose error would name that instead
    return Circuit(
        nodes={
            "enc": ConvEncoder(n_latents=n_latents, size=size, gaussian=gaussian),
            "z": Blend(gamma=gamma),
            "pred": Extrapolator(alpha=alpha),
            "dec": ConvDecoder(n_latents=n_latents, size=size),
        },
        edges=[
            Edge("world.frames", "enc", delay_ms=input_delay_ms),
            Edge("enc", "z.drive"),
            Edge("z", "pred", delay_ms=dt_ms),
            Edge("pred", "z.prediction"),
            Edge("z", "dec"),
        ],
        dt_ms=dt_ms,
    )


def compensated(n_latents: int = 4, input_delay_ms: float = 10.0, horizon_steps: float | None = None,
                *, dt_ms: float = 10.0, size: int = 32, gaussian: bool = False) -> Circuit:
    """Feed-forward delay compensation: extrapolate the delayed encoding.

    ``enc`` encodes frames arriving ``input_delay_ms`` late; ``z`` extrapolates
    it ``horizon_steps`` ahead (default: the delay in steps), which removes
    the lag for linear motion; ``dec`` decodes ``z``. With a horizon of 0 it is
    a plain delayed autoencoder.

    Parameters
    ----------
    n_latents : int
    input_delay_ms : float
        Conduction delay from the world to the encoder, in ms (>= 0).
    horizon_steps : float, optional
        Extrapolation horizon in steps (default ``input_delay_ms / dt_ms``).
    dt_ms : float
        Simulation step in ms (> 0).
    size : int
        Image size in pixels.
    gaussian : bool
        Gaussian (beta-VAE) latent instead of a deterministic one.

    Raises
    ------
    CircuitError
        ``dt_ms`` or ``input_delay_ms`` (needed for the default horizon)
        is not a finite number in range, or ``horizon_steps`` is not a
        finite number.
    """
    # Checked here, before the default horizon divides by them (the Circuit checks them again).
    _check_dt(dt_ms)
    if horizon_steps is None:
        if not _is_finite_number(input_delay_ms) or input_delay_ms < 0:
            raise CircuitError(f"input_delay_ms must be a finite number of ms >= 0 (the default horizon_steps "
                               f"is input_delay_ms / dt_ms), got {input_delay_ms!r}; use e.g. input_delay_ms=10.",
                               field="input_delay_ms")
        horizon_steps = input_delay_ms / dt_ms
    elif not _is_finite_number(horizon_steps):
        raise CircuitError(f"horizon_steps must be a finite number of steps (or None for input_delay_ms / dt_ms), "
                           f"got {horizon_steps!r}; use e.g. horizon_steps=1.", field="horizon_steps")
    return Circuit(
        nodes={
            "enc": ConvEncoder(n_latents=n_latents, size=size, gaussian=gaussian),
            "z": Extrapolator(alpha=float(horizon_steps)),
            "dec": ConvDecoder(n_latents=n_latents, size=size),
        },
        edges=[
            Edge("world.frames", "enc", delay_ms=input_delay_ms),
            Edge("enc", "z"),
            Edge("z", "dec"),
        ],
        dt_ms=dt_ms,
    )


def _is_finite_number(value) -> bool:
    return is_real(value) and math.isfinite(value)


def _check_dt(dt_ms) -> None:
    if not _is_finite_number(dt_ms) or dt_ms <= 0:
        raise CircuitError(f"dt_ms must be a positive number of ms, got {dt_ms!r}; use e.g. 10.")


def autoencoder(n_latents: int = 4, *, input_delay_ms: float = 0.0, dt_ms: float = 10.0,
                size: int = 32, gaussian: bool = False) -> Circuit:
    """A per-frame (variational) autoencoder: ``enc -> z -> dec`` with no temporal parts."""
    return Circuit(
        nodes={
            "enc": ConvEncoder(n_latents=n_latents, size=size, gaussian=gaussian),
            "z": Relay(),
            "dec": ConvDecoder(n_latents=n_latents, size=size),
        },
        edges=[Edge("world.frames", "enc", delay_ms=input_delay_ms), Edge("enc", "z"), Edge("z", "dec")],
        dt_ms=dt_ms,
    )


#: Presets by name, as used by study files (``circuit: {preset: inertia, ...}``).
PRESETS = {"inertia": inertia, "compensated": compensated, "autoencoder": autoencoder}
__all__.append("autoencoder")
