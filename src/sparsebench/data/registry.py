"""The dataset registry and the split/standardization every dataset goes through.

A dataset loader returns raw arrays ``(x_train, y_train, x_test, y_test)``;
``load_dataset`` carves the validation split from train with the data seed and
standardizes every split with statistics from the (remaining) train split only
(uint8 images stay uint8 with those statistics, standardized when a minibatch or
an evaluation chunk is gathered: ``DatasetSplits.features``).

Loaders come from this package, from ``register_dataset``, from another
installed package through the entry-point group ``sparsebench.datasets``
(``name = "module:loader"``), or are named directly as ``module:loader``.
Datasets read from files (``register_file_dataset``: MNIST, Fashion-MNIST,
CIFAR; ``npz:PATH`` and ``csv:PATH``, whose prefixes take precedence over
``module:loader``) find their files in the data folder (``data/files.py``).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from ..errors import ConfigError, describe, invalid
from .augment import check_augment
from .files import file_signature, resolve_data_dir
from .fingerprint import fingerprint

if TYPE_CHECKING:
    from .augment import Draw

RawData = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
ENTRY_POINT_GROUP = "sparsebench.datasets"
_LOADERS: dict[str, Callable[[int], RawData]] = {}
#: How each registered dataset is standardized unless the config says otherwise.
_STANDARDIZE: dict[str, str] = {}
#: For datasets that do not say: per-feature standardization with training statistics.
DEFAULT_STANDARDIZE = "feature"


def register_dataset(name: str, standardize: str = DEFAULT_STANDARDIZE) -> Callable[[Callable[[int], RawData]], Callable[[int], RawData]]:
    """Register ``loader(data_seed) -> (x_train, y_train, x_test, y_test)`` under ``name``.

    ``standardize`` is the dataset's default preprocessing: ``"feature"``
    (each feature to mean 0, sd 1 with training statistics), ``"channel"`` (each
    channel of images or sequences to mean 0, sd 1 over its examples and positions)
    or ``"none"`` (for data that is already on a sensible scale, e.g. generated standardized).
    """

    def decorate(loader: Callable[[int], RawData]) -> Callable[[int], RawData]:
        _LOADERS[name] = loader
        _STANDARDIZE[name] = standardize
        return loader

    return decorate


@dataclass(frozen=True)
class FileDataset:
    """A dataset read from files: ``locate(data_dir)`` names the files it will read (or refuses, in one
    line, saying which are missing, where, and how to get them); ``read(files, data_seed)`` decodes them."""

    locate: Callable[[tuple[Path, str]], tuple[Path, ...]]
    read: Callable[[tuple[Path, ...], int], RawData]


_FILE_DATASETS: dict[str, FileDataset] = {}
#: Dataset-name prefixes of a user's own array files (``npz:PATH``, ``csv:PATH``): reserved, tried before
#: ``module:loader``.
ARRAY_PREFIXES = ("npz:", "csv:")


def register_file_dataset(name: str, locate: Callable[[tuple[Path, str]], tuple[Path, ...]], standardize: str = DEFAULT_STANDARDIZE
                          ) -> Callable[[Callable[[tuple[Path, ...], int], RawData]], Callable[[tuple[Path, ...], int], RawData]]:
    """Register ``read(files, data_seed) -> (x_train, y_train, x_test, y_test)`` under ``name``, reading the
    files ``locate((data_dir, origin))`` finds. Its arrays are cached per process while the files are unchanged."""

    def decorate(read: Callable[[tuple[Path, ...], int], RawData]) -> Callable[[tuple[Path, ...], int], RawData]:
        _FILE_DATASETS[name] = FileDataset(locate, read)
        _STANDARDIZE[name] = standardize
        return read

    return decorate


def _file_dataset(name: object) -> FileDataset | None:
    """The file dataset behind a name (a built-in one or an ``npz:``/``csv:`` spec), or None."""
    _load_builtin()
    if not isinstance(name, str):
        return None
    if name.startswith(ARRAY_PREFIXES):
        from .arrays import array_dataset

        return array_dataset(name)
    return _FILE_DATASETS.get(name)


def data_status(data_dir: str | Path | None = None) -> list[dict]:
    """Each dataset read from files: whether its files are in the data folder, their size and where.

    Rows: ``dataset``, ``status`` ("present" or "missing"), ``bytes`` (of the files found), ``where`` (the
    folder they were found in, or where they belong) and ``missing`` (the file names not found).
    """
    from .files import MissingFiles

    _load_builtin()
    folder = resolve_data_dir(data_dir)
    rows = []
    for name, source in sorted(_FILE_DATASETS.items()):
        try:
            files = source.locate(folder)
        except MissingFiles as exc:
            rows.append({"dataset": name, "status": "missing", "bytes": 0, "where": str(exc.places[0]), "missing": exc.wanted})
            continue
        where = str(files[0].parent) if len({f.parent for f in files}) == 1 else ", ".join(str(f) for f in files)
        rows.append({"dataset": name, "status": "present", "bytes": sum(f.stat().st_size for f in files), "where": where,
                     "missing": []})
    return rows


def default_standardization(name: str) -> str:
    """The standardization a dataset asks for (``"feature"`` for plug-ins that do not say)."""
    _load_builtin()
    return _STANDARDIZE.get(name, DEFAULT_STANDARDIZE)


def dataset_names() -> list[str]:
    """Built-in, registered and entry-point dataset names."""
    _load_builtin()
    return sorted(set(_LOADERS) | set(_FILE_DATASETS) | set(_entry_points()))


def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _allowed() -> str:
    return "one of " + ", ".join(dataset_names()) + ", npz:PATH, csv:PATH, or module:loader"


def _loader(name: str) -> Callable[[int], RawData]:
    """The loader behind a dataset name, an entry point, or a ``module:loader`` spec."""
    _load_builtin()
    if not isinstance(name, str):
        raise invalid("dataset", name, _allowed())
    if name in _LOADERS:
        return _LOADERS[name]
    eps = _entry_points()
    if name in eps:
        load = eps[name].load
    elif ":" in name:
        module_name, _, attr = name.partition(":")
        load = lambda: getattr(importlib.import_module(module_name), attr)  # noqa: E731
    else:
        raise invalid("dataset", name, _allowed())
    try:
        loader = load()
    except Exception as exc:  # a plugin's import failure is a bad dataset name, said in one line
        raise ConfigError(f"dataset: cannot load {name!r} ({describe(exc)}); allowed: {_allowed()}") from None
    if not callable(loader):
        raise ConfigError(f"dataset: {name!r} is not a loader; allowed: a callable loader(data_seed) -> (x_train, y_train, x_test, y_test)")
    return loader


def validate_dataset_name(name: object) -> None:
    """Refuse, in one line, a dataset name that names no loader (files are checked when they are loaded)."""
    if _file_dataset(name) is None:
        _loader(name)  # type: ignore[arg-type]


#: Feature values beyond this magnitude are refused: standardizing them squares
#: deviations, which overflows long before float32's 3.4e38, and no real measurement needs it.
MAX_FEATURE_ABS = 1e30


def checked_raw_data(name: str, raw: object) -> RawData:
    """The loader's four arrays, or a one-line ConfigError saying what is wrong with them.

    The contract: 2-D numeric features with the same columns, finite and at most
    ``MAX_FEATURE_ABS`` in magnitude; 1-D integer labels of matching lengths; the
    training labels are exactly the classes 0..C-1 (at least 2, none missing); the
    test labels are among them.
    """

    def wrong(what: str) -> ConfigError:
        return ConfigError(f"dataset {name!r}: {what}; a loader returns (x_train, y_train, x_test, y_test): "
                           "float features of one example shape in both (N, F) tabular, (N, C, L) sequences or "
                           "(N, C, H, W) images, 1-D integer labels 0..C-1 of matching lengths")

    if not (isinstance(raw, (tuple, list)) and len(raw) == 4):
        raise wrong(f"the loader returned {type(raw).__name__}, not 4 arrays")
    try:
        x_tr, y_tr, x_te, y_te = (np.asarray(a) for a in raw)
    except (ValueError, TypeError) as exc:  # ragged nested lists and the like
        raise wrong(f"arrays that numpy cannot read ({describe(exc)})") from None
    # The example shape says what the data is (EXAMPLE_KINDS); each family says which kinds it takes.
    if x_tr.ndim not in EXAMPLE_KINDS or x_te.shape[1:] != x_tr.shape[1:] or 0 in x_tr.shape[1:]:
        raise wrong(f"feature shapes {x_tr.shape} and {x_te.shape}")
    if y_tr.shape != (len(x_tr),) or y_te.shape != (len(x_te),):
        raise wrong(f"label shapes {y_tr.shape} and {y_te.shape} for {len(x_tr)} and {len(x_te)} rows")
    if len(y_tr) < 2 or len(y_te) == 0:
        raise wrong(f"{len(y_tr)} train and {len(y_te)} test rows")
    if not (np.issubdtype(y_tr.dtype, np.integer) and np.issubdtype(y_te.dtype, np.integer)):
        raise wrong(f"labels of dtype {y_tr.dtype}/{y_te.dtype}")
    if min(y_tr.min(), y_te.min()) < 0:
        raise wrong(f"negative labels (smallest {min(y_tr.min(), y_te.min())})")
    real = [np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating) for x in (x_tr, x_te)]
    if not all(real):
        raise wrong(f"features of dtype {x_tr.dtype}/{x_te.dtype}")
    if not (_all_finite(x_tr) and _all_finite(x_te)):
        raise wrong("features that are not all finite")
    largest = max(_largest_magnitude(x_tr), _largest_magnitude(x_te))
    if largest > MAX_FEATURE_ABS:
        raise wrong(f"feature values as large as {largest:.3g} (at most {MAX_FEATURE_ABS:g} in magnitude)")
    _check_classes(wrong, y_tr, y_te)
    return x_tr, y_tr, x_te, y_te


def _all_finite(x: np.ndarray) -> bool:
    """Whether every value is finite (integers always are: no 150 MB boolean array for CIFAR's uint8)."""
    return bool(np.issubdtype(x.dtype, np.integer) or np.isfinite(x).all())


def _largest_magnitude(x: np.ndarray) -> float:
    """The largest absolute value (0 for no values), without an absolute copy of the array."""
    if x.size == 0:
        return 0.0
    return max(abs(float(x.max())), abs(float(x.min())))


#: What a feature array of each number of dimensions holds: (N, F), (N, C, L) or (N, C, H, W).
EXAMPLE_KINDS = {2: "tabular", 3: "sequences", 4: "images"}

SPLIT_TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "x_monitor", "y_monitor")


def _check_classes(wrong: Callable[[str], ConfigError], y_tr: np.ndarray, y_te: np.ndarray) -> None:
    """Training labels are exactly 0..C-1 with C >= 2; test labels are among them."""
    seen = np.unique(y_tr)
    if len(seen) < 2:
        raise wrong(f"a single class ({seen[0]}) in the training labels, at least 2 needed")
    n_missing = int(seen[-1]) + 1 - len(seen)
    if n_missing:
        # The first few missing labels lie below len(seen) + SHOWN: no range up to a huge label is built.
        missing = np.setdiff1d(np.arange(min(int(seen[-1]) + 1, len(seen) + SHOWN)), seen)
        raise wrong(f"training labels {_few(seen, len(seen))} miss {_few(missing, n_missing)} (labels must be 0..C-1 without gaps)")
    unseen = np.setdiff1d(np.unique(y_te), seen)
    if len(unseen):
        raise wrong(f"test labels {_few(unseen, len(unseen))} never seen in training (classes 0..{int(seen[-1])})")


#: Labels listed in a message, at most.
SHOWN = 8


def _few(values: np.ndarray, total: int) -> str:
    """The first ``SHOWN`` of ``total`` integers as a list, saying how many more there are."""
    shown = ", ".join(str(int(v)) for v in values[:SHOWN])
    return f"[{shown}{f', ... {total - SHOWN} more' if total > SHOWN else ''}]"


@dataclass(frozen=True)
class DatasetSplits:
    """The splits' features and int64 labels.

    Features are float32, except images loaded as uint8 (MNIST, CIFAR), which
    stay uint8 (a quarter of the memory) with their standardization statistics
    ``mean`` and ``std``: ``features(x)`` gives float32 standardized features
    of any rows gathered from a split, exactly the numbers a float32 copy of
    the whole split would hold. Training minibatches are gathered with
    ``training_examples`` (converted, and augmented when ``augment`` says so).

    ``val`` is the validation split that methods select on (scores) and the
    stopping rule watches; ``monitor`` (possibly empty) is kept apart from every
    choice, so that convergence measured on it favours no method.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    x_monitor: torch.Tensor | None = None
    y_monitor: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.x_monitor is None:  # no monitoring split: empty tensors of the right shape
            object.__setattr__(self, "x_monitor", self.x_val[:0])
            object.__setattr__(self, "y_monitor", self.y_val[:0])
        if not self.loaded_shape:
            object.__setattr__(self, "loaded_shape", tuple(self.x_train.shape[1:]))
    #: sha256 of the arrays the loader returned (``data/fingerprint.py``): what identifies the data.
    fingerprint: str = ""
    #: uint8 features: the float32 statistics they are standardized with, shaped to broadcast against one example
    #: as loaded (None: no standardization); unused for float features, standardized when loaded.
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None
    #: The shape of one example as loaded, before a family reshaped the splits (an MLP flattens images).
    loaded_shape: tuple[int, ...] = ()
    #: The training augmentation (``data/augment.py``): "none" or "crop-flip".
    augment: str = "none"

    @property
    def n_features(self) -> int:
        """Numbers per example (an MLP's inputs)."""
        return int(np.prod(self.x_train.shape[1:]))

    @property
    def example_shape(self) -> tuple[int, ...]:
        """The shape of one example: ``(F,)``, ``(C, L)`` or ``(C, H, W)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def has_monitor(self) -> bool:
        return len(self.y_monitor) > 0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Float32 standardized features of examples ``x`` gathered from one of the splits (any leading dimensions,
        the splits' layout): uint8 converted and standardized (as ``load_dataset`` once did for the whole split, in
        float32: the same numbers); float features, standardized already, are returned as they are."""
        if x.dtype != torch.uint8:
            return x
        out = x.float()
        if self.mean is not None:
            # Broadcast in the loaded layout (a flattened MLP input, too), then back to ``x``'s.
            examples = out.view(out.numel() // math.prod(self.loaded_shape), *self.loaded_shape)  # also of 0 rows
            out = examples.sub_(self.mean).div_(self.std).view(x.shape)
        return out

    def float_copy(self, split: str) -> torch.Tensor:
        """A float32 standardized copy of a split's features (``"x_train"``, ...), never the stored tensor."""
        x = getattr(self, split)
        return self.features(x) if x.dtype == torch.uint8 else x.clone()

    def epoch_draw(self, seeds: list[int], epoch: int) -> "Draw | None":
        """The training augmentation of every example at ``epoch`` for each seed, on the data's device (None: none)."""
        if self.augment == "none":
            return None
        from .augment import epoch_draw

        return epoch_draw(seeds, epoch, len(self.y_train), self.x_train.device)

    def training_examples(self, rows: torch.Tensor, draw: "Draw | None" = None) -> torch.Tensor:
        """Float32 features of the training examples ``rows`` ``(S, B)`` (row s: seed s of ``draw``'s seeds),
        ``(S, B, ...)``: converted, standardized and, with a draw, augmented (``data/augment.py``)."""
        x = self.features(self.x_train[rows])
        if draw is None:
            return x
        from .augment import augment_rows

        return augment_rows(x, self.loaded_shape, rows, draw)

    def to(self, device: str | torch.device) -> "DatasetSplits":
        moved = {k: getattr(self, k).to(device) for k in SPLIT_TENSORS}
        stats = {k: None if getattr(self, k) is None else getattr(self, k).to(device) for k in ("mean", "std")}
        return dataclasses.replace(self, **moved, **stats)


def load_dataset(
    name: str, data_seed: int = 0, val_fraction: float = 0.2, monitor_fraction: float = 0.0, standardize: str | None = None,
    data_dir: str | Path | None = None, train_limit: int | None = None, augment: str = "none",
) -> DatasetSplits:
    """Load ``name`` and split it.

    ``val_fraction`` of the training rows are held out (drawn with the data
    seed); ``monitor_fraction`` of those form the monitoring split, the rest
    the validation split. ``standardize``: ``"feature"``, ``"channel"``,
    ``"none"``, or None for the dataset's default. ``data_dir``: where file
    datasets are looked for (``data/files.py``; None: ``$SPARSEBENCH_DATA`` or the default).
    ``train_limit`` N: a class-stratified subset of N training rows, and at most
    ``val_fraction * N`` held-out rows, drawn with the data seed (the test split is whole).
    uint8 images stay uint8, with their statistics (``DatasetSplits.features``). ``augment``: the
    training augmentation the engines apply at minibatch gather (``data/augment.py``), refused in one
    line for data that is not images ``(C, H, W)``.

    >>> d = load_dataset("mnist1d", 0, 0.125, 0.5, train_limit=400)
    >>> len(d.y_train), len(d.y_val), len(d.y_monitor), len(d.y_test)
    (400, 25, 25, 1000)

    >>> d = load_dataset("mnist1d")
    >>> tuple(d.x_train.shape), tuple(d.x_val.shape), tuple(d.x_test.shape)
    ((3200, 40), (800, 40), (1000, 40))
    >>> d = load_dataset("mnist1d", 0, 0.125, 0.5)
    >>> tuple(d.x_train.shape), tuple(d.x_val.shape), tuple(d.x_monitor.shape)
    ((3500, 40), (250, 40), (250, 40))
    """
    x_tr, y_tr, x_te, y_te, data_fingerprint = _raw_data(name, data_seed, data_dir)
    check_augment(augment, x_tr.shape[1:], name)
    order = np.random.default_rng(data_seed).permutation(len(y_tr))
    n_held = max(1, int(round(val_fraction * len(y_tr))))
    held, train_idx = order[:n_held], np.sort(order[n_held:])
    if train_limit is not None and train_limit < len(train_idx):
        # Drawn from the same train/held-out partition as without a limit, with a stream of its own.
        rng = np.random.default_rng([data_seed, 1])
        train_idx = stratified_subset(train_idx, y_tr, train_limit, rng)
        held = held[np.isin(held, stratified_subset(held, y_tr, max(1, int(round(val_fraction * train_limit))), rng))]
        n_held = len(held)
    # The monitoring rows come from the held-out rows, never from training, so
    # that the training set (and the dense parent's accuracy) stays as large.
    n_monitor = int(round(monitor_fraction * n_held)) if n_held > 1 else 0
    n_monitor = min(n_monitor, n_held - 1)  # at least one validation row
    monitor_idx, val_idx = np.sort(held[:n_monitor]), np.sort(held[n_monitor:])
    x_train, y_train = x_tr[train_idx], y_tr[train_idx]
    mode = standardize or default_standardization(name)
    if mode == "feature":
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std == 0] = 1.0  # constant features (e.g. digits' border pixels) stay zero
    elif mode == "channel":
        mean, std = channel_statistics(x_train)
    else:
        mean, std = 0.0, 1.0

    raw_images = x_tr.dtype == np.uint8
    if raw_images and mode != "none":
        # Kept as uint8 with float32 statistics: ``DatasetSplits.features`` standardizes gathered rows in float32,
        # giving the numbers a float32 copy of the split standardized in place held (a quarter of the memory).
        shift, scale = (torch.from_numpy(np.asarray(v, np.float32)) for v in (mean, std))

    def features(x: np.ndarray) -> torch.Tensor:
        if raw_images:
            return torch.from_numpy(x)
        return torch.from_numpy(((x - mean) / std).astype(np.float32))

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y.astype(np.int64))

    return DatasetSplits(
        name=name,
        x_train=features(x_train),
        y_train=labels(y_train),
        x_val=features(x_tr[val_idx]),
        y_val=labels(y_tr[val_idx]),
        x_test=features(x_te.copy() if raw_images else x_te),  # uint8: never a view of the cached arrays
        y_test=labels(y_te),
        n_classes=int(max(y_tr.max(), y_te.max())) + 1,
        x_monitor=features(x_tr[monitor_idx]),
        y_monitor=labels(y_tr[monitor_idx]),
        fingerprint=data_fingerprint,
        mean=shift if raw_images and mode != "none" else None,
        std=scale if raw_images and mode != "none" else None,
        augment=augment,
    )


def stratified_subset(indices: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` of ``indices`` (sorted), each class in proportion to its share (largest remainders; ties to the
    lower class), uniformly within a class.

    >>> stratified_subset(np.arange(10), np.array([0] * 6 + [1] * 4), 5, np.random.default_rng(0)).size
    5
    """
    if n >= len(indices):
        return np.sort(indices)
    classes, counts = np.unique(labels[indices], return_counts=True)
    quota = counts * n / len(indices)
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    chosen = [rng.permutation(indices[labels[indices] == c])[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


#: Examples per chunk when channel statistics are accumulated (bounds the float64 temporaries to a few MB a channel).
STAT_CHUNK = 2048


def channel_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each channel (axis 1) over all examples and positions, shaped to broadcast
    against one example (``(C, 1, 1)`` for images); a constant channel gets sd 1. For tabular ``(N, F)``
    data every feature is a channel, as in ``"feature"``. uint8 images: exactly, from each channel's histogram;
    other data: in float64 over chunks of examples (two passes: the mean, then the squared deviations), so that
    no float64 copy of the whole set is made.

    >>> m, s = channel_statistics(np.array([[[0, 2]], [[4, 6]]], dtype=np.uint8))
    >>> m.ravel().tolist(), s.ravel().tolist()
    ([3.0], [2.23606797749979])
    >>> m, s = channel_statistics(np.array([[[0, 2]], [[4, 6]]], dtype=np.float64))
    >>> m.ravel().tolist(), s.ravel().tolist()
    ([3.0], [2.23606797749979])
    """
    n_channels = x.shape[1]
    per_channel = x.size // (len(x) * n_channels)
    shape = (n_channels,) + (1,) * (x.ndim - 2)
    if x.dtype == np.uint8:  # images: exact statistics from each channel's histogram of 256 values, in one pass
        counts = np.zeros((n_channels, 256))
        for start in range(0, len(x), STAT_CHUNK):
            chunk = x[start:start + STAT_CHUNK].reshape(-1, n_channels, per_channel)
            for channel in range(n_channels):
                counts[channel] += np.bincount(chunk[:, channel].ravel(), minlength=256)
        values = np.arange(256.0)
        mean = counts @ values / counts.sum(axis=1)
        std = np.sqrt((counts * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / counts.sum(axis=1))
        std[std == 0] = 1.0
        return mean.reshape(shape), std.reshape(shape)
    total = np.zeros(n_channels)
    for start in range(0, len(x), STAT_CHUNK):
        total += x[start:start + STAT_CHUNK].reshape(-1, n_channels, per_channel).sum(axis=(0, 2), dtype=np.float64)
    mean = total / (len(x) * per_channel)
    squares = np.zeros(n_channels)
    for start in range(0, len(x), STAT_CHUNK):
        chunk = x[start:start + STAT_CHUNK].reshape(-1, n_channels, per_channel).astype(np.float64)
        squares += ((chunk - mean[:, None]) ** 2).sum(axis=(0, 2))
    std = np.sqrt(squares / (len(x) * per_channel))
    std[std == 0] = 1.0
    return mean.reshape(shape), std.reshape(shape)


def _raw_data(name: str, data_seed: int, data_dir: str | Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """The checked arrays of ``name`` and their fingerprint, from the per-process cache where that is safe."""
    source = _file_dataset(name)
    if source is not None:
        # Cached while the files are unchanged: the key holds each file's path, size and modification time.
        files = source.locate(resolve_data_dir(data_dir))
        return _cached_file_raw(name, data_seed, files, file_signature(files))
    # Built-in datasets are generated, so the same arguments give the same arrays: they are
    # kept. A user's loader is called again every time, so that a changed file is seen
    # (and its fingerprint refused) also by a second run in the same Python process.
    builtin = _loader(name).__module__.startswith(__package__ + ".")
    return (_cached_raw if builtin else _raw)(name, data_seed)


def _file_raw(name: str, data_seed: int, files: tuple[Path, ...], signature: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """A file dataset's checked arrays and fingerprint (``signature`` is only the cache key)."""
    source = _file_dataset(name)
    assert source is not None
    try:
        raw = source.read(files, data_seed)
    except MemoryError:
        raise ConfigError(f"dataset {name!r}: its files do not fit in memory; allowed: a dataset that fits this machine") from None
    x_tr, y_tr, x_te, y_te = checked_raw_data(name, raw)
    return x_tr, y_tr, x_te, y_te, fingerprint((x_tr, y_tr, x_te, y_te))


#: Two datasets at most: a CIFAR-10 holds 180 MB of uint8 arrays.
_cached_file_raw = lru_cache(maxsize=2)(_file_raw)


def _raw(name: str, data_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """The loader's checked arrays and their fingerprint (of the data as loaded, before any preprocessing)."""
    loader = _loader(name)
    try:
        raw = loader(data_seed)
    except Exception as exc:  # the user's loader: a missing file and the like, said in one line
        raise ConfigError(f"dataset {name!r}: the loader failed ({describe(exc)})") from None
    x_tr, y_tr, x_te, y_te = checked_raw_data(name, raw)
    return x_tr, y_tr, x_te, y_te, fingerprint((x_tr, y_tr, x_te, y_te))


_cached_raw = lru_cache(maxsize=8)(_raw)


def _load_builtin() -> None:
    # Imported for their registration side effect, late to keep start-up light.
    from . import cifar, digits, idx, mnist1d  # noqa: F401
