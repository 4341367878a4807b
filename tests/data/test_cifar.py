"""CIFAR-10/100 from the binary and the Python distributions the tests write (issue 16, items 1-2),
and the restricted unpickler that keeps a planted global from running."""

import os
import pickle
import shutil

import numpy as np
import pytest

from sparsebench.data import load_dataset
from sparsebench.data.registry import _raw_data
from sparsebench.errors import ConfigError


def test_cifar10_binary_loads_n_3_32_32_in_record_order(tmp_path, formats):
    x_tr, y_tr, x_te, y_te = formats.cifar10_bin(tmp_path)
    raw = _raw_data("cifar10", 0, tmp_path)
    assert raw[0].shape == (100, 3, 32, 32) and raw[0].dtype == np.uint8 and raw[2].shape == (20, 3, 32, 32)
    # A record's 3072 pixels are the red, green and blue planes of 32x32, in that order.
    assert np.array_equal(raw[0].reshape(100, -1), x_tr) and raw[0][0, 1, 0, 0] == x_tr[0, 1024]
    assert np.array_equal(raw[1], y_tr) and np.array_equal(raw[3], y_te) and raw[1].dtype == np.int64
    data = load_dataset("cifar10", 0, 0.2, data_dir=tmp_path)
    assert tuple(data.x_train.shape) == (80, 3, 32, 32) and data.n_classes == 10
    # Per-channel standardization with training statistics: each channel of the training split at mean 0, sd 1.
    x_train = data.features(data.x_train)  # kept uint8 until gathered
    assert np.allclose(x_train.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-4)
    assert np.allclose(x_train.std(dim=(0, 2, 3), unbiased=False).numpy(), 1, atol=1e-4)


@pytest.mark.parametrize("py2", [True, False])
def test_the_python_distribution_gives_the_same_data_as_the_binary_one(tmp_path, formats, py2):
    formats.cifar10_bin(tmp_path / "bin")
    formats.cifar10_py(tmp_path / "py", py2=py2)
    assert _raw_data("cifar10", 0, tmp_path / "py")[4] == _raw_data("cifar10", 0, tmp_path / "bin")[4]


def test_cifar100_fine_and_coarse_labels_from_either_distribution(tmp_path, formats):
    (x, fine, coarse), (x_test, fine_test, _) = formats.cifar100_bin(tmp_path / "bin")
    formats.cifar100_py(tmp_path / "py")
    for folder in ("bin", "py"):
        raw = _raw_data("cifar100", 0, tmp_path / folder)
        assert np.array_equal(raw[1], fine) and np.array_equal(raw[3], fine_test) and raw[0].shape == (200, 3, 32, 32)
        assert np.array_equal(raw[0].reshape(200, -1), x) and np.array_equal(raw[2].reshape(100, -1), x_test)
        assert np.array_equal(_raw_data("cifar100-coarse", 0, tmp_path / folder)[1], coarse)
    assert load_dataset("cifar100-coarse", 0, 0.2, data_dir=tmp_path / "py").n_classes == 20


def test_either_distribution_alone_is_enough_and_a_missing_one_is_named(tmp_path, formats):
    formats.cifar10_py(tmp_path)
    load_dataset("cifar10", data_dir=tmp_path)
    os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(ConfigError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    text = str(err.value)
    assert "\n" not in text and "files not found: data_batch_3 in" in text and "cifar-10-batches-py" in text
    assert "cifar-10-batches-bin" in text and "https://www.cs.toronto.edu/~kriz/cifar.html" in text
    shutil.rmtree(tmp_path / "cifar-10-batches-py")
    with pytest.raises(ConfigError, match="data_batch_1.bin, .*test_batch.bin in"):
        load_dataset("cifar10", data_dir=tmp_path)


@pytest.mark.parametrize("change,says", [
    (lambda d: d[:-1], "not a whole number of 3073-byte records"),
    (lambda d: b"", "0 bytes long"),
    (lambda d: bytes([10]) + d[1:], "holds the label 10; allowed: labels 0..9"),
])
def test_malformed_binary_files_are_refused_in_one_line(tmp_path, formats, change, says):
    formats.cifar10_bin(tmp_path)
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_2.bin"
    path.write_bytes(change(path.read_bytes()))
    with pytest.raises(ConfigError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "\n" not in str(err.value) and "data_batch_2.bin" in str(err.value) and says in str(err.value)


def test_a_cifar100_binary_file_with_cifar10_records_is_refused(tmp_path, formats):
    formats.cifar100_bin(tmp_path)
    (tmp_path / "cifar-100-binary" / "test.bin").write_bytes(bytes(3073 * 3))  # 3 CIFAR-10 records: 9219 bytes
    with pytest.raises(ConfigError, match="not a whole number of 3074-byte records"):
        load_dataset("cifar100", data_dir=tmp_path)


@pytest.mark.parametrize("batch,says", [
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "data of float32 (2, 3072)"),
    ({b"data": np.zeros((2, 3, 32, 32), np.uint8), b"labels": [0, 1]}, "data of uint8 (2, 3, 32, 32)"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0.0, 1.0]}, "labels that are not a list of integers"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "1 labels for 2 images"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, "holds the label 12"),
    ({b"data": np.zeros((2, 3072), np.uint8)}, "holds dict with keys b'data'"),
    ([1, 2], "holds list"),
])
def test_python_batches_that_are_not_cifar_batches_are_refused(tmp_path, formats, batch, says):
    formats.cifar10_py(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(formats.py2_pickle(batch))
    with pytest.raises(ConfigError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "\n" not in str(err.value) and "test_batch" in str(err.value) and says in str(err.value)


def test_a_truncated_pickle_is_refused_in_one_line(tmp_path, formats):
    formats.cifar10_py(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ConfigError, match="is not a readable CIFAR Python batch"):
        load_dataset("cifar10", data_dir=tmp_path)


class Planted:
    """What an attacker plants in a batch: unpickling it would call ``os.system`` (here: create a file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class PlantedNumpy:
    """A global under numpy's name that is not one of the four allowed: still refused."""

    def __reduce__(self):
        return np.load, ("/nonexistent.npy",)


def malicious_batches(marker):
    good = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    yield "os.system at the top", Planted(marker)
    yield "os.system beside the data", {**good, b"extra": Planted(marker)}
    yield "os.system inside the label list", {**good, b"labels": [0, Planted(marker)]}
    yield "builtins.eval", {**good, b"extra": _Reduce(eval, (f"__import__('os').system('touch {marker}')",))}
    yield "another numpy global", {**good, b"extra": PlantedNumpy()}


class _Reduce:
    def __init__(self, call, args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("protocol", [2, 4])
def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path, formats, case, protocol):
    marker = tmp_path / "PWNED"
    label, batch = list(malicious_batches(marker))[case]
    payload = pickle.dumps(batch, protocol=protocol)
    # The payload is real: plain pickle.loads runs it (checked on a copy aimed at another marker).
    if "numpy" not in label:
        pickle.loads(payload.replace(b"PWNED", b"CHECK"))
        assert (tmp_path / "CHECK").exists(), label
    formats.cifar10_py(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").write_bytes(payload)
    with pytest.raises(ConfigError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    text = str(err.value)
    assert not marker.exists(), label
    assert "\n" not in text and "data_batch_4" in text and "names the global" in text and "refused without calling it" in text


def test_the_cli_refuses_a_planted_global_with_exit_2_and_one_line(tmp_path, formats, cli):
    marker = tmp_path / "PWNED"
    formats.cifar10_py(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(formats.py2_pickle({b"x": Planted(marker)}))
    code, _, err = cli("run", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--parent", "cnn", "--seeds", "1",
                       "--sparsities", "0.5", "--epochs", "1", "--no-progress", "--store", str(tmp_path / "s.db"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "posix.system" in err and not marker.exists() and not (tmp_path / "s.db").exists()
