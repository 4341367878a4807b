"""Issue 17, items 4 and 5: the Holm family of the primary metric is every method × sparsity
compared with random; the leaderboard ranks methods by mean gain; the cost of a selection."""

import math

import numpy as np
import pandas as pd
import pytest

from sparsebench.analysis import gain_vs_cost, leaderboard, paired_comparison, selection_cost, synthetic_results
from sparsebench.analysis.paired import AnalysisInputError

METHODS = ("dense", "random", "random-search", "good", "bad")
EFFECTS = {"good": 0.006, "bad": -0.02, "random-search": 0.002}


def holm_by_hand(pvalues):
    """Holm's step-down adjustment written out from its definition (no library): sort the m
    p-values, multiply the k-th smallest (k from 0) by m - k, keep the running maximum, cap at 1."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * m, 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@pytest.fixture(scope="module")
def trials():
    return synthetic_results(seeds=10, sparsities=(0.5, 0.8, 0.9), methods=METHODS, effects=EFFECTS, epochs=2)[0]


def test_the_primary_metric_is_holm_adjusted_over_every_method_and_sparsity(trials):
    table = paired_comparison(trials)  # final test accuracy, the primary metric
    assert len(table) == 3 * 3 and set(table["holm_family"]) == {"all"} and set(table["holm_family_size"]) == {9}
    for test in ("p_t", "p_wilcoxon", "p_tost"):
        raw = table[test].tolist()
        assert all(math.isfinite(p) for p in raw)
        assert table[f"{test}_holm"].tolist() == pytest.approx(holm_by_hand(raw), rel=1e-12)
    # Not the old per-method family: for at least one row the two adjustments differ.
    per_method = paired_comparison(trials, holm_family="method")
    assert per_method["p_t"].tolist() == table["p_t"].tolist()
    assert (per_method["p_t_holm"] < table["p_t_holm"] - 1e-12).any()


def test_adding_a_method_changes_the_adjustment_of_the_others(trials):
    # random-search (a small effect: large p-values) joins the family behind good and bad, whose
    # p-values are then multiplied by more (a method with tinier p-values would rank first and change nothing).
    without = paired_comparison(trials[trials["method"] != "random-search"])
    with_it = paired_comparison(trials)
    keep = with_it[with_it["method"] != "random-search"].reset_index(drop=True)
    assert keep["p_t"].tolist() == without["p_t"].tolist()  # the raw tests are the same
    assert (keep["p_t_holm"] >= without["p_t_holm"] - 1e-15).all() and (keep["p_t_holm"] > without["p_t_holm"]).any()
    assert set(without["holm_family_size"]) == {6} and set(keep["holm_family_size"]) == {9}


def test_secondary_metrics_keep_one_family_per_method(trials):
    loss = paired_comparison(trials, "final_test_loss", margin=None)
    assert set(loss["holm_family"]) == {"random-search", "good", "bad"} and set(loss["holm_family_size"]) == {3}
    for method, rows in loss.groupby("method"):
        assert rows["p_t_holm"].tolist() == pytest.approx(holm_by_hand(rows["p_t"].tolist()), rel=1e-12)


def test_an_unknown_holm_family_is_refused(trials):
    with pytest.raises(AnalysisInputError, match="holm_family: got 'sparsity'; allowed: one of"):
        paired_comparison(trials, holm_family="sparsity")


def test_the_leaderboard_ranks_methods_by_mean_gain(trials):
    comparison = paired_comparison(trials)
    board = leaderboard(comparison)
    means = comparison.groupby("method")["mean_diff"].mean()
    assert board["method"].tolist() == sorted(means.index, key=lambda m: -means[m]) == ["good", "random-search", "bad"]
    assert board["rank"].tolist() == [1, 2, 3]
    assert board["mean_gain"].tolist() == pytest.approx([means[m] for m in board["method"]])
    assert board.loc[board["method"] == "bad", "n_worse"].item() == 3


def test_for_a_loss_the_lowest_mean_difference_leads(trials):
    board = leaderboard(paired_comparison(trials, "final_test_loss", margin=None))
    assert board["method"].iloc[0] == "good" and board["method"].iloc[-1] == "bad"


def test_a_method_without_pairs_is_ranked_last():
    rows = pd.DataFrame({"method": ["a", "b", "c"], "sparsity": 0.5, "higher_is_better": True,
                         "mean_diff": [np.nan, -0.5, 0.1], "verdict": ["too few seeds", "worse", "better"]})
    assert leaderboard(rows)["method"].tolist() == ["c", "b", "a"]
    assert leaderboard(rows.iloc[0:0]).empty


def test_selection_cost_is_the_mean_per_sparsity_and_method_and_nan_when_not_recorded(trials):
    cost = selection_cost(trials).set_index(["sparsity", "method"])
    assert "dense" not in cost.index.get_level_values("method")
    assert cost.loc[(0.9, "random-search"), "candidate_evaluations"] == 8  # synthetic_results' K
    assert cost.loc[(0.9, "random"), "candidate_evaluations"] == 0 and cost.loc[(0.9, "good"), "search_epochs"] == 0
    old = selection_cost(trials.drop(columns=["candidate_evaluations", "search_epochs", "selection_seconds"]))
    assert old["n_recorded"].eq(0).all() and old["candidate_evaluations"].isna().all()


def test_gain_vs_cost_puts_random_first_then_the_leaderboard_order(trials):
    comparison = paired_comparison(trials)
    table = gain_vs_cost(comparison, trials)
    assert list(dict.fromkeys(table["method"])) == ["random", "good", "random-search", "bad"]
    assert table.loc[table["method"] == "random", "mean_diff"].isna().all()
    search = table[(table["method"] == "random-search") & (table["sparsity"] == 0.5)].iloc[0]
    row = comparison[(comparison["method"] == "random-search") & (comparison["sparsity"] == 0.5)].iloc[0]
    assert search["mean_diff"] == row["mean_diff"] and search["candidate_evaluations"] == 8
