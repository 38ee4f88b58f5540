"""Sweeps: expansion, one folder per point, sweep.nc, skipping, failures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

import neurodelay.sweep as sweep_module
import neurodelay.sweep.runner as sweep_runner
from neurodelay.run import main
from neurodelay.study import structure_study
from neurodelay.sweep import expand, point_study, sweep_dims

BASE = {
    "name": "sw",
    "seed": 0,
    "world": {"kind": "moving_circle", "size": 16, "n_frames": 4},
    "circuit": {"preset": "inertia", "n_latents": 2, "gamma": 0.5},
    "objective": {"reconstruction": "gaussian"},
    "train": {"steps": 1, "batch_size": 2},
    "evaluate": {"n_sequences": 2},
    "analyses": [],
}


def test_grid_and_zip_expansion():
    study = structure_study({**BASE, "sweep": {
        "circuit.gamma": [0.0, 0.5, 1.0],
        "zip": {"train.lr": ["1e-3", 1.0e-4], "seed": [0, 1]},
    }})
    dims = sweep_dims(study)
    assert [(d.name, d.size, d.zipped) for d in dims] == [("gamma", 3, False), ("zip", 2, True)]
    assert dims[1].names == ("lr", "seed")
    points = expand(study)
    assert len(points) == study.sweep.n_points == 6
    assert points[1].values == {"circuit.gamma": 0.0, "train.lr": 1e-4, "seed": 1}
    assert points[1].position == {"gamma": 0, "zip": 1}
    assert points[1].name == "gamma=0.0,lr=0.0001,seed=1"
    assert len({p.name for p in points}) == 6
    one = point_study(study, points[5])
    assert one.sweep is None and dict(one.circuit.params)["gamma"] == 1.0 and one.seed == 1


def test_dimension_names_stay_unambiguous():
    study = structure_study({
        **BASE,
        "circuit": {"nodes": {"a": {"kind": "blend"}, "b": {"kind": "blend"}},
                    "edges": [{"source": "world.factors", "target": "a.drive"},
                              {"source": "b", "target": "a.prediction", "delay_ms": 10},
                              {"source": "a", "target": "b.drive"},
                              {"source": "a", "target": "b.prediction", "delay_ms": 10}]},
        "objective": None, "train": {"steps": 0},
        "sweep": {"circuit.nodes.a.gamma": [0.1], "circuit.nodes.b.gamma": [0.2], "seed": [1, 2]},
    })
    assert [d.name for d in sweep_dims(study)] == ["a_gamma", "b_gamma", "seed"]


def _count_points(monkeypatch) -> list:
    """Record (point name, resume) of every point the sweep runs from now on; the points still run."""
    real, calls = sweep_module.run_point, []

    def count(study, point, folder, **kw):
        calls.append((point.name, kw["resume"]))
        return real(study, point, folder, **kw)

    monkeypatch.setattr(sweep_runner, "run_point", count)
    return calls


def _write(folder: Path, raw: dict) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_sweep_runs_points_combines_skips_and_records_failures(tmp_path, capsys, monkeypatch):
    study = _write(tmp_path, {**BASE, "sweep": {"circuit.gamma": [0.0, 0.5], "zip": {"seed": [0, 1]}}})
    real = sweep_module.run_point

    def fail_one(study, point, folder, **kw):
        if point.values["circuit.gamma"] == 0.5 and point.values["seed"] == 1:
            raise RuntimeError("boom at this point")
        return real(study, point, folder, **kw)

    monkeypatch.setattr(sweep_runner, "run_point", fail_one)
    code = main([str(study), "--out", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "1 of 4 sweep points failed" in err
    out = tmp_path / "runs" / "sw"
    done = sorted(p.parent.name for p in out.glob("*/results.nc"))
    assert done == ["gamma=0.0,seed=0", "gamma=0.0,seed=1", "gamma=0.5,seed=0"]
    report = (out / "report.md").read_text()
    assert "boom at this point" in report and "| failed |" in report
    assert (out / "gamma=0.5,seed=1" / "error.txt").read_text().startswith("RuntimeError: boom at this point")
    assert "figures/sweep_reconstruction_mse.png" in report
    assert (out / "figures" / "sweep_reconstruction_mse.png").is_file()

    ds = xr.load_dataset(out / "sweep.nc")
    assert ds["reconstruction_mse"].dims == ("gamma", "zip")
    np.testing.assert_array_equal(ds["gamma"].values, [0.0, 0.5])
    np.testing.assert_array_equal(ds["seed"].values, [0, 1])
    mse = ds["reconstruction_mse"].values
    assert np.isfinite(mse[0]).all() and np.isfinite(mse[1, 0]) and np.isnan(mse[1, 1])
    assert ds["frames"].dims == ("sample", "time", "y", "x")  # equal at every point: not repeated
    assert ds["z"].dims[:2] == ("gamma", "zip")
    point = xr.load_dataset(out / "gamma=0.0,seed=1" / "results.nc")
    np.testing.assert_array_equal(ds["z"].sel(gamma=0.0, zip=1).values, point["z"].values)
    assert yaml.safe_load(ds.attrs["points_without_results"]) == ["gamma=0.5,seed=1"]

    # a rerun skips the points with results and runs the failed one
    calls = []

    def count(study, point, folder, **kw):
        calls.append(point.name)
        return real(study, point, folder, **kw)

    monkeypatch.setattr(sweep_runner, "run_point", count)
    before = (out / "gamma=0.0,seed=0" / "results.nc").stat().st_mtime_ns
    assert main([str(study), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    assert calls == ["gamma=0.5,seed=1"]
    assert not (out / "gamma=0.5,seed=1" / "error.txt").exists()  # it ran again and succeeded
    assert (out / "gamma=0.0,seed=0" / "results.nc").stat().st_mtime_ns == before
    ds = xr.load_dataset(out / "sweep.nc")
    assert np.isfinite(ds["reconstruction_mse"].values).all()
    assert "| skipped |" in (out / "report.md").read_text()


def test_graph_form_study_sweeps_gamma(tmp_path, capsys):
    root = Path(__file__).resolve().parents[2]
    code = main([str(root / "studies" / "graph_form.yaml"), "--out", str(tmp_path), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert str(tmp_path / "graph-form" / "gamma=0.0") in out and str(tmp_path / "graph-form" / "gamma=0.5") in out
    assert not (tmp_path / "graph-form").exists()


@pytest.mark.parametrize("sweep, text", [
    ({"circuit.gama": [0.1]}, "did you mean 'gamma'?"),
    ({"train.steps": [1, -1]}, "steps must be an integer >= 0"),
    ({"circuit.gamma": [0.5, 0.5]}, "repeats 0.5: two points would be the same run"),
    ({"circuit.gamma": [1, 1.0]}, "repeats 1.0: two points would be the same run"),
    ({"zip": {"circuit.gamma": [0.0, 0.5, 0.5], "seed": [1, 2, 2]}},
     "the zipped values of circuit.gamma, seed repeat [0.5, 2]"),
])
def test_bad_sweeps_exit_2_and_write_nothing(tmp_path, capsys, sweep, text):
    study = _write(tmp_path, {**BASE, "sweep": sweep})
    code = main([str(study), "--out", str(tmp_path / "runs")])
    assert code == 2 and text in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_sweep_dimensions_that_clash_with_result_names_are_renamed(tmp_path, capsys):
    study = _write(tmp_path, {
        "name": "clash",
        "world": {"kind": "moving_circle", "size": 16, "n_frames": 3},
        "circuit": {"nodes": {"gamma": {"kind": "relay"}, "z": {"kind": "blend"},
                              "pred": {"kind": "extrapolator"}},
                    "edges": [{"source": "world.factors", "target": "gamma"},
                              {"source": "gamma", "target": "z.drive"},
                              {"source": "z", "target": "pred", "delay_ms": 10},
                              {"source": "pred", "target": "z.prediction"}]},
        "evaluate": {"n_sequences": 2},
        "analyses": [],
        "sweep": {"circuit.nodes.z.gamma": [0.0, 1.0]},
    })
    assert main([str(study), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    capsys.readouterr()
    ds = xr.load_dataset(tmp_path / "runs" / "clash" / "sweep.nc")
    assert ds["z"].dims == ("swept_gamma", "sample", "time", "latent")
    assert ds["gamma"].dims == ("sample", "time", "latent")  # the node's trace, equal at both points
    assert ds["swept_gamma"].attrs["path"] == "circuit.nodes.z.gamma"
    # gamma = 1 holds the first value for ever
    z = ds["z"].sel(swept_gamma=1.0).values
    np.testing.assert_array_equal(z, np.repeat(z[:, :1], 3, axis=1))
    assert "| ok |" in (tmp_path / "runs" / "clash" / "report.md").read_text()


def test_points_with_different_variables_combine_with_nan_where_absent(tmp_path, capsys):
    # a Gaussian encoder records enc_mu and enc_logvar, a deterministic one does not
    study = _write(tmp_path, {**BASE, "name": "mixed",
                              "sweep": {"zip": {"circuit.gaussian": [False, True],
                                                "objective.beta_norm": [0.0, 0.001]}}})
    assert main([str(study), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    capsys.readouterr()
    ds = xr.load_dataset(tmp_path / "runs" / "mixed" / "sweep.nc")
    assert ds["enc_mu"].dims[0] == "zip"
    assert np.isnan(ds["enc_mu"].isel(zip=0).values).all()
    assert np.isfinite(ds["enc_mu"].isel(zip=1).values).all()
    assert [str(v) for v in ds["gaussian"].values] == ["false", "true"]  # netCDF has no booleans


def test_points_with_different_sizes_keep_missing_entries_missing(tmp_path, capsys):
    # 2 and 3 latents: the integer `collapsed_latent` of the 2-latent point is padded with NaN, which
    # must stay NaN in sweep.nc (not be cast back to the integer it was stored as).
    study = _write(tmp_path, {**BASE, "name": "sizes", "analyses": ["disentanglement"],
                              "evaluate": {"n_sequences": 16}, "sweep": {"circuit.n_latents": [2, 3]}})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert main([str(study), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    capsys.readouterr()
    ds = xr.load_dataset(tmp_path / "runs" / "sizes" / "sweep.nc")
    flags = ds["collapsed_latent"]
    assert flags.dims == ("n_latents", "latent")
    assert np.isnan(flags.sel(n_latents=2).values[2])
    assert set(np.unique(flags.sel(n_latents=3).values)) <= {0.0, 1.0}
    assert set(np.unique(flags.sel(n_latents=2).values[:2])) <= {0.0, 1.0}


def test_rerun_redoes_points_from_an_edited_study_or_with_failed_analyses(tmp_path, capsys, monkeypatch):
    raw = {**BASE, "sweep": {"circuit.gamma": [0.0, 0.5]}}
    study = _write(tmp_path, raw)
    runs = tmp_path / "runs"
    assert main([str(study), "--out", str(runs), "--quiet"]) == 0
    out = runs / "sw"
    first = xr.load_dataset(out / "sweep.nc")
    calls = _count_points(monkeypatch)
    # the same study: every point is kept
    assert main([str(study), "--out", str(runs), "--quiet"]) == 0 and calls == []
    # an edited study (or --set) must not reuse the old points' numbers
    assert main([str(study), "--out", str(runs), "--set", "train.lr=0.5", "--set", "train.steps=2"]) == 0
    printed = capsys.readouterr().out
    assert "results come from a different version of the study; running it again" in printed
    assert [c[0] for c in calls] == ["gamma=0.0", "gamma=0.5"] and not any(c[1] for c in calls)  # afresh
    second = xr.load_dataset(out / "sweep.nc")
    assert "lr: 0.5" in second.attrs["study"]
    assert not np.array_equal(first["z"].values, second["z"].values)
    point = xr.load_dataset(out / "gamma=0.5" / "results.nc")
    np.testing.assert_array_equal(second["z"].sel(gamma=0.5).values, point["z"].values)
    # a point whose analyses failed, or that stopped before its report, runs again
    calls.clear()
    (out / "gamma=0.0" / "report.md").unlink()
    assert main([str(study), "--out", str(runs), "--quiet", "--set", "train.lr=0.5", "--set", "train.steps=2"]) == 0
    assert [c[0] for c in calls] == ["gamma=0.0"]


def test_rerun_with_a_changed_evaluation_keeps_the_training(tmp_path, capsys, monkeypatch):
    """A study edited only outside training (evaluate, analyses) keeps every point's checkpoint: the
    points resume (no training step runs) and are evaluated, analysed and reported anew."""
    raw = {**BASE, "train": {"steps": 2, "batch_size": 2, "log_every": 1}, "sweep": {"circuit.gamma": [0.0, 0.5]}}
    study = _write(tmp_path, raw)
    runs = tmp_path / "runs"
    assert main([str(study), "--out", str(runs), "--quiet"]) == 0
    out = runs / "sw"
    names = ["gamma=0.0", "gamma=0.5"]
    checkpoints = {n: (out / n / "checkpoint.pt").read_bytes() for n in names}
    losses = {n: xr.load_dataset(out / n / "results.nc")["loss_total"] for n in names}
    calls = _count_points(monkeypatch)
    capsys.readouterr()
    assert main([str(study), "--out", str(runs), "--set", "evaluate.n_sequences=3"]) == 0
    printed = capsys.readouterr().out
    assert "changed outside training (evaluate): training is kept" in printed
    assert "different version" not in printed
    assert calls == [(n, True) for n in names]  # resumed from their checkpoints
    for n in names:
        assert (out / n / "checkpoint.pt").read_bytes() == checkpoints[n]  # no training step ran
        ds = xr.load_dataset(out / n / "results.nc")
        assert ds.sizes["sample"] == 3 and ds.attrs["trained_steps"] == 2
        assert "n_sequences: 3" in ds.attrs["study"] and "n_sequences: 3" in (out / n / "report.md").read_text()
        xr.testing.assert_identical(ds["loss_total"], losses[n])
    assert xr.load_dataset(out / "sweep.nc").sizes["sample"] == 3
    # the same edited study again: every point is finished
    calls.clear()
    assert main([str(study), "--out", str(runs), "--quiet", "--set", "evaluate.n_sequences=3"]) == 0
    assert calls == []
    # a change to training still clears the checkpoints: the points train afresh
    assert main([str(study), "--out", str(runs), "--quiet", "--set", "evaluate.n_sequences=3",
                 "--set", "train.lr=0.5"]) == 0
    assert calls == [(n, False) for n in names]
    assert all((out / n / "checkpoint.pt").read_bytes() != checkpoints[n] for n in names)


def test_rerun_with_more_train_steps_trains_on_and_with_fewer_runs_afresh(tmp_path, capsys, monkeypatch):
    """A larger train.steps resumes each point from its checkpoint and reaches the numbers of a sweep
    run that long from the start; a smaller one (finished or unfinished points) runs afresh."""
    raw = {**BASE, "train": {"steps": 2, "batch_size": 2, "log_every": 1}, "sweep": {"circuit.gamma": [0.0, 0.5]}}
    study = _write(tmp_path, raw)
    runs, fresh = tmp_path / "runs", tmp_path / "fresh"
    assert main([str(study), "--out", str(runs), "--quiet"]) == 0
    assert main([str(study), "--out", str(fresh), "--quiet", "--set", "train.steps=3"]) == 0
    out, names = runs / "sw", ["gamma=0.0", "gamma=0.5"]
    calls = _count_points(monkeypatch)
    capsys.readouterr()
    assert main([str(study), "--out", str(runs), "--set", "train.steps=3"]) == 0
    assert "train.steps rose from 2 to 3: it trains on from its checkpoint" in capsys.readouterr().out
    assert calls == [(n, True) for n in names]
    for n in names:
        ds, ref = xr.load_dataset(out / n / "results.nc"), xr.load_dataset(fresh / "sw" / n / "results.nc")
        assert ds.attrs["trained_steps"] == 3
        for name, var in ref.data_vars.items():
            xr.testing.assert_identical(ds[name], var)
    # fewer steps than trained: the points run afresh, their checkpoints cleared
    calls.clear()
    (out / names[1] / "results.nc").unlink()  # an unfinished point: a checkpoint (at step 3), no results
    assert main([str(study), "--out", str(runs), "--set", "train.steps=1"]) == 0
    printed = capsys.readouterr().out
    assert "it was trained for 3 steps and the study now trains 1" in printed
    assert "is at step 3, beyond the study's train.steps = 1, so it is cleared" in printed
    assert calls == [(names[0], False), (names[1], False)]
    assert all(xr.load_dataset(out / n / "results.nc").attrs["trained_steps"] == 1 for n in names)


def test_one_point_sweeps_and_numeric_coordinates(tmp_path, capsys):
    """A one-point sweep (or one whose metric is equal at every point) still gets its metrics over
    the sweep dimension, its report and its figures; mixed ints and floats, and zipped values that
    repeat, stay numbers in sweep.nc."""
    runs = tmp_path / "runs"
    one = _write(tmp_path, {**BASE, "name": "one", "sweep": {"circuit.gamma": [0.5]}})
    assert main([str(one), "--out", str(runs), "--quiet"]) == 0
    ds = xr.load_dataset(runs / "one" / "sweep.nc")
    assert ds["reconstruction_mse"].dims == ("gamma",)
    assert (runs / "one" / "report.md").is_file()
    assert (runs / "one" / "figures" / "sweep_reconstruction_mse.png").is_file()
    mixed = _write(tmp_path, {**BASE, "name": "mixed", "sweep": {
        "circuit.gamma": [0, 0.5], "zip": {"train.lr": [1e-3, 1e-3], "seed": [1, 2]}}})
    assert main([str(mixed), "--out", str(runs), "--quiet"]) == 0
    ds = xr.load_dataset(runs / "mixed" / "sweep.nc")
    assert ds["gamma"].dtype == np.float64 and ds["gamma"].values.tolist() == [0.0, 0.5]
    assert ds["lr"].dtype == np.float64 and ds["seed"].dtype == np.int64
    assert float(ds["reconstruction_mse"].sel(gamma=0.5, zip=1)) == float(
        xr.load_dataset(runs / "mixed" / "gamma=0.5,lr=0.001,seed=2" / "results.nc")["reconstruction_mse"])


def test_rerun_clears_an_unfinished_point_whose_training_changed(tmp_path, capsys, monkeypatch):
    """A point interrupted mid-training (checkpoint, no results) whose study then changed in what
    training reads is cleared and trains afresh, instead of failing to resume ("belongs to another
    study"); one whose training did not change resumes as before. The checkpoint says which study
    trained it; when it cannot be read, the point's study.resolved.yaml does."""
    from neurodelay.training.checkpoint import load_checkpoint

    raw = {**BASE, "train": {"steps": 2, "batch_size": 2, "checkpoint_every": 1},
           "sweep": {"circuit.gamma": [0.0, 0.5]}}
    study = _write(tmp_path, raw)
    runs = tmp_path / "runs"
    assert main([str(study), "--out", str(runs), "--quiet"]) == 0
    out = runs / "sw"

    def interrupt(name: str, *, unreadable: bool = False) -> None:
        """Leave the point as a run stopped mid-training does: its checkpoint, study.resolved.yaml, no results."""
        for f in ("results.nc", "report.md"):
            (out / name / f).unlink()
        if unreadable:
            (out / name / "checkpoint.pt").write_bytes(b"truncated")

    calls = _count_points(monkeypatch)
    interrupt("gamma=0.0")
    interrupt("gamma=0.5", unreadable=True)
    capsys.readouterr()
    assert main([str(study), "--out", str(runs), "--set", "train.lr=0.5"]) == 0
    printed = capsys.readouterr().out
    for name in ("gamma=0.0", "gamma=0.5"):
        assert (f"{name}: its checkpoint (from a run that did not finish) was trained by a different version of "
                f"the study, so it is cleared; running it again") in printed
        ckpt = load_checkpoint(out / name / "checkpoint.pt")
        assert ckpt["step"] == 2 and "lr: 0.5" in ckpt["study_text"]
        assert "lr: 0.5" in xr.load_dataset(out / name / "results.nc").attrs["study"]
    assert calls == [("gamma=0.0", False), ("gamma=0.5", False)]  # afresh

    # interrupted again, the study unchanged: it resumes from its checkpoint, nothing is cleared
    calls.clear()
    interrupt("gamma=0.5")
    kept = (out / "gamma=0.5" / "checkpoint.pt").read_bytes()
    assert main([str(study), "--out", str(runs), "--set", "train.lr=0.5"]) == 0
    assert "so it is cleared" not in capsys.readouterr().out
    assert calls == [("gamma=0.5", True)]
    assert (out / "gamma=0.5" / "checkpoint.pt").read_bytes() == kept


def test_a_failed_points_report_keeps_the_error_that_says_why(tmp_path, capsys, monkeypatch):
    """An engine's error for a point (a Slurm job's, whose first line only says that the job failed)
    keeps the line that names the exception in the report's table and on the console; the report's
    Failures section has the whole text."""
    from neurodelay.executors import JobResult

    failed_job = (  # as submitit words a job whose function raised
        "FailedJobError: Job (task=0) failed during processing with trace:\n"
        "----------------------\n"
        "Traceback (most recent call last):\n"
        '  File "/site-packages/submitit/core/submission.py", line 55, in process_job\n'
        "    result = delayed.result()\n"
        "             ^^^^^^^^^^^^^^^^\n"
        '  File "/neurodelay/executors.py", line 360, in execute_point\n'
        '    if (folder / "results.nc").exists():\n'
        "PermissionError: [Errno 13] Permission denied: 'gamma=0.0/results.nc'\n"
        "----------------------\n"
        "You can check full logs with 'job.stderr(0)' and 'job.stdout(0)'or at paths:\n"
        "  - /runs/.submitit/7_0/7_0_0_log.err\n"
        "  - /runs/.submitit/7_0/7_0_0_log.out")
    died = (  # as submitit words a job that exited without a result (here: sys.exit in the study's code)
        "UncompletedJobError: Job 8_1 (task: 0) with path /runs/.submitit/8_1/8_1_0_result.pkl\n"
        "has not produced any output (state: FINISHED)\n"
        "Error stream produced:\n"
        "----------------------------------------\n"
        "leaky: rate 0.25 is below 0.3\n")

    class Engine:
        def __init__(self, *args):
            pass

        def check(self, jobs):
            pass

        def map(self, jobs, *, on_result=None):
            results = [JobResult("failed", failed_job), JobResult("failed", died)]
            for job, result in zip(jobs, results):
                on_result(job, result)
            return results

    monkeypatch.setattr(sweep_runner, "make_executor", Engine)  # the sweep looks its engine up there
    study = _write(tmp_path, {**BASE, "sweep": {"circuit.gamma": [0.0, 0.5]}})
    assert main([str(study), "--out", str(tmp_path / "runs"), "--executor", "slurm:local"]) == 1
    printed = capsys.readouterr().out
    why = ("FailedJobError: Job (task=0) failed during processing with trace: ... PermissionError: [Errno 13] "
           "Permission denied: 'gamma=0.0/results.nc'")
    why2 = ("UncompletedJobError: Job 8_1 (task: 0) with path /runs/.submitit/8_1/8_1_0_result.pkl ... "
            "leaky: rate 0.25 is below 0.3")
    assert f"gamma=0.0: failed ({why})" in printed and f"gamma=0.5: failed ({why2})" in printed
    report = (tmp_path / "runs" / "sw" / "report.md").read_text()
    table, failures = report.split("## Failures")
    assert f"| {why} |" in table and f"| {why2} |" in table
    assert failed_job in failures and died.strip() in failures


@pytest.mark.parametrize("text, summary", [
    ("RuntimeError: boom", "RuntimeError: boom"),
    # execute_point's form: the exception, then its traceback (whose last line repeats it, qualified)
    ("TrainingError: diverged at step 3\nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
     "    g()\nneurodelay.errors.TrainingError: diverged at step 3\n", "TrainingError: diverged at step 3"),
    # a message of several lines: all of it, on one line
    ("ConfigError: the study is invalid:\n  world.size must be > 0\nTraceback (most recent call last):\n"
     "  File \"x.py\", line 1, in f\n    g()\nneurodelay.errors.ConfigError: the study is invalid:\n"
     "  world.size must be > 0\n", "ConfigError: the study is invalid: world.size must be > 0"),
    # chained: the exception that ended the last traceback
    ("FailedJobError: Job (task=0) failed during processing with trace:\n-----\nTraceback (most recent call last):\n"
     "  File \"a.py\", line 1, in f\nKeyError: 'x'\n\nDuring handling of the above exception, another exception "
     "occurred:\n\nTraceback (most recent call last):\n  File \"b.py\", line 2, in g\nValueError: no x\n-----\n"
     "You can check full logs with ...\n  - a.err",
     "FailedJobError: Job (task=0) failed during processing with trace: ... ValueError: no x"),
    # no traceback and no separator: the first and the last line
    ("worker process died\nsome detail\nBrokenProcessPool: gone", "worker process died ... BrokenProcessPool: gone"),
    ("x" * 1000, "x" * 597 + "..."),
    ("", ""),
])
def test_error_summary(text, summary):
    assert sweep_module.error_summary(text) == summary


def test_rerun_of_a_sweep_that_trains_nothing_skips_its_points(tmp_path, capsys, monkeypatch):
    """A circuit without parameters records trained_steps 0 under train.steps 1000: the rerun must
    not read that as a rise in train.steps (it re-simulated every point on every rerun)."""
    raw = {"name": "np", "world": {"kind": "moving_circle", "size": 16, "n_frames": 4},
           "circuit": {"nodes": {"r": {"kind": "relay"}}, "edges": [{"source": "world.factors", "target": "r"}]},
           "evaluate": {"n_sequences": 2}, "analyses": [], "sweep": {"seed": [0, 1]}}
    study, runs = _write(tmp_path, raw), tmp_path / "runs"
    assert main([str(study), "--out", str(runs), "--quiet"]) == 0
    assert xr.load_dataset(runs / "np" / "seed=0" / "results.nc").attrs["n_parameters"] == 0
    calls = []
    monkeypatch.setattr(sweep_runner, "run_point", lambda *a, **kw: calls.append(a[1].name))
    capsys.readouterr()
    assert main([str(study), "--out", str(runs)]) == 0
    assert calls == [] and "rose" not in capsys.readouterr().out


def test_a_sweep_of_the_largest_seeds_combines_them(tmp_path, capsys):
    """Seeds reach 2**64 - 1, past numpy's int64: sweep.nc holds them as unsigned 64-bit integers (the combine
    step failed with OverflowError, so not even the good point reached sweep.nc)."""
    runs = tmp_path / "runs"
    path = _write(tmp_path, {**BASE, "sweep": {"seed": [0, 2**64 - 1]}})
    assert main([str(path), "--out", str(runs), "--quiet"]) == 0, capsys.readouterr().err
    ds = xr.load_dataset(runs / "sw" / "sweep.nc")
    assert ds["seed"].dtype == np.uint64 and ds["seed"].values.tolist() == [0, 2**64 - 1]
    assert np.isfinite(ds["reconstruction_mse"].values).all()
    assert ds.attrs["points_without_results"] == "[]"


def test_a_rerun_with_nothing_to_run_keeps_sweep_nc_and_combines_again_when_a_point_changes(
        tmp_path, capsys, monkeypatch):
    """sweep.nc is combined again only when some point's results are newer, or the study or its points changed."""
    study = _write(tmp_path, {**BASE, "sweep": {"seed": [0, 1]}})
    runs, out = tmp_path / "runs", tmp_path / "runs" / "sw"
    assert main([str(study), "--out", str(runs), "--quiet"]) == 0
    first = xr.load_dataset(out / "sweep.nc")
    combines = []
    real = sweep_runner.combine
    monkeypatch.setattr(sweep_runner, "combine", lambda *a, **kw: combines.append(1) or real(*a, **kw))
    written = (out / "sweep.nc").stat().st_mtime_ns
    assert main([str(study), "--out", str(runs), "--quiet"]) == 0
    assert combines == [] and (out / "sweep.nc").stat().st_mtime_ns == written
    assert "| skipped |" in (out / "report.md").read_text()  # the report is written from the kept sweep.nc
    xr.testing.assert_identical(xr.load_dataset(out / "sweep.nc"), first)
    # a point's results rewritten after sweep.nc: combined again
    point = out / "seed=1" / "results.nc"
    later = (out / "sweep.nc").stat().st_mtime + 5
    os.utime(point, (later, later))
    assert main([str(study), "--out", str(runs), "--quiet"]) == 0
    assert combines == [1]
    # a study with another point: combined again (and the new point run)
    study = _write(tmp_path, {**BASE, "sweep": {"seed": [0, 1, 2]}})
    assert main([str(study), "--out", str(runs), "--quiet"]) == 0
    assert combines == [1, 1] and xr.load_dataset(out / "sweep.nc").sizes["seed"] == 3
    # a changed evaluation: the points are evaluated again, and combined again
    assert main([str(study), "--out", str(runs), "--quiet", "--set", "evaluate.batch_size=1"]) == 0
    assert len(combines) == 3
