"""The dataset registry and the split/standardization every dataset goes through.

A dataset loader returns raw arrays ``(x_train, y_train, x_test, y_test)``;
``load_dataset`` carves the validation split from train with the data seed and
standardizes every split with statistics from the (remaining) train split only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

RawData = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_LOADERS: dict[str, Callable[[int], RawData]] = {}


def register_dataset(name: str) -> Callable[[Callable[[int], RawData]], Callable[[int], RawData]]:
    """Register ``loader(data_seed) -> (x_train, y_train, x_test, y_test)`` under ``name``."""

    def decorate(loader: Callable[[int], RawData]) -> Callable[[int], RawData]:
        _LOADERS[name] = loader
        return loader

    return decorate


def dataset_names() -> list[str]:
    _load_builtin()
    return sorted(_LOADERS)


@dataclass(frozen=True)
class DatasetSplits:
    """Standardized float32 features and int64 labels of the three splits."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    def to(self, device: str | torch.device) -> "DatasetSplits":
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return DatasetSplits(name=self.name, n_classes=self.n_classes, **moved)


@lru_cache(maxsize=8)
def load_dataset(name: str, data_seed: int = 0, val_fraction: float = 0.2) -> DatasetSplits:
    """Load ``name`` and split it.

    >>> d = load_dataset("mnist1d")
    >>> tuple(d.x_train.shape), tuple(d.x_val.shape), tuple(d.x_test.shape)
    ((3200, 40), (800, 40), (1000, 40))
    """
    _load_builtin()
    x_tr, y_tr, x_te, y_te = _LOADERS[name](data_seed)
    order = np.random.default_rng(data_seed).permutation(len(y_tr))
    n_val = max(1, int(round(val_fraction * len(y_tr))))
    val_idx, train_idx = order[:n_val], np.sort(order[n_val:])
    val_idx = np.sort(val_idx)
    x_train, y_train = x_tr[train_idx], y_tr[train_idx]
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0  # constant features (e.g. digits' border pixels) stay zero

    def features(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((x - mean) / std).astype(np.float32))

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y.astype(np.int64))

    return DatasetSplits(
        name=name,
        x_train=features(x_train),
        y_train=labels(y_train),
        x_val=features(x_tr[val_idx]),
        y_val=labels(y_tr[val_idx]),
        x_test=features(x_te),
        y_test=labels(y_te),
        n_classes=int(max(y_tr.max(), y_te.max())) + 1,
    )


def _load_builtin() -> None:
    # Imported for their registration side effect, late to keep start-up light.
    from . import digits, mnist1d  # noqa: F401
