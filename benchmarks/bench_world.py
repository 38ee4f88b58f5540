"""Benchmark: moving-circle sequences (10 frames of 32x32) per second.

Compares neurodelay's batched renderers (default and seed-compatible,
factor sampling included; the default world also with reversals, with
acceleration, with pixel noise and behind an occluder for 4 of its 10
frames) with a plain per-frame reference written here:
numpy render at 64 px and reduction to 32 px, one frame at a time in Python
loops over sequences and frames, as the original generator worked.

Usage::

    python benchmarks/bench_world.py --threads 2 [--device cuda] [--batch 1024]
    python benchmarks/bench_world.py --threads 1 --batch 1024 256 --interleave 60 --cpu-time
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from neurodelay.worlds import MovingCircle

N_FRAMES = 10
GRID = np.linspace(0.0, 1.0, 32)


def _reduction_matrix(n_in: int = 64) -> np.ndarray:
    """(n_in/2, n_in) matrix of the [1, 3, 3, 1] / 8 stride-2 filter, renormalised at the borders."""
    m = np.zeros((n_in // 2, n_in))
    for i in range(n_in // 2):
        for k, w in zip(range(2 * i - 1, 2 * i + 3), (1, 3, 3, 1)):
            if 0 <= k < n_in:
                m[i, k] = w
    return m / m.sum(1, keepdims=True)


_REDUCE = _reduction_matrix()
_J = np.arange(64.0)
_X, _Y = np.meshgrid(_J, _J)


def reference_frame(bx, by, cx, cy) -> np.ndarray:
    """One 32x32 frame: binary disc + blob at 64 px, uint8, reduced 2x."""
    px, py, r = 48 * cx + 8, 48 * cy + 8, 6.4
    circle = (_X - px) ** 2 + (_Y - py) ** 2 - r <= r**2
    blob = np.exp(-0.5 * ((_X - 64 * bx) ** 2 + (_Y - 64 * by) ** 2) / 960.0)
    blob /= blob.max()
    img = np.clip(255.0 * circle + 0.8 * 255.0 * blob, 0, 255).astype(np.uint8)
    return (_REDUCE @ img @ _REDUCE.T).astype(np.float32) / 255.0


def reference_sequences(n: int, rng: np.random.Generator) -> np.ndarray:
    """n sequences (n, 10, 32, 32), drawn and rendered one frame at a time."""
    out = np.empty((n, N_FRAMES, 32, 32), np.float32)
    for s in range(n):
        start, end = rng.random(2), rng.random(2)
        while np.hypot(*(end - start)) < 0.1:
            start, end = rng.random(2), rng.random(2)
        bx, by = rng.choice(GRID, 2)
        for t in range(N_FRAMES):
            cx, cy = start + (end - start) * t / (N_FRAMES - 1)
            out[s, t] = reference_frame(bx, by, cx, cy)
    return out


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _time(fn, min_time_s: float, sync, clock=time.perf_counter) -> float:
    """Best seconds per call over repeats lasting at least min_time_s in all (by ``clock``)."""
    fn()  # warm-up
    sync()
    best, total = float("inf"), 0.0
    while total < min_time_s:
        t0 = clock()
        fn()
        sync()
        dt = clock() - t0
        best, total = min(best, dt), total + dt
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--batch", type=int, nargs="+", default=[1024], help="sequences per batched call (one or more)")
    p.add_argument("--n-reference", type=int, default=100, help="sequences rendered by the reference")
    p.add_argument("--min-time", type=float, default=2.0, help="seconds spent timing each renderer")
    p.add_argument("--interleave", type=int, default=0, metavar="ROUNDS",
                   help="instead: time the default, reversal, accelerating and occluded worlds one call each in turn, "
                        "ROUNDS rounds, and print the median and least time per call (load drifts alike for all)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time the process's CPU time, not the wall clock (steadier on a shared machine; cpu only)")
    a = p.parse_args(argv)
    clock = time.process_time if a.cpu_time and a.device == "cpu" else time.perf_counter
    if a.threads:
        torch.set_num_threads(a.threads)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)

    print(f"machine: {platform.platform()}, cpu: {_cpu_name()} ({os.cpu_count()} logical cores)")
    if a.device == "cuda":
        print(f"device: {torch.cuda.get_device_name()}")
    print(f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}, device {a.device}, "
          f"clock {'process CPU time' if clock is time.process_time else 'wall'}, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")

    if a.interleave:
        _interleaved(a, sync, clock)
        return
    rng = np.random.default_rng(0)
    t_ref = _time(lambda: reference_sequences(a.n_reference, rng), a.min_time, lambda: None, clock)
    ref_rate = a.n_reference / t_ref
    print(f"{'renderer':<30}{'batch':>7}{'sequences/s':>14}{'x reference':>13}")
    print(f"{'reference (numpy, per frame)':<30}{1:>7}{ref_rate:>14,.0f}{1.0:>13.1f}")
    seeds = iter(range(10**9))
    worlds = [("neurodelay default", MovingCircle()),
              ("neurodelay seed_compatible", MovingCircle(seed_compatible=True)),
              ("default, motion reversal", MovingCircle(motion="reversal")),
              ("default, motion accelerating", MovingCircle(motion="accelerating")),
              ("default, pixel_noise 0.1", MovingCircle(pixel_noise=0.1)),
              ("default, occlusion_frames 4", MovingCircle(occlusion_frames=4))]
    for name, world in worlds:
        for batch in a.batch:
            t = _time(lambda: world.sample(batch, seed=next(seeds), device=a.device), a.min_time, sync, clock)
            rate = batch / t
            print(f"{name:<30}{batch:>7}{rate:>14,.0f}{rate / ref_rate:>13.1f}")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _interleaved(a, sync, clock) -> None:
    """Median and least seconds per call of the moving worlds, timed one call each in turn."""
    worlds = {"default": MovingCircle(), "motion reversal": MovingCircle(motion="reversal"),
              "motion accelerating": MovingCircle(motion="accelerating"),
              "occlusion_frames 4": MovingCircle(occlusion_frames=4)}
    print(f"{'world':<22}{'batch':>7}{'median ms':>11}{'least ms':>10}{'seq/s (median)':>16}")
    seed = 0
    for batch in a.batch:
        times = {name: [] for name in worlds}
        for world in worlds.values():
            world.sample(batch, seed=0, device=a.device)  # warm-up
        for _ in range(a.interleave):
            for name, world in worlds.items():
                seed += 1
                sync()
                t0 = clock()
                world.sample(batch, seed=seed, device=a.device)
                sync()
                times[name].append(clock() - t0)
        for name, t in times.items():
            med = float(np.median(t))
            print(f"{name:<22}{batch:>7}{med * 1e3:>11.2f}{min(t) * 1e3:>10.2f}{batch / med:>16,.0f}")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
