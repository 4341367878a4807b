"""Keep freed memory in the process instead of handing it back to the OS every step.

Training allocates and frees the same few-MB activations and gradients at
every step. With glibc's default, adaptive thresholds, such blocks are often
returned to the kernel on ``free`` and faulted in again, zeroed, page by page
on the next ``malloc``: tens of thousands of page faults per work group, about
5% of the engine's time. Raising the two thresholds keeps them in the heap.
The price: memory freed by this process stays resident until it exits
(bounded by the run's peak).
"""

from __future__ import annotations

import ctypes
import os
import platform

# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: Blocks under this size come from the heap, not from a fresh mmap (older
#: glibc refuses more than 32 MiB on 64-bit).
MMAP_THRESHOLD_BYTES = 32 << 20
#: Free memory at the top of the heap up to this size is kept, not trimmed.
TRIM_THRESHOLD_BYTES = 256 << 20
#: Set to 0 to leave the C allocator as it is.
ENV = "SPARSEBENCH_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; False where that does not apply (or is turned off)."""
    if os.environ.get(ENV, "1").strip() == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success; fixing the thresholds also turns glibc's adaptive ones off.
    mmap_set = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    trim_set = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    return mmap_set and trim_set
