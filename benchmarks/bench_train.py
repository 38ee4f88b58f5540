"""Benchmark: one training step of the inertia circuit, neurodelay against a plain PyTorch reference.

The model is the original study's representational-inertia network at its
original size: batch 64, sequences of 10 frames of 32 x 32, 4 latents,
RMSprop (lr 1e-4), gamma 0.75, alpha 1. By default the latent is
deterministic (the study's autoencoder variant); ``--gaussian`` uses the
beta-VAE variant (log-variance head, reparameterisation noise, KL with beta 1).

``reference``
    Written here the straightforward way: an eager ``nn.Module`` with the
    original's layers (NCHW, PyTorch's default kernels) and its Python time
    loop over frames (encode frame i, blend with the extrapolation, decode,
    score against frame i + 1), exactly the recurrence of
    docs/original-study.md section 3.
    End to end it reads batches from a ``DataLoader`` over a per-sample
    ``Dataset`` that renders each sequence in numpy when indexed.
``neurodelay``
    ``presets.inertia`` built into a ``CircuitModule``, scored with
    ``compute_losses`` (``Objective(score_from_step=2)``, the original's loss),
    stepped with the same calls as ``neurodelay.training.train``'s loop, with
    ``neurodelay._util.perf.tune_allocator()`` applied once at start-up (what a
    training entry point should do). End to end it is ``train()`` itself, which
    renders each batch with ``MovingCircle.sample`` on the device (called for
    blocks of 5 steps, so its per-call set-up is included, spread over 5).

Each variant runs in a fresh subprocess (so that the allocator setting and
the peak resident memory are its own); variants alternate for ``--rounds``
rounds so that slow drifts in machine load hit all of them alike. Times are
medians over all timed steps of all rounds.

Peak memory of a step: on CPU the peak resident set of the process during
the steps (``VmHWM`` in /proc/self/status, reset just before them through
/proc/self/clear_refs) minus its resident set just before them, in a fresh
process (``tracemalloc`` does not see torch's allocations); on CUDA
``torch.cuda.max_memory_allocated`` over the timed steps. On CPU also the
peak of the tensors themselves (``tensors``): the largest total size of live
tensors during one step, from ``torch.profiler``'s allocation events. The
resident set also counts what the C allocator keeps of freed buffers (with
:func:`neurodelay._util.perf.tune_allocator`, on purpose), so the two differ.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` over one
step (forward and backward; element-wise work is not counted). neurodelay's
circuit encodes the 9 distinct frames its 1-step input delay delivers (frame 0
is held for steps 0 and 1 and encoded once) and, given the steps the loss
scores, decodes only steps 2..9, as the reference does; GFLOP/s is reported
both for its own count and for the reference's ("useful") count.

Usage::

    python benchmarks/bench_train.py --threads 2
    python benchmarks/bench_train.py --threads 2 --ablation      # what each fast path gives
    python benchmarks/bench_train.py --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

from bench_world import _reduction_matrix  # the plain reference's 64 -> 32 reduction (this folder is on sys.path)

# ----------------------------------------------------------------------------- shared helpers
# (bench_circuit.py imports these.)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines(device: str, threads: int) -> list[str]:
    """Lines describing the machine, torch, the thread count and the load."""
    lines = [
        f"platform: {platform.platform()}",
        f"cpu: {cpu_model()} ({os.cpu_count()} logical cpus)",
        f"python {platform.python_version()}, torch {torch.__version__}, threads {threads}, device {device}",
    ]
    if device.startswith("cuda") and torch.cuda.is_available():
        lines.append(f"gpu: {torch.cuda.get_device_name(device)}, cuda {torch.version.cuda}, TF32 for "
                     f"convolutions {torch.backends.cudnn.allow_tf32}, for matmuls "
                     f"{torch.backends.cuda.matmul.allow_tf32} (torch's defaults)")
    if hasattr(os, "getloadavg"):
        lines.append("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return lines


def set_threads(threads: int) -> None:
    """Set torch's intra-op thread count (and the variables child processes inherit)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)


def sync(device: str) -> None:
    """Wait for queued CUDA work (no-op on CPU)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def time_calls(fn, n: int, device: str) -> list[float]:
    """Seconds taken by each of ``n`` calls of ``fn()``, CUDA synchronised around each."""
    out = []
    for _ in range(n):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def matmul_peak_gflops(device: str, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n`` x ``n`` float32 matrix product: the machine's practical peak."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device)
    b = torch.randn(n, n, generator=gen).to(device)
    a @ b
    return 2 * n**3 / min(time_calls(lambda: a @ b, repeats, device)) / 1e9


# ----------------------------------------------------------------------------- the reference

GAMMA, ALPHA, BATCH, N_FRAMES, N_LATENTS, LR = 0.75, 1.0, 64, 10, 4, 1e-4


class ReferenceInertia(nn.Module):
    """The original inertia network, written plainly: layers, then a Python loop over frames.

    ``forward(frames)`` returns the original's loss: decoded z_1..z_8 against
    frames 2..9, squared error summed over pixels and frames, divided by the
    batch size (plus the KL of the encoded frames 1..8 for a Gaussian latent).
    """

    def __init__(self, gaussian: bool, gamma: float = GAMMA, alpha: float = ALPHA, n_latents: int = N_LATENTS):
        super().__init__()
        self.gamma, self.alpha, self.gaussian = gamma, alpha, gaussian
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU())
        self.mu = nn.Linear(256, n_latents)
        self.logvar = nn.Linear(256, n_latents) if gaussian else None
        self.dec_linear = nn.Linear(n_latents, 256)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 3, 2, 1, 1), nn.ELU(), nn.ConvTranspose2d(64, 32, 3, 2, 1, 1), nn.ELU(),
            nn.ConvTranspose2d(32, 32, 3, 2, 1, 1), nn.ELU(), nn.ConvTranspose2d(32, 1, 3, 2, 1, 1), nn.Sigmoid())

    def encode(self, x):
        h = self.encoder(x).view(x.shape[0], -1)
        mu = self.mu(h)
        if not self.gaussian:
            return mu, None
        logvar = self.logvar(h)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum()
        if self.training:
            return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar), kl
        return mu, kl

    def decode(self, z):
        return self.decoder(self.dec_linear(z).view(-1, 64, 2, 2))

    def forward(self, frames):
        n = frames.shape[0]
        z_prev, _ = self.encode(frames[:, 0])
        z_hat = z_prev  # zero initial velocity: z_0 = zhat_1 = z_enc_0
        loss = 0.0
        for i in range(1, frames.shape[1] - 1):
            z_enc, kl = self.encode(frames[:, i])
            z = (1 - self.gamma) * z_enc + self.gamma * z_hat
            recon = self.decode(z)
            loss = loss + ((recon - frames[:, i + 1]) ** 2).sum()
            if kl is not None:
                loss = loss + kl
            z_hat = z + self.alpha * (z - z_prev)
            z_prev = z
        return loss / n


class SequenceDataset(torch.utils.data.Dataset):
    """Moving-circle sequences rendered in numpy, one sequence per ``__getitem__`` (as the original).

    Circle at 48 v + 8 px with the original's radius test at 64 px, Gaussian
    blob (covariance 960 px^2) normalised to its visible maximum, uint8
    composite, 2x reduction to 32 px. Start and end points uniform, redrawn
    when closer than 0.1; the blob on the 32-value grid.
    """

    _grid = np.linspace(0, 1, 32)
    _reduce = _reduction_matrix()
    _pix = np.arange(64.0)

    def __init__(self, n_items: int = 200_000, seed: int = 0):
        self.n_items, self.seed = n_items, seed

    def __len__(self):
        return self.n_items

    def __getitem__(self, idx):
        rng = np.random.default_rng((self.seed, idx))
        while True:
            ends = rng.random((2, 2))
            if np.hypot(*(ends[1] - ends[0])) >= 0.1:
                break
        bx, by = rng.choice(self._grid, 2)
        xx, yy = np.meshgrid(self._pix, self._pix)
        blob = np.exp(-0.5 * ((xx - 64 * bx) ** 2 + (yy - 64 * by) ** 2) / 960.0)
        blob /= blob.max()
        frames = np.empty((N_FRAMES, 1, 32, 32), np.float32)
        for t, (cx, cy) in enumerate(np.linspace(ends[0], ends[1], N_FRAMES)):
            px, py, r = 48 * cx + 8, 48 * cy + 8, 6.4
            circle = (xx - px) ** 2 + (yy - py) ** 2 - r <= r**2
            img = np.clip(255.0 * circle + 0.8 * 255.0 * blob, 0, 255).astype(np.uint8)
            frames[t, 0] = self._reduce @ img @ self._reduce.T / 255.0
        return torch.from_numpy(frames)


def copy_into_reference(module, ref: ReferenceInertia) -> None:
    """Give the reference the parameters of a built inertia circuit (same layers, other names)."""
    sd = module.state_dict()
    mapping = {"nodes.enc.features.": "encoder.", "nodes.enc.mu.": "mu.", "nodes.enc.logvar.": "logvar.",
               "nodes.dec.linear.": "dec_linear.", "nodes.dec.deconv.": "decoder."}
    out = {}
    for k, v in sd.items():
        for a, b in mapping.items():
            if k.startswith(a):
                out[b + k[len(a):]] = v
    ref.load_state_dict(out, strict=True)


# ----------------------------------------------------------------------------- neurodelay side


def build_neurodelay(gaussian: bool, device: str):
    """The inertia circuit, its world, objective and optimiser, as ``train()`` would set them up."""
    from neurodelay import MovingCircle, build_seeded, presets
    from neurodelay.training.objectives import Objective

    world = MovingCircle()
    circuit = presets.inertia(n_latents=N_LATENTS, gamma=GAMMA, alpha=ALPHA, input_delay_ms=10.0,
                              gaussian=gaussian)
    module = build_seeded(circuit, world=world, seed=1).to(device)
    # score_from_step=2 reproduces the original's loss (see neurodelay.training.objectives).
    objective = Objective(reconstruction="gaussian", beta=1.0 if gaussian else 0.0, score_from_step=2)
    return world, module, objective


def neurodelay_loss(module, objective, streams, world, ctx):
    from neurodelay.training.objectives import compute_losses, first_scored_steps

    # As train() does: steps no loss term reads are not computed.
    skip = first_scored_steps(objective, module, streams["world.frames"].shape[1])
    traces = module(streams, ctx=ctx, skip_before=skip)
    return compute_losses(objective, traces, streams, module, factor_names=world.factor_names)["total"]


# ----------------------------------------------------------------------------- variants

VARIANTS = {
    # name: (implementation, end to end, tune the allocator, fast-path switches)
    "reference": ("ref", False, False, None),
    "neurodelay": ("nd", False, True, {}),
    "reference e2e": ("ref", True, False, None),
    "neurodelay e2e": ("nd", True, True, {}),
    # ablation (--ablation)
    "reference +alloc": ("ref", False, True, None),
    "nd plain": ("nd", False, False, {"channels_last": False, "elu": False, "last_deconv": False}),
    "nd +alloc": ("nd", False, True, {"channels_last": False, "elu": False, "last_deconv": False}),
    "nd +alloc +cl": ("nd", False, True, {"channels_last": True, "elu": False, "last_deconv": False}),
    "nd +alloc +cl +elu": ("nd", False, True, {"channels_last": True, "elu": True, "last_deconv": False}),
    "nd fast paths, no alloc": ("nd", False, False, {}),
    "nd chunk=64": ("nd", False, True, {"chunk": 64}),
}
MAIN = ["reference", "neurodelay", "reference e2e", "neurodelay e2e"]
ABLATION = ["reference", "reference +alloc", "nd plain", "nd +alloc", "nd +alloc +cl", "nd +alloc +cl +elu",
            "nd fast paths, no alloc", "neurodelay", "nd chunk=64"]


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    """Peak resident set since the last reset (VmHWM), or ru_maxrss where /proc is absent."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _rss_bytes() -> int:
    """Current resident set (VmRSS), or 0 where /proc is absent."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


E2E_BLOCK = 5  # neurodelay end to end: train() runs this many steps per call


def peak_tensor_bytes(fn) -> int | None:
    """The largest total size of live CPU tensors while ``fn()`` runs (None if it cannot be measured).

    Parameters, optimiser state and inputs that exist before the call count
    too. Measured from the allocation and free events of ``torch.profiler``
    (``profile_memory=True``) through its memory timeline (a private module of
    torch, hence the fallback): unlike the resident set, this does not depend
    on how the C allocator keeps or returns freed memory.
    """
    try:
        from torch.profiler import ProfilerActivity, profile
        from torch.profiler import _memory_profiler as mp

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                     with_stack=True) as prof:
            fn()
        live: dict = {}
        cur = peak = 0
        for _, action, (key, _version), nbytes in mp.MemoryProfileTimeline(prof._memory_profile()).timeline:
            if key.device.type != "cpu":
                continue
            if action in (mp.Action.PREEXISTING, mp.Action.CREATE):
                cur += nbytes - live.get(key, 0)
                live[key] = nbytes
            elif action == mp.Action.DESTROY:
                cur -= live.pop(key, 0)
            peak = max(peak, cur)
        return peak
    except Exception as exc:  # noqa: BLE001 - a private API: report, do not fail the benchmark
        print(f"(tensor peak not measured: {type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def run_worker(args) -> dict:
    """Run one variant in this (fresh) process and return its measurements.

    ``unit()`` is what is timed (one step, or for neurodelay end to end one
    ``train()`` call of :data:`E2E_BLOCK` steps); ``count(frames, factors)``
    is one step on a fixed batch, run once under the FLOP counter.
    """
    impl, e2e, alloc, switches = VARIANTS[args.worker]
    device = args.device
    alloc_info = None
    if alloc:
        from neurodelay._util.perf import tune_allocator

        alloc_info = tune_allocator()
    set_threads(args.threads)
    from torch.utils.flop_counter import FlopCounterMode

    from neurodelay._util import perf as _perf
    from neurodelay.components.base import RunContext

    for k, v in (switches or {}).items():
        setattr(_perf.FAST, k, v)
    torch.manual_seed(0)
    world, module, objective = build_neurodelay(args.gaussian, device)
    fixed = world.sample(BATCH, seed=123, device=device)
    block = 1
    if impl == "ref":
        model = ReferenceInertia(args.gaussian).to(device)
        copy_into_reference(module, model)
        del module
        opt = torch.optim.RMSprop(model.parameters(), lr=LR)
        model.train()

        def count(frames, factors):
            opt.zero_grad(set_to_none=True)
            model(frames).backward()
            opt.step()

        if e2e:
            loader = torch.utils.data.DataLoader(SequenceDataset(seed=1), batch_size=BATCH, shuffle=True,
                                                 num_workers=0, drop_last=True)
            batches = iter(loader)

            def unit():
                count(next(batches).to(device), None)
        else:
            def unit():
                count(fixed.frames, None)
    else:
        opt = torch.optim.RMSprop([p for p in module.parameters() if p.requires_grad], lr=LR)
        module.train()
        gen = torch.Generator(device=device)
        ctx = RunContext(generator=gen, sample=True)

        def count(frames, factors):
            gen.manual_seed(0)
            loss = neurodelay_loss(module, objective, {"world.frames": frames, "world.factors": factors},
                                   world, ctx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        if e2e:
            from neurodelay.study import TrainSettings
            from neurodelay.training import train

            block = E2E_BLOCK
            settings = TrainSettings(steps=block, batch_size=BATCH, lr=LR, log_every=block,
                                     checkpoint_every=block)
            calls = iter(range(1 << 30))

            def unit():
                train(module, world, objective, settings, seed=next(calls), device=device, progress=False)
        else:
            def unit():
                count(fixed.frames, fixed.factors)

    n_warm = 1 if block > 1 else args.warmup
    sync(device)
    # Peak memory of the steps: the peak resident set over the steps (the kernel's mark reset
    # just before them) minus the resident set just before them.
    rss0 = _rss_bytes()
    hwm_reset = _reset_peak_rss()
    if not hwm_reset:
        rss0 = _peak_rss_bytes()
    for _ in range(n_warm):
        unit()
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    times = time_calls(unit, max(1, args.steps // block), device)
    times = [t / block for t in times for _ in range(block)]
    peak_rss = _peak_rss_bytes()
    peak_cuda = torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else None
    with FlopCounterMode(display=False) as counter:
        count(fixed.frames, fixed.factors)
    peak_tensors = peak_tensor_bytes(lambda: count(fixed.frames, fixed.factors)) if device == "cpu" else None
    return {"variant": args.worker, "times_s": times, "flops": counter.get_total_flops(),
            "rss0": rss0, "peak_rss": peak_rss, "hwm_reset": hwm_reset, "peak_cuda": peak_cuda,
            "peak_tensors": peak_tensors, "alloc": alloc_info}


# ----------------------------------------------------------------------------- numerical check


def check_numbers(gaussian: bool, device: str) -> list[str]:
    """Same parameters, same frames: the loss and gradients of both implementations."""
    from neurodelay._util import perf as _perf
    from neurodelay.components.base import RunContext

    if device.startswith("cuda"):  # compare float32 arithmetic, not TF32 (timings keep torch's defaults)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    world, module, objective = build_neurodelay(gaussian, device)
    ref = ReferenceInertia(gaussian).to(device)
    copy_into_reference(module, ref)
    ref.eval()  # the mean latent (no noise), so that both are deterministic
    ep = world.sample(BATCH, seed=7, device=device)
    streams = ep.streams()
    ctx = RunContext(sample=False)
    lines = []

    def grads_of(model, loss):
        model.zero_grad(set_to_none=True)
        loss.backward()
        return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}

    l_ref = ref(streams["world.frames"])
    g_ref = grads_of(ref, l_ref)
    results = {}
    for label, sw in (("fast paths on", {}),
                      ("fast paths off", {"channels_last": False, "elu": False, "last_deconv": False})):
        with _perf.fast_paths(**sw):
            l_nd = neurodelay_loss(module, objective, streams, world, ctx)
            g_nd = grads_of(module, l_nd)
        results[label] = (l_nd, g_nd)
    names = {"nodes.enc.features.": "encoder.", "nodes.enc.mu.": "mu.", "nodes.enc.logvar.": "logvar.",
             "nodes.dec.linear.": "dec_linear.", "nodes.dec.deconv.": "decoder."}
    for label, (l_nd, g_nd) in results.items():
        l_nd, l_r = float(l_nd.detach()), float(l_ref.detach())
        rel_loss = abs(l_nd - l_r) / abs(l_r)
        worst = 0.0
        for k, g in g_nd.items():
            rk = next(b + k[len(a):] for a, b in names.items() if k.startswith(a))
            scale = g_ref[rk].abs().max().item() + 1e-30
            worst = max(worst, (g - g_ref[rk]).abs().max().item() / scale)
        ok = rel_loss < 1e-5 and worst < 1e-3
        lines.append(f"  neurodelay ({label}) vs reference: loss {l_nd:.6f} vs {l_r:.6f} "
                     f"(relative difference {rel_loss:.1e}); gradients: max |difference| / max |gradient| "
                     f"over parameters {worst:.1e} -> {'OK' if ok else 'MISMATCH'} "
                     f"(tolerances 1e-5 on the loss, 1e-3 on gradients)")
    if device.startswith("cuda"):
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = False  # torch's defaults
    return lines


# ----------------------------------------------------------------------------- driver


def _spawn(name: str, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--device", args.device,
           "--threads", str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.gaussian:
        cmd.append("--gaussian")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"worker {name!r} failed:\n{out.stderr[-4000:]}")
    line = [s for s in out.stdout.splitlines() if s.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant and round (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of all variants (default 3)")
    p.add_argument("--gaussian", action="store_true", help="beta-VAE variant (default: autoencoder)")
    p.add_argument("--ablation", action="store_true", help="also time each fast path on its own")
    p.add_argument("--variants", nargs="*", help="run only these variants")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda needs a CUDA device")
    if args.worker:
        print("RESULT " + json.dumps(run_worker(args)), flush=True)
        return
    set_threads(args.threads)
    names = args.variants or (ABLATION + ["reference e2e", "neurodelay e2e"] if args.ablation else MAIN)
    unknown = set(names) - set(VARIANTS)
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    print("# bench_train: one training step of the inertia circuit (B=64, 10 frames, 32x32, "
          f"4 latents, {'Gaussian (beta-VAE)' if args.gaussian else 'deterministic (autoencoder)'} latent, "
          "RMSprop)")
    print("command: python benchmarks/bench_train.py " + " ".join(sys.argv[1:]))
    for line in machine_lines(args.device, args.threads):
        print(line)
    print("numerical check (same parameters and frames):")
    for line in check_numbers(args.gaussian, args.device):
        print(line)
    peaks = [matmul_peak_gflops(args.device)]
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(args.rounds):
        for n in names:
            runs[n].append(_spawn(n, args))
            print(f"  round {r + 1}/{args.rounds}: {n}: "
                  f"{1e3 * statistics.median(runs[n][-1]['times_s']):.1f} ms/step", flush=True)
    peaks.append(matmul_peak_gflops(args.device))
    peak = max(peaks)
    print(f"peak: 2048^2 float32 matmul {peak:.1f} GFLOP/s (best of before/after: "
          f"{', '.join(f'{x:.1f}' for x in peaks)})")
    ref_flops = runs.get("reference", [{}])[0].get("flops") if "reference" in runs else None
    summary = {}
    print(f"\n{'variant':26s} {'ms/step':>9s} {'(min)':>8s} {'steps/s':>8s} {'GFLOP':>7s} {'GFLOP/s':>8s} "
          f"{'useful':>7s} {'%peak':>6s} {'peak mem':>10s} {'tensors':>9s}")
    for n in names:
        times = [t for run in runs[n] for t in run["times_s"]]
        med, best = statistics.median(times), min(statistics.median(run["times_s"]) for run in runs[n])
        flops = runs[n][0]["flops"]
        useful = ref_flops if ref_flops else flops
        if args.device.startswith("cuda"):
            mem = max(run["peak_cuda"] for run in runs[n])
            mem_s = f"{mem / 2**20:.0f} MiB"
        else:
            mem = statistics.median(run["peak_rss"] - run["rss0"] for run in runs[n])
            mem_s = f"+{mem / 2**20:.0f} MiB"
        tens = [run.get("peak_tensors") for run in runs[n] if run.get("peak_tensors")]
        tens_s = f"{max(tens) / 2**20:.0f} MiB" if tens else "-"
        summary[n] = med
        print(f"{n:26s} {1e3 * med:9.1f} {1e3 * best:8.1f} {1 / med:8.2f} {flops / 1e9:7.2f} "
              f"{flops / med / 1e9:8.1f} {useful / med / 1e9:7.1f} {100 * flops / med / 1e9 / peak:5.1f}% "
              f"{mem_s:>10s} {tens_s:>9s}")
    print("\n(ms/step: median over all timed steps; (min): best round's median; useful: GFLOP/s counting "
          "the reference's FLOPs; peak mem: " + ("torch.cuda.max_memory_allocated" if args.device.startswith("cuda")
                                                  else "peak resident set during the steps (VmHWM, reset before "
                                                       "them) minus the resident set before them, fresh process")
          + "; tensors: the largest total size of live tensors during one step, parameters and inputs included, "
          "from torch.profiler's memory events, independent of the C allocator)")
    for a, b in (("reference", "neurodelay"), ("reference e2e", "neurodelay e2e"),
                 ("reference +alloc", "neurodelay")):
        if a in summary and b in summary:
            print(f"speed-up {b} / {a}: {summary[a] / summary[b]:.2f}x")


if __name__ == "__main__":
    main()
