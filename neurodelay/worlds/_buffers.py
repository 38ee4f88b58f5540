"""Output buffers for rendered frames.

A batch of frames is written once into fresh memory, and on Linux the first
touch of each 4 KiB page is a page fault: for a 1024 x 10 x 32 x 32 batch
(42 MB) the faults cost about as much as the rendering. Large CPU buffers are
therefore advised to use transparent huge pages (one fault per 2 MiB). The
advice changes no values; where it is not available it is skipped.
"""

from __future__ import annotations

import ctypes
import functools
import sys

import torch

_HUGE_PAGE = 1 << 21
_MIN_ADVISED_BYTES = 8 << 20
_MADV_HUGEPAGE = 14


@functools.lru_cache(maxsize=1)
def _madvise():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def new_frames(shape, device) -> torch.Tensor:
    """An uninitialised float32 tensor for frames, huge-page advised when large and on the CPU."""
    out = torch.empty(shape, dtype=torch.float32, device=device)
    n_bytes = out.numel() * out.element_size()
    if out.device.type == "cpu" and n_bytes >= _MIN_ADVISED_BYTES and (madvise := _madvise()) is not None:
        start = -(-out.data_ptr() // _HUGE_PAGE) * _HUGE_PAGE
        stop = (out.data_ptr() + n_bytes) // _HUGE_PAGE * _HUGE_PAGE
        if stop > start:
            madvise(start, stop - start, _MADV_HUGEPAGE)  # a refusal (THP off) leaves 4 KiB pages
    return out
