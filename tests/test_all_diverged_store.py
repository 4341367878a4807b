"""Issue 11, item 4: one experiment whose trials all diverged must not break `export` or `report`
for the whole store (it raised "'trial_id' is both an index level and a column label")."""

import pandas as pd
import pytest

import sparsebench


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from tests.conftest import TINY

    db = tmp_path_factory.mktemp("diverged") / "x.db"
    good = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()}
    sparsebench.run(good, store=str(db), progress=False)  # experiment 1: trains normally
    sparsebench.run({**good, "lr": 1e308}, store=str(db), progress=False)  # experiment 2: every trial diverges
    return db


def test_the_second_experiment_really_diverged(store):
    trials = sparsebench.load_results(str(store))
    statuses = trials.groupby("experiment_id")["status"].agg(set).to_dict()
    assert statuses == {1: {"done"}, 2: {"diverged"}}


def test_export_without_experiment_writes_every_row_including_the_diverged_ones(store, tmp_path, cli):
    out = tmp_path / "x.csv"
    code, _, err = cli("export", "--store", str(store), "--out", str(out))
    assert code == 0, err
    table = pd.read_csv(out)
    trials = sparsebench.load_results(str(store))
    assert len(table) == len(trials)
    diverged = table[table["experiment_id"] == 2]
    assert len(diverged) == (trials["experiment_id"] == 2).sum() and (diverged["status"] == "diverged").all()
    assert diverged[["final_test_acc", "auc", "epochs_to_threshold"]].isna().all().all()
    good = table[table["experiment_id"] == 1]
    assert good["auc"].notna().all()  # the good experiment keeps its convergence metrics
    assert set(good["convergence_split"]) == {"monitor"}  # the default config holds a monitoring split
    assert set(diverged["convergence_split"]) == {"validation"}  # no finished trial has monitoring values


def test_report_of_the_all_diverged_experiment_says_so_once(store, tmp_path, cli):
    out = tmp_path / "rep"
    code, _, err = cli("report", "--store", str(store), "--experiment", "2", "--out", str(out))
    assert code == 0, err
    markdown = (out / "report.md").read_text(encoding="utf-8")
    n = (sparsebench.load_results(str(store))["experiment_id"] == 2).sum()
    assert markdown.count(f"Every one of this experiment's {n} stored trials diverged") == 1
    assert "Diverged trials" in markdown and "Traceback" not in err
    code, _, err = cli("report", "--store", str(store), "--experiment", "1", "--out", str(tmp_path / "r1"))
    assert code == 0, err
