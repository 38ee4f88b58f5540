"""pipeline.report: report.md gives seeds, time step and every scalar metric exactly, keeps failures whole,
is written atomically, and the sweep report links its points.
"""

from __future__ import annotations

import os
import re
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from neurodelay.pipeline.report import write_report, write_sweep_report
from tests.helpers import tiny_results as _tiny


def _run_ds() -> xr.Dataset:
    ds = _tiny()
    ds = ds.assign_coords(step=("step", np.array([1, 5]))).assign(
        loss_total=("step", np.array([584.57, 474.03308])),
        mig=((), 0.123456, {"units": "1", "long_name": "mutual information gap"}),
        lag_ms=((), 6.44302, {"units": "ms", "long_name": "representational lag"}))
    ds.attrs.update({"device": "cpu", "seed": 123456, "evaluate_seed": 1000003, "dt_ms": 12.345,
                     "n_parameters": 10, "trained_steps": 5, "train_steps_per_second": 4.0,
                     "train_seconds": 1.25})
    return ds


def _report(tmp_path, ds, **kw) -> str:
    study = SimpleNamespace(name="tiny")
    write_report(tmp_path, study, ds, figures=kw.pop("figures", []), schedule="schedule", study_text="name: tiny",
                 **kw)
    return (tmp_path / "report.md").read_text()


def test_report_gives_seeds_and_time_step_exactly(tmp_path):
    text = _report(tmp_path, _run_ds())
    assert "| seed | 123456 |" in text and "| evaluation seed | 1000003 |" in text
    assert "| time step | 12.345 ms |" in text


def test_report_lists_every_scalar_metric_with_its_dataset_value_and_units(tmp_path):
    ds = _run_ds()
    text = _report(tmp_path, ds)
    assert "## Metrics" in text
    for name in ("mig", "lag_ms"):
        row = re.search(rf"^\| `{name}` \| ([^|]+) \| ([^|]*) \|", text, re.M)
        assert row is not None, name
        assert float(row.group(1)) == pytest.approx(float(ds[name]), rel=1e-3)
    assert re.search(r"^\| `lag_ms` \| [^|]+ \| ms \|", text, re.M)


def test_report_keeps_a_multiline_failure_whole_in_a_code_block(tmp_path):
    message = "ValueError: first line\n\n# not a heading\n```\nlast line"
    text = _report(tmp_path, _run_ds(), failures=[("lag", message)])
    section = text.split("## Failed analyses", 1)[1]
    block = re.search(r"^(`{4,})text\n(.*?)\n\1$", section, re.M | re.S)
    assert block is not None and block.group(2) == message


def test_report_write_leaves_no_temporary_file_when_interrupted(tmp_path, monkeypatch):
    (tmp_path / "report.md").write_text("previous")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _report(tmp_path, _run_ds())
    monkeypatch.undo()
    assert (tmp_path / "report.md").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def _sweep(tmp_path):
    dim = SimpleNamespace(name="gamma", names=("gamma",), paths=("circuit.gamma",), zipped=False, size=2)
    combined = xr.Dataset({"loss_total": (("gamma", "step"), [[3.0, 2.0], [4.0, np.nan]]),
                           "mig": ("gamma", [0.25, 0.5], {"units": "1", "long_name": "mutual information gap"})},
                          coords={"gamma": [0.0, 0.5], "step": [1, 2]})
    points = [SimpleNamespace(point=SimpleNamespace(name=name, values={"circuit.gamma": g}, position={"gamma": i}),
                              status="ok", error="", detail="")
              for i, (name, g) in enumerate((("gamma=0.0", 0.0), ("gamma=0.5#1", 0.5)))]
    outcome = SimpleNamespace(points=points, failed=[])
    return dim, combined, outcome


def test_sweep_report_links_a_point_name_with_hash_and_leaves_the_dataset_alone(tmp_path):
    dim, combined, outcome = _sweep(tmp_path)
    before = combined.copy(deep=True)
    write_sweep_report(tmp_path, SimpleNamespace(name="s"), [dim], outcome, combined)
    text = (tmp_path / "report.md").read_text()
    assert "](gamma=0.5%231/report.md)" in text  # '#' would start a fragment
    xr.testing.assert_identical(combined, before)
    assert "| 4 | 0.5 |" in text  # final_loss_total: the last finite loss_total
