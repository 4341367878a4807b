"""Choosing and pairing the rows of the trials table that an analysis may use.

Every analysis goes through these functions so that the same rules hold
everywhere: one experiment at a time, only ``role == 'selected'`` trials in
comparisons, diverged trials excluded *explicitly* (they are counted by
:mod:`sparsebench.analysis.divergence`, never averaged), and pairs formed by
seed, because trials that share a seed share the parent initialization and the
minibatch order.

>>> import pandas as pd
>>> trials = pd.DataFrame({
...     "method": ["random", "random-search", "random", "random-search"],
...     "role": "selected", "status": ["done", "done", "done", "diverged"],
...     "sparsity": 0.9, "seed": [0, 0, 1, 1],
...     "final_test_acc": [0.80, 0.82, 0.79, float("nan")]})
>>> pair_with_baseline(comparable_trials(trials), "final_test_acc")[["seed", "difference"]].round(2)
   seed  difference
0     0        0.02
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from sparsebench.errors import SparsebenchError

from sparsebench.names import BASELINE, DENSE, RANDOM_SEARCH  # noqa: F401  (re-exported for the analysis modules)


class AnalysisInputError(SparsebenchError, ValueError):
    """The trials or curves table cannot be analysed as given (say why and how to fix)."""


def require_columns(frame: pd.DataFrame, columns: Iterable[str], table: str = "trials") -> None:
    """Raise :class:`AnalysisInputError` naming the missing columns, if any."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise AnalysisInputError(
            f"{table}: missing column(s) {missing}; the store's {table} table has them")


def require_single_experiment(trials: pd.DataFrame) -> None:
    """Raise unless the table holds at most one experiment.

    Seeds are pairing units only within one experiment; pooling two experiments
    would pair unrelated networks.
    """
    if "experiment_id" not in trials.columns:
        return
    experiments = sorted(pd.unique(trials["experiment_id"].dropna()).tolist())
    if len(experiments) > 1:
        raise AnalysisInputError(
            f"trials: hold experiments {experiments}; analyse one at a time, "
            f"e.g. trials[trials.experiment_id == {experiments[0]}]")


def selected_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials of the comparison proper (``role == 'selected'``), any status.

    Probe trials (extra random-search candidates trained only to check the score)
    are left out: they are not what a method selected.
    """
    require_columns(trials, ["method", "role", "status", "sparsity", "seed"])
    require_single_experiment(trials)
    return trials[trials["role"] == "selected"]


def comparable_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Selected trials that finished (``status == 'done'``); diverged ones are excluded.

    Raises if a (method, sparsity, seed) occurs twice, since pairing by seed would
    then be ambiguous.
    """
    chosen = selected_trials(trials)
    duplicated = chosen.duplicated(["method", "sparsity", "seed"], keep=False)
    if duplicated.any():
        first = chosen[duplicated].iloc[0]
        raise AnalysisInputError(
            "trials: more than one selected trial for method "
            f"{first['method']!r}, sparsity {first['sparsity']}, seed {first['seed']}; "
            "keep one row per (method, sparsity, seed)")
    return chosen[chosen["status"] == "done"]


def pair_with_baseline(
    done: pd.DataFrame,
    value: str,
    baseline: str = BASELINE,
    match_sparsity: bool = True,
) -> pd.DataFrame:
    """Pair each non-baseline trial with the baseline trial of the same seed.

    ``done`` must already be restricted to finished selected trials (see
    :func:`comparable_trials`). With ``match_sparsity`` the baseline must have the
    same sparsity (method vs ``random``); without, the baseline is matched on seed
    only (method vs the ``dense`` parent, which has sparsity 0). Pairs in which
    either value is NaN are dropped.

    Returns columns ``sparsity, method, seed, value, baseline_value, difference``
    with ``difference = value - baseline_value``, sorted by sparsity, method, seed.
    """
    require_columns(done, ["method", "sparsity", "seed", value])
    keys = ["sparsity", "seed"] if match_sparsity else ["seed"]
    base = done[done["method"] == baseline][keys + [value]]
    base = base.rename(columns={value: "baseline_value"})
    others = done[done["method"] != baseline]
    if not match_sparsity:
        # The dense parent is a reference, not a competitor at its own sparsity.
        others = others[others["method"] != DENSE]
    others = others[["sparsity", "method", "seed", value]].rename(columns={value: "value"})
    pairs = others.merge(base, on=keys, how="inner")
    finite = np.isfinite(pairs["value"].astype(float)) & np.isfinite(pairs["baseline_value"].astype(float))
    pairs = pairs[finite]
    pairs = pairs.assign(difference=pairs["value"].astype(float) - pairs["baseline_value"].astype(float))
    columns = ["sparsity", "method", "seed", "value", "baseline_value", "difference"]
    return pairs[columns].sort_values(["sparsity", "method", "seed"]).reset_index(drop=True)


def method_order(methods: Iterable[str]) -> list[str]:
    """Methods in display order: dense, random, random-search, then the rest by name.

    >>> method_order(["mine", "random-search", "dense", "random"])
    ['dense', 'random', 'random-search', 'mine']
    """
    fixed = [DENSE, BASELINE, RANDOM_SEARCH]
    present = list(dict.fromkeys(methods))
    return [m for m in fixed if m in present] + sorted(m for m in present if m not in fixed)
