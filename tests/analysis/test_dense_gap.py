import math

import numpy as np
import pytest
from scipy import stats

from sparsebench.analysis import dense_gap

from .frames import trials_from


def test_gap_is_paired_with_the_dense_parent_of_the_same_seed():
    trials = trials_from({
        ("dense", 0.0): [0.90, 0.92, 0.94],
        ("random", 0.9): [0.85, 0.86, 0.90],
        ("random", 0.5): [0.89, None, 0.93],  # seed 1 diverged: excluded, not NaN-averaged
    })
    table = dense_gap(trials)
    assert list(zip(table["sparsity"], table["method"])) == [(0.5, "random"), (0.9, "random")]
    at_09 = table[table["sparsity"] == 0.9].iloc[0]
    gaps = np.array([-0.05, -0.06, -0.04])
    assert at_09["n"] == 3 and at_09["gap_mean"] == pytest.approx(gaps.mean())
    interval = stats.ttest_1samp(gaps, 0).confidence_interval(0.95)
    assert (at_09["ci_low"], at_09["ci_high"]) == pytest.approx((interval.low, interval.high))
    at_05 = table[table["sparsity"] == 0.5].iloc[0]
    assert at_05["n"] == 2 and at_05["gap_mean"] == pytest.approx(-0.01)
    assert at_05["mean_dense"] == pytest.approx(0.92)  # the dense partners of seeds 0 and 2 only


def test_a_diverged_dense_parent_drops_its_seed():
    trials = trials_from({("dense", 0.0): [None, 0.92], ("random", 0.9): [0.85, 0.86]})
    row = dense_gap(trials).iloc[0]
    assert row["n"] == 1 and row["gap_mean"] == pytest.approx(-0.06)
    assert math.isnan(row["ci_low"])  # one pair: no interval


def test_no_dense_gives_empty_table():
    assert dense_gap(trials_from({("random", 0.9): [0.85]})).empty
