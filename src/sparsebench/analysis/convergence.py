"""Convergence speed: epochs to reach a validation-accuracy threshold, and curve area.

Per finished trial (diverged trials are excluded explicitly):

- ``threshold`` = ``fraction`` (default 0.95) x the final (last-epoch) validation
  accuracy of the finished ``dense`` trial of the same seed; NaN when that seed
  has no finished dense trial.
- ``epochs_to_threshold``: the first 1-based epoch whose validation accuracy is
  >= threshold. A trial that never gets there is **censored, not dropped**:
  ``reached`` is False and ``epochs_to_threshold`` is E, the number of epochs it
  ran. The true time is then "more than E", so a difference involving a censored
  trial understates its size; two censored trials tie. Because of this, the
  comparison reports how many trials were censored and never calls epochs
  ``equivalent`` when a censored trial is among the pairs.
- ``auc``: the area under the validation-accuracy curve divided by the number of
  epochs, i.e. the mean validation accuracy over epochs 1..E (in [0, 1]). It needs
  no threshold and no censoring, so it is the cleaner of the two measures.

:func:`compare_convergence` compares both against ``random`` with the paired
machinery of :mod:`sparsebench.analysis.paired` (paired t primary, Wilcoxon beside
it, Holm across sparsities).

>>> import pandas as pd
>>> trials = pd.DataFrame({"trial_id": [1, 2], "method": ["dense", "random"],
...     "role": "selected", "status": "done", "sparsity": [0.0, 0.9], "seed": 0})
>>> curves = pd.DataFrame({"trial_id": [1, 1, 1, 2, 2, 2], "epoch": [1, 2, 3] * 2,
...     "val_acc": [0.5, 0.8, 0.9, 0.4, 0.6, 0.7]})
>>> convergence_metrics(trials, curves)[["method", "reached", "epochs_to_threshold", "auc"]].round(3)
   method  reached  epochs_to_threshold    auc
0   dense     True                  3.0  0.733
1  random    False                  3.0  0.567
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparsebench.analysis.paired import ALPHA, DEFAULT_MARGIN, compare_to_baseline
from sparsebench.analysis.trials import (
    BASELINE,
    AnalysisInputError,
    DENSE,
    require_columns,
    require_single_experiment,
    selected_trials,
)

DEFAULT_FRACTION = 0.95

COLUMNS = ["trial_id", "method", "role", "sparsity", "seed", "epochs", "threshold",
           "reached", "epochs_to_threshold", "auc"]


def dense_thresholds(trials: pd.DataFrame, curves: pd.DataFrame,
                     fraction: float = DEFAULT_FRACTION) -> pd.Series:
    """Threshold per seed: ``fraction`` x the dense trial's last-epoch validation accuracy.

    Returns a Series indexed by seed; seeds whose dense trial diverged or is
    missing are absent.
    """
    dense = trials[(trials["method"] == DENSE) & (trials["role"] == "selected")
                   & (trials["status"] == "done")]
    last = (curves[curves["trial_id"].isin(dense["trial_id"])]
            .sort_values("epoch").groupby("trial_id")["val_acc"].last())
    final = dense.set_index("trial_id")["seed"].to_frame().join(last.rename("final_val_acc"), how="inner")
    # One dense parent per seed; if the store ever holds two, average them rather than pick one.
    per_seed = final.groupby("seed")["final_val_acc"].mean()
    return (fraction * per_seed).rename("threshold")


def convergence_metrics(trials: pd.DataFrame, curves: pd.DataFrame,
                        fraction: float = DEFAULT_FRACTION) -> pd.DataFrame:
    """Per finished trial: threshold, reached, epochs_to_threshold (E if censored), auc.

    Returns one row per finished trial that has curve rows, with :data:`COLUMNS`
    (``epochs`` is E, the trial's number of recorded epochs). ``reached`` is False
    and ``epochs_to_threshold`` NaN when the seed has no dense threshold.
    """
    if not 0 < fraction <= 1:
        raise AnalysisInputError(f"fraction: got {fraction!r}; allowed: a number in (0, 1]")
    require_columns(trials, ["trial_id", "method", "role", "status", "sparsity", "seed"])
    require_columns(curves, ["trial_id", "epoch", "val_acc"], table="curves")
    require_single_experiment(trials)
    done = trials[trials["status"] == "done"][["trial_id", "method", "role", "sparsity", "seed"]]
    points = curves[curves["trial_id"].isin(done["trial_id"])][["trial_id", "epoch", "val_acc"]]
    points = points[np.isfinite(points["val_acc"].astype(float))]
    per_trial = points.groupby("trial_id").agg(epochs=("epoch", "max"), auc=("val_acc", "mean"))
    table = done.merge(per_trial, left_on="trial_id", right_index=True, how="inner")
    table = table.merge(dense_thresholds(trials, curves, fraction), left_on="seed",
                        right_index=True, how="left")
    hits = points.merge(table[["trial_id", "threshold"]], on="trial_id")
    first_hit = hits[hits["val_acc"] >= hits["threshold"]].groupby("trial_id")["epoch"].min()
    table = table.assign(first_hit=table["trial_id"].map(first_hit))
    table["reached"] = table["first_hit"].notna()
    has_threshold = table["threshold"].notna()
    # Censored at E: the time is known only to exceed the epochs that were run.
    table["epochs_to_threshold"] = np.where(
        table["reached"], table["first_hit"],
        np.where(has_threshold, table["epochs"], np.nan)).astype(float)
    table["epochs"] = table["epochs"].astype(int)
    return table[COLUMNS].reset_index(drop=True)


def compare_convergence(
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    fraction: float = DEFAULT_FRACTION,
    margin_auc: float | None = DEFAULT_MARGIN,
    margin_epochs: float | None = None,
    alpha: float = ALPHA,
    baseline: str = BASELINE,
    metrics: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each method vs ``random`` per sparsity on ``auc`` and on ``epochs_to_threshold``.

    Returns the columns of :data:`sparsebench.analysis.paired.COLUMNS` (``metric``
    is ``'auc'`` or ``'epochs_to_threshold'``) plus ``n_censored_method`` and
    ``n_censored_baseline``: censored trials among the pairs. ``margin_auc`` is in
    accuracy units (AUC is a mean accuracy, so 0.01 = 1 pp); ``margin_epochs`` is in
    epochs and off by default, so epochs get no equivalence verdict unless asked.
    ``metrics``: the ``convergence_metrics`` of the same inputs when the caller already has them.
    """
    if metrics is None:
        metrics = convergence_metrics(trials, curves, fraction)
    selected = metrics[metrics["role"] == "selected"]
    planned = selected_trials(trials)
    auc = compare_to_baseline(selected, "auc", True, margin_auc, alpha, baseline, planned)
    epochs = compare_to_baseline(selected, "epochs_to_threshold", False, margin_epochs, alpha,
                                 baseline, planned)
    epochs = _with_censoring(epochs, selected, baseline)
    auc = _with_censoring(auc, selected, baseline)
    return pd.concat([auc, epochs], ignore_index=True)


def _with_censoring(table: pd.DataFrame, metrics: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Add censored counts among the compared pairs; forbid 'equivalent' on censored epochs."""
    if table.empty:
        return table.assign(n_censored_method=pd.Series(dtype=int), n_censored_baseline=pd.Series(dtype=int))
    usable = metrics[metrics["threshold"].notna()]
    censored = usable.assign(censored=~usable["reached"])[["sparsity", "method", "seed", "censored"]]
    base = censored[censored["method"] == baseline].drop(columns="method")
    pairs = censored[censored["method"] != baseline].merge(
        base, on=["sparsity", "seed"], suffixes=("_method", "_baseline"))
    counts = pairs.groupby(["sparsity", "method"])[["censored_method", "censored_baseline"]].sum()
    counts = counts.rename(columns=lambda c: "n_" + c).astype(int).reset_index()
    table = table.merge(counts, on=["sparsity", "method"], how="left")
    for column in ("n_censored_method", "n_censored_baseline"):
        table[column] = table[column].fillna(0).astype(int)
    # Ties between two censored trials look like "no difference" but are not evidence of one.
    blocked = ((table["metric"] == "epochs_to_threshold") & (table["verdict"] == "equivalent")
               & ((table["n_censored_method"] + table["n_censored_baseline"]) > 0))
    table.loc[blocked, "verdict"] = "inconclusive"
    table.loc[blocked, "reason"] = ("censored trials among the pairs: equivalence in epochs "
                                    "cannot be shown")
    all_censored = ((table["n_censored_method"] == table["n"])
                    & (table["n_censored_baseline"] == table["n"]))
    never = (table["metric"] == "epochs_to_threshold") & (table["n"] > 0) & all_censored
    table.loc[never, "verdict"] = "inconclusive"
    table.loc[never, "reason"] = ("no trial of either method reached the threshold "
                                  "(all censored at E); see auc")
    return table
