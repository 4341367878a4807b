"""``sparsebench data fetch NAME``: download a dataset's official files, check them, lay them out for the loaders.

The only place sparsebench downloads anything, and only when asked. For each file the
manifest (``data/fetch_manifest.py``, pinned in the package) lists:

- a file already in place with the pinned size and sha256 is not fetched again;
- a download goes to a hidden temporary file in the target folder (``.NAME.sparsebench-part-*``),
  is hashed while it streams, refused and deleted unless its size and sha256 are the pinned
  ones, flushed to disk (fsync) and only then renamed to its name: a download that is killed,
  cut off or wrong leaves no file that a loader reads (the next fetch removes a killed one's
  leftover);
- a tarball (CIFAR) is unpacked with ``tarfile``'s ``filter='data'`` into a hidden scratch folder,
  every file the loaders read is checked against its own pinned size and sha256, and the files
  are then moved into place one by one (each complete); the tarball is not kept.

Every failure (no network, an HTTP error, a size or checksum mismatch, an unknown dataset, a
folder that cannot be written) is one ``FetchError`` line.

>>> sorted(fetchable())
['cifar10', 'cifar100', 'fashion-mnist', 'mnist']
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import SparsebenchError, invalid, show
from .fetch_manifest import MANIFEST, SAME_FILES
from .files import resolve_data_dir

#: Bytes read from the network (and hashed) at a time.
CHUNK = 1 << 20
#: Seconds a connection may stay silent before the download is given up.
TIMEOUT_S = 60
#: What a temporary download's name holds (after ``.NAME``), and a scratch unpacking folder's prefix.
PART_MARK = ".sparsebench-part-"
UNPACK_MARK = ".sparsebench-unpack-"


class FetchError(SparsebenchError):
    """A download failed, was refused (size or sha256), or could not be written; nothing half-written is left."""


@dataclass(frozen=True)
class Fetched:
    """One file the loaders read: where it is, ``"present"`` (already there and correct) or ``"fetched"``, its size."""

    path: Path
    status: str
    size: int


def fetchable(manifest: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """The dataset names ``fetch_dataset`` knows."""
    return sorted(MANIFEST if manifest is None else manifest)


def fetch_dataset(name: str, data_dir: str | os.PathLike | None = None, url_base: str | None = None, *,
                  manifest: dict[str, dict[str, Any]] | None = None, progress: bool = False,
                  say: Callable[[str], None] | None = None) -> list[Fetched]:
    """Download ``name``'s files into the data folder (``data/files.py``) unless they are there, checked.

    ``url_base``: a mirror holding the same file names (default: the manifest's official location).
    ``manifest``: the datasets' files (default: the pinned ``MANIFEST``; tests inject their own).
    ``progress``: a progress bar per download on stderr. ``say``: called with a line per step.
    Returns the files the loaders read, each ``"present"`` or ``"fetched"``.
    """
    manifest = MANIFEST if manifest is None else manifest
    entry = _entry(name, manifest)
    name = SAME_FILES.get(name, name)
    base = _url_base(url_base if url_base is not None else entry["url_base"])
    root = resolve_data_dir(data_dir)[0]
    say = say or (lambda line: None)
    results: list[Fetched] = []
    for spec in entry["files"]:
        if "unpack" in spec:
            results.extend(_fetch_tarball(name, spec, base, root, progress, say))
        else:
            results.append(_fetch_file(name, spec, base, root / entry["folder"], progress, say))
    return results


def _entry(name: object, manifest: dict[str, dict[str, Any]]) -> dict[str, Any]:
    key = SAME_FILES.get(name, name) if isinstance(name, str) else name
    if not isinstance(key, str) or key not in manifest:
        aliases = "".join(f"; {alias} reads {target}'s files" for alias, target in SAME_FILES.items() if target in manifest)
        raise invalid("data fetch", name, f"one of {', '.join(fetchable(manifest))}{aliases} (mnist1d and digits are "
                      "built in; npz:PATH and csv:PATH are your own files)")
    return manifest[key]


def _url_base(base: object) -> str:
    """``base`` as a folder URL (ending in ``/``); anything but an http(s) URL refused in one line."""
    parsed = urllib.parse.urlsplit(base) if isinstance(base, str) else None
    if parsed is None or parsed.scheme not in ("https", "http") or not parsed.netloc or parsed.query or parsed.fragment:
        raise invalid("--url-base", base, "an https:// (or http://) URL of a folder holding the dataset's files under "
                      "their official names")
    return base if base.endswith("/") else base + "/"  # type: ignore[union-attr]


def _fetch_file(name: str, spec: dict[str, Any], base: str, folder: Path, progress: bool, say: Callable[[str], None]) -> Fetched:
    """One file kept as it is downloaded (MNIST's ``.gz`` files, which the loader reads gzipped)."""
    target = folder / spec["name"]
    if _matches(target, spec):
        say(f"{name}: {target} present, sha256 checked")
        return Fetched(target, "present", spec["size"])
    _make_folder(folder)
    _remove_leftovers(folder, spec["name"])
    with _download(name, spec, base, folder, progress, say) as part:
        _commit(part, target)
    say(f"{name}: {target} fetched, sha256 checked")
    return Fetched(target, "fetched", spec["size"])


def _fetch_tarball(name: str, spec: dict[str, Any], base: str, root: Path, progress: bool, say: Callable[[str], None]) -> list[Fetched]:
    """A tarball unpacked into the data folder: fetched unless every file the loaders read is there and correct."""
    members: dict[str, dict[str, Any]] = spec["unpack"]
    if all(_matches(root / member, expected) for member, expected in members.items()):
        say(f"{name}: {', '.join(sorted({m.split('/')[0] for m in members}))} present in {root}, sha256 checked")
        return [Fetched(root / member, "present", expected["size"]) for member, expected in members.items()]
    _make_folder(root)
    _remove_leftovers(root, spec["name"])
    with _download(name, spec, base, root, progress, say) as tarball, _scratch_folder(root, spec["name"]) as scratch:
        say(f"{name}: unpacking {spec['name']}")
        _extract(name, spec["name"], tarball, scratch)
        for member, expected in members.items():
            _check_member(name, spec["name"], scratch / member, member, expected)
        _move_into_place(name, scratch, root, {member.split("/")[0] for member in members})
    say(f"{name}: {len(members)} files unpacked into {root}, sha256 checked")
    return [Fetched(root / member, "fetched", expected["size"]) for member, expected in members.items()]


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(path: Path, expected: dict[str, Any]) -> bool:
    """Whether ``path`` is a file of the pinned size and sha256 (the size first: it costs nothing)."""
    try:
        return path.is_file() and path.stat().st_size == expected["size"] and sha256_of(path) == expected["sha256"]
    except OSError:  # unreadable: fetched again (and the write will say what is wrong with the folder)
        return False


def _cannot_write(folder: Path, exc: OSError) -> FetchError:
    reason = exc.strerror or type(exc).__name__
    return FetchError(f"cannot write in {show(str(folder))} ({reason}); allowed: a writable data folder "
                      "(--data-dir DIR or $SPARSEBENCH_DATA); nothing was left half-written")


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only place, a file in the way, ...
        raise _cannot_write(folder, exc) from None


def _remove_leftovers(folder: Path, file_name: str) -> None:
    """A killed fetch's hidden leftovers of this file (never read by a loader; removed so they do not pile up)."""
    for leftover in [*folder.glob(f".{file_name}{PART_MARK}*"), *folder.glob(f"{UNPACK_MARK}{file_name}-*")]:
        with contextlib.suppress(OSError):
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()


@contextlib.contextmanager
def _download(name: str, spec: dict[str, Any], base: str, folder: Path, progress: bool,
              say: Callable[[str], None]) -> Iterator[Path]:
    """Yields a hidden temporary file in ``folder`` holding ``spec``'s file, of the pinned size and sha256 and on
    disk; the temporary file is removed when the block ends (the caller renames it first to keep it)."""
    url = base + urllib.parse.quote(spec["name"])
    try:
        handle, part_name = tempfile.mkstemp(prefix=f".{spec['name']}{PART_MARK}", dir=folder)
    except OSError as exc:
        raise _cannot_write(folder, exc) from None
    part = Path(part_name)
    try:
        with os.fdopen(handle, "wb") as out:
            say(f"{name}: fetching {spec['name']} ({spec['size'] / 1e6:.1f} MB) from {url}")
            digest, received = _stream(name, url, spec, out, folder, progress)
            if received != spec["size"]:
                raise FetchError(f"dataset {name!r}: {url} sent {received} bytes of {spec['name']}, not the "
                                 f"{spec['size']} pinned (the connection closed early?); nothing was kept; allowed: "
                                 "run the fetch again")
            if digest != spec["sha256"]:
                raise FetchError(f"dataset {name!r}: {spec['name']} from {url} has sha256 {digest}, not the pinned "
                                 f"{spec['sha256']}: refused and deleted; allowed: the official file (a mirror given "
                                 "with --url-base must serve identical files)")
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise _cannot_write(folder, exc) from None
        yield part
    finally:
        with contextlib.suppress(OSError):
            part.unlink()


def _stream(name: str, url: str, spec: dict[str, Any], out: Any, folder: Path, progress: bool) -> tuple[str, int]:
    """Copy ``url`` into ``out``, hashing it; returns (sha256, bytes). Never reads past the pinned size."""
    from tqdm import tqdm

    from .. import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"sparsebench/{__version__} (data fetch)"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"dataset {name!r}: {url} answered HTTP {exc.code} {' '.join(str(exc.reason).split())}; "
                         "allowed: a reachable official location or mirror (--url-base URL)") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(f"dataset {name!r}: cannot download {url} ({' '.join(str(reason).split()) or type(exc).__name__}); "
                         "allowed: a machine with network access, or a mirror (--url-base URL), or place the files "
                         "yourself (`sparsebench data list` says where)") from None
    digest, received = hashlib.sha256(), 0
    with response, tqdm(total=spec["size"], unit="B", unit_scale=True, unit_divisor=1024, desc=spec["name"],
                        disable=not progress, file=sys.stderr, leave=False) as bar:
        while True:
            try:
                chunk = response.read(min(CHUNK, spec["size"] + 1 - received))
            except (OSError, http.client.HTTPException) as exc:  # a dropped connection, a timeout, IncompleteRead
                raise FetchError(f"dataset {name!r}: the download of {url} broke after {received} of {spec['size']} "
                                 f"bytes ({type(exc).__name__}); nothing was kept; allowed: run the fetch again") from None
            if not chunk:
                break
            received += len(chunk)
            if received > spec["size"]:
                raise FetchError(f"dataset {name!r}: {url} sends more than the {spec['size']} bytes pinned for "
                                 f"{spec['name']}: refused and deleted; allowed: the official file")
            digest.update(chunk)
            try:
                out.write(chunk)
            except OSError as exc:  # a full disk
                raise _cannot_write(folder, exc) from None
            bar.update(len(chunk))
    return digest.hexdigest(), received


def _sync_folder(folder: Path) -> None:
    """Put a rename in ``folder`` on disk (POSIX; elsewhere a no-op)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _commit(part: Path, target: Path) -> None:
    """Rename the checked temporary file to its name (atomic: a loader sees the old file or the whole new one)."""
    try:
        os.replace(part, target)
    except OSError as exc:
        raise _cannot_write(target.parent, exc) from None
    _sync_folder(target.parent)


@contextlib.contextmanager
def _scratch_folder(root: Path, tarball_name: str) -> Iterator[Path]:
    """A hidden folder in ``root`` (same file system: the moves out of it are renames), removed at the end."""
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f"{UNPACK_MARK}{tarball_name}-", dir=root))
    except OSError as exc:
        raise _cannot_write(root, exc) from None
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _extract(name: str, tarball_name: str, tarball: Path, scratch: Path) -> None:
    """Unpack with ``filter='data'``: no absolute paths, no ``..``, no links out, no devices, no set-uid bits."""
    if not hasattr(tarfile, "data_filter"):
        raise FetchError("this Python's tarfile has no extraction filters; allowed: Python 3.11.4 or later")
    try:
        with tarfile.open(tarball, "r:*") as archive:
            archive.extractall(scratch, filter="data")
    except tarfile.TarError as exc:  # includes the filter's refusals
        raise FetchError(f"dataset {name!r}: {tarball_name} cannot be unpacked safely ({' '.join(str(exc).split())[:160]}); "
                         "nothing was kept; allowed: the official tarball") from None
    except (OSError, EOFError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise _cannot_write(scratch.parent, exc) from None
        raise FetchError(f"dataset {name!r}: {tarball_name} is not a readable tarball ({type(exc).__name__}); "
                         "nothing was kept; allowed: the official tarball") from None


def _check_member(name: str, tarball_name: str, path: Path, member: str, expected: dict[str, Any]) -> None:
    if not path.is_file():
        raise FetchError(f"dataset {name!r}: {tarball_name} holds no {member}: refused, nothing was kept; allowed: the "
                         "official tarball")
    size, digest = path.stat().st_size, sha256_of(path)
    if size != expected["size"] or digest != expected["sha256"]:
        raise FetchError(f"dataset {name!r}: {member} unpacked from {tarball_name} has {size} bytes and sha256 {digest}, "
                         f"not the pinned {expected['size']} and {expected['sha256']}: refused, nothing was kept; "
                         "allowed: the official tarball")


def _move_into_place(name: str, scratch: Path, root: Path, folders: set[str]) -> None:
    """Move every unpacked file of ``folders`` from ``scratch`` to ``root``, each on disk before its rename (a kill
    in between leaves some files moved, each complete, and the rest behind in the hidden scratch folder)."""
    for top in sorted(folders):
        for path in sorted(p for p in (scratch / top).rglob("*") if p.is_file()):
            target = root / path.relative_to(scratch)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "rb+") as handle:
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise _cannot_write(target.parent, exc) from None
            _commit(path, target)
