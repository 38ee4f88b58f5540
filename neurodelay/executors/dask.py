"""``dask:ADDRESS`` / ``dask:local:N``: points as tasks on a Dask distributed cluster.

A client connected to a running scheduler, or a ``LocalCluster`` of N
single-threaded worker processes. A worker killed mid-point is replaced and
the point reruns elsewhere. ``distributed`` is an optional extra: it is
imported where a cluster is used.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
import time
from contextlib import contextmanager

from ..errors import TrainingInterrupted
from ..study import local_dask
from ..training import cancel_stop, request_stop
from .jobs import NOT_RUN, JobResult, PointJob, execute_point, sigterm_stops_the_sweep, with_threads
from .scripts import ExecutorUnavailable, check_scripts_here, require_extra, script_paths

__all__ = ["DaskExecutor"]


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
        paths = script_paths(jobs)
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
        check_scripts_here(jobs, f"dask:{self.address}")
        require_extra("distributed", "dask", f"dask:{self.address}")
        if not local_dask(self.address):
            with self._client() as client:
                self._check_scripts_on_workers(client, jobs)

    def map(self, jobs, *, on_result=None):
        from distributed import as_completed

        check_scripts_here(jobs, f"dask:{self.address}")
        local = local_dask(self.address)
        with self._client() as client:
            if not local:
                self._check_scripts_on_workers(client, jobs)
            n_workers = max(1, len(client.scheduler_info().get("workers", {})) or 1)
            threads = max(1, (os.cpu_count() or 1) // n_workers) if local else None
            jobs = [with_threads(j, threads) if threads else j for j in jobs]
            sweep = uuid.uuid4().hex  # names this sweep's points on the workers, which may run other sweeps' too
            futures = []
            results: dict[int, JobResult] = {}
            try:
                with sigterm_stops_the_sweep():
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

    if own_workers and not _signals_handled:
        from distributed import get_worker

        get_worker().loop.add_callback(_stop_points_on_signals)  # in the worker's main thread
    me = threading.get_ident()
    with _points_lock:
        if sweep in _stopped_sweeps:
            return JobResult("failed", NOT_RUN)
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


def _absent_files(paths) -> list[str]:
    """Those of ``paths`` that are not files here (run on Dask workers)."""
    return [p for p in paths if not os.path.isfile(p)]
