"""A study is checked once, at load, and passed down as checked: a sweep point is structured, checked and
built for its check once (when the sweep is loaded), not again by the staleness check, the point's run and
run_study. The run itself builds the point's module once more, with its own seed, to train it."""

from __future__ import annotations

import collections
from pathlib import Path

import attrs

import neurodelay.pipeline.run as pipeline_run
import neurodelay.study.checks as checks
from neurodelay.study import check_study, load_study, point_study
from neurodelay.study.checks import is_checked
from neurodelay.sweep import expand, run_sweep

STUDY = Path(__file__).resolve().parents[2] / "studies" / "graph_form.yaml"  # a sweep of 2 points


def _counting(monkeypatch) -> collections.Counter:
    counts = collections.Counter()
    for name, key in (("structure_study", "structured"), ("_check_point", "checked"), ("build_seeded", "built")):
        original = getattr(checks, name)

        def counted(*args, _original=original, _key=key, **kwargs):
            counts[_key] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(checks, name, counted)

    def run_locked(study, out, **_):  # where the run builds its module and trains: counted, not done
        counts["run"] += 1
        assert is_checked(study)
        return out

    monkeypatch.setattr(pipeline_run, "_run_locked", run_locked)
    return counts


def test_a_sweep_point_is_structured_checked_and_built_once(monkeypatch, tmp_path):
    counts = _counting(monkeypatch)
    study = load_study(STUDY)
    n = len(expand(study))
    assert n == 2 and is_checked(study)
    # the sweep's own study (1 check, 1 build) and each point (structured, checked, built once)
    assert counts == {"structured": n, "checked": n + 1, "built": n + 1}
    counts.clear()
    run_sweep(study, tmp_path / "out", quiet=True)
    assert counts == {"run": n}  # before: per point 2 structurings, 3 checks and 3 builds more


def test_a_changed_study_is_checked_again(monkeypatch):
    counts = _counting(monkeypatch)
    study = load_study(STUDY)
    point = point_study(study, expand(study)[0])
    counts.clear()
    check_study(point)
    assert not counts  # checked already
    check_study(attrs.evolve(point, seed=7))
    assert counts == {"checked": 1, "built": 1}
