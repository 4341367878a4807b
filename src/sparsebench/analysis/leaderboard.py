"""The leaderboard and the cost of a method: which method gains most over ``random``, for what.

:func:`leaderboard` ranks the methods of a :func:`~sparsebench.analysis.paired_comparison`
table by their **mean gain** over ``random`` (the mean over sparsities of each cell's mean
paired difference; larger is better for accuracy). The cells themselves are the comparison's
rows, whose p-values on the primary metric are Holm-adjusted over every method × sparsity
(see :mod:`sparsebench.analysis.paired`).

:func:`selection_cost` says what each method spent to choose its masks, per sparsity: the
sub-networks it scored (``candidate_evaluations``), the training epochs it spent on search
(``search_epochs``) and the wall-clock seconds of its ``select`` (``selection_seconds``),
averaged over the seeds; :func:`gain_vs_cost` puts gain and cost side by side.

>>> from sparsebench.analysis import paired_comparison, synthetic_results
>>> trials, _ = synthetic_results(seeds=10, sparsities=(0.5, 0.9), methods=("random", "random-search", "mine"),
...                               effects={"mine": 0.02})
>>> leaderboard(paired_comparison(trials))[["rank", "method"]].to_dict("records")
[{'rank': 1, 'method': 'mine'}, {'rank': 2, 'method': 'random-search'}]
>>> cost = selection_cost(trials)
>>> cost.loc[cost["sparsity"] == 0.9, ["method", "candidate_evaluations", "search_epochs"]].to_dict("records")
[{'method': 'random', 'candidate_evaluations': 0.0, 'search_epochs': 0.0}, {'method': 'random-search', 'candidate_evaluations': 8.0, 'search_epochs': 0.0}, {'method': 'mine', 'candidate_evaluations': 0.0, 'search_epochs': 0.0}]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparsebench.analysis.trials import BASELINE, DENSE, method_order, selected_trials

LEADERBOARD_COLUMNS = ["rank", "method", "mean_gain", "n_sparsities", "n_better", "n_worse", "n_equivalent"]
#: The cost of a selection, as the store records it per trial (NULL/NaN: not recorded, before schema 6).
COST_COLUMNS = ("candidate_evaluations", "search_epochs", "selection_seconds")
SELECTION_COST_COLUMNS = ["sparsity", "method", "n_trials", "n_recorded", *COST_COLUMNS]


def leaderboard(comparison: pd.DataFrame) -> pd.DataFrame:
    """One row per method of ``comparison`` (a ``paired_comparison`` table), best first.

    ``mean_gain`` is the mean over the method's sparsities of ``mean_diff`` (method −
    baseline), counting only sparsities with at least one pair; methods are ordered by it,
    best first (highest for a metric where higher is better, lowest otherwise), methods
    without any pair last, ties in the usual method order. ``n_better``, ``n_worse`` and
    ``n_equivalent`` count the method's verdicts. ``rank`` starts at 1.

    >>> rows = pd.DataFrame({"method": ["a", "a", "b", "b"], "sparsity": [0.5, 0.9] * 2, "higher_is_better": True,
    ...                      "mean_diff": [0.01, 0.03, 0.05, -0.01], "verdict": ["better", "better", "worse", "better"]})
    >>> leaderboard(rows)[["rank", "method", "mean_gain", "n_better"]].round(3).to_dict("records")
    [{'rank': 1, 'method': 'a', 'mean_gain': 0.02, 'n_better': 2}, {'rank': 2, 'method': 'b', 'mean_gain': 0.02, 'n_better': 1}]
    """
    if comparison.empty:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    higher = bool(comparison["higher_is_better"].iloc[0])
    usual = {m: i for i, m in enumerate(method_order(comparison["method"].unique()))}
    rows = []
    for method, cells in comparison.groupby("method", sort=False):
        diffs = cells["mean_diff"].astype(float)
        finite = diffs[np.isfinite(diffs)]
        verdicts = cells["verdict"].tolist()
        rows.append(dict(method=method, mean_gain=float(finite.mean()) if len(finite) else np.nan,
                         n_sparsities=int(len(finite)), n_better=verdicts.count("better"),
                         n_worse=verdicts.count("worse"), n_equivalent=verdicts.count("equivalent")))
    table = pd.DataFrame(rows)
    # Rounded so that a difference in the last bits of a float sum does not decide a tie.
    key = table["mean_gain"].round(12) * (-1 if higher else 1)
    table = table.assign(_missing=table["mean_gain"].isna(), _key=key, _usual=table["method"].map(usual))
    table = table.sort_values(["_missing", "_key", "_usual"]).reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table[LEADERBOARD_COLUMNS]


def selection_cost(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (sparsity, method) of the selected trials (the dense parent left out): the mean over
    seeds of ``candidate_evaluations``, ``search_epochs`` and ``selection_seconds``.

    ``n_recorded`` counts the trials that recorded their cost; a mean is NaN when none did
    (trials stored before schema 6, or a table without the columns). Every trial counts,
    diverged or not: the search was spent either way. Rows in sparsity, then method order.
    """
    chosen = selected_trials(trials)
    chosen = chosen[chosen["method"] != DENSE]
    chosen = chosen.assign(**{c: np.nan for c in COST_COLUMNS if c not in chosen.columns})
    if chosen.empty:
        return pd.DataFrame(columns=SELECTION_COST_COLUMNS)
    values = chosen[["sparsity", "method", *COST_COLUMNS]].copy()
    for column in COST_COLUMNS:
        values[column] = pd.to_numeric(values[column], errors="coerce").astype(float)
    values["recorded"] = values["candidate_evaluations"].notna()
    grouped = values.groupby(["sparsity", "method"])
    table = grouped[list(COST_COLUMNS)].mean()
    table["n_trials"] = grouped.size()
    table["n_recorded"] = grouped["recorded"].sum().astype(int)
    table = table.reset_index()
    order = {m: i for i, m in enumerate(method_order(table["method"]))}
    table = table.sort_values(["sparsity", "method"], key=lambda c: c.map(order) if c.name == "method" else c)
    return table[SELECTION_COST_COLUMNS].reset_index(drop=True)


GAIN_VS_COST_COLUMNS = ["method", "sparsity", "n", "mean_diff", "ci_low", "ci_high", "verdict",
                        "n_recorded", *COST_COLUMNS]


def gain_vs_cost(comparison: pd.DataFrame, trials: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Each compared method's gain over ``baseline`` (``comparison`` rows: mean difference, 95% CI,
    verdict) beside its selection cost at that sparsity (:func:`selection_cost`); the baseline's
    own cost gets a row per sparsity too (gain 0 by definition, shown as NaN), so that the price
    of the reference is in view. Methods in :func:`leaderboard` order, then sparsity.
    """
    cost = selection_cost(trials)
    gains = comparison[["method", "sparsity", "n", "mean_diff", "ci_low", "ci_high", "verdict"]]
    reference = cost.loc[cost["method"] == baseline, ["method", "sparsity"]]
    table = pd.concat([reference.assign(n=0, mean_diff=np.nan, ci_low=np.nan, ci_high=np.nan, verdict=""), gains],
                      ignore_index=True)
    table = table.merge(cost.drop(columns="n_trials"), on=["method", "sparsity"], how="left")
    table["n_recorded"] = table["n_recorded"].fillna(0).astype(int)
    ranks = {m: i + 1 for i, m in enumerate(leaderboard(comparison)["method"])}
    ranks[baseline] = 0
    table = table.assign(_rank=table["method"].map(ranks).fillna(len(ranks) + 1))
    table = table.sort_values(["_rank", "sparsity"]).reset_index(drop=True)
    return table[GAIN_VS_COST_COLUMNS]
