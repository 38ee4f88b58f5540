"""File helpers shared by the atomic writers (results, checkpoints)."""

from __future__ import annotations

import os


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
