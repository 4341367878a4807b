"""Issue 11.2: the store file alone (copied without its -wal) holds every stored work group, even
after SIGKILL; reading commands never write to a store, yet see what only its -wal holds."""

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import sparsebench
from sparsebench import runner
from sparsebench.store import SCHEMA_VERSION, Store

from .helpers import CONFIG, ENV, GROUPS, N_TRIALS, RUN_ARGS, assert_consistent, kill, start, stored_trial_count, wait_for
from .test_store_files import make_version_3


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def copy_alone(db: Path, folder: Path) -> Path:
    """The store file without its -wal and -shm, as `cp store.db elsewhere/` copies it."""
    folder.mkdir()
    return Path(shutil.copy(db, folder / "copy.db"))


def listed_trials(cli, db: Path) -> str:
    code, out, err = cli("list", "--store", str(db))
    assert code == 0, err
    return out


@pytest.mark.slow
def test_after_sigkill_the_store_file_alone_holds_every_stored_group(tmp_path, cli):
    db = tmp_path / "kc.db"
    log = tmp_path / "trained.log"
    # Each group lasts 2 s longer: the kill lands while the second group trains.
    proc = start(db, hooks={"SB_TRAINED_LOG": log, "SB_GROUP_SECONDS": 2})
    # The second group's training starts only after the first was stored (and checkpointed).
    wait_for(lambda: log.exists() and len(log.read_text().split()) >= 2, proc=proc)
    kill(proc)
    assert Path(f"{db}-wal").exists()  # killed: SQLite had no chance to fold the -wal in on close
    stored = stored_trial_count(db)  # read through the -wal
    assert stored == GROUPS[0].n_trials
    copy = copy_alone(db, tmp_path / "elsewhere")
    assert f"{stored}/{N_TRIALS}" in listed_trials(cli, copy)
    assert len(sparsebench.load_results(copy)) == stored
    assert assert_consistent(copy) == 1


# A run whose store keeps everything in its -wal: checkpoints off, and a second connection
# left open, so that closing the run's connection does not fold the -wal in either.
WAL_ONLY_RUN = """
import os, sqlite3, sys
from sparsebench import store
from sparsebench.cli import main

db = sys.argv[1]
with store.Store(db):
    pass  # the schema, in the file itself
store.Store.checkpoint = lambda self: None
keep = sqlite3.connect(db)
keep.execute("SELECT COUNT(*) FROM meta").fetchone()
code = main([*sys.argv[2:], "--store", db])
os._exit(code)  # `keep` stays open to the end: no checkpoint on close
"""


@pytest.fixture(scope="module")
def wal_only_template(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("walonly") / "w.db"
    subprocess.run([sys.executable, "-c", WAL_ONLY_RUN, str(db), *RUN_ARGS], check=True, env=ENV, timeout=300,
                   capture_output=True)
    return db


@pytest.fixture
def wal_only(tmp_path, wal_only_template) -> Path:
    """A store whose trials are all in its -wal; the .db holds the schema alone."""
    db = tmp_path / "w.db"
    for suffix in ("", "-wal", "-shm"):
        shutil.copy(f"{wal_only_template}{suffix}", f"{db}{suffix}")
    assert Path(f"{db}-wal").stat().st_size > 0
    return db


def test_without_checkpoints_the_file_alone_would_lose_the_results(wal_only, tmp_path, cli):
    """What the checkpoints defend against (and that the fixture is what it says)."""
    assert listed_trials(cli, copy_alone(wal_only, tmp_path / "elsewhere")).strip() == "no experiments"


@pytest.mark.parametrize("command", ["list", "export", "report", "api"])
def test_reading_commands_see_what_only_the_wal_holds_and_write_nothing(wal_only, tmp_path, cli, command):
    before = {s: digest(Path(f"{wal_only}{s}")) for s in ("", "-wal")}
    if command == "list":
        assert f"{N_TRIALS}/{N_TRIALS}" in listed_trials(cli, wal_only)
    elif command == "export":
        code, out, err = cli("export", "--store", str(wal_only), "--out", str(tmp_path / "t.csv"))
        assert code == 0 and f"wrote {N_TRIALS} rows" in out, err
    elif command == "report":
        code, _, err = cli("report", "--store", str(wal_only), "--out", str(tmp_path / "rep"))
        assert code == 0, err
    else:
        assert len(sparsebench.load_results(wal_only)) == N_TRIALS
        assert len(sparsebench.list_experiments(wal_only)) == 1
    assert {s: digest(Path(f"{wal_only}{s}")) for s in ("", "-wal")} == before  # not even a checkpoint


def test_a_run_that_opens_the_store_checkpoints_what_a_killed_run_left_in_the_wal(wal_only, tmp_path, cli):
    with Store(wal_only):  # as `sparsebench run` opens it (no other connection is live)
        copy = copy_alone(wal_only, tmp_path / "elsewhere")
    assert f"{N_TRIALS}/{N_TRIALS}" in listed_trials(cli, copy)


def test_reading_a_store_of_an_older_schema_leaves_it_as_it_was(tmp_path, cli, tiny_config):
    db = tmp_path / "v3.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    make_version_3(db)
    before = digest(db)
    assert "10/10" in listed_trials(cli, db) and "complete" in listed_trials(cli, db)
    assert len(sparsebench.load_curves(db)) > 0 and sparsebench.load_curves(db)["monitor_loss"].isna().all()
    assert digest(db) == before and not Path(f"{db}-wal").exists()
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
    con.close()
    with Store(db) as st:  # a run upgrades it
        assert st.schema_version == SCHEMA_VERSION


def test_an_interrupted_run_checkpoints_on_its_way_out(tmp_path, tiny_config, monkeypatch, cli):
    """A reader's snapshot held back the checkpoint after the first group; the run is then
    interrupted: on its way out it checkpoints again, so the file alone holds that group."""
    db = tmp_path / "i.db"
    with Store(db):
        pass
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM trials").fetchone()  # a snapshot from before any trial
    real, calls = runner.run_group, []

    def run_group(cfg, group, *args, **kwargs):
        calls.append(group.key)
        if len(calls) == 2:
            reader.execute("COMMIT")  # the reader is done
            raise KeyboardInterrupt
        return real(cfg, group, *args, **kwargs)

    monkeypatch.setattr(runner, "run_group", run_group)
    try:
        with pytest.raises(KeyboardInterrupt):
            sparsebench.run(tiny_config, store=db, progress=False)
        # `reader` is still open: closing the run's connection did not fold the -wal in.
        copy = copy_alone(db, tmp_path / "elsewhere")
    finally:
        reader.close()
    first = runner.plan(tiny_config)[0]
    assert f"{first.n_trials}/" in listed_trials(cli, copy)


def test_a_store_that_changes_while_it_is_read_without_locks_is_read_again(tmp_path, tiny_config, monkeypatch):
    # Without a -wal the store is read as immutable (no locks, no sibling files): a
    # run starting meanwhile could rewrite its pages, so a copy taken while the
    # file changed is dropped and the store read again.
    import os

    import sparsebench
    from sparsebench import store as store_module

    db = tmp_path / "r.db"
    stored = len(sparsebench.run(tiny_config, store=db, progress=False))
    assert not (tmp_path / "r.db-wal").exists()
    real_copy, copies = store_module._copy_in_memory, []

    def copy_while_a_run_checkpoints(con):
        copies.append(1)
        copy = real_copy(con)
        if len(copies) == 1:
            info = os.stat(db)
            os.utime(db, ns=(info.st_atime_ns, info.st_mtime_ns + 1000))
        return copy

    monkeypatch.setattr(store_module, "_copy_in_memory", copy_while_a_run_checkpoints)
    with store_module.Store(db, create=False) as st:
        assert len(st.trials()) == stored
    assert len(copies) == 2
