"""CIFAR-10 and CIFAR-100 from the binary or the Python distribution, in the folders their tarballs unpack to.

Under the data folder: ``cifar-10-batches-bin/`` (``data_batch_1.bin`` ...
``data_batch_5.bin``, ``test_batch.bin``) or ``cifar-10-batches-py/``
(``data_batch_1`` ... ``data_batch_5``, ``test_batch``); ``cifar-100-binary/``
(``train.bin``, ``test.bin``) or ``cifar-100-python/`` (``train``, ``test``).
Either distribution alone is enough; the binary one is read when both are there.
``cifar100`` has the 100 fine labels, ``cifar100-coarse`` the 20 superclasses.
Images come out as uint8 ``(N, 3, 32, 32)``, labels as int64.

The Python batches are pickles. They are read through ``BatchUnpickler``, whose
only globals are numpy's array reconstruction (``numpy.core.multiarray._reconstruct``
and its ``numpy._core`` twin), ``numpy.ndarray`` and ``numpy.dtype``: any other
global a file names is refused, in one line, before anything is called, so no
file can run code. What they hold must be uint8 arrays ``(N, 3072)`` and integer
label lists.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import describe
from .files import bad_file, missing_files, read_bytes
from .registry import RawData, register_file_dataset

PIXELS = 3 * 32 * 32
IMAGE_SHAPE = (3, 32, 32)
CIFAR_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"


def _reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct as reconstruct  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct as reconstruct  # type: ignore[no-redef]
    return reconstruct


#: The only globals a CIFAR Python batch may name, and what each resolves to (never imported by the name a file gives).
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class ForbiddenGlobal(Exception):
    """A pickle named a global outside ``ALLOWED_GLOBALS``."""


class BatchUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, lists, dicts, numbers and bytes; refuses every other global without calling it."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise ForbiddenGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise ForbiddenGlobal("a persistent id")


def unpickle_batch(data: bytes, dataset: str, path: Path) -> Any:
    """The object of a CIFAR Python batch, read with the restricted unpickler and ``encoding='bytes'``."""
    try:
        return BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except ForbiddenGlobal as exc:
        raise bad_file(dataset, path, f"names the global {' '.join(str(exc).split())[:120]!r}, which a CIFAR batch never holds "
                       "(refused without calling it)", "CIFAR Python batches that hold only numpy arrays and label lists, "
                       f"or the binary distribution ({CIFAR_PAGE})") from None
    except RecursionError:
        raise bad_file(dataset, path, "nests too deeply to be a CIFAR batch", f"a CIFAR Python batch ({CIFAR_PAGE})") from None
    except Exception as exc:  # a truncated or otherwise broken pickle: UnpicklingError, EOFError, ValueError, ...
        raise bad_file(dataset, path, f"is not a readable CIFAR Python batch ({describe(exc)[:160]})",
                       f"a CIFAR Python batch ({CIFAR_PAGE})") from None


class Distribution:
    """One distribution of one dataset: its folder, its train and test files, and how a file decodes."""

    def __init__(self, folder: str, train: tuple[str, ...], test: str, label_key: bytes, label_offset: int, record_labels: int):
        self.folder, self.train, self.test = folder, train, test
        self.label_key, self.label_offset, self.record_labels = label_key, label_offset, record_labels

    @property
    def binary(self) -> bool:
        return self.folder.endswith(("-bin", "-binary"))

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train, self.test)


def _cifar10(binary: bool) -> Distribution:
    if binary:
        return Distribution("cifar-10-batches-bin", tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin", b"", 0, 1)
    return Distribution("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", b"labels", 0, 0)


def _cifar100(binary: bool, coarse: bool) -> Distribution:
    # A binary record is <coarse label> <fine label> <3072 pixels>.
    if binary:
        return Distribution("cifar-100-binary", ("train.bin",), "test.bin", b"", 0 if coarse else 1, 2)
    return Distribution("cifar-100-python", ("train",), "test", b"coarse_labels" if coarse else b"fine_labels", 0, 0)


#: Each dataset: its classes, its distributions (binary first: it is read when both are present) and its tarballs.
DATASETS = {
    "cifar10": (10, (_cifar10(True), _cifar10(False)), "cifar-10-binary.tar.gz or cifar-10-python.tar.gz"),
    "cifar100": (100, (_cifar100(True, False), _cifar100(False, False)), "cifar-100-binary.tar.gz or cifar-100-python.tar.gz"),
    "cifar100-coarse": (20, (_cifar100(True, True), _cifar100(False, True)), "cifar-100-binary.tar.gz or cifar-100-python.tar.gz"),
}


def decode_binary(data: bytes, dataset: str, path: Path, dist: Distribution, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a binary CIFAR file: fixed-length records of label byte(s) then 3072 pixels."""
    record = dist.record_labels + PIXELS
    if len(data) == 0 or len(data) % record:
        raise bad_file(dataset, path, f"is {len(data)} bytes long, not a whole number of {record}-byte records",
                       f"records of {dist.record_labels} label byte{'s' if dist.record_labels > 1 else ''} and {PIXELS} pixels "
                       f"(the CIFAR binary distribution, {CIFAR_PAGE})")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    labels = records[:, dist.label_offset].astype(np.int64)
    images = records[:, dist.record_labels:].reshape(-1, *IMAGE_SHAPE)
    _check_labels(labels, dataset, path, n_classes)
    return images, labels


def decode_python(data: bytes, dataset: str, path: Path, dist: Distribution, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a Python CIFAR batch: a dict with ``data`` (uint8, (N, 3072)) and a label list."""
    batch = unpickle_batch(data, dataset, path)
    expected = f"a CIFAR Python batch: a dict with b'data' (uint8, shape (N, {PIXELS})) and {dist.label_key!r} (N integers)"
    if not isinstance(batch, dict) or b"data" not in batch or dist.label_key not in batch:
        keys = sorted(map(repr, batch))[:6] if isinstance(batch, dict) else None
        raise bad_file(dataset, path, f"holds {type(batch).__name__}" + (f" with keys {', '.join(keys)}" if keys is not None else ""), expected)
    images, raw_labels = batch[b"data"], batch[dist.label_key]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != PIXELS:
        shown = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise bad_file(dataset, path, f"holds data of {shown}", expected)
    labels = _integer_labels(raw_labels)
    if labels is None:
        raise bad_file(dataset, path, "holds labels that are not a list of integers", expected)
    if len(labels) != len(images):
        raise bad_file(dataset, path, f"holds {len(labels)} labels for {len(images)} images", expected)
    _check_labels(labels, dataset, path, n_classes)
    return images.reshape(-1, *IMAGE_SHAPE), labels


def _integer_labels(raw: Any) -> np.ndarray | None:
    """A list (or 1-D array) of integers as int64, or None for anything else (floats, booleans, nesting)."""
    if not isinstance(raw, (list, np.ndarray)):
        return None
    try:
        labels = np.asarray(raw)
    except (ValueError, TypeError, OverflowError):  # ragged nesting, huge integers
        return None
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        return None  # an empty list is float64: refused too
    return labels.astype(np.int64)


def _check_labels(labels: np.ndarray, dataset: str, path: Path, n_classes: int) -> None:
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        bad = int(labels.max()) if int(labels.max()) >= n_classes else int(labels.min())
        raise bad_file(dataset, path, f"holds the label {bad}", f"labels 0..{n_classes - 1} ({dataset} has {n_classes} classes)")


def locate_cifar(name: str):
    """The ``locate`` of a CIFAR dataset: the files of the first distribution found complete."""
    _, distributions, tarballs = DATASETS[name]

    def locate(data_dir: tuple[Path, str]) -> tuple[Path, ...]:
        root = data_dir[0]
        for dist in distributions:
            paths = tuple(root / dist.folder / f for f in dist.files)
            if all(p.is_file() for p in paths):
                return paths
        # Name the missing files of the distribution most nearly complete (the binary one if neither has any).
        dist = max(distributions, key=lambda d: sum((root / d.folder / f).is_file() for f in d.files))
        wanted = [f for f in dist.files if not (root / dist.folder / f).is_file()]
        others = [root / d.folder for d in distributions if d is not dist]
        raise missing_files(name, wanted, [root / dist.folder, *others], data_dir,
                            f"{tarballs} from {CIFAR_PAGE}, unpacked in {root} (either distribution alone is enough)")

    return locate


def read_cifar(name: str):
    """The ``read`` of a CIFAR dataset: the distribution's train files concatenated, and its test file."""
    n_classes, distributions, _ = DATASETS[name]

    def read(files: tuple[Path, ...], data_seed: int) -> RawData:
        dist = next(d for d in distributions if files[0].parent.name == d.folder)
        decode = decode_binary if dist.binary else decode_python
        parts = [decode(read_bytes(name, path), name, path, dist, n_classes) for path in files]
        train = parts[:-1]
        x_train = np.concatenate([images for images, _ in train]) if len(train) > 1 else train[0][0]
        y_train = np.concatenate([labels for _, labels in train])
        return x_train, y_train, parts[-1][0], parts[-1][1]

    return read


for _name in DATASETS:
    # Per-channel standardization with training statistics, as for MNIST (data/idx.py).
    register_file_dataset(_name, locate_cifar(_name), standardize="channel")(read_cifar(_name))
