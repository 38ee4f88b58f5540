"""Train a study in milestones, keeping every point's summary results at each one.

    python studies/milestones.py studies/beta_vae_criterion.yaml --every 500 --until 20000
    python studies/milestones.py STUDY --every 500 --until 20000 --out runs --set evaluate.n_sequences=128

At milestone ``N`` (``every, 2 every, ... until``) the study runs with
``python -m neurodelay.run STUDY --out OUT --resume --set train.steps=N``:
every point trains on from its checkpoint (bit for bit the parameters of an
uninterrupted run that long) and is evaluated and analysed at ``N`` steps.
Then each point's variables that have no ``sample`` dimension (scalar
metrics, region errors, losses) are copied to
``OUT/<name>/milestones/<point>/step_<N>.nc``. A milestone whose files exist
for every point is skipped, so an interrupted build of the curve resumes
where it stopped. At the end (and with ``--combine-only``) the milestones
are combined into ``OUT/<name>/milestones.nc`` with dimensions
``(point, milestone)``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import xarray as xr

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _points(sweep_dir: Path) -> list[Path]:
    """The point folders of a sweep (or the run folder itself for a study without a sweep)."""
    if (sweep_dir / "results.nc").exists() and not (sweep_dir / "sweep.nc").exists():
        return [sweep_dir]
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir() and (p / "results.nc").exists()
                  and p.name != "milestones")


def _summary(results: Path) -> xr.Dataset:
    with xr.open_dataset(results) as ds:
        keep = [name for name, v in ds.data_vars.items() if "sample" not in v.dims]
        out = ds[keep].load()
        out.attrs = dict(ds.attrs)
    return out


def _milestone_file(root: Path, point: Path, step: int) -> Path:
    name = "." if point == root else point.name
    return root / "milestones" / name / f"step_{step:07d}.nc"


def combine(root: Path) -> Path:
    """Combine ``root/milestones/*/step_*.nc`` into ``root/milestones.nc`` (dims point, milestone)."""
    parts = []
    for folder in sorted(p for p in (root / "milestones").iterdir() if p.is_dir()):
        steps = sorted(folder.glob("step_*.nc"))
        if not steps:
            continue
        per = [xr.open_dataset(f).load().expand_dims(milestone=[int(f.stem.split("_")[1])]) for f in steps]
        joined = xr.concat(per, dim="milestone", data_vars="all", coords="minimal", compat="override",
                           join="outer", combine_attrs="drop")
        parts.append(joined.expand_dims(point=[folder.name if folder.name != "." else root.name]))
    combined = xr.concat(parts, dim="point", data_vars="all", coords="minimal", compat="override",
                         join="outer", combine_attrs="drop")
    combined["milestone"].attrs.update(units="1", long_name="training steps at the milestone")
    out = root / "milestones.nc"
    tmp = out.with_suffix(".nc.tmp")
    combined.to_netcdf(tmp)
    tmp.replace(out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", type=Path)
    p.add_argument("--every", type=int, required=True, help="steps between milestones")
    p.add_argument("--until", type=int, required=True, help="last milestone (steps)")
    p.add_argument("--out", type=Path, default=ROOT / "runs", help="output folder (default runs/)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="passed on to neurodelay.run")
    p.add_argument("--combine-only", action="store_true", help="only combine the milestones already run")
    args = p.parse_args(argv)
    if args.every < 1 or args.until < args.every:
        p.error(f"--every must be >= 1 and --until >= --every, got --every {args.every} --until {args.until}")

    import yaml

    name = yaml.safe_load(args.study.read_text(encoding="utf-8"))["name"]
    for text in args.set:
        if text.startswith("name="):
            name = yaml.safe_load(text.split("=", 1)[1])
    root = args.out / name
    if not args.combine_only:
        for step in range(args.every, args.until + 1, args.every):
            points = _points(root) if root.exists() else []
            if points and all(_milestone_file(root, pt, step).exists() for pt in points):
                continue
            cmd = [sys.executable, "-m", "neurodelay.run", str(args.study), "--out", str(args.out), "--resume",
                   "--set", f"train.steps={step}", *[a for s in args.set for a in ("--set", s)]]
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT)
            for pt in _points(root):
                summary = _summary(pt / "results.nc")
                if int(summary.attrs.get("trained_steps", -1)) != step:
                    raise RuntimeError(f"{pt}/results.nc holds {summary.attrs.get('trained_steps')} trained steps, "
                                       f"not the milestone's {step}")
                dest = _milestone_file(root, pt, step)
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_suffix(".nc.tmp")
                summary.to_netcdf(tmp)
                tmp.replace(dest)
    print("wrote", combine(root), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
