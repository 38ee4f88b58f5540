"""FINDINGS.md from the results of the studies.

Every number in FINDINGS.md is computed here from the ``results.nc`` files
that ``studies/reproduce.py`` leaves in ``runs/``; nothing is typed in by
hand except the original study's own figures, quoted from
docs/original-study.md as the reference. Each experiment is a function
``section_<study>(runs, out_root)`` in a module of this package that returns
a :class:`~findings.core.Section`: its markdown, its figures and its
checks, whose claims, tags and rules are declared before the runs in
``studies/checks.yaml`` (:mod:`findings.core`).

    python -m findings [--runs runs] [--out FINDINGS.md]      # from studies/
    python studies/reproduce.py --findings-only               # from the repository root
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from .beta_vae import section_beta_vae_criterion, section_beta_vae_seeds, section_beta_vae_sweep
from .core import RECORD, ROOT, TAGS, Section, tally
from .delays import section_delay_compensation, section_delay_learning
from .chain import section_emergent_chain
from .emergent import section_emergent_compensation
from .occlusion import section_emergent_occlusion
from .graded import section_emergent_graded
from .memory import section_emergent_memory
from .handset import section_emergent_handset
from .inertia import section_inertia_gamma_sweep, section_inertia_lag
from .prediction import section_dynamic_prediction_sweep
from .seed_compatible import section_seed_compatible
from .supervised import section_supervised_control, section_supervised_decoder
from .warm import section_inertia_warm, section_prediction_warm

__all__ = ["SECTIONS", "RECORD", "build_sections", "write_findings", "main"]

SECTIONS: dict[str, Callable[[Path, Path], Section]] = {
    "supervised_control": section_supervised_control,
    "supervised_decoder": section_supervised_decoder,
    "beta_vae_sweep": section_beta_vae_sweep,
    "beta_vae_seeds": section_beta_vae_seeds,
    "beta_vae_criterion": section_beta_vae_criterion,
    "dynamic_prediction_sweep": section_dynamic_prediction_sweep,
    "prediction_warm": section_prediction_warm,
    "inertia_gamma_sweep": section_inertia_gamma_sweep,
    "inertia_lag": section_inertia_lag,
    "inertia_warm": section_inertia_warm,
    "delay_compensation": section_delay_compensation,
    "seed_compatible": section_seed_compatible,
    "delay_learning": section_delay_learning,
    "emergent_compensation": section_emergent_compensation,
    "emergent_handset": section_emergent_handset,
    "emergent_occlusion": section_emergent_occlusion,
    "emergent_chain": section_emergent_chain,
    "emergent_graded": section_emergent_graded,
    "emergent_memory": section_emergent_memory,
}

HEADER = """# Findings

What neurodelay measures when it reruns the experiments of the 2019 study it grows out of
(docs/original-study.md), with that study's mistakes fixed, and the questions the study could not answer. Every
number below is computed by `studies/findings/` from the `results.nc` files of the studies in `studies/`; rerun
everything with

    python studies/reproduce.py        # runs every study into runs/, then rewrites this file

and check that the findings still hold with `make check-findings` (reruns the studies and compares with
`docs/findings/findings.json`). Every check was declared in `studies/checks.yaml` before the runs it judges, and is
tagged **sanity** (true by construction: a failure is a defect, not a finding), **replication** (a claim of the
original) or **new** (a question the original could not ask); the verdicts count them apart and rest on the
replication and new checks only. The instruments were calibrated on ground truth first (docs/calibration.md):
lags are read by an encoding model that readout noise does not bias, only where the readout reaches a held-out
R^2 of 0.5, and come with 95 % bootstrap intervals over sequences; "drawn" counts from the mean scene; intervals
over seeds are percentile bootstrap intervals of the mean.
"""


def build_sections(runs: Path, out_root: Path, studies=None) -> list[Section]:
    return [SECTIONS[s](Path(runs), Path(out_root)) for s in (studies or SECTIONS)]


def summary_table(sections: list[Section]) -> list[str]:
    rows = ["| experiment | " + " | ".join(TAGS) + " | study |", "|---|" + "---|" * len(TAGS) + "---|"]
    for sec in sections:
        if sec.missing:
            cells = ["not run"] * len(TAGS)
        else:
            t = tally(sec.checks)
            cells = [(f"{t[tag][0]} of {t[tag][1]}" if t[tag][1] else "-")
                     + (f" ({t[tag][2]} not measurable)" if t[tag][2] else "") for tag in TAGS]
        rows.append(f"| {sec.title.split('. ', 1)[-1]} | " + " | ".join(cells) + f" | `{sec.study}` |")
    return rows


#: The summary's opening, written by hand from the verdicts below it (dated: a rerun may change them).
OVERVIEW_FILE = Path(__file__).resolve().parent / "overview.md"


def write_findings(runs: Path, out: Path = ROOT / "FINDINGS.md", overview: str | None = None) -> list[Section]:
    """Compute every section from ``runs`` and write ``out`` (and the check record next to it).

    ``overview`` opens the summary; default: the text of ``OVERVIEW_FILE``.
    """
    if overview is None:
        overview = OVERVIEW_FILE.read_text(encoding="utf-8") if OVERVIEW_FILE.exists() else ""
    out = Path(out)
    root = out.parent
    sections = build_sections(runs, root)
    summary = ["## Summary", ""] + ([overview.strip(), ""] if overview else []) + ["Checks that hold, by tag:", ""]
    summary += summary_table(sections)
    summary += ["", "Each section below ends with its verdict and the checks behind it.", ""]
    text = HEADER + "\n" + "\n".join(summary) + "\n" + "\n".join(s.markdown() for s in sections)
    out.write_text(text)
    record = {s.study: {c.id: asdict(c) for c in s.checks} for s in sections if not s.missing}
    rec_path = root / RECORD
    rec_path.parent.mkdir(parents=True, exist_ok=True)
    rec_path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return sections


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, default=Path(os.environ.get("NEURODELAY_RUNS", ROOT / "runs")))
    p.add_argument("--out", type=Path, default=ROOT / "FINDINGS.md")
    args = p.parse_args(argv)
    write_findings(args.runs, args.out)
    print(f"wrote {args.out}")
    return 0
