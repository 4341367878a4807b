"""The one-table summary a run prints: accuracy per sparsity and method, with the verdict.

>>> import pandas as pd
>>> rows = [dict(method=m, role="selected", status="done", sparsity=s, seed=seed, final_test_acc=a)
...         for seed in range(3)
...         for m, s, a in (("dense", 0.0, 0.90), ("random", 0.9, 0.80 + seed / 100),
...                         ("random-search", 0.9, 0.81 + seed / 100))]
>>> summary_table(pd.DataFrame(rows))[["sparsity", "method", "n", "verdict"]].to_dict("records")[2]
{'sparsity': 0.9, 'method': 'random-search', 'n': 3, 'verdict': 'too few seeds'}
"""

from __future__ import annotations

import pandas as pd

from sparsebench.analysis.divergence import divergence_counts
from sparsebench.analysis.paired import ALPHA, DEFAULT_MARGIN, MIN_SEEDS, paired_comparison
from sparsebench.analysis.trials import BASELINE, DENSE, comparable_trials, method_order

COLUMNS = ["sparsity", "method", "n", "mean_test_acc", "sd_test_acc", "n_diverged", "verdict"]


def summary_table(trials: pd.DataFrame, margin: float = DEFAULT_MARGIN,
                  alpha: float = ALPHA, comparison: pd.DataFrame | None = None,
                  min_seeds: int = MIN_SEEDS) -> pd.DataFrame:
    """Per sparsity and method (selected trials): n finished, mean and sd of final test
    accuracy (fractions; NaN-free), n_diverged, and the verdict vs ``random`` from
    :func:`sparsebench.analysis.paired.paired_comparison` ('' for random and dense):
    'too few seeds' below ``min_seeds`` paired seeds, 'identical (not tested)' when
    every paired difference is exactly 0.

    Rows are sorted by sparsity, then dense, random, random-search, other methods.
    ``comparison``: the accuracy ``paired_comparison`` when the caller already has it.
    """
    done = comparable_trials(trials)
    accuracy = (done.groupby(["sparsity", "method"])["final_test_acc"]
                .agg(n="count", mean_test_acc="mean", sd_test_acc="std").reset_index())
    counts = divergence_counts(trials)[["sparsity", "method", "n_diverged"]]
    table = counts.merge(accuracy, on=["sparsity", "method"], how="left")
    table["n"] = table["n"].fillna(0).astype(int)
    if comparison is None:
        comparison = paired_comparison(trials, margin=margin, alpha=alpha, min_seeds=min_seeds)
    verdicts = comparison[["sparsity", "method", "verdict"]]
    table = table.merge(verdicts, on=["sparsity", "method"], how="left")
    # Without a random trial at that sparsity there is nothing to compare with.
    compared = ~table["method"].isin([BASELINE, DENSE])
    table["verdict"] = table["verdict"].where(table["verdict"].notna(),
                                              compared.map({True: "n/a (no random)", False: ""}))
    order = {m: i for i, m in enumerate(method_order(table["method"]))}
    table = table.sort_values(["sparsity", "method"],
                              key=lambda column: column.map(order) if column.name == "method" else column)
    return table[COLUMNS].reset_index(drop=True)
