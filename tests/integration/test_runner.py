"""The runner's contract under faults: locks, replaced runs, refused checkpoints, full and read-only disks.

Every case ends with exit status 0, 1 or 2, a message and no traceback, and
never with a half-written folder: a refused checkpoint leaves the folder as
it was, a full disk leaves whole files only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import xarray as xr
import yaml

from neurodelay.run import main

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


def write_study(folder: Path, study: dict, name: str = "study.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def snapshot(folder: Path) -> dict:
    """Every file below ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of TINY: checkpoint at step 3, results, report, figures."""
    folder = tmp_path_factory.mktemp("finished")
    assert main([str(write_study(folder, TINY)), "--out", str(folder / "runs"), "--quiet"]) == 0
    return folder / "runs" / "tiny"


def copy_of(finished, tmp_path) -> Path:
    run = tmp_path / "tiny"
    shutil.copytree(finished, run)
    return run


# ------------------------------------------------------------------------------ 1. the largest seeds run
def test_the_largest_seeds_run_and_are_stored(tmp_path, capsys):
    study = write_study(tmp_path, {**TINY, "seed": 2**64 - 1, "evaluate": {**TINY["evaluate"], "seed": 2**64 - 1},
                                   "train": {**TINY["train"], "steps": 1}})
    code, err = run_cli(capsys, study, "--out", tmp_path / "runs", "--quiet")
    assert code == 0, err
    with xr.open_dataset(tmp_path / "runs" / "tiny" / "results.nc") as ds:
        assert int(ds.attrs["seed"]) == int(ds.attrs["evaluate_seed"]) == 2**64 - 1


# ------------------------------------------------------------------------------ 5. a refused checkpoint touches nothing
def _crafted(ckpt: dict, how: str) -> dict:
    history = ckpt["history"]
    if how == "history shorter than its steps":
        history["total"] = history["total"][:-1]
    elif how == "logged steps beyond the step":
        history["step"] = [1, 2, 9]
    elif how == "a loss term that is no variable name":
        history["../evil name"] = list(history["total"])
    elif how == "a loss term training does not have":  # found at the first step, before anything is written
        history["bogus"] = list(history["total"])
    elif how == "an optimiser state of another shape":
        state = next(iter(ckpt["optimizer"]["state"].values()))
        state["square_avg"] = torch.zeros(7)
    elif how == "another learning rate":
        ckpt["optimizer"]["param_groups"][0]["lr"] = 0.5
    elif how == "random states that cannot be restored":
        ckpt["rng"]["torch"] = torch.zeros(3, dtype=torch.uint8)
    elif how == "NaN weights":
        name = next(iter(ckpt["model"]))
        ckpt["model"][name] = torch.full_like(ckpt["model"][name], float("nan"))
    elif how == "a step that is no count":
        ckpt["step"] = True
    return ckpt


@pytest.mark.parametrize("how, steps", [
    ("history shorter than its steps", 3), ("logged steps beyond the step", 3),
    ("a loss term that is no variable name", 3), ("a loss term training does not have", 5),
    ("an optimiser state of another shape", 5), ("another learning rate", 5),
    ("random states that cannot be restored", 5), ("NaN weights", 3), ("a step that is no count", 3),
])
def test_a_refused_checkpoint_leaves_the_folder_untouched(finished, tmp_path, capsys, how, steps):
    run = copy_of(finished, tmp_path)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save(_crafted(ckpt, how), run / "checkpoint.pt")
    before = snapshot(run)
    assert {"results.nc", "report.md", "checkpoint.pt"} <= set(before) and any(p.startswith("figures") for p in before)
    study = write_study(tmp_path, {**TINY, "train": {**TINY["train"], "steps": steps}})
    code, err = run_cli(capsys, study, "--out", tmp_path, "--resume", "--quiet")
    assert code == 2, err
    assert err.startswith("error: cannot resume: checkpoint") and "run without --resume" in err, err
    assert snapshot(run) == before  # results, report, figures and the checkpoint as they were


# ------------------------------------------------------------------------------ 7. one run per folder
def test_a_run_refuses_a_folder_another_run_holds(tmp_path, capsys):
    from neurodelay._util.files import folder_lock

    out = tmp_path / "runs"
    study = write_study(tmp_path, TINY)
    with folder_lock(out / "tiny", "run"):
        code, err = run_cli(capsys, study, "--out", out, "--quiet")
        assert sorted(p.name for p in (out / "tiny").iterdir()) == [".lock"]
    assert code == 2 and f"{out / 'tiny'} is being written by another run (process {os.getpid()}" in err, err
    assert not any((out / "tiny").iterdir())  # the refused run wrote nothing; the holder removed its lock


def test_two_real_runs_into_one_folder_and_a_killed_holder(tmp_path, capsys):
    """A second run is refused while the first trains; SIGKILL to the first leaves no stale lock behind."""
    out = tmp_path / "runs"
    slow = write_study(tmp_path, {**TINY, "train": {**TINY["train"], "steps": 100_000, "checkpoint_every": 1}},
                       "slow.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "neurodelay.run", str(slow), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (out / "tiny" / "checkpoint.pt").exists():  # training, with the lock held
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        code, err = run_cli(capsys, write_study(tmp_path, TINY), "--out", out, "--quiet")
        assert code == 2 and "is being written by another run" in err and f"process {proc.pid}" in err, err
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    code, err = run_cli(capsys, slow, "--out", out, "--quiet", "--resume", "--set", "train.steps=3")
    assert code in (0, 2), err  # the lock went with its process (2: the checkpoint is already past step 3)
    assert "being written" not in err


# ------------------------------------------------------------------------------ 8. a fresh run replaces the old one
def test_a_rerun_that_trains_nothing_removes_the_old_checkpoint(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    study = write_study(tmp_path, {**TINY, "train": {**TINY["train"], "steps": 0}})
    code, err = run_cli(capsys, study, "--out", tmp_path, "--quiet")
    assert code == 0, err
    assert not (run / "checkpoint.pt").exists()
    with xr.open_dataset(run / "results.nc") as ds:
        assert ds.attrs["trained_steps"] == 0


# ------------------------------------------------------------------------------ 4. no empty folder
def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path, monkeypatch):
    import neurodelay.pipeline.run as runner
    from neurodelay.errors import OutputError
    from neurodelay.study import load_study

    def refuse(folder):
        raise OutputError("no space left on the device holding it")

    monkeypatch.setattr(runner, "check_writable", refuse)
    with pytest.raises(OutputError):
        runner.run_study(load_study(write_study(tmp_path, TINY)), tmp_path / "a" / "b" / "tiny", quiet=True)
    assert not (tmp_path / "a").exists()


def test_a_name_too_long_for_a_folder_is_refused_and_nothing_is_made(tmp_path, capsys):
    code, err = run_cli(capsys, write_study(tmp_path, {**TINY, "name": "n" * 300}), "--out", tmp_path / "runs")
    assert code == 2 and "$.name: name must be at most 100 characters" in err
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------ 6. a full disk, a read-only folder
_FAULTS = textwrap.dedent("""
    import os, subprocess, sys
    from neurodelay.run import main

    study, mnt, ro = sys.argv[1], sys.argv[2], sys.argv[3]

    def fill(folder, leave_blocks):  # a fresh 4 MiB tmpfs, filled but for leave_blocks blocks
        os.makedirs(folder)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", folder], check=True)
        st = os.statvfs(folder)
        with open(os.path.join(folder, "filler"), "wb") as f:
            f.write(bytes((st.f_bavail - leave_blocks) * st.f_frsize))
        return folder

    out = fill(mnt + "/a", 50)  # 200 KiB: the resolved study fits, the first checkpoint does not
    print("CHECKPOINT", main([study, "--out", out, "--quiet"]), sorted(os.listdir(out + "/tiny")))
    out = fill(mnt + "/b", 10)  # 40 KiB: nothing to train, results.nc does not fit
    print("RESULTS", main([study, "--out", out, "--quiet", "--set", "train.steps=0",
                           "--set", "evaluate.n_sequences=64"]), sorted(os.listdir(out + "/tiny")))
    out = fill(mnt + "/c", 50)  # a sweep: each point's first checkpoint does not fit
    print("SWEEP", main([study, "--out", out, "--set", "sweep={seed: [0, 1]}"]))
    subprocess.run(["mount", "--bind", ro, ro], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
    print("READONLY", main([study, "--out", ro + "/runs", "--quiet"]))
""")


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _namespaces_work(), reason="needs user and mount namespaces (unshare -rm) to mount a tmpfs")
def test_a_full_disk_and_a_read_only_folder_fail_with_what_happened(tmp_path):
    (tmp_path / "mnt").mkdir()
    (tmp_path / "ro").mkdir()
    study = write_study(tmp_path, TINY)
    script = tmp_path / "faults.py"
    script.write_text(_FAULTS)
    import neurodelay

    root = str(Path(neurodelay.__file__).resolve().parents[1])  # the neurodelay under test, wherever it is
    proc = subprocess.run(["unshare", "-rm", sys.executable, str(script), str(study), str(tmp_path / "mnt"),
                           str(tmp_path / "ro")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root})
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0 and "Traceback" not in err, err
    labels = ("CHECKPOINT", "RESULTS", "SWEEP", "READONLY")
    lines = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith(labels))
    mnt = tmp_path / "mnt"
    # the first checkpoint did not fit: torch says "enforce fail at inline_container.cc"
    assert lines["CHECKPOINT"] == "1 ['study.resolved.yaml']", out  # whole files only, no temporary left
    assert f"run failed: no space left on the device holding {mnt}/a/tiny" in err and "inline_container" in err
    # results.nc did not fit: netCDF says "HDF error"
    assert lines["RESULTS"] == "1 ['study.resolved.yaml']", out
    assert err.count("no space left on the device holding") == 2 and "NetCDF: HDF error" in err, err
    assert lines["SWEEP"] == "1", out  # both points failed, said without a traceback
    assert "2 of 2 sweep points failed: seed=0, seed=1" in err, err
    assert out.count("failed: OutputError: no space left on the device holding") == 2, out
    assert lines["READONLY"] == "1", out
    assert f"run failed: {tmp_path / 'ro'}/runs/tiny is not writable: its file system" in err and "read-only" in err
