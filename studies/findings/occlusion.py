"""Section 10: the circuit of section 9 behind an occluder: what extrapolation costs when the input vanishes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import neurodelay as nd
from neurodelay.analysis.kalman import best_horizon

from .core import Measured, Section, by_seed, checks, fmt, open_section, provenance, savefig, seed_interval, spread, \
    table, verdict

CONDITIONS = ("learned", "alpha 0", "alpha 3")


def _condition(params: dict) -> str:
    z = params["circuit"]["nodes"]["z"]
    return "learned" if z.get("learn_alpha") else f"alpha {float(z.get('alpha', 0.0)):g}"


def _value(ds, name: str, **sel) -> float:
    if name not in ds:
        return float("nan")
    v = ds[name]
    for dim, idx in sel.items():
        if dim not in v.dims:
            return float("nan")
        v = v.where(v[dim].isin(np.atleast_1d(idx)), drop=True)
        if v.sizes[dim] == 0:
            return float("nan")
    with np.errstate(invalid="ignore"):
        return float(np.nanmean(v.values)) if np.isfinite(v.values).any() else float("nan")


def section_emergent_occlusion(runs: Path, out_root: Path) -> Section:
    sec, pts = open_section(runs, "emergent_occlusion", "10. Behind an occluder: what extrapolation costs when "
                                                         "the input vanishes")
    if not pts:
        return sec
    cell = by_seed(pts, _condition)
    params = pts[0].params
    w = params["world"]
    dt = float(pts[0].ds.attrs.get("dt_ms", 10.0))
    d = int(round(float(params["circuit"]["edges"][0].get("delay_ms", 0.0)) / dt))
    world = nd.MovingCircle(size=int(w["size"]), n_frames=int(w["n_frames"]), motion=w.get("motion", "linear"),
                            occlusion_frames=int(w["occlusion_frames"]), occlusion_start=w.get("occlusion_start"))
    best = best_horizon(world, d, n=2048, seed=0, from_step=int(params["objective"].get("score_from_step", 5)))
    k = int(w["occlusion_frames"])

    def per_seed(cond, fn):
        return {s: fn(ds) for s, ds in cell.get(cond, {}).items()}

    def paired(fn, a="alpha 3", b="alpha 0"):
        x, y = per_seed(a, fn), per_seed(b, fn)
        return [x[s] - y[s] for s in x if s in y and np.isfinite(x[s]) and np.isfinite(y[s])]

    def extreme(values, pick):
        return Measured(pick(values) if values else np.nan, None, f"n={len(values)} seeds",
                        "" if values else "no paired seeds with a readable report (analysis occlusion)")

    alphas = [float(ds["alpha_learned"].sel(learned_node="z")) for ds in cell.get("learned", {}).values()
              if "alpha_learned" in ds]
    am, aci, an = seed_interval([a - best["alpha"] for a in alphas])
    visible = lambda ds: _value(ds, "occlusion_visible_error_px")  # noqa: E731
    early = lambda ds: _value(ds, "occlusion_error_px", steps_since_vanish=range(min(d, k)))  # noqa: E731
    jump = lambda ds: _value(ds, "occlusion_error_px", steps_since_vanish=d) if d < k else np.nan  # noqa: E731
    hidden = lambda ds: _value(ds, "occlusion_mean_error_px")  # noqa: E731
    settled = lambda ds: _value(ds, "occlusion_reappear_error_px", steps_since_reappear=[d + 1, d + 2])  # noqa: E731
    sec.checks = checks(sec.study, {
        "occlusion_visible_alpha3_better": extreme(paired(visible), max),
        "occlusion_delay_hides_the_occluder": extreme(paired(early), max),
        "occlusion_jump_amplified": extreme(paired(jump), min),
        "occlusion_extrapolation_costs": extreme(paired(hidden), min),
        "occlusion_recovers": extreme(paired(settled), max),
        "occlusion_learned_best_horizon": Measured(am, aci, f"n={an} seeds", "" if an else "not run"),
        "occlusion_learned_below_delay": Measured(max(alphas) if alphas else np.nan, None, f"n={len(alphas)} seeds"),
    })
    rows = []
    for cond in [c for c in CONDITIONS if c in cell]:
        learned = [float(ds["alpha_learned"].sel(learned_node="z")) for ds in cell[cond].values()
                   if "alpha_learned" in ds]
        rows.append([cond, spread(learned) if learned else cond.split()[-1],
                     spread(per_seed(cond, visible).values()), spread(per_seed(cond, early).values()),
                     spread(per_seed(cond, jump).values()), spread(per_seed(cond, hidden).values()),
                     spread(per_seed(cond, settled).values())])
    fig = Figure(figsize=(5.6, 3.4), layout="constrained")
    ax = fig.subplots()
    for i, cond in enumerate([c for c in CONDITIONS if c in cell]):
        curves = [np.concatenate([ds["occlusion_error_px"].values, ds["occlusion_reappear_error_px"].values])
                  for ds in cell[cond].values() if "occlusion_error_px" in ds]
        if curves:
            with warnings.catch_warnings():  # a step no seed could read is NaN, not a warning
                warnings.simplefilter("ignore", RuntimeWarning)
                ax.plot(np.arange(len(curves[0])), np.nanmean(curves, axis=0), marker="o", color=f"C{i}", label=cond)
    ax.axvspan(-0.5, k - 0.5, color="0.85", zorder=0, label="hidden")
    ax.set_xlabel("steps since the circle vanished")
    ax.set_ylabel("distance of the report from the circle (px)")
    ax.legend(fontsize=7)
    img = savefig(fig, out_root, "emergent_occlusion")
    sec.text = f"""
**Why:** section 9's circuit learns to extrapolate by about its delay when the circle is always in view. Here it
vanishes behind an occluder for {k} of {w['n_frames']} frames (the same frames of every sequence) and reappears
further along its path; the circuit is still trained to report its present, true position. A report that holds
the last position seen falls behind by the circle's travel; extrapolation could carry it on, but the report reads
the empty frames {d} steps late and an extrapolator amplifies the jump to them and back. "Best horizon" is that of a
perfect encoder that reports the best constant on empty frames (`neurodelay.analysis.kalman.best_horizon`:
{fmt(best['alpha'])} here).

**Measured:** {provenance(runs, sec.study, pts)} Errors of the report (px, read through a readout calibrated on
straight, unoccluded paths: `neurodelay.analysis.occlusion`), means over seeds [95 % bootstrap interval]: before
the circle vanishes, over the first {d} hidden steps (the report still reads frames shown before the occluder), at
the step that first reads an empty frame, over all {k} hidden steps, and {d + 1}-{d + 2} steps after it reappears.

{table(["condition", "horizon", "visible", f"hidden, first {d} steps", f"hidden, step {d}", "hidden, mean",
        f"reappeared, steps {d + 1}-{d + 2}"], rows)}

{img}

**Verdict:** {verdict(sec.checks)}The learned horizon is {fmt(np.mean(alphas)) if alphas else 'nan'}
steps against the occluded world's best {fmt(best['alpha'])} and the delay {d}. Readout noise biases every
distance up by about 1.25 times its standard deviation (`neurodelay.analysis.occlusion`); the paired differences
between conditions carry that bias on both sides.
"""
    return sec
