"""A user's own arrays: npz:PATH and csv:PATH (issue 16, item 1)."""

import numpy as np
import pytest

from sparsebench import ExperimentConfig
from sparsebench.data import load_dataset
from sparsebench.data.registry import _raw_data
from sparsebench.errors import ConfigError


def blobs(n=100, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    return rng.normal(size=(n, features)) + y[:, None], y


def write_csv(path, x, y, header=None):
    header = header or [f"f{i}" for i in range(x.shape[1])] + ["label"]
    rows = [",".join(header)] + [",".join([*(f"{v:.6f}" for v in row), str(int(label))]) for row, label in zip(x, y)]
    path.write_text("\n".join(rows) + "\n")


def test_an_npz_with_its_own_test_split(tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "a.npz", x_train=x[:80], y_train=y[:80], x_test=x[80:], y_test=y[80:])
    raw = _raw_data(f"npz:{tmp_path / 'a.npz'}", 0, None)
    assert np.array_equal(raw[0], x[:80]) and np.array_equal(raw[3], y[80:])


def test_an_npz_of_images_keeps_its_shape(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "img.npz", x_train=rng.integers(0, 255, (30, 3, 8, 8), dtype=np.uint8), y_train=np.arange(30) % 2)
    data = load_dataset(f"npz:{tmp_path / 'img.npz'}", 0, 0.2)
    assert tuple(data.x_train.shape[1:]) == (3, 8, 8) and len(data.y_test) == 6  # the default test fraction, 0.2


def test_without_a_test_split_a_stratified_fraction_is_held_out_with_the_data_seed(tmp_path):
    x, y = blobs(n=120)
    np.savez(tmp_path / "a.npz", x_train=x, y_train=y)
    name = f"npz:{tmp_path / 'a.npz'}?test=0.25"
    first, again, other = (_raw_data(name, seed, None) for seed in (0, 0, 1))
    assert np.bincount(first[3]).tolist() == [10, 10, 10] and len(first[1]) == 90
    assert np.array_equal(first[2], again[2]) and not np.array_equal(first[2], other[2])
    assert sorted(map(tuple, np.concatenate([first[0], first[2]]))) == sorted(map(tuple, x))  # every row, once


def test_a_test_file_for_npz_and_csv(tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "train.npz", x_train=x[:70], y_train=y[:70])
    np.savez(tmp_path / "test.npz", x_test=x[70:], y_test=y[70:])
    raw = _raw_data(f"npz:{tmp_path / 'train.npz'}?test={tmp_path / 'test.npz'}", 0, None)
    assert np.array_equal(raw[2], x[70:]) and np.array_equal(raw[1], y[:70])
    write_csv(tmp_path / "train.csv", x[:70], y[:70])
    write_csv(tmp_path / "test.csv", x[70:], y[70:])
    raw = _raw_data(f"csv:{tmp_path / 'train.csv'}?test={tmp_path / 'test.csv'}", 0, None)
    assert np.allclose(raw[0], x[:70], atol=1e-6) and np.array_equal(raw[3], y[70:]) and raw[3].dtype == np.int64


def test_csv_label_column_may_be_anywhere_and_relative_paths_look_in_the_cwd_then_the_data_folder(tmp_path, monkeypatch):
    x, y = blobs(n=50, features=2)
    (tmp_path / "data").mkdir()
    header = ["a", "label", "b"]
    rows = ["a,label,b"] + [f"{r[0]},{int(label)},{r[1]}" for r, label in zip(x, y)]
    (tmp_path / "data" / "mine.csv").write_text("\n".join(rows))
    monkeypatch.chdir(tmp_path)
    raw = _raw_data("csv:mine.csv", 0, tmp_path / "data")  # not in the cwd: found in the data folder
    assert raw[0].shape[1] == 2 and len(raw[1]) + len(raw[3]) == 50
    assert header == ["a", "label", "b"]
    with pytest.raises(ConfigError) as err:
        _raw_data("csv:mine.csv", 0, tmp_path / "elsewhere")
    assert "files not found: mine.csv" in str(err.value) and str(tmp_path / "elsewhere") in str(err.value)


def test_the_npz_and_csv_prefixes_take_precedence_over_module_loader(tmp_path):
    # csv:reader would name the standard library's csv.reader as module:loader; it is a file name here.
    with pytest.raises(ConfigError, match="files not found: reader"):
        load_dataset("csv:reader", data_dir=tmp_path)
    ExperimentConfig(dataset="npz:whatever.npz")  # validated without the file: it is read when the data loads


@pytest.mark.parametrize("name,says", [
    ("npz:", "the path is empty"),
    ("csv:?test=0.2", "the path is empty"),
    ("npz:a.npz?test=1.5", "not in (0, 1)"),
    ("npz:a.npz?test=0", "not in (0, 1)"),
    ("csv:a.csv?test=", "the test option is empty"),
])
def test_malformed_specs_are_refused_by_the_config(name, says):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig(dataset=name)
    assert says in str(err.value) and "npz:PATH or csv:PATH" in str(err.value)


def _object_npz(path):
    np.savez(path, x_train=np.array([{"a": 1}, None], dtype=object), y_train=np.array([0, 1]))


@pytest.mark.parametrize("write,says", [
    (_object_npz, "not a readable .npz of plain arrays"),
    (lambda p: np.savez(p, x=np.zeros((4, 2)), y=np.zeros(4, int)), "holds the arrays ['x', 'y']"),
    (lambda p: np.savez(p, x_train=np.zeros((4, 2)), y_train=np.zeros(4, int), x_test=np.zeros((2, 2))), "only x_test"),
    (lambda p: p.write_bytes(b"PK\x03\x04 broken"), "not a readable .npz"),
])
def test_malformed_npz_files_are_refused_in_one_line(tmp_path, write, says):
    path = tmp_path / "bad.npz"
    write(path)
    with pytest.raises(ConfigError) as err:
        load_dataset(f"npz:{path}")
    assert "\n" not in str(err.value) and says in str(err.value) and "bad.npz" in str(err.value)


def test_an_object_array_never_unpickles(tmp_path, monkeypatch):
    import pickle

    _object_npz(tmp_path / "bad.npz")
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(ConfigError, match="allow_pickle=False|Object arrays cannot be loaded"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")


@pytest.mark.parametrize("text,says", [
    ("a,b\n1,2\n", "has the header ['a', 'b']"),
    ("a,label\n1,x\n", "not a number"),
    ("a,label\n1,0\n2\n", "row of another length"),
    ("a,label\n1,0.5\n2,1\n", "label values that are not integers"),
    ("a,label\n", "has no data rows"),
])
def test_malformed_csv_files_are_refused_in_one_line(tmp_path, text, says):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_dataset(f"csv:{tmp_path / 'bad.csv'}")
    assert "\n" not in str(err.value) and says in str(err.value)


def test_a_test_csv_with_another_header_and_an_npz_with_two_test_splits_are_refused(tmp_path):
    x, y = blobs()
    write_csv(tmp_path / "train.csv", x, y)
    write_csv(tmp_path / "test.csv", x[:, :4], y)
    with pytest.raises(ConfigError, match="another header than the training file"):
        load_dataset(f"csv:{tmp_path / 'train.csv'}?test={tmp_path / 'test.csv'}")
    np.savez(tmp_path / "a.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    with pytest.raises(ConfigError, match="also asks for a test fraction"):
        load_dataset(f"npz:{tmp_path / 'a.npz'}?test=0.3")


def test_user_arrays_are_standardized_per_feature_by_default(tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "a.npz", x_train=x * 100, y_train=y)
    name = f"npz:{tmp_path / 'a.npz'}"
    assert ExperimentConfig(dataset=name).standardize == "feature"
    data = load_dataset(name, 0, 0.2)
    assert np.allclose(data.x_train.std(dim=0, unbiased=False).numpy(), 1, atol=1e-4)


def test_channel_standardization_of_tabular_data_is_per_feature_and_of_sequences_per_channel(tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "a.npz", x_train=x * 10 + 3, y_train=y)
    name = f"npz:{tmp_path / 'a.npz'}"
    by_feature, by_channel = load_dataset(name, 0, 0.2, standardize="feature"), load_dataset(name, 0, 0.2, standardize="channel")
    assert np.allclose(by_feature.x_test.numpy(), by_channel.x_test.numpy(), atol=1e-5)
    rng = np.random.default_rng(1)
    seq = rng.normal(size=(60, 2, 7)) * np.array([1.0, 50.0])[None, :, None] + np.array([5.0, -3.0])[None, :, None]
    np.savez(tmp_path / "s.npz", x_train=seq, y_train=np.arange(60) % 2)
    data = load_dataset(f"npz:{tmp_path / 's.npz'}", 0, 0.2, standardize="channel")
    assert np.allclose(data.x_train.mean(dim=(0, 2)).numpy(), 0, atol=1e-5)
    assert np.allclose(data.x_train.std(dim=(0, 2), unbiased=False).numpy(), 1, atol=1e-5)
    assert not np.allclose(data.x_train.std(dim=0, unbiased=False).numpy(), 1, atol=1e-2)  # not per position
