"""FINDINGS.md from the results of the reproduction studies.

Every number in FINDINGS.md is computed here from the ``results.nc`` files
that ``studies/reproduce.py`` leaves in ``runs/``; nothing is typed in by
hand except the original study's own figures, quoted from docs/original-study.md as the
reference. Each experiment is a function ``section_<study>(runs)`` that
returns a :class:`Section`: its markdown, its figures and its
:class:`Check` s. A check is one claim with its measured value, the rule
that decides whether it holds, and a tolerance: how far a rerun of the same
study may move the value before the finding counts as changed
(``tests/slow/test_findings.py`` reruns the studies and compares against
``docs/findings/findings.json``, written next to FINDINGS.md).

    python studies/findings.py [--runs runs] [--out FINDINGS.md]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
import yaml  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from neurodelay.analysis.regions import factor_grid  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIG_DIR = Path("docs") / "findings"
RECORD = FIG_DIR / "findings.json"

# The original study's figures (docs/original-study.md), the reference the measurements are set beside.
SEED_BETA_NORMS = (0.001, 0.0055, 0.0302, 0.1657, 0.9103, 5.0)
SEED_REGION_MSE = {  # beta-VAE, M = 4, mean squared error per pixel by region (docs/original-study.md section 5)
    0.001: (0.0180, 0.0254, 0.00038),
    0.0055: (0.2826, 0.1955, 0.00152),
    0.0302: (0.2664, 0.1825, 0.00441),
    0.1657: (0.2455, 0.1723, 0.0463),
    0.9103: (0.2457, 0.1725, 0.0463),
    5.0: (0.2456, 0.1724, 0.0463),
}
SEED_DECODER_REGION_MSE = {"inside": 8e-7, "edge": 6e-3, "background": 7e-5}  # docs/original-study.md section 3


# ----------------------------------------------------------------------------- data model
@dataclass
class Check:
    """One claim, measured.

    ``holds`` is the verdict of ``rule`` on ``value``; ``tolerance`` is how
    far a rerun may move ``value`` (absolute) before the finding counts as
    changed.
    """

    id: str
    claim: str
    value: float
    rule: str
    holds: bool
    tolerance: float

    def row(self) -> str:
        return f"| {self.claim} | {_fmt(self.value)} | {self.rule} | {'yes' if self.holds else 'no'} |"


@dataclass
class Section:
    study: str
    title: str
    text: str = ""
    checks: list[Check] = field(default_factory=list)
    missing: str | None = None

    def markdown(self) -> str:
        out = [f"## {self.title}", ""]
        if self.missing:
            out += [f"*Not run yet:* {self.missing}", ""]
            return "\n".join(out)
        out += [self.text.strip(), ""]
        if self.checks:
            out += ["Checks (rerun by `tests/slow/test_findings.py` against `docs/findings/findings.json`):", "",
                    "| claim | measured | holds if | holds |", "|---|---|---|---|"]
            out += [c.row() for c in self.checks]
            out.append("")
        return "\n".join(out)


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e4):
        return f"{v:.2e}"
    return f"{v:.4g}" if a < 1 else f"{v:.3g}"


def _check(id, claim, value, rule, ok, tol) -> Check:
    value = float(value)
    return Check(id=id, claim=claim, value=value, rule=rule, holds=bool(ok), tolerance=float(tol))


# ----------------------------------------------------------------------------- loading
@dataclass
class Point:
    params: dict
    ds: xr.Dataset
    folder: Path


def _open_section(runs: Path, study: str, title: str) -> tuple["Section", list["Point"]]:
    """A section and the study's finished runs (the section says how to make them if there are none)."""
    sec = Section(study, title)
    pts = load_points(runs, study)
    if not pts:
        sec.missing = f"`python studies/reproduce.py --only {study}`"
    return sec, pts


def _study_of(ds: xr.Dataset) -> dict:
    return yaml.safe_load(ds.attrs["study"])


def load_points(runs: Path, study: str) -> list[Point]:
    """Every finished run of a study: its resolved study (as a dict) and its results."""
    base = Path(runs) / study
    files = sorted(base.glob("*/results.nc")) or sorted(base.glob("results.nc"))
    pts = []
    for f in files:
        ds = xr.open_dataset(f).load()
        pts.append(Point(_study_of(ds), ds, f.parent))
    return pts


def _get(d: dict, path: str):
    cur = d
    for part in path.replace("]", "").replace("[", ".").split("."):
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    return cur


def _times(runs: Path) -> dict:
    p = Path(runs) / "reproduce_times.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _provenance(runs: Path, study: str, pts: list[Point]) -> str:
    ds = pts[0].ds
    seeds = sorted({int(p.params.get("seed", 0)) for p in pts})
    tr = pts[0].params.get("train", {})
    t = _times(runs).get(study)
    speed = np.mean([float(p.ds.attrs.get("train_steps_per_second", np.nan)) for p in pts])
    parts = [f"`python -m neurodelay.run studies/{study}.yaml`: {len(pts)} run(s), seeds {seeds}, "
             f"{tr.get('steps')} steps of {tr.get('optimizer')} (lr {tr.get('lr')}, batch {tr.get('batch_size')}), "
             f"evaluated on {ds.sizes.get('sample')} sequences (seed {ds.attrs.get('evaluate_seed')}); "
             + (f"{speed:.1f} training steps/s; " if speed > 0 else "training speed not recorded; ")
             + f"torch {ds.attrs.get('torch_version')}, device {ds.attrs.get('device')}"]
    if t:
        parts.append(f"; {t / 60:.1f} min wall for the study")
    return "".join(parts) + "."


def _savefig(fig: Figure, out_root: Path, name: str) -> str:
    path = out_root / FIG_DIR / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return f"![{name}]({(FIG_DIR / (name + '.png')).as_posix()})"


def _table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(x if isinstance(x, str) else _fmt(x) for x in r) + " |")
    return "\n".join(out)


def _verdict(checks: list[Check]) -> str:
    """The verdict word and the count of checks that hold, e.g. "**holds in part**: 2 of 3 checks hold. "."""
    held = sum(c.holds for c in checks)
    word = ("**holds**" if held == len(checks) else
            "**holds in part**" if held else "**does not hold** at this scale")
    return f"{word}: {held} of {len(checks)} checks hold. "


def _spread(values) -> str:
    v = np.asarray(values, dtype=float)
    if v.size == 1:
        return _fmt(float(v[0]))
    return f"{_fmt(float(v.mean()))} ± {_fmt(float(v.std(ddof=1)))} (n={v.size})"


def no_circle_region_mse(factors: np.ndarray, size: int = 32) -> dict[str, float]:
    """Region errors of a decoder that draws the blob perfectly and no circle at all.

    The reference for "is the circle drawn?": frames with the circle against
    the same frames without it (radius 1e-4), scored by
    :func:`neurodelay.analysis.regions.region_errors`. ``factors``: (n, >= 4).
    """
    import torch

    from neurodelay.analysis.regions import REGIONS, region_errors
    from neurodelay.worlds import CircleOverBlob

    f = torch.as_tensor(np.asarray(factors, dtype=np.float64)[:, :4], dtype=torch.float32)[:, None]
    world = CircleOverBlob(size=size)
    with_circle = world.render(f)[:, 0, 0].numpy()
    without = CircleOverBlob(size=size, radius=1e-4).render(f)[:, 0, 0].numpy()
    masks = {k: v[:, 0, 0].numpy() for k, v in world.masks(f).items()}
    mse = region_errors(without, with_circle, masks)["mse"]
    return {r: float(mse[i]) for i, r in enumerate(REGIONS) if r in ("inside", "edge", "object")}


def drawn_fraction(mse_inside: float, baseline_inside: float) -> float:
    """1 - error / error of drawing no circle: 1 = the circle's inside drawn exactly, 0 = not at all."""
    return 1.0 - mse_inside / baseline_inside


# ----------------------------------------------------------------------------- 1. supervised control
FACTORS4 = ("blob_x", "blob_y", "circle_x", "circle_y")


def section_supervised_control(runs: Path, out_root: Path) -> Section:
    sec, pts = _open_section(runs, "supervised_control", "1. Supervised control: the encoder can be perfectly disentangled")
    if not pts:
        return sec
    pts.sort(key=lambda p: p.params["seed"])
    diag, rmse, mss_sweep, mss, off = [], [], [], [], []
    for p in pts:
        c = p.ds["correlation"].sel(factor=list(FACTORS4)).values  # (latent, factor)
        diag.append(np.diag(c[:4, :4]))
        z = p.ds["z"].values[:, 0, :4]
        f = p.ds["factors"].sel(factor=list(FACTORS4)).values[:, 0]
        rmse.append(np.sqrt(((z - f) ** 2).mean(axis=0)))
        mss.append(float(p.ds["correlation_score"]))
        mss_sweep.append(float(p.ds["sweep_correlation_score"]))
        sd = p.ds["sweep_latents"].std("sweep_step").values[:4, :4]  # (sweep_factor, latent)
        off.append(float((sd.sum() - np.trace(sd)) / 12 / (np.trace(sd) / 4)))
    diag, rmse = np.array(diag), np.array(rmse)
    rows = [[name, _spread(diag[:, i]), _spread(rmse[:, i])] for i, name in enumerate(FACTORS4)]
    fig = Figure(figsize=(4.2, 3.6), layout="constrained")
    ax = fig.subplots()
    c = pts[0].ds["correlation"].sel(factor=list(FACTORS4)).values[:4]
    im = ax.imshow(c, vmin=-1, vmax=1, cmap="RdBu_r")
    for i in range(4):
        for j in range(4):
            ax.text(j, i, f"{c[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(4), FACTORS4, rotation=30, fontsize=8)
    ax.set_yticks(range(4), [f"z{i}" for i in range(4)], fontsize=8)
    ax.set_title(f"supervised encoder, seed {pts[0].params['seed']}", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    img = _savefig(fig, out_root, "supervised_control_correlation")
    sec.text = f"""
**Original (docs/original-study.md §3):** an encoder trained with squared error to output the four factors is perfectly
disentangled: latent-factor correlation matrix close to the identity, errors about ±0.02.

**Measured:** {_provenance(runs, sec.study, pts)}
Evaluation set of static scenes; correlation of output i with factor i, and the root mean squared error
of each output (factor units: image widths for the blob, 0.75 image widths for the circle):

{_table(["factor", "correlation with its output", "RMSE"], rows)}

mss (mean squared deviation of the correlation matrix from the identity, the original's measure) on the
evaluation set: {_spread(mss)}; from the original's factor sweeps (16 steps of one factor, the others at 0.5):
{_spread(mss_sweep)}. The sweep figure is large for an encoder this accurate because a correlation ignores
scale: along a sweep the outputs of the other factors move by only {_spread(off)} of the swept output's
movement (standard deviations), yet those small wiggles correlate strongly with the swept factor. The
mss over a sweep therefore measures noise as entanglement; neurodelay reports it for comparison and
scores disentanglement on the evaluation set (mss, MIG, DCI, SAP).

{img}

**Verdict:** {{verdict}}
"""
    worst_diag = float(diag.min())
    worst_rmse = float(rmse.max())
    sec.checks = [
        _check("control_min_diagonal", "smallest diagonal correlation, all factors and seeds", worst_diag,
               ">= 0.95", worst_diag >= 0.95, 0.03),
        _check("control_max_rmse", "largest per-factor RMSE (factor units), all seeds", worst_rmse,
               "<= 0.04 (twice the original's ±0.02)", worst_rmse <= 0.04, 0.015),
        _check("control_mss", "mss on the evaluation set, mean over seeds", float(np.mean(mss)),
               "<= 0.01", float(np.mean(mss)) <= 0.01, 0.01),
        _check("control_sweep_offtarget", "off-target / on-target output movement along factor sweeps",
               float(np.mean(off)), "<= 0.05 (the sweep mss is driven by small wiggles)",
               float(np.mean(off)) <= 0.05, 0.03),
    ]
    ok = all(c.holds for c in sec.checks)
    sec.text = sec.text.replace("{verdict}", (
        "**holds.** The backbone represents each factor in its own unit at this scale; "
        if ok else "**holds only in part** at this scale: ") +
        f"correlations {worst_diag:.3f} or higher, errors {worst_rmse:.3f} or lower.")
    return sec


# ----------------------------------------------------------------------------- 2. supervised decoder
REGIONS3 = ("inside", "edge", "background")


def section_supervised_decoder(runs: Path, out_root: Path) -> Section:
    sec, pts = _open_section(runs, "supervised_decoder", "2. Supervised decoder: factors to image, on held-out positions")
    if not pts:
        return sec
    ds = pts[0].ds
    grid = [float(ds["region_mse"].sel(region=r)) for r in REGIONS3]
    tr = [float(ds["heldout_region_mse"].sel(split="trained", region=r)) for r in REGIONS3]
    ho = [float(ds["heldout_region_mse"].sel(split="heldout", region=r)) for r in REGIONS3]
    rows = [[r, SEED_DECODER_REGION_MSE[r], grid[i], tr[i], ho[i]] for i, r in enumerate(REGIONS3)]
    ratio_obj = float(ds["heldout_region_mse"].sel(split="heldout", region="object")
                      / ds["heldout_region_mse"].sel(split="trained", region="object"))
    base = no_circle_region_mse(factor_grid())
    drawn = drawn_fraction(grid[0], base["inside"])
    drawn_tr, drawn_ho = drawn_fraction(tr[0], base["inside"]), drawn_fraction(ho[0], base["inside"])
    fig = Figure(figsize=(5.0, 3.2), layout="constrained")
    ax = fig.subplots()
    x = np.arange(3)
    ax.bar(x - 0.3, [SEED_DECODER_REGION_MSE[r] for r in REGIONS3], 0.2, label="original (1M steps)")
    ax.bar(x - 0.1, grid, 0.2, label="8^4 grid")
    ax.bar(x + 0.1, tr, 0.2, label="trained positions")
    ax.bar(x + 0.3, ho, 0.2, label="held-out positions")
    ax.set_yscale("log")
    ax.set_xticks(x, REGIONS3)
    ax.set_ylabel("MSE per pixel")
    ax.legend(fontsize=7)
    img = _savefig(fig, out_root, "supervised_decoder_regions")
    steps = pts[0].params["train"]["steps"]
    sec.text = f"""
**Original (docs/original-study.md §3):** a decoder from the four factors to the image, trained for 1M iterations, reaches
region errors of about 8e-7 inside the circle, 6e-3 on its edge and 7e-5 in the background, and generalises
to held-out grid values.

**Measured:** {_provenance(runs, sec.study, pts)}
Trained on the 8 even-indexed circle values of the 16-value grid (x and y); "held-out" scores the 8
odd-indexed values it never saw (blob on a 6 x 6 grid), "8^4 grid" the original's analysis grid.
Mean squared error per pixel:

{_table(["region", "original", "8^4 grid", "trained positions", "held-out positions"], rows)}

Held-out / trained error over the whole circle (object region): {ratio_obj:.3g}. A decoder that drew
the blob perfectly and no circle would score {_fmt(base['inside'])} inside and {_fmt(base['edge'])} on the
edge on the 8^4 grid: the fraction of the circle's inside that is drawn (1 - error / that error) is
{drawn:.2f} on the grid, {drawn_tr:.2f} on trained and {drawn_ho:.2f} on held-out positions.

{img}

**Verdict:** {{verdict}}
"""
    sec.checks = [
        _check("decoder_draws_circle", "fraction of the circle's inside drawn, trained positions", drawn_tr,
               ">= 0.8 (the circle is drawn)", drawn_tr >= 0.8, 0.15),
        # Tolerance 3: four runs that differed only in float rounding (two code versions
        # whose decoder backward rounds differently, 1 and 2 threads) gave 21.65, 21.91,
        # 22.77 and 23.00; the ratio of two small errors moves by up to 1.35 from rounding.
        _check("decoder_heldout_ratio", "object-region error, held-out / trained positions", ratio_obj,
               "<= 2 and the circle drawn (generalises)", ratio_obj <= 2.0 and drawn_tr >= 0.8, 3.0),
        _check("decoder_background", "background error on the 8^4 grid", grid[2],
               "<= 1e-3", grid[2] <= 1e-3, 5e-4),
        _check("decoder_inside", "inside-circle error on the 8^4 grid", grid[0],
               "<= 1e-2", grid[0] <= 1e-2, 1e-2),
    ]
    sec.checks.insert(2, _check("decoder_heldout_drawn", "fraction of the circle's inside drawn, held-out positions",
                                drawn_ho, ">= 0.8 (drawn where it was never trained)", drawn_ho >= 0.8, 0.15))
    if drawn_tr < 0.8:
        head = (f"**not shown at this scale.** After {steps} steps the decoder draws {drawn_tr:.0%} of the circle's "
                f"inside at trained positions, so held-out generalisation cannot be judged. ")
    elif ratio_obj <= 2.0:
        head = f"**holds.** The decoder draws the circle at held-out positions as well as at trained ones " \
               f"(error ratio {ratio_obj:.2f}). "
    elif drawn_ho >= 0.8:
        head = (f"**holds in part.** The decoder draws the circle at positions it never saw ({drawn_ho:.0%} of the "
                f"inside), but its error there is {ratio_obj:.1f}x that at trained positions, mostly on the edge "
                f"({_fmt(ho[1])} against {_fmt(tr[1])}): it has partly memorised where the edge falls. ")
    else:
        head = f"**does not hold.** At held-out positions only {drawn_ho:.0%} of the circle is drawn. "
    sec.text = sec.text.replace("{verdict}", head + (
        f"At trained positions the errors reach the original's level (inside {_fmt(tr[0])}, original "
        f"{SEED_DECODER_REGION_MSE['inside']:g} after 1M steps); on the 8^4 grid they are "
        f"{grid[0] / SEED_DECODER_REGION_MSE['inside']:.0f}x (inside), "
        f"{grid[1] / SEED_DECODER_REGION_MSE['edge']:.1f}x (edge) and "
        f"{grid[2] / SEED_DECODER_REGION_MSE['background']:.1f}x (background) the original's after {steps} steps."))
    return sec


# ----------------------------------------------------------------------------- 3. beta-VAE sweep
def _final_loss(ds: xr.Dataset, term: str) -> float:
    name = f"loss_{term}"
    if name not in ds:
        return float("nan")
    v = ds[name].values
    return float(np.nanmean(v[-5:]))


def _kl_nats(ds: xr.Dataset, beta_norm: float, n_latents: int) -> float:
    """Final KL per image in nats: the logged KL term is beta * KL, beta = beta_norm * pixels / M."""
    pixels = ds.sizes.get("y", 32) * ds.sizes.get("x", 32)
    beta = beta_norm * pixels / n_latents
    return _final_loss(ds, "kl") / beta if beta > 0 else float("nan")


def section_beta_vae_sweep(runs: Path, out_root: Path) -> Section:
    sec, pts = _open_section(runs, "beta_vae_sweep", "3. Static beta-VAE: reconstruction and disentanglement against beta")
    if not pts:
        return sec
    by = {}
    for p in pts:
        by[(float(p.params["objective"]["beta_norm"]), int(p.params["circuit"]["n_latents"]))] = p.ds
    betas = sorted({b for b, _ in by})
    ms = sorted({m for _, m in by})
    base = no_circle_region_mse(factor_grid())
    rows4 = []
    for m in ms:
        for b in betas:
            ds = by.get((b, m))
            if ds is None:
                continue
            ref = SEED_REGION_MSE.get(b, (np.nan,) * 3) if m == 4 else ("",) * 3
            ours = [float(ds["region_mse"].sel(region=r)) for r in REGIONS3]
            rows4.append([str(m), f"{b:g}", ref[0], ours[0], ref[1], ours[1], ref[2], ours[2],
                          f"{drawn_fraction(ours[0], base['inside']):.2f}", _kl_nats(ds, b, m)])
    rows = []
    for m in ms:
        for b in betas:
            ds = by.get((b, m))
            if ds is None:
                continue
            rows.append([str(m), f"{b:g}", float(ds["reconstruction_mse"]), float(ds["sweep_correlation_score"]),
                         float(ds["correlation_score"]), float(ds["mig"]), float(ds["dci_disentanglement"])])
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    axes = fig.subplots(1, 3)
    for m in ms:
        bs = [b for b in betas if (b, m) in by]
        for ax, var, label in ((axes[0], "reconstruction_mse", "reconstruction MSE per pixel"),
                               (axes[1], "sweep_correlation_score", "mss (sweeps)"),
                               (axes[2], "mig", "MIG")):
            ax.plot(bs, [float(by[(b, m)][var]) for b in bs], marker="o", label=f"M = {m}")
            ax.set_xscale("log")
            ax.set_xlabel("beta_norm")
            ax.set_ylabel(label)
    ref_b = [b for b in SEED_BETA_NORMS]
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    img = _savefig(fig, out_root, "beta_vae_sweep")
    fig2 = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig2.subplots()
    for i, r in enumerate(REGIONS3):
        ax.plot(ref_b, [SEED_REGION_MSE[b][i] for b in ref_b], ls="--", marker="x", color=f"C{i}",
                label=f"{r}, original")
        bs = [b for b in betas if (b, 4) in by]
        ax.plot(bs, [float(by[(b, 4)]["region_mse"].sel(region=r)) for b in bs], marker="o", color=f"C{i}",
                label=f"{r}, neurodelay")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("beta_norm (M = 4)")
    ax.set_ylabel("MSE per pixel")
    ax.legend(fontsize=6, ncol=2)
    img2 = _savefig(fig2, out_root, "beta_vae_regions")
    lo, hi = (min(betas), 4), (max(betas), 4)
    inside_lo = float(by[lo]["region_mse"].sel(region="inside")) if lo in by else np.nan
    inside_hi = float(by[hi]["region_mse"].sel(region="inside")) if hi in by else np.nan
    kl_hi = _kl_nats(by[hi], hi[0], 4) if hi in by else np.nan
    kl_lo = _kl_nats(by[lo], lo[0], 4) if lo in by else np.nan
    rec = {m: [float(by[(b, m)]["reconstruction_mse"]) for b in betas if (b, m) in by] for m in ms}
    mss = {m: [float(by[(b, m)]["sweep_correlation_score"]) for b in betas if (b, m) in by] for m in ms}

    def rank_corr(v):
        v = np.asarray(v)
        if v.size < 3:
            return float("nan")
        r = np.argsort(np.argsort(v))
        return float(np.corrcoef(np.arange(v.size), r)[0, 1])

    sec.text = f"""
**Original (docs/original-study.md §3, §5):** loss = summed squared error + beta KL, beta = beta_norm x 1024 / M.
Only the smallest beta reconstructs the circle; from beta_norm 0.1657 up the posterior collapses (KL about
1e-4 to 1e-7); higher beta gives higher reconstruction error and more entanglement (mss about 0.007 at the
lowest beta, 0.2-0.3 at the highest). 500K iterations per run.

**Measured:** {_provenance(runs, sec.study, pts)}

Region errors on the original's 8^4 grid (MSE per pixel), next to the original's for M = 4 (docs/original-study.md §5);
"drawn" is the fraction of the circle's inside that is drawn (1 - error / the error of drawing no circle,
{_fmt(base['inside'])}); KL is the final training KL per image in nats (the mean of the last 5 logged steps):

{_table(["M", "beta_norm", "inside (orig.)", "inside", "edge (orig.)", "edge", "background (orig.)",
         "background", "drawn", "KL"], rows4)}

{img2}

Reconstruction error (evaluation set), mss from the original's factor sweeps and on the evaluation set
(see section 1 on what the sweep mss measures), MIG, DCI disentanglement:

{_table(["M", "beta_norm", "reconstruction MSE", "mss (sweeps)", "mss (evaluation set)", "MIG", "DCI D"], rows)}

{img}

**Verdict:** {{verdict}}
"""
    ratio = inside_hi / inside_lo if inside_lo > 0 else float("nan")
    bg_hi = float(by[hi]["region_mse"].sel(region="background")) if hi in by else np.nan
    bg_ratio = bg_hi / SEED_REGION_MSE[5.0][2]
    drawn_lo = {m: drawn_fraction(float(by[(min(betas), m)]["region_mse"].sel(region="inside")), base["inside"])
                for m in ms if (min(betas), m) in by}
    sec.checks = [
        _check("beta_recon_rank_m4", "rank correlation of reconstruction error with beta (M = 4)",
               rank_corr(rec.get(4, [])), ">= 0.8 (error grows with beta)", rank_corr(rec.get(4, [])) >= 0.8, 0.3),
        _check("beta_recon_rank_m10", "rank correlation of reconstruction error with beta (M = 10)",
               rank_corr(rec.get(10, [])), ">= 0.8", rank_corr(rec.get(10, [])) >= 0.8, 0.3),
        _check("beta_collapse_kl", "final KL per image at beta_norm 5 (M = 4), nats", kl_hi,
               "<= 0.01 (collapsed)", kl_hi <= 0.01, 0.01),
        _check("beta_collapse_matches_original", "background error at beta_norm 5 (M = 4) / the original's 0.0463",
               bg_ratio, "within 10 % of 1", abs(bg_ratio - 1) <= 0.1, 0.05),
        _check("beta_inside_ratio", "inside-circle error, largest / smallest beta (M = 4)", ratio,
               ">= 2 (only the smallest beta draws the circle)", ratio >= 2.0, 1.0),
        _check("beta_drawn_m4", "fraction of the circle drawn at the smallest beta, M = 4", drawn_lo.get(4, np.nan),
               ">= 0.8", drawn_lo.get(4, np.nan) >= 0.8, 0.2),
        _check("beta_drawn_m10", "fraction of the circle drawn at the smallest beta, M = 10",
               drawn_lo.get(10, np.nan), ">= 0.8", drawn_lo.get(10, np.nan) >= 0.8, 0.2),
        _check("beta_mss_rank_m4", "rank correlation of mss with beta (M = 4)", rank_corr(mss.get(4, [])),
               ">= 0.5 (more entangled at higher beta)", rank_corr(mss.get(4, [])) >= 0.5, 0.4),
    ]
    sec.text = sec.text.replace("{verdict}", _verdict(sec.checks) + f"The posterior collapse from beta_norm 0.1657 up "
        f"is reproduced closely: KL {_fmt(kl_hi)} nats at beta_norm 5 and a background error of {_fmt(bg_hi)} "
        f"against the original's {SEED_REGION_MSE[5.0][2]} (the collapsed decoder draws the mean scene). "
        + ("Reconstruction error grows with beta for both M. " if sec.checks[0].holds and sec.checks[1].holds
           else "") +
        f"At the smallest beta the circle is "
        f"{drawn_lo.get(4, np.nan):.0%} drawn with 4 latents and {drawn_lo.get(10, np.nan):.0%} with 10 after "
        f"{pts[0].params['train']['steps']} steps (the original: 500K steps, inside error "
        f"{SEED_REGION_MSE[0.001][0]} with 4 latents); KL {_fmt(kl_lo)} nats at the smallest beta and "
        f"{_fmt(kl_hi)} at the largest (M = 4).")
    return sec


# ----------------------------------------------------------------------------- 3b. beta-VAE seeds
def section_beta_vae_seeds(runs: Path, out_root: Path) -> Section:
    sec, pts = _open_section(runs, "beta_vae_seeds", "3b. Static beta-VAE at the smallest beta: spread over seeds")
    if not pts:
        return sec
    beta = float(pts[0].params["objective"]["beta_norm"])
    base = no_circle_region_mse(factor_grid())
    by: dict[int, dict[int, xr.Dataset]] = {}
    for p in pts:
        by.setdefault(int(p.params["circuit"]["n_latents"]), {})[int(p.params["seed"])] = p.ds
    ms = sorted(by)
    rows, drawn, inside = [], {}, {}
    for m in ms:
        for seed, ds in sorted(by[m].items()):
            reg = [float(ds["region_mse"].sel(region=r)) for r in REGIONS3]
            d = drawn_fraction(reg[0], base["inside"])
            drawn.setdefault(m, {})[seed] = d
            inside.setdefault(m, []).append(reg[0])
            rows.append([str(m), str(seed), *reg, f"{d:.2f}", _kl_nats(ds, beta, m), float(ds["reconstruction_mse"])])
    summary = [[str(m), _spread(list(drawn[m].values())), f"{min(drawn[m].values()):.2f} to {max(drawn[m].values()):.2f}",
                _spread(inside[m])] for m in ms]
    # Same study, same seed: the sweep's point at this beta must be the same run, number for number.
    same = []
    for q in load_points(runs, "beta_vae_sweep"):
        if float(q.params["objective"]["beta_norm"]) != beta or int(q.params.get("seed", 0)) != 1:
            continue
        m = int(q.params["circuit"]["n_latents"])
        if 1 in by.get(m, {}):
            a, b = by[m][1]["region_mse"].values, q.ds["region_mse"].values
            same.append(float(np.max(np.abs(a - b))))
    same_text = (f"Seed 1 is the same run as the point beta_norm {beta:g} of `beta_vae_sweep` (seed 1): the region "
                 f"errors of the two differ by at most {_fmt(max(same))} ({len(same)} of {len(ms)} M compared)."
                 if same else "(`beta_vae_sweep` has not been run here, so seed 1 was not compared with its point.)")
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.subplots()
    for i, m in enumerate(ms):
        seeds = sorted(drawn[m])
        ax.scatter([i + 0.06 * (k - len(seeds) / 2) for k in range(len(seeds))], [drawn[m][s] for s in seeds],
                   color=f"C{i}", label=f"M = {m}")
    ax.axhline(0.8, color="grey", ls=":", lw=1)
    ax.set_xticks(range(len(ms)), [f"M = {m}" for m in ms])
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("fraction of the circle drawn")
    ax.set_title(f"beta_norm {beta:g}, one point per seed", fontsize=9)
    img = _savefig(fig, out_root, "beta_vae_seeds")
    paired = [s for s in drawn.get(4, {}) if s in drawn.get(10, {})]
    more = float(np.mean([drawn[10][s] > drawn[4][s] for s in paired])) if paired else np.nan
    mean4 = float(np.mean(list(drawn[4].values()))) if 4 in drawn else np.nan
    min10 = float(min(drawn[10].values())) if 10 in drawn else np.nan
    sec.checks = [
        _check("beta_seeds_drawn_m4_mean", f"mean fraction of the circle drawn at beta_norm {beta:g}, M = 4, over seeds",
               mean4, ">= 0.8 (the original: the smallest beta reconstructs the circle)", mean4 >= 0.8, 0.25),
        _check("beta_seeds_drawn_m10_min", f"smallest fraction drawn over seeds at beta_norm {beta:g}, M = 10",
               min10, ">= 0.8 (every seed draws it)", min10 >= 0.8, 0.25),
        _check("beta_seeds_m10_draws_more", "fraction of seeds in which M = 10 draws more of the circle than M = 4",
               more, ">= 0.8", more >= 0.8, 0.4),
    ]
    tr = pts[0].params["train"]
    sec.text = f"""
**Why:** in section 3 whether the circle is drawn at the smallest beta differs between M = 4 and M = 10 after
{tr['steps']} steps; one run per point cannot say whether that is the number of latents or the seed.

**Measured:** {_provenance(runs, sec.study, pts)} Each seed sets the initial weights, the training data and
the sampling; the evaluation set is the same for all.

{_table(["M", "seed", "inside", "edge", "background", "drawn", "KL", "reconstruction MSE"], rows)}

Spread over seeds (mean ± standard deviation):

{_table(["M", "drawn", "range", "inside error"], summary)}

{same_text}

{img}

**Verdict:** {{verdict}}
"""
    sec.text = sec.text.replace("{verdict}", _verdict(sec.checks) + f"At {tr['steps']} steps the circle is drawn "
        f"{mean4:.0%} on average with 4 latents (seeds from {min(drawn[4].values()):.0%} to "
        f"{max(drawn[4].values()):.0%}) and at least {min10:.0%} in every seed with 10; M = 10 draws more than "
        f"M = 4 in {more:.0%} of the seeds."
        + (" The ranges do not overlap: at this scale the number of latents, not the seed, decides whether "
           "the circle is drawn." if 4 in drawn and 10 in drawn and max(drawn[4].values()) < min(drawn[10].values())
           else ""))
    return sec


# ----------------------------------------------------------------------------- 4. dynamic prediction
def _relative_prediction_error(ds: xr.Dataset) -> float:
    """mean ||z_t - (2 z_(t-1) - z_(t-2))||^2 / mean ||z_t - z_(t-1)||^2 over t >= 2.

    The linear extrapolation's error relative to that of holding the last
    value: 0 for latents that move exactly linearly, 1 when extrapolating is
    no better than holding, about 3 for latents that jitter independently
    from step to step.
    """
    z = ds["z"].values.astype(np.float64)
    zhat = 2 * z[:, 1:-1] - z[:, :-2]
    err = ((z[:, 2:] - zhat) ** 2).sum(-1).mean()
    hold = ((z[:, 2:] - z[:, 1:-1]) ** 2).sum(-1).mean()
    return float(err / hold) if hold > 0 else float("nan")


def section_dynamic_prediction_sweep(runs: Path, out_root: Path) -> Section:
    sec, pts = _open_section(runs, "dynamic_prediction_sweep", "4. Dynamic beta-VAE with the correct temporal prediction loss")
    if not pts:
        return sec
    by = {(float(p.params["objective"]["beta_norm"]), float(p.params["objective"]["prediction"])): p.ds
          for p in pts}
    betas = sorted({b for b, _ in by})
    lams = sorted({l for _, l in by})
    rows = []
    for b in betas:
        for l in lams:
            ds = by.get((b, l))
            if ds is None:
                continue
            rows.append([f"{b:g}", f"{l:g}", float(ds["reconstruction_mse"]), _relative_prediction_error(ds),
                         float(ds["readout_rmse_px"]), float(ds["lag_steps"]), float(ds["mig"]),
                         float(ds["dci_disentanglement"])])
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    xs = [max(l, 1e-5) for l in lams]
    for b in betas:
        ls = [l for l in lams if (b, l) in by]
        axes[0].plot([max(l, 1e-5) for l in ls], [_relative_prediction_error(by[(b, l)]) for l in ls], marker="o",
                     label=f"beta_norm {b:g}")
        axes[1].plot([max(l, 1e-5) for l in ls], [float(by[(b, l)]["reconstruction_mse"]) for l in ls], marker="o",
                     label=f"beta_norm {b:g}")
    for ax, lab in ((axes[0], "relative prediction error of z"), (axes[1], "reconstruction MSE per pixel")):
        ax.set_xscale("log")
        ax.set_xlabel("lambda (0 drawn at 1e-5)")
        ax.set_ylabel(lab)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    img = _savefig(fig, out_root, "dynamic_prediction")
    del xs
    b0 = min(betas)
    pe0 = _relative_prediction_error(by[(b0, 0.0)]) if (b0, 0.0) in by else np.nan
    pe_hi = _relative_prediction_error(by[(b0, max(lams))]) if (b0, max(lams)) in by else np.nan
    rec0 = float(by[(b0, 0.0)]["reconstruction_mse"]) if (b0, 0.0) in by else np.nan
    rec_hi = float(by[(b0, max(lams))]["reconstruction_mse"]) if (b0, max(lams)) in by else np.nan
    sec.text = f"""
**Original (docs/original-study.md §3, §4.2):** a per-frame beta-VAE on moving circles plus lambda ||z_t - zhat_t||^2 with
zhat_t = z_(t-1) + (z_(t-1) - z_(t-2)), 6 beta x 6 lambda. Its code sliced the batch instead of time, so the
prediction term never trained prediction; the original reports no outcome of the intended loss.

**Measured:** {_provenance(runs, sec.study, pts)} The loss is the intended one (sum over samples and over
t >= 2). "Relative prediction error" is mean ||z_t - zhat_t||^2 / mean ||z_t - z_(t-1)||^2 on the
evaluation set: 0 for latents that move exactly linearly, 1 when extrapolating is no better than holding
the last value, about 3 for latents that jitter independently from step to step. "Readout error" is the
error of a linear readout of the circle's position from z (px; the circle's radius is 3.2 px): above the
radius, z does not encode the circle and its lag is not meaningful.

{_table(["beta_norm", "lambda", "reconstruction MSE", "relative prediction error", "readout error (px)",
         "lag (steps)", "MIG", "DCI D"], rows)}

{img}

**Verdict:** {{verdict}}
"""
    sec.checks = [
        _check("dynamic_prediction_trains", f"relative prediction error, lambda {max(lams):g} / lambda 0 "
               f"(beta_norm {b0:g})", pe_hi / pe0 if pe0 > 0 else np.nan,
               "<= 0.5 (the intended loss trains prediction)", pe_hi / pe0 <= 0.5 if pe0 > 0 else False, 0.3),
    ]
    rmse0 = float(by[(b0, 0.0)]["readout_rmse_px"]) if (b0, 0.0) in by else np.nan
    sec.text = sec.text.replace("{verdict}", (
        ("**new result (the original could not measure it): the intended loss trains prediction.** "
         if sec.checks[0].holds else "**not shown at this scale.** ") +
        "With the loss applied over time, "
        f"the latents' relative prediction error goes from {_fmt(pe0)} at lambda 0 to {_fmt(pe_hi)} at "
        f"lambda {max(lams):g} (beta_norm {b0:g}), at {rec_hi / rec0:.2f}x the reconstruction error. "
        + (f"At this scale z does not encode the circle (readout error {_fmt(rmse0)} px at lambda 0), so what "
           f"moves in z is mostly not the circle; the effect of the loss on the circle's trajectory needs "
           f"longer training." if rmse0 > 3.2 else "")))
    return sec


# ----------------------------------------------------------------------------- 5. inertia gamma sweep
def _z_motion(ds: xr.Dataset, from_step: int = 2) -> float:
    """Mean over samples of the std over time of z, over the std of z across samples (0 = static z)."""
    z = ds["z"].values[:, from_step:].astype(np.float64)
    within = z.std(axis=1).mean()
    across = z[:, 0].std(axis=0).mean()
    return float(within / across) if across > 0 else float("nan")


def section_inertia_gamma_sweep(runs: Path, out_root: Path) -> Section:
    sec, pts = _open_section(runs, "inertia_gamma_sweep", "5. Representational inertia with gamma applied in training")
    if not pts:
        return sec
    by = {}
    for p in pts:
        variant = "beta-VAE" if p.params["circuit"].get("gaussian") else "AE"
        by[(variant, float(p.params["circuit"]["gamma"]))] = p.ds
    variants = [v for v in ("AE", "beta-VAE") if any(k[0] == v for k in by)]
    gammas = sorted({g for _, g in by})
    rows = []
    for v in variants:
        for g in gammas:
            ds = by.get((v, g))
            if ds is None:
                continue
            rows.append([v, f"{g:g}", float(ds["reconstruction_mse"]), float(ds["lag_steps"]),
                         float(ds["position_error_px"]), _z_motion(ds), float(ds["mig"]),
                         float(ds["dci_disentanglement"])])
    trows = []
    for v in variants:
        ds = by.get((v, 0.75))
        if ds is None or "transfer_reconstruction_mse" not in ds:
            continue
        for g in ds["eval_gamma"].values:
            trained = by.get((v, round(float(g), 6)))
            trows.append([v, f"{float(g):g}", float(ds["transfer_reconstruction_mse"].sel(eval_gamma=g)),
                          float(trained["reconstruction_mse"]) if trained is not None else float("nan"),
                          float(ds["transfer_lag_steps"].sel(eval_gamma=g)),
                          float(trained["lag_steps"]) if trained is not None else float("nan")])
    fig = Figure(figsize=(11, 3.2), layout="constrained")
    axes = fig.subplots(1, 3)
    for v in variants:
        gs = [g for g in gammas if (v, g) in by]
        axes[0].plot(gs, [float(by[(v, g)]["reconstruction_mse"]) for g in gs], marker="o", label=f"{v}, trained")
        axes[1].plot(gs, [float(by[(v, g)]["lag_steps"]) for g in gs], marker="o", label=f"{v}, trained")
        axes[2].plot(gs, [float(by[(v, g)]["mig"]) for g in gs], marker="o", label=f"{v}, trained")
        ds = by.get((v, 0.75))
        if ds is not None and "transfer_reconstruction_mse" in ds:
            eg = ds["eval_gamma"].values
            axes[0].plot(eg, ds["transfer_reconstruction_mse"].values, ls="--", marker="x",
                         label=f"{v}, trained 0.75, gamma at evaluation")
            axes[1].plot(eg, ds["transfer_lag_steps"].values, ls="--", marker="x",
                         label=f"{v}, trained 0.75, gamma at evaluation")
    axes[1].axhline(1.0, color="0.5", lw=0.8, ls=":", label="theory (d = 1, alpha = 1)")
    for ax, lab in zip(axes, ("reconstruction MSE per pixel", "lag of z (steps)", "MIG")):
        ax.set_xlabel("gamma")
        ax.set_ylabel(lab)
    axes[0].legend(fontsize=6)
    axes[1].legend(fontsize=6)
    img = _savefig(fig, out_root, "inertia_gamma")
    ae = {g: by[("AE", g)] for g in gammas if ("AE", g) in by}
    motion1 = _z_motion(ae[1.0]) if 1.0 in ae else np.nan
    motion0 = _z_motion(ae[0.0]) if 0.0 in ae else np.nan
    rec1 = float(ae[1.0]["reconstruction_mse"]) if 1.0 in ae else np.nan
    rec0 = float(ae[0.0]["reconstruction_mse"]) if 0.0 in ae else np.nan
    # A lag is only meaningful where z encodes the circle: a readout error below the circle's radius.
    radius_px = 0.1 * float(pts[0].ds.sizes.get("x", 32))
    encoded = {g: ds for g, ds in ae.items() if g < 1.0 and float(ds["readout_rmse_px"]) <= radius_px}
    lags = [float(ds["lag_steps"]) for ds in encoded.values()]
    rmse0 = float(ae[0.0]["readout_rmse_px"]) if 0.0 in ae else np.nan
    base = no_circle_region_mse(pts[0].ds["factors"].values.reshape(-1, pts[0].ds.sizes["factor"]))
    drawn0 = drawn_fraction(float(ae[0.0]["region_mse"].sel(region="inside")), base["inside"]) if 0.0 in ae \
        else np.nan
    sec.text = f"""
**Original (docs/original-study.md §3, §4.1):** z_t = (1 - gamma) enc(x_(t-1)) + gamma (z_(t-1) + (z_(t-1) - z_(t-2))), decoded
and scored against x_t; gamma in linspace(0, 1, 6); gamma = 1 makes z constant (the network "dreams" a static
scene), gamma = 0 is a per-frame autoencoder. Its sweep never applied gamma in training: every run trained at
0.75, so its "gamma sweep" is six replicates of one model evaluated with other gammas. Theory (docs/original-study.md §6):
with alpha = 1 the steady-state lag is the delay, 1 step, for every gamma < 1.

**Measured:** {_provenance(runs, sec.study, pts)}
Trained at each gamma (both variants). "z motion" is the mean over sequences of the standard deviation of z
over time divided by its standard deviation across sequences (0: z never moves). Lag in steps of the
world behind z (a linear readout of the circle position, docs/original-study.md §6); position error along the motion in px
(negative: behind).

{_table(["variant", "gamma", "reconstruction MSE", "lag (steps)", "position error (px)", "z motion", "MIG",
         "DCI D"], rows)}

The original's setting, a model trained at gamma 0.75 and evaluated with other gammas (`gamma_transfer`),
beside models trained at that gamma:

{_table(["variant", "gamma", "MSE, trained at 0.75", "MSE, trained at gamma", "lag, trained at 0.75",
         "lag, trained at gamma"], trows)}

{img}

**Verdict:** {{verdict}}
"""
    sec.checks = [
        _check("inertia_gamma1_static", "z motion at gamma = 1 (AE)", motion1, "<= 0.05 (z constant: a static "
               "dream)", motion1 <= 0.05, 0.05),
        _check("inertia_gamma1_worse", "reconstruction error, gamma 1 / gamma 0 (AE)", rec1 / rec0,
               ">= 1.2", rec1 / rec0 >= 1.2, 0.5),
        _check("inertia_circle_encoded", "circle-position readout error of z at gamma 0 (AE), px", rmse0,
               f"<= {radius_px:g} (the circle's radius: z encodes the circle)", rmse0 <= radius_px, 1.0),
    ]
    if lags:
        sec.checks.append(_check("inertia_lag_is_delay", "largest abs(lag - 1) over trained gammas < 1 where z "
                                 "encodes the circle (AE), steps", max(abs(x - 1.0) for x in lags),
                                 "<= 0.5 (inertia does not compensate)", max(abs(x - 1.0) for x in lags) <= 0.5, 0.3))
    held = sum(c.holds for c in sec.checks)
    steps = pts[0].params["train"]["steps"]
    if lags:
        lag_text = (f"Where z encodes the circle, its lag stays near the 1-step delay at every trained gamma below 1 "
                    f"(from {_fmt(min(lags))} to {_fmt(max(lags))} steps): recurrent extrapolation with alpha = 1 "
                    f"smooths but does not compensate, as the theory says.")
    else:
        lag_text = (f"After {steps} steps z does not yet encode the circle (readout error {_fmt(rmse0)} px at "
                    f"gamma 0, more than the circle's {radius_px:g} px radius; {drawn0:.0%} of the circle's inside "
                    f"is drawn), so the lag of the circle is **not measurable at this scale**; the lag figures in "
                    f"the tables describe a readout of noise. The delay-compensation study (section 6) measures the "
                    f"same question with a circuit that learns the position in minutes.")
    sec.text = sec.text.replace("{verdict}", (
        f"{held} of {len(sec.checks)} checks hold. gamma = 1 {'does' if sec.checks[0].holds else 'does not'} "
        f"freeze z (z motion {_fmt(motion1)} against {_fmt(motion0)} at gamma 0), at "
        f"{_fmt(rec1 / rec0)}x the reconstruction error of gamma 0"
        + (": the network dreams a static scene, as the original said. " if sec.checks[0].holds else ". ")
        + lag_text +
        " The original's published sweep (0.75 trained, gamma changed at evaluation) is set beside training at "
        "each gamma in the second table."))
    return sec


# ----------------------------------------------------------------------------- 5b. inertia lag, 10 latents
def section_inertia_lag(runs: Path, out_root: Path) -> Section:
    sec, pts = _open_section(runs, "inertia_lag", "5b. The lag of representational inertia, on a representation "
                                                  "that encodes the circle")
    if not pts:
        return sec
    radius_px = 0.1 * float(pts[0].ds.sizes.get("x", 32))
    base = no_circle_region_mse(pts[0].ds["factors"].values.reshape(-1, pts[0].ds.sizes["factor"]))
    d = float(pts[0].params["circuit"].get("input_delay_ms", 10)) / float(pts[0].params.get("dt_ms", 10) or 10)
    runs_by: dict[tuple[float, float], list[tuple[int, float, float]]] = {}
    rows = []
    for p in sorted(pts, key=lambda q: (q.params["circuit"]["gamma"], -q.params["circuit"]["alpha"],
                                        int(q.params.get("seed", 0)))):
        g, a, seed = float(p.params["circuit"]["gamma"]), float(p.params["circuit"]["alpha"]), int(p.params["seed"])
        ds = p.ds
        runs_by.setdefault((g, a), []).append((seed, float(ds["lag_steps"]), float(ds["readout_rmse_px"])))
        rows.append([f"{g:g}", f"{a:g}", str(seed), d + g * (1 - a) / (1 - g), float(ds["lag_steps"]),
                     float(ds["readout_rmse_px"]), float(ds["position_error_px"]), float(ds["reconstruction_mse"]),
                     f"{drawn_fraction(float(ds['region_mse'].sel(region='inside')), base['inside']):.2f}"])
    keys = sorted(runs_by)
    theory = {k: d + k[0] * (1 - k[1]) / (1 - k[0]) for k in keys}
    lag = {k: float(np.mean([r[1] for r in runs_by[k]])) for k in keys}
    rmse = {k: float(np.mean([r[2] for r in runs_by[k]])) for k in keys}
    summary = [[f"{k[0]:g}", f"{k[1]:g}", theory[k], _spread([r[1] for r in runs_by[k]]),
                _spread([r[2] for r in runs_by[k]])] for k in keys]
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.subplots()
    for i, k in enumerate(keys):
        ax.scatter([theory[k]] * len(runs_by[k]), [r[1] for r in runs_by[k]], color=f"C{i}", alpha=0.5, s=14)
        ax.scatter([theory[k]], [lag[k]], color=f"C{i}", marker="D", label=f"gamma {k[0]:g}, alpha {k[1]:g}")
    lim = [0, max(max(theory.values()), max(r[1] for v in runs_by.values() for r in v)) + 0.5]
    ax.plot(lim, lim, color="0.5", lw=0.8, ls=":", label="measured = theory")
    ax.set_xlabel("theory: d + gamma (1 - alpha) / (1 - gamma) (steps)")
    ax.set_ylabel("measured lag of z (steps)")
    ax.set_title("dots: seeds; diamonds: their mean", fontsize=8)
    ax.legend(fontsize=7)
    img = _savefig(fig, out_root, "inertia_lag")
    worst_rmse = max(rmse.values())
    errs = {k: lag[k] - theory[k] for k in keys}
    gap = lag[(0.5, 0.0)] - lag[(0.5, 1.0)] if (0.5, 0.0) in lag and (0.5, 1.0) in lag else np.nan
    worst = max(abs(e) for e in errs.values())
    seeds = sorted({r[0] for v in runs_by.values() for r in v})
    sec.checks = [
        _check("inertia_lag_encoded", "largest mean readout error of the circle's position from z, px", worst_rmse,
               f"<= {radius_px:g} px (the circle's radius: z encodes where the circle is)",
               worst_rmse <= radius_px, 1.0),
        _check("inertia_lag_theory", "largest absolute difference between the mean measured lag and theory, steps",
               worst, "<= 0.3 steps", worst <= 0.3, 0.25),
        _check("inertia_lag_extrapolation_compensates", "mean lag at gamma 0.5: alpha 0 minus alpha 1, steps", gap,
               ">= 0.5 (theory: 1 step; extrapolation removes the lag inertia adds)", gap >= 0.5, 0.4),
    ]
    tr = pts[0].params["train"]
    sec.text = f"""
**Why:** section 5's autoencoder (4 latents, 400 steps) does not encode the circle, so its lag cannot be read.
The same circuit with 10 latents and {tr['steps']} steps does. Theory (docs/original-study.md §6): with an input delay of
d = {d:g} step(s), z lags the world by d + gamma (1 - alpha) / (1 - gamma) steps in steady state: inertia
(gamma > 0) adds lag unless the prediction extrapolates (alpha = 1).

**Measured:** {_provenance(runs, sec.study, pts)} Each run trained at the gamma and alpha it is measured
at. Lag: a linear readout of the circle's position from z, then the delay that best aligns it with the
world; readout error in px (the circle's radius is {radius_px:g} px); "drawn" as in section 3.

{_table(["gamma", "alpha", "seed", "theory lag (steps)", "measured lag (steps)", "readout error (px)",
         "position error (px)", "reconstruction MSE", "drawn"], rows)}

Over seeds (mean ± standard deviation):

{_table(["gamma", "alpha", "theory lag (steps)", "measured lag (steps)", "readout error (px)"], summary)}

{img}

**Verdict:** {{verdict}}
"""
    below = (0.5, 0.0) in runs_by and all(r[1] < theory[(0.5, 0.0)] - 0.3 for r in runs_by[(0.5, 0.0)])
    sec.text = sec.text.replace("{verdict}", _verdict(sec.checks) + "Mean measured minus theory: "
        + ", ".join(f"{e:+.2f} steps at gamma {k[0]:g}, alpha {k[1]:g}" for k, e in sorted(errs.items()))
        + f". At gamma 0.5 dropping the extrapolation adds {gap:.2f} steps of lag on average (theory 1); "
        f"{len(seeds)} seed(s); the mean readout error is at most {worst_rmse:.2f} px."
        + (" Without extrapolation every seed lags less than the linear theory predicts. The theory takes the "
           "encoder as given; training may make up part of the lag (z need not code position linearly). "
           "That reading is a hypothesis: short training, and readout errors near the circle's radius."
           if below else ""))
    return sec


# ----------------------------------------------------------------------------- 6. delay compensation
def _condition(p: Point) -> str:
    nodes = p.params["circuit"]["nodes"]
    if float(nodes["z"]["gamma"]) > 0:
        return "inertia"
    if float(nodes["ff"]["alpha"]) > 0:
        return "feed-forward"
    return "none"


def section_delay_compensation(runs: Path, out_root: Path) -> Section:
    sec, pts = _open_section(runs, "delay_compensation", "6. Delay compensation: recurrent inertia against feed-forward "
                  "extrapolation")
    if not pts:
        return sec
    dt = float(pts[0].params.get("dt_ms", 10.0))
    table = {}
    for p in pts:
        d = float(p.params["circuit"]["edges"][0].get("delay_ms", 0.0)) / dt
        table[(_condition(p), d)] = p
        if _condition(p) == "none" and d == 0:
            table[("feed-forward", d)] = p  # the same circuit at d = 0
    conds = ["none", "inertia", "feed-forward"]
    delays = sorted({d for _, d in table})

    def theory(c, d):
        return 0.0 if c == "feed-forward" else d

    rows, errs = [], []
    for d in delays:
        for c in conds:
            p = table.get((c, d))
            if p is None:
                continue
            ds = p.ds
            lag = float(ds["lag_steps"])
            errs.append((c, d, lag - theory(c, d)))
            fl = ds["flash_lag_px"].sel(condition="standard").values if "flash_lag_px" in ds else [np.nan]
            rows.append([f"{d:g}", c, theory(c, d), lag, float(ds["position_error_px"]), float(ds["readout_rmse_px"]),
                         float(np.nanmean(fl))])
    fig = Figure(figsize=(9, 3.3), layout="constrained")
    axes = fig.subplots(1, 2)
    for i, c in enumerate(conds):
        ds_ = [d for d in delays if (c, d) in table]
        axes[0].plot(ds_, [float(table[(c, d)].ds["lag_steps"]) for d in ds_], marker="o", color=f"C{i}", label=c)
        axes[0].plot(ds_, [theory(c, d) for d in ds_], ls=":", color=f"C{i}")
        if all("flash_lag_px" in table[(c, d)].ds for d in ds_):
            axes[1].plot(ds_, [float(table[(c, d)].ds["flash_lag_px"].sel(condition="standard").mean())
                               for d in ds_], marker="o", color=f"C{i}", label=c)
    axes[0].set_xlabel("input delay d (steps)")
    axes[0].set_ylabel("measured lag of z (steps); dotted: theory")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("input delay d (steps)")
    axes[1].set_ylabel("flash-lag, standard (px, mean of speeds)")
    axes[1].axhline(0.0, color="0.5", lw=0.8)
    axes[1].legend(fontsize=8)
    img = _savefig(fig, out_root, "delay_compensation")
    # flash-lag against its linear theory (neurodelay/analysis/flash_lag.py): a delay alone and inertia with
    # alpha = 1 see the moving circle and the flash equally late (0); feed-forward extrapolation by d sees the
    # moving circle v d ahead in the standard and flash-terminated conditions, 0 in the flash-initiated one.
    p0 = next(iter(table.values()))
    speeds_px_s = p0.ds["flash_lag_px"]["speed"].values.astype(float)
    v_step = speeds_px_s * dt / 1000.0  # px per step

    def fl_theory(c, d, cond):
        if c != "feed-forward" or cond == "flash_initiated":
            return np.zeros_like(v_step)
        return v_step * d

    frows, ratios, zero_dev, cond_ratio = [], [], [], {"flash_initiated": [], "flash_terminated": []}
    for d in delays:
        for c in conds:
            p = table.get((c, d))
            if p is None or (c == "feed-forward" and d == 0):
                continue
            fl = p.ds["flash_lag_px"]
            for cond in [str(x) for x in fl["condition"].values]:
                meas = fl.sel(condition=cond).values.astype(float)
                th = fl_theory(c, d, cond)
                if d > 0 and (c == "feed-forward" or cond == "standard"):
                    frows.append([f"{d:g}", c, cond] + [f"{m:.2f} ({t:.2f})" for m, t in zip(meas, th)])
                if c == "feed-forward" and d > 0 and cond == "standard":
                    ratios.extend(meas / th)
                if c != "feed-forward":
                    zero_dev.extend(np.abs(meas))
                if c == "feed-forward" and d > 0 and cond in cond_ratio:
                    std = fl.sel(condition="standard").values.astype(float)
                    cond_ratio[cond].extend(meas / std)
    ratio = float(np.mean(ratios)) if ratios else float("nan")
    zdev = float(np.max(zero_dev)) if zero_dev else float("nan")
    init_r = float(np.mean(cond_ratio["flash_initiated"])) if cond_ratio["flash_initiated"] else float("nan")
    term_r = float(np.mean(cond_ratio["flash_terminated"])) if cond_ratio["flash_terminated"] else float("nan")
    speeds = [f"{x:g}" for x in speeds_px_s]
    worst = {c: max([abs(e) for cc, _, e in errs if cc == c] or [np.nan]) for c in conds}
    sec.text = f"""
**Theory (docs/original-study.md §6):** with the encoder signal d steps late, the recurrent inertia rule with alpha = 1 leaves
a lag of d steps for every gamma (it smooths but never compensates); feed-forward extrapolation of the
delayed signal by d steps, y_t = s_t + d (s_t - s_(t-1)), has zero lag for linear motion. The original
study had no delay other than its one frame and no such comparison.

**Measured:** {_provenance(runs, sec.study, pts)} The circuit is trained end to end to report the circle's
position now (see the study file); the lag is that of a linear readout of z, in steps. At d = 0 the
feed-forward circuit is the "none" circuit (one run).

{_table(["delay d", "circuit", "theory lag", "measured lag", "position error (px)", "readout RMSE (px)",
         "flash-lag, standard (px, mean over speeds)"], rows)}

{img}

**Flash-lag.** Decoded moving position minus decoded flash position along the motion, when the flash is
first represented (px; in brackets the linear theory: v d for feed-forward extrapolation in the standard and
flash-terminated conditions, 0 otherwise), per circle speed ({', '.join(speeds)} px/s). For the circuits without feed-forward extrapolation only the
standard condition is shown, and no d = 0 rows (every condition is in each run's `results.nc`):

{_table(["delay d", "circuit", "condition"] + [f"{x} px/s" for x in speeds], frows)}

Feed-forward extrapolation, standard condition: measured / theory = {_fmt(ratio)} on average. Its
flash-initiated / standard ratio is {_fmt(init_r)} and its flash-terminated / standard ratio {_fmt(term_r)};
in human observers (docs/original-study.md §6) the effect is present in the flash-initiated condition and absent in the
flash-terminated one.

**Verdict:** {{verdict}}
"""
    sec.checks = [
        _check("delay_none_lag", "largest abs(measured lag - d), no predictor (steps)", worst["none"], "<= 0.35",
               worst["none"] <= 0.35, 0.2),
        _check("delay_inertia_lag", "largest abs(measured lag - d), inertia alpha = 1 (steps)", worst["inertia"],
               "<= 0.35", worst["inertia"] <= 0.35, 0.2),
        _check("delay_ff_lag", "largest abs(measured lag), feed-forward extrapolation by d (steps)",
               worst["feed-forward"], "<= 0.35", worst["feed-forward"] <= 0.35, 0.2),
        _check("flash_ff_standard", "flash-lag of feed-forward extrapolation / v d (standard, mean)", ratio,
               "in [0.75, 1.25]", 0.75 <= ratio <= 1.25, 0.15),
        _check("flash_delay_only", "largest abs(flash-lag), no predictor and inertia (px)", zdev,
               "<= 0.2 (no flash-lag from delays alone)", zdev <= 0.2, 0.1),
        _check("flash_initiated_human", "feed-forward flash-initiated / standard flash-lag", init_r,
               ">= 0.75 (present, as in human observers)", init_r >= 0.75, 0.2),
        _check("flash_terminated_human", "feed-forward flash-terminated / standard flash-lag", term_r,
               "<= 0.25 (absent, as in human observers)", term_r <= 0.25, 0.2),
    ]
    lag_ok = all(c.holds for c in sec.checks[:3])
    sec.text = sec.text.replace("{verdict}", (
        ("**the theory holds.** " if lag_ok else "**the theory holds only in part.** ") +
        f"Measured lags are within {_fmt(worst['none'])} steps of d without a predictor, "
        f"{_fmt(worst['inertia'])} with the recurrent inertia predictor, and within {_fmt(worst['feed-forward'])} "
        f"of 0 with feed-forward extrapolation: recurrent extrapolation with alpha = 1 never compensates a "
        f"delay, feed-forward extrapolation by the delay removes it. Feed-forward extrapolation also produces "
        f"a flash-lag effect that grows with speed and delay ({_fmt(ratio)} of v d), and delays alone produce "
        f"none. It does **not** reproduce the human flash-initiated and flash-terminated results "
        f"(ratios {_fmt(init_r)} and {_fmt(term_r)}): extrapolation of the delayed signal predicts the "
        f"opposite pattern, the classic argument against extrapolation as the whole account."))
    return sec


# ----------------------------------------------------------------------------- 7. seed-compatible
def section_seed_compatible(runs: Path, out_root: Path) -> Section:
    sec, pts = _open_section(runs, "seed_compatible", "7. The original's run, one to one")
    if not pts:
        return sec
    ds = pts[0].ds
    loss = ds["loss_total"]
    first, last = float(loss.values[0]), float(np.nanmean(loss.values[-5:]))
    reg = [float(ds["region_mse"].sel(region=r)) for r in REGIONS3]
    sec.text = f"""
**Original (docs/original-study.md §1-§3):** the inertia autoencoder on its 200,000 fixed sequences (seed-compatible renderer),
RMSprop lr 1e-4, batch 64, seed 1, trained at gamma 0.75 for 50K iterations.

**Measured:** {_provenance(runs, sec.study, pts)}
Training loss (summed squared error per sequence over the 8 scored frames): {_fmt(first)} at the first step,
{_fmt(last)} at the end. Reconstruction MSE per pixel {_fmt(float(ds['reconstruction_mse']))}; by region:
inside {_fmt(reg[0])}, edge {_fmt(reg[1])}, background {_fmt(reg[2])}. Circle-position readout error of z
{_fmt(float(ds['readout_rmse_px']))} px (the circle's radius is 3.2 px: {'z encodes the circle' if
float(ds['readout_rmse_px']) <= 3.2 else 'z does not yet encode the circle, so its lag'} of
{_fmt(float(ds['lag_steps']))} steps {'is to be set beside the theory, 1 step' if float(ds['readout_rmse_px']) <= 3.2
else 'is not meaningful'}). MIG {_fmt(float(ds['mig']))}.

**Verdict:** {{verdict}}
"""
    sec.checks = [
        _check("seed_loss_falls", "final / first training loss", last / first, "<= 0.5", last / first <= 0.5, 0.1),
    ]
    sec.text = sec.text.replace("{verdict}", (
        f"runs the original's exact data and settings end to end; at {pts[0].params['train']['steps']} of its "
        f"50,000 steps the loss has fallen to {last / first:.2f} of its start, and the circle is "
        f"{'reconstructed' if reg[0] < 0.05 else 'not yet reconstructed'} (inside error {_fmt(reg[0])})."))
    return sec


# ----------------------------------------------------------------------------- 8. learned delays
def _delay_target_error_px(ds: xr.Dataset, offset: int, first: int) -> float:
    """RMSE in px of z (circle_x, circle_y) at steps t >= first against the circle at t + offset."""
    from neurodelay.analysis.lag import px_per_unit

    z = ds["z"].values.astype(np.float64)  # (sample, time, 2)
    f = ds["factors"].sel(factor=["circle_x", "circle_y"]).values.astype(np.float64)
    n_t = z.shape[1]
    t = np.arange(max(first, -offset), n_t)
    err = z[:, t] - f[:, t + offset]
    return float(np.sqrt(np.mean(err ** 2))) * px_per_unit(ds.sizes["x"])


def section_delay_learning(runs: Path, out_root: Path) -> Section:
    sec, pts = _open_section(runs, "delay_learning", "8. Learning delays: unequal conduction delays made equal "
                                                     "by training")
    if not pts:
        return sec
    p0 = pts[0].params
    dt = float(p0.get("dt_ms", 10) or 10)
    fixed = [float(v) for v in p0["circuit"]["edges"][1]["delay_ms"]]
    offset = int(p0["objective"]["supervise"][0]["offset_steps"])
    want = -offset * dt
    theory = [want - f for f in fixed]
    # The steps every condition scores: the learned edge's upper bound makes z valid from there.
    first = int(max(float(p.params["circuit"]["edges"][2].get("max_delay_ms") or 0) for p in pts) / dt
                + max(fixed) / dt)
    rows, learned, errors, fixed_err = [], {}, {}, float("nan")
    for p in pts:
        e = p.params["circuit"]["edges"][2]
        start = [float(v) for v in e["delay_ms"]]
        err = _delay_target_error_px(p.ds, offset, first)
        if not e.get("learn_delay"):
            fixed_err = err
            rows.append(["fixed (not learned)", f"{start[0]:g}, {start[1]:g}", "-", "-", err])
            continue
        name = "from below" if max(start) < min(theory) else "from above" if min(start) > max(theory) else "between"
        got = [float(v) for v in p.ds["delay_ms"].values]
        learned[name] = (start, got, p.ds)
        errors[name] = err
        rows.append([name, f"{start[0]:g}, {start[1]:g}", f"{got[0]:.2f}, {got[1]:.2f}",
                     max(abs(g - t) for g, t in zip(got, theory)), err])
    fig = Figure(figsize=(5.4, 3.2), layout="constrained")
    ax = fig.subplots()
    for i, (name, (start, got, ds)) in enumerate(sorted(learned.items())):
        steps = np.concatenate([[0], ds["step"].values])
        for c in range(len(got)):
            path = np.concatenate([[start[c]], ds["delay_ms_history"].values[:, c]])
            ax.plot(steps, path, color=f"C{c}", ls="-" if i == 0 else "--", lw=1.2,
                    label=f"channel {c} (after {fixed[c]:g} ms fixed), {name}")
    for c, t in enumerate(theory):
        ax.axhline(t, color=f"C{c}", lw=0.6, ls=":")
    ax.set_xlabel("training step")
    ax.set_ylabel("learned delay (ms)")
    ax.set_title(f"dotted: theory ({want:g} ms in all minus the fixed delay)", fontsize=8)
    ax.legend(fontsize=6)
    img = _savefig(fig, out_root, "delay_learning")
    worst = max((max(abs(g - t) for g, t in zip(got, theory)) for _, got, _ in learned.values()), default=np.nan)
    best_err = max(errors.values()) if errors else np.nan
    ratio = best_err / fixed_err if fixed_err > 0 else np.nan
    sec.checks = [
        _check("delay_learning_theory", "largest absolute difference between a learned delay and theory "
                                         "(both channels, both starts), ms", worst,
               f"<= {dt / 5:g} ms (a fifth of a step)", worst <= dt / 5, dt / 10),
        _check("delay_learning_helps", "readout error with learned delays / with fixed 0 ms delays (worse start)",
               ratio, "<= 0.5", ratio <= 0.5, 0.15),
    ]
    tr = p0["train"]
    sec.text = f"""
**Question (beyond the original study):** can a circuit learn its conduction delays end to end, with its weights,
and does it learn the delays the task implies? A conv encoder's two outputs reach `mid` through fixed unequal
delays ({fixed[0]:g} and {fixed[1]:g} ms), then `z` through one learned delay per channel (bounds 0-50 ms). The
circuit is trained so that z gives the circle's position {want:g} ms ago on both channels. One frame shows where
the circle is, not where it was, so only the delays can make up the difference. Theory: learned delays of
{theory[0]:g} and {theory[1]:g} ms, so that both channels arrive together.

**Measured:** {_provenance(runs, sec.study, pts)} Learned delays get their own learning rate
(`train.delay_lr` {tr.get('delay_lr')}; the weights' is {tr.get('lr')}). Readout error: root mean square
distance in px between z and the circle's position {want:g} ms earlier, over steps {first}-{pts[0].ds.sizes['time'] - 1}
of the {pts[0].ds.sizes['sample']} evaluation sequences (the circle's radius is {0.1 * pts[0].ds.sizes['x']:g} px).

{_table(["condition", "initial delays (ms)", "learned delays (ms)", "largest error against theory (ms)",
         "readout error (px)"], rows)}

{img}

**Verdict:** {{verdict}}
"""
    sec.text = sec.text.replace("{verdict}", _verdict(sec.checks) + (
        f"From below and from above, training took each delay to within {worst:.2f} ms of theory "
        f"(a step is {dt:g} ms). Learned delays bring the readout error down to {best_err:.2f} px, from "
        f"{fixed_err:.2f} px with the delays fixed at 0 ms. "
        + ("Both starts end near the same delays (" + "; ".join(
            f"channel {c}: " + ", ".join(f"{got[c]:.2f}" for _, got, _ in learned.values()) + f" ms, theory "
            f"{theory[c]:g}" for c in range(len(theory))) + "), so the remaining difference from theory is "
           "not a matter of where training started; this run does not say what it comes from."
           if len(learned) > 1 else "")))
    return sec


SECTIONS: dict[str, Callable[[Path, Path], Section]] = {
    "supervised_control": section_supervised_control,
    "supervised_decoder": section_supervised_decoder,
    "beta_vae_sweep": section_beta_vae_sweep,
    "beta_vae_seeds": section_beta_vae_seeds,
    "dynamic_prediction_sweep": section_dynamic_prediction_sweep,
    "inertia_gamma_sweep": section_inertia_gamma_sweep,
    "inertia_lag": section_inertia_lag,
    "delay_compensation": section_delay_compensation,
    "seed_compatible": section_seed_compatible,
    "delay_learning": section_delay_learning,
}

HEADER = """# Findings

What neurodelay measures when it reruns the experiments of the 2019 study it grows out of (docs/original-study.md), with
that study's mistakes fixed, and the questions the study could not answer. Every number below is computed
by `studies/findings.py` from the `results.nc` files of the studies in `studies/`; rerun everything with

    python studies/reproduce.py        # runs every study into runs/, then rewrites this file

and check that the findings still hold with `make check-findings` (reruns the studies and compares with
`docs/findings/findings.json`). The studies run at a scale that fits 2 CPU cores in minutes (each file's
header says how long and how to ask for the original's scale), so several results are those of short
training: the verdicts say so where it matters.
"""


def build_sections(runs: Path, out_root: Path, studies=None) -> list[Section]:
    return [SECTIONS[s](Path(runs), Path(out_root)) for s in (studies or SECTIONS)]


def write_findings(runs: Path, out: Path = ROOT / "FINDINGS.md") -> list[Section]:
    """Compute every section from ``runs`` and write ``out`` (and the check record next to it)."""
    out = Path(out)
    root = out.parent
    sections = build_sections(runs, root)
    summary = ["## Summary", "", "| experiment | checks that hold | study |", "|---|---|---|"]
    for sec in sections:
        held = "not run" if sec.missing else f"{sum(c.holds for c in sec.checks)} of {len(sec.checks)}"
        summary.append(f"| {sec.title.split('. ', 1)[-1]} | {held} | `studies/{sec.study}.yaml` |")
    summary += ["", "Each section below ends with its verdict and the checks behind it.", ""]
    text = HEADER + "\n" + "\n".join(summary) + "\n" + "\n".join(s.markdown() for s in sections)
    out.write_text(text)
    record = {s.study: {c.id: asdict(c) for c in s.checks} for s in sections if not s.missing}
    rec_path = root / RECORD
    rec_path.parent.mkdir(parents=True, exist_ok=True)
    rec_path.write_text(json.dumps(record, indent=2) + "\n")
    return sections


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, default=Path(os.environ.get("NEURODELAY_RUNS", ROOT / "runs")))
    p.add_argument("--out", type=Path, default=ROOT / "FINDINGS.md")
    args = p.parse_args(argv)
    write_findings(args.runs, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
