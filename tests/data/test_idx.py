"""MNIST and Fashion-MNIST from IDX files the tests write (issue 16, items 1-2)."""

import gzip
import os

import numpy as np
import pytest
import torch

from sparsebench.data import load_dataset
from sparsebench.data.registry import _raw_data
from sparsebench.errors import ConfigError


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loads_images_as_n_1_28_28_with_their_labels(tmp_path, formats, gz):
    x_tr, y_tr, x_te, y_te = formats.mnist(tmp_path / "mnist", gz=gz)
    raw = _raw_data("mnist", 0, tmp_path)
    assert raw[0].shape == (120, 1, 28, 28) and raw[0].dtype == np.uint8 and raw[2].shape == (40, 1, 28, 28)
    assert np.array_equal(raw[0][:, 0], x_tr) and np.array_equal(raw[2][:, 0], x_te)
    assert raw[1].dtype == np.int64 and np.array_equal(raw[1], y_tr) and np.array_equal(raw[3], y_te)
    data = load_dataset("mnist", 0, 0.25, data_dir=tmp_path)
    assert tuple(data.x_train.shape) == (90, 1, 28, 28) and tuple(data.x_val.shape) == (30, 1, 28, 28)
    assert data.x_train.dtype == torch.uint8 and data.features(data.x_train).dtype == torch.float32  # uint8 until gathered
    assert data.n_classes == 10 and tuple(data.x_test.shape) == (40, 1, 28, 28)


def test_gzipped_and_plain_files_are_the_same_data(tmp_path, formats):
    formats.mnist(tmp_path / "a" / "mnist", gz=True)
    formats.mnist(tmp_path / "b" / "mnist", gz=False)
    assert _raw_data("mnist", 0, tmp_path / "a")[4] == _raw_data("mnist", 0, tmp_path / "b")[4]


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST/raw"), ("fashion-mnist", "FashionMNIST/raw"), ("fashion-mnist", "fashion-mnist")])
def test_the_torchvision_layout_and_fashion_mnist_load(tmp_path, formats, name, folder):
    formats.mnist(tmp_path / folder, gz=True)
    assert tuple(load_dataset(name, 0, 0.2, data_dir=tmp_path).x_test.shape) == (40, 1, 28, 28)


def test_images_are_standardized_per_channel_with_training_statistics(tmp_path, formats):
    formats.mnist(tmp_path / "mnist")
    data = load_dataset("mnist", 0, 0.2, data_dir=tmp_path)
    x_train, x_test = data.features(data.x_train), data.features(data.x_test)
    assert abs(float(x_train.mean())) < 1e-4 and abs(float(x_train.std(unbiased=False)) - 1) < 1e-4
    assert abs(float(x_test.mean())) > 1e-4  # the test split is not standardized with its own statistics
    raw = load_dataset("mnist", 0, 0.2, standardize="none", data_dir=tmp_path)
    assert float(raw.x_train.max()) == 255.0


def test_missing_files_are_named_with_where_they_were_looked_for_and_where_to_get_them(tmp_path, formats):
    formats.mnist(tmp_path / "mnist")
    os.remove(tmp_path / "mnist" / "t10k-labels-idx1-ubyte")
    with pytest.raises(ConfigError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    text = str(err.value)
    assert "\n" not in text and "t10k-labels-idx1-ubyte" in text and "train-images" not in text.split("allowed")[0]
    assert str(tmp_path / "mnist") in text and str(tmp_path / "MNIST" / "raw") in text and "https://" in text
    assert "nothing is downloaded" in text


def _break(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[:-5])
    elif how == "trailing":
        path.write_bytes(data + b"\0")
    elif how == "magic":
        path.write_bytes(b"\0\0\x09" + data[3:])
    elif how == "dims":
        path.write_bytes(b"\0\0\x08\x02" + data[4:])
    elif how == "not gzip":
        path.write_bytes(b"not gzip at all")


@pytest.mark.parametrize("file,how,says", [
    ("train-images-idx3-ubyte", "truncated", "truncated"),
    ("train-images-idx3-ubyte", "trailing", "trailing bytes"),
    ("train-labels-idx1-ubyte", "magic", "magic number 0x00000901"),
    ("t10k-images-idx3-ubyte", "dims", "magic number 0x00000802"),
    ("t10k-labels-idx1-ubyte.gz", "not gzip", "cannot be read"),
])
def test_malformed_files_are_refused_in_one_line_naming_the_file(tmp_path, formats, file, how, says):
    formats.mnist(tmp_path / "mnist", gz=file.endswith(".gz"))
    _break(tmp_path / "mnist" / file, how)
    with pytest.raises(ConfigError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    text = str(err.value)
    assert "\n" not in text and file in text and says in text and "allowed" in text


def test_labels_out_of_range_and_counts_that_differ_are_refused(tmp_path, formats):
    formats.mnist(tmp_path / "mnist")
    labels = np.arange(120) % 11
    (tmp_path / "mnist" / "train-labels-idx1-ubyte").write_bytes(formats.idx(labels))
    with pytest.raises(ConfigError, match="holds the label 10; allowed: labels 0..9"):
        load_dataset("mnist", data_dir=tmp_path)
    (tmp_path / "mnist" / "train-labels-idx1-ubyte").write_bytes(formats.idx(np.arange(100) % 10))
    with pytest.raises(ConfigError, match="holds 100 labels for the 120 images"):
        load_dataset("mnist", data_dir=tmp_path)
    (tmp_path / "mnist" / "train-images-idx3-ubyte").write_bytes(formats.idx(np.zeros((100, 27, 28))))
    with pytest.raises(ConfigError, match="images of 27x28 pixels"):
        load_dataset("mnist", data_dir=tmp_path)


def test_files_are_read_once_per_process_and_again_when_they_change(tmp_path, formats, monkeypatch):
    from sparsebench.data import idx

    formats.mnist(tmp_path / "mnist")
    reads = []
    real = idx.parse_idx
    monkeypatch.setattr(idx, "parse_idx", lambda *a: reads.append(1) or real(*a))
    first = load_dataset("mnist", 3, data_dir=tmp_path).fingerprint
    load_dataset("mnist", 3, data_dir=tmp_path)
    assert len(reads) == 4  # the second load came from the cache
    formats.mnist(tmp_path / "mnist", seed=1)  # other pixels, same sizes
    os.utime(tmp_path / "mnist" / "train-images-idx3-ubyte", ns=(1, 1))  # even with an odd modification time
    assert load_dataset("mnist", 3, data_dir=tmp_path).fingerprint != first and len(reads) == 8
