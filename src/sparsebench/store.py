"""The SQLite store: the schema and every read and write of results.

One file holds experiments (config and its hash), trials, per-epoch curves,
the scores of every candidate a search method sampled, masks, and the claims
with which concurrent runs share out the work. It is the only state shared
between the stages, so a run can stop anywhere and resume.

Opening never changes a file that is not already a sparsebench store: the
header and the ``meta`` table are checked first, read-only and without
creating a ``-wal`` or ``-shm`` sibling, and only then is the file opened for
writing. A store written by an older schema is upgraded in place, in one
transaction; one written by a newer sparsebench is refused.

Each trial records its identity (what determines its numbers), the environment
that computed it and the experiment whose run trained it (identity.py): a run
reuses the trials another experiment of the store holds with the same identity
and environment (``adopt_units``) instead of training them again.

Several processes on one machine may use one store at once (WAL mode, a busy
timeout, claims with leases). SQLite's locking is not reliable on network file
systems (NFS, SMB): on a cluster, give each machine its own store on a local
disk.

>>> with Store(":memory:") as store:
...     store.experiments().empty
True
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
import sqlite3
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pandas as pd

from .errors import StoreError
from .names import RANKING_SCORES

APPLICATION = "sparsebench"
#: 1: experiments, trials, curves, candidates. 2: + claims (work shared out between concurrent runs).
#: 3: + experiments.software. 4: + experiments.data_fingerprint and data_stats, trials.stop_epoch, curves.monitor_loss/monitor_acc.
#: 5: + trials.flops and flop_reduction. 6: + trials.selection_seconds, candidate_evaluations and search_epochs.
#: 7: + trials.method_name and method_params (trials.method is the method's label).
#: 8: + trials.identity, environment and trained_in (what determines a trial's numbers: see identity.py).
SCHEMA_VERSION = 8
SQLITE_HEADER = b"SQLite format 3\x00"
#: How long a statement waits for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 60_000
#: A write transaction asks for the lock in tries this long, so that Ctrl-C is felt between tries.
BEGIN_TRY_MS = 100

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- experiments.software: JSON of the sparsebench, torch, python versions that started it.
-- experiments.data_fingerprint: sha256 of the loaded dataset arrays (data/fingerprint.py), NULL before schema 4.
-- experiments.data_stats: JSON of split sizes, n_classes and chance accuracy of the loaded data, NULL before schema 4.
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY,
    config_hash TEXT NOT NULL UNIQUE,
    config_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    software TEXT,
    data_fingerprint TEXT,
    data_stats TEXT
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    method TEXT NOT NULL,           -- the method's label (of a [methods.LABEL] table, or a plain name: its own label)
    role TEXT NOT NULL,             -- 'selected', or 'probe' for extra trained candidates
    candidate INTEGER NOT NULL,     -- index among the method's scored candidates, -1 if none
    sparsity REAL NOT NULL,
    seed INTEGER NOT NULL,
    weight_sparsity REAL NOT NULL,
    kept_nodes TEXT NOT NULL,       -- JSON list, kept nodes per hidden layer
    n_params INTEGER NOT NULL,
    -- FLOPs of one example's forward pass through the trained network, and 1 - flops / the dense
    -- parent's flops (0 for the parent), NULL for trials stored before schema 5 (not recorded)
    flops INTEGER,
    flop_reduction REAL,
    mask BLOB,                      -- NodeMask.to_bytes(), NULL for the dense parent
    init_score REAL,                -- the selection score of this mask at initialization
    status TEXT NOT NULL,           -- 'done' or 'diverged'
    diverged_epoch INTEGER,
    epochs INTEGER NOT NULL,        -- the configured maximum
    stop_epoch INTEGER,             -- the epoch its stopping rule stopped it (its final weights), NULL if it ran every epoch
    final_test_loss REAL, final_test_acc REAL,
    best_epoch INTEGER, best_val_acc REAL,
    best_test_loss REAL, best_test_acc REAL,
    train_seconds REAL NOT NULL,
    -- what choosing the mask cost: wall-clock seconds of the method's select() (0 for the dense parent and
    -- probes), sub-networks it scored, training epochs it spent on search. NULL before schema 6 (not recorded)
    selection_seconds REAL,
    candidate_evaluations INTEGER,
    search_epochs INTEGER,
    -- the method's registered name and its parameters away from their defaults (canonical JSON, '{}' at defaults)
    method_name TEXT,
    method_params TEXT,
    -- identity.py: hash of what determines the numbers (shared by a selection unit: a method's selected trial
    -- and its probes at one sparsity and seed). environment: canonical JSON of the software, hardware, device,
    -- threads that computed them. trained_in: config hash of the experiment whose run trained it (another
    -- experiment's when reused). All NULL before schema 8 (never reused).
    identity TEXT,
    environment TEXT,
    trained_in TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (experiment_id, method, role, candidate, sparsity, seed)
);
CREATE INDEX IF NOT EXISTS trials_identity ON trials (identity);
CREATE TABLE IF NOT EXISTS curves (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    epoch INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL,
    -- monitor_*: on the monitoring split, NULL when the experiment has none
    monitor_loss REAL, monitor_acc REAL,
    PRIMARY KEY (trial_id, epoch)
);
CREATE TABLE IF NOT EXISTS candidates (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    method TEXT NOT NULL,
    sparsity REAL NOT NULL,
    seed INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    score REAL,
    chosen INTEGER NOT NULL,
    mask BLOB NOT NULL,
    PRIMARY KEY (experiment_id, method, sparsity, seed, idx)
);
CREATE TABLE IF NOT EXISTS claims (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    group_key TEXT NOT NULL,        -- plan.WorkGroup.key
    owner TEXT NOT NULL,            -- worker_id() of the run training the group
    expires_at REAL NOT NULL,       -- Unix time after which another run may take the group over
    PRIMARY KEY (experiment_id, group_key)
);
"""

#: The statements that upgrade a store of schema version v to v + 1, run in one transaction.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE claims (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    group_key TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (experiment_id, group_key)
)""",
    ),
    2: ("ALTER TABLE experiments ADD COLUMN software TEXT",),
    3: (
        "ALTER TABLE experiments ADD COLUMN data_fingerprint TEXT",
        "ALTER TABLE experiments ADD COLUMN data_stats TEXT",
        "ALTER TABLE trials ADD COLUMN stop_epoch INTEGER",
        "ALTER TABLE curves ADD COLUMN monitor_loss REAL",
        "ALTER TABLE curves ADD COLUMN monitor_acc REAL",
    ),
    # Trials stored before keep NULL: their FLOPs were not recorded (computing them needs the data's shape).
    4: (
        "ALTER TABLE trials ADD COLUMN flops INTEGER",
        "ALTER TABLE trials ADD COLUMN flop_reduction REAL",
    ),
    # Trials stored before keep NULL: their selection's time and cost were not recorded.
    5: (
        "ALTER TABLE trials ADD COLUMN selection_seconds REAL",
        "ALTER TABLE trials ADD COLUMN candidate_evaluations INTEGER",
        "ALTER TABLE trials ADD COLUMN search_epochs INTEGER",
    ),
    # Before labels and parameters, a method's label was its registered name at its default parameters.
    6: (
        "ALTER TABLE trials ADD COLUMN method_name TEXT",
        "ALTER TABLE trials ADD COLUMN method_params TEXT",
        "UPDATE trials SET method_name = method, method_params = '{}'",
    ),
    # Trials stored before keep NULL: which software and hardware computed them was not recorded per trial,
    # so they are never reused; trained_in NULL means the experiment that holds them.
    7: (
        "ALTER TABLE trials ADD COLUMN identity TEXT",
        "ALTER TABLE trials ADD COLUMN environment TEXT",
        "ALTER TABLE trials ADD COLUMN trained_in TEXT",
        "CREATE INDEX IF NOT EXISTS trials_identity ON trials (identity)",
    ),
}

TRIAL_COLUMNS = (
    "method role candidate sparsity seed weight_sparsity kept_nodes n_params mask init_score status "
    "diverged_epoch epochs stop_epoch final_test_loss final_test_acc best_epoch best_val_acc best_test_loss "
    "best_test_acc train_seconds flops flop_reduction selection_seconds candidate_evaluations search_epochs "
    "method_name method_params identity environment trained_in"
).split()
CURVE_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "monitor_loss", "monitor_acc")


@dataclass
class TrialRecord:
    """One trained network as it is stored; ``curves`` holds one tuple per epoch."""

    method: str
    role: str
    candidate: int
    sparsity: float
    seed: int
    weight_sparsity: float
    kept_nodes: str
    n_params: int
    mask: bytes | None
    init_score: float | None
    status: str
    diverged_epoch: int | None
    epochs: int
    stop_epoch: int | None
    final_test_loss: float | None
    final_test_acc: float | None
    best_epoch: int | None
    best_val_acc: float | None
    best_test_loss: float | None
    best_test_acc: float | None
    train_seconds: float
    #: FLOPs of one example's forward pass, and the fraction of the dense parent's FLOPs removed
    #: (``ParentFamily.flops``/``flop_reduction``); None: not recorded.
    flops: int | None = None
    flop_reduction: float | None = None
    #: What choosing the mask cost: wall-clock seconds of the method's ``select`` (0 for the dense
    #: parent and probes), sub-networks it scored (``Selection.cost``), training epochs spent on
    #: search; None: not recorded (trials stored before schema 6).
    selection_seconds: float | None = None
    candidate_evaluations: int | None = None
    search_epochs: int | None = None
    #: The method's registered name and canonical parameters (JSON); ``method`` is its label.
    method_name: str | None = None
    method_params: str | None = None
    #: What determines its numbers and where they were computed (identity.py); ``identity`` None: the
    #: store computes it from the experiment when saving. ``trained_in``: the config hash of the experiment
    #: whose run trained it (None: the one it is saved in).
    identity: str | None = None
    environment: str | None = None
    trained_in: str | None = None
    #: One tuple per epoch, in ``CURVE_COLUMNS`` order (monitor values None without a monitoring split).
    curves: list[tuple] = field(default_factory=list)

    @property
    def key(self) -> tuple:
        return (self.method, self.role, self.candidate, self.sparsity, self.seed)


@dataclass
class CandidateRecord:
    method: str
    sparsity: float
    seed: int
    idx: int
    score: float | None
    chosen: bool
    mask: bytes


@dataclass(frozen=True)
class ClaimResult:
    """What ``Store.claim_next`` found: the group now ours (or None), what is still pending, when to retry."""

    key: str | None
    pending: tuple[str, ...]
    retry_at: float | None = None  # Unix time the earliest claim held by another run expires


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def worker_id() -> str:
    """A name for one run of one process: ``host:pid:random``.

    The host and pid let a run on the same machine see at once that the owner
    of a claim is gone (killed) instead of waiting for its lease to expire.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_gone(owner: str) -> bool:
    """True only if ``owner`` names a process of this machine that no longer exists.

    Anything else (another host, a live or unknown process, another platform)
    is presumed alive: its claim is then taken over only when its lease expires.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if os.name != "posix" or host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return False


# -- errors ---------------------------------------------------------------------
# Primary SQLite result codes that are about the file or the machine, not a bug in sparsebench.
_FILE_ERRORS = {
    "SQLITE_BUSY": "the store stayed locked by another process",
    "SQLITE_LOCKED": "the store stayed locked by another process",
    "SQLITE_PROTOCOL": "the store's locks failed (a network file system?)",
    "SQLITE_READONLY": "the store cannot be written",
    "SQLITE_PERM": "the store cannot be written",
    "SQLITE_CANTOPEN": "the store cannot be opened",
    "SQLITE_IOERR": "a disk I/O error",
    "SQLITE_FULL": "the disk is full",
    "SQLITE_NOLFS": "the file is too large for this file system",
    "SQLITE_CORRUPT": "the store is corrupt",
    "SQLITE_NOTADB": "the store is corrupt",
}


def _file_error(exc: sqlite3.Error) -> str | None:
    name = getattr(exc, "sqlite_errorname", None) or ""
    for code, what in _FILE_ERRORS.items():
        if name == code or name.startswith(code + "_"):
            return what
    return None


@contextmanager
def store_errors(path: str) -> Iterator[None]:
    """Turn SQLite's complaints about the file or the disk into a one-line ``StoreError``.

    Other SQLite errors (a wrong statement: a bug) pass through unchanged.
    """
    try:
        yield
    except sqlite3.Error as exc:
        what = _file_error(exc)
        if what is None:
            raise
        raise StoreError(
            f"store: {path!r}: {what} ({exc}); allowed: a writable sparsebench store on a local disk"
        ) from None


# -- the read-only check ------------------------------------------------------------
def _read_only_uri(p: Path, immutable: bool) -> str:
    return p.resolve().as_uri() + ("?immutable=1" if immutable else "?mode=ro")


def _read_tables_and_meta(uri: str) -> tuple[set[str], dict[str, str]]:
    con = sqlite3.connect(uri, uri=True)
    try:
        if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
    finally:
        con.close()
    return tables, meta


def _schema_version(text: str, meta: dict[str, str], allowed: str = "a sparsebench store or a new path") -> int:
    value = meta.get("schema_version")
    if value is None or not value.isdigit() or int(value) < 1:
        raise StoreError(f"store: {text!r} has an unreadable schema version {value!r}; allowed: {allowed}")
    return int(value)


def check_store_file(path: str | os.PathLike, for_writing: bool = True) -> bool:
    """Refuse, without writing anything, a file that is not a usable sparsebench store.

    Returns whether the file exists. A missing or empty file is fine (it becomes
    a new store). Refused with a ``StoreError``: a directory or other non-file,
    a file that is not SQLite, corrupt or truncated, another application's
    database, a store of a newer schema, and, ``for_writing``, a read-only file.
    Nothing is created beside the file: a store in WAL mode without a ``-wal``
    file is read as immutable, one with a ``-wal`` file read-only through it.
    """
    text = os.fsdecode(os.fspath(path))
    # Only a run may start a new store; list, report and export need an existing one.
    allowed = "a sparsebench store or a new path" if for_writing else "an existing sparsebench store"
    if "\x00" in text:
        raise StoreError(f"store: got {text!r}; allowed: a file path without NUL characters")
    p = Path(text)
    try:
        info = p.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise StoreError(f"store: cannot use {text!r} ({exc.strerror}); allowed: a sparsebench store or a new file path") from None
    if info is None:
        try:
            parent_is_dir = p.parent.is_dir()
        except OSError:
            parent_is_dir = False
        if not parent_is_dir:
            raise StoreError(f"store: directory {str(p.parent)!r} does not exist; allowed: a path in an existing directory")
        return False
    if stat.S_ISDIR(info.st_mode):
        raise StoreError(f"store: {text!r} is a directory; allowed: a sparsebench SQLite file")
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(f"store: {text!r} is not a regular file; allowed: a sparsebench SQLite file")
    try:
        with open(p, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(f"store: cannot read {text!r} ({exc.strerror}); allowed: a readable sparsebench SQLite file") from None
    if header:
        if header[: len(SQLITE_HEADER)] != SQLITE_HEADER:
            raise StoreError(f"store: {text!r} is not a SQLite database; allowed: {allowed}")
        # Byte 18 is 2 in WAL mode. Without a -wal file the main file holds
        # everything: read it as immutable, which creates no -wal/-shm sibling.
        wal = Path(text + "-wal")
        immutable = len(header) == 100 and header[18] == 2 and not wal.exists()
        try:
            try:
                tables, meta = _read_tables_and_meta(_read_only_uri(p, immutable))
            except sqlite3.DatabaseError:
                if not (immutable and wal.exists()):
                    raise
                # A writer opened the store while we read it: read again through its WAL.
                tables, meta = _read_tables_and_meta(_read_only_uri(p, False))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store: {text!r} is corrupt or unreadable ({exc}); allowed: {allowed}") from None
        if tables:
            if meta.get("application") != APPLICATION:
                raise StoreError(f"store: {text!r} is a SQLite database of another application; allowed: {allowed}")
            version = _schema_version(text, meta, allowed)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"store: {text!r} has schema version {version}, newer than this sparsebench's {SCHEMA_VERSION}; "
                    "allowed: upgrade sparsebench to read it"
                )
    if for_writing and not is_writable(p, info):
        raise StoreError(f"store: {text!r} is read-only; allowed: a writable sparsebench store or a new path")
    return True


def _open_read_only(p: Path) -> sqlite3.Connection:
    """A connection that cannot write to the store, nor create a ``-wal`` or ``-shm`` beside it.

    With a ``-wal`` file (a live run, or one killed) the store is read through
    it, so what was committed only to the ``-wal`` is seen. Without one the file
    holds everything and is read as immutable, which takes no lock: so it is
    copied into memory at once, and the copy is kept only if the file did not
    change meanwhile (a run that starts on the store while it is read
    checkpoints into it), else read again.
    """
    wal = Path(str(p) + "-wal")
    for _ in range(READ_TRIES):
        if wal.exists():
            break
        before = _file_state(p)
        snapshot = _copy_in_memory(sqlite3.connect(_read_only_uri(p, True), uri=True, isolation_level=None))
        if _file_state(p) == before and not wal.exists():
            return snapshot
        snapshot.close()
    return sqlite3.connect(_read_only_uri(p, False), uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)


#: Tries at a consistent copy of a store that has no ``-wal`` before reading it through SQLite's locks.
READ_TRIES = 3


def _file_state(p: Path) -> tuple[int, int, int]:
    info = p.stat()
    return info.st_ino, info.st_size, info.st_mtime_ns


def _copy_in_memory(con: sqlite3.Connection) -> sqlite3.Connection:
    """A copy in memory of what ``con`` reads; closes ``con``."""
    copy = sqlite3.connect(":memory:", isolation_level=None)
    try:
        con.backup(copy)
    except BaseException:
        copy.close()
        raise
    finally:
        con.close()
    return copy


def store_file_paths(path: str | os.PathLike) -> list[str]:
    """The files SQLite keeps a store in: the store and its ``-wal``, ``-shm`` and
    ``-journal`` siblings, as absolute paths with every symbolic link resolved (SQLite
    names the siblings after the resolved path of the store), and as given."""
    text = os.fsdecode(os.fspath(path))
    if text == ":memory:" or "\x00" in text:
        return []  # no file (an impossible path is refused when the store is opened)
    paths = []
    for base in (os.path.abspath(text), os.path.realpath(text)):
        for suffix in ("", "-wal", "-shm", "-journal"):
            resolved = os.path.realpath(base + suffix)
            if resolved not in paths:
                paths.append(resolved)
    return paths


def is_store_file(candidate: str | os.PathLike, store: str | os.PathLike) -> bool:
    """True if ``candidate`` is, by any path (symbolic or hard link, ``..``), the store or one of its siblings."""
    text = os.fsdecode(os.fspath(candidate))
    if "\x00" in text:
        return False
    target = os.path.realpath(text)
    files = store_file_paths(store)
    if target in files:
        return True
    try:
        info = os.stat(target)
    except OSError:
        return False
    for f in files:
        try:
            other = os.stat(f)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == (other.st_dev, other.st_ino):
            return True
    return False


def is_writable(p: Path, info: os.stat_result | None = None) -> bool:
    """Writable by us, and not marked read-only (no write bit), which root would otherwise ignore."""
    info = info or p.stat()
    return bool(info.st_mode & 0o222) and os.access(p, os.W_OK)


class Store:
    """A sparsebench results store in one SQLite file (or ``":memory:"``).

    Use as a context manager. ``create=False`` only reads: the file must exist,
    and it is opened read-only (what only its ``-wal`` holds is seen; nothing
    is written, not even a checkpoint; a store of an older schema is read from
    an upgraded copy in memory). A writer checkpoints the ``-wal`` into the
    file when it opens the store and after each stored work group (see
    ``checkpoint``), so that the file alone holds every group but at most the
    one being written. Several processes may use one
    file at once on one machine (WAL mode, busy timeout, claims); a network
    file system is not supported by SQLite's locking.
    """

    def __init__(self, path: str | os.PathLike = "sparsebench.db", create: bool = True):
        self.path = os.fsdecode(os.fspath(path))
        self.read_only = False
        memory = self.path == ":memory:"
        exists = True if memory else check_store_file(self.path, for_writing=create)
        if not create and not exists:
            raise StoreError(f"store: {self.path!r} does not exist; allowed: a store written by `sparsebench run`")
        p = Path(self.path)
        # Reading never writes: not even the checkpoint SQLite runs when the last
        # connection to a store in WAL mode closes, nor an upgrade of the schema.
        self.read_only = not memory and not create
        with store_errors(self.path):
            if self.read_only:
                self.con = _open_read_only(p)
                try:
                    if self._stored_version() != SCHEMA_VERSION:
                        # An older schema (or an empty file) is upgraded in a copy, never in the file.
                        self.con = _copy_in_memory(self.con)
                        self._initialize()
                except BaseException:
                    self.con.close()
                    raise
                return
            self.con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            try:
                self.con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                if not memory:
                    _enable_wal(self.con)
                self.con.execute("PRAGMA foreign_keys = ON")
                self._initialize()
                # What a killed run left in the -wal only goes into the store file now.
                self.checkpoint()
            except BaseException:
                self.con.close()
                raise

    def _stored_version(self) -> int | None:
        """The schema version in ``meta``, or None for a new (empty) database."""
        tables = {r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            if tables:
                raise StoreError(f"store: {self.path!r} is a SQLite database of another application; allowed: a sparsebench store or a new path")
            return None
        meta = dict(self.con.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("application") != APPLICATION:
            raise StoreError(f"store: {self.path!r} is a SQLite database of another application; allowed: a sparsebench store or a new path")
        return _schema_version(self.path, meta)

    def _initialize(self) -> None:
        """Create the schema in a new file, or upgrade an older one, in one transaction."""
        if self._stored_version() == SCHEMA_VERSION:
            return
        with self.transaction():
            version = self._stored_version()  # again, now that we hold the write lock
            if version is None:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.con.execute(statement)
                self.con.execute("INSERT INTO meta VALUES ('application', ?)", (APPLICATION,))
                self.con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                return
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"store: {self.path!r} has schema version {version}, newer than this sparsebench's {SCHEMA_VERSION}; "
                    "allowed: upgrade sparsebench to read it"
                )
            for v in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[v]:
                    self.con.execute(statement)
            self.con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    @property
    def schema_version(self) -> int | None:
        return self._stored_version()

    # -- plumbing -------------------------------------------------------------
    def transaction(self):
        """``with store.transaction():`` — one write transaction, taken at once (BEGIN IMMEDIATE).

        Committed when the block ends, rolled back on any exception (Ctrl-C too).
        """
        return _Transaction(self.con)

    def checkpoint(self) -> None:
        """Copy the transactions committed to the ``-wal`` file into the store file itself.

        PASSIVE: it never waits for, nor blocks, another process reading or
        writing the store; what a reader still needs stays in the ``-wal`` until
        the next checkpoint. With no other connection (as after a run was
        killed) it copies everything, so that the ``.db`` file alone, copied
        without its ``-wal``, holds every stored work group. A no-op for a
        read-only or in-memory store.
        """
        if self.read_only or self.path == ":memory:":
            return
        try:
            self.con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError:
            pass  # busy: another connection is checkpointing, or the next checkpoint catches up

    def close(self) -> None:
        _abandon_transaction(self.con)  # one an interruption left open: rolled back, never half-committed
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- experiments ----------------------------------------------------------
    def experiment_id(
        self,
        config_hash: str,
        config: dict,
        create: bool = True,
        software: dict | None = None,
        data_fingerprint: str | None = None,
        data_stats: dict | None = None,
    ) -> int | None:
        """The id of the experiment with this config hash, created if missing and ``create``.

        ``software`` (versions of what computes the numbers), ``data_fingerprint`` and
        ``data_stats`` (what identifies and describes the loaded data) are recorded when
        it is created.
        """
        row = self.con.execute("SELECT id FROM experiments WHERE config_hash = ?", (config_hash,)).fetchone()
        if row or not create:
            return row[0] if row else None
        with self.transaction():
            self.con.execute(
                "INSERT OR IGNORE INTO experiments (config_hash, config_json, created_at, software, data_fingerprint, data_stats) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (config_hash, json.dumps(config, sort_keys=True), _now(), json.dumps(software or {}, sort_keys=True),
                 data_fingerprint, None if data_stats is None else json.dumps(data_stats, sort_keys=True)),
            )
        return self.con.execute("SELECT id FROM experiments WHERE config_hash = ?", (config_hash,)).fetchone()[0]

    def data_identity(self, experiment_id: int) -> tuple[str | None, dict]:
        """The experiment's data fingerprint and data stats (None and {} for experiments stored before schema 4)."""
        row = self.con.execute("SELECT data_fingerprint, data_stats FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
        if row is None:
            return None, {}
        return row[0], json.loads(row[1]) if row[1] else {}

    def adopt_data_identity(self, experiment_id: int, data_fingerprint: str, data_stats: dict) -> bool:
        """Record the data of an experiment that has none recorded yet; False if it already had a fingerprint."""
        with self.transaction():
            changed = self.con.execute(
                "UPDATE experiments SET data_fingerprint = ?, data_stats = ? WHERE id = ? AND data_fingerprint IS NULL",
                (data_fingerprint, json.dumps(data_stats, sort_keys=True), experiment_id),
            ).rowcount
        return changed == 1

    def experiments(self) -> pd.DataFrame:
        """One row per experiment: id, config_hash, created_at, config (dict), n_trials."""
        rows = self.con.execute(
            "SELECT e.id, e.config_hash, e.created_at, e.config_json, "
            "(SELECT COUNT(*) FROM trials t WHERE t.experiment_id = e.id) FROM experiments e ORDER BY e.id"
        ).fetchall()
        return pd.DataFrame(
            [(i, h, c, json.loads(j), n) for i, h, c, j, n in rows],
            columns=["experiment_id", "config_hash", "created_at", "config", "n_trials"],
        )

    def software(self, experiment_id: int) -> dict:
        """The versions recorded when the experiment was created ({} for stores older than schema 3)."""
        row = self.con.execute("SELECT software FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else {}

    def config(self, experiment_id: int) -> dict:
        row = self.con.execute("SELECT config_json FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
        if row is None:
            raise StoreError(f"experiment: got {experiment_id!r}; allowed: an id listed by `sparsebench list`")
        return json.loads(row[0])

    # -- trials -----------------------------------------------------------------
    def finished_keys(self, experiment_id: int) -> set[tuple]:
        """Keys ``(method, role, candidate, sparsity, seed)`` of the stored trials."""
        rows = self.con.execute(
            "SELECT method, role, candidate, sparsity, seed FROM trials WHERE experiment_id = ?", (experiment_id,)
        )
        return {tuple(r) for r in rows}

    def save_group(
        self,
        experiment_id: int,
        trials: Iterable[TrialRecord],
        candidates: Iterable[CandidateRecord] = (),
        claim: tuple[str, str] | None = None,
    ) -> int:
        """Store trials with their curves, and candidate scores, in one transaction.

        Trials already stored (same key) are left as they are, so a group that
        two runs both trained is stored once. ``claim`` = ``(group_key, owner)``
        is released in the same transaction. Returns how many trials were new.
        """
        created = _now()
        new = 0
        with self.transaction():
            identify = self._identifier(experiment_id)
            for t in trials:
                values = [getattr(t, c) for c in TRIAL_COLUMNS]
                values[TRIAL_COLUMNS.index("identity")] = t.identity or identify(t)
                values[TRIAL_COLUMNS.index("trained_in")] = t.trained_in or identify.config_hash
                cur = self.con.execute(
                    f"INSERT INTO trials (experiment_id, {', '.join(TRIAL_COLUMNS)}, created_at) "
                    f"VALUES (?, {', '.join('?' * len(TRIAL_COLUMNS))}, ?) ON CONFLICT DO NOTHING",
                    [experiment_id, *values, created],
                )
                if cur.rowcount == 0:
                    continue
                new += 1
                trial_id = cur.lastrowid
                self.con.executemany(
                    f"INSERT INTO curves (trial_id, {', '.join(CURVE_COLUMNS)}) VALUES (?, {', '.join('?' * len(CURVE_COLUMNS))})",
                    [(trial_id, *c) for c in t.curves],
                )
            self.con.executemany(
                "INSERT INTO candidates (experiment_id, method, sparsity, seed, idx, score, chosen, mask) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(experiment_id, c.method, c.sparsity, c.seed, c.idx, c.score, int(c.chosen), c.mask) for c in candidates],
            )
            if claim is not None:
                self.con.execute(
                    "DELETE FROM claims WHERE experiment_id = ? AND group_key = ? AND owner = ?", (experiment_id, *claim)
                )
        self.checkpoint()  # a SIGKILL from now on loses at most the group being trained
        return new

    def _experiment_row(self, experiment_id: int) -> tuple[dict, str | None, str]:
        """The experiment's stored config, data fingerprint and config hash."""
        row = self.con.execute("SELECT config_json, data_fingerprint, config_hash FROM experiments WHERE id = ?",
                               (experiment_id,)).fetchone()
        if row is None:
            raise StoreError(f"experiment: got {experiment_id!r}; allowed: an id listed by `sparsebench list`")
        return json.loads(row[0]), row[1], row[2]

    def _identifier(self, experiment_id: int) -> "_Identifier":
        config, fingerprint, config_hash = self._experiment_row(experiment_id)
        return _Identifier(config, fingerprint, config_hash)

    def stored_units(self, experiment_id: int) -> dict[tuple[str, float, int], int]:
        """How many trials (the selected one and its probes) of each selection unit ``(method label, sparsity,
        seed)`` the experiment holds; whether that is the whole unit is the plan's to say (``plan.remaining_parts``)."""
        rows = self.con.execute("SELECT method, sparsity, seed, COUNT(*) FROM trials WHERE experiment_id = ? "
                                "AND role IN ('selected', 'probe') GROUP BY method, sparsity, seed", (experiment_id,))
        return {(method, sparsity, seed): count for method, sparsity, seed, count in rows}

    def adopt_units(self, experiment_id: int, environment: str | None) -> int:
        """Reuse, instead of training, the selection units the experiment plans and lacks that another
        experiment of this store holds with the same identity (identity.py: same data fingerprint, parent,
        training, method and parameters, sparsity, seed, ...) and computed in ``environment`` (None: any).

        Each unit (a method's selected trial and its probes at one sparsity and seed) is copied whole, with
        its curves, its scored candidates and its original numbers, timings and creation time, under this
        experiment's label for the method; ``trained_in`` keeps the experiment that trained it. One
        transaction; a unit another run stored meanwhile is left as it is. Returns how many trials were copied.
        """
        with self.transaction():
            return self._adopt_units(experiment_id, environment)

    def _adopt_units(self, experiment_id: int, environment: str | None) -> int:
        from .config import DesignSection
        from .identity import probes_by_label, unit_identity
        from .plan import plan

        config, fingerprint, config_hash = self._experiment_row(experiment_id)
        if not fingerprint:
            return 0  # an experiment whose data is not known reuses nothing: reuse never crosses data
        probes = probes_by_label(config)
        have = self.stored_units(experiment_id)
        copied = 0
        for group in plan(DesignSection.from_stored(config)):
            sparsity = 0.0 if group.sparsity is None else group.sparsity
            for label in group.methods:
                name, params = group.method_of(label)
                for seed in group.seeds:
                    if have.get((label, sparsity, seed), 0) >= 1 + probes.get(label, 0):
                        continue  # stored whole
                    identity = unit_identity(config, fingerprint, name, params, probes.get(label, 0), sparsity, seed)
                    copied += self._copy_unit(experiment_id, label, identity, environment, 1 + probes.get(label, 0))
        return copied

    def _copy_unit(self, experiment_id: int, label: str, identity: str | None, environment: str | None, size: int) -> int:
        """Copy the unit ``identity`` (``size`` trials) of the oldest other experiment holding it whole."""
        if identity is None:
            return 0
        env_test = "environment IS NOT NULL" if environment is None else "environment = ?"
        env_args = () if environment is None else (environment,)
        row = self.con.execute(
            f"SELECT t.experiment_id, t.environment, t.method, t.sparsity, t.seed, e.config_hash FROM trials t "
            f"JOIN experiments e ON e.id = t.experiment_id WHERE t.identity = ? AND {env_test} AND t.role = 'selected' "
            "AND t.experiment_id != ? ORDER BY t.id LIMIT 1",
            (identity, *env_args, experiment_id),
        ).fetchone()
        if row is None:
            return 0
        source, env, source_label, sparsity, seed, source_hash = row
        ids = [r[0] for r in self.con.execute(
            "SELECT id FROM trials WHERE experiment_id = ? AND identity = ? AND environment = ? ORDER BY id",
            (source, identity, env))]
        if len(ids) != size:
            return 0  # not stored whole there (another probe count cannot give the same identity; defensive)
        columns = [c for c in TRIAL_COLUMNS if c not in ("method", "trained_in")]
        copied = 0
        for trial_id in ids:
            cur = self.con.execute(
                f"INSERT INTO trials (experiment_id, method, trained_in, {', '.join(columns)}, created_at) "
                f"SELECT ?, ?, COALESCE(trained_in, ?), {', '.join(columns)}, created_at FROM trials WHERE id = ? "
                "ON CONFLICT DO NOTHING",
                (experiment_id, label, source_hash, trial_id),
            )
            if cur.rowcount == 0:
                continue
            copied += 1
            self.con.execute(
                f"INSERT INTO curves (trial_id, {', '.join(CURVE_COLUMNS)}) SELECT ?, {', '.join(CURVE_COLUMNS)} "
                "FROM curves WHERE trial_id = ?",
                (cur.lastrowid, trial_id),
            )
        self.con.execute(
            "INSERT INTO candidates (experiment_id, method, sparsity, seed, idx, score, chosen, mask) "
            "SELECT ?, ?, sparsity, seed, idx, score, chosen, mask FROM candidates "
            "WHERE experiment_id = ? AND method = ? AND sparsity = ? AND seed = ? ON CONFLICT DO NOTHING",
            (experiment_id, label, source, source_label, sparsity, seed),
        )
        return copied

    def trials(self, experiment_id: int | None = None) -> pd.DataFrame:
        """One row per trial, with the experiment's dataset, hash and K (candidates scored) beside it.

        ``trained_in`` is the config hash of the experiment whose run trained the trial: its own, or
        another's whose stored trial it reused (same identity, data and environment; see identity.py).

        ``score_name`` names the score ``init_score`` is (the trial's own, at initialization). ``search_score``
        is the value the trial's method gave its mask when it ranked it (the ``candidates`` row of its selected
        or probe candidate; NaN for a method that ranks none), and ``ranked_by`` names it: for a score-ranked
        search the ``score_name`` (the value computed in the search's batch), for trained-search
        "trained-accuracy", the validation accuracy after its brief training.

        ``flops`` (nullable integers) and ``flop_reduction`` are missing (NA, NaN) for trials
        stored before schema 5, which did not record them; ``selection_seconds``,
        ``candidate_evaluations`` and ``search_epochs`` (nullable integers) for trials stored
        before schema 6.
        """
        where, args = ("WHERE t.experiment_id = ?", (experiment_id,)) if experiment_id is not None else ("", ())
        df = pd.read_sql_query(
            "SELECT t.id AS trial_id, t.experiment_id, e.config_hash, e.config_json, t.*, "
            "(SELECT COUNT(*) FROM candidates c WHERE c.experiment_id = t.experiment_id AND c.method = t.method "
            "AND c.sparsity = t.sparsity AND c.seed = t.seed) AS n_scored, "
            "(SELECT c.score FROM candidates c WHERE c.experiment_id = t.experiment_id AND c.method = t.method "
            "AND c.sparsity = t.sparsity AND c.seed = t.seed AND c.idx = t.candidate) AS search_score FROM trials t "
            f"JOIN experiments e ON e.id = t.experiment_id {where} ORDER BY t.experiment_id, t.sparsity, t.method, t.role, t.seed, t.candidate",
            self.con,
            params=args,
        )
        # identity and environment are for matching trials (reuse, merge), not for reading.
        df = df.loc[:, ~df.columns.duplicated()].drop(columns=["id", "created_at", "mask", "identity", "environment"])
        # Trained by a run of its own experiment unless reused from another (before schema 8: its own).
        df["trained_in"] = df["trained_in"].fillna(df["config_hash"])
        configs = df.pop("config_json").map(json.loads)
        df.insert(2, "dataset", configs.map(lambda c: c["dataset"]))
        # A random-search labelled with its own score ranked (and scored its trials) by it.
        df["score_name"] = [json.loads(p if isinstance(p, str) else "{}").get("score", c["score"])
                            for p, c in zip(df["method_params"], configs)]
        # What search_score is: the score_name, or what a search that does not rank by a score at
        # initialization ranks by (trained-search: "trained-accuracy"; names.RANKING_SCORES).
        df["ranked_by"] = [RANKING_SCORES.get(n) or score for n, score in zip(df["method_name"], df["score_name"])]
        # K: how many candidates the trial's method scored to choose it (0 for dense, random
        # and any method that returns no candidates); a probe is one of those, not a search.
        scored = df.pop("n_scored")
        df["candidates"] = scored.where(df["role"] == "selected", 0).astype(int)
        # A count stays an integer beside rows stored before schema 5 (missing, not NaN-turned-float).
        for count in ("flops", "candidate_evaluations", "search_epochs"):
            df[count] = df[count].astype("Int64")
        return df

    def curves(self, experiment_id: int | None = None) -> pd.DataFrame:
        """One row per (trial, epoch)."""
        where, args = ("WHERE t.experiment_id = ?", (experiment_id,)) if experiment_id is not None else ("", ())
        return pd.read_sql_query(
            "SELECT t.experiment_id, c.trial_id, t.method, t.role, t.sparsity, t.seed, c.epoch, "
            "c.train_loss, c.train_acc, c.val_loss, c.val_acc, c.monitor_loss, c.monitor_acc FROM curves c JOIN trials t ON t.id = c.trial_id "
            f"{where} ORDER BY c.trial_id, c.epoch",
            self.con,
            params=args,
        )

    def candidates(self, experiment_id: int | None = None) -> pd.DataFrame:
        """Every scored candidate: method, sparsity, seed, idx, score, chosen (masks left out)."""
        where, args = ("WHERE experiment_id = ?", (experiment_id,)) if experiment_id is not None else ("", ())
        return pd.read_sql_query(
            f"SELECT experiment_id, method, sparsity, seed, idx, score, chosen FROM candidates {where} "
            "ORDER BY experiment_id, method, sparsity, seed, idx",
            self.con,
            params=args,
        )

    def mask_bytes(self, trial_id: int) -> bytes | None:
        row = self.con.execute("SELECT mask FROM trials WHERE id = ?", (trial_id,)).fetchone()
        if row is None:
            raise StoreError(f"trial: got {trial_id!r}; allowed: a stored trial id")
        return row[0]


    # -- claims -----------------------------------------------------------------
    def claim_next(
        self,
        experiment_id: int,
        owner: str,
        lease_seconds: float,
        pending: Callable[[], Iterable[str]],
        now: float | None = None,
    ) -> ClaimResult:
        """Claim the first pending group no live run holds, in one BEGIN IMMEDIATE transaction.

        ``pending()`` lists the keys of the groups not yet stored, in plan order;
        it runs inside the transaction, so a group stored meanwhile by another
        run is never claimed. A group is free if unclaimed, claimed by ``owner``,
        its lease has expired, or its owner is a process of this machine that
        no longer exists. The claim lasts ``lease_seconds`` unless renewed.
        """
        with self.transaction():
            keys = tuple(pending())
            now = time.time() if now is None else now
            held = {k: (o, e) for k, o, e in self.con.execute(
                "SELECT group_key, owner, expires_at FROM claims WHERE experiment_id = ?", (experiment_id,))}
            retry_at = None
            for key in keys:
                holder = held.get(key)
                if holder is None or holder[0] == owner or holder[1] <= now or owner_is_gone(holder[0]):
                    self.con.execute(
                        "INSERT OR REPLACE INTO claims (experiment_id, group_key, owner, expires_at) VALUES (?, ?, ?, ?)",
                        (experiment_id, key, owner, now + lease_seconds),
                    )
                    return ClaimResult(key, keys)
                retry_at = holder[1] if retry_at is None else min(retry_at, holder[1])
            return ClaimResult(None, keys, retry_at)

    def renew_claim(self, experiment_id: int, key: str, owner: str, lease_seconds: float, now: float | None = None) -> bool:
        """Extend ``owner``'s claim on ``key``; False if it is no longer ``owner``'s."""
        return renew_claim(self.con, experiment_id, key, owner, lease_seconds, now)

    def release_claims(self, owner: str) -> None:
        """Drop every claim ``owner`` still holds (a run that stops: done, failed or interrupted)."""
        _abandon_transaction(self.con)
        self.con.execute("DELETE FROM claims WHERE owner = ?", (owner,))

    def claims(self, experiment_id: int | None = None) -> pd.DataFrame:
        """The claims held now: experiment_id, group_key, owner, expires_at (Unix time)."""
        where, args = ("WHERE experiment_id = ?", (experiment_id,)) if experiment_id is not None else ("", ())
        return pd.read_sql_query(
            f"SELECT experiment_id, group_key, owner, expires_at FROM claims {where} ORDER BY experiment_id, group_key",
            self.con,
            params=args,
        )


class _Identifier:
    """The identity (identity.py) of trials saved into one experiment, computed from its stored config."""

    def __init__(self, config: dict, fingerprint: str | None, config_hash: str):
        self.config, self.fingerprint, self.config_hash = config, fingerprint, config_hash
        self._probes: dict[str, int] | None = None

    def __call__(self, t: TrialRecord) -> str | None:
        from .identity import probes_by_label, unit_identity

        if not self.fingerprint:
            return None
        if self._probes is None:
            self._probes = probes_by_label(self.config)
        return unit_identity(self.config, self.fingerprint, t.method_name or t.method, t.method_params,
                             self._probes.get(t.method, 0), t.sparsity, t.seed)


def renew_claim(con: sqlite3.Connection, experiment_id: int, key: str, owner: str, lease_seconds: float,
                now: float | None = None) -> bool:
    """Extend a claim through ``con`` (one statement, so one atomic write); False if ``owner`` lost it."""
    now = time.time() if now is None else now
    cur = con.execute(
        "UPDATE claims SET expires_at = ? WHERE experiment_id = ? AND group_key = ? AND owner = ?",
        (now + lease_seconds, experiment_id, key, owner),
    )
    return cur.rowcount == 1


def connect_for_lease(path: str) -> sqlite3.Connection:
    """A second connection to a store, for renewing a lease from another thread."""
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return con


def _abandon_transaction(con: sqlite3.Connection) -> None:
    """Roll back a transaction left open (by an interruption between BEGIN and COMMIT), if any."""
    try:
        if con.in_transaction:
            con.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # closing the connection rolls it back too


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED")


def _retry_while_busy(statement: Callable[[], object], pause: float = 0.0) -> None:
    """Run ``statement`` again while SQLite answers busy or locked, up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            statement()
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)


def _enable_wal(con: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode = WAL``, retried: SQLite answers SQLITE_BUSY at once, without
    waiting, when another process is creating or switching the same new file."""
    _retry_while_busy(lambda: con.execute("PRAGMA journal_mode = WAL"), pause=0.01)


def _begin_immediate(con: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, asking for the write lock in short tries up to the busy timeout.

    SQLite waits for a lock inside C, where Ctrl-C is not seen; short tries let
    a KeyboardInterrupt through within ``BEGIN_TRY_MS``.
    """
    con.execute(f"PRAGMA busy_timeout = {BEGIN_TRY_MS}")
    try:
        _retry_while_busy(lambda: con.execute("BEGIN IMMEDIATE"))
    finally:
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception, wherever it is raised.

    A KeyboardInterrupt can arrive between any two bytecodes: after BEGIN, in
    the body, or around COMMIT. Whatever was not committed is rolled back here
    (or, at the latest, by ``Store.close``); SQLite's commit is atomic, so the
    file never holds part of a transaction.
    """

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        try:
            _begin_immediate(self.con)
        except BaseException:
            _abandon_transaction(self.con)
            raise
        return self.con

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            _abandon_transaction(self.con)
            return
        try:
            self.con.execute("COMMIT")
        except BaseException:
            _abandon_transaction(self.con)
            raise
