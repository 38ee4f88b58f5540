"""The lock a sweep holds on its folder while it writes it."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from .._util.files import folder_lock
from ..errors import FolderLockedError

__all__ = ["sweep_lock", "SweepLockedError"]


class SweepLockedError(FolderLockedError):
    """Another sweep (or run) is writing the same output folder."""


@contextmanager
def sweep_lock(folder: Path):
    """Hold ``folder/.lock`` while a sweep writes the folder (see :func:`neurodelay._util.files.folder_lock`).

    A second sweep, or a single run, on the same folder refuses with
    :class:`SweepLockedError`. The lock ends with the process that holds it,
    however that ends; a ``.lock`` file no process holds is taken over.
    """
    with folder_lock(folder, "sweep", SweepLockedError):
        yield
