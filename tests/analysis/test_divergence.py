import pandas as pd

from sparsebench.analysis import divergence_counts, paired_comparison, summary_table

from .frames import trials_from


def test_diverged_trials_are_counted_per_sparsity_and_method():
    trials = trials_from({
        ("random", 0.9): [0.7, None, 0.72, None],
        ("mine", 0.9): [0.71, 0.70, 0.73, 0.69],
        ("mine", 0.5): [None, 0.8, 0.81, 0.79],
    })
    probe = trials.iloc[[0]].assign(role="probe", status="diverged", trial_id=99)
    counts = divergence_counts(pd.concat([trials, probe])).set_index(["sparsity", "method"])
    assert counts.loc[(0.9, "random"), "n_diverged"] == 2  # the probe is not a selected trial
    assert counts.loc[(0.9, "random"), "diverged_fraction"] == 0.5
    assert counts.loc[(0.9, "random"), "first_diverged_epoch"] == 3.0
    assert counts.loc[(0.9, "mine"), "n_diverged"] == 0


def test_diverged_seeds_are_excluded_from_comparisons_and_reported():
    trials = trials_from({("random", 0.9): [0.7, None, 0.72, 0.71], ("mine", 0.9): [0.71, 0.70, 0.73, 0.72]})
    row = paired_comparison(trials).iloc[0]
    assert row["n"] == 3 and row["n_excluded"] == 1
    summary = summary_table(trials).set_index("method")
    assert summary.loc["random", "n"] == 3 and summary.loc["random", "n_diverged"] == 1
    assert summary.loc["random", "mean_test_acc"] == (0.7 + 0.72 + 0.71) / 3


def test_diverged_epoch_as_the_store_returns_it():
    # The store gives None (object dtype) where a trial did not diverge.
    trials = trials_from({("random", 0.9): [0.7, None]}).astype({"diverged_epoch": object})
    trials.loc[trials["status"] == "done", "diverged_epoch"] = None
    row = divergence_counts(trials).iloc[0]
    assert row["n_diverged"] == 1 and row["first_diverged_epoch"] == 3.0
