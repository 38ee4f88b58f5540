"""Performance switches: the allocator, the CPU fast paths of the conv areas, bf16 autocast.

Nothing here changes what a model computes beyond floating-point rounding.

* :func:`tune_allocator` raises glibc's mmap and trim thresholds so that the
  tens-of-MB activation buffers of a training step are reused instead of being
  returned to the kernel and faulted back in on every step (a measured 20-28 %
  of CPU time went to page faults without it). Call it once, early, from a
  training entry point; it is a no-op where glibc is absent.
* :data:`FAST` holds the switches of the CPU fast paths in
  :mod:`neurodelay.components.areas` (channels-last convolutions, an ELU built
  on ``exp``, the last transposed convolution as batched matrix products);
  :func:`fast_paths` changes them for a ``with`` block (benchmarks and tests
  compare against the plain layers that way). Under ``torch.func``
  transforms (``grad``, ``vmap``, ``jacrev``, ``jvp``, ...) and forward-mode
  AD the plain layers run instead (:func:`plain_layers_needed`): the fast
  paths' own backwards support neither.
* :func:`autocast` is opt-in bf16 mixed precision for the forward pass.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import os
import sys

import torch

__all__ = ["tune_allocator", "FastPaths", "FAST", "fast_paths", "plain_layers_needed", "autocast",
           "bf16_native"]

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

#: The largest mmap threshold glibc accepts on 64-bit systems (HEAP_MAX_SIZE / 2).
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024

_tuned: dict | None = None

#: Environment variable: ``default`` turns :func:`tune_allocator` into a no-op.
ALLOCATOR_ENV = "NEURODELAY_ALLOCATOR"


def tune_allocator(mmap_threshold_bytes: int = _MMAP_THRESHOLD_MAX,
                   trim_threshold_bytes: int = 1 << 30,
                   top_pad_bytes: int | None = None) -> dict:
    """Keep large freed buffers in the process heap (glibc only; a no-op elsewhere).

    By default glibc serves allocations above a dynamic threshold (128 KiB to
    32 MiB) with ``mmap`` and gives them back with ``munmap`` when freed, and
    trims the top of the heap when more than 128 KiB is free. A training step
    frees and reallocates the same ~20 MB activation buffers every step, so each
    step pays page faults to fault them back in. Raising the thresholds makes
    the allocator keep and reuse that memory. The resident size stays at the
    step's peak instead of dropping between steps, and it is higher than the
    peak of the tensors themselves: freed buffers stay in the heap, where
    their pieces do not always fit the next request (measured on the inertia
    step: live tensors at most 77 MiB, resident set +133 to +159 MiB, against
    +130 MiB without tuning, which is about 10 % slower).

    Set the environment variable ``NEURODELAY_ALLOCATOR=default`` to leave the
    C allocator as it is (lower resident memory, slower CPU training);
    :func:`neurodelay.training.train` calls this function on CPU.

    Parameters
    ----------
    mmap_threshold_bytes : int
        Allocations at least this large still use ``mmap`` (glibc caps it at
        32 MiB on 64-bit systems).
    trim_threshold_bytes : int
        Free memory at the top of the heap beyond this is returned to the system.
    top_pad_bytes : int, optional
        Extra bytes requested whenever the heap grows (default: glibc's own).

    Returns
    -------
    dict
        ``{"applied": bool, "reason": str}`` plus the values set. Repeated calls
        return the first call's result and change nothing.
    """
    global _tuned
    if _tuned is not None:
        return dict(_tuned)
    result = {"applied": False, "reason": "", "mmap_threshold_bytes": mmap_threshold_bytes,
              "trim_threshold_bytes": trim_threshold_bytes, "top_pad_bytes": top_pad_bytes}
    choice = os.environ.get(ALLOCATOR_ENV, "").strip().lower()
    if choice not in ("", "tuned", "default"):
        raise ValueError(f"environment variable {ALLOCATOR_ENV}={os.environ[ALLOCATOR_ENV]!r}: must be "
                         f"'tuned' (the default) or 'default' (leave the C allocator as it is); "
                         f"unset it or set one of these.")
    if choice == "default":
        result["reason"] = f"{ALLOCATOR_ENV}=default"
    elif not sys.platform.startswith("linux"):
        result["reason"] = f"not glibc (platform {sys.platform})"
    else:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
            gnu_get_libc_version = libc.gnu_get_libc_version  # absent in musl
        except (OSError, AttributeError) as err:
            result["reason"] = f"not glibc ({err})"
        else:
            gnu_get_libc_version.restype = ctypes.c_char_p
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            ok = (mallopt(_M_MMAP_THRESHOLD, int(min(mmap_threshold_bytes, _MMAP_THRESHOLD_MAX)))
                  and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold_bytes))
                  and (top_pad_bytes is None or mallopt(_M_TOP_PAD, int(top_pad_bytes))))
            result["applied"] = bool(ok)
            result["reason"] = (f"glibc {gnu_get_libc_version().decode()}" if ok
                                else "mallopt refused a value")
    _tuned = result
    return dict(result)


@dataclasses.dataclass
class FastPaths:
    """Switches of the CPU fast paths of the conv areas (all on by default).

    Attributes
    ----------
    channels_last : bool
        Run the encoder and the first decoder layers in channels-last layout
        (oneDNN's faster kernels for these shapes).
    elu : bool
        ELU as ``max(exp(min(x, 0)) - 1, x)``, instead of PyTorch's
        ``expm1``-based kernel (about 3.5 times slower than ``exp`` on the
        measured CPU). It keeps only its output, and its derivative
        ``1 + min(y, 0)`` comes from that output; before the fast last layer
        the ELU is part of that layer, whose backward pass applies the
        derivative to its own input gradient in place (one buffer fewer).
    last_deconv : bool
        A transposed convolution with few output channels (the decoder's last
        32 -> 1 layer) as batched matrix products plus an explicit col2im,
        instead of oneDNN's kernel, which is slow for one output channel.
    chunk : int
        Run the conv areas on at most this many frames at a time on CPU (0:
        the whole batch at once). The backward pass then also goes chunk by
        chunk, which bounds its temporary buffers.
    """

    channels_last: bool = True
    elu: bool = True
    last_deconv: bool = True
    chunk: int = 0

    def any(self) -> bool:
        """Whether any layer fast path is on (``chunk`` aside)."""
        return self.channels_last or self.elu or self.last_deconv


#: The switches read by :mod:`neurodelay.components.areas` at every call.
FAST = FastPaths()


@contextlib.contextmanager
def fast_paths(**switches: bool):
    """Set fast-path switches (see :class:`FastPaths`) for a ``with`` block.

    Examples
    --------
    >>> with fast_paths(channels_last=False, elu=False, last_deconv=False):
    ...     pass  # the plain PyTorch layers run here
    """
    names = {f.name for f in dataclasses.fields(FastPaths)}
    unknown = set(switches) - names
    if unknown:
        raise TypeError(f"unknown fast path(s) {sorted(unknown)}; valid: {sorted(names)}.")
    old = dataclasses.asdict(FAST)
    try:
        for k, v in switches.items():
            setattr(FAST, k, int(v) if k == "chunk" else bool(v))
        yield FAST
    finally:
        for k, v in old.items():
            setattr(FAST, k, v)


def plain_layers_needed(x: torch.Tensor) -> bool:
    """Whether a ``torch.func`` transform or forward-mode AD is active, so the plain layers must run.

    The CPU fast paths are ``torch.autograd.Function`` s with their own
    backward passes and channels-last layouts; ``torch.func`` transforms
    (``grad``, ``vmap``, ``jacrev``, ``jvp``, ...) and forward-mode AD
    (``torch.autograd.forward_ad``) support neither, so inside them the conv
    areas use the plain PyTorch layers, which compute the same values.
    """
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    if active is not None:
        if active():
            return True
    elif torch._C._functorch.is_functorch_wrapped_tensor(x):
        return True
    return getattr(torch.autograd.forward_ad, "_current_level", -1) >= 0


def autocast(device: str | torch.device, enabled: bool = True, dtype: torch.dtype = torch.bfloat16):
    """Opt-in mixed precision for a forward pass (bf16 by default).

    Wrap the model call and the loss in it; keep ``backward()`` and the
    optimiser step outside. Parameters and gradients stay float32.

    Parameters
    ----------
    device : str or torch.device
        The device the model runs on (its type selects the autocast backend).
    enabled : bool
        False returns a context that does nothing, so call sites need no branch.
    dtype : torch.dtype
        The lower precision (``torch.bfloat16``; ``torch.float16`` on GPUs
        would also need a gradient scaler, which this helper does not provide).

    Returns
    -------
    context manager
    """
    device_type = torch.device(device).type
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype)


def bf16_native(device: str | torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products in hardware.

    On CPU: whether oneDNN has bf16 kernels for this processor (AVX512-BF16
    or AMX). Without them bf16 is emulated, and a bf16 forward pass is much
    slower than float32 (about 7 times in the quickstart on an AVX2 CPU:
    0.64 against 4.67 steps/s). On CUDA: ``torch.cuda.is_bf16_supported()``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        try:
            return bool(check()) if check is not None else False
        except RuntimeError:
            return False
    return True  # other backends: no cheap way to tell; assume the user chose bf16 knowingly
