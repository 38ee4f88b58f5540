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

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import os
import pickle
import shutil
import socket
import sys
import threading
import time
import traceback
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


from ._util.files import folder_lock
from .errors import ConfigError, FolderLockedError
from .study import ExecutorSettings, local_dask, parse_executor

__all__ = ["ExecutorSettings", "PointJob", "UnloadableJob", "execute_point", "parse_executor", "make_executor",
           "sweep_lock", "SweepLockedError", "study_scripts", "load_script", "detached_job_fate", "slurm_job_state"]


@dataclass(frozen=True)
class PointJob:
    """Everything one point needs: picklable, sent to workers as is.

    A job whose study refers to classes or functions of a module that other
    processes cannot import by name (a Python study script, loaded by path)
    pickles as those scripts' module names, paths and SHA-256 digests plus
    the pickled job: unpickling loads each script by path under its module
    name first (:func:`load_script`), then the job. Where that fails the
    worker gets an :class:`UnloadableJob`, which :func:`execute_point`
    reports as the point's error.
    """

    study: object  # neurodelay.study.Study
    point: object  # neurodelay.sweep.Point
    folder: str
    resume: bool = False
    device: str | None = None
    threads: int | None = None

    def _fields(self) -> tuple:
        return (self.study, self.point, self.folder, self.resume, self.device, self.threads)

    def __reduce__(self):
        try:
            payload, found = _pickle_recording_globals(self._fields())
        except Exception:  # noqa: BLE001 - e.g. a lambda: leave it to the engine's own pickler (cloudpickle)
            return PointJob, self._fields()
        scripts = _scripts(_modules_of(found))
        if not scripts:
            return PointJob, self._fields()
        return _job_after_scripts, (scripts, payload, self.folder)


@dataclass(frozen=True)
class UnloadableJob:
    """What a worker got instead of a :class:`PointJob` when the study's script could not be loaded."""

    folder: str
    error: str


def _pickle_recording_globals(obj) -> tuple[bytes, list]:
    """``pickle.dumps(obj)`` and the classes and functions it refers to by name, in order."""
    found: list = []

    class Recorder(pickle.Pickler):
        def reducer_override(self, o):
            if isinstance(o, (type, types.FunctionType)) and o not in found:
                found.append(o)
            return NotImplemented

    buffer = io.BytesIO()
    Recorder(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue(), found


def _modules_of(found) -> list[str]:
    out = []
    for o in found:
        name = getattr(o, "__module__", None)
        if name and name not in out:
            out.append(name)
    return out


def _importable_by_name(name: str) -> bool:
    """Whether a fresh process finds module ``name`` through the import system (not through sys.modules)."""
    if name in ("__main__", "__mp_main__"):
        return True  # each engine handles the main script itself (spawn reruns it; Dask, submitit: cloudpickle)
    top = name.partition(".")[0]
    if top in sys.builtin_module_names:
        return True
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            if find_spec(top, None) is not None:
                return True
        except Exception:  # noqa: BLE001 - a finder that cannot answer
            continue
    return False


def _scripts(modules) -> tuple[tuple[str, str, str], ...]:
    """``(name, absolute path, SHA-256)`` of each module loaded by path that is not importable by name."""
    out = []
    for name in modules:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path and not _importable_by_name(name):
            path = os.path.abspath(path)
            out.append((name, path, _digest(path)))
    return tuple(out)


def _digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def study_scripts(study) -> tuple[tuple[str, str], ...]:
    """The Python study scripts a worker must load, by path, before it can unpickle ``study``.

    Parameters
    ----------
    study : Study

    Returns
    -------
    tuple of (str, str)
        ``(module name, absolute path)`` of each module that the study's
        classes or functions come from and that a new process cannot import
        by name (e.g. ``neurodelay_study_custom_circuit_<hash>``, loaded from
        ``studies/custom_circuit.py``); empty for a YAML study.
    """
    try:
        _, found = _pickle_recording_globals(study)
    except Exception:  # noqa: BLE001 - not picklable by plain pickle: the engine's pickler decides
        return ()
    return tuple((name, path) for name, path, _ in _scripts(_modules_of(found)))


class ScriptChangedError(RuntimeError):
    """The study script on the worker is not the one the sweep was started with."""


def load_script(name: str, path: str, digest: str = "") -> types.ModuleType:
    """Load the Python study script at ``path`` as module ``name``, once per process and version.

    A module ``name`` already loaded from ``path`` (with the same contents,
    when ``digest`` is given) is reused; otherwise the script runs and
    replaces it (a long-lived Dask worker then runs the edited script of a
    later sweep, not the first one it saw).

    Parameters
    ----------
    name : str
        Module name (``neurodelay_study_<stem>_<hash>``, as given by
        :func:`neurodelay.study.load_study`).
    path : str
        Absolute path of the script.
    digest : str
        SHA-256 of the script as the sweep was started; empty: not checked.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist on this host.
    ScriptChangedError
        When the file at ``path`` differs from ``digest``.
    """
    module = sys.modules.get(name)
    same_file = module is not None and os.path.abspath(getattr(module, "__file__", "") or "") == path
    if same_file and getattr(module, "__neurodelay_script_digest__", digest) == digest:
        return module
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    if digest and _digest(path) != digest:
        raise ScriptChangedError(path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module.__neurodelay_script_digest__ = digest
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if previous is None:
            del sys.modules[name]
        else:
            sys.modules[name] = previous
        raise
    return module


def _job_after_scripts(scripts, payload: bytes, folder: str):
    """Unpickle a job after loading the study scripts it needs (see :meth:`PointJob.__reduce__`).

    Never raises: a failure becomes an :class:`UnloadableJob`, reported by
    :func:`execute_point` as this point's error (an exception while
    unpickling would kill a process-pool worker, and every point with it).
    """
    host = socket.gethostname()
    for name, path, digest in scripts:
        try:
            load_script(name, path, digest)
        except FileNotFoundError:
            return UnloadableJob(folder, (
                f"the study script {path} is not on worker host {host}: the study defines its own classes "
                f"there (module {name}), and a worker loads the script from that path before it can run a "
                f"point. Put the script at the same path on a file system the workers share, or run the "
                f"sweep on this machine (--executor processes:N or dask:local:N)."))
        except ScriptChangedError:
            return UnloadableJob(folder, (
                f"the study script {path} changed after the sweep was started (worker host {host}); its "
                f"classes would no longer match the study being run. Run the sweep again."))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the script itself failed
            return UnloadableJob(folder, f"loading the study script {path} (module {name}) on worker host {host} "
                                         f"raised {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
    try:
        return PointJob(*pickle.loads(payload))
    except Exception as exc:  # noqa: BLE001 - e.g. a class the study needs is gone from the script
        return UnloadableJob(folder, f"the point's study could not be read on worker host {host} after loading "
                                     f"{', '.join(p for _, p, _ in scripts)} ({type(exc).__name__}: {exc}).")


def _check_main_rerunnable(jobs, executor: str) -> None:
    """Refuse a study using classes of an interactive ``__main__``, which spawned workers cannot import.

    A spawned worker gets ``__main__``'s classes by running the main script
    again (``python script.py``, ``python -m module``); a notebook, ``python
    -c`` or standard input leaves no file to run, and the worker would die
    reading the job.
    """
    if not jobs:
        return
    try:
        _, found = _pickle_recording_globals(jobs[0].study)
    except Exception:  # noqa: BLE001 - not picklable at all: the pool reports it per point
        return
    names = [o.__qualname__ for o in found if getattr(o, "__module__", None) == "__main__"]
    main = sys.modules["__main__"]
    if not names or getattr(getattr(main, "__spec__", None), "name", None) \
            or os.path.isfile(getattr(main, "__file__", None) or ""):
        return
    raise ExecutorUnavailable(
        f"--executor {executor}: the study uses {', '.join(names)} defined in this interactive session "
        f"(module __main__ of a notebook, python -c or standard input), which its worker processes cannot "
        f"import. Move them to a .py file and import them from there (or write the study as a Python study "
        f"script), or use dask:local:N, which sends them to its workers by value.")


def _script_paths(jobs) -> list[str]:
    """Paths of the study scripts the jobs need (every job of a sweep has the same study)."""
    return sorted({path for job in jobs[:1] for _, path in study_scripts(job.study)})


def _missing_scripts(jobs) -> list[str]:
    """Study scripts the jobs need that do not exist on this host."""
    return [p for p in _script_paths(jobs) if not os.path.isfile(p)]


def _check_scripts_here(jobs, executor: str) -> None:
    missing = _missing_scripts(jobs)
    if missing:
        raise ExecutorUnavailable(
            f"--executor {executor}: the study script {', '.join(missing)} no longer exists; its workers load "
            f"it by path to get the study's own classes. Restore the file (or load the study again from where "
            f"it is now) and rerun.")


@dataclass
class JobResult:
    """What a worker reports back for one point."""

    status: str  # "ok" | "failed" | "skipped"
    error: str = ""
    seconds: float = 0.0
    host: str = field(default_factory=socket.gethostname)


_requeued = False  # set in a Slurm job's process once submitit has requeued it (SlurmPoint.checkpoint)


def execute_point(job: PointJob) -> JobResult:
    """Run one point; never raises for a failing point (the error is returned).

    A point whose ``results.nc`` exists is skipped. Results are written
    atomically by the runner, so a worker killed mid-point leaves no
    half-written ``results.nc`` and the point can simply run again. A
    failing point's whole error is also written to its folder's
    ``error.txt`` (:func:`neurodelay.sweep.record_error`), for ``--collect``.
    """
    from .sweep import record_error, run_point

    if isinstance(job, UnloadableJob):
        record_error(job.folder, job.error)
        return JobResult("failed", job.error)
    folder = Path(job.folder)
    if (folder / "results.nc").exists():
        return JobResult("skipped")
    record_error(folder, None)
    import torch

    threads = torch.get_num_threads()
    if job.threads:
        torch.set_num_threads(job.threads)
    t0 = time.perf_counter()
    try:
        run_point(job.study, job.point, folder, resume=job.resume or _has_checkpoint(folder),
                  device=job.device, quiet=True)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported, the other points go on (a worker
        # process that let SystemExit out would end: under processes:N the pool breaks, and every point with it)
        if isinstance(exc, SystemExit) and _requeued:
            raise  # submitit requeued this Slurm job (time limit, preemption) and ends it: the point resumes there
        text = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        if type(exc).__name__ == "UncompletedJobError":  # submitit: the job's time limit, and no more requeues
            text = (f"{type(exc).__name__}: {exc} The point keeps its last checkpoint: run the sweep again to go "
                    f"on from there, or raise executor.time_min.\n{traceback.format_exc()}")
        record_error(folder, text)  # where the point ran: --collect reads it for a detached sweep
        return JobResult("failed", text, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)  # when run in the calling process, leave its setting as it was
    return JobResult("ok", "", time.perf_counter() - t0)


def _require(module: str, extra: str, executor: str) -> None:
    """Raise :class:`ExecutorUnavailable` if ``module``, which ``executor`` needs, is not installed."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ExecutorUnavailable(f"--executor {executor} needs the Python package {module}, which is not "
                                  f"installed here ({exc}); pip install 'neurodelay[{extra}]', or use "
                                  f"processes:N.") from None


def _has_checkpoint(folder: Path) -> bool:
    return (folder / "checkpoint.pt").exists()


class LocalExecutor:
    """One point after another in this process.

    Every executor has ``check(jobs)``, which raises
    :class:`ExecutorUnavailable` where it cannot run ``jobs`` here (no Slurm,
    no Dask scheduler, a study script gone, classes of a notebook for
    worker processes) and writes nothing: :func:`neurodelay.sweep.run_sweep`
    calls it before it touches the sweep's folder. ``map`` and ``submit``
    check again.
    """

    def check(self, jobs: list[PointJob]) -> None:
        """Nothing to check: the points run in this process."""

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

    def check(self, jobs) -> None:
        """Refuse a study script that is gone, or classes of an interactive session
        (:func:`_check_main_rerunnable`)."""
        _check_scripts_here(jobs, f"processes:{self.n_workers}")
        _check_main_rerunnable(jobs, f"processes:{self.n_workers}")

    def map(self, jobs, *, on_result=None):
        import concurrent.futures as cf
        import multiprocessing as mp

        self.check(jobs)
        threads = max(1, (os.cpu_count() or 1) // self.n_workers)
        jobs = [attrs_evolve_threads(j, threads) for j in jobs]
        results: dict[int, JobResult] = {}
        pool = cf.ProcessPoolExecutor(self.n_workers, mp_context=mp.get_context("spawn"))
        futures: dict = {}
        try:
            with _sigterm_stops_the_sweep():
                futures = {pool.submit(_execute_in_worker, job): i for i, job in enumerate(jobs)}
                for fut in cf.as_completed(futures):
                    i = futures[fut]
                    try:
                        results[i] = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker that died
                        results[i] = JobResult("failed", f"worker process died: {type(exc).__name__}: {exc}")
                    if on_result:
                        on_result(jobs[i], results[i])
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM to this process (SweepTerminated)
            _stop_workers(pool, [f for f in futures if not f.done()])
            raise
        pool.shutdown(wait=True)
        return [results[i] for i in range(len(jobs))]


def _execute_in_worker(job: PointJob) -> JobResult:
    """:func:`execute_point` in a ``processes:N`` worker, which ends when its training was stopped by SIGTERM.

    Training takes SIGTERM as "end this step, write a checkpoint, stop"
    (:func:`neurodelay.training.train`); a pool worker would then wait for the
    next point, and a pool terminating it would wait for ever. So the worker
    ends itself with SIGTERM once the checkpoint is written. After a Ctrl-C
    the worker starts none of the points already queued to it.
    """
    import signal

    from .errors import TrainingInterrupted

    global _worker_interrupted
    if _worker_interrupted:  # a point queued to this worker before the sweep was interrupted
        return JobResult("failed", _NOT_RUN)
    try:
        return execute_point(job)
    except KeyboardInterrupt as exc:
        _worker_interrupted = True
        if isinstance(exc, TrainingInterrupted) and exc.signal_name == "SIGTERM":
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        raise


_worker_interrupted = False  # in a processes:N worker: a point of it was interrupted (Ctrl-C)
_NOT_RUN = "not run: the sweep was interrupted"  # a point queued to a worker when the sweep was stopped


def _stop_workers(pool, running, grace_s: float = 5.0, limit_s: float = 600.0) -> None:
    """On Ctrl-C (or SIGTERM): cancel the points not started; stop the running ones at the end of their step.

    A Ctrl-C at the terminal reaches the workers too, and their training
    stops at the end of its step with a checkpoint there. When the running
    points have not ended after ``grace_s`` (the interrupt or SIGTERM reached
    this process alone), each worker gets SIGTERM, which training takes the same
    way; an idle worker just ends. Workers left after ``limit_s`` are
    killed. No step is lost, and a rerun resumes every point.
    """
    import signal

    processes = list((getattr(pool, "_processes", None) or {}).values())
    try:
        pool.shutdown(wait=False, cancel_futures=True)
    except Exception:  # noqa: BLE001 - a pool already broken by the interrupt
        pass
    # Polled, not cf.wait: a future the shutdown cancels is done() but never "done" for cf.wait.
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and not all(f.done() for f in running):
        time.sleep(0.05)
    pending = [f for f in running if not f.done()]
    if pending:
        for proc in processes:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except (OSError, AttributeError):
                pass
    deadline = time.monotonic() + limit_s
    for proc in processes:
        try:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        except (OSError, AttributeError, ValueError):
            pass


@contextmanager
def _sigterm_stops_the_sweep():
    """While a sweep waits for its workers, SIGTERM to its process raises :class:`SweepTerminated`.

    Its default would end the process at once and leave the workers
    training (a rerun would then train the same points beside them). Raised
    in the waiting loop, it takes the Ctrl-C path: the workers are stopped,
    each point keeps the step it reached. A second SIGTERM ends the process
    at once. Only in the main thread, and only where SIGTERM has its default
    handler (one set by someone else is left alone).
    """
    import signal

    from .errors import SweepTerminated

    installed = False
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                def handle(signum, frame):
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second one ends the process at once
                    raise SweepTerminated("the sweep got SIGTERM")

                signal.signal(signal.SIGTERM, handle)
                installed = True
        except (ValueError, OSError):  # not settable here
            pass
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def attrs_evolve_threads(job: PointJob, threads: int) -> PointJob:
    return PointJob(job.study, job.point, job.folder, job.resume, job.device, threads)


class DaskExecutor:
    """Points as tasks on a Dask distributed cluster."""

    def __init__(self, address: str):
        self.address = address

    @contextmanager
    def _client(self):
        from distributed import Client, LocalCluster

        if local_dask(self.address):
            n = int(self.address.partition(":")[2])
            saved = dict(os.environ)
            try:
                with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
                    _restore_environ(saved)  # the workers have started with their own settings
                    with Client(cl) as client:
                        yield client
            finally:
                _restore_environ(saved)  # a worker restarted mid-sweep set them again
        else:
            try:
                client = Client(self.address)
            except (OSError, TimeoutError) as exc:
                raise ExecutorUnavailable(
                    f"--executor dask:{self.address}: no Dask scheduler answered ({type(exc).__name__}: {exc}); "
                    f"start one there (dask scheduler, dask worker) or use dask:local:N.") from exc
            with client:
                yield client

    def _check_scripts_on_workers(self, client, jobs) -> None:
        paths = _script_paths(jobs)
        if not paths:
            return
        missing = {w: m for w, m in client.run(_absent_files, paths).items() if m}
        if missing:
            where = "; ".join(f"{w} lacks {', '.join(m)}" for w, m in sorted(missing.items()))
            raise ExecutorUnavailable(
                f"--executor dask:{self.address}: the study defines its own classes in {', '.join(paths)}, which "
                f"every worker loads by path, and not every worker has it ({where}). Put the script at the same "
                f"path on a file system the workers share, or run the sweep here (processes:N or dask:local:N).")

    def check(self, jobs) -> None:
        """Refuse a study script that is gone; for ``dask:ADDRESS``, a scheduler that does not answer, or
        workers that lack the script. A ``dask:local:N`` cluster is not started here."""
        _check_scripts_here(jobs, f"dask:{self.address}")
        _require("distributed", "dask", f"dask:{self.address}")
        if not local_dask(self.address):
            with self._client() as client:
                self._check_scripts_on_workers(client, jobs)

    def map(self, jobs, *, on_result=None):
        import uuid

        from distributed import as_completed

        _check_scripts_here(jobs, f"dask:{self.address}")
        local = local_dask(self.address)
        with self._client() as client:
            if not local:
                self._check_scripts_on_workers(client, jobs)
            n_workers = max(1, len(client.scheduler_info().get("workers", {})) or 1)
            threads = max(1, (os.cpu_count() or 1) // n_workers) if local else None
            jobs = [attrs_evolve_threads(j, threads) if threads else j for j in jobs]
            sweep = uuid.uuid4().hex  # names this sweep's points on the workers, which may run other sweeps' too
            futures = []
            results: dict[int, JobResult] = {}
            try:
                with _sigterm_stops_the_sweep():
                    futures = client.map(_execute_in_dask_worker, jobs, sweep=sweep, own_workers=local, pure=False,
                                         retries=2)
                    index = {f.key: i for i, f in enumerate(futures)}
                    for fut in as_completed(futures):
                        i = index[fut.key]
                        try:
                            results[i] = fut.result()
                        except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after retries
                            results[i] = JobResult("failed", f"{type(exc).__name__}: {exc}")
                        if on_result:
                            on_result(jobs[i], results[i])
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM to this process (SweepTerminated)
                _stop_dask_sweep(client, sweep, [f for f in futures if not f.done()],
                                 getattr(exc, "signal_name", "SIGINT"))
                raise
            return [results[i] for i in range(len(jobs))]


def _stop_dask_sweep(client, sweep: str, running, signal_name: str, limit_s: float = 600.0) -> None:
    """On Ctrl-C (or SIGTERM): every worker starts no more of the sweep's points and stops the ones it runs
    at the end of their step, with a checkpoint there; wait up to ``limit_s`` for them.

    Dask runs a point in a worker thread, where training sets no signal
    handlers (:func:`neurodelay.training.train`), and cancelling its task leaves
    the thread training; closing a ``dask:local:N`` cluster then kills the
    worker, and the steps since the last regular checkpoint are lost. Here
    each worker's event loop (its main thread) tells the point's training to
    stop instead (:func:`_stop_points_here`), again every 2 s for a worker
    that joined since (one restarted after its process died). The cluster is
    closed afterwards: no step is lost, and a rerun resumes every point.
    """
    from distributed import wait

    deadline = time.monotonic() + limit_s
    while True:
        try:
            client.run(_stop_points_here, sweep, signal_name, on_error="ignore")
        except Exception:  # noqa: BLE001 - no worker answering: closing the cluster ends them
            pass
        running = [f for f in running if not f.done()]
        if not running or time.monotonic() > deadline:
            return
        try:
            wait(running, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
        except Exception:  # noqa: BLE001 - TimeoutError: tell the workers again
            pass


def _execute_in_dask_worker(job: PointJob, sweep: str, own_workers: bool) -> JobResult:
    """:func:`execute_point` in a Dask worker thread, stoppable at the end of a step (:func:`_stop_points_here`).

    A point of a sweep already stopped is not started; a point stopped
    returns as failed (it is not retried elsewhere), its checkpoint kept.
    In a worker of the sweep's own cluster (``own_workers``) SIGINT and
    SIGTERM stop its points too (:func:`_stop_points_on_signals`).
    """
    from .errors import TrainingInterrupted
    from .training import cancel_stop

    if own_workers and not _signals_handled:
        from distributed import get_worker

        get_worker().loop.add_callback(_stop_points_on_signals)  # in the worker's main thread
    me = threading.get_ident()
    with _points_lock:
        if sweep in _stopped_sweeps:
            return JobResult("failed", _NOT_RUN)
        _running_points[me] = sweep
    try:
        return execute_point(job)
    except TrainingInterrupted as exc:  # raised in this thread by training, at the end of a step
        return JobResult("failed", str(exc))
    finally:
        with _points_lock:
            _running_points.pop(me, None)
            cancel_stop(me)  # a stop that came after this point's training, or before it began


def _stop_points_here(sweep: str | None, signal_name: str) -> None:
    """In a Dask worker: stop the training of ``sweep``'s points (every point's, for None) at the end of its
    step, with a checkpoint there (:func:`neurodelay.training.request_stop`), and start no more of them."""
    from .training import request_stop

    with _points_lock:
        if sweep is not None:
            _stopped_sweeps[sweep] = signal_name
        else:
            _stopped_sweeps.update({s: signal_name for s in _running_points.values()})
        threads = [t for t, s in _running_points.items() if sweep is None or s == sweep]
        for thread in threads:
            request_stop(thread, signal_name)


def _stop_points_on_signals() -> None:
    """In a ``dask:local:N`` worker's main thread: SIGINT and SIGTERM stop the worker's points at the end of
    their step, like a Ctrl-C at the terminal, which reaches the workers too.

    Otherwise SIGINT reaches asyncio's handler, which closes the worker with
    its point mid-step, and SIGTERM ends the worker at once. The worker
    itself ends when the sweep closes its cluster. A SIGTERM handler someone
    else set is left alone.
    """
    import signal

    global _signals_handled
    if _signals_handled:
        return
    _signals_handled = True

    def handle(signum, frame):
        _stop_points_here(None, signal.Signals(signum).name)

    try:
        signal.signal(signal.SIGINT, handle)
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, handle)
    except (ValueError, OSError):  # not the main thread
        pass


_points_lock = threading.RLock()  # RLock: _stop_points_here also runs as a signal handler
_running_points: dict[int, str] = {}  # in a Dask worker: thread id -> sweep of the point it runs
_stopped_sweeps: dict[str, str] = {}  # sweep -> the signal that stopped it
_signals_handled = False  # in a dask:local:N worker: SIGINT, SIGTERM stop its points (_stop_points_on_signals)


def _restore_environ(saved: dict) -> None:
    """Put ``os.environ`` back to ``saved``.

    A Dask nanny sets its workers' environment variables in the calling
    process before it starts each worker and leaves them there
    (``distributed.nanny.pre-spawn-environ``: ``OMP_NUM_THREADS=1``,
    ``MKL_NUM_THREADS=1``, ``OPENBLAS_NUM_THREADS=1``,
    ``MALLOC_TRIM_THRESHOLD_``, ``PYTHONHASHSEED``). A ``dask:local:N`` sweep
    would otherwise change every process the caller starts afterwards: a
    ``python -m neurodelay.run`` started from the same notebook would train
    on one thread and round differently.
    """
    for key in [k for k in os.environ if k not in saved]:
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


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
        _check_scripts_here(jobs, name)
        _require("submitit", "slurm", name)
        if self.cluster != "local" and shutil.which("srun") is None:
            raise ExecutorUnavailable("--executor slurm: Slurm is not available here (no srun on PATH); use "
                                      "slurm:local to try the jobs as local processes, or processes:N.")

    def _executor(self):
        _require("submitit", "slurm", "slurm:local" if self.cluster == "local" else "slurm")
        import submitit

        try:  # submitit creates its folder here
            return submitit.AutoExecutor(folder=str(self.folder / ".submitit" / "%j"), cluster=self.cluster)
        except RuntimeError as exc:  # submitit: 'Could not detect "srun", are you indeed on a slurm cluster?'
            raise ExecutorUnavailable(f"--executor slurm: Slurm is not available here ({exc}); use slurm:local to "
                                      f"try the jobs as local processes, or processes:N.") from exc

    def submit(self, jobs):
        _check_scripts_here(jobs, "slurm:local" if self.cluster == "local" else "slurm")
        ex = self._executor()
        s = self.settings
        params = dict(timeout_min=s.time_min, cpus_per_task=s.cpus_per_point or None)
        if self.cluster != "local":
            params.update(slurm_array_parallelism=s.array_parallelism, gpus_per_node=s.gpus_per_point or None,
                          slurm_partition=s.partition, mem_gb=s.mem_gb)
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        threads = s.cpus_per_point or None
        jobs = [attrs_evolve_threads(j, threads) if threads else j for j in jobs]
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
        global _requeued
        from submitit.helpers import DelayedSubmission

        _requeued = True  # the SystemExit that ends this process now is submitit's, not the point's
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
    import subprocess

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


class SweepLockedError(FolderLockedError):
    """Another sweep (or run) is writing the same output folder."""


class ExecutorUnavailable(ConfigError):
    """The executor named cannot run here (no Slurm, no Dask scheduler at the address)."""


@contextmanager
def sweep_lock(folder: Path):
    """Hold ``folder/.lock`` while a sweep writes the folder (see :func:`neurodelay._util.files.folder_lock`).

    A second sweep, or a single run, on the same folder refuses with
    :class:`SweepLockedError`. The lock ends with the process that holds it,
    however that ends; a ``.lock`` file no process holds is taken over.
    """
    with folder_lock(folder, "sweep", SweepLockedError):
        yield


def _absent_files(paths) -> list[str]:
    """Those of ``paths`` that are not files here (run on Dask workers)."""
    return [p for p in paths if not os.path.isfile(p)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
