import math

import numpy as np
import pandas as pd
import pytest

from sparsebench.analysis import compare_convergence, convergence_metrics


def make(curves_by_trial: dict, statuses: dict | None = None):
    """``{(trial_id, method, sparsity, seed): [val_acc per epoch]}`` -> (trials, curves)."""
    statuses = statuses or {}
    trials, curves = [], []
    for (trial_id, method, sparsity, seed), accs in curves_by_trial.items():
        trials.append(dict(trial_id=trial_id, experiment_id=1, method=method, role="selected",
                           sparsity=sparsity, seed=seed, status=statuses.get(trial_id, "done")))
        curves += [dict(trial_id=trial_id, epoch=e + 1, val_acc=a) for e, a in enumerate(accs)]
    return pd.DataFrame(trials), pd.DataFrame(curves)


def test_threshold_from_the_dense_final_epoch_and_censoring():
    trials, curves = make({
        (1, "dense", 0.0, 0): [0.50, 0.90, 0.80],  # final (not best) val acc 0.80 -> threshold 0.76
        (2, "random", 0.9, 0): [0.70, 0.77, 0.75],  # reaches at epoch 2
        (3, "mine", 0.9, 0): [0.60, 0.70, 0.75],  # never: censored at E = 3
    })
    m = convergence_metrics(trials, curves).set_index("trial_id")
    assert m.loc[2, "threshold"] == pytest.approx(0.95 * 0.80)
    assert m.loc[2, "reached"] and m.loc[2, "epochs_to_threshold"] == 2
    assert not m.loc[3, "reached"] and m.loc[3, "epochs_to_threshold"] == 3 and m.loc[3, "epochs"] == 3
    assert m.loc[3, "auc"] == pytest.approx(np.mean([0.60, 0.70, 0.75]))
    assert m["auc"].between(0, 1).all()


def test_fraction_is_configurable_and_validated():
    trials, curves = make({(1, "dense", 0.0, 0): [0.5, 1.0], (2, "random", 0.9, 0): [0.6, 0.7]})
    m = convergence_metrics(trials, curves, fraction=0.6).set_index("trial_id")
    assert m.loc[2, "epochs_to_threshold"] == 1
    with pytest.raises(ValueError, match="fraction"):
        convergence_metrics(trials, curves, fraction=1.5)


def test_diverged_trials_and_missing_dense_parents():
    trials, curves = make({
        (1, "dense", 0.0, 0): [0.8, 0.9],
        (2, "random", 0.9, 0): [0.5, math.nan],  # diverged at epoch 2
        (3, "random", 0.9, 1): [0.5, 0.6],  # seed 1 has no dense parent
    }, statuses={2: "diverged"})
    m = convergence_metrics(trials, curves).set_index("trial_id")
    assert 2 not in m.index  # excluded explicitly
    assert math.isnan(m.loc[3, "threshold"]) and math.isnan(m.loc[3, "epochs_to_threshold"])
    assert not m.loc[3, "reached"] and m.loc[3, "auc"] == pytest.approx(0.55)


def _paired_runs(method_epochs: list, random_epochs: list, epochs: int = 6):
    """Curves that cross 0.95 * 1.0 exactly at the given epochs (None = never)."""
    runs = {}
    tid = 0
    for seed, (a, b) in enumerate(zip(method_epochs, random_epochs)):
        tid += 1
        runs[(tid, "dense", 0.0, seed)] = [1.0] * epochs
        for method, hit in (("mine", a), ("random", b)):
            tid += 1
            accs = [0.5] * epochs if hit is None else [0.5] * (hit - 1) + [0.96] * (epochs - hit + 1)
            runs[(tid, method, 0.5, seed)] = accs
    return make(runs)


def test_compare_convergence_counts_censored_and_blocks_equivalence():
    trials, curves = _paired_runs([None, None, 2, 3], [None, None, 2, 3])
    table = compare_convergence(trials, curves, margin_epochs=1.0)
    epochs = table[table["metric"] == "epochs_to_threshold"].iloc[0]
    assert epochs["n"] == 4 and epochs["n_censored_method"] == 2 and epochs["n_censored_baseline"] == 2
    assert epochs["verdict"] == "inconclusive"
    auc = table[table["metric"] == "auc"].iloc[0]
    assert auc["n"] == 4 and auc["higher_is_better"]


def test_all_censored_says_so():
    trials, curves = _paired_runs([None, None, None], [None, None, None])
    row = compare_convergence(trials, curves).query("metric == 'epochs_to_threshold'").iloc[0]
    assert row["verdict"] == "inconclusive" and "all censored" in row["reason"]


def test_faster_method_is_better_on_epochs():
    trials, curves = _paired_runs([2, 2, 3, 2, 2, 3] * 2, [5, 6, 5, 5, 6, 6] * 2, epochs=8)
    row = compare_convergence(trials, curves).query("metric == 'epochs_to_threshold'").iloc[0]
    assert row["mean_diff"] == pytest.approx(-19 / 6) and row["verdict"] == "better"
    auc = compare_convergence(trials, curves).query("metric == 'auc'").iloc[0]
    assert auc["mean_diff"] > 0 and auc["verdict"] == "better"


def test_monitoring_split_is_used_when_present_and_the_threshold_comes_from_it():
    trials, curves = make({
        (1, "dense", 0.0, 0): [0.5, 0.9, 0.9],
        (2, "random", 0.9, 0): [0.7, 0.8, 0.9],
    })
    validation = convergence_metrics(trials, curves)
    assert (validation["split"] == "validation").all() and validation.attrs["split"] == "validation"
    old_store = curves.assign(monitor_acc=math.nan)  # schema 4 store without a monitoring split
    assert convergence_metrics(trials, old_store).attrs["split"] == "validation"
    monitored = curves.assign(monitor_acc=[0.4, 0.6, 0.5, 0.2, 0.3, 0.5])
    m = convergence_metrics(trials, monitored).set_index("trial_id")
    assert (m["split"] == "monitor").all()
    assert m.loc[2, "threshold"] == pytest.approx(0.95 * 0.5)  # the dense parent's final monitor acc
    assert m.loc[2, "epochs_to_threshold"] == 3 and m.loc[2, "auc"] == pytest.approx(1.0 / 3)
    table = compare_convergence(trials, monitored)
    assert "split" in table.columns and table.attrs["split"] == "monitor"
    forced = convergence_metrics(trials, monitored, split="validation").set_index("trial_id")
    assert forced.loc[2, "auc"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="split"):
        convergence_metrics(trials, monitored, split="test")


def test_a_stopped_network_is_frozen_for_auc_and_censored_if_it_had_not_reached():
    trials, curves = make({
        (1, "dense", 0.0, 0): [0.6, 0.8, 1.0, 1.0, 1.0, 1.0],  # threshold 0.95
        (2, "random", 0.9, 0): [0.5, 0.96],  # stopped at 2 after reaching
        (3, "mine", 0.9, 0): [0.5, 0.7, 0.8],  # stopped at 3 below the threshold
        (4, "random", 0.9, 1): [0.5, 0.6, 0.7, 0.8, 0.9, 0.95],  # ran all 6 (seed 1: no dense)
    })
    trials = trials.assign(epochs=6, stop_epoch=[math.nan, 2, 3, math.nan])
    m = convergence_metrics(trials, curves).set_index("trial_id")
    assert (m["epochs"] == 6).all() and m.loc[2, "stop_epoch"] == 2 and math.isnan(m.loc[1, "stop_epoch"])
    assert m.loc[2, "reached"] and m.loc[2, "epochs_to_threshold"] == 2
    assert m.loc[2, "auc"] == pytest.approx((0.5 + 0.96 * 5) / 6)  # frozen at 0.96 for epochs 3..6
    assert not m.loc[3, "reached"] and m.loc[3, "epochs_to_threshold"] == 6  # censored at E, not at 3
    assert m.loc[3, "auc"] == pytest.approx((0.5 + 0.7 + 0.8 * 4) / 6)
    assert m.loc[4, "auc"] == pytest.approx(np.mean([0.5, 0.6, 0.7, 0.8, 0.9, 0.95]))


def test_an_experiment_whose_trials_all_diverged_gives_an_empty_table():
    # issue 11, item 4: this raised "'trial_id' is both an index level and a column label"
    trials, curves = make({
        (1, "dense", 0.0, 0): [math.nan],
        (2, "random", 0.9, 0): [math.nan],
        (3, "mine", 0.9, 0): [math.nan],
    }, statuses={1: "diverged", 2: "diverged", 3: "diverged"})
    m = convergence_metrics(trials, curves)
    assert m.empty and list(m.columns) == list(convergence_metrics.__globals__["COLUMNS"])
    table = compare_convergence(trials, curves)
    assert (table["n"] == 0).all() and set(table["verdict"]) == {"too few seeds"}
    no_curves = convergence_metrics(trials, curves.iloc[0:0])
    assert no_curves.empty
