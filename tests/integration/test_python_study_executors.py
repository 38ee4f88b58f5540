"""Python studies that define their own components, run on every executor.

A Python study is loaded by path under a module name (``neurodelay_study_<stem>_<hash>``)
that no other process can import, so a worker must load the script before it
can unpickle the study's own classes.
"""

from __future__ import annotations

import os
import pickle
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from neurodelay import executors
from neurodelay.executors import (DaskExecutor, ExecutorSettings, ExecutorUnavailable, PointJob, ProcessExecutor,
                                  SlurmExecutor, UnloadableJob, execute_point, study_scripts)
from neurodelay.run import main
from neurodelay.study import load_study, script_module_name
from neurodelay.sweep import expand, run_sweep

SCRIPT = '''\
"""A tiny Python study with its own component and a 2-point sweep."""
from typing import ClassVar

import attrs
import torch

from neurodelay import Circuit, ConvDecoder, ConvEncoder, Edge, MovingCircle
from neurodelay.components import AbstractComponent, NodeModule
from neurodelay.training.objectives import Objective
from neurodelay.executors import ExecutorSettings
from neurodelay.study import EvaluateSettings, Study, Sweep
from neurodelay.study import TrainSettings


@attrs.frozen
class Leaky(AbstractComponent):
    kind: ClassVar[str] = "leaky"
    rate: float = 0.5

    def out_shape(self, in_shapes):
        return in_shapes["in"]

    def build(self):
        return _LeakyModule(float(self.rate))


class _LeakyModule(NodeModule):
    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def forward_sequence(self, inputs, valid, ctx):
        x = inputs["in"]
        y, out = x[:, 0], [x[:, 0]]
        for t in range(1, x.shape[1]):
            y = y + self.rate * (x[:, t] - y)
            out.append(y)
        return torch.stack(out, dim=1), {}

    def forward_step(self, inputs, t, valid, state, ctx):
        x = inputs["in"]
        y = x if state is None else state + self.rate * (x - state)
        return y, {}, y


def study():
    return Study(
        name="pystudy", seed=0, dt_ms=10.0,
        world=MovingCircle(size=16, n_frames=4),
        circuit=Circuit(nodes={"enc": ConvEncoder(n_latents=2, size=16), "smooth": Leaky(rate=0.5),
                               "dec": ConvDecoder(n_latents=2, size=16)},
                        edges=[Edge("world.frames", "enc", delay_ms=10.0), Edge("enc", "smooth"),
                               Edge("smooth", "dec")], dt_ms=10.0),
        objective=Objective(reconstruction="gaussian"),
        train=TrainSettings(steps=2, batch_size=4),
        evaluate=EvaluateSettings(n_sequences=4),
        analyses=(),
        sweep=Sweep(grid=(("seed", (0, 1)),)),
        executor=ExecutorSettings(cpus_per_point=1),
    )
'''

@pytest.fixture
def script(tmp_path, monkeypatch):
    """The study script, its module removed from sys.modules again afterwards."""
    path = tmp_path / "pystudy.py"
    path.write_text(SCRIPT)
    monkeypatch.delitem(sys.modules, script_module_name(path), raising=False)
    return path


@pytest.fixture
def environ_kept():
    """Undo what a test's own Dask LocalCluster sets in os.environ (its nanny's OMP_NUM_THREADS=1, ...)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def jobs_with_results(study, folder: Path) -> list[PointJob]:
    """One job per point whose results.nc exists, so a worker that can read the job skips it at once."""
    jobs = []
    for point in expand(study):
        (folder / point.name).mkdir(parents=True)
        (folder / point.name / "results.nc").write_bytes(b"")
        jobs.append(PointJob(study, point, str(folder / point.name)))
    return jobs


def in_thread(fn, timeout: float = 180):
    """fn() in a daemon thread: a worker that cannot read a job hangs a Dask sweep instead of failing it."""
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", fn()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"no result within {timeout} s"
    return box["value"]


def test_the_script_travels_with_the_job(script):
    study = load_study(script)
    assert study_scripts(study) == ((script_module_name(script), str(script.resolve())),)
    job = PointJob(study, expand(study)[0], "f")
    back = pickle.loads(pickle.dumps(job))  # in this process: the loaded module is reused, not run again
    assert back == job and type(back.study.circuit.nodes["smooth"]) is type(study.circuit.nodes["smooth"])


def test_two_scripts_of_one_name_in_different_folders_stay_apart(tmp_path, monkeypatch):
    paths = []
    for folder, rate in (("a", "0.5"), ("b", "0.25")):
        (tmp_path / folder).mkdir()
        path = tmp_path / folder / "pystudy.py"
        path.write_text(SCRIPT.replace('"smooth": Leaky(rate=0.5)', f'"smooth": Leaky(rate={rate})'))
        monkeypatch.delitem(sys.modules, script_module_name(path), raising=False)
        paths.append(path)
    assert script_module_name(paths[0]) != script_module_name(paths[1])
    studies = [load_study(p) for p in paths]  # the second no longer replaces the first's module
    for study, path in zip(studies, paths):
        assert study_scripts(study) == ((script_module_name(path), str(path.resolve())),)
        back = pickle.loads(pickle.dumps(PointJob(study, expand(study)[0], "f")))
        assert back.study == study
    assert [s.circuit.nodes["smooth"].rate for s in studies] == [0.5, 0.25]


def test_a_yaml_study_pickles_as_before(tmp_path):
    path = tmp_path / "y.yaml"
    path.write_text("name: y\ncircuit: {preset: inertia, n_latents: 2}\nobjective: {reconstruction: gaussian}\n"
                    "sweep: {seed: [0, 1]}\n")
    study = load_study(path)
    job = PointJob(study, expand(study)[0], "f")
    assert study_scripts(study) == ()
    assert job.__reduce__()[0] is PointJob


@pytest.mark.parametrize("engine", ["processes", "dask", "slurm"])
def test_every_engine_reads_a_job_of_a_python_study(script, tmp_path, engine, environ_kept):
    study = load_study(script)
    jobs = jobs_with_results(study, tmp_path / "out")
    if engine == "processes":
        runner = ProcessExecutor(1)
    elif engine == "dask":
        runner = DaskExecutor("local:1")
    else:
        runner = SlurmExecutor(ExecutorSettings(name="slurm:local", cpus_per_point=1), tmp_path / "out", "local")
    results = in_thread(lambda: runner.map(jobs))
    assert [r.status for r in results] == ["skipped", "skipped"], [r.error for r in results]


def test_python_study_sweep_on_processes(script, tmp_path):
    out = tmp_path / "runs"
    assert main([str(script), "--out", str(out), "--executor", "processes:1", "--quiet"]) == 0
    with xr.open_dataset(out / "pystudy" / "sweep.nc") as ds:
        assert dict(ds.sizes)["seed"] == 2
        assert not np.isnan(ds["smooth"].values).any()


@pytest.mark.slow
def test_python_study_sweep_gives_identical_numbers_on_every_executor(script, tmp_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # every engine runs points on 1 thread: equal reductions, equal numbers
    try:
        results = {}
        for name in ("local", "processes:2", "dask:local:2", "slurm:local"):
            out = tmp_path / name.replace(":", "_")
            code = in_thread(lambda: main([str(script), "--out", str(out), "--executor", name, "--quiet"]),
                          timeout=300)
            assert code == 0, name
            with xr.open_dataset(out / "pystudy" / "sweep.nc") as ds:
                results[name] = {k: v.values for k, v in ds.load().data_vars.items()
                                 if np.issubdtype(v.dtype, np.number)}
    finally:
        torch.set_num_threads(threads)
    for name, got in results.items():
        for k, ref in results["local"].items():
            np.testing.assert_array_equal(got[k], ref, err_msg=f"{name}: {k}")


def test_a_worker_without_the_script_reports_why(script, monkeypatch, tmp_path):
    study = load_study(script)
    data = pickle.dumps(PointJob(study, expand(study)[0], str(tmp_path / "f")))
    script.rename(script.with_suffix(".moved"))
    monkeypatch.delitem(sys.modules, script_module_name(script))  # as in a fresh worker
    job = pickle.loads(data)
    assert isinstance(job, UnloadableJob)
    result = execute_point(job)
    assert result.status == "failed"
    assert f"the study script {script.resolve()} is not on worker host" in result.error
    assert "file system the workers share" in result.error and "processes:N" in result.error
    # in the point's folder, for --collect:
    assert (tmp_path / "f" / "error.txt").read_text().strip() == result.error.strip()


def test_an_edited_script_is_not_run_with_the_old_study(script, monkeypatch, tmp_path):
    study = load_study(script)
    data = pickle.dumps(PointJob(study, expand(study)[0], str(tmp_path / "f")))
    script.write_text(SCRIPT.replace("rate: float = 0.5", "rate: float = 0.25"))
    monkeypatch.delitem(sys.modules, script_module_name(script))
    job = pickle.loads(data)
    assert isinstance(job, UnloadableJob) and "changed after the sweep was started" in job.error


def test_a_missing_script_is_refused_before_any_point_runs(script, tmp_path):
    study = load_study(script)
    script.unlink()
    with pytest.raises(ExecutorUnavailable, match=r"--executor processes:2: the study script .*pystudy\.py no "
                                                  r"longer exists"):
        run_sweep(study, tmp_path / "runs", quiet=True, executor="processes:2")
    assert not (tmp_path / "runs").exists()  # refused before anything is written


def test_remote_dask_workers_without_the_script_are_refused_up_front(script, tmp_path, monkeypatch, environ_kept):
    from distributed import LocalCluster

    study = load_study(script)
    script.unlink()
    # as if only the workers lacked it:
    monkeypatch.setattr(executors.dask, "check_scripts_here", lambda jobs, name: None)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with pytest.raises(ExecutorUnavailable, match=r"--executor dask:tcp://.*not every worker has it .* lacks "
                                                      r".*pystudy\.py.*file system the workers share"):
            run_sweep(study, tmp_path / "runs", quiet=True, executor=f"dask:{cluster.scheduler_address}")
    assert not (tmp_path / "runs").exists()



def test_classes_of_a_notebook_are_refused_by_processes_up_front(tmp_path, monkeypatch):
    import types

    notebook = types.ModuleType("__main__")  # like Jupyter's: no __file__, no __spec__ name
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    exec(compile(SCRIPT, "<cell>", "exec"), notebook.__dict__)  # noqa: S102 - a notebook cell runs the script
    study = notebook.study()
    assert type(study.circuit.nodes["smooth"]).__module__ == "__main__"
    with pytest.raises(ExecutorUnavailable, match=r"--executor processes:2: the study uses Leaky defined in this "
                                                  r"interactive session .* Move them to a \.py file .* dask:local:N"):
        run_sweep(study, tmp_path / "runs", quiet=True, executor="processes:2")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("executor", ["slurm:local", "processes:1", "local"])
def test_a_point_that_exits_fails_alone_and_says_why(tmp_path, monkeypatch, capsys, executor):
    """A point whose study's own component calls sys.exit fails with that message, on every engine
    (a worker used to die with it: a broken process pool, or a Slurm job with no result), and the
    report's Failures section has the whole error with its traceback."""
    path = tmp_path / "dying.py"
    path.write_text(SCRIPT.replace(
        '        x = inputs["in"]\n        y, out = x[:, 0], [x[:, 0]]',
        '        x = inputs["in"]\n        if self.rate < 0.3:\n'
        '            raise SystemExit(f"leaky: rate {self.rate} is below 0.3")\n'
        '        y, out = x[:, 0], [x[:, 0]]').replace(
        'sweep=Sweep(grid=(("seed", (0, 1)),))', 'sweep=Sweep(grid=(("circuit.nodes.smooth.rate", (0.25,)),))'))
    monkeypatch.delitem(sys.modules, script_module_name(path), raising=False)
    assert main([str(path), "--out", str(tmp_path / "runs"), "--executor", executor]) == 1
    printed = capsys.readouterr().out
    assert re.search(r"failed:? \(?SystemExit: leaky: rate 0\.25 is below 0\.3", printed), printed
    report = (tmp_path / "runs" / "pystudy" / "report.md").read_text()
    table, failures = report.split("## Failures")
    assert "SystemExit: leaky: rate 0.25 is below 0.3 |" in table
    assert "Traceback" in failures and "raise SystemExit" in failures
