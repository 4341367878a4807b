"""sparsebench: a Random Search baseline and evaluation harness for sparse architecture search.

>>> import sparsebench
>>> cfg = sparsebench.ExperimentConfig.from_sources(preset="quick", overrides={"epochs": 2})
>>> # trials = sparsebench.run(cfg, store="runs.db")   # a pandas DataFrame, one row per trial
"""

from .api import export_table, list_experiments, load_curves, load_mask, load_results, load_subnetwork
from .config import PRESETS, ExperimentConfig
from .errors import ConfigError, SparsebenchError, StoreError
from .methods import Method, Selection, SelectionContext, register_method
from .data import register_dataset
from .runner import run

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "ConfigError",
    "ExperimentConfig",
    "Method",
    "Selection",
    "SelectionContext",
    "SparsebenchError",
    "StoreError",
    "list_experiments",
    "load_curves",
    "load_mask",
    "load_results",
    "load_subnetwork",
    "export_table",
    "register_dataset",
    "register_method",
    "run",
]
