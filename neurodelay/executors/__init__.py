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

Modules: ``jobs`` (the point job every engine runs), ``scripts`` (Python
study scripts on workers), one module per engine (``local``, ``processes``,
``dask``, ``slurm``), ``engines`` (:func:`make_executor`) and ``lock``.

A Python study may define its own components (see
``studies/custom_circuit.py``). Their classes live in the study script, which
:func:`neurodelay.study.load_study` loads by path under a module name no
other process can import. A :class:`PointJob` whose study refers to such a
module therefore carries the script's path with it, and a worker loads the
script by path under the same name before it unpickles the study: every
engine above runs such studies, provided the script is at the same path on
the worker's host (always so on this machine; on a cluster, a shared file
system).
"""

from ..study import ExecutorSettings, parse_executor
from .dask import DaskExecutor
from .engines import make_executor
from .jobs import ERROR_FILE, JobResult, PointJob, UnloadableJob, execute_point, record_error
from .local import LocalExecutor
from .lock import SweepLockedError, sweep_lock
from .processes import ProcessExecutor
from .scripts import ExecutorUnavailable, ScriptChangedError, load_script, study_scripts
from .slurm import SlurmExecutor, SlurmPoint, detached_job_fate, slurm_job_state

__all__ = ["ExecutorSettings", "PointJob", "UnloadableJob", "JobResult", "execute_point", "record_error", "ERROR_FILE",
           "parse_executor", "make_executor", "sweep_lock", "SweepLockedError", "study_scripts", "load_script",
           "ScriptChangedError", "ExecutorUnavailable", "detached_job_fate", "slurm_job_state", "LocalExecutor",
           "ProcessExecutor", "DaskExecutor", "SlurmExecutor", "SlurmPoint"]
