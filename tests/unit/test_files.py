"""``neurodelay._util.files``: atomic writes that say why they failed, and folder locks that end with their process."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import types

import pytest

import neurodelay._util.files as files
from neurodelay._util.files import atomic_file, check_writable, folder_lock, output_error, write_text_atomic
from neurodelay.errors import FolderLockedError, OutputError


def fake_statvfs(monkeypatch, *, free_blocks: int, read_only: bool = False):
    def statvfs(path):
        return types.SimpleNamespace(f_bfree=free_blocks, f_bavail=free_blocks, f_frsize=4096, f_favail=1000,
                                     f_flag=os.ST_RDONLY if read_only else 0)
    monkeypatch.setattr(files.os, "statvfs", statvfs)


def test_a_library_error_on_a_full_device_says_no_space(tmp_path, monkeypatch):
    fake_statvfs(monkeypatch, free_blocks=0)
    target = tmp_path / "runs" / "x" / "results.nc"
    with pytest.raises(OutputError, match=rf"no space left on the device holding {tmp_path / 'runs' / 'x'} "
                                          rf"\(0 bytes free\); free some space .* RuntimeError: NetCDF: HDF error"):
        with atomic_file(target, None):
            raise RuntimeError("NetCDF: HDF error")
    assert not list((tmp_path / "runs" / "x").iterdir()), "the temporary file was left behind"


def test_a_library_error_on_a_read_only_file_system_says_so(tmp_path, monkeypatch):
    fake_statvfs(monkeypatch, free_blocks=10**6, read_only=True)
    err = output_error(tmp_path / "runs", RuntimeError("[enforce fail at inline_container.cc:672] ."))
    assert isinstance(err, OutputError) and isinstance(err, OSError) and err.errno == errno.EROFS
    assert str(err).startswith(f"{tmp_path / 'runs'} is not writable: its file system ({tmp_path}) is mounted "
                               f"read-only")


def test_an_error_with_room_to_spare_is_left_as_it_is(tmp_path, monkeypatch):
    fake_statvfs(monkeypatch, free_blocks=10**6)
    assert output_error(tmp_path, RuntimeError("something else")) is None
    with pytest.raises(RuntimeError, match="something else"):
        with atomic_file(tmp_path / "f", "wb"):
            raise RuntimeError("something else")


@pytest.mark.parametrize("code, text", [(errno.ENOSPC, "no space left on the device holding"),
                                        (errno.EDQUOT, "no space left on the device holding"),
                                        (errno.EROFS, "is mounted read-only"),
                                        (errno.EACCES, "is not writable: permission denied")])
def test_os_errors_are_named_by_their_errno(tmp_path, code, text):
    err = output_error(tmp_path, OSError(code, os.strerror(code)))
    assert text in str(err) and err.errno == code
    assert output_error(tmp_path, OSError(errno.ENOENT, "gone")) is None


def test_writers_raise_output_error_for_an_os_error(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.tempfile, "mkstemp", full)
    with pytest.raises(OutputError, match="no space left on the device holding"):
        write_text_atomic(tmp_path / "report.md", "text")
    with pytest.raises(OutputError, match="no space left"):
        check_writable(tmp_path / "new")


def test_check_writable_leaves_nothing(tmp_path):
    check_writable(tmp_path / "a" / "b")
    assert not list((tmp_path / "a" / "b").iterdir())


def test_a_lock_refuses_a_second_holder_and_goes_with_its_block(tmp_path):
    with folder_lock(tmp_path / "run", "run") as lock:
        assert lock.read_text().split() == ["run", os.uname().nodename, str(os.getpid())]
        with pytest.raises(FolderLockedError, match=rf"is being written by another run \(process {os.getpid()}"):
            with folder_lock(tmp_path / "run", "sweep"):
                pass
    assert not (tmp_path / "run" / ".lock").exists()
    with folder_lock(tmp_path / "run", "sweep"):  # free again
        pass


def test_a_lock_file_nobody_holds_is_taken_over(tmp_path):
    (tmp_path / ".lock").write_text("run otherhost 12345")  # left by a process that is gone
    with folder_lock(tmp_path, "run") as lock:
        assert lock.read_text().endswith(str(os.getpid()))


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    code = ("import sys, time; from neurodelay._util.files import folder_lock\n"
            "with folder_lock(sys.argv[1], 'run'):\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(FolderLockedError, match=f"process {proc.pid}"):
            with folder_lock(tmp_path, "run"):
                pass
    finally:
        proc.kill()
        proc.wait(30)
    assert (tmp_path / ".lock").exists()  # SIGKILL: the file stays, the kernel's lock does not
    with folder_lock(tmp_path, "run"):
        pass
