"""The static world: a white circle in front of a Gaussian blob, at the original's grid positions.

Factors and units as in :mod:`neurodelay.worlds.circle` (the moving world), which re-exports these names.
"""

from typing import ClassVar

import attrs
import numpy as np
import torch

from ..errors import ConfigError
from . import _spec
from .episode import Episode
from .original import BLOB_GRID, CIRCLE_GRID, FACTOR_NAMES

__all__ = ["CIRCLE_VALUE_SETS", "circle_value_set", "render_fields_doc", "CircleOverBlob"]

#: Circle value sets of the static world: all 16 grid values, or one half of them.
CIRCLE_VALUE_SETS = ("grid", "even", "odd")


def circle_value_set(name: str) -> np.ndarray:
    """Circle x / y values of a ``circle_values`` setting: ``grid`` (all 16
    of ``linspace(0, 1, 16)``), ``even`` (indices 0, 2, ..., 14) or ``odd``
    (indices 1, 3, ..., 15)."""
    if name == "grid":
        return CIRCLE_GRID
    if name == "even":
        return CIRCLE_GRID[0::2]
    if name == "odd":
        return CIRCLE_GRID[1::2]
    raise ValueError(f"circle_values must be one of {', '.join(map(repr, CIRCLE_VALUE_SETS))}, got {name!r}.")


def render_fields_doc(cls):
    cls.__doc__ = cls.__doc__.replace(
        "RENDER_FIELDS",
        """size : int
        Output image size in pixels (>= 8); frames are (1, size, size).
    seed_compatible : bool
        False: the corrected renderer (true radius, exact area-coverage
        anti-aliasing, rendered at ``size``). True: the original generator
        (binary disc with its radius quirk and uint8 quantisation at
        2*size px, PIL's bilinear 2x reduction); matches the original's
        frames exactly at size 32.
    radius : float
        Circle radius in image widths (0.1 = 3.2 px at 32 px).
    blob_sigma : float
        Blob standard deviation in image widths (the original's covariance
        15*64 px^2 at 64 px: sqrt(960)/64 = 0.484).
    blob_brightness : float
        Blob peak intensity in [0, 1]; the circle's is 1 and the sum is
        clipped at 1.""",
    )
    return cls


@render_fields_doc
@attrs.frozen
class CircleOverBlob:
    """Static world: the circle and the blob at the original's grid positions.

    Parameters
    ----------
    RENDER_FIELDS
    circle_values : str
        Which circle positions are drawn: ``"grid"`` (all 16 values of
        ``linspace(0, 1, 16)`` for x and for y), ``"even"`` (the 8 at even
        indices) or ``"odd"`` (the other 8). Train on one half and the
        ``heldout`` analysis scores the other.
    """

    kind: ClassVar[str] = "circle_over_blob"

    size: int = attrs.field(default=32, validator=_spec.image_size)
    seed_compatible: bool = attrs.field(default=False, validator=_spec.is_bool)
    radius: float = attrs.field(default=0.1, validator=_spec.radius)
    blob_sigma: float = attrs.field(default=_spec.BLOB_SIGMA, validator=_spec.positive)
    blob_brightness: float = attrs.field(default=_spec.BLOB_BRIGHTNESS, validator=_spec.unit_interval)
    circle_values: str = attrs.field(default="grid")

    @circle_values.validator
    def _check_circle_values(self, attr, value):
        if value not in CIRCLE_VALUE_SETS:
            raise ConfigError(f"CircleOverBlob.circle_values must be one of "
                              f"{', '.join(map(repr, CIRCLE_VALUE_SETS))}, got "
                              f"{value!r}: 'grid' draws circle x and y from all 16 grid values, 'even' from "
                              f"the 8 at even indices (train on them, hold the others out), 'odd' from the rest.")

    @property
    def circle_grid(self) -> np.ndarray:
        """The circle x and y values this world draws from (see ``circle_values``)."""
        return circle_value_set(self.circle_values)

    @property
    def frame_shape(self) -> tuple:
        """(1, size, size): channel, height, width."""
        return (1, self.size, self.size)

    @property
    def factor_names(self) -> tuple:
        """``("blob_x", "blob_y", "circle_x", "circle_y")``."""
        return FACTOR_NAMES

    @property
    def n_factors(self) -> int:
        """4."""
        return len(FACTOR_NAMES)

    @property
    def n_frames(self) -> int:
        """1: a static scene is one frame."""
        return 1

    def factors(self, n_samples: int, seed: int = 0) -> np.ndarray:
        """Draw factors from the static grid.

        Circle x and y from ``linspace(0, 1, 16)`` (or its even- or
        odd-indexed half, see ``circle_values``), blob x and y from
        ``linspace(0, 1, 32)``, uniformly and independently (with
        replacement). Generators: ``SeedSequence(seed).spawn(2)`` =
        (circle, blob).

        Returns
        -------
        numpy.ndarray
            float64, shape (n_samples, 4).
        """
        n = _spec.check_count("n_samples", n_samples)
        circle_rng, blob_rng = (np.random.default_rng(s) for s in _spec.seed_sequence(seed).spawn(2))
        grid = self.circle_grid
        circle = grid[circle_rng.integers(0, len(grid), (n, 2))]
        blob = BLOB_GRID[blob_rng.integers(0, len(BLOB_GRID), (n, 2))]
        return np.concatenate([blob, circle], axis=-1)

    def sample(self, n_samples: int, seed: int = 0, device="cpu") -> Episode:
        """Draw and render static scenes.

        Parameters
        ----------
        n_samples : int
            Number of scenes.
        seed : int
            Seed (>= 0) of the factor draws (see ``factors``).
        device : str or torch.device
            Device on which frames are rendered and returned (ValueError if
            torch does not know it or it is a CUDA device that is not here).

        Returns
        -------
        Episode
            frames (n_samples, 1, 1, size, size), factors (n_samples, 1, 4).
        """
        _spec.check_device(device)
        f = torch.as_tensor(self.factors(n_samples, seed), dtype=torch.float32, device=device)[:, None]
        # Drawn from the grid, so finite: render without the check (and its host sync).
        return Episode(_spec.render_unchecked(self, f), f, self.factor_names)

    def render(self, factors) -> torch.Tensor:
        """Render factors (..., >= 4; the first 4 used) to float32 frames (..., 1, size, size).

        Deterministic; runs on the factors' device. Raises ValueError, naming
        the factor and the row, if a used factor is NaN or infinite.
        """
        return _spec.render(self, factors)

    def masks(self, factors) -> dict:
        """Region masks of the circle: bool (..., 1, size, size) per key.

        Keys ``inside``, ``edge``, ``object``, ``background``: the circle
        alone, drawn by this world's renderer (with the original's disc test
        when ``seed_compatible``) at radius r, r/2 and 1.5 r and thresholded
        at > 0.4; object = r; edge = object XOR r/2; inside = object AND NOT
        edge; background = NOT 1.5 r. Only the circle factors are used; a
        NaN or infinite one raises ValueError naming it and its row.
        """
        return _spec.masks(self, factors)
