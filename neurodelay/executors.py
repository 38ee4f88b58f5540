"""Executors: hand sweep points to an engine that runs them.

neurodelay schedules nothing itself. Every executor runs the same pure point
job (:func:`execute_point`: one study, one point, one folder, results written
atomically by the runner) and returns one outcome per point; the sweep is
combined and reported the same way whatever ran it.

``local``
    One point after another in this process.
``processes:N``
    N worker processes on this machine, each limited to cores / N torch
    threads.
``dask:ADDRESS`` / ``dask:local:N``
    A Dask distributed client connected to a running scheduler, or a
    ``LocalCluster`` of N single-threaded worker processes. A worker killed
    mid-point is replaced and the point reruns elsewhere.
``slurm`` (and ``slurm:local`` for testing without a cluster)
    submitit job arrays, one job per point; partition, time limit, GPUs per
    point and array parallelism come from the study's ``executor:`` block.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import attrs

from .errors import ConfigError

__all__ = ["ExecutorSettings", "PointJob", "execute_point", "parse_executor", "make_executor",
           "sweep_lock", "SweepLockedError"]


def _non_negative_int(inst, attr, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{attr.name} must be an integer >= 0, got {value!r}.")


@attrs.frozen
class ExecutorSettings:
    """The study's ``executor:`` block.

    Parameters
    ----------
    name : str
        ``local``, ``processes:N``, ``dask:ADDRESS``, ``dask:local:N``,
        ``slurm`` or ``slurm:local``.
    partition : str or None
        Slurm partition.
    time_min : int
        Slurm time limit per point, in minutes.
    gpus_per_point : int
        GPUs per Slurm job.
    cpus_per_point : int
        CPU cores per Slurm job.
    array_parallelism : int
        Most Slurm jobs of the array running at once.
    mem_gb : int or None
        Memory per Slurm job in GB.
    """

    name: str = "local"
    partition: str | None = None
    time_min: int = attrs.field(default=60, validator=_non_negative_int)
    gpus_per_point: int = attrs.field(default=0, validator=_non_negative_int)
    cpus_per_point: int = attrs.field(default=2, validator=_non_negative_int)
    array_parallelism: int = attrs.field(default=32, validator=_non_negative_int)
    mem_gb: int | None = attrs.field(default=None, validator=_non_negative_int)

    def __attrs_post_init__(self):
        parse_executor(self.name)


@dataclass(frozen=True)
class PointJob:
    """Everything one point needs: picklable, sent to workers as is."""

    study: object  # neurodelay.study.Study
    point: object  # neurodelay.sweep.Point
    folder: str
    resume: bool = False
    device: str | None = None
    threads: int | None = None


@dataclass
class JobResult:
    """What a worker reports back for one point."""

    status: str  # "ok" | "failed" | "skipped"
    error: str = ""
    seconds: float = 0.0
    host: str = field(default_factory=socket.gethostname)


def execute_point(job: PointJob) -> JobResult:
    """Run one point; never raises for a failing point (the error is returned).

    A point whose ``results.nc`` exists is skipped. Results are written
    atomically by the runner, so a worker killed mid-point leaves no
    half-written ``results.nc`` and the point can simply run again.
    """
    from .sweep import run_point

    folder = Path(job.folder)
    if (folder / "results.nc").exists():
        return JobResult("skipped")
    import torch

    threads = torch.get_num_threads()
    if job.threads:
        torch.set_num_threads(job.threads)
    t0 = time.perf_counter()
    try:
        run_point(job.study, job.point, folder, resume=job.resume or _has_checkpoint(folder),
                  device=job.device, quiet=True)
    except Exception as exc:  # noqa: BLE001 - reported, the other points go on
        detail = traceback.format_exc(limit=3)
        return JobResult("failed", f"{type(exc).__name__}: {exc}\n{detail}", time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)  # when run in the calling process, leave its setting as it was
    return JobResult("ok", "", time.perf_counter() - t0)


def _has_checkpoint(folder: Path) -> bool:
    return (folder / "checkpoint.pt").exists()


def parse_executor(name: str) -> tuple[str, str]:
    """Split an executor name into (kind, argument), checking it.

    Raises
    ------
    ConfigError
        For an unknown executor or a bad argument.
    """
    text = str(name).strip()
    kind, _, arg = text.partition(":")
    valid = "local, processes:N, dask:ADDRESS, dask:local:N, slurm or slurm:local"
    if kind == "local" and not arg:
        return kind, ""
    if kind == "processes":
        if not arg.isdigit() or int(arg) < 1:
            raise ConfigError(f"executor {text!r}: processes needs a worker count >= 1, e.g. processes:2.")
        return kind, arg
    if kind == "dask":
        if not arg:
            raise ConfigError(f"executor {text!r}: give a scheduler address (dask:tcp://host:8786) "
                              f"or dask:local:N for a local cluster of N workers.")
        if arg.startswith("local"):
            n = arg.partition(":")[2]
            if not n.isdigit() or int(n) < 1:
                raise ConfigError(f"executor {text!r}: dask:local needs a worker count >= 1, e.g. dask:local:2.")
        return kind, arg
    if kind == "slurm" and arg in ("", "local"):
        return kind, arg
    raise ConfigError(f"executor {text!r} is not known; valid: {valid}.")


class LocalExecutor:
    """One point after another in this process."""

    def map(self, jobs: list[PointJob], *, on_result=None) -> list[JobResult]:
        out = []
        for job in jobs:
            result = execute_point(job)
            out.append(result)
            if on_result:
                on_result(job, result)
        return out


class ProcessExecutor:
    """N worker processes on this machine, cores / N torch threads each."""

    def __init__(self, n_workers: int):
        self.n_workers = n_workers

    def map(self, jobs, *, on_result=None):
        import concurrent.futures as cf
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // self.n_workers)
        jobs = [attrs_evolve_threads(j, threads) for j in jobs]
        results: dict[int, JobResult] = {}
        with cf.ProcessPoolExecutor(self.n_workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(execute_point, job): i for i, job in enumerate(jobs)}
            for fut in cf.as_completed(futures):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except Exception as exc:  # noqa: BLE001 - a worker that died
                    results[i] = JobResult("failed", f"worker process died: {type(exc).__name__}: {exc}")
                if on_result:
                    on_result(jobs[i], results[i])
        return [results[i] for i in range(len(jobs))]


def attrs_evolve_threads(job: PointJob, threads: int) -> PointJob:
    return PointJob(job.study, job.point, job.folder, job.resume, job.device, threads)


class DaskExecutor:
    """Points as tasks on a Dask distributed cluster."""

    def __init__(self, address: str):
        self.address = address

    @contextmanager
    def _client(self):
        from distributed import Client, LocalCluster

        if self.address.startswith("local"):
            n = int(self.address.partition(":")[2])
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
                with Client(cl) as client:
                    yield client
        else:
            try:
                client = Client(self.address)
            except (OSError, TimeoutError) as exc:
                raise ExecutorUnavailable(
                    f"--executor dask:{self.address}: no Dask scheduler answered ({type(exc).__name__}: {exc}); "
                    f"start one there (dask scheduler, dask worker) or use dask:local:N.") from exc
            with client:
                yield client

    def map(self, jobs, *, on_result=None):
        from distributed import as_completed

        with self._client() as client:
            n_workers = max(1, len(client.scheduler_info().get("workers", {})) or 1)
            threads = max(1, (os.cpu_count() or 1) // n_workers) if self.address.startswith("local") else None
            jobs = [attrs_evolve_threads(j, threads) if threads else j for j in jobs]
            futures = client.map(execute_point, jobs, pure=False, retries=2)
            index = {f.key: i for i, f in enumerate(futures)}
            results: dict[int, JobResult] = {}
            for fut in as_completed(futures):
                i = index[fut.key]
                try:
                    results[i] = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after retries
                    results[i] = JobResult("failed", f"{type(exc).__name__}: {exc}")
                if on_result:
                    on_result(jobs[i], results[i])
            return [results[i] for i in range(len(jobs))]


class SlurmExecutor:
    """submitit job arrays: one job per point (``slurm:local`` runs them as local processes)."""

    def __init__(self, settings: ExecutorSettings, folder: Path, cluster: str | None = None):
        self.settings = settings
        self.folder = Path(folder)
        self.cluster = cluster

    def submit(self, jobs):
        import submitit

        try:
            ex = submitit.AutoExecutor(folder=str(self.folder / ".submitit" / "%j"), cluster=self.cluster)
        except RuntimeError as exc:  # submitit: 'Could not detect "srun", are you indeed on a slurm cluster?'
            raise ExecutorUnavailable(f"--executor slurm: Slurm is not available here ({exc}); use slurm:local to "
                                      f"try the jobs as local processes, or processes:N.") from exc
        s = self.settings
        params = dict(timeout_min=s.time_min, cpus_per_task=s.cpus_per_point or None)
        if self.cluster != "local":
            params.update(slurm_array_parallelism=s.array_parallelism, gpus_per_node=s.gpus_per_point or None,
                          slurm_partition=s.partition, mem_gb=s.mem_gb)
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        threads = s.cpus_per_point or None
        jobs = [attrs_evolve_threads(j, threads) if threads else j for j in jobs]
        return ex.map_array(execute_point, jobs)

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


def make_executor(settings: ExecutorSettings, folder: Path):
    """The executor named by ``settings.name``."""
    kind, arg = parse_executor(settings.name)
    if kind == "local":
        return LocalExecutor()
    if kind == "processes":
        return ProcessExecutor(int(arg))
    if kind == "dask":
        return DaskExecutor(arg)
    return SlurmExecutor(settings, folder, cluster="local" if arg == "local" else "slurm")


class SweepLockedError(ConfigError):
    """Another sweep is writing the same output folder."""


class ExecutorUnavailable(ConfigError):
    """The executor named cannot run here (no Slurm, no Dask scheduler at the address)."""


@contextmanager
def sweep_lock(folder: Path):
    """Hold ``folder/.lock`` while a sweep writes the folder.

    A second sweep on the same folder refuses with :class:`SweepLockedError`.
    A lock left by a process that no longer runs (on this host) is taken over.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".lock"
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            owner = lock.read_text(encoding="utf-8").strip() if lock.exists() else ""
            host, _, pid = owner.partition(" ")
            if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            raise SweepLockedError(
                f"{folder} is being written by another sweep (lock held by {owner or 'unknown'}: {lock}). "
                f"Wait for it to finish, use another --out folder, or delete {lock} if that sweep is dead."
            ) from None
        with os.fdopen(fd, "w") as f:
            f.write(me)
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
