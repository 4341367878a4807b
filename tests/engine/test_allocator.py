"""keep_freed_memory: applied where glibc is, and only there; an environment switch turns it off."""

import ctypes
import os
import platform
import subprocess
import sys

import pytest

from sparsebench.engine.allocator import ENV, keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# A fresh process allocates a 16 MB block (the size of a work group's
# activations), then frees it; prints where glibc put it (bytes in mmapped
# blocks while it lives) and how much free memory the heap kept afterwards
# (glibc's own mallinfo2 counters).
PLACEMENT = """
import ctypes, sys, torch
from sparsebench.engine.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
block = torch.ones(4 << 20)
mmapped = libc.mallinfo2().hblkhd
del block
print(mmapped, libc.mallinfo2().fordblks)
"""
MB = 1 << 20


@pytest.mark.skipif(not GLIBC or not hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2"), reason="glibc >= 2.33 tuned by mallopt")
def test_kept_memory_comes_from_the_heap_and_stays_there():
    def placement(mode: str) -> tuple[int, int]:
        env = {k: v for k, v in os.environ.items() if k != ENV}
        out = subprocess.run([sys.executable, "-c", PLACEMENT, mode], capture_output=True, text=True, check=True, env=env).stdout
        mmapped, free_in_heap = map(int, out.split())
        return mmapped, free_in_heap

    default_mmapped, _ = placement("default")
    kept_mmapped, kept_free = placement("keep")
    assert default_mmapped >= 16 * MB  # glibc's default: a fresh mmap, unmapped again on free
    assert kept_mmapped < 16 * MB and kept_free >= 16 * MB  # kept: from the heap, and still there once freed


def test_keep_freed_memory_is_off_when_the_environment_says_so(monkeypatch):
    monkeypatch.setenv(ENV, "0")
    assert keep_freed_memory() is False
