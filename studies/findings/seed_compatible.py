"""Section 7: the original's run, one to one, to its end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .core import Measured, Section, checks, fmt, lag_of, open_section, provenance, savefig, scalar_ci, verdict, \
    with_ci

#: The original's training loss at its first step (docs/original-study.md: about 411).
SEED_FIRST_LOSS = 411.0
REGIONS3 = ("inside", "edge", "background")


def section_seed_compatible(runs: Path, out_root: Path) -> Section:
    sec, pts = open_section(runs, "seed_compatible", "7. The original's run, one to one")
    if not pts:
        return sec
    ds = pts[0].ds
    loss = ds["loss_total"]
    first, last = float(loss.values[0]), float(np.nanmean(loss.values[-5:]))
    reg = [float(ds["region_mse"].sel(region=r)) for r in REGIONS3]
    reg_ci = [tuple(ds["region_mse_ci"].sel(region=r).values) for r in REGIONS3]
    drawn, drawn_ci = float(ds["drawn"]), scalar_ci(ds, "drawn")
    asym, asym_ci = float(ds["motion_asymmetry"]), scalar_ci(ds, "motion_asymmetry")
    n_seq = f"n={ds.sizes['sample']} sequences"
    lag = lag_of(ds)
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    axes[0].plot(ds["step"].values, loss.values, lw=1)
    axes[0].axhline(SEED_FIRST_LOSS, color="tab:red", ls=":", lw=1, label="the original's first step (411)")
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("training step")
    axes[0].set_ylabel("training loss (summed squared error / batch)")
    axes[0].legend(fontsize=7)
    vals = [float(ds["error_behind"]), float(ds["error_ahead"])]
    axes[1].bar([0, 1], vals, color=["tab:blue", "tab:orange"])
    axes[1].axhline(0.0, color="0.5", lw=0.6)
    axes[1].set_xticks([0, 1], ["behind the circle", "ahead of the circle"])
    axes[1].set_ylabel("mean signed error, reconstruction - frame")
    axes[1].set_title(f"asymmetry {with_ci(asym, asym_ci)} (positive: lagging)", fontsize=9)
    img = savefig(fig, out_root, "seed_compatible")
    steps = int(pts[0].params["train"]["steps"])
    sec.checks = checks(sec.study, {
        "seed_first_loss": abs(first / SEED_FIRST_LOSS - 1),
        "seed_loss_falls": last / first,
        "seed_circle_drawn": Measured(drawn, drawn_ci, n_seq),
        "seed_lagging_error": Measured(asym_ci[0] if asym_ci is not None else np.nan, asym_ci, n_seq),
    })
    sec.text = f"""
**Original (docs/original-study.md §1-§3):** the inertia autoencoder on its 200,000 fixed sequences (seed-compatible
renderer), RMSprop lr 1e-4, batch 64, seed 1, trained at gamma 0.75 for 50K iterations; its one qualitative inertia
claim: "small errors lagging behind the foreground circle's direction of motion".

**Measured:** {provenance(runs, sec.study, pts)}
Training loss (summed squared error per sequence over the 8 scored frames): {fmt(first)} at the first step (the
original: about {SEED_FIRST_LOSS:g}), {fmt(last)} at the end. Reconstruction MSE per pixel
{fmt(float(ds['reconstruction_mse']))}; by region (95 % bootstrap intervals over sequences): inside
{with_ci(reg[0], reg_ci[0])}, edge {with_ci(reg[1], reg_ci[1])}, background {with_ci(reg[2], reg_ci[2])}; the circle
is {with_ci(drawn, drawn_ci)} drawn (0: the mean scene). Does the reconstruction lag the circle? The mean signed
error (reconstruction - frame) within 2 radii of the circle is {fmt(float(ds['error_behind']))} behind it and
{fmt(float(ds['error_ahead']))} ahead of it along its motion: asymmetry {with_ci(asym, asym_ci)} (positive: too bright
where the circle was, too dark where it is, i.e. lagging; a reconstruction one frame late reads about +0.15 on this
world). Lag of z: {with_ci(lag.value, lag.ci) + ' steps' if np.isfinite(lag.value) else 'not read (' + lag.note + ')'};
its linear loop on these sequences lags {fmt(float(ds['lag_theory_steps']))} steps. MIG {fmt(float(ds['mig']))}.

{img}

**Verdict:** {verdict(sec.checks)}{steps:,} of the original's 50,000 steps.
"""
    return sec
