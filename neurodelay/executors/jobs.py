"""Point jobs: what an engine sends to a worker (:class:`PointJob`), runs (:func:`execute_point`) and returns
(:class:`JobResult`).

Every executor runs the same pure point job: one study, one point, one
folder, results written atomically by the pipeline. A failing point's whole
error is also written to its folder's ``error.txt`` (:func:`record_error`).
"""

from __future__ import annotations

import pickle
import signal
import socket
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .._util.files import write_text_atomic
from ..errors import SweepTerminated
from ..pipeline import run_point
from ..study import Point, Study
from .scripts import ScriptChangedError, modules_of, pickle_recording_globals, script_records, load_script

__all__ = ["PointJob", "UnloadableJob", "JobResult", "execute_point", "record_error", "ERROR_FILE", "with_threads",
           "NOT_RUN", "sigterm_stops_the_sweep"]


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

    study: Study
    point: Point
    folder: str
    resume: bool = False
    device: str | None = None
    threads: int | None = None

    def _fields(self) -> tuple:
        return (self.study, self.point, self.folder, self.resume, self.device, self.threads)

    def __reduce__(self):
        try:
            payload, found = pickle_recording_globals(self._fields())
        except Exception:  # noqa: BLE001 - e.g. a lambda: leave it to the engine's own pickler (cloudpickle)
            return PointJob, self._fields()
        scripts = script_records(modules_of(found))
        if not scripts:
            return PointJob, self._fields()
        return _job_after_scripts, (scripts, payload, self.folder)


@dataclass(frozen=True)
class UnloadableJob:
    """What a worker got instead of a :class:`PointJob` when the study's script could not be loaded."""

    folder: str
    error: str


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
    if isinstance(job, UnloadableJob):
        record_error(job.folder, job.error)
        return JobResult("failed", job.error)
    folder = Path(job.folder)
    if (folder / "results.nc").exists():
        return JobResult("skipped")
    record_error(folder, None)

    threads = torch.get_num_threads()
    if job.threads:
        torch.set_num_threads(job.threads)
    t0 = time.perf_counter()
    try:
        run_point(job.study, job.point, folder, resume=job.resume or _has_checkpoint(folder),
                  device=job.device, quiet=True)
    except (Exception, SystemExit) as exc:  # reported, the other points go on (a worker
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




def _has_checkpoint(folder: Path) -> bool:
    return (folder / "checkpoint.pt").exists()


#: In a point's folder: the whole error of its last run, when that run failed (removed when it runs again).
ERROR_FILE = "error.txt"


def record_error(folder, text: str | None) -> None:
    """Write a failed point's whole error to ``folder/error.txt``; ``None`` removes an old one.

    Written where the point ran (a worker, a Slurm job), so that
    :func:`neurodelay.sweep.collect` can report why a detached point failed.
    Best effort: a folder that cannot be written (a worker without the shared
    file system) is left as it is; the error still reaches the sweep through
    the engine.
    """
    path = Path(folder) / ERROR_FILE
    try:
        if text is None:
            path.unlink(missing_ok=True)
        else:
            write_text_atomic(path, text.rstrip() + "\n")
    except OSError:
        pass


NOT_RUN = "not run: the sweep was interrupted"  # a point queued to a worker when the sweep was stopped


@contextmanager
def sigterm_stops_the_sweep():
    """While a sweep waits for its workers, SIGTERM to its process raises :class:`SweepTerminated`.

    Its default would end the process at once and leave the workers
    training (a rerun would then train the same points beside them). Raised
    in the waiting loop, it takes the Ctrl-C path: the workers are stopped,
    each point keeps the step it reached. A second SIGTERM ends the process
    at once. Only in the main thread, and only where SIGTERM has its default
    handler (one set by someone else is left alone).
    """

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


def with_threads(job: PointJob, threads: int) -> PointJob:
    """``job`` limited to ``threads`` torch threads."""
    return PointJob(job.study, job.point, job.folder, job.resume, job.device, threads)
