"""`sparsebench report` and `sparsebench export` as a user runs them."""

import json

import pandas as pd
import pytest

import sparsebench
from sparsebench.cli import main

FAST = ["--dataset", "digits", "--hidden", "16,16", "--seeds", "3", "--sparsities", "0.5,0.9", "--candidates", "3", "--epochs", "3", "--no-progress"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("store") / "s.db"
    assert main(["run", *FAST, "--store", str(db)]) == 0
    return db


def test_run_summary_has_a_verdict_column(tmp_path, capsys):
    assert main(["run", *FAST, "--store", str(tmp_path / "v.db")]) == 0
    out = capsys.readouterr().out
    assert "verdict vs random" in out
    rs_lines = [l for l in out.splitlines() if "random-search" in l and not l.startswith("warning:")]
    # 3 seeds are below the minimum for a verdict (sparsebench.analysis.MIN_SEEDS)
    assert len(rs_lines) == 2 and all("too few seeds" in l for l in rs_lines)
    assert not any(v in l for l in rs_lines for v in ("better", "worse", "equivalent"))


def test_report_writes_self_contained_html_and_markdown(store, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", "--store", str(store), "--out", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 4
    assert "http://" not in html and "https://" not in html
    md = (out / "report.md").read_text()
    # The setup table names the data the experiment ran on.
    assert "| data fingerprint (sha256) |" in md and "| data splits (rows) | train " in md and "| chance accuracy |" in md
    for s in ("0.5", "0.9"):
        assert f"At sparsity {s}, random-search" in md
    for name in ("accuracy_vs_sparsity", "learning_curves", "paired_differences"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0 and f"figures/{name}.png" in md


def test_export_csv_has_one_row_per_trial(store, tmp_path, capsys):
    out = tmp_path / "trials.csv"
    assert main(["export", "--store", str(store), "--format", "csv", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 3 + 3 * 2 * 2
    for column in ("experiment_id", "dataset", "method", "sparsity", "weight_sparsity", "seed", "final_test_acc",
                   "best_test_acc", "epochs_to_threshold", "auc", "candidates", "config_hash"):
        assert column in table.columns
    assert (table.loc[table.method == "random-search", "candidates"] == 3).all()


def test_export_curves_json_and_parquet(store, tmp_path, capsys):
    assert main(["export", "--store", str(store), "--format", "json", "--curves", "--out", str(tmp_path / "c.json")]) == 0
    rows = json.loads((tmp_path / "c.json").read_text())
    assert len(rows) == 15 * 3 and {"trial_id", "epoch", "val_acc"} <= set(rows[0])
    assert main(["export", "--store", str(store), "--format", "parquet", "--out", str(tmp_path / "t.parquet")]) == 0
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == 15


@pytest.mark.parametrize(
    "args,words",
    [
        (["export", "--format", "xlsx", "--out", "{tmp}/x"], "format"),
        (["export", "--out", "{tmp}/no/such/dir/x.csv"], "out"),
        (["export", "--out", "{tmp}/x.txt"], "a file ending in .csv"),
        (["export", "--out", "{tmp}", "--format", "csv"], "not a directory"),
        (["export", "--out", "{tmp}/x.csv", "--curves", "--timings"], "--timings on trial rows only"),
        (["report", "--out", "{tmp}/r", "--experiment", "99"], "experiment"),
        (["report", "--out", "{tmp}/r", "--margin", "-1"], "margin"),
    ],
)
def test_bad_report_and_export_input_exits_2(store, tmp_path, capsys, args, words):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args] + ["--store", str(store)]
    before = store.read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and words in err
    assert store.read_bytes() == before


def test_export_format_follows_the_extension_and_the_file_is_not_private(store, tmp_path, capsys):
    import json
    import os
    import stat

    assert main(["export", "--store", str(store), "--out", str(tmp_path / "t.json")]) == 0
    assert len(json.loads((tmp_path / "t.json").read_text())) == 15
    assert main(["export", "--store", str(store), "--out", str(tmp_path / "t.PARQUET")]) == 0
    assert len(pd.read_parquet(tmp_path / "t.PARQUET")) == 15
    assert main(["export", "--store", str(store), "--format", "CSV", "--out", str(tmp_path / "t.dat")]) == 0
    assert (tmp_path / "t.dat").read_text().startswith("experiment_id,")
    os.chmod(tmp_path / "t.dat", 0o600)  # a file the user made private stays private when replaced
    assert main(["export", "--store", str(store), "--format", "csv", "--out", str(tmp_path / "t.dat")]) == 0
    assert stat.S_IMODE((tmp_path / "t.dat").stat().st_mode) == 0o600
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "t.json").stat().st_mode) == 0o666 & ~umask


def test_export_does_not_clobber_an_existing_file_on_error(tmp_path, capsys):
    target = tmp_path / "keep.csv"
    target.write_text("precious\n")
    assert main(["export", "--store", str(tmp_path / "missing.db"), "--out", str(target)]) == 2
    assert target.read_text() == "precious\n"


@pytest.mark.parametrize("methods", ["dense", "random", "dense,random-search"])
def test_report_works_without_anything_to_compare_with_random(tmp_path, cli, methods):
    db = str(tmp_path / "s.db")
    assert cli("run", *FAST, "--methods", methods, "--store", db)[0] == 0
    code, out, err = cli("report", "--store", db, "--out", str(tmp_path / "r"))
    assert code == 0, err
    assert (tmp_path / "r" / "report.html").exists()


def run_then_forget(cli, db, *statements: str) -> None:
    """A finished run's store with some of its rows deleted, as if the run had stopped earlier."""
    import sqlite3

    assert cli("run", *FAST, "--store", str(db))[0] == 0
    con = sqlite3.connect(db)
    for statement in statements:
        con.execute(statement)
    con.commit()
    con.close()


def test_report_of_an_incomplete_experiment_says_so(tmp_path, cli):
    db = tmp_path / "s.db"
    run_then_forget(cli, db, "DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE sparsity = 0.9)",
                    "DELETE FROM trials WHERE sparsity = 0.9")
    code, _, err = cli("report", "--store", str(db), "--out", str(tmp_path / "r"))
    assert code == 0 and "incomplete" in err
    assert "Incomplete experiment: 9/15 planned trials are stored" in (tmp_path / "r" / "report.md").read_text()


def test_report_of_an_experiment_without_trials_is_one_line(tmp_path, cli):
    db = tmp_path / "s.db"
    run_then_forget(cli, db, "DELETE FROM curves", "DELETE FROM candidates", "DELETE FROM trials")
    code, _, err = cli("report", "--store", str(db), "--out", str(tmp_path / "r"))
    assert code == 2 and "no finished trials" in err and len(err.strip().splitlines()) == 1


def test_report_out_must_not_be_an_existing_file(store, tmp_path, cli):
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = cli("report", "--store", str(store), "--out", str(target))
    assert code == 2 and "out" in err and target.read_text() == "x"


def test_export_of_an_unknown_experiment_is_refused(store, tmp_path, cli):
    code, _, err = cli("export", "--store", str(store), "--experiment", "99", "--out", str(tmp_path / "x.csv"))
    assert code == 2 and "experiment" in err and not (tmp_path / "x.csv").exists()


def test_list_never_imports_modules_named_in_a_store(tmp_path, cli):
    import sqlite3

    db = tmp_path / "s.db"
    assert cli("run", *FAST, "--store", str(db))[0] == 0
    marker = tmp_path / "imported"
    (tmp_path / "sneaky_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    con = sqlite3.connect(db)
    config = json.loads(con.execute("SELECT config_json FROM experiments").fetchone()[0])
    config["methods"] = ["dense", "random", "sneaky_mod:Thing"]
    con.execute("UPDATE experiments SET config_json = ?", (json.dumps(config),))
    con.commit()
    con.close()
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        code, out, _ = cli("list", "--store", str(db))
    finally:
        sys.path.remove(str(tmp_path))
    assert code == 0 and not marker.exists()


@pytest.mark.parametrize("load", ["load_results", "load_curves", "load_candidates"])
def test_the_api_refuses_an_unknown_experiment_like_the_cli(store, load):
    from sparsebench.errors import StoreError

    with pytest.raises(StoreError, match="experiment: got 99"):
        getattr(sparsebench, load)(store, experiment=99)
