"""Exceptions raised by neurodelay.

Every exception subclasses the matching built-in so that callers can catch
``ValueError`` or ``TypeError`` as usual. Messages name the parameter, the
constraint, the offending value and a fix.
"""

from __future__ import annotations


class NeurodelayError(Exception):
    """Base class of all neurodelay errors."""


class ConfigError(NeurodelayError, ValueError):
    """A specification (study file, component or circuit) is invalid.

    Besides its message, the error says what it is about as data, so that
    a caller (the study layer, locating the error in the file) need not
    read the message:

    Attributes
    ----------
    field : str or None
        The key the error is about, as a dotted path in the spec that was
        checked: a class's field (``speed_min``, ``name``), an edge's key
        (``delay_ms``, ``target``; with ``edge``), or a path from the study
        (``objective.supervise[0].node``). None when no one key is to blame.
    edge : int or None
        The index, in the circuit's edges, of the edge the error is about.
    node : str or None
        The name of the circuit node the error is about.
    value : object
        The offending value where the error is about one (a delay in ms
        off the time grid); None otherwise.
    """

    def __init__(self, *args, field: str | None = None, edge: int | None = None, node: str | None = None,
                 value=None):
        super().__init__(*args)
        self.field = field
        self.edge = edge
        self.node = node
        self.value = value


class CircuitError(ConfigError):
    """A circuit graph is invalid: unknown node or port, bad delay, algebraic loop."""


class ShapeError(CircuitError):
    """Two connected components have shapes that do not fit."""


class TimeGridError(CircuitError):
    """A time (delay, duration) is not a whole number of simulation steps."""


class TrainingError(NeurodelayError, RuntimeError):
    """Training failed, for example with a non-finite loss."""


class CheckpointError(NeurodelayError, ValueError):
    """A checkpoint is missing, truncated or belongs to another study."""


class OutputError(NeurodelayError, OSError):
    """An output folder cannot be written: no space left on its device, read-only, or not permitted.

    Raised in place of the writer's own error (an ``OSError``, or a
    library's message such as netCDF's "HDF error") with a message that says
    which of these it is and where; the writer's error is its ``__cause__``.
    Writes are atomic, so the file being written is left as it was.
    """


class FolderLockedError(ConfigError):
    """Another run or sweep is writing the same output folder (it holds the folder's ``.lock``)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped at the end of a step on Ctrl-C (SIGINT) or SIGTERM, after saving a checkpoint there.

    Attributes
    ----------
    step : int
        The last step trained.
    checkpoint : str or None
        The checkpoint written at ``step`` (None when training had no
        checkpoint path).
    signal_name : str
        ``"SIGINT"`` or ``"SIGTERM"``.
    """

    def __init__(self, message: str, step: int, checkpoint: str | None, signal_name: str):
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint
        self.signal_name = signal_name

    def __reduce__(self):  # picklable (it crosses from a worker process to the sweep)
        return type(self), (str(self), self.step, self.checkpoint, self.signal_name)


class SweepTerminated(KeyboardInterrupt):
    """A sweep's own process got SIGTERM while its points ran in worker processes.

    The sweep stops its workers as on Ctrl-C (a running point ends its step
    and writes a checkpoint there; points not started are not started) and
    ends; ``python -m neurodelay.run`` exits 143.
    """

    signal_name = "SIGTERM"
