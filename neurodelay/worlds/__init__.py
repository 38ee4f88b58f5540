"""Stimulus worlds: a white circle in front of a Gaussian blob, static or moving.

Worlds are frozen attrs specs holding plain values; ``sample`` draws seeded
factors and renders them, vectorised over samples and frames, on any device,
into an :class:`Episode`.
"""

from .circle import MovingCircle
from .static import CircleOverBlob
from .episode import Episode
from .original import FACTOR_NAMES, original_sequences, static_grid

__all__ = ["CircleOverBlob", "MovingCircle", "Episode", "original_sequences", "static_grid", "FACTOR_NAMES"]
