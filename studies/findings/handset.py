"""Section 9b: hand-set horizons at a reversal (overshoot, px and ms), and the horizon learned on accelerating motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import neurodelay as nd
from neurodelay.analysis.kalman import best_horizon
from neurodelay.analysis.reversal import reversal_overshoot
from neurodelay.testing import delayed_report

from .core import Measured, Section, by_seed, checks, fmt, load_points, open_section, provenance, savefig, \
    seed_interval, spread, table, verdict, with_ci
from .emergent import _alpha, _condition

SET = ("none", "best", "full")  # the hand-set horizons on the reversal world, in the study's order


def theory_overshoot(world, delay: int, alpha: float, n: int = 512, seed: int = 3) -> tuple[float, float]:
    """(overshoot px, peak ms) of a perfect encoder's report with a hand-set horizon, read by the same analysis."""
    straight = nd.MovingCircle(size=world.size, n_frames=world.n_frames)
    out = reversal_overshoot(delayed_report(world, delay, alpha, n=n, seed=seed),
                             calibration=delayed_report(straight, delay, alpha, n=n, seed=seed), window=5, n_boot=0)
    px = float(out["reversal_overshoot_px"])
    return (0.0 if abs(px) < 1e-9 else px), float(out["reversal_peak_ms"])  # exact zero up to rounding


def _label(params: dict) -> str:
    w, z = params["world"], params["circuit"]["nodes"]["z"]
    if w.get("motion") == "accelerating":
        return "accelerating"
    return {0.0: "none", 3.0: "full"}.get(float(z.get("alpha", 0.0)), "best")


def _value(ds, name: str) -> float:
    return float(ds[name]) if name in ds and np.isfinite(float(ds[name])) else float("nan")


def section_emergent_handset(runs: Path, out_root: Path) -> Section:
    sec, pts = open_section(runs, "emergent_handset", "9b. Hand-set against learned horizons: overshoot at a "
                                                      "reversal, and accelerating motion")
    if not pts:
        return sec
    cell = by_seed(pts, _label)
    horizon = {_label(p.params): float(p.params["circuit"]["nodes"]["z"].get("alpha", 0.0)) for p in pts}
    # section 9's learned horizon on the same reversal world, where it has run
    learned = {int(p.params["seed"]): p.ds for p in load_points(runs, "emergent_compensation")
               if _condition(p.params)[0] == "reversal"}
    w = pts[0].params["world"]
    delay = int(round(float(pts[0].params["circuit"]["edges"][0]["delay_ms"]) / float(pts[0].ds.attrs["dt_ms"])))
    start = int(pts[0].params["objective"].get("score_from_step", 5))
    reversal = nd.MovingCircle(size=int(w["size"]), n_frames=int(w["n_frames"]), motion="reversal")
    accelerating = nd.MovingCircle(size=int(w["size"]), n_frames=int(w["n_frames"]), motion="accelerating")
    best_acc = best_horizon(accelerating, delay, n=2048, seed=0, from_step=start)["alpha"]
    theory = {label: theory_overshoot(reversal, delay, horizon[label]) for label in SET if label in horizon}

    def values(label, name, where=None):
        return {s: _value(ds, name) for s, ds in (where if where is not None else cell.get(label, {})).items()}

    over = {label: values(label, "reversal_overshoot_px") for label in SET}
    peak = {label: values(label, "reversal_peak_ms") for label in SET}
    rows = []
    for label in SET:
        if label not in cell:
            continue
        th_px, th_ms = theory[label]
        rows.append([f"{label}: fixed at {horizon[label]:g}", spread(over[label].values()), fmt(th_px),
                     spread(peak[label].values()), fmt(th_ms), spread(values(label, "lag_steps").values())])
    if learned:
        alphas = [_alpha(ds) for ds in learned.values()]
        th_px, th_ms = theory_overshoot(reversal, delay, float(np.nanmean(alphas)))
        rows.append([f"learned (section 9): {spread(alphas)}", spread(values("", "reversal_overshoot_px", learned)
                                                                         .values()),
                     fmt(th_px), spread(values("", "reversal_peak_ms", learned).values()), fmt(th_ms),
                     spread(values("", "lag_steps", learned).values())])
    full, none = [v for v in over["full"].values() if np.isfinite(v)], over["none"]
    paired = [over["full"][s] - over["best"][s] for s in over["full"] if s in over["best"]
              and np.isfinite(over["full"][s]) and np.isfinite(over["best"][s])]
    ratio = seed_interval([v / theory["full"][0] for v in full]) if "full" in theory else (np.nan, None, 0)
    none_m = seed_interval(none.values())
    peak_m = seed_interval(peak["full"].values())
    acc = [v - best_acc for v in (_alpha(ds) for ds in cell.get("accelerating", {}).values()) if np.isfinite(v)]
    acc_m = seed_interval(acc)
    sec.checks = checks(sec.study, {
        "handset_none_no_overshoot": Measured(none_m[0], none_m[1], f"n={none_m[2]} seeds"),
        "handset_full_matches_theory": Measured(ratio[0], ratio[1], f"n={ratio[2]} seeds"),
        "handset_full_peak_ms": Measured(peak_m[0], peak_m[1], f"n={peak_m[2]} seeds"),
        "handset_best_overshoots_less": Measured(min(paired) if paired else np.nan, None, f"n={len(paired)} seeds"),
        "accelerating_best_horizon": Measured(acc_m[0], acc_m[1], f"n={acc_m[2]} seeds"),
    })
    fig = Figure(figsize=(5.6, 3.4), layout="constrained")
    ax = fig.subplots()
    for i, label in enumerate(SET):
        curves = [ds["reversal_excursion_px"].values for ds in cell.get(label, {}).values()
                  if "reversal_excursion_px" in ds]
        if curves:
            steps = np.arange(len(curves[0])) * float(pts[0].ds.attrs["dt_ms"])
            ax.plot(steps, np.mean(curves, axis=0), color=f"C{i}", marker="o", ms=3,
                    label=f"fixed at {horizon[label]:g}")
    curves = [ds["reversal_excursion_px"].values for ds in learned.values() if "reversal_excursion_px" in ds]
    if curves:
        ax.plot(steps, np.mean(curves, axis=0), color="C3", ls="--", label="learned (section 9)")
        true = next(iter(learned.values()))["reversal_excursion_true_px"].values
        ax.plot(steps, true, color="k", lw=1, label="the circle")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlabel("time after the last step before the turn (ms)")
    ax.set_ylabel("report past the turning point (px)")
    ax.legend(fontsize=7)
    img = savefig(fig, out_root, "emergent_handset")
    acc_alpha = [_alpha(ds) for ds in cell.get("accelerating", {}).values()]
    before = (f"section 9 learned a horizon of {spread([_alpha(ds) for ds in learned.values()])} steps on the "
              f"reversal world, and its report ran past the turning point." if learned else
              "section 9 learned a horizon on the reversal world (not run here).")
    sec.text = f"""
**Why:** {before} How far past, and when, for the horizons one would set by hand, tells what a delay-compensating
extrapolation costs at a reversal, where human observers see no overshoot (Whitney, Murakami & Cavanagh 2000,
Vision Research 40:137-149, experiment 2; Eagleman & Sejnowski 2000, Science 287:2036-2038, experiment 1, the stimulus of their Fig. 1A: a ring reversing right after a flash was seen about 6 deg from the flash in its new direction, as far as the flash-lag of continuing motion, and not past the turn along the old one). The circuit of section 9 (frames 30 ms late, z trained to report the
present) with the horizon fixed at 0 (no compensation), at the reversal world's best horizon and at the delay.
And the smoothly accelerating world, where the circle's speed drifts (a log-normal random walk), asks whether
the learned horizon tracks that world's best horizon as it did for reversals.

**Measured:** {provenance(runs, sec.study, pts)} Overshoot: the peak of the report's mean excursion past the
turning point along the old direction (analysis `reversal`, a readout calibrated on straight paths), mean over
seeds [95 % bootstrap interval]; theory: the same analysis on a perfect encoder's report with that horizon.

{table(["horizon", "overshoot (px)", "theory (px)", "peak after the turn (ms)", "theory (ms)", "lag of z (steps)"],
       rows)}

{img}

Accelerating world: learned horizon {spread(acc_alpha)}, against the world's best horizon {fmt(best_acc)} for a
perfect encoder (`kalman.best_horizon`, delay {delay} steps).

**Verdict:** {verdict(sec.checks)}A hand-set horizon of the whole delay overshoots the turn by
{with_ci(ratio[0], ratio[1])} of a perfect encoder's overshoot, peaking {fmt(peak_m[0])} ms after it. What makes
the overshoot is the extrapolation itself: the report carries the old velocity on for its horizon, so any circuit
that compensates a delay by extrapolating overshoots a reversal by about horizon x speed; a circuit without a
horizon does not. Human observers' lack of overshoot therefore rules out a perceived position made by this
mechanism alone at the time of the turn; it would be consistent with it if the overshoot were corrected later
(postdiction), which a circuit with a readout later than the turn could do and this one cannot.
"""
    return sec
