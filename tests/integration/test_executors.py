"""Sweeps on every executor: same numbers, faults, locking, detach/collect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from neurodelay.executors import (ExecutorSettings, PointJob, SweepLockedError, execute_point, parse_executor,
                                  sweep_lock)
from neurodelay.run import main
from neurodelay.study import load_study
from neurodelay.sweep import collect, expand, run_sweep

STUDY = """\
name: tinyx
seed: 0
world: {kind: moving_circle, size: 16, n_frames: 4}
circuit: {preset: inertia, n_latents: 2, gamma: 0.5}
objective: {reconstruction: gaussian}
train: {steps: STEPS, batch_size: 4, checkpoint_every: 2}
evaluate: {n_sequences: 8}
analyses: []
executor: {name: local, cpus_per_point: 1}
sweep:
  circuit.gamma: [0.0, 0.5]
  seed: [0, 1]
"""


def study_file(tmp_path: Path, steps: int = 2, seeds: bool = True) -> Path:
    """The tiny study: 4 points (gamma x seed), or 2 (gamma alone) without ``seeds``, where each point
    costs a process start (slurm:local runs every point in its own)."""
    path = tmp_path / "tinyx.yaml"
    text = STUDY.replace("STEPS", str(steps))
    path.write_text(text if seeds else text.replace("  seed: [0, 1]\n", ""))
    return path


def numeric(ds: xr.Dataset) -> dict:
    return {k: v.values for k, v in ds.data_vars.items() if np.issubdtype(v.dtype, np.number)}


def test_every_executor_gives_identical_sweep(tmp_path, monkeypatch):
    import torch

    # Results are identical for equal torch thread counts (reductions split
    # differently otherwise): every engine runs points on 1 thread here.
    monkeypatch.setattr(torch, "_nd_threads", torch.get_num_threads(), raising=False)
    torch.set_num_threads(1)
    path = study_file(tmp_path, seeds=False)
    results = {}
    for name in ("local", "processes:2", "dask:local:2", "slurm:local"):
        out = tmp_path / name.replace(":", "_")
        assert main([str(path), "--out", str(out), "--executor", name, "--quiet"]) == 0, name
        with xr.open_dataset(out / "tinyx" / "sweep.nc") as ds:
            assert dict(ds.sizes)["gamma"] == 2 and "seed" not in ds.dims
            results[name] = numeric(ds.load())
    torch.set_num_threads(torch._nd_threads)
    ref = results["local"]
    assert "z" in ref and not np.isnan(ref["z"]).any()
    for name, got in results.items():
        assert got.keys() == ref.keys(), name
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k], err_msg=f"{name}: {k}")


@pytest.fixture
def environ_kept():
    """Undo what a test's own Dask LocalCluster sets in os.environ.

    Its nanny sets OMP_NUM_THREADS=1 (and MKL_/OPENBLAS_NUM_THREADS,
    MALLOC_TRIM_THRESHOLD_, PYTHONHASHSEED) in this process before starting
    each worker and leaves them there; a later test's subprocess would then
    train on one thread (test_cli.py::test_real_subprocess_run).
    """
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_dask_worker_killed_mid_point_is_rerun(tmp_path, environ_kept):
    from distributed import Client, LocalCluster

    study = load_study(study_file(tmp_path, steps=40), [])
    out = tmp_path / "killed" / "tinyx"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            pids = list(client.run(os.getpid).values())
            outcome = {}

            def go():
                outcome["sweep"] = run_sweep(study, out, quiet=True, executor=f"dask:{cluster.scheduler_address}")

            thread = threading.Thread(target=go)
            thread.start()
            deadline = time.time() + 120
            while not list(out.glob("*/checkpoint.pt")) and time.time() < deadline:
                time.sleep(0.05)
            assert list(out.glob("*/checkpoint.pt")), "no point started training"
            os.kill(pids[0], signal.SIGKILL)  # a worker dies mid-point
            thread.join(timeout=300)
    assert not thread.is_alive()
    sweep = outcome["sweep"]
    assert not sweep.failed, [p.error for p in sweep.failed]
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and p.name != "figures") == [
        "gamma=0.0,seed=0", "gamma=0.0,seed=1", "gamma=0.5,seed=0", "gamma=0.5,seed=1"]
    assert not list(out.rglob("*.tmp")), "half-written files left"
    with xr.open_dataset(out / "sweep.nc") as ds:
        assert not np.isnan(ds.z.values).any()


def test_second_sweep_on_same_folder_refuses(tmp_path, capsys):
    path = study_file(tmp_path)
    folder = tmp_path / "runs" / "tinyx"
    with sweep_lock(folder):
        assert main([str(path), "--out", str(tmp_path / "runs"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is being written by another sweep" in err and ".lock" in err
    assert not list(folder.glob("gamma=*")), "the refused sweep wrote points"


def test_stale_lock_is_taken_over(tmp_path):
    import socket

    folder = tmp_path / "f"
    folder.mkdir()
    (folder / ".lock").write_text(f"{socket.gethostname()} 999999999")  # no such process
    with sweep_lock(folder):
        assert (folder / ".lock").read_text().endswith(str(os.getpid()))
    assert not (folder / ".lock").exists()


def test_lock_held_by_live_process_refuses(tmp_path):
    folder = tmp_path / "f"
    with sweep_lock(folder):
        with pytest.raises(SweepLockedError, match=r"being written by another sweep .* delete .*\.lock"):
            with sweep_lock(folder):
                pass


def test_detach_then_collect(tmp_path):
    path = study_file(tmp_path, seeds=False)
    out = tmp_path / "runs"
    assert main([str(path), "--out", str(out), "--executor", "slurm:local", "--detach", "--quiet"]) == 0
    folder = out / "tinyx"
    assert (folder / "jobs.yaml").exists()
    deadline = time.time() + 240
    while len(list(folder.glob("*/results.nc"))) < 2 and time.time() < deadline:
        time.sleep(0.5)
    assert main([str(path), "--out", str(out), "--collect", "--quiet"]) == 0
    with xr.open_dataset(folder / "sweep.nc") as ds:
        assert int(ds.attrs["n_points_with_results"]) == 2


def test_collect_reports_missing_points(tmp_path):
    study = load_study(study_file(tmp_path), [])
    out = tmp_path / "runs" / "tinyx"
    run_sweep(study.__class__(**{**{a.name: getattr(study, a.name) for a in study.__attrs_attrs__}}), out,
              quiet=True)
    import shutil

    shutil.rmtree(out / "gamma=0.5,seed=1")
    outcome = collect(study, out, quiet=True)
    assert [p.point.name for p in outcome.failed] == ["gamma=0.5,seed=1"]
    assert "missing" in (out / "report.md").read_text()


def test_a_failed_points_error_is_written_where_it_ran_and_collect_reports_it(tmp_path):
    study = load_study(study_file(tmp_path), [])
    out = tmp_path / "runs" / "tinyx"
    point = expand(study)[1]
    job = PointJob(study, point, str(out / point.name), device="cuda:7")  # fails at once: no such device
    result = execute_point(job)
    assert result.status == "failed"
    written = (out / point.name / "error.txt").read_text()
    assert written.startswith("ConfigError: ") and "Traceback" in written and "cuda:7" in written
    outcome = collect(study, out, quiet=True)
    by_name = {p.point.name: p for p in outcome.points}
    assert by_name[point.name].status == "failed" and by_name[point.name].error.startswith("ConfigError: ")
    assert {p.status for n, p in by_name.items() if n != point.name} == {"missing"}
    assert "cuda:7" in (out / "report.md").read_text()
    # the point runs again: its old error goes
    execute_point(PointJob(study, point, str(out / point.name)))
    assert (out / point.name / "results.nc").exists() and not (out / point.name / "error.txt").exists()


def test_a_slurm_point_is_requeued_at_its_time_limit_and_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """submitit's time-limit signal arrives after the step-2 checkpoint: the job is requeued (no error.txt,
    no failed result) and the requeued job resumes there and ends with the numbers of an uninterrupted run."""
    from submitit.core import job_environment
    from submitit.core import utils as subutils

    import neurodelay.training.loop
    from neurodelay import executors

    monkeypatch.setattr(executors.jobs, "_requeued", False)
    study = load_study(study_file(tmp_path, steps=4), ["sweep={seed: [0]}"])  # checkpoint_every: 2
    point = expand(study)[0]
    folder = tmp_path / "runs" / point.name
    paths = subutils.JobPaths(tmp_path / ".submitit" / "%j", job_id="5_0")
    paths.folder.mkdir(parents=True)
    delayed = subutils.DelayedSubmission(executors.SlurmPoint(), PointJob(study, point, str(folder)))
    delayed.set_timeout(60, 3)
    requeued = []

    class Environment:  # the job's side of Slurm: requeue asks scontrol, here it is recorded
        global_rank = 0

        def _requeue(self, countdown):
            requeued.append(countdown)

    handler = job_environment.SignalHandler(Environment(), paths, delayed)
    handler.has_timed_out = lambda: True
    previous = signal.signal(signal.SIGUSR2, handler.checkpoint_and_try_requeue)
    saved = neurodelay.training.loop.save_checkpoint

    def save_then_time_out(path, state):
        saved(path, state)
        os.kill(os.getpid(), signal.SIGUSR2)  # the time limit is near: the signal lands in the next step

    monkeypatch.setattr(neurodelay.training.loop, "save_checkpoint", save_then_time_out)
    try:
        with pytest.raises(SystemExit):
            delayed.result()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert requeued == [2]
    assert (folder / "checkpoint.pt").exists()
    assert not (folder / "results.nc").exists() and not (folder / "error.txt").exists()
    monkeypatch.setattr(neurodelay.training.loop, "save_checkpoint", saved)
    again = subutils.DelayedSubmission.load(paths.submitted_pickle)  # what the requeued job runs
    assert isinstance(again.function, executors.SlurmPoint) and again._timeout_countdown == 2
    assert again.result().status == "ok"
    straight = tmp_path / "straight" / point.name
    assert execute_point(PointJob(study, point, str(straight))).status == "ok"
    with xr.open_dataset(folder / "results.nc") as a, xr.open_dataset(straight / "results.nc") as b:
        for name, values in numeric(b).items():
            np.testing.assert_array_equal(numeric(a)[name], values, err_msg=name)


def test_a_point_out_of_requeues_says_how_to_go_on(tmp_path, monkeypatch):
    from submitit.core.utils import UncompletedJobError

    import neurodelay.executors.jobs

    def times_out(*args, **kwargs):
        raise UncompletedJobError("Job not requeued because: timed-out too many times.")

    monkeypatch.setattr(neurodelay.executors.jobs, "run_point", times_out)
    study = load_study(study_file(tmp_path), [])
    point = expand(study)[0]
    result = execute_point(PointJob(study, point, str(tmp_path / point.name)))
    first = result.error.splitlines()[0]
    assert result.status == "failed" and "timed-out too many times" in first, first
    assert "run the sweep again" in first and "executor.time_min" in first, first
    assert (tmp_path / point.name / "error.txt").read_text().splitlines()[0] == first


@pytest.mark.parametrize("group, sig", [(True, signal.SIGINT),
                                        pytest.param(False, signal.SIGINT, marks=pytest.mark.slow),
                                        pytest.param(False, signal.SIGTERM, marks=pytest.mark.slow)],
                         ids=["ctrl-c", "sigint-to-the-sweep-alone", "sigterm-to-the-sweep-alone"])
def test_ctrl_c_stops_a_processes_sweep_promptly_and_keeps_every_step(tmp_path, group, sig):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) on a processes:2 sweep: the points
    not started are cancelled, the running ones end their step and write a checkpoint there, and the command
    exits 130 at once instead of running the rest of the sweep first (it waited for all six points before).
    A SIGINT to the sweep's process alone reaches the workers as SIGTERM, with the same outcome. So does a
    SIGTERM to the sweep's process alone (exit 143), which used to end it at once and leave its workers
    training."""
    _interrupt_a_long_sweep(tmp_path, "processes:2", group, sig,
                            said="SIGINT" if group else "SIGTERM")


@pytest.mark.slow
@pytest.mark.parametrize("group, sig", [(True, signal.SIGINT), (False, signal.SIGINT), (False, signal.SIGTERM),
                                        (True, signal.SIGTERM)],
                         ids=["ctrl-c", "sigint-to-the-sweep-alone", "sigterm-to-the-sweep-alone",
                              "sigterm-to-the-group"])
def test_ctrl_c_stops_a_dask_local_sweep_promptly_and_keeps_every_step(tmp_path, group, sig):
    """The same on dask:local:2, whose points train in worker threads, where training sets no signal handlers.
    A Ctrl-C used to close each worker mid-step (asyncio's SIGINT handler) and its nanny killed it 4 s later;
    a signal to the sweep alone closed the cluster the same way (SIGINT, exit 130) or ended the sweep at once
    (SIGTERM, exit -15, its workers dying with it); either way each point kept only its last regular
    checkpoint (a multiple of 50). Now the sweep's workers stop their points at the end of the step, with a
    checkpoint there, before the cluster is closed."""
    _interrupt_a_long_sweep(tmp_path, "dask:local:2", group, sig, said=signal.Signals(sig).name)


def _interrupt_a_long_sweep(tmp_path, executor: str, group: bool, sig, said: str) -> None:
    """Start a sweep of six long points on ``executor``; once two train, send ``sig`` to its process group
    (``group``) or its process alone; check that it exits promptly with 130 or 143, leaves no process behind,
    and that each point that trained kept the step it reached (training said ``said: training stops``)."""
    path = tmp_path / "long.yaml"
    path.write_text(STUDY.replace("STEPS", "100000").replace("checkpoint_every: 2", "checkpoint_every: 50")
                    .replace("seed: [0, 1]", "seed: [0, 1, 2]"))
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "neurodelay.run", str(path), "--out", str(out),
                             "--executor", executor, "--quiet"], cwd=Path(__file__).resolve().parents[2],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and len(list(out.glob("tinyx/*/checkpoint.pt"))) < 2:
            time.sleep(0.2)  # until both workers are training (a checkpoint every 50 steps)
        t0 = time.time()
        (os.killpg if group else os.kill)(proc.pid, sig)
        _, err = proc.communicate(timeout=120)
        waited = time.time() - t0
        time.sleep(1.0)
        alive = _processes_in_group(proc.pid)  # the workers, if the sweep left them running
    finally:
        if proc.poll() is None or _processes_in_group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not alive, (alive, err)
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
    assert waited < 60, waited
    import torch

    steps = {p.parent.name: torch.load(p, weights_only=True)["step"] for p in out.glob("tinyx/*/checkpoint.pt")}
    started = sorted(p.parent.name for p in out.glob("tinyx/*/study.resolved.yaml"))
    # The two points that were training kept the step they reached (not only their last regular
    # checkpoint, a multiple of 50); a worker may have taken one queued point before the pool was shut;
    # the others never ran.
    assert len(steps) >= 2 and all(50 <= s < 100000 for s in steps.values()), (steps, started, err)
    assert any(s % 50 for s in steps.values()), (steps, err)
    assert len(started) <= 3, (started, err)
    assert f"{said}: training stops" in err, err


def _processes_in_group(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _fake_sacct(tmp_path, monkeypatch, state: str | None) -> None:
    """Put a ``sacct`` on PATH that reports ``state`` for every job (no sacct at all for None)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if state is not None:
        script = bin_dir / "sacct"
        script.write_text(f"#!/bin/sh\necho '{state}'\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))  # only the fake: no real sacct is found either


@pytest.mark.parametrize("state, status, texts", [
    ("TIMEOUT", "failed", ["Slurm job 4242_1 ended TIMEOUT", "raise executor.time_min", "without --collect",
                           "slurmstepd: error: *** JOB 4242 CANCELLED DUE TO TIME LIMIT ***"]),
    ("OUT_OF_MEMORY", "failed", ["ended OUT_OF_MEMORY", "raise executor.mem_gb"]),
    ("CANCELLED by 1000", "failed", ["ended CANCELLED", "scancel"]),
    ("RUNNING", "missing", ["no results yet: Slurm job 4242_1 is RUNNING", "4242_1_0_log.err"]),
    (None, "missing", ["no results yet (Slurm job 4242_1; its state is unknown here"]),
])
def test_collect_says_what_became_of_a_detached_job_that_left_nothing(tmp_path, monkeypatch, state, status, texts):
    """A Slurm job killed from outside (time limit, memory, scancel) writes no error.txt: --collect asks
    sacct and shows the end of the job's log instead of calling the point missing."""
    study = load_study(study_file(tmp_path), [])
    out = tmp_path / "runs" / "tinyx"
    point = expand(study)[1]
    log = out / ".submitit" / "4242_1" / "4242_1_0_log.err"
    log.parent.mkdir(parents=True)
    log.write_text("starting\nslurmstepd: error: *** JOB 4242 CANCELLED DUE TO TIME LIMIT ***\n")
    (out / "jobs.yaml").write_text(f"'{point.name}': '4242_1'\n")
    _fake_sacct(tmp_path, monkeypatch, state)
    outcome = collect(study, out, quiet=True)
    by_name = {p.point.name: p for p in outcome.points}
    got = by_name[point.name]
    assert got.status == status, got
    shown = got.error + "\n" + got.detail
    for text in texts:
        assert text in shown, (text, shown)
    assert {p.status for n, p in by_name.items() if n != point.name} == {"missing"}
    if status == "failed":
        assert "ended" in (out / "report.md").read_text()


def test_collect_reports_an_error_submitit_caught_outside_the_point(tmp_path, monkeypatch):
    import pickle

    study = load_study(study_file(tmp_path), [])
    out = tmp_path / "runs" / "tinyx"
    point = expand(study)[0]
    folder = out / ".submitit" / "77_0"
    folder.mkdir(parents=True)
    with open(folder / "77_0_0_result.pkl", "wb") as f:
        pickle.dump(("error", "Traceback ...\nModuleNotFoundError: No module named 'neurodelay'"), f)
    (out / "jobs.yaml").write_text(f"'{point.name}': '77_0'\n")
    _fake_sacct(tmp_path, monkeypatch, "FAILED")
    got = {p.point.name: p for p in collect(study, out, quiet=True).points}[point.name]
    assert got.status == "failed" and "ModuleNotFoundError: No module named 'neurodelay'" in got.error, got


def test_a_sweep_run_here_forgets_the_job_ids_of_an_earlier_detached_run(tmp_path):
    study = load_study(study_file(tmp_path), ["sweep={seed: [0]}"])
    out = tmp_path / "runs" / "tinyx"
    out.mkdir(parents=True)
    (out / "jobs.yaml").write_text("'seed=0': '99_0'\n")
    run_sweep(study, out, quiet=True, runner=lambda *a, **k: None)
    assert not (out / "jobs.yaml").exists()


@pytest.mark.parametrize("name, message", [
    ("processes:0", "worker count >= 1"),
    ("dask", "give a scheduler address"),
    ("dask:local:x", "worker count >= 1"),
    ("pbs", "is not known; valid: local, processes:N"),
])
def test_bad_executor_names(name, message):
    from neurodelay.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_executor(name)
    with pytest.raises(ValueError, match=message):
        ExecutorSettings(name=name)


def test_executor_flag_needs_a_sweep(tmp_path, capsys):
    path = tmp_path / "single.yaml"
    path.write_text(STUDY.replace("STEPS", "2").split("sweep:")[0])
    assert main([str(path), "--out", str(tmp_path), "--executor", "processes:2", "--quiet"]) == 2
    assert "apply to studies with a sweep section" in capsys.readouterr().err


def test_unavailable_executors_and_a_file_as_out_exit_2_with_the_reason(tmp_path, capsys, monkeypatch):
    import distributed

    path = tmp_path / "sweep.yaml"
    path.write_text(STUDY.replace("STEPS", "2"))
    if not _have_srun():
        assert main([str(path), "--out", str(tmp_path / "a"), "--executor", "slurm", "--quiet"]) == 2
        assert "--executor slurm: Slurm is not available here" in capsys.readouterr().err

    def refuse(address, *a, **kw):
        raise OSError(f"Timed out trying to connect to {address}")

    monkeypatch.setattr(distributed, "Client", refuse)
    assert main([str(path), "--out", str(tmp_path / "b"), "--executor", "dask:tcp://127.0.0.1:1", "--quiet"]) == 2
    assert "no Dask scheduler answered (OSError: Timed out" in capsys.readouterr().err
    (tmp_path / "afile").write_text("")
    assert main([str(path), "--out", str(tmp_path / "afile"), "--quiet"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def _files(folder: Path) -> dict:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def test_a_refused_executor_writes_nothing(tmp_path, capsys, monkeypatch):
    """An executor refused up front (no Slurm here, no Dask scheduler at the address) leaves the output
    folder as it was: absent if it was, and an existing sweep's files (study.resolved.yaml, points that
    the edited study would clear) untouched, no lock left behind."""
    import distributed

    path = study_file(tmp_path)

    def refuse(address, *a, **kw):
        raise OSError(f"Timed out trying to connect to {address}")

    monkeypatch.setattr(distributed, "Client", refuse)
    fresh = tmp_path / "fresh"
    assert main([str(path), "--out", str(fresh), "--executor", "dask:tcp://127.0.0.1:1", "--quiet"]) == 2
    assert "no Dask scheduler answered" in capsys.readouterr().err
    assert not fresh.exists()
    if not _have_srun():
        assert main([str(path), "--out", str(fresh), "--executor", "slurm", "--quiet"]) == 2
        assert "Slurm is not available here" in capsys.readouterr().err
        assert not fresh.exists()

    runs = tmp_path / "runs"
    assert main([str(path), "--out", str(runs), "--quiet"]) == 0
    before = _files(runs)
    assert "tinyx/gamma=0.0,seed=0/results.nc" in before
    # an edited training would clear every point (and rewrite study.resolved.yaml) if the sweep went ahead
    assert main([str(path), "--out", str(runs), "--executor", "dask:tcp://127.0.0.1:1", "--set", "train.lr=0.5",
                 "--quiet"]) == 2
    assert "no Dask scheduler answered" in capsys.readouterr().err
    assert _files(runs) == before


@pytest.mark.parametrize("executor, package, extra", [("dask:local:2", "distributed", "dask"),
                                                       ("slurm:local", "submitit", "slurm")])
def test_an_executor_whose_package_is_missing_is_refused_writing_nothing(tmp_path, capsys, monkeypatch,
                                                                          executor, package, extra):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    out = tmp_path / "runs"
    assert main([str(study_file(tmp_path)), "--out", str(out), "--executor", executor, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--executor {executor} needs the Python package {package}" in err
    assert f"pip install 'neurodelay[{extra}]'" in err and "Traceback" not in err
    assert not out.exists()


def test_a_local_dask_cluster_leaves_the_callers_environment_alone():
    from neurodelay.executors import DaskExecutor

    before = dict(os.environ)
    DaskExecutor("local:1").map([])  # starts and stops a LocalCluster, as every dask:local:N sweep does
    changed = {k: (before.get(k), os.environ.get(k)) for k in set(before) | set(os.environ)
               if before.get(k) != os.environ.get(k)}
    assert not changed


def _have_srun() -> bool:
    import shutil

    return shutil.which("srun") is not None
