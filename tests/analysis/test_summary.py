import pandas as pd

from sparsebench.analysis import summary_table, synthetic_results

from .frames import trials_from


def test_summary_rows_order_and_verdicts():
    trials = trials_from({
        ("mine", 0.9): [0.75, 0.76, 0.74, 0.75, 0.76] * 2,
        ("random", 0.9): [0.70, 0.72, 0.71, 0.70, 0.71] * 2,
        ("dense", 0.0): [0.9, 0.91, 0.92, 0.9, 0.91] * 2,
        ("random-search", 0.9): [None] * 10,
    })
    table = summary_table(trials)
    assert list(table.columns) == ["sparsity", "method", "n", "mean_test_acc", "sd_test_acc",
                                   "n_diverged", "verdict"]
    assert list(zip(table["sparsity"], table["method"])) == [
        (0.0, "dense"), (0.9, "random"), (0.9, "random-search"), (0.9, "mine")]
    verdicts = dict(zip(table["method"], table["verdict"]))
    assert verdicts == {"dense": "", "random": "", "random-search": "too few seeds", "mine": "better"}
    rs = table[table["method"] == "random-search"].iloc[0]
    assert rs["n"] == 0 and rs["n_diverged"] == 10 and pd.isna(rs["mean_test_acc"])


def test_summary_of_synthetic_results_with_a_known_effect():
    trials, _ = synthetic_results(seeds=10, sparsities=(0.5, 0.9), effects={"mine": -0.03},
                                  methods=("dense", "random", "random-search", "mine"))
    verdicts = summary_table(trials).query("method == 'mine'")["verdict"]
    assert (verdicts == "worse").all()


def test_three_seeds_with_a_huge_effect_give_no_claim_in_the_summary():
    trials, _ = synthetic_results(seeds=3, sparsities=(0.5, 0.9), effects={"mine": -0.2, "random-search": 0.05},
                                  methods=("dense", "random", "random-search", "mine"))
    table = summary_table(trials)
    compared = table[~table["method"].isin(["dense", "random"])]
    assert (compared["verdict"] == "too few seeds").all()
    assert compared["mean_test_acc"].notna().all()
