"""Issue 6.5: stores that must be refused, untouched; the schema version and its migration."""

import csv
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import sparsebench
from sparsebench import store as store_module
from sparsebench.errors import SparsebenchWarning
from sparsebench.store import SCHEMA_VERSION, Store
from sparsebench.summary import format_summary, percent_removed

FAST = ["--dataset", "digits", "--hidden", "8", "--seeds", "1", "--sparsities", "0.5", "--candidates", "2", "--epochs", "1", "--no-progress"]




def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file's bytes; a -shm file only by name: it is SQLite's shared-memory index of the
    -wal, which every reader of a store left in WAL mode updates (read-only readers too)."""
    return {p.name: None if p.name.endswith("-shm") else p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def assert_refused_untouched(cli, folder: Path, store: str, *words: str) -> str:
    before = snapshot(folder)
    code, _, err = cli("run", *FAST, "--store", store)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("sparsebench: error: store") and "Traceback" not in err, err
    for word in words:
        assert word in err
    assert snapshot(folder) == before  # same files, same bytes: no -wal or -shm created, nothing changed
    return err


def left_open_in_wal_mode(db: Path, statements: list[str]) -> None:
    """Run ``statements`` in a process that dies without closing: the -wal (and -shm) stay, as after a kill."""
    code = (
        "import os, sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "con.execute('PRAGMA journal_mode=WAL')\n"
        "for s in sys.argv[2:]:\n"
        "    con.execute(s)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db), *statements], check=True, timeout=60)


@pytest.fixture
def wal_store(tmp_path, cli) -> Path:
    """A real sparsebench store, closed cleanly (WAL mode in its header, no -wal file)."""
    folder = tmp_path / "w"
    folder.mkdir()
    db = folder / "s.db"
    assert cli("run", *FAST, "--store", str(db))[0] == 0
    assert sorted(p.name for p in folder.iterdir()) == ["s.db"]
    assert db.read_bytes()[18] == 2  # WAL mode
    return db


def test_a_foreign_database_with_a_live_wal_is_refused_and_its_wal_left_alone(tmp_path, cli):
    db = tmp_path / "notes.db"
    left_open_in_wal_mode(db, ["CREATE TABLE notes (t TEXT)", "INSERT INTO notes VALUES ('my thesis')"])
    assert (tmp_path / "notes.db-wal").stat().st_size > 0
    assert_refused_untouched(cli, tmp_path, str(db), "another application")


def test_a_newer_schema_committed_only_to_the_wal_is_seen_and_refused(wal_store, cli):
    # The version bump lives in the -wal only: the check must read through it.
    left_open_in_wal_mode(wal_store, ["UPDATE meta SET value = '99' WHERE key = 'schema_version'"])
    assert (wal_store.parent / "s.db-wal").exists()
    assert_refused_untouched(cli, wal_store.parent, str(wal_store), "schema version 99", "newer")


def test_a_newer_schema_in_a_closed_wal_store_is_refused_without_creating_a_wal(wal_store, cli):
    con = sqlite3.connect(wal_store)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    assert sorted(p.name for p in wal_store.parent.iterdir()) == ["s.db"]
    assert_refused_untouched(cli, wal_store.parent, str(wal_store), f"schema version {SCHEMA_VERSION + 1}")


@pytest.mark.parametrize("value", ["two", "", "-1", "0", "1.5"])
def test_an_unreadable_schema_version_is_refused(wal_store, cli, value):
    con = sqlite3.connect(wal_store)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (value,))
    con.commit()
    con.close()
    assert_refused_untouched(cli, wal_store.parent, str(wal_store), "schema version")


def test_a_directory_is_refused(tmp_path, cli):
    (tmp_path / "d.db").mkdir()
    assert_refused_untouched(cli, tmp_path, str(tmp_path / "d.db"), "directory")


def test_a_missing_directory_is_refused(tmp_path, cli):
    assert_refused_untouched(cli, tmp_path, str(tmp_path / "nope" / "s.db"), "does not exist")
    assert not (tmp_path / "nope").exists()


def test_a_fifo_is_refused_without_blocking(tmp_path, cli):
    os.mkfifo(tmp_path / "pipe.db")
    assert_refused_untouched(cli, tmp_path, str(tmp_path / "pipe.db"), "not a regular file")


@pytest.mark.parametrize("path", ["bad\x00name.db", "x" * 5000 + ".db", "y" * 300 + "/s.db"])
def test_an_impossible_path_is_one_line(tmp_path, cli, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    assert_refused_untouched(cli, tmp_path, path)


def test_a_read_only_store_is_refused_for_running_and_still_readable(wal_store, cli):
    wal_store.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    try:
        assert_refused_untouched(cli, wal_store.parent, str(wal_store), "read-only")
        before = snapshot(wal_store.parent)
        code, out, err = cli("list", "--store", str(wal_store))
        assert code == 0 and "3/3" in out and "digits" in out, err
        assert len(sparsebench.load_results(wal_store)) == 3
        assert snapshot(wal_store.parent) == before
    finally:
        wal_store.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_a_read_only_directory_is_one_line(tmp_path, cli):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert_refused_untouched(cli, folder, str(folder / "s.db"))
    finally:
        folder.chmod(stat.S_IRWXU)


# -- schema version and migration -------------------------------------------------------
def make_version_1(db: Path) -> None:
    """Turn a store into what sparsebench with schema version 1 wrote: no claims table,
    no software column."""
    make_version_3(db)
    con = sqlite3.connect(db)
    con.execute("DROP TABLE claims")
    con.execute("ALTER TABLE experiments DROP COLUMN software")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()


#: The trials columns schema 6 added: what a trial's selection cost.
COST_COLUMNS = ["selection_seconds", "candidate_evaluations", "search_epochs"]


#: The trials columns schema 7 added: the method's registered name and parameters (``method`` is its label).
LABEL_COLUMNS = ["method_name", "method_params"]


#: The trials columns schema 8 added: what determines a trial's numbers, where they were computed, who trained it.
IDENTITY_COLUMNS = ["identity", "environment", "trained_in"]


def make_version_7(db: Path) -> None:
    """Turn a store into what sparsebench with schema version 7 wrote: no trial identity (never reused)."""
    con = sqlite3.connect(db)
    con.execute("DROP INDEX trials_identity")
    for column in IDENTITY_COLUMNS:
        con.execute(f"ALTER TABLE trials DROP COLUMN {column}")
    con.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    con.commit()
    con.close()


def make_version_6(db: Path) -> None:
    """Turn a store into what sparsebench with schema version 6 wrote: a method is its name, without parameters."""
    make_version_7(db)
    con = sqlite3.connect(db)
    for column in LABEL_COLUMNS:
        con.execute(f"ALTER TABLE trials DROP COLUMN {column}")
    con.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    con.commit()
    con.close()


def make_version_5(db: Path) -> None:
    """Turn a store into what sparsebench with schema version 5 wrote: no selection cost per trial."""
    make_version_6(db)
    con = sqlite3.connect(db)
    for column in COST_COLUMNS:
        con.execute(f"ALTER TABLE trials DROP COLUMN {column}")
    con.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    con.commit()
    con.close()


def make_version_4(db: Path) -> None:
    """Turn a store into what sparsebench with schema version 4 wrote: no FLOPs per trial."""
    make_version_5(db)
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE trials DROP COLUMN flops")
    con.execute("ALTER TABLE trials DROP COLUMN flop_reduction")
    con.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    con.commit()
    con.close()


def make_version_3(db: Path) -> None:
    """Turn a store into what sparsebench with schema version 3 wrote: no data fingerprint,
    stop epoch or monitoring curves."""
    make_version_4(db)
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE experiments DROP COLUMN data_fingerprint")
    con.execute("ALTER TABLE experiments DROP COLUMN data_stats")
    con.execute("ALTER TABLE trials DROP COLUMN stop_epoch")
    con.execute("ALTER TABLE curves DROP COLUMN monitor_loss")
    con.execute("ALTER TABLE curves DROP COLUMN monitor_acc")
    con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    con.commit()
    con.close()


def tables(db: Path) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()


def test_a_new_store_has_the_current_schema_version(tmp_path):
    with Store(tmp_path / "n.db") as st:
        assert st.schema_version == SCHEMA_VERSION == 8
    assert "claims" in tables(tmp_path / "n.db")


def test_a_version_1_store_is_upgraded_in_place_and_resumes(tmp_path, cli, tiny_config):
    db = tmp_path / "v1.db"
    full = sparsebench.run(tiny_config, store=db, progress=False)
    with Store(db) as st:  # leave the last group to be done after the upgrade
        with st.transaction():
            st.con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE sparsity = 0.9)")
            st.con.execute("DELETE FROM candidates WHERE sparsity = 0.9")
            st.con.execute("DELETE FROM trials WHERE sparsity = 0.9")
    make_version_1(db)
    assert "claims" not in tables(db)
    store_module.check_store_file(db)  # older is fine
    with pytest.warns(SparsebenchWarning, match="before data fingerprints were recorded"):  # a pre-schema-4 experiment
        resumed = sparsebench.run(tiny_config, store=db, progress=False)
    with Store(db) as st:
        assert st.schema_version == SCHEMA_VERSION and st.claims().empty
        assert st.software(1) == {}  # not recorded before schema 3
    # not recorded before schemas 5 and 6: only the group trained after the upgrade has them
    flops = ["flops", "flop_reduction", *COST_COLUMNS]
    cols = [c for c in full.columns if c not in ("train_seconds", "selection_seconds", "trial_id", *flops)]
    new = (resumed["sparsity"] == 0.9).to_numpy()
    flops.remove("selection_seconds")  # wall-clock: recorded, but never the same twice
    assert resumed.loc[new, "selection_seconds"].notna().all()
    pd.testing.assert_frame_equal(full[cols].reset_index(drop=True), resumed[cols].reset_index(drop=True), check_exact=True)
    new = (resumed["sparsity"] == 0.9).to_numpy()
    assert resumed.loc[~new, flops].isna().all().all()
    pd.testing.assert_frame_equal(full.loc[new, flops].reset_index(drop=True), resumed.loc[new, flops].reset_index(drop=True))


def without_last_sparsity(db: Path) -> None:
    """Delete the trials (and curves, candidates) of sparsity 0.9: the group a resumed run trains."""
    with Store(db) as st:
        with st.transaction():
            st.con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE sparsity = 0.9)")
            st.con.execute("DELETE FROM candidates WHERE sparsity = 0.9")
            st.con.execute("DELETE FROM trials WHERE sparsity = 0.9")


def test_a_version_4_store_is_listed_reported_and_exported_without_flops_and_left_as_it_was(tmp_path, cli, tiny_config):
    db = tmp_path / "v4.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    without_last_sparsity(db)
    make_version_4(db)
    before = db.read_bytes()
    code, out, err = cli("list", "--store", str(db))
    assert code == 0 and "6/10" in out, err
    code, _, err = cli("export", "--store", str(db), "--format", "csv", "--out", str(tmp_path / "t.csv"))
    assert code == 0, err
    columns, *rows = list(csv.reader((tmp_path / "t.csv").open()))
    assert columns[columns.index("weight_sparsity") + 1] == "flop_reduction"
    assert len(rows) == 6
    for row in rows:  # not recorded: an empty cell (not a zero), beside a recorded weight sparsity
        cells = dict(zip(columns, row))
        assert cells["flop_reduction"] == cells["flops"] == "" and cells["weight_sparsity"] != ""
    code, _, err = cli("report", "--store", str(db), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    markdown = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert "| weights removed % |" in markdown and "FLOPs removed %" not in markdown
    assert "FLOPs removed are not shown: these trials did not record them (they were stored before schema 5)" in markdown
    assert db.read_bytes() == before and not Path(f"{db}-wal").exists()  # read as it is: not upgraded
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("4",)
    con.close()


def test_a_version_4_store_upgraded_by_a_run_keeps_its_trials_without_flops(tmp_path, cli, tiny_config):
    db = tmp_path / "v4.db"
    full = sparsebench.run(tiny_config, store=db, progress=False)
    without_last_sparsity(db)
    make_version_4(db)
    con = sqlite3.connect(db)
    old_rows = con.execute("SELECT * FROM trials ORDER BY id").fetchall()
    con.close()
    resumed = sparsebench.run(tiny_config, store=db, progress=False)
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    # The old rows are as they were, with NULL in the new columns (added last by the upgrades to schemas 5 to 7).
    assert [r[:-10] for r in con.execute("SELECT * FROM trials ORDER BY id LIMIT ?", (len(old_rows),))] == old_rows
    assert con.execute("SELECT COUNT(*) FROM trials WHERE flops IS NULL AND flop_reduction IS NULL").fetchone() == (6,)
    con.close()
    new = (resumed["sparsity"] == 0.9).to_numpy()
    assert resumed.loc[new, "flop_reduction"].tolist() == full.loc[full["sparsity"] == 0.9, "flop_reduction"].tolist()
    code, _, err = cli("report", "--store", str(db), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    markdown = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    summary = markdown.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "| FLOPs removed % |" in summary
    rows = [line.split(" | ") for line in summary.splitlines() if line.startswith("| 0")]
    flops_removed = percent_removed(full.loc[full["sparsity"] == 0.9, "flop_reduction"].iloc[0])
    assert {r[2] for r in rows if r[0] != "| 0.9"} == {"not recorded"}  # dense and sparsity 0.5: stored before
    assert {r[2] for r in rows if r[0] == "| 0.9"} == {flops_removed}
    text = format_summary(resumed)
    assert "—  dense" in text and f"{flops_removed}%  random" in text and "—: not recorded" in text


def test_a_version_5_store_is_listed_reported_and_exported_without_selection_costs_and_left_as_it_was(tmp_path, cli, tiny_config):
    db = tmp_path / "v5.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    without_last_sparsity(db)
    make_version_5(db)
    before = db.read_bytes()
    code, out, err = cli("list", "--store", str(db))
    assert code == 0 and "6/10" in out, err
    code, _, err = cli("export", "--store", str(db), "--format", "csv", "--timings", "--out", str(tmp_path / "t.csv"))
    assert code == 0, err
    columns, *rows = list(csv.reader((tmp_path / "t.csv").open()))
    assert len(rows) == 6
    for row in rows:  # not recorded: an empty cell (not a zero), beside the recorded FLOPs
        cells = dict(zip(columns, row))
        assert [cells[c] for c in COST_COLUMNS] == ["", "", ""] and cells["flops"] != ""
    code, _, err = cli("report", "--store", str(db), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    markdown = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    cost = markdown.split("## Gain over random vs cost of search", 1)[1].split("\n## ", 1)[0]
    assert "not recorded" in cost and "schema 6" in cost
    assert db.read_bytes() == before and not Path(f"{db}-wal").exists()  # read as it is: not upgraded
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("5",)
    con.close()


def test_a_version_5_store_upgraded_by_a_run_records_the_cost_of_new_trials_only(tmp_path, tiny_config):
    db = tmp_path / "v5.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    without_last_sparsity(db)
    make_version_5(db)
    con = sqlite3.connect(db)
    old_rows = con.execute("SELECT * FROM trials ORDER BY id").fetchall()
    con.close()
    resumed = sparsebench.run(tiny_config, store=db, progress=False)
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert [r[:-8] for r in con.execute("SELECT * FROM trials ORDER BY id LIMIT ?", (len(old_rows),))] == old_rows
    con.close()
    new = (resumed["sparsity"] == 0.9).to_numpy()
    assert resumed.loc[~new, COST_COLUMNS].isna().all().all()
    fresh = resumed[new].set_index("method")
    k = tiny_config.search.candidates
    assert fresh["candidate_evaluations"].to_dict() == {"random": 0, "random-search": k}
    assert (fresh["search_epochs"] == 0).all() and (fresh["selection_seconds"] > 0).all()


def test_a_version_6_store_is_listed_reported_and_exported_with_each_method_its_own_label_and_left_as_it_was(
        tmp_path, cli, tiny_config):
    db = tmp_path / "v6.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    without_last_sparsity(db)
    make_version_6(db)
    before = db.read_bytes()
    code, out, err = cli("list", "--store", str(db))
    assert code == 0 and "6/10" in out, err
    code, _, err = cli("export", "--store", str(db), "--format", "csv", "--out", str(tmp_path / "t.csv"))
    assert code == 0, err
    columns, *rows = list(csv.reader((tmp_path / "t.csv").open()))
    assert len(rows) == 6 and columns[columns.index("method") + 1: columns.index("method") + 3] == LABEL_COLUMNS
    for row in rows:  # before labels, a method was its registered name at its defaults
        cells = dict(zip(columns, row))
        assert cells["method_name"] == cells["method"] and cells["method_params"] == "{}"
    code, _, err = cli("report", "--store", str(db), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    assert db.read_bytes() == before and not Path(f"{db}-wal").exists()  # read as it is: not upgraded
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("6",)
    con.close()


def test_a_version_6_store_upgraded_by_a_run_resumes_with_the_same_numbers_and_labels(tmp_path, tiny_config):
    db = tmp_path / "v6.db"
    full = sparsebench.run(tiny_config, store=db, progress=False)
    without_last_sparsity(db)
    make_version_6(db)
    con = sqlite3.connect(db)
    old_rows = con.execute("SELECT * FROM trials ORDER BY id").fetchall()
    con.close()
    resumed = sparsebench.run(tiny_config, store=db, progress=False)  # the same config hash: it resumes
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert [r[:-5] for r in con.execute("SELECT * FROM trials ORDER BY id LIMIT ?", (len(old_rows),))] == old_rows
    con.close()
    assert (resumed["method_name"] == resumed["method"]).all() and (resumed["method_params"] == "{}").all()
    cols = [c for c in full.columns if c not in ("train_seconds", "selection_seconds", "trial_id")]
    pd.testing.assert_frame_equal(full[cols].reset_index(drop=True), resumed[cols].reset_index(drop=True), check_exact=True)


def test_a_failed_migration_leaves_the_version_1_store_as_it_was(tmp_path, tiny_config, monkeypatch):
    db = tmp_path / "v1.db"
    sparsebench.run({**tiny_config.to_dict(), "sparsities": [0.5]}, store=db, progress=False)
    make_version_1(db)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT * FROM trials ORDER BY id").fetchall()
    con.close()
    broken = (store_module.MIGRATIONS[1][0], "INSERT INTO no_such_table VALUES (1)")
    monkeypatch.setitem(store_module.MIGRATIONS, 1, broken)
    with pytest.raises(sqlite3.OperationalError):
        Store(db)
    assert "claims" not in tables(db)  # the CREATE TABLE was rolled back with the rest
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    assert con.execute("SELECT * FROM trials ORDER BY id").fetchall() == rows
    con.close()


def test_several_connections_opening_one_new_store_at_once_all_succeed(tmp_path):
    """SQLite refuses at once (not after the busy timeout) to switch a file to WAL while another
    connection creates it; opening retries. (Threads race as processes do, and start faster.)"""
    import threading

    for i in range(30):
        db = tmp_path / f"race{i}.db"
        barrier, errors = threading.Barrier(3), []

        def open_store():
            barrier.wait()
            try:
                with Store(db) as st:
                    st.experiment_id("h", {})
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(repr(exc))

        threads = [threading.Thread(target=open_store) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
