"""``python -m neurodelay.run`` end to end on tiny studies (16 px, 4 frames, a few steps)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml

import neurodelay.pipeline.run as runner_module
from neurodelay import registry
from neurodelay.errors import CheckpointError
from neurodelay.run import main
from neurodelay.pipeline import run_study
from neurodelay.study import load_study
from neurodelay.testing import assert_results_equal

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "name": "tiny",
    "seed": 3,
    "world": {"kind": "moving_circle", "size": 16, "n_frames": 4},
    "circuit": {"preset": "inertia", "n_latents": 2, "gamma": 0.5},
    "objective": {"reconstruction": "gaussian"},
    "train": {"steps": 3, "batch_size": 2, "lr": 1.0e-3, "log_every": 1, "checkpoint_every": 1},
    "evaluate": {"n_sequences": 3, "batch_size": 2},
    "analyses": [],
}

#: Attributes that measure time and so differ between identical runs.
TIMING = ("train_steps_per_second", "train_seconds")


def write_study(folder: Path, study: dict, name: str = "study.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def without_timing(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    for k in TIMING:
        ds.attrs.pop(k, None)
    return ds


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run of TINY, with the Dataset as it was before writing."""
    folder = tmp_path_factory.mktemp("reference")
    study = write_study(folder, TINY)
    captured = {}
    real = runner_module.write_netcdf

    def capture(ds, path):
        captured["ds"] = ds.copy(deep=True)
        return real(ds, path)

    mp = pytest.MonkeyPatch()
    mp.setattr(runner_module, "write_netcdf", capture)
    try:
        code = main([str(study), "--out", str(folder / "runs"), "--quiet"])
    finally:
        mp.undo()
    assert code == 0
    return folder / "runs" / "tiny", captured["ds"], study


# ------------------------------------------------------------------ a successful run
def test_run_writes_every_output(reference):
    out, _, _ = reference
    for name in ("results.nc", "checkpoint.pt", "study.resolved.yaml", "report.md"):
        assert (out / name).is_file(), name
    for fig in ("loss.png", "frames.png", "error_time.png", "latents.png"):
        assert (out / "figures" / fig).stat().st_size > 1000, fig
    assert not list(out.glob(".*.tmp"))


def test_results_layout(reference):
    out, _, _ = reference
    ds = xr.load_dataset(out / "results.nc")
    assert {"sample", "time", "latent", "factor", "y", "x", "step"} <= set(ds.dims)
    assert ds.sizes["sample"] == 3 and ds.sizes["time"] == 4 and ds.sizes["step"] == 3
    for v in ("frames", "reconstruction", "factors", "enc", "z", "pred", "dec", "loss_total",
              "loss_reconstruction", "reconstruction_mse", "reconstruction_mse_by_time"):
        assert v in ds, v
        assert "long_name" in ds[v].attrs and "units" in ds[v].attrs, v
    assert ds["time"].attrs["units"] == "ms"
    np.testing.assert_array_equal(ds["time"].values, [0, 10, 20, 30])
    np.testing.assert_array_equal(ds["step"].values, [1, 2, 3])
    np.testing.assert_array_equal(ds["reconstruction"].values, ds["dec"].values)
    assert ds.attrs["seed"] == 3 and ds.attrs["device"] == "cpu"
    assert ds.attrs["torch_version"] == torch.__version__
    assert "neurodelay_version" in ds.attrs
    assert yaml.safe_load(ds.attrs["study"])["name"] == "tiny"
    for value in ds.attrs.values():
        assert isinstance(value, (str, int, float, np.integer, np.floating))


def test_results_round_trip_identically(reference):
    out, written, _ = reference
    xr.testing.assert_identical(xr.load_dataset(out / "results.nc"), written)


def test_resolved_study_reloads_to_the_same_study(reference):
    from neurodelay.study import load_study

    out, _, study_file = reference
    assert load_study(out / "study.resolved.yaml") == load_study(study_file)


def test_report_has_speed_numbers_and_figures(reference):
    out, _, _ = reference
    text = (out / "report.md").read_text()
    assert "steps/s" in text and "| training steps | 3 |" in text
    for fig in ("figures/loss.png", "figures/frames.png", "figures/latents.png"):
        assert f"]({fig})" in text
    assert "execution schedule" in text


def test_same_study_seed_and_device_give_identical_results(reference, tmp_path, capsys):
    out, _, study = reference
    code, _, _ = run_cli(capsys, study, "--out", tmp_path, "--quiet")
    assert code == 0
    assert_results_equal(out / "results.nc", tmp_path / "tiny" / "results.nc")  # timing attributes aside


def test_real_subprocess_run(reference, tmp_path):
    out, _, study = reference
    proc = subprocess.run([sys.executable, "-m", "neurodelay.run", str(study), "--out", str(tmp_path), "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert_results_equal(out / "results.nc", tmp_path / "tiny" / "results.nc")


def test_interrupted_run_resumes_and_loses_nothing(reference, tmp_path, capsys, monkeypatch):
    out, _, study = reference
    real_train = runner_module.train

    def interrupted(*args, **kwargs):
        def on_log(step, losses):
            if step == 2:
                raise KeyboardInterrupt

        return real_train(*args, **{**kwargs, "on_log": on_log})

    monkeypatch.setattr(runner_module, "train", interrupted)
    code, _, err = run_cli(capsys, study, "--out", tmp_path, "--quiet")
    assert code == 130 and "--resume" in err
    assert (tmp_path / "tiny" / "checkpoint.pt").exists()
    assert not (tmp_path / "tiny" / "results.nc").exists()
    monkeypatch.setattr(runner_module, "train", real_train)
    code, _, err = run_cli(capsys, study, "--out", tmp_path, "--quiet", "--resume")
    assert code == 0, err
    a = without_timing(xr.load_dataset(out / "results.nc"))
    b = without_timing(xr.load_dataset(tmp_path / "tiny" / "results.nc"))
    xr.testing.assert_equal(a, b)
    ref = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    new = torch.load(tmp_path / "tiny" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(ref[k], new[k]) for k in ref)


def test_a_failing_run_exits_1_with_its_message(tmp_path, capsys, monkeypatch):
    from neurodelay.errors import TrainingError

    def diverge(*args, **kwargs):
        raise TrainingError("training diverged: the reconstruction loss became NaN or infinite at step 2")

    monkeypatch.setattr(runner_module, "train", diverge)
    study = write_study(tmp_path, TINY)
    code, _, err = run_cli(capsys, study, "--out", tmp_path, "--quiet")
    assert code == 1 and "run failed" in err and "at step 2" in err and "Traceback" not in err
    assert not (tmp_path / "tiny" / "results.nc").exists()


def test_dry_run_prints_the_study_and_schedule_and_writes_nothing(tmp_path, capsys):
    study = write_study(tmp_path, TINY)
    code, out, _ = run_cli(capsys, study, "--out", tmp_path / "runs", "--dry-run", "--set", "train.steps=9")
    assert code == 0
    assert "steps: 9" in out
    assert "execution schedule" in out and "steps through time" in out
    assert "world.frames -> enc.in: 1" in out
    assert not (tmp_path / "runs").exists()


def test_set_overrides_reach_the_run(tmp_path, capsys):
    study = write_study(tmp_path, TINY)
    code, _, _ = run_cli(capsys, study, "--out", tmp_path, "--quiet", "--set", "train.steps=1",
                         "--set", "name=tiny1", "--set", "analyses=[]")
    assert code == 0
    ds = xr.load_dataset(tmp_path / "tiny1" / "results.nc")
    assert ds.attrs["trained_steps"] == 1 and ds.sizes["step"] == 1


# ------------------------------------------------------------------ simulate only, names, analyses
LINEAR = {
    "name": "linear",
    "world": {"kind": "moving_circle", "size": 16, "n_frames": 5},
    "circuit": {
        "nodes": {"x": {"kind": "relay"}, "frames": {"kind": "relay"}, "z": {"kind": "blend", "gamma": 0.5},
                  "pred": {"kind": "extrapolator", "alpha": 1.0}},
        "edges": [
            {"source": "world.factors", "target": "x", "delay_ms": 20},
            {"source": "world.factors", "target": "frames"},
            {"source": "x", "target": "z.drive"},
            {"source": "z", "target": "pred", "delay_ms": 10},
            {"source": "pred", "target": "z.prediction"},
        ],
    },
    "evaluate": {"n_sequences": 2},
    "analyses": [],
}


def test_simulate_only_needs_no_objective_and_renames_clashing_nodes(tmp_path, capsys):
    study = write_study(tmp_path, LINEAR)
    code, _, err = run_cli(capsys, study, "--out", tmp_path, "--quiet")
    assert code == 0, err
    out = tmp_path / "linear"
    assert not (out / "checkpoint.pt").exists()
    ds = xr.load_dataset(out / "results.nc")
    assert "node_x" in ds and ds["node_x"].attrs["node"] == "x"
    assert "node_frames" in ds and ds["frames"].dims == ("sample", "time", "y", "x")
    assert not any(v.startswith("loss_") for v in ds.data_vars) and "reconstruction" not in ds
    # the relay delayed by 2 steps holds the first value, then follows the world
    f = ds["factors"].values
    np.testing.assert_array_equal(ds["node_x"].values[:, 2:], f[:, :3])
    assert "training steps | 0" in (out / "report.md").read_text()


def test_registered_analyses_add_variables_and_figures(tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    def mean_latent(results, ctx):
        fig = Figure()
        ax = fig.add_subplot()
        ax.plot(results["time"].values, results["z"].mean(("sample", "latent")).values)
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("mean latent (a.u.)")
        ctx.save_figure(fig, "mean_latent", "Mean latent over time.")
        return xr.Dataset({"mean_latent": results["z"].mean(("sample", "latent"))})

    def broken(results, ctx):
        raise RuntimeError("this analysis is broken")

    monkeypatch.setattr(registry, "ANALYSES", {"mean_latent": mean_latent, "broken": broken})
    monkeypatch.setattr(registry, "available", lambda: dict(registry.ANALYSES))
    study = write_study(tmp_path, {**TINY, "analyses": ["mean_latent"], "train": {"steps": 0}})
    code, _, err = run_cli(capsys, study, "--out", tmp_path, "--quiet")
    assert code == 0, err
    out = tmp_path / "tiny"
    assert "mean_latent" in xr.load_dataset(out / "results.nc")
    assert "figures/mean_latent.png" in (out / "report.md").read_text()

    study = write_study(tmp_path, {**TINY, "name": "all", "analyses": None, "train": {"steps": 0}})
    code, _, err = run_cli(capsys, study, "--out", tmp_path, "--quiet")
    assert code == 1 and "this analysis is broken" in err
    assert "mean_latent" in xr.load_dataset(tmp_path / "all" / "results.nc")
    assert "this analysis is broken" in (tmp_path / "all" / "report.md").read_text()


def test_python_study_runs_like_a_yaml_study(tmp_path, capsys):
    code, _, err = run_cli(capsys, ROOT / "studies" / "custom_circuit.py", "--out", tmp_path, "--quiet",
                           "--set", "train.steps=1", "--set", "train.batch_size=2",
                           "--set", "evaluate.n_sequences=2", "--set", "world.n_frames=5",
                           "--set", "analyses=[]")
    assert code == 0, err
    out = tmp_path / "custom-circuit"
    ds = xr.load_dataset(out / "results.nc")
    assert {"enc", "smooth", "dec", "reconstruction", "loss_total"} <= set(ds.data_vars)
    assert "kind: leaky" in (out / "study.resolved.yaml").read_text()
    assert (out / "report.md").is_file()


# ------------------------------------------------------------------ bad input: exit 2, nothing written
GRAPH = {
    **TINY,
    "circuit": {
        "nodes": {"enc": {"kind": "conv_encoder", "n_latents": 2}, "z": {"kind": "blend", "gamma": 0.25},
                  "pred": {"kind": "extrapolator"}, "dec": {"kind": "conv_decoder", "n_latents": 2}},
        "edges": [{"source": "world.frames", "target": "enc", "delay_ms": 10},
                  {"source": "enc", "target": "z.drive"},
                  {"source": "z", "target": "pred", "delay_ms": 10},
                  {"source": "pred", "target": "z.prediction"},
                  {"source": "z", "target": "dec"}],
    },
}


def _edge(i, **kw):
    edges = [dict(e) for e in GRAPH["circuit"]["edges"]]
    edges[i].update(kw)
    return {**GRAPH, "circuit": {**GRAPH["circuit"], "edges": edges}}


BAD = {
    "unknown key": ({**TINY, "train": {**TINY["train"], "stpes": 3}}, [],
                    ["$.train.stpes", "did you mean 'steps'?"]),
    "wrong type": ({**TINY, "seed": "zero"}, [], ["$.seed", "expected an integer"]),
    "negative delay": (_edge(2, delay_ms=-10), [], ["$.circuit.edges[2].delay_ms", "must be >= 0"]),
    "gamma out of range": ({**TINY, "circuit": {"preset": "inertia", "gamma": 1.5}}, [],
                           ["$.circuit.gamma", "must be in [0, 1]"]),
    "batch_size 0": ({**TINY, "train": {"batch_size": 0}}, [], ["$.train.batch_size", ">= 1, got 0"]),
    "unknown kind": ({**GRAPH, "circuit": {**GRAPH["circuit"], "nodes": {
        **GRAPH["circuit"]["nodes"], "pred": {"kind": "extrapolater"}}}}, [],
        ["$.circuit.nodes.pred.kind", "valid kinds: conv_encoder, conv_decoder, extrapolator, blend, relay"]),
    "edge to a missing node": (_edge(4, target="decoder"), [],
                               ["$.circuit.edges[4].target", "'decoder' does not exist"]),
    "delay off the grid": (_edge(0, delay_ms=25), [],
                           ["$.circuit.edges[0].delay_ms", "not a whole number of steps", "20 or 30 ms"]),
    "zero-delay cycle": (_edge(2, delay_ms=0), [], ["algebraic loop", "pred -> z -> pred"]),
    "--set path": (TINY, ["--set", "train.lrr=0.1"], ["train.lrr", "did you mean 'lr'?"]),
    "sweep path": ({**GRAPH, "sweep": {"circuit.nodes.zz.gamma": [0.0, 0.5]}}, [],
                   ["circuit.nodes.zz.gamma", "did you mean 'z'?"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_study_exits_2_with_its_message_and_writes_nothing(case, tmp_path, capsys):
    raw, extra, texts = BAD[case]
    study = write_study(tmp_path, raw)
    code, out, err = run_cli(capsys, study, "--out", tmp_path / "runs", *extra)
    assert code == 2
    for text in texts:
        assert text in err, (text, err)
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_yaml_syntax_error_reports_its_line(tmp_path, capsys):
    study = tmp_path / "study.yaml"
    study.write_text("name: x\nseed: 0\ncircuit: [preset: inertia\n")
    code, _, err = run_cli(capsys, study, "--out", tmp_path / "runs")
    assert code == 2 and "YAML syntax error at line" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_missing_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, tmp_path / "nope.yaml", "--out", tmp_path / "runs")
    assert code == 2 and "file not found" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu(tmp_path, capsys):
    study = write_study(tmp_path, TINY)
    code, _, err = run_cli(capsys, study, "--out", tmp_path / "runs", "--device", "cuda")
    assert code == 2 and "no CUDA device" in err
    study = write_study(tmp_path, {**TINY, "device": "cuda"})
    code, _, err = run_cli(capsys, study, "--out", tmp_path / "runs")
    assert code == 2 and "no CUDA device" in err
    assert not (tmp_path / "runs").exists()


def test_truncated_checkpoint_on_resume(reference, tmp_path, capsys):
    out, _, study = reference
    run = tmp_path / "tiny"
    run.mkdir()
    data = (out / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(capsys, study, "--out", tmp_path, "--resume", "--quiet")
    assert code == 2 and "cannot resume" in err and "truncated or corrupt" in err
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]


def test_foreign_checkpoint_on_resume(reference, tmp_path, capsys):
    out, _, _ = reference
    other = write_study(tmp_path, {**TINY, "circuit": {**TINY["circuit"], "gamma": 0.25}})
    run = tmp_path / "tiny"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes((out / "checkpoint.pt").read_bytes())
    code, _, err = run_cli(capsys, other, "--out", tmp_path, "--resume", "--quiet")
    assert code == 2 and "belongs to another study" in err and "gamma" in err
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]


def finished_copy(reference, tmp_path) -> Path:
    """A copy of the reference run's folder (checkpoint at its last step, results, report, figures)."""
    out, _, _ = reference
    run = tmp_path / "tiny"
    shutil.copytree(out, run)
    return run


def test_resume_after_changing_evaluate_re_evaluates_without_training(reference, tmp_path, capsys):
    out, _, _ = reference
    run = finished_copy(reference, tmp_path)
    checkpoint = (run / "checkpoint.pt").read_bytes()
    new = write_study(tmp_path, {**TINY, "evaluate": {"n_sequences": 5, "batch_size": 3, "seed": 11}})
    code, _, err = run_cli(capsys, new, "--out", tmp_path, "--resume", "--quiet")
    assert code == 0, err
    assert (run / "checkpoint.pt").read_bytes() == checkpoint  # no training step ran
    ds = xr.load_dataset(run / "results.nc")
    ref = xr.load_dataset(out / "results.nc")
    assert ds.sizes["sample"] == 5 and ref.sizes["sample"] == 3
    assert ds.attrs["trained_steps"] == 3 and ds.attrs["evaluate_seed"] == 11
    xr.testing.assert_identical(ds["loss_total"], ref["loss_total"])  # the checkpoint's training history
    text = (run / "study.resolved.yaml").read_text()
    assert ds.attrs["study"] == text and "n_sequences: 5" in text and "seed: 11" in text
    report = (run / "report.md").read_text()
    assert "n_sequences: 5" in report and "n_sequences: 3" not in report and "resumed" in report


def test_resume_after_changing_analyses_runs_the_new_ones(reference, tmp_path, monkeypatch):
    def mean_latent(results, ctx):
        return xr.Dataset({"mean_latent": results["z"].mean(("sample", "latent"))})

    monkeypatch.setattr(registry, "ANALYSES", {"mean_latent": mean_latent})
    monkeypatch.setattr(registry, "available", lambda: dict(registry.ANALYSES))
    run = finished_copy(reference, tmp_path)
    checkpoint = (run / "checkpoint.pt").read_bytes()
    study = load_study(write_study(tmp_path, {**TINY, "name": "renamed", "analyses": ["mean_latent"]}))
    run_study(study, run, resume=True, quiet=True)
    assert (run / "checkpoint.pt").read_bytes() == checkpoint
    ds = xr.load_dataset(run / "results.nc")
    assert "mean_latent" in ds and ds.attrs["study_name"] == "renamed"
    assert "analyses: [mean_latent]" in ds.attrs["study"] and "name: renamed" in ds.attrs["study"]
    assert ds.attrs["study"] == (run / "study.resolved.yaml").read_text()


@pytest.mark.parametrize("changes, field", [
    ({"train": {**TINY["train"], "lr": 0.01}}, "train.lr (0.001 in the checkpoint, 0.01 in this run)"),
    ({"world": {**TINY["world"], "n_frames": 5}}, "world.n_frames (4 in the checkpoint, 5 in this run)"),
])
def test_resume_after_changing_training_is_refused_naming_the_field(reference, tmp_path, capsys, changes, field):
    run = finished_copy(reference, tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    study = write_study(tmp_path, {**TINY, **changes})
    with pytest.raises(CheckpointError, match="belongs to another study") as caught:
        run_study(load_study(study), run, resume=True, quiet=True)
    assert field in str(caught.value)
    code, _, err = run_cli(capsys, study, "--out", tmp_path, "--resume", "--quiet")
    assert code == 2 and field in err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before  # the old run is untouched


def test_resume_with_more_steps_trains_on_to_the_uninterrupted_runs_numbers(reference, tmp_path, capsys):
    run = finished_copy(reference, tmp_path)  # trained 3 steps
    longer = {**TINY, "train": {**TINY["train"], "steps": 5, "log_every": 2, "checkpoint_every": 4}}
    code, _, err = run_cli(capsys, write_study(tmp_path, longer), "--out", tmp_path, "--resume", "--quiet")
    assert code == 0, err
    fresh = tmp_path / "fresh"
    code, _, err = run_cli(capsys, write_study(fresh.parent, longer, "fresh.yaml"), "--out", fresh, "--quiet")
    assert code == 0, err
    resumed, uninterrupted = xr.load_dataset(run / "results.nc"), xr.load_dataset(fresh / "tiny" / "results.nc")
    assert resumed.attrs["trained_steps"] == uninterrupted.attrs["trained_steps"] == 5
    for name, var in uninterrupted.data_vars.items():
        if "step" not in var.dims:  # the loss history: logged at other steps (below)
            xr.testing.assert_identical(resumed[name], var)
    # the first 3 steps were logged every step, the rest every 2 steps and at the end
    assert resumed["step"].values.tolist() == [1, 2, 3, 4, 5]
    assert uninterrupted["step"].values.tolist() == [1, 2, 4, 5]
    xr.testing.assert_identical(resumed["loss_total"].sel(step=[1, 2, 4, 5]), uninterrupted["loss_total"])
    assert resumed.attrs["study"] == (run / "study.resolved.yaml").read_text() and "steps: 5" in resumed.attrs["study"]


@pytest.mark.parametrize("steps", [2, 0])
def test_resume_with_fewer_steps_than_the_checkpoint_is_refused(reference, tmp_path, capsys, steps):
    run = finished_copy(reference, tmp_path)  # trained 3 steps
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    shorter = write_study(tmp_path, {**TINY, "train": {**TINY["train"], "steps": steps}})
    code, _, err = run_cli(capsys, shorter, "--out", tmp_path, "--resume", "--quiet")
    assert code == 2
    assert f"is at step 3, beyond this run's train.steps = {steps}: a resume can train on, not back" in err
    assert "Set train.steps to 3 or more" in err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
