"""Benchmark: the cost of the generic circuit, and long horizons.

1. Overhead. The inertia circuit (``presets.inertia``, B = 64, 10 frames of
   32 x 32, 4 latents) run through ``CircuitModule`` against the same
   computation hand-written as one module that calls the very same encoder
   and decoder modules: encode the 9 distinct frames the 1-step input delay
   delivers at once (frame 0 held for steps 0 and 1), step the
   blend/extrapolation loop in plain Python, decode all steps at once. Timed
   as forward + backward of the original's loss (training) and as a forward
   pass without gradients, at B = 64 and at B = 4 (where the
   circuit's bookkeeping weighs most). Target: within 5 %.

2. Long horizons. A latent-only circuit (B = 64, 64 channels): the input
   arrives through a 2-step delay at a blend ``z`` (gamma 0.5) whose
   prediction is a 1-step-delayed extrapolation of itself (alpha 1), and a
   feed-forward extrapolator (horizon 2 steps) reads ``z``::

       world.factors --(20 ms)--> z.drive ; z --(10 ms)--> pred --> z.prediction ; z --> out

   For T = 10, 100, 1000: ``mode="auto"`` (whatever the circuit's default
   does: cycles linear in their state are solved in closed form when
   ``neurodelay/circuit/linear.py`` recognises them) against ``mode="step"`` (every
   node stepped in Python), forward only and forward + backward, and the
   largest difference between their traces (target: within 1e-5, and auto at
   least 20 times faster at T = 1000).

Usage::

    python benchmarks/bench_circuit.py --threads 2 [--device cuda] [--reps 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import machine_lines, matmul_peak_gflops, set_threads, sync, time_calls

from neurodelay import Blend, Circuit, Edge, Extrapolator, build_seeded, presets
from neurodelay.components.base import RunContext

GAMMA, ALPHA = 0.75, 1.0


class HandWrittenInertia(torch.nn.Module):
    """The inertia circuit's computation written out, sharing the circuit's encoder and decoder."""

    def __init__(self, enc, dec, gamma=GAMMA, alpha=ALPHA):
        super().__init__()
        self.enc, self.dec, self.gamma, self.alpha = enc, dec, gamma, alpha

    def forward(self, frames, ctx):
        n_s, n_t = frames.shape[:2]
        # 1-step input delay holding frame 0: encode frames 0..T-2 once, repeat the first.
        z_enc, _ = self.enc.frame(frames[:, :-1].reshape(n_s * (n_t - 1), *frames.shape[2:]), ctx)
        z_enc = z_enc.view(n_s, n_t - 1, -1)
        z_enc = torch.cat([z_enc[:, :1], z_enc], dim=1)
        zs = [z_enc[:, 0], z_enc[:, 1]]  # the prediction arrives at step 2
        for t in range(2, n_t):
            prev, prev2 = zs[t - 1], zs[t - 2]
            # prev + alpha * (prev - prev2), with the library extrapolator's arithmetic:
            # in place on the fresh difference, no product when alpha = 1.
            z_hat = prev - prev2
            if self.alpha != 1.0:
                z_hat.mul_(self.alpha)
            z_hat.add_(prev)
            zs.append(torch.lerp(z_enc[:, t], z_hat, self.gamma))
        z = torch.stack(zs, dim=1)
        recon, _ = self.dec.frame(z.reshape(n_s * n_t, -1), ctx)
        return recon.view(n_s, n_t, *recon.shape[1:])


def _loss(recon, frames):
    """The original's loss: steps 2..9 against the same frames, summed, per sample."""
    return ((recon[:, 2:] - frames[:, 2:]) ** 2).sum() / frames.shape[0]


def bench_overhead(device: str, reps: int) -> list[str]:
    from neurodelay import MovingCircle

    world = MovingCircle()
    module = build_seeded(presets.inertia(gamma=GAMMA, alpha=ALPHA), world=world, seed=1).to(device)
    hand = HandWrittenInertia(module.nodes["enc"], module.nodes["dec"]).to(device)
    ctx = RunContext()
    lines = []
    for batch in (64, 4):
        frames = world.sample(batch, seed=3, device=device).frames
        streams = {"world.frames": frames}
        with torch.no_grad():
            a = module(streams, ctx=ctx)["dec"]
            b = hand(frames, ctx)
        diff = (a - b).abs().max().item()

        def circ_train():
            module.zero_grad(set_to_none=True)
            _loss(module(streams, ctx=ctx)["dec"], frames).backward()

        def hand_train():
            module.zero_grad(set_to_none=True)
            _loss(hand(frames, ctx), frames).backward()

        def circ_fwd():
            with torch.no_grad():
                module(streams, ctx=ctx)

        def hand_fwd():
            with torch.no_grad():
                hand(frames, ctx)

        for what, fc, fh in (("forward+backward", circ_train, hand_train), ("forward, no grad", circ_fwd, hand_fwd)):
            fc(), fh()
            tc, th = [], []
            n = reps if batch == 64 else 5 * reps
            for _ in range(3):  # alternate so that load drifts hit both alike
                tc += time_calls(fc, n, device)
                th += time_calls(fh, n, device)
            mc, mh = statistics.median(tc), statistics.median(th)
            lines.append(f"  B={batch:3d} {what:17s}: circuit {1e3 * mc:8.2f} ms, hand-written {1e3 * mh:8.2f} ms, "
                         f"overhead {100 * (mc / mh - 1):+6.1f} %  (max |difference| {diff:.1e})")
    return lines


def latent_circuit() -> Circuit:
    """Delay, extrapolator and blend on a vector signal (see the module docstring)."""
    return Circuit(
        nodes={"z": Blend(gamma=0.5), "pred": Extrapolator(alpha=1.0), "out": Extrapolator(alpha=2.0)},
        edges=[
            Edge("world.factors", "z.drive", delay_ms=20.0),
            Edge("z", "pred", delay_ms=10.0),
            Edge("pred", "z.prediction"),
            Edge("z", "out"),
        ],
        dt_ms=10.0,
    )


def bench_horizons(device: str, reps: int, channels: int = 64, batch: int = 64) -> list[str]:
    module = latent_circuit().build(input_shapes={"world.frames": (1, 32, 32), "world.factors": (channels,)})
    module.to(device)
    lines = []
    for n_t in (10, 100, 1000):
        gen = torch.Generator().manual_seed(n_t)
        # A random walk: smooth, bounded over 1000 steps, like a latent tracking a moving object.
        x = (0.02 * torch.randn(batch, n_t, channels, generator=gen)).cumsum(1).to(device)
        streams = {"world.factors": x}
        with torch.no_grad():
            auto = module(streams, mode="auto")
            step = module(streams, mode="step")
        diff = max((auto[k] - step[k]).abs().max().item() for k in step)
        scale = max(step[k].abs().max().item() for k in step)
        xg = x.clone().requires_grad_()

        def run(mode, grad):
            if grad:
                out = module({"world.factors": xg}, mode=mode)
                sum(v.square().sum() for v in out.values()).backward()
            else:
                with torch.no_grad():
                    module(streams, mode=mode)

        n = max(2, reps * (10 if n_t <= 100 else 1) // (1 if n_t < 1000 else 2))
        for grad in (False, True):
            run("auto", grad), run("step", grad)
            ta, ts = [], []
            for _ in range(3):
                ta += time_calls(lambda: run("auto", grad), n, device)
                ts += time_calls(lambda: run("step", grad), max(2, n // 3), device)
            ma, ms = statistics.median(ta), statistics.median(ts)
            what = "forward+backward" if grad else "forward"
            lines.append(f"  T={n_t:5d} {what:16s}: auto {1e3 * ma:9.2f} ms, step {1e3 * ms:9.2f} ms, "
                         f"speed-up {ms / ma:7.1f}x  (max |auto - step| {diff:.1e}, max |trace| {scale:.2f})")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--reps", type=int, default=10, help="timed repetitions per measurement and round")
    p.add_argument("--skip-overhead", action="store_true", help="only the long-horizon part")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda needs a CUDA device")
    set_threads(args.threads)
    if args.device == "cpu":
        from neurodelay._util.perf import tune_allocator

        tune_allocator()
    print("# bench_circuit: generic circuit vs hand-written module; long horizons")
    print("command: python benchmarks/bench_circuit.py " + " ".join(sys.argv[1:]))
    for line in machine_lines(args.device, args.threads):
        print(line)
    print(f"peak: 2048^2 float32 matmul {matmul_peak_gflops(args.device):.1f} GFLOP/s")
    if not args.skip_overhead:
        print("overhead of the generic circuit (inertia preset, 10 frames; median of alternating runs):")
        for line in bench_overhead(args.device, args.reps):
            print(line, flush=True)
    print("long horizons (latent-only circuit, B=64, 64 channels; mode='auto' vs mode='step'):")
    for line in bench_horizons(args.device, args.reps):
        print(line, flush=True)
    sync(args.device)


if __name__ == "__main__":
    main()
