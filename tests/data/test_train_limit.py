"""``train_limit``: a class-stratified training subset and a capped held-out split, drawn with the data seed."""

import numpy as np
import pytest

import sparsebench
from sparsebench import ExperimentConfig
from sparsebench.data.registry import load_dataset
from sparsebench.errors import ConfigError


def rows(x):
    return {tuple(r) for r in x.numpy().round(5)}


def test_the_subset_is_stratified_drawn_from_the_unlimited_training_split_and_caps_the_held_out_rows():
    full = load_dataset("digits", 0, 0.2, 0.5, "none")
    small = load_dataset("digits", 0, 0.2, 0.5, "none", train_limit=300)
    assert len(small.y_train) == 300 and len(small.y_val) + len(small.y_monitor) == 60  # 0.2 * 300
    assert rows(small.x_train) <= rows(full.x_train)  # the same partition: no held-out row comes into training
    assert rows(small.x_val) | rows(small.x_monitor) <= rows(full.x_val) | rows(full.x_monitor)
    share_full = np.bincount(full.y_train.numpy(), minlength=10) / len(full.y_train)
    share_small = np.bincount(small.y_train.numpy(), minlength=10) / 300
    assert np.abs(share_full - share_small).max() <= 1 / 300 + 1e-12  # each class in proportion, to one row
    assert len(small.y_test) == len(full.y_test)
    again = load_dataset("digits", 0, 0.2, 0.5, "none", train_limit=300)
    assert np.array_equal(again.x_train.numpy(), small.x_train.numpy())
    other_seed = load_dataset("digits", 1, 0.2, 0.5, "none", train_limit=300)
    assert not np.array_equal(other_seed.y_train.numpy(), small.y_train.numpy())


def test_a_limit_at_least_the_training_split_changes_nothing():
    full = load_dataset("mnist1d", 0, 0.125, 0.5)
    same = load_dataset("mnist1d", 0, 0.125, 0.5, train_limit=10_000)
    for split in ("x_train", "x_val", "x_monitor", "x_test"):
        assert np.array_equal(getattr(full, split).numpy(), getattr(same, split).numpy())


def test_the_limit_is_part_of_the_hash_and_its_absence_keeps_old_hashes(tmp_path):
    assert ExperimentConfig().config_hash() == ExperimentConfig(train_limit=None).config_hash()
    assert ExperimentConfig(train_limit=500).config_hash() != ExperimentConfig().config_hash()
    with pytest.raises(ConfigError, match="^train_limit: got 0; allowed: an integer in"):
        ExperimentConfig(train_limit=0)
    trials = sparsebench.run({"dataset": "digits", "hidden": [16], "seeds": 1, "sparsities": [0.5], "epochs": 1,
                              "candidates": 2, "train_limit": 200, "batch_size": 50}, store=tmp_path / "t.db", progress=False)
    assert len(trials) == 3
    stats = sparsebench.list_experiments(tmp_path / "t.db")
    assert len(stats) == 1
