"""Peak extra memory of one call: how far above its starting point memory went while ``fn`` ran.

* CUDA: ``torch.cuda.reset_peak_memory_stats`` / ``max_memory_allocated`` (tensor bytes held by the
  caching allocator; exact).
* CPU on Linux: write ``5`` to ``/proc/self/clear_refs`` (resets the high-water mark ``VmHWM`` to the
  current ``VmRSS``), run ``fn``, read ``VmHWM``. Freed heap memory is first handed back to the system
  (``malloc_trim``) so that re-used pages are counted; the figure is resident memory, so it includes
  allocator slack and anything else the process touched meanwhile (e.g. a data loader's batches).
* ``method="tensors"`` (CPU): replay the allocation events ``torch.profiler`` records (``profile_memory``)
  and take the peak of their running sum: bytes held by CPU tensors, exact and free of allocator effects, but
  the profiler slows ``fn`` down (frees of blocks allocated before the call are not seen, so it errs high).
* Elsewhere: ``resource.getrusage(...).ru_maxrss``, which cannot be reset: the figure is only the rise of
  the process's lifetime peak, i.e. a lower bound (0 when ``fn`` stayed under an earlier peak).

glibc keeps freed blocks of up to 32 MB in its heap (its mmap threshold grows with the blocks it frees), so
resident memory can lie tens of MB above the memory tensors actually hold, by an amount that changes from
run to run. :func:`tight_cpu_accounting` fixes the threshold so that large blocks are mapped and unmapped
one by one; called early in a process it makes resident memory follow live tensor memory within a few MB,
called late it removes only part of the slack. It slows later allocations and cannot be undone, so call it
after any timing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")

_MB = 1024.0 * 1024.0
_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kb(field: str) -> int | None:
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _malloc_trim() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def tight_cpu_accounting(threshold_bytes: int = 1 << 20) -> bool:
    """glibc only: serve allocations of ``threshold_bytes`` or more with their own mappings, returned to the
    system on free, so that CPU peaks measured by :func:`peak_extra_mb` are close to tensor memory.
    Process-wide and permanent (it turns off glibc's adaptive threshold). Returns whether it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, int(threshold_bytes)))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def _maxrss_mb() -> float:
    import resource  # POSIX only

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / _MB if sys.platform == "darwin" else r / 1024.0  # bytes on macOS, KiB on Linux


def _resolve(device: torch.device | str | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _tensor_peak_mb(fn: Callable[[], T]) -> tuple[T, float]:
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    events = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()  # type: ignore[union-attr]
        if e.name() == "[memory]" and e.device_type() == DeviceType.CPU
    )
    cur = peak = 0
    for _, nbytes in events:
        cur += nbytes
        peak = max(peak, cur)
    return result, peak / _MB


def peak_extra_mb(
    fn: Callable[[], T], device: torch.device | str | None = None, method: str = "auto"
) -> tuple[T, float]:
    """Run ``fn()`` and return ``(result, MiB)``: its peak memory above the memory in use when it started.

    ``device`` picks the accounting, by default CUDA when available. ``method``: ``"auto"`` (CUDA
    allocator statistics on CUDA, resident memory on CPU), ``"rss"`` or ``"tensors"`` (CPU tensor bytes
    from the profiler). See the module docstring for what each counts.
    """
    if method not in ("auto", "rss", "tensors"):
        raise ValueError(f"method must be 'auto', 'rss' or 'tensors', got {method!r}")
    dev = _resolve(device)
    gc.collect()
    if dev.type == "cuda" and method == "auto":
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        result = fn()
        torch.cuda.synchronize(dev)
        return result, max(0.0, (torch.cuda.max_memory_allocated(dev) - base) / _MB)
    if method == "tensors":
        return _tensor_peak_mb(fn)

    _malloc_trim()
    if _reset_hwm():
        base_kb = _status_kb("VmRSS")
        if base_kb is not None:
            result = fn()
            peak_kb = _status_kb("VmHWM")
            if peak_kb is not None:
                return result, max(0.0, (peak_kb - base_kb) / 1024.0)
            return result, 0.0
    before = _maxrss_mb()
    result = fn()
    return result, max(0.0, _maxrss_mb() - before)
