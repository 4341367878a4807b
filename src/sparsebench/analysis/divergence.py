"""Diverged trials, counted per sparsity and method.

A trial whose loss became non-finite stops with ``status == 'diverged'`` and NaN
metrics. Every other analysis excludes such trials explicitly (and never averages
their NaNs); this table is where they are reported instead, so a method that
diverges often cannot look good merely because its failures vanished.

>>> import pandas as pd
>>> trials = pd.DataFrame({"method": "random", "role": "selected", "sparsity": 0.9,
...     "seed": [0, 1, 2], "status": ["done", "diverged", "done"],
...     "diverged_epoch": [float("nan"), 3.0, float("nan")]})
>>> divergence_counts(trials).to_dict("records")
[{'sparsity': 0.9, 'method': 'random', 'n_trials': 3, 'n_diverged': 1, 'diverged_fraction': 0.3333333333333333, 'first_diverged_epoch': 3.0}]
"""

from __future__ import annotations

import pandas as pd

from sparsebench.analysis.trials import selected_trials

COLUMNS = ["sparsity", "method", "n_trials", "n_diverged", "diverged_fraction", "first_diverged_epoch"]


def divergence_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (sparsity, method) of the selected trials: trials, diverged, fraction, earliest epoch.

    ``first_diverged_epoch`` is the earliest 1-based epoch at which one of them
    diverged (NaN if none did, or if the column is absent).
    """
    chosen = selected_trials(trials)
    chosen = chosen.assign(diverged=chosen["status"] == "diverged")
    if "diverged_epoch" not in chosen.columns:
        chosen = chosen.assign(diverged_epoch=float("nan"))
    epochs = chosen["diverged_epoch"].where(chosen["diverged"])
    chosen = chosen.assign(epoch_if_diverged=epochs.astype(float))
    grouped = chosen.groupby(["sparsity", "method"], sort=True)
    table = grouped.agg(n_trials=("diverged", "size"), n_diverged=("diverged", "sum"),
                        first_diverged_epoch=("epoch_if_diverged", "min")).reset_index()
    table["n_diverged"] = table["n_diverged"].astype(int)
    table["diverged_fraction"] = table["n_diverged"] / table["n_trials"]
    table["sparsity"] = table["sparsity"].astype(float)
    return table[COLUMNS]
