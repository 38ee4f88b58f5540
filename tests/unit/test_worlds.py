"""Stimulus worlds: golden frames of the original generator, sampling, rendering, validation."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodelay.errors import ConfigError
from neurodelay.worlds import (
    FACTOR_NAMES,
    CircleOverBlob,
    Episode,
    MovingCircle,
    original_sequences,
    static_grid,
)
from neurodelay.worlds import _spec
from neurodelay.worlds import render as R
from neurodelay.worlds.flash import FlashLagProbe
from tests.helpers import SMALL_WORLD

GOLDEN = Path(os.environ.get("NEURODELAY_GOLDEN", Path(__file__).resolve().parents[1] / "data" / "seed_golden.npz"))
ONE_LEVEL = 1 / 255
MASK_ORDER = ("background", "object", "inside", "edge")
NAN = float("nan")


@pytest.fixture(scope="module")
def golden():
    if not GOLDEN.exists():
        pytest.fail(f"golden fixtures not found at {GOLDEN} (tests/data/seed_golden.npz, or NEURODELAY_GOLDEN)")
    with np.load(GOLDEN) as d:
        return {k: d[k] for k in d.files}


def assert_golden(frames: torch.Tensor, expected: np.ndarray):
    """Within one uint8 level everywhere, and equal on nearly every pixel."""
    err = np.abs(frames.numpy() - expected)
    assert frames.shape == expected.shape
    assert err.max() <= ONE_LEVEL + 1e-6, f"max error {err.max() * 255:.2f} levels"
    assert (err < 1e-6).mean() >= 0.999


# --- seed-compatible renderer against the original's frames -------------------------------


def test_golden_static_frames(golden):
    frames = CircleOverBlob(seed_compatible=True).render(torch.as_tensor(golden["static_factors"]))
    assert_golden(frames, golden["static_frames"])


def test_golden_probe_frames(golden):
    points = torch.as_tensor(golden["probe_points"])[:, None]  # (6, 1 frame, 4)
    assert_golden(MovingCircle(seed_compatible=True).render(points), golden["probe_frames"])


def test_golden_sequence_frames(golden):
    factors = torch.as_tensor(golden["seq_factors"]).transpose(1, 2)  # (8, 10, 4), time before factor
    assert_golden(MovingCircle(seed_compatible=True).render(factors), golden["seq_frames"])


def test_golden_64px_composite(golden):
    factors = torch.as_tensor(golden["seq_factors"][:2]).transpose(1, 2)
    w = MovingCircle()
    img = R.original_composite(factors[..., :2], factors[..., 2:4], 64, w.radius, w.blob_sigma, w.blob_brightness)
    np.testing.assert_array_equal(img.numpy(), np.round(golden["seq_frames_64"][:, :, 0] * 255))


def test_golden_probe_masks(golden):
    m = CircleOverBlob(seed_compatible=True).masks(torch.as_tensor(golden["probe_points"])[:, None])
    got = np.stack([m[k].numpy() for k in MASK_ORDER], axis=1)  # (6, 4, 1, 1, 32, 32)
    np.testing.assert_array_equal(got, golden["probe_masks"].astype(bool))


def test_golden_original_sequences(golden):
    seq = original_sequences()  # the blob draws follow all point draws: needs the full 200,000
    np.testing.assert_allclose(seq[:8].transpose(0, 2, 1), golden["seq_factors"], atol=1e-6, rtol=0)
    assert seq.shape == (200_000, 10, 4) and not seq.flags.writeable
    assert original_sequences() is seq  # cached


def test_golden_static_grid_rows(golden):
    grid = static_grid()
    assert grid.shape == (262_144, 4) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid[golden["static_index"]], golden["static_factors"])


# --- tables ----------------------------------------------------------------------------------


def test_static_grid_row_order():
    grid = static_grid()
    np.testing.assert_allclose(grid[80692], [9 / 31, 27 / 31, 3 / 15, 4 / 15], rtol=0, atol=1e-7)
    i0, i1, i2, i3 = 31, 0, 15, 1
    np.testing.assert_allclose(grid[((i0 * 32 + i1) * 16 + i2) * 16 + i3], [1, 0, 1, 1 / 15], atol=1e-7)


def test_original_sequences_first_sequence_and_travel():
    seq = original_sequences()
    np.testing.assert_allclose(seq[0, 0, 2:], [0.5488, 0.7152], atol=1e-4)
    np.testing.assert_allclose(seq[0, -1, 2:], [0.6028, 0.5449], atol=1e-4)
    np.testing.assert_allclose(seq[0, 0, :2], [10 / 31, 13 / 31])
    travel = np.linalg.norm(seq[:, -1, 2:] - seq[:, 0, 2:], axis=-1)
    assert travel.min() >= 0.1
    assert abs(travel.mean() - 0.535) < 0.005  # docs/original-study.md section 1: mean travel 0.535


def test_original_sequences_rejects_bad_count():
    with pytest.raises(ValueError, match="n_sequences must be a positive integer, got 0"):
        original_sequences(0)


# --- episodes and sampling -------------------------------------------------------------------


@pytest.mark.parametrize("seed_compatible", [False, True])
def test_static_sample_shapes_and_grid_values(seed_compatible):
    w = CircleOverBlob(seed_compatible=seed_compatible)
    ep = w.sample(16, seed=3)
    assert isinstance(ep, Episode)
    assert ep.frames.shape == (16, 1, 1, 32, 32) and ep.frames.dtype == torch.float32
    assert ep.factors.shape == (16, 1, 4) and ep.factors.dtype == torch.float32
    assert ep.factor_names == FACTOR_NAMES == w.factor_names and w.n_factors == 4
    assert (ep.n_samples, ep.n_frames, w.n_frames) == (16, 1, 1) and w.frame_shape == (1, 32, 32)
    assert 0 <= ep.frames.min() and ep.frames.max() <= 1
    f = ep.factors.numpy()[:, 0]
    np.testing.assert_allclose(f[:, :2] * 31, np.round(f[:, :2] * 31), atol=1e-5)
    np.testing.assert_allclose(f[:, 2:] * 15, np.round(f[:, 2:] * 15), atol=1e-5)
    assert set(ep.streams()) == {"world.frames", "world.factors"}
    assert ep.streams()["world.frames"] is ep.frames


@pytest.mark.parametrize("seed_compatible", [False, True])
def test_moving_sample_shapes(seed_compatible):
    w = MovingCircle(seed_compatible=seed_compatible, n_frames=7)
    ep = w.sample(5, seed=0)
    assert ep.frames.shape == (5, 7, 1, 32, 32) and ep.factors.shape == (5, 7, 6)
    assert ep.factor_names == FACTOR_NAMES + ("circle_vx", "circle_vy") and w.n_factors == 6
    assert 0 <= ep.frames.min() and ep.frames.max() <= 1
    torch.testing.assert_close(w.render(ep.factors), ep.frames, rtol=0, atol=0)


@pytest.mark.parametrize("world", [CircleOverBlob(), MovingCircle(), MovingCircle(seed_compatible=True)])
def test_sampling_is_seeded(world):
    a, b, c = world.sample(8, seed=1), world.sample(8, seed=1), world.sample(8, seed=2)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.factors, b.factors)
    assert not torch.equal(a.factors, c.factors)
    assert not torch.equal(a.frames, c.frames)


def test_moving_trajectories_constant_velocity_and_min_travel():
    w = MovingCircle(min_travel=0.4)
    f = w.trajectories(500, seed=0)
    pos, vel = f[..., 2:4], f[..., 4:6]
    np.testing.assert_allclose(np.diff(pos, axis=1), vel[:, 1:], atol=1e-12)
    np.testing.assert_array_equal(vel, np.broadcast_to(vel[:, :1], vel.shape))
    np.testing.assert_array_equal(f[..., :2], np.broadcast_to(f[:, :1, :2], f[..., :2].shape))  # static blob
    assert np.linalg.norm(pos[:, -1] - pos[:, 0], axis=-1).min() >= 0.4
    assert pos.min() >= 0 and pos.max() <= 1


def test_moving_speed_range():
    w = MovingCircle(speed_min=0.02, speed_max=0.08, min_travel=0.27, n_frames=10)
    f = w.trajectories(1000, seed=4)
    speed = np.linalg.norm(f[:, 0, 4:6], axis=-1)
    assert speed.min() >= 0.03 - 1e-12  # min_travel / (n_frames - 1) raises the lower bound
    assert speed.max() <= 0.08 and speed.max() > 0.075
    pos = f[..., 2:4]
    assert pos.min() >= -1e-12 and pos.max() <= 1 + 1e-12
    np.testing.assert_allclose(np.diff(pos, axis=1), f[:, 1:, 4:6], atol=1e-12)


def test_moving_original_dataset_picks_original_sequences():
    w = MovingCircle(dataset="original", n_sequences=1000)
    f = w.trajectories(20, seed=0)
    table = original_sequences(1000)
    rows = [np.flatnonzero(np.all(np.abs(table - s[:, :4]).reshape(1000, -1) < 1e-12, axis=1)) for s in f]
    assert all(len(r) == 1 for r in rows)
    np.testing.assert_allclose(f[:, 0, 4:6], (f[:, -1, 2:4] - f[:, 0, 2:4]) / 9, atol=1e-12)


def test_episode_from_trajectories():
    w = MovingCircle(n_frames=4)
    start, vel, blob = np.array([[0.2, 0.3], [0.9, 0.1]]), np.array([[0.05, 0.0], [-0.1, 0.02]]), np.full((2, 2), 0.5)
    ep = w.episode_from_trajectories(start, vel, blob, n_frames=6)
    assert ep.frames.shape == (2, 6, 1, 32, 32)
    expected = start[:, None] + vel[:, None] * np.arange(6)[None, :, None]
    np.testing.assert_allclose(ep.factors[..., 2:4].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(ep.factors[..., 4:6].numpy(), np.repeat(vel[:, None], 6, 1), atol=1e-7)
    torch.testing.assert_close(w.render(ep.factors), ep.frames, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"velocity must have shape \(n, 2\)"):
        w.episode_from_trajectories(start, vel[:, :1], blob)


def test_episode_to_and_validation():
    ep = CircleOverBlob().sample(2)
    moved = ep.to("cpu")
    assert moved is not ep and torch.equal(moved.frames, ep.frames) and moved.factor_names == ep.factor_names
    with pytest.raises(ValueError, match="factor_names must hold one string per factor"):
        Episode(ep.frames, ep.factors, ("a",))
    with pytest.raises(ValueError, match="frames must have shape"):
        Episode(ep.frames[:, 0], ep.factors, FACTOR_NAMES)


# --- the corrected renderer ------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 64])
def test_default_circle_area_is_pi_r_squared(size):
    w = CircleOverBlob(size=size, blob_brightness=0.0)
    f = torch.rand(64, 4, generator=torch.Generator().manual_seed(0))
    area = w.render(f).sum(dim=(-1, -2, -3))
    expected = math.pi * (w.radius * size) ** 2
    assert torch.all((area / expected - 1).abs() < 0.02)


def test_default_coverage_matches_supersampling():
    size, r = 16, 0.17
    g = torch.Generator().manual_seed(1)
    f = torch.rand(4, 4, generator=g, dtype=torch.float64)
    frames = CircleOverBlob(size=size, radius=r, blob_brightness=0.0).render(f)[:, 0].double()
    n = 64  # sub-samples per pixel and axis
    sub = (torch.arange(size * n, dtype=torch.float64) + 0.5) / n
    c = (f[:, 2:4] * 0.75 + 0.125) * size
    inside = ((sub[None, None, :] - c[:, 0, None, None]) ** 2
              + (sub[None, :, None] - c[:, 1, None, None]) ** 2 <= (r * size) ** 2)
    reference = inside.double().view(4, size, n, size, n).mean(dim=(2, 4))
    assert (frames - reference).abs().max() < 4e-3


def test_default_is_antialiased_with_fractional_edges():
    w = CircleOverBlob(blob_brightness=0.0)
    frames = w.render(torch.tensor([[0.5, 0.5, 0.37, 0.61]]))
    partial = ((frames > 0.01) & (frames < 0.99)).sum()
    assert partial >= 12  # the rim of a 3.2 px disc crosses that many pixels
    assert (frames >= 0.99).sum() >= 20


def test_default_blob_peak_and_clipping():
    w = CircleOverBlob(size=32)
    frames = w.render(torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]]))
    assert frames[0, 0, 12:20, 12:20].max() == pytest.approx(0.8, abs=1e-6)  # blob peak, circle far away
    assert frames[0, 0, 12:20, 12:20].min() > 0.75
    assert frames[1].max() == 1.0  # circle over the blob: clipped at 1
    assert frames.min() >= 0


def test_default_continuous_positions():
    w = CircleOverBlob(blob_brightness=0.0)
    x = torch.linspace(0.4, 0.45, 11)
    f = torch.stack([torch.zeros(11), torch.zeros(11), x, torch.full((11,), 0.5)], -1)
    frames = w.render(f)[:, 0]
    cols = torch.arange(32.0) + 0.5
    centroid = (frames.sum(-2) * cols).sum(-1) / frames.sum((-1, -2))
    torch.testing.assert_close(centroid, (x * 0.75 + 0.125) * 32, atol=5e-3, rtol=0)  # px; x steps are 0.12 px


def test_render_accepts_leading_dims_and_numpy():
    w = MovingCircle()
    f = np.random.default_rng(0).random((2, 3, 5, 6))
    out = w.render(f)
    assert out.shape == (2, 3, 5, 1, 32, 32) and out.dtype == torch.float32
    # a sub-batch may differ by an ulp (SIMD body vs scalar tail of the CPU kernels)
    torch.testing.assert_close(out[1, 2], w.render(torch.as_tensor(f[1, 2])), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r"factors must have shape \(\.\.\., >= 4\)"):
        w.render(np.zeros((3, 2)))


@pytest.mark.parametrize("seed_compatible", [False, True])
def test_masks_partition_and_sizes(seed_compatible):
    w = CircleOverBlob(seed_compatible=seed_compatible)
    ep = w.sample(32, seed=5)
    m = w.masks(ep.factors)
    assert set(m) == {"inside", "edge", "object", "background"}
    for v in m.values():
        assert v.shape == (32, 1, 1, 32, 32) and v.dtype == torch.bool
    assert torch.equal(m["inside"] | m["edge"], m["object"]) and not (m["inside"] & m["edge"]).any()
    assert not (m["object"] & m["background"]).any()
    n_object = m["object"].sum(dim=(-1, -2, -3)).float()
    # docs/original-study.md section 1: ~40 for the original's larger disc
    assert 30 <= n_object.min() and n_object.max() <= 44
    assert m["background"].sum(dim=(-1, -2, -3)).float().mean() > 930


def test_seed_compatible_other_sizes():
    ep = MovingCircle(seed_compatible=True, size=16).sample(2)
    assert ep.frames.shape == (2, 10, 1, 16, 16)
    levels = ep.frames * 255
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-4)


def test_pil_halve_matches_pillow():
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for n in (8, 40, 64):
        images = rng.integers(0, 256, (3, n, n), dtype=np.uint8)
        expected = np.stack([np.asarray(Image.fromarray(im).resize((n // 2, n // 2), Image.BILINEAR)) for im in images])
        np.testing.assert_array_equal(R.pil_halve(torch.as_tensor(images)).numpy(), expected)


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"size": 4}, r"MovingCircle\.size must be an integer number of pixels >= 8, got 4; use e\.g\. size=32"),
        ({"size": 32.0}, r"MovingCircle\.size must be an integer .* got 32\.0"),
        ({"radius": 0.0}, r"MovingCircle\.radius must be in \(0, 0\.5\] .* got 0\.0; use e\.g\. radius=0\.1"),
        ({"blob_sigma": -1}, r"MovingCircle\.blob_sigma must be a positive finite number .* got -1"),
        ({"blob_brightness": 1.5}, r"MovingCircle\.blob_brightness must be in \[0, 1\], got 1\.5"),
        ({"seed_compatible": 1}, r"MovingCircle\.seed_compatible must be true or false, got 1"),
        ({"n_frames": 1}, r"MovingCircle\.n_frames must be an integer >= 2 .* got 1"),
        ({"min_travel": 1.2}, r"MovingCircle\.min_travel must be in \[0, 1\) .* got 1\.2"),
        ({"speed_min": 0.01}, r"speed_min and speed_max must be given together, got speed_min=0\.01, speed_max=None"),
        ({"speed_min": 0.05, "speed_max": 0.01}, r"speed_min must be <= speed_max, got 0\.05 > 0\.01; swap them"),
        ({"speed_min": 0.0, "speed_max": 0.5},
         r"speed_max \* \(n_frames - 1\) must be <= 1 .* use speed_max <= 0\.1111"),
        ({"speed_min": 0.0, "speed_max": 0.01}, r"must reach min_travel=0\.1, got 0\.01 \* 9 = 0\.09"),
        ({"dataset": "mnist"}, r"MovingCircle\.dataset must be None .* or 'original' .* got 'mnist'"),
        ({"dataset": "original", "n_frames": 5}, r"n_frames must be 10 with dataset='original' .* got 5"),
        ({"dataset": "original", "min_travel": 0.2}, r"dataset='original' takes its trajectories as they are"),
        ({"n_sequences": 0}, r"MovingCircle\.n_sequences must be a positive integer, got 0"),
    ],
)
def test_bad_fields_raise_clear_errors(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        MovingCircle(**kwargs)


def test_bad_static_fields_and_arguments():
    with pytest.raises(ConfigError, match=r"CircleOverBlob\.radius must be in \(0, 0\.5\]"):
        CircleOverBlob(radius=0.7)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        CircleOverBlob().sample(2, seed=-1)
    with pytest.raises(ValueError, match="n_samples must be a positive integer, got 0"):
        CircleOverBlob().sample(0)


def test_specs_are_frozen_plain_values():
    w = MovingCircle()
    assert MovingCircle.kind == "moving_circle" and CircleOverBlob.kind == "circle_over_blob"
    with pytest.raises(AttributeError):
        w.size = 64
    assert MovingCircle(size=64) == MovingCircle(size=64) and hash(MovingCircle()) == hash(w)


# --- devices ---------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("seed_compatible", [False, True])
def test_cuda_matches_cpu(seed_compatible):
    # seed-compatible: integer arithmetic, equal; default: float32 transcendentals differ by a few ulps
    w = MovingCircle(seed_compatible=seed_compatible)
    cpu, gpu = w.sample(64, seed=2), w.sample(64, seed=2, device="cuda")
    assert gpu.frames.is_cuda and gpu.factors.is_cuda
    torch.testing.assert_close(gpu.frames.cpu(), cpu.frames, rtol=0, atol=0 if seed_compatible else 1e-3)
    m_cpu, m_gpu = w.masks(cpu.factors), w.masks(gpu.factors)
    for key in m_cpu:
        assert m_gpu[key].is_cuda
        assert (m_gpu[key].cpu() != m_cpu[key]).sum() <= (0 if seed_compatible else 2)


@pytest.mark.gpu
def test_cuda_golden(golden):
    w = CircleOverBlob(seed_compatible=True)
    frames = w.render(torch.as_tensor(golden["static_factors"], device="cuda"))
    assert_golden(frames.cpu(), golden["static_frames"])
    m = w.masks(torch.as_tensor(golden["probe_points"], device="cuda")[:, None])
    got = np.stack([m[k].cpu().numpy() for k in MASK_ORDER], axis=1)
    np.testing.assert_array_equal(got, golden["probe_masks"].astype(bool))


@pytest.mark.parametrize("make, error, match", [
    (lambda ep: Episode(ep.frames.numpy(), ep.factors, ep.factor_names), TypeError,
     r"Episode.frames must be a torch.Tensor, got ndarray"),
    (lambda ep: Episode((ep.frames * 255).to(torch.uint8), ep.factors, ep.factor_names), TypeError,
     r"floating-point values, got torch.uint8; convert with .float\(\) \(and / 255"),
    (lambda ep: Episode(ep.frames[:0], ep.factors[:0], ep.factor_names), ValueError,
     r"at least one sample and one frame, got shape \(0, 3, 1, 32, 32\)"),
    (lambda ep: Episode(ep.frames[:, :0], ep.factors[:, :0], ep.factor_names), ValueError,
     r"at least one sample and one frame"),
    (lambda ep: Episode(ep.frames, ep.factors[..., :1], "circle_x"), ValueError,
     r"factor_names must be a sequence of names, got the string 'circle_x'; for one factor write \('circle_x',\)"),
])
def test_episode_rejects_what_no_circuit_can_read(make, error, match):
    ep = MovingCircle(n_frames=3).sample(2)
    with pytest.raises(error, match=match):
        make(ep)


@pytest.mark.parametrize("motion", ["reversal", "accelerating"])
def test_non_linear_motion_keeps_the_path_speed_and_image(motion):
    kw = dict(n_frames=20, speed_min=0.01, speed_max=0.05)
    linear = MovingCircle(**kw).trajectories(400, seed=5)
    f = MovingCircle(**kw, motion=motion).trajectories(400, seed=5)
    np.testing.assert_array_equal(f[..., :2], linear[..., :2])  # same blobs
    np.testing.assert_array_equal(f[:, 0, 2:4], linear[:, 0, 2:4])  # same start
    p = f[..., 2:4]
    assert p.min() >= -1e-12 and p.max() <= 1 + 1e-12
    np.testing.assert_allclose(f[:, 1:, 4:], np.diff(p, axis=1), atol=1e-12)  # backward differences
    np.testing.assert_allclose(f[:, 0, 4:], p[:, 1] - p[:, 0], atol=1e-12)
    v = linear[:, 0, 4:]  # the path's own velocity
    step = np.linalg.norm(np.diff(p, axis=1), axis=-1) / np.linalg.norm(v, axis=-1)[:, None]
    if motion == "reversal":
        np.testing.assert_allclose(step, 1.0, rtol=1e-9)  # the linear world's speed at every frame
        turns = (np.diff(np.sign(f[..., 4]), axis=1) != 0).sum(1)
        assert turns.mean() > 1.5
    else:
        np.testing.assert_allclose(step.mean(axis=1), 1.0, rtol=1e-9)  # the same mean speed
        np.testing.assert_allclose(f[:, -1, 2:4], linear[:, -1, 2:4], atol=1e-12)  # ends where the path ends
        assert (step.std(axis=1) > 0.05).all()


def test_pixel_noise_changes_the_frames_only_and_is_seeded():
    clean = MovingCircle().sample(4, seed=2)
    a, b = MovingCircle(pixel_noise=0.1).sample(4, seed=2), MovingCircle(pixel_noise=0.1).sample(4, seed=2)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.factors, clean.factors)
    assert 0.05 < float((a.frames - clean.frames).std()) < 0.11
    assert float(a.frames.min()) >= 0.0 and float(a.frames.max()) <= 1.0


@pytest.mark.parametrize("kw, match", [({"motion": "zigzag"}, "motion must be one of"),
                                       ({"reversal_rate": 1.5}, "probability"),
                                       ({"speed_jitter": -1.0}, ">= 0"), ({"pixel_noise": float("nan")}, ">= 0"),
                                       ({"dataset": "original", "n_sequences": 10, "motion": "reversal"},
                                        "motion must be 'linear'")])
def test_motion_options_are_checked(kw, match):
    with pytest.raises(ConfigError, match=match):
        MovingCircle(**kw)


# --------------------------------------------------------------------------
# Bad arguments: devices, factors given to render, fields; factor units in the docstrings
# --------------------------------------------------------------------------


WORLDS = [CircleOverBlob(), CircleOverBlob(seed_compatible=True), MovingCircle(n_frames=3),
          MovingCircle(n_frames=3, seed_compatible=True)]


ONE = np.array([[0.3, 0.4]])


@pytest.mark.parametrize("world", WORLDS[::2])
@pytest.mark.parametrize("device", ["gpu", "cpu:x", 1.5])
def test_sample_rejects_a_device_torch_does_not_know(world, device):
    # was torch's RuntimeError from deep inside (a list of twenty device types) or a TypeError
    with pytest.raises(ValueError, match=r"device must be a torch device such as 'cpu', 'cuda' or 'cuda:0', "
                                         r"got .*; use e\.g\. device='cpu'"):
        world.sample(2, device=device)
    for valid in ("cpu", torch.device("cpu"), None):  # still accepted, same frames
        assert torch.equal(world.sample(2, device=valid).frames, world.sample(2).frames)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_cuda_device_is_a_clear_error():
    # was "AssertionError: Torch not compiled with CUDA enabled" from torch.cuda's lazy init
    pattern = r"device 'cuda': no CUDA device is available here .*; use device='cpu'"
    w = MovingCircle(n_frames=3)
    for call in (lambda: w.sample(2, device="cuda"), lambda: CircleOverBlob().sample(2, device="cuda"),
                 lambda: w.episode_from_trajectories(ONE, ONE * 0, ONE, device="cuda"),
                 lambda: FlashLagProbe().episode(MovingCircle(), "standard", 0.02, 10, device="cuda"),
                 lambda: FlashLagProbe().reference_episode(MovingCircle(), 10, device="cuda")):
        with pytest.raises(ValueError, match=pattern):
            call()


@pytest.mark.parametrize("world", WORLDS[:2])
def test_render_of_factors_that_require_grad_says_detach(world):
    # was "mul(): functions with out=... arguments don't support automatic differentiation" from render.py
    f = torch.rand(3, 4, requires_grad=True)
    with pytest.raises(ValueError, match=r"factors require grad, but rendering is not differentiable.*"
                                         r"pass factors\.detach\(\)"):
        world.render(f)
    torch.testing.assert_close(world.render(f.detach()), world.render(f.detach().clone()), rtol=0, atol=0)


@pytest.mark.parametrize("factors, match", [
    # was "too many dimensions 'str'":
    ([["a", "b", "c", "d"]], r"factors must be an array of real numbers .* got list"),
    (torch.ones(2, 4, dtype=torch.complex64), r"factors must hold real numbers, got dtype torch\.complex64"),
    (torch.ones(2, 4, dtype=torch.bool), r"factors must hold real numbers, got dtype torch\.bool"),
])
def test_render_rejects_factors_that_are_not_real_numbers(factors, match):
    # complex factors lost their imaginary part with only a warning; bool ones drew circles at 0 and 1
    with pytest.raises(TypeError, match=match):
        CircleOverBlob().render(factors)


def test_bad_circle_values_is_a_config_error_naming_the_field():
    # was a plain ValueError, unlike every other world field, without the class name
    with pytest.raises(ConfigError, match=r"CircleOverBlob\.circle_values must be one of 'grid', 'even', 'odd', "
                                          r"got 'all'"):
        CircleOverBlob(circle_values="all")


def test_episode_from_no_trajectories_names_the_arguments():
    # was "Episode.frames must hold at least one sample", after rendering
    empty = np.zeros((0, 2))
    with pytest.raises(ValueError, match=r"start, velocity and blob must hold at least one trajectory \(n >= 1\), "
                                         r"got n = 0"):
        MovingCircle().episode_from_trajectories(empty, empty, empty)


def test_circle_speeds_are_in_factor_units_as_documented():
    # A circle factor unit is 0.75 image widths: velocity v moves the disc by 0.75 * size * v px a frame.
    # The docstrings said "image widths per frame" (and min_travel "in image widths").
    w = MovingCircle(blob_brightness=0.0, n_frames=2, size=64)
    ep = w.episode_from_trajectories([[0.2, 0.6]], [[0.4, -0.2]], [[0.5, 0.5]])
    frames = ep.frames[0, :, 0].double()
    centre = torch.arange(64.0, dtype=torch.float64) + 0.5
    mass = frames.sum((-1, -2))
    col = (frames.sum(-2) * centre).sum(-1) / mass
    row = (frames.sum(-1) * centre).sum(-1) / mass
    torch.testing.assert_close(col[1] - col[0], torch.tensor(0.75 * 64 * 0.4, dtype=torch.float64), atol=0.02, rtol=0)
    torch.testing.assert_close(row[1] - row[0], torch.tensor(-0.75 * 64 * 0.2, dtype=torch.float64), atol=0.02, rtol=0)
    doc = MovingCircle.__doc__ + MovingCircle.trajectories.__doc__ + Episode.__doc__
    assert "image widths per frame" not in doc and "factor units per frame" in doc
    assert "circle factor units" in MovingCircle.__doc__
    with pytest.raises(ConfigError, match=r"factor units per frame"):
        MovingCircle(speed_min=-1.0, speed_max=0.1)


def test_moving_circle_speed_range_message_states_factor_units():
    with pytest.raises(ConfigError) as info:
        MovingCircle(n_frames=10, speed_min=0.1, speed_max=0.2)
    text = str(info.value)
    assert "1 circle factor unit" in text and "image width" not in text
    assert "use speed_max <= 0.1111" in text


@pytest.mark.parametrize("world", [MovingCircle(size=16), CircleOverBlob(size=16, seed_compatible=True)],
                         ids=["moving", "seed_compatible"])
def test_render_rejects_non_finite_factors(world):
    f = torch.full((2, 3, 4), 0.5)
    f[1, 2, 2] = NAN
    with pytest.raises(ValueError, match=r"factors must be finite, got circle_x = nan at row \(1, 2\)"):
        world.render(f)
    with pytest.raises(ValueError, match=r"factors must be finite, got blob_y = inf at row 0"):
        world.render(torch.tensor([[0.5, float("inf"), 0.5, 0.5]]))


def test_masks_reject_non_finite_circle_factors():
    world = MovingCircle(size=16)
    with pytest.raises(ValueError, match=r"factors must be finite, got circle_y = -inf at row 0"):
        world.masks(torch.tensor([[0.5, 0.5, 0.5, -float("inf")]]))
    # the masks use only the circle factors: a NaN blob does not matter
    assert world.masks(torch.tensor([[NAN, 0.5, 0.5, 0.5]]))["object"].any()


def test_episode_from_trajectories_rejects_non_finite_input():
    world = MovingCircle(size=16, n_frames=3)
    ok = [[0.2, 0.2], [0.3, 0.3]]
    with pytest.raises(ValueError, match=r"velocity must be finite, got circle_vy = nan at row 1"):
        world.episode_from_trajectories(ok, [[0.1, 0.0], [0.1, NAN]], ok)


def test_worlds_sample_without_the_finiteness_check(monkeypatch):
    """sample() draws finite factors itself: no check, so no host sync on the training path."""
    def fail(*args, **kwargs):
        raise AssertionError("sample() must not check its own factors")

    worlds = (MovingCircle(size=16, n_frames=3), CircleOverBlob(size=16))
    with monkeypatch.context() as patch:
        patch.setattr(_spec, "check_finite", fail)
        episodes = [world.sample(3, seed=1) for world in worlds]
    for world, ep in zip(worlds, episodes):
        torch.testing.assert_close(ep.frames, world.render(ep.factors), rtol=0, atol=0)


def test_moving_circle_sample_names_n_samples():
    with pytest.raises(ValueError, match=r"n_samples must be a positive integer, got 0; use e.g. n_samples=64"):
        SMALL_WORLD.sample(0)
