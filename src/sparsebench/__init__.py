"""sparsebench: a Random Search baseline and evaluation harness for sparse architecture search.

>>> import sparsebench
>>> cfg = sparsebench.ExperimentConfig.from_sources(preset="quick", overrides={"epochs": 2})
>>> # trials = sparsebench.run(cfg, store="runs.db")   # a pandas DataFrame, one row per trial
"""

import os
from importlib import import_module

__version__ = "0.3.0"

# MKL's strict conditional numerical reproducibility: with it, a batched product
# (``torch.bmm``) gives each matrix of a stack the bits it gets multiplied alone,
# at any alignment and thread count, which is what makes a trial's numbers
# independent of the trials stacked with it (DESIGN.md, "Reproducibility at any
# scale"). MKL reads the variable once, at its first call: set here, before this
# package multiplies anything. A value the user set is theirs and kept; the mode
# in effect is read back and recorded with each experiment (``numerics.mkl_mode``),
# and a run warns when it is not strict (MKL used before sparsebench was imported).
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

# The public API, loaded on first use (PEP 562): `import sparsebench.cli` must not
# import torch, so that the command line answers --help, bad input and an early
# Ctrl-C at once.
_EXPORTS = {
    "PRESETS": "config",
    "ExperimentConfig": "config",
    "ConfigError": "errors",
    "SparsebenchError": "errors",
    "StoreError": "errors",
    "Method": "methods",
    "Selection": "methods",
    "SelectionContext": "methods",
    "register_method": "methods",
    "register_dataset": "data",
    "run": "runner",
    "export_table": "api",
    "list_experiments": "api",
    "load_candidates": "api",
    "load_curves": "api",
    "load_mask": "api",
    "load_results": "api",
    "load_subnetwork": "api",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        try:  # a submodule, e.g. sparsebench.api or sparsebench.analysis
            return import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'sparsebench' has no attribute {name!r}") from None
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
