"""``sparsebench merge``: several stores, one result, no duplicates, and a refusal that changes nothing."""

import dataclasses
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import sparsebench
from sparsebench.api import export_table
from sparsebench.store import Store
from tests.reliability.test_store_files import make_version_3

#: What an experiment's export holds that is not a number computed for a trial.
BOOKKEEPING = ["experiment_id", "trial_id"]


def run_into(db: Path, config, **changes) -> pd.DataFrame:
    return sparsebench.run(dataclasses.replace(config, **changes), store=db, progress=False)


@pytest.fixture
def two_stores(tmp_path, tiny_config):
    """Seeds 0, 1 of the tiny config in A.db and seeds 2, 3 in B.db: one study split over two machines."""
    a, b = tmp_path / "A.db", tmp_path / "B.db"
    run_into(a, tiny_config, seeds=(0, 1))
    run_into(b, tiny_config, seeds=(2, 3))
    return a, b


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_merging_two_stores_of_different_seeds_equals_one_run_with_all_seeds(tmp_path, tiny_config, two_stores, cli):
    all_db, one_run = tmp_path / "ALL.db", tmp_path / "one.db"
    code, out, err = cli("merge", *map(str, two_stores), "--into", str(all_db))
    assert code == 0, err
    assert "2 experiments and 20 trials added" in out and "experiment 3" in out and "holds all 20 trials" in out, out
    run_into(one_run, tiny_config, seeds=(0, 1, 2, 3))
    merged, single = export_table(all_db, 3), export_table(one_run, 1)
    assert merged["config_hash"].iloc[0] == single["config_hash"].iloc[0]
    merged, single = (t.drop(columns=BOOKKEEPING).reset_index(drop=True) for t in (merged, single))
    # Bit-identical once trials are independent of how they were stacked (issue 19, part 1); to float tolerance until then.
    floats = [c for c in single.columns if single[c].dtype.kind == "f"]
    pd.testing.assert_frame_equal(merged.drop(columns=floats), single.drop(columns=floats), check_exact=True)
    pd.testing.assert_frame_equal(merged[floats], single[floats], rtol=1e-5, atol=1e-6)
    # The union experiment is complete: running it into the merged store trains nothing.
    with Store(all_db, create=False) as st:
        trials_before = len(st.trials())
    assert len(run_into(all_db, tiny_config, seeds=(0, 1, 2, 3))) == 20
    with Store(all_db, create=False) as st:
        assert len(st.trials()) == trials_before


def test_merging_again_adds_nothing(tmp_path, two_stores, cli):
    all_db = tmp_path / "ALL.db"
    assert cli("merge", *map(str, two_stores), "--into", str(all_db))[0] == 0
    with Store(all_db, create=False) as st:
        before = (st.experiments()["config_hash"].tolist(), len(st.trials()), len(st.curves()), len(st.candidates()))
    code, out, err = cli("merge", *map(str, two_stores), str(two_stores[0]), "--into", str(all_db))
    assert code == 0 and "0 experiments and 0 trials added, 30 trials already there" in out, (out, err)
    with Store(all_db, create=False) as st:
        assert (st.experiments()["config_hash"].tolist(), len(st.trials()), len(st.curves()), len(st.candidates())) == before


def test_an_incomplete_study_is_reported_not_combined(tmp_path, tiny_config, cli):
    a, b = tmp_path / "A.db", tmp_path / "B.db"
    run_into(a, tiny_config, seeds=(0,), methods=("dense", "random"))
    run_into(b, tiny_config, seeds=(1,), methods=("random-search",))
    code, out, err = cli("merge", str(a), str(b), "--into", str(tmp_path / "ALL.db"))
    assert code == 0, err
    assert "one study" in out and "trains only the rest" in out, out
    with Store(tmp_path / "ALL.db", create=False) as st:
        assert len(st.experiments()) == 2


def corrupt_one_number(db: Path, environment: str | None = None) -> None:
    con = sqlite3.connect(db)
    con.execute("UPDATE trials SET final_test_acc = final_test_acc + 0.01 WHERE method = 'random' AND sparsity = 0.5 AND seed = 1")
    if environment is not None:
        con.execute("UPDATE trials SET environment = ?", (environment,))
    con.commit()
    con.close()


def corrupted_copy(store: Path, tmp_path: Path) -> Path:
    """A copy of ``store`` (in its own folder, under the same name) with one trial's number changed."""
    copy = tmp_path / "copy" / store.name
    copy.parent.mkdir()
    shutil.copy(store, copy)
    corrupt_one_number(copy)
    return copy


def test_a_trial_with_other_numbers_on_the_same_machine_is_refused_and_nothing_changes(tmp_path, tiny_config, two_stores, cli):
    a, _ = two_stores
    copy = corrupted_copy(a, tmp_path)
    all_db = tmp_path / "ALL.db"
    code, out, err = cli("merge", str(a), str(copy), "--into", str(all_db))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "trial random at sparsity 0.5, seed 1" in err and "final_test_acc" in err and "same software" in err, err
    assert not all_db.exists() and not Path(str(all_db) + "-wal").exists()  # a new store is not left behind
    # An existing store is left byte for byte as it was.
    assert cli("merge", str(a), "--into", str(all_db))[0] == 0
    before = snapshot(tmp_path)
    code, _, err = cli("merge", str(copy), "--into", str(all_db))
    assert code == 2 and "different numbers" in err, err
    assert snapshot(tmp_path) == before


def test_the_same_trial_in_two_experiments_must_agree_too(tmp_path, tiny_config, cli):
    a, b = tmp_path / "A.db", tmp_path / "B.db"
    run_into(a, tiny_config, seeds=(0, 1))
    run_into(b, tiny_config, seeds=(1, 2))  # seed 1 is in both: another experiment, the same trials
    corrupt_one_number(b)
    code, _, err = cli("merge", str(a), str(b), "--into", str(tmp_path / "ALL.db"))
    assert code == 2 and "also in experiment" in err and "seed 1" in err, err


def test_a_trial_from_other_hardware_is_reported_not_refused(tmp_path, two_stores, cli):
    a, _ = two_stores
    copy = tmp_path / "copy" / "A.db"
    copy.parent.mkdir()
    shutil.copy(a, copy)
    corrupt_one_number(copy, environment='{"hardware": "another machine", "threads": 64}')
    code, out, err = cli("merge", str(a), str(copy), "--into", str(tmp_path / "ALL.db"))
    assert code == 0, err
    assert "trial random at sparsity 0.5, seed 1" in out and "different hardware and software" in out and "kept the first" in out, out
    with Store(tmp_path / "ALL.db", create=False) as st:
        assert len(st.trials()) == 10  # one copy of each trial: the first store's


@pytest.mark.parametrize("bad", ["missing", "text", "newer", "same"])
def test_bad_input_is_one_line_and_creates_nothing(tmp_path, two_stores, cli, bad):
    a, _ = two_stores
    source = tmp_path / "bad.db"
    into = tmp_path / "ALL.db"
    if bad == "text":
        source.write_text("not a store\n")
    elif bad == "newer":
        shutil.copy(a, source)
        con = sqlite3.connect(source)
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        con.commit()
        con.close()
    elif bad == "same":
        source = into
        shutil.copy(a, into)
    before = snapshot(tmp_path)
    code, out, err = cli("merge", str(a), str(source), "--into", str(into))
    assert code == 2 and err.startswith("sparsebench: error: ") and err.count("\n") == 1, err
    assert snapshot(tmp_path) == before


def test_a_schema_3_store_opens_reports_exports_and_merges(tmp_path, tiny_config, cli):
    old = tmp_path / "v3.db"
    run_into(old, tiny_config)
    make_version_3(old)
    before = old.read_bytes()
    code, out, err = cli("list", "--store", str(old))
    assert code == 0 and "10/10" in out, err
    code, _, err = cli("export", "--store", str(old), "--out", str(tmp_path / "t.csv"))
    assert code == 0 and len(pd.read_csv(tmp_path / "t.csv")) == 10, err
    code, _, err = cli("report", "--store", str(old), "--out", str(tmp_path / "report"))
    assert code == 0 and (tmp_path / "report" / "report.md").exists(), err
    code, out, err = cli("merge", str(old), "--into", str(tmp_path / "ALL.db"))
    assert code == 0 and "10 trials added" in out, err
    assert old.read_bytes() == before  # sources are only read
    with Store(tmp_path / "ALL.db", create=False) as st:
        assert len(st.trials()) == 10 and st.trials()["trained_in"].eq(st.experiments()["config_hash"].iloc[0]).all()


def test_one_experiment_assembled_from_two_machines_is_reported(tmp_path, tiny_config, cli):
    a, b = tmp_path / "A.db", tmp_path / "B.db"
    run_into(a, tiny_config)
    shutil.copy(a, b)
    for db, seed, environment in ((a, 1, None), (b, 0, '{"hardware": "another machine", "threads": 64}')):
        con = sqlite3.connect(db)  # each machine stored only one seed's trials of the experiment
        con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE seed = ?)", (seed,))
        con.execute("DELETE FROM trials WHERE seed = ?", (seed,))
        if environment:
            con.execute("UPDATE trials SET environment = ?", (environment,))
        con.commit()
        con.close()
    code, out, err = cli("merge", str(a), str(b), "--into", str(tmp_path / "ALL.db"))
    assert code == 0 and "1 experiment and 10 trials added" in out, (out, err)
    assert "now holds trials computed on 2 different hardware and software" in out and "float tolerance" in out, out


def test_a_refused_merge_does_not_even_upgrade_an_older_store_merged_into(tmp_path, tiny_config, two_stores, cli):
    a, b = two_stores
    copy = corrupted_copy(a, tmp_path)
    old = tmp_path / "old.db"
    shutil.copy(b, old)
    make_version_3(old)
    before = snapshot(tmp_path)
    code, _, err = cli("merge", str(a), str(copy), "--into", str(old))
    assert code == 2 and "different numbers" in err, err
    assert snapshot(tmp_path) == before  # refused on a copy in memory: the file is not even upgraded
    code, out, err = cli("merge", str(a), "--into", str(old))
    assert code == 0 and "1 experiment and 10 trials added" in out, err
