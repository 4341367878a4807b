"""The SQLite store: the schema and every read and write of results.

One file holds experiments (config and its hash), trials, per-epoch curves,
the scores of every candidate a search method sampled, and masks. It is the
only state shared between the stages, so a run can stop anywhere and resume.

Opening never changes a file that is not already a sparsebench store: the
header and the ``meta`` table are checked through a read-only connection
first, and only then is the file opened for writing.

>>> with Store(":memory:") as store:
...     store.experiments().empty
True
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from .errors import StoreError

APPLICATION = "sparsebench"
SCHEMA_VERSION = 1
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 60_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY,
    config_hash TEXT NOT NULL UNIQUE,
    config_json TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    method TEXT NOT NULL,
    role TEXT NOT NULL,             -- 'selected', or 'probe' for extra trained candidates
    candidate INTEGER NOT NULL,     -- index among the method's scored candidates, -1 if none
    sparsity REAL NOT NULL,
    seed INTEGER NOT NULL,
    weight_sparsity REAL NOT NULL,
    kept_nodes TEXT NOT NULL,       -- JSON list, kept nodes per hidden layer
    n_params INTEGER NOT NULL,
    mask BLOB,                      -- NodeMask.to_bytes(), NULL for the dense parent
    init_score REAL,                -- the selection score of this mask at initialization
    status TEXT NOT NULL,           -- 'done' or 'diverged'
    diverged_epoch INTEGER,
    epochs INTEGER NOT NULL,
    final_test_loss REAL, final_test_acc REAL,
    best_epoch INTEGER, best_val_acc REAL,
    best_test_loss REAL, best_test_acc REAL,
    train_seconds REAL NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (experiment_id, method, role, candidate, sparsity, seed)
);
CREATE TABLE IF NOT EXISTS curves (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    epoch INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL,
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
"""

TRIAL_COLUMNS = (
    "method role candidate sparsity seed weight_sparsity kept_nodes n_params mask init_score status "
    "diverged_epoch epochs final_test_loss final_test_acc best_epoch best_val_acc best_test_loss "
    "best_test_acc train_seconds"
).split()
CURVE_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")


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
    final_test_loss: float | None
    final_test_acc: float | None
    best_epoch: int | None
    best_val_acc: float | None
    best_test_loss: float | None
    best_test_acc: float | None
    train_seconds: float
    curves: list[tuple[int, float, float, float, float]] = field(default_factory=list)

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


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def check_store_file(path: str | os.PathLike) -> None:
    """Refuse, without writing anything, a file that is not a usable sparsebench store.

    A missing or empty file is fine (it becomes a new store).
    """
    p = Path(path)
    if not p.exists():
        if not p.parent.exists():
            raise StoreError(f"store: directory {str(p.parent)!r} does not exist; allowed: a path in an existing directory")
        return
    if p.is_dir():
        raise StoreError(f"store: {str(p)!r} is a directory; allowed: a sparsebench SQLite file")
    try:
        with open(p, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"store: cannot read {str(p)!r} ({exc.strerror}); allowed: a readable sparsebench SQLite file") from None
    if not header:
        return
    if header != SQLITE_HEADER:
        raise StoreError(f"store: {str(p)!r} is not a SQLite database; allowed: a sparsebench store or a new path")
    try:
        con = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"store: {str(p)!r} is corrupt or unreadable ({exc}); allowed: a sparsebench store or a new path") from None
    if not tables:
        return  # an empty SQLite database: nothing to lose by making it a store
    if meta.get("application") != APPLICATION:
        raise StoreError(f"store: {str(p)!r} is a SQLite database of another application; allowed: a sparsebench store or a new path")
    version = int(meta.get("schema_version", "0"))
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store: {str(p)!r} has schema version {version}, newer than this sparsebench's {SCHEMA_VERSION}; "
            "allowed: upgrade sparsebench to read it"
        )


class Store:
    """A sparsebench results store in one SQLite file (or ``":memory:"``).

    Use as a context manager. Several processes may use one file at once on
    one machine (WAL mode, busy timeout); a network file system is not
    supported by SQLite's locking.
    """

    def __init__(self, path: str | os.PathLike = "sparsebench.db", create: bool = True):
        self.path = str(path)
        if self.path != ":memory:":
            if not create and not Path(self.path).is_file():
                raise StoreError(f"store: {self.path!r} does not exist; allowed: a store written by `sparsebench run`")
            check_store_file(self.path)
        self.con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self.con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if self.path != ":memory:":
            self.con.execute("PRAGMA journal_mode = WAL")
        self.con.execute("PRAGMA foreign_keys = ON")
        self._initialize()

    def _initialize(self) -> None:
        with self.transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.con.execute(statement)
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('application', ?)", (APPLICATION,))
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    # -- plumbing -------------------------------------------------------------
    def transaction(self):
        """``with store.transaction():`` — one write transaction, taken at once (BEGIN IMMEDIATE)."""
        return _Transaction(self.con)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- experiments ----------------------------------------------------------
    def experiment_id(self, config_hash: str, config: dict, create: bool = True) -> int | None:
        """The id of the experiment with this config hash, created if missing and ``create``."""
        row = self.con.execute("SELECT id FROM experiments WHERE config_hash = ?", (config_hash,)).fetchone()
        if row or not create:
            return row[0] if row else None
        with self.transaction():
            self.con.execute(
                "INSERT OR IGNORE INTO experiments (config_hash, config_json, created_at) VALUES (?, ?, ?)",
                (config_hash, json.dumps(config, sort_keys=True), _now()),
            )
        return self.con.execute("SELECT id FROM experiments WHERE config_hash = ?", (config_hash,)).fetchone()[0]

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

    def save_group(self, experiment_id: int, trials: Iterable[TrialRecord], candidates: Iterable[CandidateRecord] = ()) -> int:
        """Store trials with their curves, and candidate scores, in one transaction.

        Trials already stored (same key) are left as they are. Returns how many were new.
        """
        created = _now()
        new = 0
        with self.transaction():
            for t in trials:
                values = [getattr(t, c) for c in TRIAL_COLUMNS]
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
                    "INSERT INTO curves (trial_id, epoch, train_loss, train_acc, val_loss, val_acc) VALUES (?, ?, ?, ?, ?, ?)",
                    [(trial_id, *c) for c in t.curves],
                )
            self.con.executemany(
                "INSERT INTO candidates (experiment_id, method, sparsity, seed, idx, score, chosen, mask) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(experiment_id, c.method, c.sparsity, c.seed, c.idx, c.score, int(c.chosen), c.mask) for c in candidates],
            )
        return new

    def trials(self, experiment_id: int | None = None) -> pd.DataFrame:
        """One row per trial, with the experiment's dataset, hash and K beside it."""
        where, args = ("WHERE t.experiment_id = ?", (experiment_id,)) if experiment_id is not None else ("", ())
        df = pd.read_sql_query(
            f"SELECT t.id AS trial_id, t.experiment_id, e.config_hash, e.config_json, t.* FROM trials t "
            f"JOIN experiments e ON e.id = t.experiment_id {where} ORDER BY t.experiment_id, t.sparsity, t.method, t.role, t.candidate, t.seed",
            self.con,
            params=args,
        )
        df = df.loc[:, ~df.columns.duplicated()].drop(columns=["id", "created_at", "mask"])
        configs = df.pop("config_json").map(json.loads)
        df.insert(2, "dataset", configs.map(lambda c: c["dataset"]))
        df["score_name"] = configs.map(lambda c: c["score"])
        df["candidates"] = [
            c["candidates"] if m not in ("dense", "random") and r == "selected" else 0
            for c, m, r in zip(configs, df["method"], df["role"])
        ]
        return df

    def curves(self, experiment_id: int | None = None) -> pd.DataFrame:
        """One row per (trial, epoch)."""
        where, args = ("WHERE t.experiment_id = ?", (experiment_id,)) if experiment_id is not None else ("", ())
        return pd.read_sql_query(
            "SELECT t.experiment_id, c.trial_id, t.method, t.role, t.sparsity, t.seed, c.epoch, "
            "c.train_loss, c.train_acc, c.val_loss, c.val_acc FROM curves c JOIN trials t ON t.id = c.trial_id "
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


class _Transaction:
    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self):
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type, exc, tb):
        self.con.execute("ROLLBACK" if exc_type else "COMMIT")
