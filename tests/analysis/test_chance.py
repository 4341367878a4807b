import math

import pytest

from sparsebench.analysis import AnalysisInputError, chance_level_flags

from .frames import trials_from


def test_flags_methods_whose_finished_networks_are_all_at_chance():
    trials = trials_from({
        ("random", 0.98): [0.10, 0.11, 0.12, None],  # all finished ones at chance, one diverged
        ("mine", 0.98): [0.10, 0.45, 0.50, 0.48],  # one at chance of four
        ("random", 0.5): [0.80, 0.81, 0.79, 0.80],
        ("mine", 0.5): [None, None, None, None],  # all diverged: not 'at chance'
    })
    table = chance_level_flags(trials, chance_acc=0.1, tolerance=0.02).set_index(["sparsity", "method"])
    row = table.loc[(0.98, "random")]
    assert (row["n_trials"], row["n_diverged"], row["n_finished"], row["n_at_chance"]) == (4, 1, 3, 3)
    assert bool(row["all_at_chance"]) and row["at_chance_fraction"] == 1.0
    assert row["mean_test_acc"] == pytest.approx(0.11)
    mine = table.loc[(0.98, "mine")]
    assert mine["n_at_chance"] == 1 and not mine["all_at_chance"]
    assert not table.loc[(0.5, "random"), "all_at_chance"]
    gone = table.loc[(0.5, "mine")]
    assert gone["n_diverged"] == 4 and gone["n_finished"] == 0 and not gone["all_at_chance"]
    assert math.isnan(gone["at_chance_fraction"])
    assert list(chance_level_flags(trials, 0.1)["method"][:2]) == ["random", "mine"]  # display order


def test_tolerance_is_inclusive_and_validated():
    trials = trials_from({("random", 0.9): [0.12, 0.1201]})
    row = chance_level_flags(trials, chance_acc=0.1, tolerance=0.02).iloc[0]
    assert row["n_at_chance"] == 1  # 0.12 is within, 0.1201 is not
    assert chance_level_flags(trials, chance_acc=0.1, tolerance=0.0).iloc[0]["n_at_chance"] == 0
    for bad in (dict(chance_acc=1.5), dict(chance_acc=float("nan")), dict(chance_acc=0.1, tolerance=-0.1),
                dict(chance_acc="0.1")):
        with pytest.raises(AnalysisInputError, match="chance_acc|tolerance"):
            chance_level_flags(trials, **bad)
