"""How far each sparse method falls below the dense parent, per sparsity.

Each finished selected trial is paired with the finished ``dense`` trial of the
same seed (the same parent initialization); the gap is ``method - dense``, so
negative means below the parent. The interval is the 95% paired Student-t
interval of the per-seed gaps.

>>> import pandas as pd
>>> trials = pd.DataFrame({
...     "method": ["dense", "random", "dense", "random"], "role": "selected",
...     "status": "done", "sparsity": [0.0, 0.9, 0.0, 0.9], "seed": [0, 0, 1, 1],
...     "final_test_acc": [0.90, 0.85, 0.92, 0.86]})
>>> dense_gap(trials)[["sparsity", "method", "n", "gap_mean"]].round(3)
   sparsity  method  n  gap_mean
0       0.9  random  2    -0.055
"""

from __future__ import annotations

import pandas as pd

from sparsebench.analysis.intervals import mean_ci, sample_sd
from sparsebench.analysis.trials import DENSE, comparable_trials, pair_with_baseline

COLUMNS = ["sparsity", "method", "metric", "n", "mean_method", "mean_dense",
           "gap_mean", "gap_sd", "ci_low", "ci_high"]


def dense_gap(trials: pd.DataFrame, metric: str = "final_test_acc") -> pd.DataFrame:
    """Gap of each method to the dense parent of the same seed, per sparsity.

    Returns one row per (sparsity, method) with :data:`COLUMNS`: n seed pairs,
    mean of the method and of its dense partners, mean gap (method - dense, in the
    metric's units), its standard deviation and 95% t interval. Diverged trials
    (either side) are excluded; a method without any finished dense partner gets
    no row.
    """
    pairs = pair_with_baseline(comparable_trials(trials), metric, baseline=DENSE, match_sparsity=False)
    rows = []
    for (sparsity, method), group in pairs.groupby(["sparsity", "method"], sort=True):
        gap, low, high = mean_ci(group["difference"])
        rows.append(dict(sparsity=float(sparsity), method=method, metric=metric, n=len(group),
                         mean_method=float(group["value"].mean()),
                         mean_dense=float(group["baseline_value"].mean()),
                         gap_mean=gap, gap_sd=sample_sd(group["difference"]),
                         ci_low=low, ci_high=high))
    return pd.DataFrame(rows, columns=COLUMNS)
