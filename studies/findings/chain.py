"""Section 11: in a chain of areas, where is the delay compensated, and what would time-resolved decoding see?"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .core import Measured, Section, checks, fmt, open_section, provenance, savefig, seed_interval, spread, table, \
    verdict, with_ci

CONDITIONS = ("report only", "every area", "learned delays")
AREAS = ("enc", "v1", "z")


def _condition(params: dict) -> str:
    if any(bool(e.get("learn_delay")) for e in params["circuit"]["edges"]):
        return "learned delays"
    nodes = {s["node"] for s in params["objective"]["supervise"]}
    return "every area" if "v1" in nodes else "report only"


def _arrival_steps(params: dict, dt: float) -> dict:
    """Conduction delay from the world to each area (steps), as set (the start of a learned delay)."""
    out, total = {}, 0.0
    for e in params["circuit"]["edges"]:
        d = e.get("delay_ms", 0.0)
        total += float(d[0] if isinstance(d, (list, tuple)) else d) / dt
        out[e["target"]] = total
    return out


def _by_area(ds, var: str) -> dict:
    if var not in ds or "area" not in ds[var].dims:
        return {}
    return {str(a): float(ds[var].sel(area=a)) for a in ds["area"].values}


def _alpha(ds, node: str) -> float:
    if "alpha_learned" not in ds or node not in ds["learned_node"].values:
        return float("nan")
    return float(ds["alpha_learned"].sel(learned_node=node))


def section_emergent_chain(runs: Path, out_root: Path) -> Section:
    sec, pts = open_section(runs, "emergent_chain", "11. A chain of areas: where is the delay compensated, and what "
                                                    "would time-resolved decoding see?")
    if not pts:
        return sec
    dt = float(pts[0].ds.attrs.get("dt_ms", 10.0))
    cell: dict[str, dict[int, object]] = {}
    arrival = {}
    for p in pts:
        cond = _condition(p.params)
        cell.setdefault(cond, {})[int(p.params["seed"])] = p.ds
        arrival[cond] = _arrival_steps(p.params, dt)
    conds = [c for c in CONDITIONS if c in cell]

    def per_seed(cond, fn):
        return {s: fn(ds) for s, ds in cell.get(cond, {}).items()}

    def finite(d):
        return [v for v in d.values() if np.isfinite(v)]

    rows = []
    for cond in conds:
        a1, az = per_seed(cond, lambda ds: _alpha(ds, "v1")), per_seed(cond, lambda ds: _alpha(ds, "z"))
        row = [cond, spread(finite(a1)), spread(finite(az))]
        for area in AREAS:
            onset = finite(per_seed(cond, lambda ds, a=area: _by_area(ds, "flash_onset_ms").get(a, np.nan)))
            motion = finite(per_seed(cond, lambda ds, a=area: _by_area(ds, "motion_latency_ms").get(a, np.nan)))
            adv = finite(per_seed(cond, lambda ds, a=area: _by_area(ds, "latency_advantage_ms").get(a, np.nan)))
            row.append(f"{spread(onset)} / {spread(motion)} / {spread(adv)}")
        if cond == "learned delays":
            d = [ds["delay_ms"].values for ds in cell[cond].values() if "delay_ms" in ds]
            row.append(", ".join(f"{fmt(float(np.mean([x[i] for x in d])))}" for i in range(len(d[0]))) if d else "-")
        else:
            row.append("fixed 20, 20")
        rows.append(row)

    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.subplots()
    for i, cond in enumerate(conds):
        adv = [[_by_area(ds, "latency_advantage_ms").get(a, np.nan) for a in AREAS] for ds in cell[cond].values()]
        adv = np.asarray(adv, dtype=float)
        x = np.arange(len(AREAS)) + (i - 1) * 0.22
        ax.scatter(np.repeat(x[None], len(adv), 0).ravel(), adv.ravel(), color=f"C{i}", s=14, zorder=3)
        ax.plot(x, np.nanmean(adv, axis=0), color=f"C{i}", marker="_", ms=14, ls="none", label=cond)
    ax.axhline(16.0, color="0.4", ls="--", lw=1, label="16 ms (Hogendoorn & Burkitt 2018)")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xticks(range(len(AREAS)), AREAS)
    ax.set_ylabel("latency advantage for motion (ms)")
    ax.set_xlabel("area (in order along the chain)")
    ax.legend(fontsize=7)
    img = savefig(fig, out_root, "emergent_chain")

    # Checks, as declared in studies/checks.yaml.
    dev = []
    for cond in ("report only", "every area"):
        for ds in cell.get(cond, {}).values():
            onset = _by_area(ds, "flash_onset_ms")
            dev += [abs(onset[a] / dt - arrival[cond][a]) for a in AREAS if a in onset and np.isfinite(onset[a])]
    n_dev = len(dev)
    report = cell.get("report only", {})
    sums = [_alpha(ds, "v1") + _alpha(ds, "z") - arrival["report only"]["z"] for ds in report.values()]
    m_sum, ci_sum, n_sum = seed_interval(sums)
    z_lat = seed_interval([_by_area(ds, "motion_latency_ms").get("z", np.nan) for ds in report.values()])
    v1_every = seed_interval([_by_area(ds, "motion_latency_ms").get("v1", np.nan)
                              for ds in cell.get("every area", {}).values()])
    a1 = [v for v in (_alpha(ds, "v1") for ds in report.values()) if np.isfinite(v)]
    shorten = []
    for ds in cell.get("learned delays", {}).values():
        if "delay_ms" in ds:
            shorten += list(ds["delay_ms"].values - ds["delay_initial_ms"].values)
    sec.checks = checks(sec.study, {
        "chain_flash_onsets": Measured(max(dev) if dev else np.nan, None, f"n={n_dev} areas x seeds"),
        "chain_report_compensates": Measured(m_sum, ci_sum, f"n={n_sum} seeds"),
        "chain_report_no_lag": Measured(z_lat[0], z_lat[1], f"n={z_lat[2]} seeds"),
        "chain_every_area_v1_keeps_up": Measured(v1_every[0], v1_every[1], f"n={v1_every[2]} seeds"),
        "chain_report_only_shared": Measured(min(a1) if a1 else np.nan, None, f"n={len(a1)} seeds"),
        "chain_learned_delays_shorten": Measured(max(shorten) if shorten else np.nan, None,
                                                 f"n={len(shorten)} edges x seeds"),
    })
    adv_v1 = seed_interval([_by_area(ds, "latency_advantage_ms").get("v1", np.nan) for ds in report.values()])

    def adv_z(cond):
        return seed_interval([_by_area(ds, "latency_advantage_ms").get("z", np.nan) for ds in cell.get(cond, {}).values()])

    adv_report, adv_every, adv_learned = adv_z("report only"), adv_z("every area"), adv_z("learned delays")
    share = seed_interval([_alpha(ds, "v1") / (_alpha(ds, "v1") + _alpha(ds, "z")) for ds in report.values()])
    every = cell.get("every area", {})
    every_sum = seed_interval([_alpha(ds, "v1") + _alpha(ds, "z") for ds in every.values()])
    z_every = seed_interval([_by_area(ds, "motion_latency_ms").get("z", np.nan) for ds in every.values()])
    learned = cell.get("learned delays", {})
    delays = seed_interval([float(np.mean(ds["delay_ms"].values)) for ds in learned.values() if "delay_ms" in ds])
    arrive = seed_interval([10.0 + float(np.sum(ds["delay_ms"].values)) for ds in learned.values()
                            if "delay_ms" in ds])
    learned_sum = seed_interval([_alpha(ds, "v1") + _alpha(ds, "z") for ds in learned.values()])
    lag_z = seed_interval([float(ds["lag_ms"]) for ds in report.values() if "lag_ms" in ds])
    learned_share = seed_interval([_alpha(ds, "v1") / (_alpha(ds, "v1") + _alpha(ds, "z")) for ds in learned.values()])
    sec.text = f"""
**Why:** section 9 showed one area learning to make up its own delay. Brains have chains of areas, each with its
own conduction delay, and time-resolved EEG/MEG decoding asks at what latency each stage represents a moving
object. Here a conv encoder reads each frame 10 ms late; area `v1` receives it 20 ms later and `z` 20 ms after
that (50 ms, 5 steps, from the world to `z`). `v1` and `z` are extrapolators with learned horizons (from 0), and
`z` is trained to report the circle's present position. For linear motion two extrapolations add, so the task
fixes only the sum of the horizons; their split decides which areas a decoder finds ahead of their input.
"Every area" supervises `v1` to report the present too; "learned delays" learns the two 20 ms delays as well
(within [10, 40] ms). Per area, the `decoding_latency` analysis reads when a one-frame flash becomes decodable
(held-out R^2 >= 0.5: its arrival), how far the area lags a circle on straight paths (the calibrated encoding-model
lag), and their difference, the area's latency advantage for motion (`neurodelay.analysis.decoding_latency`,
calibrated on theory chains: onsets equal the path delay, motion latencies delay minus horizon within 0.05 steps).

**Measured:** {provenance(runs, sec.study, pts)} Per condition, means over seeds [95 % bootstrap interval] (n
seeds); per area: flash onset / motion latency / advantage, all in ms.

{table(["condition", "horizon v1", "horizon z", "enc (ms)", "v1 (ms)", "z (ms)", "delays (ms)"], rows)}

{img}

The motion latencies are scored from 3 steps after each area's first valid step: a chain of extrapolators starts up
from its own start-up values (the study's `lag` analysis, scored from the first valid step + 1, reads `z` of "report
only" {with_ci(*lag_z[:2])} ms late, its start-up included; the sweep figure shows that one).

**Verdict:** {verdict(sec.checks)}With only the report supervised, the horizons sum to
{fmt(m_sum + arrival.get('report only', {}).get('z', np.nan))} steps for a 5-step delay, and the first area carries
{with_ci(*share[:2])} of the sum: `v1`, which nothing asks to extrapolate, extrapolates past the present and runs
ahead of the circle (its advantage {with_ci(*adv_v1[:2])} ms for a 30 ms arrival), and `z` undoes a little of it
(the check `chain_report_only_shared` holds, but not for the reason it gave: the compensation is not shared, it is
done as early as it can be). Supervising `v1` too puts its own 3 steps there and leaves `z` short: horizons sum to
{with_ci(*every_sum[:2])} steps and `z` lags by {with_ci(*z_every[:2])} ms. With the delays learned too, both
shorten, to {with_ci(*delays[:2])} ms each (not to their 10 ms bound; arrival at `z` {with_ci(*arrive[:2])} ms), and
the horizons, summing to {with_ci(*learned_sum[:2])} steps, are split evenly ({with_ci(*learned_share[:2])} in `v1`).

The prediction in ms, at a {fmt(dt)} ms step: trained end to end on the report alone ("report only"), the reporting
stage `z` is advanced by {with_ci(*adv_report[:2])} ms (n={adv_report[2]} seeds) for a moving circle against a
flash, and `v1` by {with_ci(*adv_v1[:2])} ms, beside the roughly 16 ms (16 +- 2) that Hogendoorn & Burkitt (2018,
NeuroImage 171:55-61) report for predictable against unpredictable apparent motion at the later of two decodable
stages (140-150 ms), and none at the earlier (80-90 ms); supervising `v1` too gives {with_ci(*adv_every[:2])} ms at
`z`, learning the delays {with_ci(*adv_learned[:2])} ms (n={adv_learned[2]} each). What in the model makes it: an
area's advantage is the horizon carried at that stage, the extrapolation done at or before it
({fmt(m_sum + arrival.get('report only', {}).get('z', np.nan))} steps of {fmt(dt)} ms at `z`), which the loss on the
report sets to the conduction delay from the world to the report
({fmt(arrival.get('report only', {}).get('z', np.nan) * dt)} ms), and nothing confines it to late areas. What would
falsify it: a stage before the report that is decodable but not advanced while a later one is (Hogendoorn &
Burkitt's earlier stage), or a reporting stage whose advantage falls short of its own flash latency (the model's
report keeps up with the circle: motion latency {with_ci(*z_lat[:2])} ms). Their comparison differs from this one
(they compare two kinds of motion decoded with flash-trained classifiers; here a flash's arrival is compared with a
moving circle's lag, so the advantage is the whole horizon), but the pattern is the test, and their earlier stage
already contradicts this circuit. What would save it as a model of cortex: a cost on early extrapolation (noise, section 9; or supervision of early
areas to report their input), which this study does not have.
"""
    return sec
