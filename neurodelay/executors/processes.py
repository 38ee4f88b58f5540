"""``processes:N``: N worker processes on this machine, each limited to cores / N torch threads."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import signal
import time

from ..errors import TrainingInterrupted
from .jobs import NOT_RUN, JobResult, PointJob, execute_point, sigterm_stops_the_sweep, with_threads
from .scripts import check_main_rerunnable, check_scripts_here

__all__ = ["ProcessExecutor"]


class ProcessExecutor:
    """N worker processes on this machine, cores / N torch threads each."""

    def __init__(self, n_workers: int):
        self.n_workers = n_workers

    def check(self, jobs) -> None:
        """Refuse a study script that is gone, or classes of an interactive session
        (:func:`check_main_rerunnable`)."""
        check_scripts_here(jobs, f"processes:{self.n_workers}")
        check_main_rerunnable(jobs, f"processes:{self.n_workers}")

    def map(self, jobs, *, on_result=None):

        self.check(jobs)
        threads = max(1, (os.cpu_count() or 1) // self.n_workers)
        jobs = [with_threads(j, threads) for j in jobs]
        results: dict[int, JobResult] = {}
        pool = cf.ProcessPoolExecutor(self.n_workers, mp_context=mp.get_context("spawn"))
        futures: dict = {}
        try:
            with sigterm_stops_the_sweep():
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

    global _worker_interrupted
    if _worker_interrupted:  # a point queued to this worker before the sweep was interrupted
        return JobResult("failed", NOT_RUN)
    try:
        return execute_point(job)
    except KeyboardInterrupt as exc:
        _worker_interrupted = True
        if isinstance(exc, TrainingInterrupted) and exc.signal_name == "SIGTERM":
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        raise


_worker_interrupted = False  # in a processes:N worker: a point of it was interrupted (Ctrl-C)


def _stop_workers(pool, running, grace_s: float = 5.0, limit_s: float = 600.0) -> None:
    """On Ctrl-C (or SIGTERM): cancel the points not started; stop the running ones at the end of their step.

    A Ctrl-C at the terminal reaches the workers too, and their training
    stops at the end of its step with a checkpoint there. When the running
    points have not ended after ``grace_s`` (the interrupt or SIGTERM reached
    this process alone), each worker gets SIGTERM, which training takes the same
    way; an idle worker just ends. Workers left after ``limit_s`` are
    killed. No step is lost, and a rerun resumes every point.
    """

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
