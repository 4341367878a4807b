"""A user's own arrays: ``npz:PATH`` and ``csv:PATH`` datasets.

``npz:PATH`` reads a NumPy ``.npz`` file (``np.load`` with ``allow_pickle=False``:
no object arrays, nothing that runs code) with the keys ``x_train`` (features:
``(N, F)`` tabular, ``(N, C, L)`` sequences or ``(N, C, H, W)`` images) and
``y_train`` (integer labels 0..C-1), and optionally ``x_test`` and ``y_test``.

``csv:PATH`` reads a comma-separated text file with a header row: the column
named ``label`` holds the integer labels, every other column is a numeric
feature (tabular data).

The test split is, in order: the file's ``x_test``/``y_test`` (npz); a test file
named by ``?test=PATH`` (an npz with ``x_test`` and ``y_test``, or a CSV with the
same header); else a class-stratified fraction of the rows drawn with the data
seed, ``?test=FRACTION`` (default ``DEFAULT_TEST_FRACTION``). Examples:
``npz:runs/blobs.npz``, ``csv:train.csv?test=test.csv``, ``csv:all.csv?test=0.25``.
A relative path is looked for in the current folder, then in the data folder.

>>> parse_spec("csv:all.csv?test=0.25")
('csv', 'all.csv', 0.25)
>>> parse_spec("npz:a.npz")
('npz', 'a.npz', None)
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError, describe, invalid
from .files import bad_file, missing_files, read_bytes
from .registry import FileDataset, RawData

#: The fraction of the rows held out as the test split when the data has none.
DEFAULT_TEST_FRACTION = 0.2
#: The CSV column of the labels.
LABEL_COLUMN = "label"
NPZ_TRAIN_KEYS = ("x_train", "y_train")
NPZ_TEST_KEYS = ("x_test", "y_test")
TEST_OPTION = "?test="
SPEC_FORMS = "npz:PATH or csv:PATH, optionally followed by ?test=FRACTION (in (0, 1)) or ?test=TEST_PATH"


def parse_spec(name: str) -> tuple[str, str, float | str | None]:
    """``(kind, path, test)`` of a spec; ``test`` is a fraction, a test file's path, or None. Bad specs in one line."""
    kind, _, rest = name.partition(":")
    path, option, test_text = rest.rpartition(TEST_OPTION) if TEST_OPTION in rest else (rest, "", "")
    if not path:
        raise invalid("dataset", name, SPEC_FORMS + " (the path is empty)")
    if not option:
        return kind, path, None
    try:
        fraction = float(test_text)
    except ValueError:
        if not test_text:
            raise invalid("dataset", name, SPEC_FORMS + " (the test option is empty)") from None
        return kind, path, test_text
    if not 0 < fraction < 1:
        raise invalid("dataset", name, SPEC_FORMS + f" (the test fraction {fraction:g} is not in (0, 1))")
    return kind, path, fraction


def array_dataset(name: str) -> FileDataset:
    """The file dataset of an ``npz:`` or ``csv:`` spec (refused in one line when the spec is malformed)."""
    kind, path, test = parse_spec(name)

    def locate(data_dir: tuple[Path, str]) -> tuple[Path, ...]:
        files = [_find(name, path, data_dir)]
        if isinstance(test, str):
            files.append(_find(name, test, data_dir))
        return tuple(files)

    def read(files: tuple[Path, ...], data_seed: int) -> RawData:
        has_test_file = len(files) == 2
        if kind == "csv":
            x, y, header = _read_csv(name, files[0])
            if has_test_file:
                x_test, y_test, _ = _read_csv(name, files[1], header=header)
                return x, y, x_test, y_test
        else:
            x, y, x_test, y_test = _read_npz(name, files[0], test_keys_allowed=not has_test_file)
            if has_test_file:
                return (x, y, *_read_npz(name, files[1], test_file=True))
            if x_test is not None:
                if test is not None:
                    raise bad_file(name, files[0], "holds x_test and y_test, and the dataset name also asks for a test "
                                   "fraction", "one of the two (drop ?test=FRACTION to use the file's test split)")
                return x, y, x_test, y_test
        return stratified_test_split(x, y, DEFAULT_TEST_FRACTION if test is None else float(test), data_seed)

    return FileDataset(locate, read)


def _find(name: str, path_text: str, data_dir: tuple[Path, str]) -> Path:
    """A spec's file: as given when absolute; else in the current folder, then in the data folder."""
    path = Path(path_text).expanduser()
    places = [path] if path.is_absolute() else [Path.cwd() / path, data_dir[0] / path]
    for place in places:
        if place.is_file():
            return place
    kind = name.partition(":")[0]
    raise missing_files(name, [path_text], [p.parent for p in places], data_dir,
                        f"a {kind} file as the README's Datasets section describes ({SPEC_FORMS})")


def _read_npz(name: str, path: Path, test_keys_allowed: bool = True, test_file: bool = False):
    """``(x_train, y_train, x_test or None, y_test or None)`` of a train file, or ``(x_test, y_test)`` of a test file."""
    wanted = NPZ_TEST_KEYS if test_file else NPZ_TRAIN_KEYS
    allowed_keys = set(wanted) | (set(NPZ_TEST_KEYS) if test_keys_allowed and not test_file else set())
    expected = (f"an .npz test file with the arrays {', '.join(NPZ_TEST_KEYS)}" if test_file else
                f"an .npz file with the arrays {', '.join(NPZ_TRAIN_KEYS)}"
                + (f" and optionally {', '.join(NPZ_TEST_KEYS)}" if test_keys_allowed else ""))
    try:
        with np.load(io.BytesIO(read_bytes(name, path)), allow_pickle=False) as npz:
            keys = set(npz.files)
            if not set(wanted) <= keys or not keys <= allowed_keys:
                raise bad_file(name, path, f"holds the arrays {sorted(keys)}", expected)
            arrays = {key: npz[key] for key in keys}
    except ConfigError:  # said already (a ValueError too)
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # object arrays (pickles), not a zip, a cut file
        raise bad_file(name, path, f"is not a readable .npz of plain arrays ({describe(exc)[:160]})", expected) from None
    if test_file:
        return arrays["x_test"], arrays["y_test"]
    has_test = [key in arrays for key in NPZ_TEST_KEYS]
    if any(has_test) and not all(has_test):
        raise bad_file(name, path, f"holds only {'x_test' if has_test[0] else 'y_test'} of the test split", expected)
    return arrays["x_train"], arrays["y_train"], arrays.get("x_test"), arrays.get("y_test")


def _read_csv(name: str, path: Path, header: list[str] | None = None):
    """``(features, labels, header)`` of a CSV with a header row and a ``label`` column."""
    expected = (f"a CSV file with a header row, a {LABEL_COLUMN!r} column of integer labels and numeric feature columns"
                + (" (a test file: the same header as the training file)" if header is not None else ""))
    try:
        text = read_bytes(name, path).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad_file(name, path, "is not UTF-8 text", expected) from None
    first_line, _, body = text.partition("\n")
    columns = [c.strip() for c in next(csv.reader([first_line]), [])]
    if columns.count(LABEL_COLUMN) != 1 or len(columns) < 2:
        raise bad_file(name, path, f"has the header {columns[:8]}{' ...' if len(columns) > 8 else ''}", expected)
    if header is not None and columns != header:
        raise bad_file(name, path, "has another header than the training file", expected)
    if not body.strip():
        raise bad_file(name, path, "has no data rows", expected)
    try:
        values = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:  # a non-number, a row of another length: numpy names the line
        raise bad_file(name, path, f"has a value that is not a number or a row of another length ({describe(exc)[:160]})",
                       expected) from None
    if values.shape[0] == 0:
        raise bad_file(name, path, "has no data rows", expected)
    if values.shape[1] != len(columns):
        raise bad_file(name, path, f"has rows of {values.shape[1]} values under a header of {len(columns)}", expected)
    label_at = columns.index(LABEL_COLUMN)
    raw_labels = values[:, label_at]
    if not (np.isfinite(raw_labels).all() and (raw_labels == np.round(raw_labels)).all()):
        raise bad_file(name, path, f"has {LABEL_COLUMN} values that are not integers", expected)
    features = np.delete(values, label_at, axis=1)
    return features, raw_labels.astype(np.int64), columns


def stratified_test_split(x: np.ndarray, y: np.ndarray, fraction: float, data_seed: int) -> RawData:
    """Hold out ``fraction`` of each class's rows (rounded; at least one row of a class stays in training) as the
    test split, drawn with ``data_seed``; both splits keep the file's row order.

    >>> x, y = np.arange(10).reshape(10, 1), np.array([0] * 5 + [1] * 5)
    >>> x_tr, y_tr, x_te, y_te = stratified_test_split(x, y, 0.4, 0)
    >>> np.bincount(y_te).tolist(), len(y_tr)
    ([2, 2], 6)
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        return x, y, x[:0], y[:0]  # refused by checked_raw_data, which says what the arrays should be
    order = np.random.default_rng([data_seed, len(y)]).permutation(len(y))
    by_class = order[np.argsort(y[order], kind="stable")]  # each class's rows, in random order
    _, starts, counts = np.unique(y[by_class], return_index=True, return_counts=True)
    n_test = np.minimum(np.round(fraction * counts).astype(np.int64), counts - 1)
    rank = np.arange(len(y)) - np.repeat(starts, counts)
    is_test = rank < np.repeat(n_test, counts)
    test, train = np.sort(by_class[is_test]), np.sort(by_class[~is_test])
    return x[train], y[train], x[test], y[test]
