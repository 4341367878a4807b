"""Datasets from other packages, through the ``sparsebench.datasets`` entry-point group."""

import textwrap

import numpy as np
import pandas as pd
import pytest

import sparsebench
from sparsebench.data.registry import checked_raw_data, dataset_names, load_dataset
from sparsebench.errors import ConfigError

MODULE = textwrap.dedent(
    """
    import numpy as np

    def blobs(data_seed):
        rng = np.random.default_rng(1000 + data_seed)
        centers = rng.normal(size=(3, 6)) * 3
        def draw(n):
            y = rng.integers(0, 3, n)
            return centers[y] + rng.normal(size=(n, 6)), y
        x_train, y_train = draw(300)
        x_test, y_test = draw(100)
        return x_train, y_train, x_test, y_test

    def needs_a_file(data_seed):
        return np.load("/nonexistent/train.npz")

    def ragged(data_seed):
        return np.zeros((10, 3)), np.zeros(9, dtype=int), np.zeros((5, 3)), np.zeros(5, dtype=int)

    def few_rows(data_seed):
        x = np.arange(20, dtype=float).reshape(10, 2)
        return x, np.arange(10) % 2, x[:4], np.arange(4) % 2

    def eleven_rows(data_seed):
        x = np.arange(22, dtype=float).reshape(11, 2)
        return x, np.arange(11) % 2, x[:4], np.arange(4) % 2

    def rare_class(data_seed):
        x = np.random.default_rng(0).normal(size=(40, 2))
        y = np.r_[np.zeros(38, int), 1, 2]
        return x, y, x[:4], y[:4]

    def far_test_values(data_seed):
        # A training column that barely varies, and a test value far away from it: standardized, it overflows float32.
        x = np.random.default_rng(0).normal(size=(40, 2))
        x[:, 1] = np.arange(40) % 2 * 1e-12
        x_test = x[:4].copy()
        x_test[0, 1] = 1e29
        return x, np.arange(40) % 2, x_test, np.arange(4) % 2

    def large_float32(data_seed):
        # Fine as numbers, but their squares overflow float32 when the features are standardized.
        rng = np.random.default_rng(0)
        y = np.arange(60) % 2
        x = ((rng.normal(size=(60, 3)) + y[:, None]) * 1e20).astype(np.float32)
        return x[:50], y[:50], x[50:], y[50:]

    def labels_from_one(data_seed):
        x = np.random.default_rng(0).normal(size=(40, 2))
        return x, np.arange(40) % 2 + 1, x[:4], np.arange(4) % 2 + 1

    NOT_A_LOADER = 3
    """
)
ENTRY_POINTS = """[sparsebench.datasets]
blobs = ep_data_mod:blobs
ragged = ep_data_mod:ragged
needs-a-file = ep_data_mod:needs_a_file
constant = ep_data_mod:NOT_A_LOADER
missing = ep_data_missing_mod:load
"""


@pytest.fixture
def plugin_dir(install_plugin):
    yield install_plugin("ep_data_mod", MODULE, ENTRY_POINTS)


def test_entry_point_dataset_is_listed_split_and_trained_on(plugin_dir, tmp_path, tiny_dict):
    assert {"blobs", "mnist1d"} <= set(dataset_names())
    data = load_dataset("blobs", 0, 0.2)
    assert (len(data.y_train), len(data.y_val), len(data.y_test), data.n_features, data.n_classes) == (240, 60, 100, 6, 3)
    assert abs(float(data.x_train.mean())) < 1e-5  # standardized with train statistics
    trials = sparsebench.run({**tiny_dict, "dataset": "blobs", "seeds": [0], "sparsities": [0.5]}, store=tmp_path / "b.db", progress=False)
    assert set(trials.method) >= {"dense", "random"}
    assert trials.final_test_acc.notna().all()


@pytest.mark.parametrize("name, message", [
    ("ragged", "label shapes"),
    ("constant", "is not a loader"),
    ("missing", "cannot load 'missing' (ModuleNotFoundError"),
    ("needs-a-file", "the loader failed (FileNotFoundError"),
])
def test_a_broken_dataset_plugin_is_refused_in_one_line(plugin_dir, name, message):
    with pytest.raises(ConfigError) as info:
        load_dataset(name)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_broken_dataset_plugin_exits_2_through_the_cli(plugin_dir, tmp_path, cli):
    code, _, err = cli("run", "--dataset", "ragged", "--seeds", "1", "--sparsities", "0.5", "--epochs", "1",
                       "--store", str(tmp_path / "r.db"), "--no-progress")
    assert code == 2 and "label shapes" in err and "Traceback" not in err


@pytest.mark.parametrize("raw, message", [
    ((np.zeros((4, 2)),) * 3, "not 4 arrays"),
    ((np.zeros(4), np.zeros(4, int), np.zeros((2, 1)), np.zeros(2, int)), "feature shapes"),
    ((np.zeros((4, 2)), np.zeros(4), np.zeros((2, 2)), np.zeros(2, int)), "labels of dtype"),
    ((np.zeros((4, 2)), -np.ones(4, int), np.zeros((2, 2)), np.zeros(2, int)), r"negative labels \(smallest -1\)"),
    ((np.zeros((4, 2)), np.array([0, 1, 0, 1]), np.zeros((2, 2)), np.array([0, -2])), r"negative labels \(smallest -2\)"),
    ((np.zeros((4, 2)), np.zeros(4, int), np.zeros((2, 2)), np.zeros(2, int)), r"a single class \(0\) in the training labels"),
    ((np.zeros((4, 2)), np.array([1, 2, 1, 2]), np.zeros((2, 2)), np.array([1, 2])), r"training labels \[1, 2\] miss \[0\]"),
    ((np.zeros((4, 2)), np.array([0, 3, 0, 3]), np.zeros((2, 2)), np.array([0, 3])), r"training labels \[0, 3\] miss \[1, 2\]"),
    ((np.zeros((4, 2)), np.array([0, 10**15, 0, 1]), np.zeros((2, 2)), np.array([0, 1])), r"miss \[2, 3, 4, 5, 6, 7, 8, 9, \.\.\. 999999999999990 more\]"),
    ((np.zeros((4, 2)), np.array([0, 1, 0, 1]), np.zeros((2, 2)), np.array([0, 2])), r"test labels \[2\] never seen in training \(classes 0..1\)"),
    ((np.full((4, 2), 1e38), np.array([0, 1, 0, 1]), np.zeros((2, 2)), np.zeros(2, int)), r"feature values as large as 1e\+38 \(at most 1e\+30"),
    ((np.zeros((4, 2)), np.array([0, 1, 0, 1]), np.full((2, 2), -3e30, np.float32), np.zeros(2, int)), "feature values as large as 3e"),
    ((np.full((4, 2), np.nan), np.zeros(4, int), np.zeros((2, 2)), np.zeros(2, int)), "not all finite"),
    ((np.zeros((4, 2)), np.zeros(4, int), np.full((2, 2), "a"), np.zeros(2, int)), "features of dtype"),
    ((np.zeros((4, 2)), np.zeros(4, int), np.zeros((2, 2), complex), np.zeros(2, int)), "features of dtype"),
    (([[1.0, 2.0], [3.0]], np.zeros(2, int), np.zeros((2, 2)), np.zeros(2, int)), "numpy cannot read"),
])
def test_loader_output_is_checked(raw, message):
    with pytest.raises(ConfigError, match=message):
        checked_raw_data("x", raw)


def test_a_loader_named_as_module_colon_function_runs_from_the_cli(plugin_dir, tmp_path, cli):
    db = str(tmp_path / "m.db")
    code, out, err = cli("run", "--dataset", "ep_data_mod:blobs", "--seeds", "1", "--sparsities", "0.5", "--epochs", "1",
                         "--candidates", "2", "--store", db, "--no-progress")
    assert code == 0, err
    assert set(sparsebench.load_results(db).method) >= {"dense", "random"}
    code, _, err = cli("run", "--dataset", "ep_data_mod:no_such_loader", "--store", db, "--no-progress")
    assert code == 2 and "cannot load 'ep_data_mod:no_such_loader'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("loader, words", [
    ("few_rows", "the training split has 9 rows ("),  # 10 rows, 1 held out
    ("few_rows", "after holding out val_fraction 0.125 for validation and monitoring; allowed: at least 10 training rows and 2 of every class"),
    ("rare_class", "the training split has 35 rows ("),  # classes 1 and 2 have one row each
    ("far_test_values", "standardizing its features overflows (RuntimeWarning: overflow encountered in cast)"),
    ("large_float32", "standardizing its features overflows (RuntimeWarning: overflow encountered in"),
    ("labels_from_one", "training labels [1, 2] miss [0] (labels must be 0..C-1 without gaps)"),
])
@pytest.mark.filterwarnings("error")  # a numpy warning beside the one line would be a second line
def test_plugin_data_that_cannot_be_trained_on_is_refused_in_one_line_storing_nothing(plugin_dir, tmp_path, cli, loader, words):
    db = tmp_path / "d.db"
    code, out, err = cli("run", "--dataset", f"ep_data_mod:{loader}", "--hidden", "4", "--seeds", "1", "--sparsities", "0.5",
                         "--epochs", "1", "--candidates", "2", "--batch-size", "4", "--store", str(db), "--no-progress")
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not db.exists()


def test_the_smallest_accepted_training_split_trains(plugin_dir, tmp_path):
    # 11 rows, 1 of them held out: 10 training rows, at least 4 of each class.
    trials = sparsebench.run({"dataset": "ep_data_mod:eleven_rows", "hidden": [4], "seeds": [0], "sparsities": [0.5],
                              "epochs": 1, "candidates": 2, "batch_size": 4, "val_fraction": 0.1},
                             store=tmp_path / "s.db", progress=False)
    assert trials.final_test_acc.notna().all()


def test_standardized_features_that_are_not_finite_are_refused():
    import dataclasses

    import torch

    from sparsebench import ExperimentConfig
    from sparsebench.runner import check_training_split

    cfg = ExperimentConfig(dataset="digits", hidden=(8,), sparsities=(0.5,))
    data = load_dataset("digits", 0, 0.2)
    check_training_split(cfg.data, cfg.batch_size, data)  # the built-in data passes
    x_val = data.x_val.clone()
    x_val[3, 5] = float("inf")
    with pytest.raises(ConfigError, match="^dataset 'digits': standardized val features are not all finite in float32"):
        check_training_split(cfg.data, cfg.batch_size, dataclasses.replace(data, x_val=x_val))
    assert torch.isfinite(data.x_val).all()  # the cached splits are untouched


# -- example shapes (issue 13, item 5) -----------------------------------------------------------
def _digits_as(shape):
    from sparsebench.data.digits import load_digits

    def load(data_seed):
        x_tr, y_tr, x_te, y_te = load_digits(data_seed)
        return x_tr.reshape(-1, *shape), y_tr, x_te.reshape(-1, *shape), y_te

    return load


@pytest.mark.parametrize("shape", [(1, 8, 8), (8, 8)])
def test_images_and_sequences_train_an_mlp_flattened_to_the_numbers_of_rows(shape, tmp_path, monkeypatch):
    from sparsebench.data import registry

    monkeypatch.setitem(registry._LOADERS, f"digits-{len(shape)}d", _digits_as(shape))  # registered for this test only
    base = {"hidden": [16, 16], "seeds": 2, "sparsities": [0.5], "epochs": 2, "candidates": 3}
    rows = sparsebench.run({**base, "dataset": "digits"}, store=":memory:", progress=False)
    shaped = sparsebench.run({**base, "dataset": f"digits-{len(shape)}d"}, store=tmp_path / "s.db", progress=False)
    numbers = ["method", "sparsity", "seed", "final_test_acc", "best_test_acc", "init_score", "weight_sparsity"]
    pd.testing.assert_frame_equal(rows[numbers], shaped[numbers])
    assert load_dataset(f"digits-{len(shape)}d", 0, 0.2).example_shape == shape


@pytest.mark.parametrize("train, test", [((1, 8, 8), (64,)), ((1, 1, 1, 8, 8), (1, 1, 1, 8, 8)), ((8, 8), (1, 8, 8))])
def test_feature_arrays_of_other_or_different_example_shapes_are_refused(train, test):
    from sparsebench.data.digits import load_digits

    x_tr, y_tr, x_te, y_te = load_digits(0)
    with pytest.raises(ConfigError, match=r"feature shapes .*; a loader returns .*\(N, C, H, W\) images"):
        checked_raw_data("shaped", (x_tr.reshape(-1, *train), y_tr, x_te.reshape(-1, *test), y_te))
