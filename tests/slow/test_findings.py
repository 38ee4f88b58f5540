"""The findings of FINDINGS.md still hold: rerun the reproduction studies and compare.

Marked ``slow`` (deselected by default; about an hour and a half on 2 CPU
cores for all studies). Run with ``make check-findings`` or

    python -m pytest -m slow tests/slow                      # rerun every study in a temporary folder
    python -m pytest -m slow tests/slow -k delay_compensation
    NEURODELAY_FINDINGS_RUNS=runs python -m pytest -m slow tests/slow   # reuse (and complete) runs/

Each check of ``studies/findings/`` must give the same verdict as the one
recorded in ``docs/findings/findings.json`` (written with FINDINGS.md) and a
value within the recorded tolerance of the recorded value.
"""

import json
import math
import os
from pathlib import Path

import findings
import pytest
import reproduce

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Path:
    given = os.environ.get("NEURODELAY_FINDINGS_RUNS")
    return Path(given).resolve() if given else tmp_path_factory.mktemp("reproduce")


@pytest.fixture(scope="session")
def record() -> dict:
    path = ROOT / findings.RECORD
    if not path.exists():
        pytest.fail(f"{path} is missing: run `python studies/reproduce.py` to write FINDINGS.md and its record.")
    return json.loads(path.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("study", list(findings.SECTIONS))
def test_findings_still_hold(study, runs, record, tmp_path):
    for needed in reproduce.NEEDS.get(study, ()):
        reproduce.run_study(needed, runs)
    reproduce.run_study(study, runs)  # points whose results exist are skipped
    section = findings.SECTIONS[study](runs, tmp_path)
    assert section.missing is None, section.missing
    measured = {c.id: c for c in section.checks}
    recorded = record.get(study, {})
    assert set(measured) == set(recorded), (sorted(measured), sorted(recorded))
    changed = []
    for cid, rec in recorded.items():
        c = measured[cid]
        both_unmeasured = math.isnan(c.value) and math.isnan(rec["value"])  # "not measurable" then and now
        if c.holds != rec["holds"] or not (both_unmeasured or abs(c.value - rec["value"]) <= rec["tolerance"]):
            changed.append(f"{cid}: {c.claim}: measured {c.value:.4g} (holds: {c.holds}), recorded "
                           f"{rec['value']:.4g} (holds: {rec['holds']}) +- {rec['tolerance']:g}")
    assert not changed, "findings that no longer hold:\n" + "\n".join(changed)
