"""What identifies a dataset's contents: a fingerprint of the loaded arrays, and a few statistics.

The fingerprint is sha256 over each split's name, dtype, shape and bytes, of the
arrays exactly as the loader returned them (before the validation split and the
standardization), so that any change to the data a loader reads changes it, and
a change to sparsebench's own preprocessing does not. It is computed on every
run, in memory (about 0.1 s for 180 MB); nothing is written beside the data.

>>> import numpy as np
>>> x, y = np.zeros((2, 3), np.float32), np.array([0, 1])
>>> a = fingerprint((x, y, x, y))
>>> len(a), a == fingerprint((x, y, x, y)), a == fingerprint((x + 1, y, x, y))
(64, True, False)
>>> short(a) == a[:12]
True
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

#: The loader's four arrays, in the order it returns them.
SPLIT_NAMES = ("x_train", "y_train", "x_test", "y_test")
#: Characters of a fingerprint shown in messages: enough to tell two apart.
SHORT = 12


def fingerprint(arrays: Sequence[np.ndarray]) -> str:
    """Hex sha256 over each array's split name, dtype (with byte order), shape and bytes."""
    if len(arrays) != len(SPLIT_NAMES):
        raise ValueError(f"a fingerprint takes {len(SPLIT_NAMES)} arrays {SPLIT_NAMES}, got {len(arrays)}")
    digest = hashlib.sha256()
    for name, array in zip(SPLIT_NAMES, arrays):
        array = np.ascontiguousarray(array)  # a view or a transposed array: hashed as its C-order values
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.reshape(-1).view(np.uint8))  # the raw bytes, without a copy
    return digest.hexdigest()


def short(fingerprint_text: str) -> str:
    """The first characters of a fingerprint, as messages show it."""
    return fingerprint_text[:SHORT]


def data_stats(y_train: np.ndarray, y_val: np.ndarray, y_test: np.ndarray, n_classes: int, n_monitor: int = 0) -> dict:
    """Split sizes, class count and the chance level of the loaded data.

    ``chance_acc`` is the best test accuracy of a constant prediction (the test
    frequency of the most frequent test class): what a network that collapsed to
    one answer scores at most, whichever class it answers.

    >>> data_stats(np.array([0, 1, 1]), np.array([0]), np.array([1, 1, 0, 2]), 3)
    {'n_train': 3, 'n_val': 1, 'n_monitor': 0, 'n_test': 4, 'n_classes': 3, 'chance_acc': 0.5}
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    chance = float(np.bincount(y_test, minlength=n_classes).max() / len(y_test)) if len(y_test) else float("nan")
    return {"n_train": int(len(y_train)), "n_val": int(len(y_val)), "n_monitor": int(n_monitor), "n_test": int(len(y_test)),
            "n_classes": int(n_classes), "chance_acc": chance}
