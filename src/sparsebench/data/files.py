"""Where dataset files are looked for, and the one-line refusal when they are not there.

The data folder is, in order: ``--data-dir DIR`` (TOML ``data_dir``), the
environment variable ``SPARSEBENCH_DATA``, else a per-user cache folder
(``$XDG_CACHE_HOME/sparsebench/data``, by default ``~/.cache/sparsebench/data``;
``~/Library/Caches/sparsebench/data`` on macOS; ``%LOCALAPPDATA%\\sparsebench\\data``
on Windows). Nothing is ever written there, and nothing is downloaded: the
folder may be read-only and shared.

>>> folder, origin = resolve_data_dir("/srv/data")
>>> str(folder), origin
('/srv/data', '--data-dir/data_dir')
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import ConfigError, show

#: The environment variable that names the data folder when the config does not.
DATA_DIR_ENV = "SPARSEBENCH_DATA"


def default_data_dir() -> Path:
    """The per-user cache folder used when neither the config nor ``$SPARSEBENCH_DATA`` names one."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    return base / "sparsebench" / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> tuple[Path, str]:
    """The data folder and where its name came from (said in messages about missing files)."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser(), "--data-dir/data_dir"
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser(), f"${DATA_DIR_ENV}"
    return default_data_dir(), "the default; set --data-dir or $" + DATA_DIR_ENV


def first_existing(folder: Path, names: Sequence[str]) -> Path | None:
    """The first of ``names`` that is a file in ``folder`` (e.g. the plain file before its ``.gz``)."""
    for name in names:
        path = folder / name
        if path.is_file():
            return path
    return None


class MissingFiles(ConfigError):
    """A dataset's files are not in the data folder: ``wanted`` (names) in ``places`` (the first is where they belong)."""

    def __init__(self, message: str, wanted: list[str], places: list[Path]):
        super().__init__(message)
        self.wanted, self.places = wanted, places


def missing_files(dataset: str, wanted: Iterable[str], places: Sequence[Path], data_dir: tuple[Path, str], get: str) -> MissingFiles:
    """The one-line refusal of a dataset whose files are not there: which files, where looked, how to get them.

    >>> str(missing_files("mnist", ["a", "b"], [Path("/d/mnist"), Path("/d/MNIST/raw")], (Path("/d"), "$X"), "from example.org"))
    "dataset 'mnist': files not found: a, b in '/d/mnist' (also looked in '/d/MNIST/raw'; data folder '/d' from $X); allowed: from example.org (nothing is downloaded)"
    """
    folder, origin = data_dir
    wanted = list(wanted)
    also = f"also looked in {', '.join(show(str(p)) for p in places[1:])}; " if len(places) > 1 else ""
    return MissingFiles(f"dataset {dataset!r}: files not found: {', '.join(wanted)} in {show(str(places[0]))} "
                        f"({also}data folder {show(str(folder))} from {origin}); allowed: {get} (nothing is downloaded)",
                        wanted, list(places))


def bad_file(dataset: str, path: Path, what: str, expected: str) -> ConfigError:
    """The one-line refusal of a file in the wrong format: which file, what is wrong, what it should be."""
    return ConfigError(f"dataset {dataset!r}: {show(str(path))} {what}; allowed: {expected}")


def read_bytes(dataset: str, path: Path) -> bytes:
    """A file's bytes, un-gzipped when its name ends in ``.gz``; an unreadable or broken file in one line."""
    import gzip
    import zlib

    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError; a cut .gz is an EOFError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else " ".join(str(exc).split()) or type(exc).__name__
        raise bad_file(dataset, path, f"cannot be read ({reason})", "a readable file (gzip intact where the name ends in .gz)") from None


def file_signature(paths: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    """Path, size and modification time of each file: a file dataset's cache key, so that a changed file is read again."""
    signature = []
    for path in paths:
        stat = path.stat()
        signature.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return tuple(signature)
