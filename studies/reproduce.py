"""Run every reproduction study, then write FINDINGS.md from their results.

    python studies/reproduce.py                 # all studies into runs/, then FINDINGS.md
    python studies/reproduce.py --only delay_compensation supervised_control
    python studies/reproduce.py --findings-only # rewrite FINDINGS.md from existing runs

Each study runs with ``python -m neurodelay.run studies/<name>.yaml --out RUNS``
in its own process, with ``--resume``: sweep points whose ``results.nc``
exists are skipped and an interrupted run continues from its checkpoint, so
an interrupted reproduction resumes where it stopped. The wall time of each
study is recorded in ``RUNS/reproduce_times.json`` (FINDINGS.md quotes it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: The studies of the reproduction, in the order they run.
STUDIES = (
    "delay_compensation",
    "supervised_control",
    "supervised_decoder",
    "inertia_gamma_sweep",
    "inertia_lag",
    "beta_vae_sweep",
    "beta_vae_seeds",
    "dynamic_prediction_sweep",
    "seed_compatible",
    "delay_learning",
    "pretrain_ae",
    "inertia_warm",
    "pretrain_vae",
    "prediction_warm",
    "beta_vae_criterion",
    "emergent_compensation",
    "emergent_handset",
    "emergent_occlusion",
    "emergent_chain",
    "emergent_graded",
    "emergent_memory",
)
#: Studies that start from another study's checkpoints (train.init_from), which must run first.
NEEDS = {"inertia_warm": ("pretrain_ae",), "prediction_warm": ("pretrain_vae",)}
#: Studies trained in milestones (``studies/milestones.py``), with their arguments.
MILESTONES = {"beta_vae_criterion": ("--every", "500", "--until", "20000")}


def run_study(name: str, runs: Path, extra=()) -> float:
    """Run one study into ``runs``; return its wall time in seconds (raises on failure).

    With ``--resume``: a run whose checkpoint exists continues from it (a
    finished one is only evaluated and analysed again), and sweep points
    whose results exist are skipped.
    """
    if name in MILESTONES:
        cmd = [sys.executable, str(HERE / "milestones.py"), str(HERE / f"{name}.yaml"), *MILESTONES[name], "--out",
               str(runs), *extra]
    else:
        cmd = [sys.executable, "-m", "neurodelay.run", str(HERE / f"{name}.yaml"), "--out", str(runs), "--resume",
               *extra]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, default=ROOT / "runs", help="output folder of the studies (default runs/)")
    p.add_argument("--only", nargs="+", choices=STUDIES, help="run only these studies")
    p.add_argument("--findings-only", action="store_true", help="only rewrite FINDINGS.md from existing runs")
    p.add_argument("--out", type=Path, default=ROOT / "FINDINGS.md", help="where to write the findings")
    args = p.parse_args(argv)
    args.runs.mkdir(parents=True, exist_ok=True)
    times_path = args.runs / "reproduce_times.json"
    times = json.loads(times_path.read_text()) if times_path.exists() else {}
    failed = []
    if not args.findings_only:
        for name in args.only or STUDIES:
            done = any((args.runs / name / f).exists() for f in ("results.nc", "sweep.nc", "milestones"))
            try:
                seconds = run_study(name, args.runs)
            except subprocess.CalledProcessError as err:  # go on with the others; say so at the end
                print(f"{name} failed (exit {err.returncode}); going on with the other studies", flush=True)
                failed.append(name)
                continue
            if not done:  # a rerun that skipped finished points says nothing about the study's time
                times[name] = round(seconds, 1)
                times_path.write_text(json.dumps(times, indent=2) + "\n")
    sys.path.insert(0, str(HERE))
    from findings import write_findings

    write_findings(args.runs, args.out)
    print(f"wrote {args.out}")
    if failed:
        print(f"these studies failed: {', '.join(failed)}; rerun them with --only (they resume)", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
