"""What a trial's bits depend on besides its config: torch's thread count and MKL's reproducibility mode.

A trial's numbers are bit-identical whatever else shares its stack only on the
same hardware, software and intra-op thread count, and only with MKL in its
strict reproducibility mode (``MKL_CBWR=AUTO,STRICT``, which the package sets
on import unless the user set ``MKL_CBWR`` already). MKL reads the variable at
its first call and never again: if torch multiplied a matrix before
sparsebench was imported, the mode in effect is MKL's default. ``mkl_mode``
reads the mode in effect back from MKL itself, so that what is recorded is
what ran.
"""

from __future__ import annotations

import ctypes
import functools
import os
import warnings

import torch

#: What the package asks for: MKL picks its code path for the CPU (AUTO) and keeps each result
#: independent of the batch it is computed in, the alignment of its operands and the thread count (STRICT).
STRICT_MODE = "AUTO,STRICT"
_STRICT_BIT = 0x10000
#: MKL_CBWR_* branch codes (mkl_cbwr.h); "OFF" is MKL's default (no reproducibility asked for).
_BRANCHES = {1: "OFF", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSSE3", 7: "SSE4_1", 8: "SSE4_2", 9: "AVX",
             10: "AVX2", 11: "AVX512_MIC", 12: "AVX512", 13: "AVX512_MIC_E1", 14: "AVX512_E1"}


@functools.lru_cache(maxsize=1)
def _mkl_cbwr_get():
    """MKL's ``mkl_cbwr_get`` as torch's library exports it, or None for a build without MKL (ARM, macOS)."""
    if not torch.backends.mkl.is_available():
        return None
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        get = lib.mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return None
    get.argtypes, get.restype = [ctypes.c_int], ctypes.c_int
    return get


def mkl_mode() -> str:
    """MKL's reproducibility mode in effect, as ``MKL_CBWR`` spells it (``"AUTO,STRICT"``, ``"OFF"``, ...).

    ``"none"`` for a torch without MKL; ``"unknown"`` where MKL does not say. Reading
    it fixes the mode as a first MKL call would: it is read only when computing starts.
    """
    get = _mkl_cbwr_get()
    if get is None:
        return "none" if not torch.backends.mkl.is_available() else "unknown"
    settings = get(-1)  # MKL_CBWR_ALL: the branch and the STRICT flag
    branch = _BRANCHES.get(settings & 0xFFFF, str(settings & 0xFFFF))
    return f"{branch},STRICT" if settings & _STRICT_BIT else branch


def is_reproducible(mode: str) -> bool:
    """Whether numbers computed in ``mode`` are independent of the stack (STRICT; or no MKL at all)."""
    return mode == "none" or mode.endswith(",STRICT")


def compute_environment() -> dict[str, str]:
    """The thread count and MKL mode this process computes with, as recorded beside the software versions."""
    return {"threads": str(torch.get_num_threads()), "mkl_cbwr": mkl_mode()}


def warn_if_mkl_not_strict() -> None:
    """Warn, once a process, when MKL computes without the strict mode sparsebench asked for on import.

    That happens when torch used MKL before sparsebench was imported (MKL reads
    ``MKL_CBWR`` once, at its first call): a trial's numbers may then depend in
    the last bits on the trials stacked with it. A different ``MKL_CBWR`` the
    user set is their choice: recorded with the experiment, not warned about.
    """
    global _warned
    mode = mkl_mode()
    if _warned or is_reproducible(mode) or os.environ.get("MKL_CBWR", STRICT_MODE) != STRICT_MODE:
        return
    _warned = True
    from .errors import SparsebenchWarning

    warnings.warn(
        f"MKL computes in its {mode} mode, not {STRICT_MODE}: it was used before sparsebench was imported, "
        "so a trial's numbers may depend in the last bits on the trials stacked with it; "
        "import sparsebench before computing with torch, or set MKL_CBWR=AUTO,STRICT in the environment",
        SparsebenchWarning,
        stacklevel=3,
    )


_warned = False
