"""File helpers shared by the atomic writers (results, checkpoints, reports, figures)."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def give_default_mode(path: str | os.PathLike) -> None:
    """Give a file made by ``tempfile.mkstemp`` (mode 0600) the mode a plain ``open`` would give it.

    The atomic writers write to a private temporary file and rename it over
    the target; without this, every results file and checkpoint would be
    readable by its owner only, whatever the umask.
    """
    os.chmod(path, 0o666 & ~_umask())


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str | None = "wb", *, encoding: str | None = None,
                prefix: str | None = None, fsync: bool = False):
    """Write ``path`` atomically: yield a private temporary file in its folder, renamed over it at the end.

    The block gets the open file (``mode``), or, with ``mode=None``, the
    temporary file's path (for writers that open it themselves). When the
    block ends without an error, the file gets the mode a plain ``open``
    would give it and replaces ``path``; on any error, Ctrl-C included, it
    is removed and ``path`` is left as it was. ``fsync`` flushes the data
    to disk before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is None:
            os.close(fd)
            yield tmp
        else:
            with os.fdopen(fd, mode, encoding=encoding) as f:
                yield f
                if fsync:
                    f.flush()
                    os.fsync(f.fileno())
        give_default_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write(text)
