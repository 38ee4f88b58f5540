"""Training loop: determinism, history, checkpoints, resume after SIGKILL, NaN handling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch

import neurodelay as nd
from neurodelay._util import perf as _perf
from neurodelay.training.checkpoint import load_checkpoint, save_checkpoint
from neurodelay.errors import CheckpointError, ConfigError, TrainingError
from neurodelay.training.objectives import Objective
from neurodelay.study import TrainSettings
from neurodelay.training import TrainResult, step_seeds, train
from neurodelay.worlds import Episode

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("blob_x", "blob_y", "circle_x", "circle_y", "circle_vx", "circle_vy")
STUDY = "name: tiny\nseed: 7\ntrain: {steps: 8}\n"


class NoiseWorld:
    """A fast stand-in world: frames (sample, 4, 1, 16, 16) = a ramp in x scaled by the first factor.

    Factors are seeded uniform numbers; frames are all NaN for the seeds in ``nan_seeds``.
    """

    frame_shape = (1, 16, 16)
    factor_names = NAMES
    n_factors = 6
    n_frames = 4

    def __init__(self, nan_seeds=()):
        self.nan_seeds = set(nan_seeds)

    def sample(self, n_samples, seed=0, device="cpu"):
        g = torch.Generator().manual_seed(seed)
        factors = torch.rand(n_samples, self.n_frames, 6, generator=g)
        ramp = torch.linspace(0, 1, 16).expand(16, 16)
        frames = factors[:, :, 0, None, None, None] * ramp
        if seed in self.nan_seeds:
            frames = torch.full_like(frames, float("nan"))
        return Episode(frames.to(device), factors.to(device), NAMES)


SETTINGS = TrainSettings(steps=8, batch_size=2, optimizer="rmsprop", lr=1e-3, log_every=1,
                         checkpoint_every=2)
OBJECTIVE = Objective(beta=0.01, prediction=0.1)


def make_module(seed=0):
    circuit = nd.presets.inertia(n_latents=3, size=16, gaussian=True, gamma=0.5)
    return nd.build_seeded(circuit, input_shapes={"world.frames": (1, 16, 16), "world.factors": (6,)},
                           seed=seed)


def run_training(checkpoint_path=None, *, resume=False, settings=SETTINGS, seed=7, world=None,
                 study_text=STUDY, on_log=None, objective=OBJECTIVE):
    module = make_module()
    result = train(module, world or NoiseWorld(), objective, settings, seed=seed,
                   checkpoint_path=checkpoint_path, resume=resume, study_text=study_text, progress=False,
                   on_log=on_log)
    return module, result


def assert_same_parameters(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run with the default settings, its result and final checkpoint."""
    path = tmp_path_factory.mktemp("reference") / "ck.pt"
    module, result = run_training(path)
    return module, result, path


# ---------------------------------------------------------------- basics
def test_step_seeds_depend_only_on_seed_and_step():
    assert step_seeds(3, 10) == step_seeds(3, 10)
    seeds = {step_seeds(s, t) for s in range(3) for t in range(1, 50)}
    assert len(seeds) == 3 * 49
    assert all(0 <= a < 2**63 and 0 <= b < 2**63 for a, b in seeds)


def test_same_seed_same_parameters_and_history(reference):
    m1, r1, _ = reference
    m2, r2 = run_training()
    assert_same_parameters(m1, m2)
    for k in r1.history:
        np.testing.assert_array_equal(r1.history[k], r2.history[k])
    short = TrainSettings(steps=1, batch_size=2)
    m3, _ = run_training(seed=8, settings=short)
    m4, _ = run_training(seed=7, settings=short)
    assert not torch.equal(m3.nodes["enc"].mu.weight, m4.nodes["enc"].mu.weight)


def test_result_and_history():
    settings = TrainSettings(steps=7, batch_size=2, lr=1e-3, log_every=3, checkpoint_every=100)
    logged = []
    _, r = run_training(settings=settings, on_log=lambda s, losses: logged.append((s, losses)))
    assert isinstance(r, TrainResult)
    np.testing.assert_array_equal(r.steps, [1, 3, 6, 7])  # first, every 3rd, last
    assert set(r.history) == {"reconstruction", "kl", "prediction", "total"}
    assert all(v.shape == (4,) and v.dtype == np.float64 for v in r.history.values())
    np.testing.assert_allclose(r.history["total"],
                               r.history["reconstruction"] + r.history["kl"] + r.history["prediction"],
                               rtol=1e-5)
    assert [s for s, _ in logged] == [1, 3, 6, 7]
    assert logged[-1][1]["total"] == r.history["total"][-1]
    assert r.final_step == 7 and r.seconds > 0 and r.steps_per_second > 0


def test_training_reduces_the_loss():
    settings = TrainSettings(steps=15, batch_size=4, lr=1e-3, log_every=1, checkpoint_every=100)
    _, r = run_training(settings=settings, objective=Objective())
    assert r.history["total"][-5:].mean() < 0.6 * r.history["total"][0]


def test_adam_and_grad_clip():
    settings = TrainSettings(steps=3, batch_size=2, optimizer="adam", lr=1e-3, grad_clip=0.5, log_every=1)
    m, r = run_training(settings=settings)
    assert r.final_step == 3 and np.isfinite(r.history["total"]).all()


#: bf16 keeps 8 bits of mantissa: the first step's summed loss agrees with float32 to well within 2 %.
BF16_RTOL = 0.02


def test_bfloat16_precision_trains_with_float32_parameters_and_a_close_loss():
    settings = TrainSettings(steps=6, batch_size=4, lr=1e-3, log_every=1, checkpoint_every=100)
    m32, r32 = run_training(settings=settings, objective=Objective())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m16, r16 = run_training(settings=attrs.evolve(settings, precision="bfloat16"),
                                objective=Objective())
    # A CPU without bf16 units emulates it, much slower than float32: the user is told so.
    slow = [w for w in caught if "no bf16 units" in str(w.message)]
    assert len(slow) == (0 if _perf.bf16_native("cpu") else 1)
    first32, first16 = r32.history["total"][0], r16.history["total"][0]
    assert abs(first16 - first32) <= BF16_RTOL * abs(first32)
    assert first16 != first32  # the forward pass really ran in bf16
    assert all(p.dtype == torch.float32 for p in m16.parameters())
    assert np.isfinite(r16.history["total"]).all() and r16.history["total"][-1] < first16


def test_precision_must_be_float32_or_bfloat16():
    with pytest.raises(ValueError, match="precision"):
        TrainSettings(precision="float16")


def test_zero_steps_trains_nothing(tmp_path):
    m0 = make_module()
    m, r = run_training(tmp_path / "ck.pt", settings=TrainSettings(steps=0))
    assert r.final_step == 0 and r.steps.size == 0 and r.history == {}
    assert not (tmp_path / "ck.pt").exists()
    assert_same_parameters(m, m0)


def test_objective_checked_up_front():
    with pytest.raises(ConfigError, match=r"objective.reconstruct: node 'nope'"):
        run_training(objective=Objective(reconstruct="nope"))


def test_real_world_smoke():
    world = nd.MovingCircle(size=16, n_frames=4)  # the prediction term's first step is 3
    settings = TrainSettings(steps=2, batch_size=2, lr=1e-3, log_every=1)
    _, r = run_training(world=world, settings=settings)
    assert r.final_step == 2 and np.isfinite(r.history["total"]).all()


# ---------------------------------------------------------------- checkpoints
def test_checkpoint_contents_load_weights_only(reference):
    m, r, path = reference
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["format"] == "neurodelay-checkpoint" and ckpt["step"] == 8 and ckpt["seed"] == 7
    assert ckpt["study_text"] == STUDY
    assert set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert ckpt["history"]["step"] == list(range(1, 9))
    assert ckpt["history"]["total"] == list(r.history["total"])
    for k, v in m.state_dict().items():
        assert torch.equal(ckpt["model"][k], v)
    assert ckpt["optimizer"]["state"]
    assert not [p for p in path.parent.iterdir() if p.name != "ck.pt"]  # no temporary files left


def test_resume_from_finished_checkpoint_returns_its_history(reference, tmp_path):
    m1, r1, ref_path = reference
    path = tmp_path / "ck.pt"
    path.write_bytes(ref_path.read_bytes())
    m2, r2 = run_training(path, resume=True)
    assert_same_parameters(m1, m2)
    assert r2.final_step == 8 and r2.steps_per_second == 0.0
    np.testing.assert_array_equal(r2.history["total"], r1.history["total"])
    # the run's training time survives the resume: the time the checkpoint recorded at its last step
    # (the original run's loop also timed the writing of that checkpoint, so it is a little longer)
    recorded = load_checkpoint(path)["train_seconds"]
    assert r1.timed_steps == r2.timed_steps == 8
    assert 0 < recorded <= r1.total_seconds
    assert r2.total_seconds == pytest.approx(recorded, abs=0.05)
    assert r2.run_steps_per_second == pytest.approx(8 / r2.total_seconds)


def test_resume_midway_adds_the_time_of_both_parts(tmp_path):
    path = tmp_path / "ck.pt"
    first = TrainSettings(steps=4, batch_size=2, lr=1e-3, log_every=1, checkpoint_every=2)
    _, r1 = run_training(path, settings=first)
    recorded = load_checkpoint(path)["train_seconds"]
    assert r1.timed_steps == 4 and 0 < recorded <= r1.total_seconds
    _, r2 = run_training(path, resume=True)  # SETTINGS: 8 steps
    assert r2.timed_steps == 8
    assert r2.total_seconds == pytest.approx(recorded + r2.seconds)


def test_resume_with_more_steps_reaches_the_uninterrupted_parameters(reference, tmp_path):
    path = tmp_path / "ck.pt"
    short = attrs.evolve(SETTINGS, steps=3, log_every=2, checkpoint_every=5)
    run_training(path, settings=short, study_text=STUDY.replace("steps: 8", "steps: 3, log_every: 2"))
    assert load_checkpoint(path)["step"] == 3
    # the study text says 8 steps, logging every step: both may differ from the checkpoint's
    resumed, result = run_training(path, resume=True)
    uninterrupted, full, _ = reference
    assert_same_parameters(resumed, uninterrupted)
    assert result.final_step == 8 and result.steps.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    np.testing.assert_array_equal(result.history["total"][2:], full.history["total"][2:])


def test_resume_with_fewer_steps_than_the_checkpoint_is_refused(reference, tmp_path):
    path = tmp_path / "ck.pt"
    path.write_bytes(reference[2].read_bytes())  # at step 8
    with pytest.raises(CheckpointError, match=r"is at step 8, beyond this run's train.steps = 5: a resume can "
                                              r"train on, not back\. Set train.steps to 8 or more"):
        run_training(path, resume=True, settings=attrs.evolve(SETTINGS, steps=5),
                     study_text=STUDY.replace("steps: 8", "steps: 5"))


def test_resume_without_checkpoint_starts_afresh(tmp_path):
    short = TrainSettings(steps=2, batch_size=2, checkpoint_every=5)
    stale = tmp_path / ".missing.pt.abc123.tmp"  # left by a writer killed mid-write
    stale.write_bytes(b"partial")
    m1, _ = run_training(settings=short)
    m2, r2 = run_training(tmp_path / "missing.pt", resume=True, settings=short)
    assert_same_parameters(m1, m2)
    assert r2.final_step == 2 and load_checkpoint(tmp_path / "missing.pt")["step"] == 2
    assert not stale.exists()
    with pytest.raises(ConfigError, match="resume=True needs checkpoint_path"):
        run_training(resume=True, settings=short)


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "ck.pt"
    run_training(path, settings=TrainSettings(steps=2, batch_size=2, log_every=1))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"is truncated or corrupt .*delete it to start afresh, or run "
                                              r"without --resume"):
        run_training(path, resume=True, settings=TrainSettings(steps=2, batch_size=2, log_every=1))
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"truncated or corrupt"):
        load_checkpoint(path)


def test_foreign_checkpoint(tmp_path):
    path = tmp_path / "ck.pt"
    settings = TrainSettings(steps=2, batch_size=2, log_every=1)
    run_training(path, settings=settings)
    other = STUDY.replace("steps: 8", "steps: 8, lr: 0.01")
    with pytest.raises(CheckpointError, match=r"belongs to another study.* at train.lr \(absent in the checkpoint, "
                                              r"0.01 in this run\)\. Only name, device, .*executor and "
                                              r"train.steps, train.log_every, train.checkpoint_every may change.*"
                                              r"delete it to start afresh, or run without --resume"):
        run_training(path, resume=True, settings=settings, study_text=other)
    # the name is not part of training: a renamed study resumes
    run_training(path, resume=True, settings=settings, study_text=STUDY.replace("tiny", "other"))
    with pytest.raises(CheckpointError, match=r"written with seed 7, this run has seed 8"):
        run_training(path, resume=True, settings=settings, seed=8)
    save_checkpoint(path, {"hello": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"lacks step, seed"):
        load_checkpoint(path)
    torch.save({"a": 1}, path)
    with pytest.raises(CheckpointError, match=r"is not a neurodelay checkpoint"):
        load_checkpoint(path)


def test_checkpoint_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "ck.pt"
    torch.save({"format": "neurodelay-checkpoint", "obj": NoiseWorld()}, path)  # a pickled object
    with pytest.raises(CheckpointError, match=r"truncated or corrupt"):
        load_checkpoint(path)


_KILLED_RUN = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[2]))
from tests.unit.test_train import run_training

def on_log(step, losses):
    if step == 5:  # the checkpoint of step 4 is on disk; step 5 has updated the parameters
        print("READY", flush=True)
        time.sleep(300)

run_training(sys.argv[1], on_log=on_log)
print("FINISHED", flush=True)
"""


def test_resume_after_sigkill_is_bit_identical(reference, tmp_path):
    path = tmp_path / "ck.pt"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(path), str(torch.get_num_threads())],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert torch.load(path, weights_only=True)["step"] == 4

    resumed, r_resumed = run_training(path, resume=True)
    uninterrupted, r_full, _ = reference
    assert_same_parameters(resumed, uninterrupted)
    np.testing.assert_array_equal(r_resumed.steps, r_full.steps)
    for k in r_full.history:
        np.testing.assert_array_equal(r_resumed.history[k], r_full.history[k])
    assert r_resumed.final_step == 8


@pytest.mark.parametrize("sig, at", [(signal.SIGINT, 3), (signal.SIGTERM, 3), (signal.SIGINT, 4)])
def test_a_signal_stops_at_the_end_of_the_step_with_a_checkpoint_there(reference, tmp_path, sig, at):
    """Ctrl-C (or SIGTERM) between checkpoints (every 2 steps here) keeps every step trained: the step ends,
    its checkpoint is written, and the resumed run ends bit-identical to the uninterrupted one."""
    from neurodelay.errors import TrainingInterrupted

    path = tmp_path / "ck.pt"

    def send(step, losses):
        if step == at:
            os.kill(os.getpid(), sig)

    before = signal.getsignal(sig)
    with pytest.raises(TrainingInterrupted, match=rf"interrupted \({sig.name}\) after step {at}; checkpoint "
                                                   rf".*ck.pt' holds step {at}: resume") as info:
        run_training(path, on_log=send)
    assert (info.value.step, info.value.checkpoint, info.value.signal_name) == (at, str(path), sig.name)
    assert isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(sig) is before  # the handlers are as they were
    assert torch.load(path, weights_only=True)["step"] == at
    resumed, r_resumed = run_training(path, resume=True)
    uninterrupted, r_full, _ = reference
    assert_same_parameters(resumed, uninterrupted)
    for k in r_full.history:
        np.testing.assert_array_equal(r_resumed.history[k], r_full.history[k])


@pytest.mark.parametrize("first, second", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGTERM),
                                           (signal.SIGTERM, signal.SIGINT)])
def test_a_sigterm_is_kept_and_a_repeated_one_still_waits_for_the_step(tmp_path, first, second):
    """A process pool terminating its workers may send SIGTERM more than once: training still ends its step
    and writes its checkpoint, and the interruption is reported as SIGTERM (the process is to end)."""
    from neurodelay.errors import TrainingInterrupted

    path = tmp_path / "ck.pt"

    def send(step, losses):
        if step == 3:
            os.kill(os.getpid(), first)
            os.kill(os.getpid(), second)

    with pytest.raises(TrainingInterrupted) as info:
        run_training(path, on_log=send)
    assert (info.value.step, info.value.signal_name) == (3, "SIGTERM")
    assert torch.load(path, weights_only=True)["step"] == 3


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    path = tmp_path / "ck.pt"

    def send_twice(step, losses):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt) as info:
        run_training(path, on_log=send_twice)
    assert type(info.value) is KeyboardInterrupt
    assert torch.load(path, weights_only=True)["step"] == 2  # the last regular checkpoint
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used, from /proc; wall time where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return time.time()


def test_cli_ctrl_c_keeps_the_steps_trained_and_resume_goes_on(tmp_path):
    """The CLI: SIGINT mid-training exits 130 with a checkpoint at the step it reached, though the study's
    checkpoint_every is beyond it; --resume goes on from that step."""
    study = tmp_path / "s.yaml"
    study.write_text("name: s\nseed: 0\nworld: {kind: moving_circle, size: 16, n_frames: 4}\n"
                     "circuit: {preset: inertia, n_latents: 2}\nobjective: {reconstruction: gaussian}\n"
                     "train: {steps: 100000, batch_size: 2, checkpoint_every: 1000000}\n"
                     "evaluate: {n_sequences: 4}\nanalyses: []\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "neurodelay.run", str(study), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        # Wait until training runs, then interrupt: the run folder exists, then the process has had 3 s of CPU
        # (not of wall time: on a loaded machine 3 s of wall time did not always reach the first step).
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if (out / "s" / "study.resolved.yaml").exists():
                start = _cpu_seconds(proc.pid)
                while time.time() < deadline and proc.poll() is None and _cpu_seconds(proc.pid) - start < 3.0:
                    time.sleep(0.2)
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    step = torch.load(out / "s" / "checkpoint.pt", weights_only=True)["step"]
    assert 1 <= step < 100000, step
    assert f"after step {step}" in err and "--resume" in err, err
    from neurodelay.run import main

    assert main([str(study), "--out", str(out), "--resume", "--quiet", "--set", f"train.steps={step + 1}"]) == 0
    assert torch.load(out / "s" / "checkpoint.pt", weights_only=True)["step"] == step + 1
    assert (out / "s" / "results.nc").exists()


# ---------------------------------------------------------------- non-finite losses
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    path = tmp_path / "ck.pt"
    world = NoiseWorld(nan_seeds={step_seeds(7, 3)[0]})  # step 3 sees NaN frames
    settings = TrainSettings(steps=8, batch_size=2, lr=1e-3, log_every=5, checkpoint_every=2)
    with pytest.raises(TrainingError, match=r"the reconstruction loss became NaN or infinite at step 3; the "
                                            r"last good checkpoint \(step 2\), .*ck.pt', is kept"):
        run_training(path, world=world, settings=settings, objective=Objective())
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 2  # found at step 4, before its checkpoint was written
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_nan_before_any_checkpoint():
    world = NoiseWorld(nan_seeds={step_seeds(7, 1)[0]})
    with pytest.raises(TrainingError, match=r"at step 1; no checkpoint was written"):
        run_training(world=world, settings=TrainSettings(steps=3, batch_size=2), objective=Objective())


def test_huge_learning_rate_diverges():
    settings = TrainSettings(steps=40, batch_size=2, lr=1e12, log_every=4)
    with pytest.raises(TrainingError, match=r"became NaN or infinite at step \d+"):
        run_training(settings=settings, objective=Objective(reconstruction="gaussian", beta=1.0))


def test_results_and_checkpoints_get_the_umasks_file_mode(tmp_path):
    """The atomic writers go through a private temporary file (mode 0600);
    the file they leave has the mode a plain open() would give it."""
    import xarray as xr

    from neurodelay.record import write_netcdf

    old = os.umask(0o022)
    try:
        write_netcdf(xr.Dataset({"a": ("x", np.arange(3.0))}), tmp_path / "r.nc")
        save_checkpoint(tmp_path / "c.pt", {"step": 1})
        os.umask(0o077)
        write_netcdf(xr.Dataset({"a": ("x", np.arange(3.0))}), tmp_path / "private.nc")
    finally:
        os.umask(old)
    assert (tmp_path / "r.nc").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.nc").stat().st_mode & 0o777 == 0o600


def test_checkpoint_path_and_on_log_are_checked_before_any_step(tmp_path):
    calls = []

    def count(step, losses):
        calls.append(step)

    with pytest.raises(ConfigError,
                       match=r"checkpoint_path .* is a directory; give a file in it, e.g. .*checkpoint.pt"):
        run_training(tmp_path, on_log=count)
    with pytest.raises(TypeError, match=r"on_log must be a function on_log\(step, losses\) or None, got 5"):
        run_training(tmp_path / "c.pt", on_log=5)
    assert calls == [] and not (tmp_path / "c.pt").exists()


def test_request_stop_ends_a_training_in_another_thread_at_the_end_of_its_step(tmp_path):
    """A training running outside the main thread (a Dask worker's) sets no signal handler; request_stop
    stops it as a signal would: the step ends, a checkpoint is written there, TrainingInterrupted is raised
    in its thread. A request made before the training starts stops it after its first step."""
    import threading

    from neurodelay.errors import TrainingInterrupted
    from neurodelay.training import cancel_stop, request_stop

    caught, steps_seen = {}, []
    started = threading.Event()

    def on_log(step, losses):
        steps_seen.append(step)
        if step == 3:
            started.set()
            time.sleep(0.3)  # the request lands during this step

    def run(path, pending=False):
        if pending:
            request_stop(threading.get_ident(), "SIGTERM")
        try:
            run_training(path, settings=attrs.evolve(SETTINGS, steps=1000), on_log=on_log)
        except TrainingInterrupted as exc:
            caught[path.name] = exc
        finally:
            cancel_stop(threading.get_ident())

    worker = threading.Thread(target=run, args=(tmp_path / "a.pt",))
    worker.start()
    assert started.wait(60)
    request_stop(worker.ident, "SIGINT")
    worker.join(60)
    exc = caught["a.pt"]
    assert exc.signal_name == "SIGINT" and exc.step == 3
    assert torch.load(tmp_path / "a.pt", weights_only=True)["step"] == 3
    early = threading.Thread(target=run, args=(tmp_path / "b.pt", True))
    early.start()
    early.join(60)
    assert caught["b.pt"].signal_name == "SIGTERM" and caught["b.pt"].step == 1
    with pytest.raises(ValueError, match=r"signal_name must be 'SIGINT' or 'SIGTERM', got 'SIGKILL'"):
        request_stop(worker.ident, "SIGKILL")
