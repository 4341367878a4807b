"""Tiny files in the standard dataset formats, written by the tests themselves (nothing is downloaded).

``formats`` offers: ``idx(array)`` (the IDX bytes), ``mnist(folder, ...)`` (the four IDX files),
``cifar10_bin``/``cifar100_bin`` (binary records), ``cifar10_py``/``cifar100_py`` (Python batches,
pickled as Python 2's cPickle wrote the official ones, or with a modern protocol), ``py2_pickle(obj)``.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx(array: np.ndarray) -> bytes:
    """IDX bytes of a uint8 array: magic 00 00 08 <ndim>, big-endian sizes, the values."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape) + array.tobytes()


def mnist_arrays(n_train: int = 120, n_test: int = 40, seed: int = 0):
    """Images (N, 28, 28) and labels cycling through 0..9, so that every class is present."""
    rng = np.random.default_rng(seed)
    x_tr = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    x_te = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    return x_tr, (np.arange(n_train) % 10).astype(np.uint8), x_te, (np.arange(n_test) % 10).astype(np.uint8)


def mnist(folder: Path, gz: bool = False, n_train: int = 120, n_test: int = 40, seed: int = 0):
    """The four IDX files of a tiny MNIST in ``folder``; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = mnist_arrays(n_train, n_test, seed)
    for name, array in zip(IDX_NAMES, arrays):
        data = idx(array)
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    return arrays


def cifar_arrays(n: int, n_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), np.arange(n) % n_classes


def cifar10_bin(root: Path, per_batch: int = 20, n_test: int = 20):
    """``cifar-10-batches-bin/``: 1 label byte + 3072 pixels per record; returns (x_train, y_train, x_test, y_test) flat."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    parts = [cifar_arrays(per_batch, 10, seed) for seed in range(5)] + [cifar_arrays(n_test, 10, 99)]
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name, (x, y) in zip(names, parts):
        (folder / name).write_bytes(np.concatenate([y[:, None].astype(np.uint8), x], axis=1).tobytes())
    return (np.concatenate([x for x, _ in parts[:5]]), np.concatenate([y for _, y in parts[:5]]), *parts[5])


def cifar10_py(root: Path, per_batch: int = 20, n_test: int = 20, py2: bool = True):
    """``cifar-10-batches-py/`` with the same arrays as ``cifar10_bin``."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    parts = [cifar_arrays(per_batch, 10, seed) for seed in range(5)] + [cifar_arrays(n_test, 10, 99)]
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, (x, y) in zip(names, parts):
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in y], b"data": x, b"filenames": [b"a.png"] * len(y)}
        (folder / name).write_bytes(py2_pickle(batch) if py2 else pickle.dumps(batch, protocol=4))
    return (np.concatenate([x for x, _ in parts[:5]]), np.concatenate([y for _, y in parts[:5]]), *parts[5])


def cifar100_arrays(n: int, seed: int):
    x, fine = cifar_arrays(n, 100, seed)
    return x, fine, fine % 20


def cifar100_bin(root: Path, n_train: int = 200, n_test: int = 100):
    """``cifar-100-binary/``: coarse label byte, fine label byte, 3072 pixels; returns (x, fine, coarse) of train and test."""
    folder = root / "cifar-100-binary"
    folder.mkdir(parents=True, exist_ok=True)
    train, test = cifar100_arrays(n_train, 1), cifar100_arrays(n_test, 2)
    for name, (x, fine, coarse) in (("train.bin", train), ("test.bin", test)):
        labels = np.stack([coarse, fine], axis=1).astype(np.uint8)
        (folder / name).write_bytes(np.concatenate([labels, x], axis=1).tobytes())
    return train, test


def cifar100_py(root: Path, n_train: int = 200, n_test: int = 100, py2: bool = True):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    train, test = cifar100_arrays(n_train, 1), cifar100_arrays(n_test, 2)
    for name, (x, fine, coarse) in (("train", train), ("test", test)):
        batch = {b"data": x, b"fine_labels": [int(v) for v in fine], b"coarse_labels": [int(v) for v in coarse]}
        (folder / name).write_bytes(py2_pickle(batch) if py2 else pickle.dumps(batch, protocol=4))
    return train, test


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Protocol 2, with bytes written as Python 2 ``str`` (BINSTRING), as cPickle wrote the CIFAR batches."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_pickle(obj: object) -> bytes:
    """``obj`` pickled as the official CIFAR Python batches are: protocol 2, Python 2 strings, and numpy's
    ``numpy.core.multiarray._reconstruct`` (numpy 2 names it ``numpy._core``; the official files predate that)."""
    import io

    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    data = buffer.getvalue()
    assert b"_codecs" not in data
    return data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


@pytest.fixture
def formats() -> SimpleNamespace:
    return SimpleNamespace(idx=idx, mnist=mnist, mnist_arrays=mnist_arrays, cifar10_bin=cifar10_bin, cifar10_py=cifar10_py,
                           cifar100_bin=cifar100_bin, cifar100_py=cifar100_py, py2_pickle=py2_pickle, IDX_NAMES=IDX_NAMES)


@pytest.fixture(autouse=True)
def _no_data_dir_from_the_environment(monkeypatch, tmp_path):
    """Tests name their data folder; a user's $SPARSEBENCH_DATA or cache folder never leaks in."""
    monkeypatch.delenv("SPARSEBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
