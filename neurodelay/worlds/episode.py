"""Episode: a batch of rendered frames with their ground-truth factors."""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class Episode:
    """Frames of a world and the factors that generated them.

    A frozen dataclass (not attrs) because it holds tensors.

    Parameters
    ----------
    frames : torch.Tensor
        float32, shape (sample, time, 1, H, W), values in [0, 1].
    factors : torch.Tensor
        float32, shape (sample, time, n_factor), on the device of ``frames``.
        Positions are in factor units ([0, 1]; a circle factor v puts its
        centre at ``0.125 + 0.75 v`` image widths, a blob factor v its mean
        at v image widths); velocities in factor units per frame.
    factor_names : tuple of str
        One name per factor, ``len(factor_names) == factors.shape[-1]``.
    """

    frames: torch.Tensor
    factors: torch.Tensor
    factor_names: tuple

    def __post_init__(self):
        f, z = self.frames, self.factors
        for field, x in (("frames", f), ("factors", z)):
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"Episode.{field} must be a torch.Tensor, got {type(x).__name__}; convert it "
                                f"with torch.as_tensor(..., dtype=torch.float32).")
            if not x.is_floating_point():
                raise TypeError(f"Episode.{field} must hold floating-point values, got {x.dtype}; convert with "
                                f".float()" + (" (and / 255 for 8-bit images)." if field == "frames" else "."))
        if f.ndim != 5 or f.shape[2] != 1:
            raise ValueError(
                f"Episode.frames must have shape (sample, time, 1, H, W), got {tuple(f.shape)}; "
                f"add the missing dimensions with unsqueeze."
            )
        if z.ndim != 3 or tuple(z.shape[:2]) != tuple(f.shape[:2]):
            raise ValueError(
                f"Episode.factors must have shape (sample, time, n_factor) with the frames' "
                f"(sample, time) = {tuple(f.shape[:2])}, got {tuple(z.shape)}."
            )
        if f.shape[0] < 1 or f.shape[1] < 1:
            raise ValueError(f"Episode.frames must hold at least one sample and one frame, got shape "
                             f"{tuple(f.shape)}.")
        if z.device != f.device:
            raise ValueError(f"Episode.factors is on {z.device} but the frames are on {f.device}; move both to "
                             f"one device (factors.to(frames.device)).")
        if isinstance(self.factor_names, str):
            raise ValueError(f"Episode.factor_names must be a sequence of names, got the string "
                             f"{self.factor_names!r}; for one factor write ({self.factor_names!r},).")
        names = tuple(self.factor_names)
        if len(names) != z.shape[-1] or not all(isinstance(n, str) for n in names):
            raise ValueError(
                f"Episode.factor_names must hold one string per factor ({z.shape[-1]}), "
                f"got {self.factor_names!r}."
            )
        object.__setattr__(self, "factor_names", names)

    @property
    def n_samples(self) -> int:
        """Number of samples (sequences)."""
        return self.frames.shape[0]

    @property
    def n_frames(self) -> int:
        """Number of frames per sample (1 for a static world)."""
        return self.frames.shape[1]

    def streams(self) -> dict:
        """Return the circuit input streams.

        Returns
        -------
        dict
            ``{"world.frames": frames, "world.factors": factors}``.
        """
        return {"world.frames": self.frames, "world.factors": self.factors}

    def to(self, device) -> "Episode":
        """Return a copy of the episode on ``device``."""
        return Episode(self.frames.to(device), self.factors.to(device), self.factor_names)
