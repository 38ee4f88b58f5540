"""Interrupts during training: Ctrl-C and SIGTERM end the current step, a checkpoint is written, then it stops.

In the main thread signal handlers do it (:class:`DeferredInterrupts`);
elsewhere (a Dask worker's threads, where no handler can be set)
:func:`request_stop` asks the training of a thread to stop the same way.
"""

from __future__ import annotations

import signal
import sys
import threading

from ..errors import TrainingInterrupted

__all__ = ["DeferredInterrupts", "request_stop", "cancel_stop"]


class DeferredInterrupts:
    """Ctrl-C (SIGINT) and SIGTERM during training stop it at the end of the current step.

    The step finishes, its checkpoint is written (when training has a
    checkpoint path), and :class:`TrainingInterrupted` is raised, so that an
    interrupted run resumes where it stopped and loses no step. A second
    Ctrl-C stops at once, as without this guard; a repeated SIGTERM (a
    process pool terminating its workers, say) still waits for the step. Only in
    the main thread (signal handlers can be set nowhere else), and only for
    a signal whose handler is Python's default (a handler someone else set,
    such as submitit's in a Slurm job, is left alone).
    """

    def __init__(self):
        self.received: str | None = None
        self._old: dict = {}
        self._thread: int | None = None

    def __enter__(self):
        self._thread = threading.get_ident()
        with _stop_lock:  # request_stop finds the training of this thread by it
            _guards[self._thread] = self
            pending = _pending_stops.get(self._thread)
        if pending is not None:
            self.request(pending)
        if threading.current_thread() is not threading.main_thread():
            return self
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        for sig, default in defaults.items():
            try:
                if signal.getsignal(sig) is default:
                    self._old[sig] = signal.signal(sig, self._handle)
            except (ValueError, OSError):  # not settable here
                pass
        return self

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if name == "SIGINT" and self.received == "SIGINT":  # Ctrl-C twice: stop now
            self.__exit__(None, None, None)
            raise KeyboardInterrupt
        self.request(name)

    def request(self, name: str) -> None:
        """Stop at the end of the current step, as signal ``name`` ("SIGINT" or "SIGTERM") does."""
        if self.received is None:
            print(f"\n{name}: training stops at the end of this step, after saving a checkpoint"
                  + (" (press Ctrl-C again to stop at once)." if name == "SIGINT"
                     and threading.current_thread() is threading.main_thread() else "."),
                  file=sys.stderr, flush=True)
        if self.received is None or name == "SIGTERM":  # a SIGTERM is kept: the process is to end
            self.received = name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
        with _stop_lock:
            if _guards.get(self._thread) is self:
                del _guards[self._thread]
        return False

    def raise_now(self, step: int, checkpoint_path) -> None:
        where = str(checkpoint_path) if checkpoint_path is not None else None
        kept = (f"checkpoint {where!r} holds step {step}: resume to go on from there" if where
                else "no checkpoint path was given, so nothing was saved")
        raise TrainingInterrupted(f"training interrupted ({self.received}) after step {step}; {kept}.", step,
                                  where, self.received)


# The training running in each thread, so that one running outside the main thread (a Dask worker runs points
# in threads, where no signal handler can be set) can be asked to stop at the end of its step: request_stop.
_stop_lock = threading.RLock()
_guards: dict[int, DeferredInterrupts] = {}
_pending_stops: dict[int, str] = {}


def request_stop(thread_id: int, signal_name: str = "SIGINT") -> None:
    """Stop the training running in thread ``thread_id`` at the end of its step, as a signal would.

    It writes a checkpoint at that step and raises
    :class:`~neurodelay.errors.TrainingInterrupted` in its thread. When no
    training runs in that thread yet, the next one to start there stops
    after its first step, until :func:`cancel_stop` (so that a point about
    to start when a sweep is interrupted does not train on). For threads
    where signal handlers cannot be set, such as a Dask worker's.

    Parameters
    ----------
    thread_id : int
        ``threading.get_ident()`` of the thread.
    signal_name : {"SIGINT", "SIGTERM"}
        The signal to act as (it is reported as the reason).
    """
    if signal_name not in ("SIGINT", "SIGTERM"):
        raise ValueError(f"signal_name must be 'SIGINT' or 'SIGTERM', got {signal_name!r}.")
    with _stop_lock:
        guard = _guards.get(thread_id)
        if guard is None:
            _pending_stops[thread_id] = signal_name
    if guard is not None:
        guard.request(signal_name)


def cancel_stop(thread_id: int) -> None:
    """Forget a :func:`request_stop` for ``thread_id`` that no training took up (a no-op otherwise)."""
    with _stop_lock:
        _pending_stops.pop(thread_id, None)

