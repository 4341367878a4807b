"""Synthetic trials and curves tables with the store's columns, for examples and tests.

Nothing here is a result: the numbers come from a small generative model with
known effects, so an analysis run on them has a known right answer. Per seed a
parent quality ``u ~ N(0, parent_sd)`` shifts every trial of that seed (that is
why pairing by seed helps); a method's final test accuracy is
``0.92 - 0.3 * s**3 + u + effects[method] + N(0, noise)``; validation curves rise
as ``1 - exp(-epoch / tau)`` with ``tau`` growing with sparsity; random search's
initial scores are losses whose correlation with trained accuracy is set by
``score_coupling``.

>>> trials, curves = synthetic_results(seeds=2, sparsities=(0.9,), epochs=4)
>>> sorted(trials["method"].unique()), len(curves) == 4 * len(trials)
(['dense', 'random', 'random-search'], True)
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from sparsebench.names import DENSE, RANDOM, RANDOM_SEARCH

NAN = float("nan")


def synthetic_results(
    seeds: int = 5,
    sparsities: Iterable[float] = (0.5, 0.8, 0.9),
    methods: Iterable[str] = (DENSE, RANDOM, RANDOM_SEARCH),
    epochs: int = 10,
    effects: Mapping[str, float] | None = None,
    noise: float = 0.004,
    parent_sd: float = 0.01,
    candidates: int = 8,
    probes: int = 0,
    score_coupling: float = 0.0,
    diverged: Iterable[tuple[str, float, int]] = (),
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(trials, curves)`` shaped like the store's tables.

    ``effects`` maps a method to its true accuracy shift over ``random`` (default
    none); ``probes`` trains that many extra random-search candidates per (seed,
    sparsity) with ``role='probe'``; ``score_coupling`` (accuracy per unit of initial
    loss, e.g. 0.05) makes lower initial loss predict higher accuracy; ``diverged``
    lists (method, sparsity, seed) trials that diverge halfway. Same arguments, same
    tables.
    """
    rng = np.random.default_rng(random_state)
    effects = dict(effects or {})
    diverged = {(m, float(s), int(seed)) for m, s, seed in diverged}
    trials, curves = [], []
    for seed in range(seeds):
        parent = rng.normal(0.0, parent_sd)
        for method in methods:
            levels = [0.0] if method == DENSE else [float(s) for s in sparsities]
            for s in levels:
                for role, candidate, score, shift in _candidates(method, s, candidates, probes,
                                                                 score_coupling, rng):
                    accuracy = (0.92 - 0.3 * s**3 + parent + effects.get(method, 0.0) + shift
                                + rng.normal(0.0, noise))
                    trial_id = len(trials) + 1
                    is_diverged = role == "selected" and (method, s, seed) in diverged
                    trials.append(_trial_row(trial_id, method, role, candidate, s, seed, epochs,
                                             candidates if method == RANDOM_SEARCH else 0,
                                             score, accuracy, is_diverged, rng))
                    curves += _curve_rows(trial_id, method, role, s, seed, epochs, accuracy,
                                          trials[-1]["diverged_epoch"], rng)
    return pd.DataFrame(trials), pd.DataFrame(curves)


def _candidates(method, sparsity, k, probes, coupling, rng):
    """(role, candidate index, init score, accuracy shift) of each trained network."""
    if method != RANDOM_SEARCH:
        return [("selected", -1, NAN, 0.0)]
    scores = rng.normal(2.3 + sparsity, 0.05, size=k)
    winner = int(np.argmin(scores))
    others = [i for i in range(k) if i != winner][:probes]
    # The shift is relative to a typical candidate, so coupling=0 leaves random search = random.
    centre = float(np.mean(scores))
    return [("selected" if i == winner else "probe", i, float(scores[i]),
             -coupling * (scores[i] - centre)) for i in [winner] + others]


def _trial_row(trial_id, method, role, candidate, s, seed, epochs, k, score, accuracy,
               is_diverged, rng) -> dict:
    accuracy = float(np.clip(accuracy, 0.0, 1.0))
    loss = 0.25 + 2.0 * (1.0 - accuracy)
    metric = NAN if is_diverged else 1.0
    return dict(
        trial_id=trial_id, experiment_id=1, config_hash="synthetic", dataset="synthetic",
        method=method, role=role, candidate=candidate, sparsity=s,
        weight_sparsity=1 - (1 - s) ** 2, seed=seed, n_params=int(100_000 * (1 - s) ** 2) + 1000,
        candidates=k, init_score=score, score_name="loss",
        status="diverged" if is_diverged else "done",
        diverged_epoch=float(epochs // 2 + 1) if is_diverged else NAN, epochs=epochs,
        final_test_loss=loss * metric, final_test_acc=accuracy * metric,
        best_epoch=epochs, best_val_acc=(accuracy + 0.005) * metric,
        best_test_loss=loss * metric, best_test_acc=accuracy * metric,
        train_seconds=float(rng.uniform(1.0, 2.0)),
        # The cost of the selection: random search scores its k candidates; no random draw
        # here, so that adding these columns changed none of the numbers above.
        **_selection_cost(method, role, k))


def _selection_cost(method: str, role: str, k: int) -> dict:
    """What choosing the trial's mask cost (the selected trial carries it; probes and dense 0)."""
    evaluations = k if role == "selected" and method == RANDOM_SEARCH else 0
    spent = role == "selected" and method != DENSE
    return dict(candidate_evaluations=evaluations, search_epochs=0,
                selection_seconds=(0.0005 + 0.002 * evaluations) if spent else 0.0)


def _curve_rows(trial_id, method, role, s, seed, epochs, accuracy, diverged_epoch, rng) -> list[dict]:
    tau = 1.0 + 4.0 * s
    last = epochs if np.isnan(diverged_epoch) else int(diverged_epoch)
    rows = []
    for epoch in range(1, last + 1):
        rise = (1 - np.exp(-epoch / tau)) / (1 - np.exp(-epochs / tau))
        val_acc = float(np.clip(accuracy * rise + rng.normal(0.0, 0.002), 0.0, 1.0))
        blown = epoch == diverged_epoch  # the epoch at which the loss became non-finite
        rows.append(dict(
            experiment_id=1, trial_id=trial_id, method=method, role=role, sparsity=s, seed=seed,
            epoch=epoch, train_loss=NAN if blown else 0.2 + 2.0 * (1 - val_acc),
            train_acc=NAN if blown else min(1.0, val_acc + 0.02),
            val_loss=NAN if blown else 0.25 + 2.0 * (1 - val_acc), val_acc=NAN if blown else val_acc))
    return rows
