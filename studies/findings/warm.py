"""Sections 5c and 4b: the paired, warm-started designs for representational inertia and the prediction loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from neurodelay.analysis.lag import representational_lag

from .core import Measured, Section, checks, fmt, open_section, provenance, savefig, seed_interval, spread, table, \
    verdict, with_ci
from .prediction import relative_prediction_error

#: Conditions (gamma, alpha) of the frozen controls where the loop's input is examined (linear motion).
DIAGNOSED = ((0.5, 1.0), (0.75, 1.0), (0.9, 1.0), (0.75, 0.0))


def _inertia_loop(x: np.ndarray, gamma: float, alpha: float) -> np.ndarray:
    """The inertia preset's recurrence on a drive x (sample, time, channel): z_0 = x_0,
    z_t = (1 - gamma) x_t + gamma (z_(t-1) + alpha (z_(t-1) - z_(t-2))), the prediction at t = 1 being z_0.
    (On the frozen runs it gives the circuit's z from its enc to within 1e-5.)"""
    z = np.empty_like(x)
    z[:, 0] = x[:, 0]
    for t in range(1, x.shape[1]):
        pred = z[:, t - 1] + alpha * (z[:, t - 1] - z[:, t - 2]) if t >= 2 else z[:, 0]
        z[:, t] = (1 - gamma) * x[:, t] + gamma * pred
    return z


def _lag_of(ds: xr.Dataset, trace: np.ndarray) -> float:
    """The lag instrument's reading of ``trace`` (sample, time, channel) in place of ds's z."""
    keep = ds.drop_vars([v for v in ds.data_vars if "latent" in ds[v].dims or str(v).startswith(("lag", "latent"))])
    keep["z"] = (("sample", "time", "channel"), trace, ds["z"].attrs)
    return float(representational_lag(keep, "z", n_boot=0, from_step=5)["lag_steps"])


def _affine_readout(x: np.ndarray, y: np.ndarray, first: int) -> np.ndarray:
    """``x`` (sample, time, k) read as ``y`` by an affine map fitted by least squares on steps ``first`` on,
    applied at every step."""
    design = np.concatenate([x, np.ones(x.shape[:-1] + (1,))], -1)
    coef, *_ = np.linalg.lstsq(design[:, first:].reshape(-1, design.shape[-1]),
                               y[:, first:].reshape(-1, y.shape[-1]), rcond=None)
    return design @ coef


def loop_input_lags(ds: xr.Dataset, gamma: float, alpha: float, seed: int = 0) -> tuple[float, float]:
    """Where a frozen control's lag comes from: the lag of the loop driven by the encoder's own linear readout
    (least squares from enc to the position it sees), and of the loop driven by the true position plus white
    noise of that readout's error variance."""
    e = ds["enc"].values.astype(np.float64)
    pos = ds["factors"].sel(factor=["circle_x", "circle_y"]).values.astype(np.float64)
    delay = int(ds["enc"].attrs.get("first_valid_step", 1))
    seen = pos[:, np.clip(np.arange(pos.shape[1]) - delay, 0, None)]  # what enc encodes (the first frame held)
    read = _affine_readout(e, seen, delay)
    sd = float((read - seen)[:, delay:].std())
    noisy = seen + np.random.default_rng(seed).normal(0.0, sd, seen.shape)
    return _lag_of(ds, _inertia_loop(read, gamma, alpha)), _lag_of(ds, _inertia_loop(noisy, gamma, alpha))


def _mean_over_seeds(values) -> Measured:
    m, ci, n = seed_interval(values)
    return Measured(m, ci, f"n={n} seeds", "" if n else "no value could be read")


def section_inertia_warm(runs: Path, out_root: Path) -> Section:
    sec, pts = open_section(runs, "inertia_warm", "5c. Representational inertia, paired and warm-started: what "
                                                  "training does to the lag")
    if not pts:
        return sec
    cell: dict[tuple, dict[int, xr.Dataset]] = {}
    for p in pts:
        key = (p.params["world"].get("motion", "linear"), "tuned" if int(p.params["train"]["steps"]) > 0 else "frozen",
               float(p.params["circuit"]["gamma"]), float(p.params["circuit"]["alpha"]))
        cell.setdefault(key, {})[int(p.params["seed"])] = p.ds
    motions = [m for m in ("linear", "reversal") if any(k[0] == m for k in cell)]
    gammas = sorted({k[2] for k in cell})
    alphas = sorted({k[3] for k in cell})

    def lags(motion, kind, g, a, var="lag_steps"):
        return {s: float(ds[var]) for s, ds in cell.get((motion, kind, g, a), {}).items()}

    rows, diff_cells, frozen_err, alpha1_err = [], {}, {}, {}
    for motion in motions:
        for a in alphas:
            for g in gammas:
                th = lags(motion, "frozen", g, a, "lag_theory_steps")
                fr, tu = lags(motion, "frozen", g, a), lags(motion, "tuned", g, a)
                paired = [tu[s] - fr[s] for s in tu if s in fr and np.isfinite(tu[s]) and np.isfinite(fr[s])]
                d = seed_interval(paired)
                diff_cells[(motion, g, a)] = d[0]
                theory = float(np.nanmean(list(th.values()))) if th else np.nan
                frozen_err[(motion, g, a)] = np.nanmean(list(fr.values())) - theory if fr else np.nan
                if a == 1.0:
                    alpha1_err[(motion, g)] = np.nanmean(list(tu.values())) - theory if tu else np.nan
                asym = [float(ds["motion_asymmetry"]) for ds in cell.get((motion, "tuned", g, a), {}).values()
                        if "motion_asymmetry" in ds]
                rows.append([motion, f"{g:g}", f"{a:g}", theory, spread(fr.values()), spread(tu.values()),
                             with_ci(d[0], d[1]) + f" (n={d[2]})", spread(asym) if asym else "-"])
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    axes = fig.subplots(1, len(motions), squeeze=False)[0]
    for ax, motion in zip(axes, motions):
        for j, a in enumerate(alphas):
            for kind, ls, mk in (("frozen", "--", "o"), ("tuned", "-", "s")):
                means = [np.nanmean(list(lags(motion, kind, g, a).values()) or [np.nan]) for g in gammas]
                ax.plot(gammas, means, ls=ls, marker=mk, color=f"C{j}", label=f"alpha {a:g}, {kind}")
            th = [np.nanmean(list(lags(motion, "frozen", g, a, "lag_theory_steps").values()) or [np.nan])
                  for g in gammas]
            ax.plot(gammas, th, ls=":", color=f"C{j}", lw=1, label=f"alpha {a:g}, theory")
        ax.set_xlabel("gamma")
        ax.set_ylabel("lag of z (steps), mean over seeds")
        ax.set_title(f"{motion} motion", fontsize=9)
        ax.legend(fontsize=6)
    img = savefig(fig, out_root, "inertia_warm")

    def worst(d: dict, motion: str) -> float:
        v = [abs(x) for k, x in d.items() if k[0] == motion and np.isfinite(x)]
        return max(v) if v else float("nan")

    def seeds_of(motion, kind, g, a, var):
        return [float(ds[var]) for ds in cell.get((motion, kind, g, a), {}).values() if var in ds]

    g0, g1 = lags("linear", "tuned", 0.5, 0.0), lags("linear", "tuned", 0.5, 1.0)
    gap = [g0[s] - g1[s] for s in g0 if s in g1]
    th_gap = (np.nanmean(list(lags("linear", "frozen", 0.5, 0.0, "lag_theory_steps").values()) or [np.nan])
              - np.nanmean(list(lags("linear", "frozen", 0.5, 1.0, "lag_theory_steps").values()) or [np.nan]))
    gm, gci, gn = seed_interval([x / th_gap for x in gap if np.isfinite(x)] if th_gap > 0 else [])
    a75 = seeds_of("linear", "tuned", 0.75, 1.0, "motion_asymmetry")
    a0 = seeds_of("linear", "tuned", 0.0, 1.0, "motion_asymmetry")
    am, aci, an = seed_interval(a75)
    sec.checks = checks(sec.study, {
        "warm_frozen_matches_theory": Measured(worst(frozen_err, "linear"),
                                               n=f"{len(gammas) * len(alphas)} conditions"),
        "warm_training_keeps_lag": Measured(worst(diff_cells, "linear")),
        "warm_training_keeps_lag_reversal": Measured(worst(diff_cells, "reversal")),
        "warm_alpha1_no_extra_lag": Measured(max((abs(v) for k, v in alpha1_err.items()
                                                  if k[0] == "linear" and np.isfinite(v)), default=np.nan)),
        "warm_alpha0_adds_lag": Measured(gm, gci, f"n={gn} seeds"),
        "warm_reconstruction_lags": Measured(aci[0] if aci else np.nan, aci, f"n={an} seeds"),
        "warm_inertia_adds_no_lagging_error": Measured(abs(np.mean(a75) - np.mean(a0)) if a75 and a0 else np.nan),
    })
    diag_rows = []
    for g, a in DIAGNOSED:
        frozen = cell.get(("linear", "frozen", g, a), {})
        if not frozen:
            continue
        own, white = zip(*(loop_input_lags(ds, g, a, seed=s) for s, ds in sorted(frozen.items())))
        th = lags("linear", "frozen", g, a, "lag_theory_steps")
        diag_rows.append([f"{g:g}", f"{a:g}", fmt(float(np.nanmean(list(th.values())))), spread(own), spread(white),
                          spread(lags("linear", "frozen", g, a).values())])
    sec.text = f"""
**Why:** sections 5 and 5b compare circuits trained from scratch at each gamma, which differ in what they learned
to encode as well as in their loops, and their lags were read through a readout that noise biases. Here every
condition of a seed starts from the same pretrained per-frame autoencoder (`studies/pretrain_ae.yaml`: 10 latents,
it draws the circle), and each is either fine-tuned in its recurrence ("tuned") or left as pretrained ("frozen":
the same loop with the encoder not trained, whose lag is the loop's own at matched readout noise). Tuned minus
frozen, per seed, is what training does to the lag; "theory" is the loop driven by the true position on the same
20-frame paths (scored from step 5, where the lag has settled). With reversals a linear extrapolation is wrong at
every turn, so alpha = 1 is not right by construction.

**Measured:** {provenance(runs, sec.study, sorted(pts, key=lambda p: -int(p.params["train"]["steps"])))} Lags in steps (encoding-model estimate, read where the readout
reaches a held-out R^2 of 0.5), means over seeds with 95 % bootstrap intervals over seeds; motion asymmetry of the
tuned reconstruction as in section 7 (positive: lagging).

{table(["motion", "gamma", "alpha", "theory", "frozen lag", "tuned lag", "tuned - frozen (paired)",
        "motion asymmetry (tuned)"], rows)}

{img}

**Verdict:** {verdict(sec.checks)}At gamma 0.5 dropping the extrapolation adds {fmt(gm)} of the matched theory's
{fmt(th_gap)} steps; the largest paired effect of training on the lag is {fmt(sec.checks[1].value)} steps with
linear motion and {fmt(sec.checks[2].value)} with reversals; the reconstruction's motion asymmetry at the original's
setting is {with_ci(am, aci)}.

**Where the frozen controls leave the theory** (the sanity check above): the theory drives the loop with the true
position; a frozen control drives it with a pretrained encoder's code. Driving the same recurrence (the preset's,
which reproduces each frozen z from its enc to 1e-5) with the encoder's own linear readout reproduces the measured
lag; driving it with the true position plus white noise of that readout's error variance does not (linear motion,
lags in steps, means over seeds [95 % interval]):

{table(["gamma", "alpha", "theory", "loop of the encoder's linear readout", "loop of the position + white noise",
        "frozen lag (measured)"], diag_rows)}

So where the loop is slow or near resonance (gamma >= 0.75) the extra lag comes from the structure of this
encoder's error (not white, not the lag readout's choice), which the loop carries; the theory, which assumes an
exact linear code, is not the reference there, and the paired tuned - frozen difference is the measure of what
training does.
"""
    return sec


def _readout_relative_error(ds: xr.Dataset) -> float:
    """Relative prediction error of the circle position read linearly from z (fitted at lag 0, all rows)."""
    z = ds["z"].values.astype(np.float64)
    pos = ds["factors"].sel(factor=["circle_x", "circle_y"]).values.astype(np.float64)
    r = _affine_readout(z, pos, 2)
    rhat = 2 * r[:, 1:-1] - r[:, :-2]
    err = ((r[:, 2:] - rhat) ** 2).sum(-1).mean()
    hold = ((r[:, 2:] - r[:, 1:-1]) ** 2).sum(-1).mean()
    return float(err / hold) if hold > 0 else float("nan")


def _z_variance(ds: xr.Dataset) -> float:
    z = ds["z"].values.astype(np.float64)[:, 2:]
    return float(z.reshape(-1, z.shape[-1]).var(axis=0).sum())


def section_prediction_warm(runs: Path, out_root: Path) -> Section:
    sec, pts = open_section(runs, "prediction_warm", "4b. The temporal prediction loss, paired and warm-started")
    if not pts:
        return sec
    cell: dict[tuple, dict[int, xr.Dataset]] = {}
    for p in pts:
        cell.setdefault((float(p.params["objective"]["beta_norm"]), float(p.params["objective"]["prediction"])),
                        {})[int(p.params["seed"])] = p.ds
    betas = sorted({b for b, _ in cell})
    lams = sorted({lam for _, lam in cell})

    def per_seed(b, lam, fn):
        return {s: fn(ds) for s, ds in cell.get((b, lam), {}).items()}

    def blank4(ds):
        if "blank_progress" not in ds:
            return np.nan
        return float(ds["blank_progress"].sel(blank_steps=ds["blank_steps"].values.max()))

    rows = []
    for b in betas:
        for lam in lams:
            rows.append([f"{b:g}", f"{lam:g}", spread(per_seed(b, lam, relative_prediction_error).values()),
                         spread(per_seed(b, lam, _readout_relative_error).values()),
                         spread(per_seed(b, lam, _z_variance).values()),
                         spread(per_seed(b, lam, blank4).values()),
                         spread(per_seed(b, lam, lambda d: float(d["reconstruction_mse"])).values()),
                         spread(per_seed(b, lam, lambda d: float(d["drawn"])).values())])

    ks = sorted({int(k) for c in cell.values() for ds in c.values() if "blank_steps" in ds
                 for k in ds["blank_steps"].values})

    def blank_error(k):
        def read(ds):
            if "blank_position_error_px" not in ds or k not in ds["blank_steps"].values:
                return np.nan
            return float(ds["blank_position_error_px"].sel(blank_steps=k))
        return read

    blank_rows = [[f"{b:g}", f"{lam:g}"] + [spread(per_seed(b, lam, blank_error(k)).values()) for k in ks]
                  for b in betas for lam in lams]

    def ratio(b, fn, hi=100.0, lo=0.0):
        num, den = per_seed(b, hi, fn), per_seed(b, lo, fn)
        return _mean_over_seeds([num[s] / den[s] for s in num if s in den and den[s] > 0])

    fig = Figure(figsize=(9, 3.3), layout="constrained")
    axes = fig.subplots(1, 2)
    for b in betas:
        xs = [max(lam, 1e-3) for lam in lams]
        axes[0].plot(xs, [np.nanmean(list(per_seed(b, lam, relative_prediction_error).values())) for lam in lams],
                     marker="o", label=f"beta_norm {b:g}")
        axes[1].plot(xs, [np.nanmean(list(per_seed(b, lam, blank4).values())) for lam in lams], marker="o",
                     label=f"beta_norm {b:g}")
    for ax, lab in ((axes[0], "relative prediction error of z"), (axes[1], "blank progress after 4 steps")):
        ax.set_xscale("log")
        ax.set_xlabel("lambda (0 drawn at 1e-3)")
        ax.set_ylabel(lab)
        ax.legend(fontsize=7)
    axes[1].axhline(1.0, color="0.5", ls=":", lw=0.8)
    axes[1].axhline(0.0, color="0.5", lw=0.6)
    img = savefig(fig, out_root, "prediction_warm")
    b0 = min(betas)
    sec.checks = checks(sec.study, {
        "pred_trains_b0.001": ratio(0.001, relative_prediction_error),
        "pred_trains_b0.0302": ratio(0.0302, relative_prediction_error),
        "pred_keeps_scale": ratio(0.001, _z_variance),
        "pred_decoded_positions": ratio(0.001, _readout_relative_error),
        "pred_blank_carries_on": _mean_over_seeds(list(per_seed(b0, 100.0, blank4).values())),
        "pred_blank_baseline_stops": _mean_over_seeds(list(per_seed(b0, 0.0, blank4).values())),
    })
    sec.text = f"""
**Why:** section 4 trained the intended prediction loss from scratch for 400 steps, where z hardly carries the circle.
Here every condition of a seed starts from the same pretrained per-frame beta-VAE (`studies/pretrain_vae.yaml`: 10
latents, beta_norm 0.001, it draws the circle) and is fine-tuned with the loss at its lambda and beta_norm.

**Measured:** {provenance(runs, sec.study, pts)} Means over seeds [95 % bootstrap interval over seeds]. "Relative
prediction error" of z as in section 4 (scale-free); the same for the circle position read linearly from z; the
total variance of z (the prediction term could be met by shrinking the latents: this says whether it was); "blank
progress" after 4 steps of withdrawn input (analysis `blank`: z follows its own extrapolation and is decoded; 1: the
decoded circle carries on along its path, 0: it stops).

{table(["beta_norm", "lambda", "relative prediction error of z", "of the position read from z", "variance of z",
        "blank progress (4 steps)", "reconstruction MSE", "drawn"], rows)}

{img}

Position error during the blank against its length k (analysis `blank`: the mean distance along the path between
the circle decoded with the input blanked for k steps and with it, px; means over seeds [95 % interval]):

{table(["beta_norm", "lambda"] + [f"k = {k}" for k in ks], blank_rows)}

(nan: no position could be read, where the circle is not drawn.) A circuit that carries the circle on along its
path while blanked would show an error growing more slowly with k with lambda 100 than with lambda 0: at
beta_norm {fmt(b0)} and k = {ks[-1] if ks else 'nan'} the error is {spread(per_seed(b0, 100.0, blank_error(ks[-1])).values()) if ks else 'nan'} px with lambda 100 against
{spread(per_seed(b0, 0.0, blank_error(ks[-1])).values()) if ks else 'nan'} px with lambda 0.

**Verdict:** {verdict(sec.checks)}
"""
    return sec
