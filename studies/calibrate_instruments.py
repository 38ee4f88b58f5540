"""Calibrate the lag instrument on ground truth and write docs/calibration.md.

    python studies/calibrate_instruments.py            # about 10 min on 2 idle cores
    python studies/calibrate_instruments.py --quick    # a smaller grid, for a look

Ground truth (``neurodelay.analysis.calibration.linear_representation``):
ideal linear inertia circuits (input delay d, blend gamma, extrapolation
alpha) driven by the true circle position of the moving world, the position
embedded in 4 latents by a random affine map, with readout noise of 0.5 to 4
px that is either independent at every step or constant over each sequence,
plus 2 distractor latents (sequence-constant, like a blob's position), on
the studies' 10-frame sequences and on 30-frame ones; then the same
circuits with the position coded nonlinearly (tuning curves), noise inside
the code. Each noisy
representation is compared with its noise-free twin (same circuit, same
trajectories): the difference is the estimator's error due to the noise, the
quantity a reviewer needs to know before reading a lag. The encoding
estimator (the default) and the decoding readout are both measured. The
second table gives the coverage of the bootstrap intervals.

Circuits are drawn from a seeded generator before anything runs, so the
table is the same at every run (same machine, same library versions).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neurodelay import MovingCircle  # noqa: E402
from neurodelay.analysis.calibration import NOISE_KINDS, linear_representation  # noqa: E402
from neurodelay.analysis.lag import representational_lag  # noqa: E402

NOISES_PX = (0.5, 1.0, 2.0, 3.0, 4.0)
WORLDS = {10: MovingCircle(size=32, n_frames=10),
          30: MovingCircle(size=32, n_frames=30, speed_min=0.01, speed_max=0.0344)}


def draw_circuits(n: int, seed: int = 20261207) -> list[tuple[int, float, float]]:
    """(d, gamma, alpha) triples: d in 0..3, gamma in [0, 0.9], alpha in [0, 1] (all stable)."""
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(0, 4)), round(float(rng.uniform(0, 0.9)), 2), round(float(rng.uniform(0, 1)), 2))
            for _ in range(n)]


def lag_of(ds, method: str, n_boot: int = 0) -> tuple[float, float, np.ndarray]:
    out = representational_lag(ds, "z", pixels_per_unit=24.0, method=method, min_r2=0.0, n_boot=n_boot,
                               max_ci_steps=np.inf, max_velocity_gain=np.inf)
    lag = float(out["lag_steps"])
    return lag, float(out["readout_r2"]), out["lag_steps_ci"].values


def bias_table(n_circuits: int, reps: int, n_seq: int) -> list[dict]:
    rows = []
    for n_t, world in WORLDS.items():
        for ci, (d, gamma, alpha) in enumerate(draw_circuits(n_circuits)):
            for rep in range(reps):
                common = dict(gamma=gamma, alpha=alpha, delay_steps=d, n_latents=4, n_distractors=2,
                              seed=1000 * ci + rep, trajectory_seed=rep)
                clean = linear_representation(world, n_seq, noise_px=0.0, **common)
                truth = {m: lag_of(clean, m)[0] for m in ("encoding", "decoding")}
                for kind in NOISE_KINDS:
                    for noise in NOISES_PX:
                        ds = linear_representation(world, n_seq, noise_px=noise, noise_kind=kind, **common)
                        for m in ("encoding", "decoding"):
                            lag, r2, _ = lag_of(ds, m)
                            rows.append({"n_t": n_t, "circuit": ci, "d": d, "gamma": gamma, "alpha": alpha,
                                         "kind": kind, "noise": noise, "method": m, "r2": r2,
                                         "error": lag - truth[m], "truth": truth[m]})
    return rows


def coverage_table(reps: int, n_seq: int, n_boot: int) -> list[dict]:
    rows = []
    world = WORLDS[10]
    for d, gamma, alpha in ((1, 0.5, 0.0), (2, 0.75, 1.0)):
        for kind in NOISE_KINDS:
            for noise in (1.0, 3.0):
                for rep in range(reps):
                    common = dict(gamma=gamma, alpha=alpha, delay_steps=d, n_latents=4, n_distractors=2,
                                  seed=7000 + rep, trajectory_seed=100 + rep)
                    truth = lag_of(linear_representation(world, n_seq, noise_px=0.0, **common), "encoding")[0]
                    ds = linear_representation(world, n_seq, noise_px=noise, noise_kind=kind, **common)
                    lag, r2, ci = lag_of(ds, "encoding", n_boot=n_boot)
                    rows.append({"circuit": f"d={d}, gamma={gamma}, alpha={alpha}", "kind": kind, "noise": noise,
                                 "covered": bool(ci[0] <= truth <= ci[1]), "width": float(ci[1] - ci[0]),
                                 "r2": r2})
    return rows


def nonlinear_table(reps: int) -> list[dict]:
    """Tuning-curve codes (8 latents) of pure delays and two inertia circuits, noise inside the code."""
    rows = []
    world = WORLDS[10]
    for d, gamma, alpha in ((0, 0.0, 0.0), (1, 0.0, 0.0), (3, 0.0, 0.0), (1, 0.5, 0.0), (2, 0.75, 1.0)):
        for n_seq in (256, 1024):
            for noise in (0.0, 1.0, 2.0, 4.0):
                for rep in range(reps):
                    common = dict(gamma=gamma, alpha=alpha, delay_steps=d, seed=9000 + rep, trajectory_seed=200 + rep)
                    truth = lag_of(linear_representation(world, n_seq, noise_px=0.0, **common), "encoding")[0]
                    ds = linear_representation(world, n_seq, noise_px=noise, n_latents=8, embedding="tuning", **common)
                    lag, r2, _ = lag_of(ds, "encoding")
                    rows.append({"circuit": f"d={d}, gamma={gamma}, alpha={alpha}", "n_seq": n_seq, "noise": noise,
                                 "error": lag - truth, "r2": r2})
    return rows


def _mean_ci(values) -> tuple[float, float, float]:
    """Mean and its normal 95 % interval (1.96 standard errors)."""
    v = np.asarray(values, dtype=float)
    se = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else np.nan
    return float(v.mean()), float(v.mean() - 1.96 * se), float(v.mean() + 1.96 * se)


def _fmt(x: float) -> str:
    return f"{x:+.3f}" if abs(x) >= 5e-4 else "0.000"


def write_doc(bias: list[dict], cover: list[dict], meta: dict, path: Path, nonlinear: list[dict]) -> None:
    lines = [
        "# Calibration of the instruments",
        "",
        "Written by `python studies/calibrate_instruments.py` (do not edit by hand); "
        f"{meta['wall']:.0f} s on {meta['machine']}.",
        "",
        "## The lag (`representational_lag`)",
        "",
        "Ground truth: ideal linear inertia circuits (input delay d, blend gamma, extrapolation alpha; "
        f"{meta['n_circuits']} drawn at random: {meta['circuits']}) driven by the true circle position, "
        "the position embedded in 4 latents by a random affine map, 2 distractor latents constant over each "
        "sequence, and readout noise added to the position before the embedding (px per coordinate: what a "
        "perfect readout would err by), independent at every step or constant over each sequence. "
        f"{meta['n_seq']} sequences per evaluation set, {meta['reps']} evaluation sets per cell (each its own "
        "trajectories, embedding and noise). The error is the lag read from the noisy representation minus "
        "the lag the same estimator reads from its noise-free twin (transients, sequence length and start-up "
        "included): the bias the noise causes. Only evaluation sets whose readout reaches a held-out R^2 of "
        "0.5 (the default gate) count; n is how many did.",
        "",
        "| frames | noise | noise (px) | encoding: mean error [95 % interval] (steps) | encoding: circuit means, "
        "largest | encoding: SD | decoding: mean error [95 % interval] | decoding: circuit means, largest | "
        "mean R^2 | n |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    worst, worst_mean = 0.0, 0.0
    for n_t in sorted({r["n_t"] for r in bias}):
        for kind in NOISE_KINDS:
            for noise in NOISES_PX:
                cell = [r for r in bias if r["n_t"] == n_t and r["kind"] == kind and r["noise"] == noise
                        and r["r2"] >= 0.5]
                enc = [r for r in cell if r["method"] == "encoding"]
                dec = [r for r in cell if r["method"] == "decoding"]
                if not enc:
                    lines.append(f"| {n_t} | {kind} | {noise:g} | - | - | - | - | - | - | 0 |")
                    continue
                per_circuit = [np.mean([r["error"] for r in enc if r["circuit"] == c])
                               for c in sorted({r["circuit"] for r in enc})]
                per_circuit_dec = [np.mean([r["error"] for r in dec if r["circuit"] == c])
                                   for c in sorted({r["circuit"] for r in dec})]
                big = per_circuit[int(np.argmax(np.abs(per_circuit)))]
                big_dec = per_circuit_dec[int(np.argmax(np.abs(per_circuit_dec)))]
                e_enc, e_dec = _mean_ci([r["error"] for r in enc]), _mean_ci([r["error"] for r in dec])
                worst = max(worst, abs(e_enc[1]), abs(e_enc[2]))
                worst_mean = max(worst_mean, abs(e_enc[0]))
                lines.append(
                    f"| {n_t} | {kind} | {noise:g} | {_fmt(e_enc[0])} [{_fmt(e_enc[1])}, {_fmt(e_enc[2])}] | "
                    f"{_fmt(big)} | {np.std([r['error'] for r in enc]):.3f} | {_fmt(e_dec[0])} [{_fmt(e_dec[1])}, "
                    f"{_fmt(e_dec[2])}] | {_fmt(big_dec)} | {np.mean([r['r2'] for r in enc]):.2f} | {len(enc)} |")
    lines += [
        "",
        f"The mean error of the encoding estimator where R^2 >= 0.5 lies within {worst_mean:.3f} steps of 0 in "
        "every cell (target: within 0.1 steps); the farther end of its 95 % interval, within "
        f"{worst:.3f} steps, is the precision of this calibration ({meta['n_circuits'] * meta['reps']} evaluation "
        "sets per cell), widest with "
        "sequence-constant noise on slow 30-frame paths. "
        "The largest of the 8 circuit means is shown too: each rests on 10 evaluation sets, so with "
        "sequence-constant noise on slow 30-frame paths it spreads by about SD / 3 around a bias of 0. The "
        "decoding readout (position regressed on z, `method='decoding'`) is biased towards the lag of least "
        "attenuation, by up to 1.6 steps for a circuit; its errors are shown for comparison. The SD column "
        "is the spread of one evaluation set's estimate: what the bootstrap interval has to cover.",
        "",
        "## The bootstrap interval of the lag",
        "",
        f"{meta['cover_reps']} evaluation sets per row, {meta['n_seq']} sequences each, {meta['n_boot']} "
        "resamples; a row's coverage is the fraction of its 95 % intervals that hold the noise-free lag.",
        "",
        "| circuit | noise | noise (px) | coverage | mean width (steps) | mean R^2 | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for circuit in sorted({r["circuit"] for r in cover}):
        for kind in NOISE_KINDS:
            for noise in sorted({r["noise"] for r in cover}):
                cell = [r for r in cover if r["circuit"] == circuit and r["kind"] == kind and r["noise"] == noise]
                lines.append(f"| {circuit} | {kind} | {noise:g} | {np.mean([r['covered'] for r in cell]):.2f} | "
                             f"{np.mean([r['width'] for r in cell]):.3f} | {np.mean([r['r2'] for r in cell]):.2f} | "
                             f"{len(cell)} |")
    lines += [
        "",
        "With sequence-constant noise the scoring half's sequences share their noise over time, so the "
        "interval must come from resampling whole sequences, as it does.",
        "",
        "## Nonlinear codes",
        "",
        "Trained encoders code the position smoothly but not linearly. Ground truth here: the same linear "
        "circuits, their position coded by 8 Gaussian tuning curves (centres drawn in the unit square, width "
        "0.3), with the noise added to the position before the code (inside the nonlinearity, as pixel noise "
        "passes through an encoder). The error is the lag read from the coded, noisy representation minus "
        "the lag read from the affine, noise-free one: the bias of the code and of its noise together. "
        f"{meta['nl_reps']} evaluation sets per cell.",
        "",
        "| circuit | sequences | noise (px) | mean error [95 % interval] (steps) | SD | mean R^2 |",
        "|---|---|---|---|---|---|",
    ]
    for circuit in sorted({r["circuit"] for r in nonlinear}):
        for n_seq in sorted({r["n_seq"] for r in nonlinear}):
            for noise in sorted({r["noise"] for r in nonlinear}):
                cell = [r for r in nonlinear if r["circuit"] == circuit and r["n_seq"] == n_seq
                        and r["noise"] == noise]
                e = _mean_ci([r["error"] for r in cell])
                lines.append(f"| {circuit} | {n_seq} | {noise:g} | {_fmt(e[0])} [{_fmt(e[1])}, {_fmt(e[2])}] | "
                             f"{np.std([r['error'] for r in cell]):.3f} | {np.mean([r['r2'] for r in cell]):.2f} |")
    worst_nl = {noise: max(abs(np.mean([r["error"] for r in nonlinear if r["circuit"] == c and r["n_seq"] == n
                                        and r["noise"] == noise]))
                           for c in {r["circuit"] for r in nonlinear} for n in {r["n_seq"] for r in nonlinear})
                for noise in sorted({r["noise"] for r in nonlinear})}
    by_n = {n: float(np.mean([abs(r["error"]) for r in nonlinear if r["n_seq"] == n and r["noise"] > 0]))
            for n in sorted({r["n_seq"] for r in nonlinear})}
    lines += [
        "",
        "Noise-free, a nonlinear code reads the lag of its linear twin within "
        f"{worst_nl.get(0.0, float('nan')):.3f} steps (largest cell mean): the encoding model's features (the "
        "position and Gaussian bumps over the image) fit a smooth code, where a model of the position alone read "
        "per-frame beta-VAEs with no delay at 0.14-0.39 steps. Noise inside the code leaves a bias that the "
        "affine ground truth above does not show; its largest cell mean is "
        + ", ".join(f"{v:.3f} steps at {k:g} px" for k, v in worst_nl.items() if k > 0)
        + f". Averaged over circuits and noise levels its size is {by_n[min(by_n)]:.3f} steps from {min(by_n)} "
        f"sequences and {by_n[max(by_n)]:.3f} from {max(by_n)}"
        + (" (so it is not only the fit's finite-sample share of the noise)" if by_n[max(by_n)] >= by_n[min(by_n)]
           else "") + ". Its mechanism is not established here; a reviewer should allow for it when reading a lag "
        "from a noisy nonlinear code.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 circuits, 4 sets, 20 coverage sets (a look only)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "calibration.md")
    args = p.parse_args(argv)
    import platform

    import torch

    n_circuits, reps, cover_reps, n_boot, n_seq = (3, 4, 20, 200, 256) if args.quick else (8, 10, 40, 400, 256)
    t0 = time.perf_counter()
    bias = bias_table(n_circuits, reps, n_seq)
    cover = coverage_table(cover_reps, n_seq, n_boot)
    nl_reps = 2 if args.quick else 6
    nonlinear = nonlinear_table(nl_reps)
    meta = {"wall": time.perf_counter() - t0, "n_circuits": n_circuits, "reps": reps, "cover_reps": cover_reps,
            "n_boot": n_boot, "n_seq": n_seq, "nl_reps": nl_reps,
            "circuits": ", ".join(f"({d}, {g}, {a})" for d, g, a in draw_circuits(n_circuits)),
            "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                       f"{torch.get_num_threads()} thread(s)"}
    write_doc(bias, cover, meta, args.out, nonlinear)
    print("wrote", args.out, f"({meta['wall']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
