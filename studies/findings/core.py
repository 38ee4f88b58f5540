"""The machinery of FINDINGS.md: checks from the registry, sections, loading, tables, intervals.

A section is computed from the ``results.nc`` files of one study: its text,
its figures and the *values* of its checks. What a check claims, its tag,
the rule that decides whether it holds and its tolerance are not written
here but declared, before the runs, in ``studies/checks.yaml``
(:data:`REGISTRY`); :func:`checks` joins the two and refuses a value that
was not declared or a declared check without a value.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import xarray as xr
import yaml
from matplotlib.figure import Figure
from scipy import stats

STUDIES_DIR = Path(__file__).resolve().parent.parent
ROOT = STUDIES_DIR.parent
FIG_DIR = Path("docs") / "findings"
RECORD = FIG_DIR / "findings.json"
REGISTRY_FILE = STUDIES_DIR / "checks.yaml"
TAGS = ("sanity", "replication", "new")


def load_registry(path: Path = REGISTRY_FILE) -> dict:
    """The declared checks: {study: {check id: {tag, claim, holds_if, tolerance, why?}}}, validated."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    for study, entries in raw.items():
        for cid, spec in entries.items():
            missing = [k for k in ("tag", "claim", "holds_if", "tolerance") if k not in spec]
            if missing:
                raise ValueError(f"{path}: check {study}.{cid} lacks {missing}.")
            if spec["tag"] not in TAGS:
                raise ValueError(f"{path}: check {study}.{cid} has tag {spec['tag']!r}; use one of {TAGS}.")
            parse_rule(spec["holds_if"])  # fails loudly on a rule it cannot read
    return raw


_RULE = re.compile(r"^\s*(?:(>=|<=|>|<)\s*(\S+)|abs\s*<=\s*(\S+)|in\s*\[\s*([^,\]]+)\s*,\s*([^\]]+)\])\s*$")


def parse_rule(rule: str):
    """A predicate for one rule of the registry: ">= x", "> x", "<= x", "< x", "abs <= x", "in [a, b]"."""
    m = _RULE.match(str(rule))
    if not m:
        raise ValueError(f"cannot read the rule {rule!r}; write '>= x', '> x', '<= x', '< x', 'abs <= x' or "
                         f"'in [a, b]'.")
    op, x, ab, lo, hi = m.groups()
    if op:
        x = float(x)
        return {">=": lambda v: v >= x, ">": lambda v: v > x, "<=": lambda v: v <= x, "<": lambda v: v < x}[op]
    if ab:
        return lambda v: abs(v) <= float(ab)
    return lambda v: float(lo) <= v <= float(hi)


REGISTRY = load_registry()


@dataclass
class Check:
    """One declared claim with its measured value.

    ``holds`` is True or False, or None when the value is NaN (not
    measurable: ``note`` says why). ``ci`` is the interval of the value
    where one was computed, ``n`` what it rests on.
    """

    id: str
    tag: str
    claim: str
    value: float
    rule: str
    holds: bool | None
    tolerance: float
    why: str = ""
    note: str = ""
    ci: tuple | None = None
    n: str = ""

    def row(self) -> str:
        ci = f" [{fmt(self.ci[0])}, {fmt(self.ci[1])}]" if self.ci is not None and np.all(np.isfinite(self.ci)) else ""
        n = f" ({self.n})" if self.n else ""
        rule = self.rule + (f" ({self.why})" if self.why else "")
        verdict = "yes" if self.holds else ("no" if self.holds is False else f"not measurable: {self.note}")
        return f"| {self.tag} | {self.claim} | {fmt(self.value)}{ci}{n} | {rule} | {verdict} |"


@dataclass
class Measured:
    """A check's value, with its interval, what it rests on, and why it is NaN where it is."""

    value: float
    ci: tuple | None = None
    n: str = ""
    note: str = ""


def checks(study: str, measured: dict) -> list[Check]:
    """Join the measured values of ``study`` with its declared checks (in the registry's order)."""
    declared = REGISTRY.get(study, {})
    extra, missing = sorted(set(measured) - set(declared)), sorted(set(declared) - set(measured))
    if extra or missing:
        raise ValueError(f"{study}: checks computed but not declared in {REGISTRY_FILE.name}: {extra}; declared but "
                         f"not computed: {missing}.")
    out = []
    for cid, spec in declared.items():
        m = measured[cid]
        m = m if isinstance(m, Measured) else Measured(float(m))
        value = float(m.value)
        holds = None if not math.isfinite(value) else bool(parse_rule(spec["holds_if"])(value))
        out.append(Check(id=cid, tag=spec["tag"], claim=spec["claim"], value=value, rule=spec["holds_if"],
                         holds=holds, tolerance=float(spec["tolerance"]), why=spec.get("why", ""),
                         note=m.note or ("" if holds is not None else "no value"),
                         ci=tuple(float(c) for c in m.ci) if m.ci is not None else None, n=m.n))
    return out


def tally(checks_: list[Check]) -> dict:
    """Per tag: (held, judged, not measurable)."""
    out = {}
    for tag in TAGS:
        cs = [c for c in checks_ if c.tag == tag]
        out[tag] = (sum(c.holds is True for c in cs), sum(c.holds is not None for c in cs),
                    sum(c.holds is None for c in cs))
    return out


def tally_text(checks_: list[Check]) -> str:
    parts = []
    for tag, (held, judged, unmeasured) in tally(checks_).items():
        if judged or unmeasured:
            parts.append(f"{tag} {held} of {judged}" + (f" ({unmeasured} not measurable)" if unmeasured else ""))
    return "; ".join(parts) or "no checks"


def verdict(checks_: list[Check]) -> str:
    """The verdict word from the replication and new checks (sanity checks say nothing about the claim)."""
    claims = [c for c in checks_ if c.tag != "sanity" and c.holds is not None]
    held = sum(c.holds for c in claims)
    broken = [c for c in checks_ if c.tag == "sanity" and c.holds is False]
    word = ("**not measurable** at this scale" if not claims else "**holds**" if held == len(claims) else
            "**holds in part**" if held else "**does not hold**")
    warn = (f" A sanity check failed ({', '.join(c.id for c in broken)}): a defect to fix before reading the rest."
            if broken else "")
    return f"{word} ({tally_text(checks_)}).{warn} "


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
            out += [f"Checks (declared in `studies/checks.yaml` before the runs; rerun by "
                    f"`tests/slow/test_findings.py` against `{RECORD.as_posix()}`):", "",
                    "| tag | claim | measured [95 % interval] | holds if | holds |", "|---|---|---|---|---|"]
            out += [c.row() for c in self.checks]
            out.append("")
        return "\n".join(out)


# ----------------------------------------------------------------------------- formatting
def fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    v = float(v)
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e4):
        return f"{v:.2e}"
    return f"{v:.4g}" if a < 1 else f"{v:.3g}"


def table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(x if isinstance(x, str) else fmt(x) for x in r) + " |")
    return "\n".join(out)


def with_ci(value: float, ci=None) -> str:
    """``value [lo, hi]`` where the interval is finite, else ``value``."""
    if ci is None or not np.all(np.isfinite(np.asarray(ci, dtype=float))):
        return fmt(value)
    return f"{fmt(value)} [{fmt(ci[0])}, {fmt(ci[1])}]"


def seed_interval(values, level: float = 0.95) -> tuple[float, tuple | None, int]:
    """Mean over seeds and its percentile bootstrap interval (``scipy.stats.bootstrap``; None below 3 values)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), None, 0
    if v.size < 3 or np.ptp(v) == 0:
        return float(v.mean()), (None if v.size < 3 else (float(v[0]), float(v[0]))), int(v.size)
    res = stats.bootstrap((v,), np.mean, n_resamples=2000, confidence_level=level, method="percentile",
                          rng=np.random.default_rng(0))
    return float(v.mean()), (float(res.confidence_interval.low), float(res.confidence_interval.high)), int(v.size)


def spread(values) -> str:
    """``mean [interval] (n=k)`` over seeds (the interval by :func:`seed_interval`)."""
    mean, ci, n = seed_interval(values)
    if n <= 1:
        return fmt(mean)
    return f"{with_ci(mean, ci)} (n={n})"


def scalar_ci(ds: xr.Dataset, name: str) -> tuple | None:
    """The ``<name>_ci`` interval of a results variable, or None."""
    ci = ds.get(f"{name}_ci")
    return None if ci is None else tuple(float(x) for x in np.asarray(ci.values).reshape(-1)[:2])


def nan_reason(ds: xr.Dataset, name: str) -> str:
    return str(ds[name].attrs.get("nan_reason", "")) if name in ds else f"no {name} in the results"


# ----------------------------------------------------------------------------- loading
@dataclass
class Point:
    params: dict
    ds: xr.Dataset
    folder: Path


def study_of(ds: xr.Dataset) -> dict:
    return yaml.safe_load(ds.attrs["study"])


def load_points(runs: Path, study: str) -> list[Point]:
    """Every finished run of a study: its resolved study (as a dict) and its results."""
    base = Path(runs) / study
    files = sorted(base.glob("*/results.nc")) or sorted(base.glob("results.nc"))
    pts = []
    for f in files:
        ds = xr.open_dataset(f)
        for var in ds.variables.values():  # in memory: all but the large traces (frames, reconstructions)
            if var.size * var.dtype.itemsize <= LOAD_BYTES:
                var.load()
        pts.append(Point(study_of(ds), ds, f.parent))
    return pts


#: Variables up to this size are read into memory when a study's runs are loaded; larger ones (an inertia
#: point's frames and reconstructions, 30 MB) are read from disk when a section uses them, so that a study
#: of 200 points (6 GB of results) fits in memory.
LOAD_BYTES = 1 << 20


def by_seed(pts: list[Point], condition) -> dict:
    """``{condition(params): {seed: results}}`` of a study's runs."""
    cells: dict = {}
    for p in pts:
        cells.setdefault(condition(p.params), {})[int(p.params["seed"])] = p.ds
    return cells


def open_section(runs: Path, study: str, title: str) -> tuple[Section, list[Point]]:
    """A section and the study's finished runs (the section says how to make them if there are none)."""
    sec = Section(study, title)
    pts = load_points(runs, study)
    if not pts:
        sec.missing = f"`python studies/reproduce.py --only {study}`"
    return sec, pts


def times(runs: Path) -> dict:
    p = Path(runs) / "reproduce_times.json"
    return json.loads(p.read_text()) if p.exists() else {}


def provenance(runs: Path, study: str, pts: list[Point]) -> str:
    ds = pts[0].ds
    seeds = sorted({int(p.params.get("seed", 0)) for p in pts})
    tr = pts[0].params.get("train", {})
    t = times(runs).get(study)
    trained = [float(p.ds.attrs.get("train_steps_per_second", np.nan)) for p in pts
               if int(p.params.get("train", {}).get("steps", 0) or 0) > 0]  # untrained controls have no speed
    speed = float(np.mean(trained)) if trained else float("nan")
    parts = [f"`python -m neurodelay.run studies/{study}.yaml`: {len(pts)} run(s), seeds {seeds}, "
             f"{tr.get('steps')} steps of {tr.get('optimizer')} (lr {tr.get('lr')}, batch {tr.get('batch_size')}), "
             f"evaluated on {ds.sizes.get('sample')} sequences (seed {ds.attrs.get('evaluate_seed')}); "
             + (f"{speed:.1f} training steps/s; " if speed > 0 else "training speed not recorded; ")
             + f"torch {ds.attrs.get('torch_version')}, device {ds.attrs.get('device')}"]
    if t:
        parts.append(f"; {t / 60:.1f} min wall for the study")
    return "".join(parts) + "."


def savefig(fig: Figure, out_root: Path, name: str) -> str:
    path = Path(out_root) / FIG_DIR / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return f"![{name}]({(FIG_DIR / (name + '.png')).as_posix()})"


def final_loss(ds: xr.Dataset, term: str) -> float:
    name = f"loss_{term}"
    if name not in ds:
        return float("nan")
    return float(np.nanmean(ds[name].values[-5:]))


def rank_corr(v) -> float:
    """Spearman correlation of ``v`` with its order (NaN below 3 values)."""
    v = np.asarray(v, dtype=float)
    if v.size < 3:
        return float("nan")
    return float(stats.spearmanr(np.arange(v.size), v).statistic)


def drawn_of(ds: xr.Dataset, split: str | None = None) -> tuple[float, tuple | None]:
    """``drawn`` (from the mean scene) and its interval; a held-out split's from ``heldout_drawn``."""
    if split is not None:
        return float(ds["heldout_drawn"].sel(split=split)), None
    return float(ds["drawn"]), scalar_ci(ds, "drawn")


def lag_of(ds: xr.Dataset) -> Measured:
    """A run's lag in steps with its interval, or NaN with the reason it could not be read."""
    lag = float(ds["lag_steps"])
    return Measured(lag, scalar_ci(ds, "lag_steps"), f"n={ds['lag_steps'].attrs.get('n_fit', '?')}+"
                    f"{ds['lag_steps'].attrs.get('n_scored', '?')} sequences",
                    "" if math.isfinite(lag) else nan_reason(ds, "lag_steps"))
