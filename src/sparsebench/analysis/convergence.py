"""Convergence speed: epochs to reach an accuracy threshold, and curve area.

Which curve: the **monitoring split** (``curves.monitor_acc``) when the
experiment has one -- rows held out of the validation split that no method
selects on -- else the **validation split** (``val_acc``), which random search
scores its candidates on, so a method that selects on validation is measured on
its own selection data there. :func:`convergence_split` decides (per experiment:
monitoring if any of its finished trials has a monitoring value); the result
says which in its ``split`` column and in ``.attrs["split"]``, and the report
states it.

Per finished trial (diverged trials are excluded explicitly), with E the
configured number of epochs (the trials' ``epochs`` column, else the longest
recorded curve):

- ``threshold`` = ``fraction`` (default 0.95) x the final (last recorded) accuracy
  of the finished ``dense`` trial of the same seed **on the same split**; NaN when
  that seed has no finished dense trial.
- **Curves that end early.** A trial stopped by the stopping rule (``stop_epoch``
  set) is frozen from its stop epoch on: its weights, and so its accuracy, no
  longer change. Its curve is therefore **continued at its last recorded value up
  to E**. Both measures below use that continued curve, so every trial is measured
  over the same E epochs whether or not it stopped early.
- ``epochs_to_threshold``: the first 1-based epoch whose accuracy is >=
  threshold. A trial that never gets there by its last recorded epoch (for a
  stopped trial: its stop epoch; frozen, it never gets there later) is
  **censored, not dropped**: ``reached`` is False and ``epochs_to_threshold`` is E.
  The true time is then "more than E", so a difference involving a censored trial
  understates its size; two censored trials tie. Because of this, the comparison
  reports how many trials were censored and never calls epochs ``equivalent`` or
  ``identical`` when a censored trial is among the pairs.
- ``auc``: the area under the continued accuracy curve divided by E, i.e. the mean
  accuracy over epochs 1..E (in [0, 1]). It needs no threshold and no censoring,
  so it is the cleaner of the two measures.
- ``stop_epoch``: the epoch its stopping rule stopped it, NaN if it trained all E.

:func:`compare_convergence` compares both against ``random`` with the paired
machinery of :mod:`sparsebench.analysis.paired` (paired t primary, Wilcoxon beside
it, Holm across sparsities, no verdict below ``MIN_SEEDS`` seeds).

>>> import pandas as pd
>>> trials = pd.DataFrame({"trial_id": [1, 2], "method": ["dense", "random"],
...     "role": "selected", "status": "done", "sparsity": [0.0, 0.9], "seed": 0})
>>> curves = pd.DataFrame({"trial_id": [1, 1, 1, 2, 2, 2], "epoch": [1, 2, 3] * 2,
...     "val_acc": [0.5, 0.8, 0.9, 0.4, 0.6, 0.7]})
>>> convergence_metrics(trials, curves)[["method", "reached", "epochs_to_threshold", "auc", "split"]].round(3)
   method  reached  epochs_to_threshold    auc       split
0   dense     True                  3.0  0.733  validation
1  random    False                  3.0  0.567  validation

A trial stopped at epoch 2 of 4 is frozen at its epoch-2 value for the rest:

>>> stopped = trials.assign(epochs=4, stop_epoch=[None, 2.0])
>>> curves4 = pd.DataFrame({"trial_id": [1, 1, 1, 1, 2, 2], "epoch": [1, 2, 3, 4, 1, 2],
...     "val_acc": [0.5, 0.8, 0.9, 0.9, 0.4, 0.6]})
>>> convergence_metrics(stopped, curves4)[["method", "epochs", "stop_epoch", "reached", "auc"]]
   method  epochs  stop_epoch  reached    auc
0   dense       4         NaN     True  0.775
1  random       4         2.0    False  0.550
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparsebench.analysis.paired import ALPHA, DEFAULT_MARGIN, IDENTICAL, compare_to_baseline
from sparsebench.analysis.trials import (
    BASELINE,
    AnalysisInputError,
    DENSE,
    require_columns,
    require_single_experiment,
    selected_trials,
)

DEFAULT_FRACTION = 0.95

#: Split name -> the curves column its accuracy is in.
SPLIT_COLUMNS = {"monitor": "monitor_acc", "validation": "val_acc"}

#: How the report names each split (the monitoring split is what no method selects on).
SPLIT_DESCRIPTIONS = {
    "monitor": "the monitoring split (rows held out of the validation split, which no method selects on)",
    "validation": "the validation split (the split that search methods such as random search select on)",
}

COLUMNS = ["trial_id", "method", "role", "sparsity", "seed", "epochs", "stop_epoch", "threshold",
           "reached", "epochs_to_threshold", "auc", "split"]


def convergence_split(trials: pd.DataFrame, curves: pd.DataFrame) -> str:
    """``'monitor'`` when a finished trial of the experiment has a monitoring accuracy, else ``'validation'``.

    Old stores and experiments without a monitoring split have ``monitor_acc`` NULL (or no
    such column): their convergence is measured on the validation split.

    >>> convergence_split(pd.DataFrame({"trial_id": [1], "status": ["done"]}),
    ...                   pd.DataFrame({"trial_id": [1], "val_acc": [0.5], "monitor_acc": [None]}))
    'validation'
    """
    if "monitor_acc" not in curves.columns:
        return "validation"
    done = trials.loc[trials["status"] == "done", "trial_id"] if "status" in trials.columns else trials["trial_id"]
    values = pd.to_numeric(curves.loc[curves["trial_id"].isin(done), "monitor_acc"], errors="coerce")
    return "monitor" if bool(np.isfinite(values.to_numpy(float)).any()) else "validation"


def _split_column(trials: pd.DataFrame, curves: pd.DataFrame, split: str | None) -> tuple[str, str]:
    split = convergence_split(trials, curves) if split is None else split
    if split not in SPLIT_COLUMNS:
        raise AnalysisInputError(f"split: got {split!r}; allowed: {sorted(SPLIT_COLUMNS)} or None (automatic)")
    column = SPLIT_COLUMNS[split]
    require_columns(curves, ["trial_id", "epoch", column], table="curves")
    return split, column


def dense_thresholds(trials: pd.DataFrame, curves: pd.DataFrame,
                     fraction: float = DEFAULT_FRACTION, split: str | None = None) -> pd.Series:
    """Threshold per seed: ``fraction`` x the dense trial's last recorded accuracy on ``split``.

    ``split`` is ``'monitor'``, ``'validation'`` or None (as :func:`convergence_split`
    decides). Returns a Series indexed by seed; seeds whose dense trial diverged or is
    missing are absent.
    """
    split, column = _split_column(trials, curves, split)
    dense = trials[(trials["method"] == DENSE) & (trials["role"] == "selected")
                   & (trials["status"] == "done")]
    points = _finite_points(curves[curves["trial_id"].isin(dense["trial_id"])], column)
    # A stopped dense parent is frozen at its last recorded value, so "last" is its final accuracy.
    last = points.sort_values("epoch").groupby("trial_id")["acc"].last().rename("final_acc")
    final = dense[["trial_id", "seed"]].merge(last, left_on="trial_id", right_index=True, how="inner")
    # One dense parent per seed; if the store ever holds two, average them rather than pick one.
    per_seed = final.groupby("seed")["final_acc"].mean()
    return (fraction * per_seed).rename("threshold")


def _finite_points(curves: pd.DataFrame, column: str) -> pd.DataFrame:
    """``trial_id, epoch, acc`` rows with a finite accuracy (a plain RangeIndex)."""
    points = curves[["trial_id", "epoch", column]].rename(columns={column: "acc"})
    acc = pd.to_numeric(points["acc"], errors="coerce").astype(float)
    return points.assign(acc=acc)[np.isfinite(acc.to_numpy())].reset_index(drop=True)


def _configured_epochs(done: pd.DataFrame, points: pd.DataFrame) -> pd.Series:
    """E per trial: the configured epochs when the trials say, else the longest recorded curve."""
    longest = float(points["epoch"].max()) if len(points) else np.nan
    if "epochs" in done.columns:
        configured = pd.to_numeric(done["epochs"], errors="coerce").astype(float)
        return configured.fillna(longest)
    return pd.Series(longest, index=done.index, dtype=float)


def _curve_summary(points: pd.DataFrame) -> pd.DataFrame:
    """Per trial: last recorded epoch, its accuracy, the sum and count of recorded accuracies."""
    ordered = points.sort_values(["trial_id", "epoch"])
    return ordered.groupby("trial_id", sort=True).agg(
        last_epoch=("epoch", "max"), last_acc=("acc", "last"), acc_sum=("acc", "sum"),
        n_points=("acc", "size")).reset_index()


def held_after_stop(points: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Curve rows of stopped trials continued at their last row up to their configured epochs.

    The rule :func:`convergence_metrics` applies to the area under the curve, as rows:
    a stopped network is frozen (its final weights are those of its stop epoch), so a
    mean curve over seeds keeps counting it instead of averaging only the networks
    still training, which would make the mean jump at every stop.

    >>> trials = pd.DataFrame({"trial_id": [1, 2], "stop_epoch": [2.0, None], "epochs": [4, 4]})
    >>> curves = pd.DataFrame({"trial_id": [1, 1, 2], "epoch": [1, 2, 1], "acc": [0.2, 0.5, 0.1]})
    >>> held_after_stop(curves, trials).query("trial_id == 1")["acc"].tolist()
    [0.2, 0.5, 0.5, 0.5]
    """
    if "stop_epoch" not in trials.columns or trials["stop_epoch"].isna().all():
        return points
    configured = trials.loc[trials["stop_epoch"].notna(), ["trial_id", "epochs"]].rename(columns={"epochs": "_until"})
    last = points.sort_values("epoch").groupby("trial_id").tail(1).merge(configured, on="trial_id")
    missing = (last["_until"] - last["epoch"]).clip(lower=0).astype(int).to_numpy()
    if not missing.sum():
        return points
    tail = last.loc[last.index.repeat(missing)].drop(columns="_until")
    tail["epoch"] += tail.groupby(level=0).cumcount() + 1
    return pd.concat([points, tail], ignore_index=True)


def convergence_metrics(trials: pd.DataFrame, curves: pd.DataFrame,
                        fraction: float = DEFAULT_FRACTION, split: str | None = None) -> pd.DataFrame:
    """Per finished trial: threshold, reached, epochs_to_threshold (E if censored), auc, split.

    Returns one row per finished trial that has curve rows, with :data:`COLUMNS`
    (``epochs`` is E, the configured number of epochs; ``stop_epoch`` NaN for a trial
    that trained all of them). ``reached`` is False and ``epochs_to_threshold`` NaN
    when the seed has no dense threshold. ``split`` (also ``.attrs["split"]``) is the
    split the accuracies come from (see :func:`convergence_split`). An experiment
    whose trials all diverged gives an empty frame with these columns.
    """
    if not 0 < fraction <= 1:
        raise AnalysisInputError(f"fraction: got {fraction!r}; allowed: a number in (0, 1]")
    require_columns(trials, ["trial_id", "method", "role", "status", "sparsity", "seed"])
    require_single_experiment(trials)
    split, column = _split_column(trials, curves, split)
    done = trials[trials["status"] == "done"].reset_index(drop=True)
    points = _finite_points(curves[curves["trial_id"].isin(done["trial_id"])], column)
    stop = (pd.to_numeric(done["stop_epoch"], errors="coerce").astype(float) if "stop_epoch" in done.columns
            else pd.Series(np.nan, index=done.index))
    table = done[["trial_id", "method", "role", "sparsity", "seed"]].assign(
        epochs=_configured_epochs(done, points), stop_epoch=stop)
    table = table.merge(_curve_summary(points), on="trial_id", how="inner")
    table = table.merge(dense_thresholds(trials, curves, fraction, split), left_on="seed",
                        right_index=True, how="left")
    hits = points.merge(table[["trial_id", "threshold"]], on="trial_id")
    first_hit = hits[hits["acc"] >= hits["threshold"]].groupby("trial_id")["epoch"].min()
    table["epochs"] = np.maximum(table["epochs"], table["last_epoch"])  # never shorter than the curve
    # The frozen tail: the last recorded value repeated up to E (zero epochs for a full curve).
    tail = table["epochs"] - table["last_epoch"]
    table["auc"] = (table["acc_sum"] + tail * table["last_acc"]) / (table["n_points"] + tail)
    table["first_hit"] = table["trial_id"].map(first_hit).astype(float)
    table["reached"] = table["first_hit"].notna()
    has_threshold = table["threshold"].notna()
    # Censored at E: the time is known only to exceed the epochs that were run.
    table["epochs_to_threshold"] = np.where(
        table["reached"], table["first_hit"],
        np.where(has_threshold, table["epochs"], np.nan)).astype(float)
    table = table.assign(split=split, epochs=table["epochs"].astype(int), threshold=table["threshold"].astype(float),
                         reached=table["reached"].astype(bool), auc=table["auc"].astype(float))
    result = table[COLUMNS].reset_index(drop=True)
    result.attrs["split"] = split
    return result


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
    A ``split`` column (and ``.attrs["split"]``) says which split the curves came from.
    """
    if metrics is None:
        metrics = convergence_metrics(trials, curves, fraction)
    split = metrics.attrs.get("split", convergence_split(trials, curves))
    selected = metrics[metrics["role"] == "selected"]
    planned = selected_trials(trials)
    auc = compare_to_baseline(selected, "auc", True, margin_auc, alpha, baseline, planned)
    epochs = compare_to_baseline(selected, "epochs_to_threshold", False, margin_epochs, alpha,
                                 baseline, planned)
    epochs = _with_censoring(epochs, selected, baseline)
    auc = _with_censoring(auc, selected, baseline)
    table = pd.concat([auc, epochs], ignore_index=True).assign(split=split)
    table.attrs["split"] = split
    return table


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
    blocked = ((table["metric"] == "epochs_to_threshold") & table["verdict"].isin(["equivalent", IDENTICAL])
               & ((table["n_censored_method"] + table["n_censored_baseline"]) > 0))
    table.loc[blocked, "verdict"] = "inconclusive"
    table.loc[blocked, "reason"] = ("censored trials among the pairs: a tie in epochs "
                                    "may hide any difference beyond E")
    all_censored = ((table["n_censored_method"] == table["n"])
                    & (table["n_censored_baseline"] == table["n"]))
    never = (table["metric"] == "epochs_to_threshold") & (table["n"] > 0) & all_censored
    table.loc[never, "verdict"] = "inconclusive"
    table.loc[never, "reason"] = ("no trial of either method reached the threshold "
                                  "(all censored at E); see auc")
    return table
