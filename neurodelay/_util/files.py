"""File helpers shared by the atomic writers (results, checkpoints, reports, figures), and folder locks."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import FolderLockedError, OutputError

#: Errors of a file system that cannot take more data, or that refuses writing.
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS}
_DENIED = {errno.EACCES, errno.EPERM}
#: Below this many free bytes a device counts as full when a library's write fails without an errno.
_NEARLY_FULL = 1 << 20


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise output_error(path.parent, exc) or exc
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
    except BaseException as exc:
        # Asked while the partial file still fills the device (removing it frees the space again).
        diagnosed = output_error(path.parent, exc) if isinstance(exc, Exception) else None
        try:  # emptied first: a library whose write failed may keep the file open (HDF5 does), and its space with it
            os.truncate(tmp, 0)
        except OSError:
            pass
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if diagnosed is not None:
            raise diagnosed from exc
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write(text)


def _existing(folder: Path) -> Path:
    """``folder``, or its nearest ancestor that exists."""
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def _free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(_existing(folder))
    except OSError:
        return None
    blocks = st.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else st.f_bavail
    return blocks * st.f_frsize


def output_error(folder, exc: BaseException) -> OutputError | None:
    """An :class:`OutputError` saying why writing into ``folder`` failed, or None if that is not why.

    ``exc`` is the writer's error: an ``OSError`` whose errno says it (no
    space, a read-only file system, no permission), or a library's own
    (netCDF's "HDF error", torch's "enforce fail at inline_container.cc"),
    for which the file system is asked: is it mounted read-only, is its
    device (nearly) full, may this process write the folder. Ask while the
    failed write's partial file is still there.
    """
    if isinstance(exc, OutputError):
        return exc
    folder = Path(folder)
    where = _existing(folder)
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None:
        try:
            st = os.statvfs(where)
        except OSError:
            return None
        free = _free_bytes(where)
        if st.f_flag & getattr(os, "ST_RDONLY", 1):
            code = errno.EROFS
        elif (free is not None and free < _NEARLY_FULL) or st.f_favail == 0:
            code = errno.ENOSPC
        elif not os.access(where, os.W_OK):
            code = errno.EACCES
        else:
            return None
    if code in _FULL:
        free = _free_bytes(where)
        what = ("the file is larger than this process may write (its file size limit)" if code == errno.EFBIG
                else f"no space left on the device holding {folder}"
                     + (f" ({_size(free)} free)" if free is not None else ""))
        fix = "free some space (or give another --out) and run again"
    elif code in _READ_ONLY:
        what = f"{folder} is not writable: its file system ({where}) is mounted read-only"
        fix = "give an --out on a writable file system"
    elif code in _DENIED:
        what = f"{folder} is not writable: permission denied at {where}"
        fix = "give an --out you may write, or change its permissions"
    else:
        return None
    err = OutputError(f"{what}; {fix}. (The writer said: {_said(exc)})")
    err.errno = code
    return err


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _said(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def check_writable(folder) -> None:
    """Make ``folder`` (and its parents) and write a little into it, so a run learns it cannot write at once.

    Raises
    ------
    OutputError
        The folder cannot be made or written (no space, read-only, not
        permitted).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise output_error(folder, exc) or exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        diagnosed = output_error(folder, exc)
        Path(tmp).unlink(missing_ok=True)
        raise diagnosed or exc
    Path(tmp).unlink(missing_ok=True)


LOCK = ".lock"


@contextmanager
def folder_lock(folder, what: str = "run", error: type = FolderLockedError):
    """Hold ``folder/.lock`` while a run (or sweep, ``what``) writes the folder.

    The lock is the kernel's (``flock``) on that file, which also names the
    holder (``what host pid``): a second run or sweep on the same folder
    refuses with ``error`` (a :class:`~neurodelay.errors.FolderLockedError`)
    instead of writing beside it. It is released when the block ends, and
    by the kernel when the process dies however it dies (SIGKILL included),
    so no lock outlives its run; the file is removed at the end. On a file
    system without locks the block runs unlocked.
    """
    import fcntl

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(folder, exc) or exc
    lock = folder / LOCK
    me = f"{what} {socket.gethostname()} {os.getpid()}"
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            raise output_error(folder, exc) or exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 300, 0).decode("utf-8", "replace").split()
            os.close(fd)
            kind, host, pid = (owner + ["", "", ""])[:3] if len(owner) != 2 else ("sweep", *owner)
            holder = f"process {pid} on {host}" if pid else "another process"
            raise error(
                f"{folder} is being written by another {kind or 'run'} ({holder}, which holds {lock}). Wait for "
                f"it to finish, or use another --out folder. The lock ends with that process; only if it is "
                f"gone (a crashed machine can leave the lock of a network file system behind), delete {lock}."
            ) from None
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                break  # no locks on this file system: run unlocked
            os.close(fd)
            raise
        try:  # the file may have been removed, and another made, between open and flock: lock that one
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.encode("utf-8"), 0)
    except OSError:
        pass  # the name of the holder is a courtesy
    try:
        yield lock
    finally:
        try:
            lock.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(fd)
