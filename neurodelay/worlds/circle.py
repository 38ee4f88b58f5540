"""World specs: the moving circle in front of a Gaussian blob (the static world is in static.py, re-exported here).

Positions are factors in [0, 1] (x is the column, y the row), factor order
``[blob_x, blob_y, circle_x, circle_y]``; the moving world appends the
circle velocity ``[circle_vx, circle_vy]`` in factor units per frame, and
with an occluder (``occlusion_frames > 0``) ``circle_occluded`` (1 where
the circle is hidden behind it, else 0).

Factor units: a blob factor v puts the blob's mean at v image widths; a
circle factor v puts the circle's centre at ``0.125 + 0.75 v`` image widths
(the original's 8..56 px of 64 px), so one circle factor unit is 0.75 image
widths (``0.75 * size`` px). Circle travel, speeds and velocities are in
circle factor units; radii and ``blob_sigma`` are in image widths. (The
seed-compatible renderer, with the original's integer pixel centres, draws
blob and circle a quarter of an output pixel further right and down.)
"""

import math
import numbers
from typing import ClassVar, Optional

import attrs
import numpy as np
import torch

from ..errors import ConfigError
from . import _spec
from .episode import Episode
from .original import (
    BLOB_GRID,
    FACTOR_NAMES,
    N_ORIGINAL_FRAMES,
    N_ORIGINAL_SEQUENCES,
    ORIGINAL_MIN_TRAVEL,
    original_sequences,
)
from .static import CIRCLE_VALUE_SETS, CircleOverBlob, circle_value_set, render_fields_doc  # noqa: F401 (re-exported)

VELOCITY_NAMES = ("circle_vx", "circle_vy")
#: The factor that says, frame by frame, whether the circle is behind the occluder (1) or drawn (0).
OCCLUSION_NAME = "circle_occluded"
#: A circle factor whose disc cannot reach the image (centre 3.125 image widths from the origin, radii <= 0.5): both
#: renderers then draw the blob alone, bit for bit (tests/unit/test_occluded_world.py), at no extra cost.
_OFFSCREEN = 4.0
#: Earliest frame at which a drawn occlusion starts (``MovingCircle.occlusion_start=None``): two frames show the motion.
OCCLUSION_EARLIEST = 2

#: How the circle can travel its path (``MovingCircle.motion``).
MOTIONS = ("linear", "reversal", "accelerating")


@render_fields_doc
@attrs.frozen
class MovingCircle:
    """Moving world: the circle crosses a static blob at constant velocity.

    Parameters
    ----------
    RENDER_FIELDS
    n_frames : int
        Frames per sequence (>= 2).
    min_travel : float
        Least distance, in circle factor units (0.75 image widths each),
        between the first and last circle positions. Without a speed range,
        start and end points are uniform in [0, 1]^2 and pairs closer than
        this are redrawn (the original).
    speed_min, speed_max : float or None
        Speed range in circle factor units per frame (both or neither). Given, the
        speed is uniform in ``[max(speed_min, min_travel / (n_frames - 1)),
        speed_max]``, the direction uniform, and the start uniform among
        the points whose whole path stays in [0, 1]^2.
    dataset : {None, "original"}
        None: fresh random trajectories. "original": sequences picked by
        index (uniform, with replacement) from ``original_sequences``.
    n_sequences : int
        Size of the fixed dataset when ``dataset="original"``.
    motion : {"linear", "reversal", "accelerating"}
        How the circle travels its path, the straight segment from its first
        position ``p0`` to ``p0 + v (n_frames - 1)`` drawn as above: at
        ``p(t) = p0 + v s(t)`` with a path coordinate ``s`` in ``[0,
        n_frames - 1]``. "linear" (the original): ``s(t) = t``, constant
        velocity. "reversal": ``s`` moves one step per frame and turns back
        at random frames (each frame after the first with probability
        ``reversal_rate``) and at the segment's ends, so the speed is that of
        the linear world and the path stays inside the image; a linear
        extrapolation overshoots at every turn. "accelerating": ``s``
        advances by a smoothly varying, strictly positive amount per frame
        (``exp`` of a random walk of step ``speed_jitter`` smoothed over 3
        frames), scaled so that the circle still ends at the segment's end:
        the mean speed is that of the linear world.
    reversal_rate : float
        Probability per frame of a turn (motion "reversal"), in [0, 1].
    speed_jitter : float
        Step of the log-speed random walk (motion "accelerating"), >= 0.
    pixel_noise : float
        Standard deviation of independent Gaussian noise added to every
        pixel of the rendered frames (then clipped to [0, 1]); 0: none.
        Factors and masks are those of the noise-free scene.
    occlusion_frames : int
        0 (the default): the circle is drawn on every frame. k > 0: it
        vanishes behind an occluder for k consecutive frames of each
        sequence and reappears further along its path; those frames show the
        blob alone. It moves on behind the occluder: the position and
        velocity factors hold its true motion throughout, and a seventh
        factor, ``circle_occluded``, is 1 on the hidden frames and 0 on the
        others (``render`` and ``masks`` honour it: the masks of a hidden
        frame have no circle, all background). A circuit that reads
        ``world.factors`` therefore still sees the true position; only the
        frames hide it. k <= n_frames - 2 (a frame before and after).
    occlusion_start : int or None
        First hidden frame. None (the default): drawn per sequence,
        uniformly among the frames ``2 .. n_frames - k - 1`` (two frames
        show the motion before it vanishes, at least one after it
        reappears), from a seeded stream of its own (see
        ``trajectories``). An int: the same frame for every sequence, in
        ``[1, n_frames - k - 1]``. Only with ``occlusion_frames > 0``.
    """

    kind: ClassVar[str] = "moving_circle"

    size: int = attrs.field(default=32, validator=_spec.image_size)
    seed_compatible: bool = attrs.field(default=False, validator=_spec.is_bool)
    radius: float = attrs.field(default=0.1, validator=_spec.radius)
    blob_sigma: float = attrs.field(default=_spec.BLOB_SIGMA, validator=_spec.positive)
    blob_brightness: float = attrs.field(default=_spec.BLOB_BRIGHTNESS, validator=_spec.unit_interval)
    n_frames: int = attrs.field(default=N_ORIGINAL_FRAMES, validator=_spec.frame_count)
    min_travel: float = attrs.field(default=ORIGINAL_MIN_TRAVEL, validator=_spec.travel)
    speed_min: Optional[float] = attrs.field(default=None, validator=_spec.optional_speed)
    speed_max: Optional[float] = attrs.field(default=None, validator=_spec.optional_speed)
    dataset: Optional[str] = attrs.field(default=None)
    n_sequences: int = attrs.field(default=N_ORIGINAL_SEQUENCES, validator=_spec.positive_int)
    motion: str = attrs.field(default="linear")
    reversal_rate: float = attrs.field(default=0.15, validator=_spec.probability)
    speed_jitter: float = attrs.field(default=0.3, validator=_spec.non_negative)
    pixel_noise: float = attrs.field(default=0.0, validator=_spec.non_negative)
    occlusion_frames: int = attrs.field(default=0)
    occlusion_start: Optional[int] = attrs.field(default=None)

    @occlusion_frames.validator
    def _check_occlusion_frames(self, attr, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ConfigError(f"MovingCircle.occlusion_frames must be an integer >= 0 (frames the circle spends "
                              f"hidden behind the occluder), got {value!r}; use 0 for no occluder or e.g. "
                              f"occlusion_frames=4.")

    @occlusion_start.validator
    def _check_occlusion_start(self, attr, value):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise ConfigError(f"MovingCircle.occlusion_start must be None (drawn per sequence) or an integer "
                              f"frame, got {value!r}; use e.g. occlusion_start=6 or leave it out.")

    @motion.validator
    def _check_motion(self, attr, value):
        if value not in MOTIONS:
            raise ConfigError(f"MovingCircle.motion must be one of {MOTIONS} (how the circle travels its path), got "
                              f"{value!r}; use motion='linear' (the original's constant velocity).")

    @dataset.validator
    def _check_dataset(self, attr, value):
        if value not in (None, "original"):
            raise ConfigError(
                f"MovingCircle.dataset must be None (fresh random trajectories) or 'original' "
                f"(the original's fixed sequences), got {value!r}."
            )

    def __attrs_post_init__(self):
        self._check_occlusion()
        lo, hi, steps = self.speed_min, self.speed_max, self.n_frames - 1
        if (lo is None) != (hi is None):
            raise ConfigError(
                f"MovingCircle.speed_min and speed_max must be given together, got speed_min={lo!r}, "
                f"speed_max={hi!r}; set both, or neither for the original start/end-point sampling.",
                field="speed_min"
            )
        if hi is not None:
            if lo > hi:
                raise ConfigError(
                    f"MovingCircle.speed_min must be <= speed_max, got {lo!r} > {hi!r}; swap them.",
                    field="speed_min"
                )
            if hi * steps > 1:
                raise ConfigError(
                    f"MovingCircle.speed_max * (n_frames - 1) must be <= 1 circle factor unit (the span of "
                    f"circle positions, [0, 1]) so that a path fits in the image, got {hi!r} * {steps} = "
                    f"{hi * steps:.4g}; use speed_max <= {1 / steps:.4g}.", field="speed_max"
                )
            if hi * steps < self.min_travel:
                raise ConfigError(
                    f"MovingCircle.speed_max * (n_frames - 1) must reach min_travel={self.min_travel!r}, "
                    f"got {hi!r} * {steps} = {hi * steps:.4g}; raise speed_max to at least "
                    f"{self.min_travel / steps:.4g} or lower min_travel.", field="speed_max"
                )
        if self.dataset == "original":
            if self.n_frames != N_ORIGINAL_FRAMES:
                raise ConfigError(
                    f"MovingCircle.n_frames must be {N_ORIGINAL_FRAMES} with dataset='original' (its sequences "
                    f"have {N_ORIGINAL_FRAMES} frames), got {self.n_frames!r}; "
                    f"set n_frames={N_ORIGINAL_FRAMES} or dataset=None.", field="n_frames"
                )
            if self.motion != "linear":
                raise ConfigError(
                    f"MovingCircle with dataset='original' takes its trajectories as they are: motion must be "
                    f"'linear', got {self.motion!r}; drop it or set dataset=None.", field="motion"
                )
            if hi is not None or self.min_travel != ORIGINAL_MIN_TRAVEL:
                raise ConfigError(
                    f"MovingCircle with dataset='original' takes its trajectories as they are: speed_min/"
                    f"speed_max must be None and min_travel {ORIGINAL_MIN_TRAVEL}, got speed_min={lo!r}, "
                    f"speed_max={hi!r}, min_travel={self.min_travel!r}; drop them or set dataset=None.",
                    field="speed_min" if lo is not None else "speed_max" if hi is not None else "min_travel"
                )

    def _check_occlusion(self):
        k, start, n_t = self.occlusion_frames, self.occlusion_start, self.n_frames
        if k == 0:
            if start is not None:
                raise ConfigError(f"MovingCircle.occlusion_start is only read with occlusion_frames > 0, got "
                                  f"occlusion_start={start!r} with occlusion_frames=0; set occlusion_frames "
                                  f"(e.g. 4) or drop occlusion_start.")
            return
        if self.dataset == "original":
            raise ConfigError(f"MovingCircle with dataset='original' takes the original's frames as they are: "
                              f"occlusion_frames must be 0, got {k!r}; drop it or set dataset=None.")
        if k > n_t - 2:
            raise ConfigError(f"MovingCircle.occlusion_frames must be <= n_frames - 2 = {n_t - 2} (the circle is "
                              f"seen before it vanishes and after it reappears), got {k!r} with n_frames={n_t}; "
                              f"lower occlusion_frames or raise n_frames to at least {k + 2}.")
        if start is None:
            if n_t - k - 1 < OCCLUSION_EARLIEST:
                raise ConfigError(f"MovingCircle.occlusion_frames must be <= n_frames - {OCCLUSION_EARLIEST + 1} = "
                                  f"{n_t - OCCLUSION_EARLIEST - 1} when occlusion_start is drawn (it starts at "
                                  f"frame {OCCLUSION_EARLIEST} or later and ends before the last frame), got {k!r} "
                                  f"with n_frames={n_t}; lower occlusion_frames, raise n_frames or fix "
                                  f"occlusion_start=1.")
        elif not 1 <= start <= n_t - k - 1:
            raise ConfigError(f"MovingCircle.occlusion_start must be in [1, n_frames - occlusion_frames - 1] = "
                              f"[1, {n_t - k - 1}] (the circle is seen on frame 0 and reappears by the last "
                              f"frame), got {start!r}; use e.g. occlusion_start={max(1, (n_t - k) // 2)} or "
                              f"None to draw it per sequence.")

    @property
    def frame_shape(self) -> tuple:
        """(1, size, size): channel, height, width."""
        return (1, self.size, self.size)

    @property
    def factor_names(self) -> tuple:
        """The four position factors, then ``circle_vx``, ``circle_vy`` (and ``circle_occluded`` with an occluder)."""
        return FACTOR_NAMES + VELOCITY_NAMES + ((OCCLUSION_NAME,) if self.occlusion_frames else ())

    @property
    def n_factors(self) -> int:
        """6 (7 with an occluder)."""
        return len(self.factor_names)

    def trajectories(self, n: int, seed: int = 0) -> np.ndarray:
        """Draw sequence factors.

        Generators: ``SeedSequence(seed).spawn(5)`` = (trajectory, blob,
        motion, pixel noise, occlusion); the first two are those of
        ``spawn(2)`` and the first four those of ``spawn(4)``, so the
        trajectories of a world without the later options are those of every
        earlier version, and an occluder changes nothing but the frames it
        hides. The blob is static, its x and y drawn from
        ``linspace(0, 1, 32)``.

        Parameters
        ----------
        n : int
            Number of sequences.
        seed : int
            Seed (>= 0).

        Returns
        -------
        numpy.ndarray
            float64, shape (n, n_frames, n_factors): blob x, y, circle x, y
            (factor units, in [0, 1]) and circle vx, vy (factor units per
            frame: constant for linear motion; else the backward difference
            ``p(t) - p(t - 1)``, the forward one at step 0); with an occluder,
            ``circle_occluded`` (1.0 on the hidden frames, else 0.0).
        """
        n = _spec.check_count("n", n)
        traj_rng, blob_rng, motion_rng, _ = (np.random.default_rng(s) for s in _spec.seed_sequence(seed).spawn(4))
        steps = self.n_frames - 1
        if self.dataset == "original":
            seq = original_sequences(self.n_sequences)[traj_rng.integers(0, self.n_sequences, n)]
            out = np.concatenate([seq, np.repeat((seq[:, -1:, 2:] - seq[:, :1, 2:]) / steps, self.n_frames, 1)], -1)
            return np.ascontiguousarray(out)
        if self.speed_min is None:
            start, end = self._endpoints(traj_rng, n)
            velocity = (end - start) / steps
        else:
            start, velocity = self._speed_range(traj_rng, n)
        blob = BLOB_GRID[blob_rng.integers(0, len(BLOB_GRID), (n, 2))]
        out = self._factor_array(start, velocity, blob, self.n_frames)
        if self.motion != "linear":
            s = self._path(motion_rng, n)  # (n, T)
            out[..., 2:4] = start[:, None] + velocity[:, None] * s[..., None]
            ds = np.diff(s, axis=1)
            ds = np.concatenate([ds[:, :1], ds], axis=1)  # backward difference, forward at step 0
            out[..., 4:] = velocity[:, None] * ds[..., None]
        if self.occlusion_frames:
            out = np.concatenate([out, self._occluded(_spec.seed_sequence(seed).spawn(5)[4], n)[..., None]], -1)
        return out

    def _occluded(self, seed_seq, n: int) -> np.ndarray:
        """1.0 on the frames hidden behind the occluder, else 0.0: (n, n_frames) float64."""
        k, n_t = self.occlusion_frames, self.n_frames
        if self.occlusion_start is None:
            start = np.random.default_rng(seed_seq).integers(OCCLUSION_EARLIEST, n_t - k, n)  # to n_t - k - 1
        else:
            start = np.full(n, int(self.occlusion_start))
        t = np.arange(n_t)
        return ((t >= start[:, None]) & (t < start[:, None] + k)).astype(np.float64)

    def _path(self, rng, n: int) -> np.ndarray:
        """Path coordinates s (n, T) in [0, T - 1] for the non-linear motions (see the class docstring)."""
        n_t = self.n_frames
        if self.motion == "reversal":
            turn = rng.random((n, n_t)) < self.reversal_rate
            s = np.zeros((n, n_t))
            step = np.ones(n)
            for t in range(1, n_t):
                step = np.where(turn[:, t], -step, step)
                nxt = s[:, t - 1] + step
                bounce = (nxt < 0) | (nxt > n_t - 1)
                step = np.where(bounce, -step, step)
                s[:, t] = s[:, t - 1] + step
            return s
        walk = np.cumsum(rng.normal(0.0, self.speed_jitter, (n, n_t + 1)), axis=1)
        padded = np.pad(walk, ((0, 0), (1, 1)))  # a 3-frame moving average, zeros beyond the ends
        smooth = ((padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]) / 3.0)[:, 1:]
        inc = np.exp(smooth - smooth.mean(axis=1, keepdims=True))[:, 1:]  # (n, T - 1) > 0
        s = np.concatenate([np.zeros((n, 1)), np.cumsum(inc, axis=1)], axis=1)
        return s * (n_t - 1) / s[:, -1:]

    def _endpoints(self, rng, n):
        points = rng.random((n, 2, 2))
        while True:
            close = np.linalg.norm(points[:, 1] - points[:, 0], axis=-1) < self.min_travel
            if not close.any():
                return points[:, 0], points[:, 1]
            points[close] = rng.random((int(close.sum()), 2, 2))

    def _speed_range(self, rng, n):
        steps = self.n_frames - 1
        lo = max(self.speed_min, self.min_travel / steps)
        speed = rng.uniform(lo, self.speed_max, n)
        angle = rng.uniform(0.0, 2 * math.pi, n)
        velocity = speed[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)
        shift = velocity * steps  # |shift| <= 1 along each axis
        low = np.maximum(0.0, -shift)
        start = low + rng.random((n, 2)) * (np.minimum(1.0, 1.0 - shift) - low)
        return start, velocity

    @staticmethod
    def _factor_array(start, velocity, blob, n_frames):
        out = np.empty((len(start), n_frames, 6))
        out[..., :2] = blob[:, None]
        out[..., 4:] = velocity[:, None]
        np.multiply(velocity[:, None], np.arange(n_frames)[:, None], out=out[..., 2:4])
        out[..., 2:4] += start[:, None]
        return out

    def sample(self, n_samples: int, seed: int = 0, device="cpu") -> Episode:
        """Draw and render moving-circle sequences.

        Parameters
        ----------
        n_samples : int
            Number of sequences.
        seed : int
            Seed (>= 0) of the trajectory draws (see ``trajectories``).
        device : str or torch.device
            Device on which frames are rendered and returned (ValueError if
            torch does not know it or it is a CUDA device that is not here).

        Returns
        -------
        Episode
            frames (n_samples, n_frames, 1, size, size), factors
            (n_samples, n_frames, n_factors).
        """
        n_samples = _spec.check_count("n_samples", n_samples)
        _spec.check_device(device)
        f = torch.as_tensor(self.trajectories(n_samples, seed), dtype=torch.float32, device=device)
        # The blob is static within a sequence: render its profiles once per sequence.
        circle = f[..., 2:4]
        if self.occlusion_frames:  # hidden: drawn as a disc so far outside that it leaves every pixel to the blob
            circle = circle.masked_fill(f[..., 6:7] > 0.5, _OFFSCREEN)
        frames = _spec.render_parts(self, f[:, :1, :2], circle)
        if self.pixel_noise > 0:
            noise_seed = _spec.seed_sequence(seed).spawn(4)[3]
            gen = torch.Generator(device="cpu").manual_seed(int(noise_seed.generate_state(1, dtype=np.uint64)[0] >> 1))
            noise = torch.randn(frames.shape, generator=gen, dtype=torch.float32).to(frames.device)
            frames = (frames + self.pixel_noise * noise).clamp_(0.0, 1.0)
        return Episode(frames, f, self.factor_names)

    def episode_from_trajectories(self, start, velocity, blob, n_frames=None, device="cpu") -> Episode:
        """Render given constant-velocity trajectories (for probes).

        Parameters
        ----------
        start, velocity, blob : array-like
            Shape (n, 2) each, n >= 1: first circle position (factor
            units), velocity (factor units per frame), static blob
            position. The circle may leave [0, 1]^2; it is then partly or
            wholly outside the image. Every value must be finite
            (ValueError otherwise).
        n_frames : int, optional
            Frames to render (default: the world's ``n_frames``).
        device : str or torch.device
            Device of the returned episode.

        Returns
        -------
        Episode
            frames (n, n_frames, 1, size, size), factors (n, n_frames,
            n_factors); with an occluder the circle is drawn on every frame
            (``circle_occluded`` 0).
        """
        n_frames = self.n_frames if n_frames is None else _spec.check_count("n_frames", n_frames)
        _spec.check_device(device)
        arrays = []
        for name, a, columns in (("start", start, ("circle_x", "circle_y")),
                                 ("velocity", velocity, VELOCITY_NAMES),
                                 ("blob", blob, ("blob_x", "blob_y"))):
            a = torch.as_tensor(a).detach().cpu().numpy().astype(np.float64)
            if a.ndim != 2 or a.shape[1] != 2:
                raise ValueError(f"{name} must have shape (n, 2), got {a.shape}.")
            _spec.check_finite(torch.from_numpy(a), columns, what=name)
            arrays.append(a)
        if len({a.shape[0] for a in arrays}) != 1:
            raise ValueError(f"start, velocity and blob must have the same length n, "
                             f"got {[a.shape[0] for a in arrays]}.")
        if arrays[0].shape[0] == 0:
            raise ValueError("start, velocity and blob must hold at least one trajectory (n >= 1), got n = 0; "
                             "pass arrays of shape (n, 2), e.g. start=[[0.2, 0.5]].")
        out = self._factor_array(arrays[0], arrays[1], arrays[2], n_frames)
        if self.occlusion_frames:
            out = np.concatenate([out, np.zeros(out.shape[:-1] + (1,))], -1)
        f = torch.as_tensor(out, dtype=torch.float32, device=device)
        return Episode(_spec.render_parts(self, f[:, :1, :2], f[..., 2:4]), f, self.factor_names)

    def _hidden(self, factors):
        """Factors as float32 and where their ``circle_occluded`` hides the circle (None: nowhere)."""
        f = _spec.as_factors(factors)
        if not self.occlusion_frames or f.shape[-1] <= 6:
            return f, None
        return f, f[..., 6] > 0.5

    def render(self, factors) -> torch.Tensor:
        """Render factors (..., >= 4; the first 4 used) to float32 frames (..., 1, size, size).

        With an occluder, a seventh factor (``circle_occluded``) above 0.5
        hides the circle: that frame shows the blob alone, as ``sample``
        draws it. Deterministic; runs on the factors' device. Raises
        ValueError, naming the factor and the row, if a used factor is NaN or
        infinite.
        """
        frames = _spec.render(self, factors)
        f, hidden = self._hidden(factors)
        if hidden is not None and bool(hidden.any()):
            frames[hidden] = _spec.render_blob(self, f[hidden][:, :2])
        return frames

    def masks(self, factors) -> dict:
        """Region masks of the circle: bool (..., 1, size, size); see ``CircleOverBlob.masks``.

        With an occluder, a frame whose ``circle_occluded`` (seventh factor)
        is above 0.5 has no circle: ``inside``, ``edge`` and ``object`` are
        empty and ``background`` is the whole frame, as drawn.
        """
        out = _spec.masks(self, factors)
        f, hidden = self._hidden(factors)
        if hidden is not None:
            h = hidden[..., None, None, None]
            out = {k: (v | h) if k == "background" else (v & ~h) for k, v in out.items()}
        return out
