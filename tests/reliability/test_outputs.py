"""Issue 11.1 and 11.9: `export --out` and `report --out` never write over the store (by any path to
it), and an output location that cannot be written is one line, exit 2, with nothing written."""

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest

FAST = ["--dataset", "digits", "--hidden", "8", "--seeds", "1", "--sparsities", "0.5", "--candidates", "2", "--epochs", "1",
        "--no-progress"]


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def store_state(db: Path) -> dict[str, str | None]:
    """The bytes of the store and of its -wal (the -shm is SQLite's index of the -wal, rebuilt at will)."""
    return {suffix: digest(Path(f"{db}{suffix}")) for suffix in ("", "-wal")}


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsebench: error: out:") and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], err


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One small store, run once; each test works on a copy."""
    from sparsebench.cli import main

    db = tmp_path_factory.mktemp("template") / "s.db"
    assert main(["run", *FAST, "--store", str(db)]) == 0
    return db


@pytest.fixture
def store(tmp_path, template) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "s.db"
    shutil.copyfile(template, db)
    return db


def export_targets(db: Path) -> dict[str, str]:
    """Paths that all name the store or one of its siblings."""
    folder = db.parent
    (folder / "sub").mkdir(exist_ok=True)
    os.symlink(db, folder / "link.db")
    os.link(db, folder / "hard.db")
    os.symlink(folder, db.parent.parent / "folder-link")
    return {
        "the store": str(db),
        "its -wal": f"{db}-wal",
        "its -shm": f"{db}-shm",
        "a symbolic link to it": str(folder / "link.db"),
        "a hard link to it": str(folder / "hard.db"),
        "a path through ..": str(folder / "sub" / ".." / "s.db"),
        "a path through a linked folder": str(db.parent.parent / "folder-link" / "s.db-wal"),
        "a relative path": os.path.relpath(db),
    }


@pytest.mark.parametrize("which", ["the store", "its -wal", "its -shm", "a symbolic link to it", "a hard link to it",
                                   "a path through ..", "a path through a linked folder", "a relative path"])
def test_export_over_the_store_is_refused_and_the_store_left_byte_identical(store, cli, which):
    out = export_targets(store)[which]
    before = store_state(store)
    code, _, err = cli("export", "--store", str(store), "--out", out, "--format", "csv")
    assert_one_line_error(code, err, "store")
    assert store_state(store) == before
    assert not Path(f"{store}-wal").exists() and not Path(f"{store}-shm").exists()  # not created either
    # The same export to an ordinary file works.
    assert cli("export", "--store", str(store), "--out", str(store.parent / "t.csv"))[0] == 0


def test_export_over_the_live_wal_of_a_store_is_refused(store, cli):
    """The -wal exists (another connection holds the store open) and is reached through a hard link."""
    import sqlite3

    con = sqlite3.connect(store)  # a store in WAL mode: reading creates its -wal and -shm
    con.execute("SELECT COUNT(*) FROM trials").fetchone()
    try:
        os.link(f"{store}-wal", store.parent / "other-name")
        before = store_state(store)
        code, _, err = cli("export", "--store", str(store), "--out", str(store.parent / "other-name"), "--format", "json")
        assert_one_line_error(code, err, "store")
        assert store_state(store) == before
    finally:
        con.close()


@pytest.mark.parametrize("case", ["folder is the -wal", "folder is the store", "store is report.html", "store is report.md",
                                  "store is the figures folder", "store inside figures", "store hard-linked as a figure",
                                  "store symlinked as report.md"])
def test_report_over_the_store_is_refused_and_the_store_left_byte_identical(store, cli, case):
    folder = store.parent / "r"
    out = str(folder)
    if case == "folder is the -wal":
        out = f"{store}-wal"
    elif case == "folder is the store":
        out = str(store)
    elif case.startswith("store is") or case == "store inside figures":
        name = {"store is report.html": "report.html", "store is report.md": "report.md",
                "store is the figures folder": "figures", "store inside figures": "figures/old.db"}[case]
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(store, folder / name)
        store = folder / name
    elif case == "store hard-linked as a figure":
        (folder / "figures").mkdir(parents=True)
        os.link(store, folder / "figures" / "accuracy_vs_sparsity.png")
    else:
        folder.mkdir()
        os.symlink(store, folder / "report.md")
    before = store_state(store)
    code, _, err = cli("report", "--store", str(store), "--out", out)
    assert_one_line_error(code, err)
    assert store_state(store) == before
    assert not Path(f"{store}-wal").is_dir()
    assert not (folder / "report.html").exists() or case == "store is report.html"


def test_report_beside_the_store_in_the_same_folder_still_works(store, cli):
    code, out, err = cli("report", "--store", str(store), "--out", str(store.parent))
    assert code == 0, err
    assert (store.parent / "report.html").is_file()


# -- locations that cannot be written (11.9) ---------------------------------------------------
def test_report_into_a_path_under_a_file_is_one_line(store, cli):
    afile = store.parent / "afile"
    afile.write_text("keep me")
    code, _, err = cli("report", "--store", str(store), "--out", str(afile / "sub"))
    assert_one_line_error(code, err, "afile", "Not a directory")
    assert afile.read_text() == "keep me"


# /proc refuses new files even to root, so these hold whoever runs the tests.
def test_report_into_a_location_that_cannot_be_created_is_one_line(store, cli):
    code, _, err = cli("report", "--store", str(store), "--out", "/proc/sparsebench-report")
    assert_one_line_error(code, err, "/proc/sparsebench-report", "cannot write")


def test_export_into_a_folder_that_cannot_be_written_is_one_line(store, cli):
    code, _, err = cli("export", "--store", str(store), "--out", "/proc/sparsebench-export.csv")
    assert_one_line_error(code, err, "cannot write")
    assert not Path("/proc/sparsebench-export.csv").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders (the /proc cases above hold for root)")
@pytest.mark.parametrize("command", ["export", "report"])
def test_a_read_only_folder_is_one_line_and_left_empty(store, cli, command):
    folder = store.parent / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        out = folder / "t.csv" if command == "export" else folder
        code, _, err = cli(command, "--store", str(store), "--out", str(out))
        assert_one_line_error(code, err, "cannot write")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(stat.S_IRWXU)
