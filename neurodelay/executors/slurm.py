"""``slurm`` (and ``slurm:local`` for testing without a cluster): submitit job arrays, one job per point.

Partition, time limit, GPUs per point and array parallelism come from the
study's ``executor:`` block. A job that reaches its time limit is requeued
and resumes from its point's checkpoint (:class:`SlurmPoint`); a detached
sweep's jobs are looked up afterwards (:func:`detached_job_fate`).
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
from pathlib import Path

from ..study import ExecutorSettings
from . import jobs as _jobs
from .jobs import JobResult, PointJob, execute_point, with_threads
from .scripts import ExecutorUnavailable, check_scripts_here, require_extra

__all__ = ["SlurmExecutor", "SlurmPoint", "slurm_job_state", "detached_job_fate"]


class SlurmExecutor:
    """submitit job arrays: one job per point (``slurm:local`` runs them as local processes)."""

    def __init__(self, settings: ExecutorSettings, folder: Path, cluster: str | None = None):
        self.settings = settings
        self.folder = Path(folder)
        self.cluster = cluster

    def check(self, jobs) -> None:
        """Refuse a study script that is gone, submitit not installed, or ``slurm`` where there is no
        Slurm. Writes nothing (submitit's executor, which makes its folder when created, is not made)."""
        name = "slurm:local" if self.cluster == "local" else "slurm"
        check_scripts_here(jobs, name)
        require_extra("submitit", "slurm", name)
        if self.cluster != "local" and shutil.which("srun") is None:
            raise ExecutorUnavailable("--executor slurm: Slurm is not available here (no srun on PATH); use "
                                      "slurm:local to try the jobs as local processes, or processes:N.")

    def _executor(self):
        require_extra("submitit", "slurm", "slurm:local" if self.cluster == "local" else "slurm")
        import submitit

        try:  # submitit creates its folder here
            return submitit.AutoExecutor(folder=str(self.folder / ".submitit" / "%j"), cluster=self.cluster)
        except RuntimeError as exc:  # submitit: 'Could not detect "srun", are you indeed on a slurm cluster?'
            raise ExecutorUnavailable(f"--executor slurm: Slurm is not available here ({exc}); use slurm:local to "
                                      f"try the jobs as local processes, or processes:N.") from exc

    def submit(self, jobs):
        check_scripts_here(jobs, "slurm:local" if self.cluster == "local" else "slurm")
        ex = self._executor()
        s = self.settings
        params = dict(timeout_min=s.time_min, cpus_per_task=s.cpus_per_point or None)
        if self.cluster != "local":
            params.update(slurm_array_parallelism=s.array_parallelism, gpus_per_node=s.gpus_per_point or None,
                          slurm_partition=s.partition, mem_gb=s.mem_gb)
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        threads = s.cpus_per_point or None
        jobs = [with_threads(j, threads) if threads else j for j in jobs]
        return ex.map_array(SlurmPoint(), jobs)

    def map(self, jobs, *, on_result=None):
        submitted = self.submit(jobs)
        out = []
        for job, sj in zip(jobs, submitted):
            try:
                result = sj.result()
            except Exception as exc:  # noqa: BLE001 - a job that failed or was killed
                result = JobResult("failed", f"{type(exc).__name__}: {exc}")
            out.append(result)
            if on_result:
                on_result(job, result)
        return out


class SlurmPoint:
    """:func:`execute_point` as a Slurm job that submitit requeues when it is preempted or reaches its time limit.

    Shortly before a job's time limit (and when Slurm preempts it) submitit
    signals the job, calls :meth:`checkpoint` and requeues the job, which
    then starts again from the point's last checkpoint (``checkpoint.pt``,
    written every ``train.checkpoint_every`` steps): only the steps since
    that checkpoint are done twice. After three time limits in a row (or
    when requeueing fails) the point fails with submitit's reason in its
    ``error.txt``; run the sweep again to go on from the checkpoint.
    """

    def __call__(self, job: PointJob) -> JobResult:
        return execute_point(job)

    def checkpoint(self, job: PointJob):
        """The submission the requeued job runs: the same point, which resumes from its checkpoint."""
        from submitit.helpers import DelayedSubmission

        _jobs._requeued = True  # the SystemExit that ends this process now is submitit's, not the point's
        return DelayedSubmission(self, job)


# Slurm job states (sacct) after which a job runs no more, and what each says about the point.
_SLURM_ENDED = {
    "TIMEOUT": "it reached its time limit: raise executor.time_min",
    "OUT_OF_MEMORY": "it ran out of memory: raise executor.mem_gb",
    "CANCELLED": "it was cancelled (scancel, or by the administrators)",
    "NODE_FAIL": "its node failed",
    "BOOT_FAIL": "its node failed to start",
    "PREEMPTED": "it was preempted and not requeued",
    "DEADLINE": "it reached its deadline",
    "FAILED": "it exited with an error outside the point's run",
    "COMPLETED": "it completed without writing the point's results",
}


def slurm_job_state(job_id: str) -> str | None:
    """The state ``sacct`` gives a Slurm job (``RUNNING``, ``TIMEOUT``, ...), or None if it cannot say."""
    if shutil.which("sacct") is None:
        return None
    try:
        done = subprocess.run(["sacct", "-j", str(job_id), "-X", "-n", "-P", "-o", "State"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    return lines[0].rstrip("+").upper() if done.returncode == 0 and lines else None


def detached_job_fate(out_dir: Path, job_id: str) -> tuple[str, str]:
    """What a detached Slurm job whose point has neither results nor ``error.txt`` tells about it.

    A point's own errors are written to its folder (:func:`execute_point`);
    a job killed from outside (time limit, memory, ``scancel``, a failed
    node) writes nothing there. This looks at submitit's result file in
    ``OUT/.submitit`` and asks ``sacct`` for the job's state. Returns
    ``("failed", why)`` for a job that is over, with the end of its log, and
    ``("missing", what is known)`` for one that is pending, running, or
    whose state cannot be read (no ``sacct`` here).
    """
    paths = _job_paths(Path(out_dir), job_id)
    rerun = ("Run the sweep again (the same command without --collect): points with results are kept, "
             "the others run again.")
    if paths is not None and paths.result_pickle.exists():
        try:
            with open(paths.result_pickle, "rb") as f:
                tag, value = pickle.load(f)
        except Exception:  # noqa: BLE001 - unreadable or half-written: fall back to sacct
            tag, value = None, None
        if tag == "error":
            return "failed", f"Slurm job {job_id} failed outside the point's run. {rerun}\n{value}"
    state = slurm_job_state(job_id)
    log = f"its log: {paths.stderr}" if paths is not None else "no submitit log folder"
    if state in _SLURM_ENDED:
        tail = _tail(paths.stderr) if paths is not None else ""
        return "failed", (f"Slurm job {job_id} ended {state} without the point's results or error: "
                          f"{_SLURM_ENDED[state]}. {rerun} ({log})" + (f"\n{tail}" if tail else ""))
    if state:
        return "missing", f"no results yet: Slurm job {job_id} is {state} ({log})"
    return "missing", f"no results yet (Slurm job {job_id}; its state is unknown here; {log})"


def _job_paths(out_dir: Path, job_id: str):
    try:
        from submitit.core.utils import JobPaths
    except ImportError:
        return None
    return JobPaths(out_dir / ".submitit" / "%j", job_id=str(job_id))


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
