"""A study is checked once, at load, and passed down as checked: a sweep point is structured, checked and
built for its check once (when the sweep is loaded), not again by the staleness check, the point's run and
run_study. The check builds on torch's meta device (structure and shapes, no values): the only real build of
a point is the one that trains it."""

from __future__ import annotations

import collections
from pathlib import Path

import attrs
import pytest
import torch

import neurodelay.study.checks as checks
from neurodelay.circuit import Circuit, world_shapes
from neurodelay.study import check_study, load_study, point_study
from neurodelay.study.checks import is_checked
from neurodelay.sweep import expand, run_sweep

STUDY = Path(__file__).resolve().parents[2] / "studies" / "graph_form.yaml"  # a sweep of 2 points
SHORT = ["train.steps=2", "evaluate.n_sequences=4", "analyses=[]"]  # analyses build circuits of their own


def _counting(monkeypatch) -> collections.Counter:
    counts = collections.Counter()
    for name, key in (("structure_study", "structured"), ("_check_point", "checked")):
        original = getattr(checks, name)

        def counted(*args, _original=original, _key=key, **kwargs):
            counts[_key] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(checks, name, counted)
    build = Circuit.build

    def counted_build(self, *args, **kwargs):
        meta = torch.empty(0).device.type == "meta"  # the default device the module is made on
        counts["meta builds" if meta else "real builds"] += 1
        module = build(self, *args, **kwargs)
        assert all(p.is_meta == meta for p in module.parameters())
        return module

    monkeypatch.setattr(Circuit, "build", counted_build)
    return counts


def test_a_sweep_point_is_structured_checked_and_built_once(monkeypatch, tmp_path):
    counts = _counting(monkeypatch)
    study = load_study(STUDY, SHORT)
    n = len(expand(study))
    assert n == 2 and is_checked(study)
    # the sweep's own study (1 check, 1 build) and each point (structured, checked, built once), all on meta
    assert counts == {"structured": n, "checked": n + 1, "meta builds": n + 1}
    counts.clear()
    run_sweep(study, tmp_path / "out", quiet=True)
    # before: per point 2 structurings, 3 checks and 3 builds more; then 1 real build for the check at seed 0
    assert counts == {"real builds": n}  # one per point: the module it trains
    assert len(list((tmp_path / "out").glob("*/results.nc"))) == n


def test_a_changed_study_is_checked_again(monkeypatch):
    counts = _counting(monkeypatch)
    study = load_study(STUDY)
    point = point_study(study, expand(study)[0])
    counts.clear()
    check_study(point)
    assert not counts  # checked already
    check_study(attrs.evolve(point, seed=7))
    assert counts == {"checked": 1, "meta builds": 1}


def test_a_circuit_that_fails_on_meta_is_checked_by_a_real_build(monkeypatch):
    """A component that reads values while it is built (a user's, say) is still checked, by a real build."""
    counts = _counting(monkeypatch)
    study = load_study(STUDY)
    point = attrs.evolve(point_study(study, expand(study)[0]), seed=11)
    monkeypatch.setattr(checks, "_build_structure", lambda circuit, shapes: None)
    counts.clear()
    check_study(point)
    assert counts == {"checked": 1, "real builds": 1}


def test_a_meta_build_reports_the_errors_of_a_real_one(monkeypatch):
    """An error while building on meta is retried for real: the message is the training build's."""
    broken = ["circuit.nodes.enc.n_latents=5"]  # the decoder takes 4
    with pytest.raises(Exception) as on_meta:
        load_study(STUDY, broken)
    monkeypatch.setattr(checks, "_build_structure", lambda circuit, shapes: None)
    with pytest.raises(Exception) as real:
        load_study(STUDY, broken)
    assert str(on_meta.value) == str(real.value) and "n_latents" in str(real.value)


def test_every_shipped_study_is_checked_without_a_real_build():
    """Every circuit the repository's studies build (one point each) builds on meta: none falls back."""
    studies = sorted(p for p in STUDY.parent.glob("*.yaml") if p.name != "checks.yaml")
    studies.append(STUDY.parent / "custom_circuit.py")  # the documented component of one's own (Leaky)
    assert len(studies) >= 21
    for path in studies:
        study = load_study(path)
        point = point_study(study, expand(study)[-1]) if study.sweep is not None else study
        module = checks._build_structure(point.build_circuit(), world_shapes(point.world))
        assert module is not None, path.name
        assert all(p.is_meta for p in module.parameters()), path.name
