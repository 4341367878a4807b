"""Extending a finished experiment (more seeds, another method) trains only the new trials: the rest are
reused from the store, whole and unchanged, and only within one data fingerprint and one environment."""

import dataclasses
import sqlite3

import pandas as pd
import pytest

import sparsebench
from sparsebench import runner
from sparsebench.identity import computing_environment, unit_identity
from sparsebench.runner import recorded_software
from sparsebench.store import Store

#: Numbers a reused trial must keep exactly (its timings too: they are the original run's).
KEPT = ["method_name", "method_params", "role", "candidate", "sparsity", "seed", "weight_sparsity", "kept_nodes", "n_params",
        "init_score", "status", "final_test_loss", "final_test_acc", "best_epoch", "best_val_acc", "best_test_acc",
        "train_seconds", "selection_seconds", "candidate_evaluations", "candidates"]
KEY = ["method", "role", "candidate", "sparsity", "seed"]


@pytest.fixture
def trained(monkeypatch):
    """Counts the networks ``run_group`` trains, per (sparsity, seed, method)."""
    networks: list[tuple] = []
    original = runner.run_group

    def counting(settings, group, *args, **kwargs):
        trials, candidates = original(settings, group, *args, **kwargs)
        networks.extend((t.sparsity, t.seed, t.method, t.role) for t in trials)
        return trials, candidates

    monkeypatch.setattr(runner, "run_group", counting)
    return networks


def test_two_more_seeds_and_one_more_method_train_only_the_new_trials(tmp_path, tiny_config, trained):
    db = tmp_path / "s.db"
    first_config = dataclasses.replace(tiny_config, probe=1)
    first = sparsebench.run(first_config, store=db, progress=False)
    assert len(trained) == len(first) == 2 + 2 * 2 * 3  # dense, and random + random-search with its probe, per seed
    trained.clear()
    extended_config = dataclasses.replace(first_config, seeds=(0, 1, 2, 3), methods=(*first_config.methods, "magnitude"))
    extended = sparsebench.run(extended_config, store=db, progress=False)
    # New: every trial of seeds 2 and 3 (dense; 2 sparsities x random, random-search + probe, magnitude), and
    # magnitude at both sparsities for seeds 0 and 1. Nothing of seeds 0 and 1 that was stored is trained again.
    assert sorted(set(trained)) == sorted(trained)
    assert len(trained) == 2 * (1 + 2 * 4) + 2 * 2
    assert {(s, seed) for s, seed, m, _ in trained if seed < 2} == {(0.5, 0), (0.5, 1), (0.9, 0), (0.9, 1)}
    assert {m for _, seed, m, _ in trained if seed < 2} == {"magnitude"}
    assert len(extended) == len(first) + len(trained)
    # The reused trials are the stored ones: same numbers and timings, and trained by the first experiment.
    old = extended.merge(first[KEY], on=KEY)
    assert len(old) == len(first)
    pd.testing.assert_frame_equal(old.sort_values(KEY)[KEPT].reset_index(drop=True),
                                  first.sort_values(KEY)[KEPT].reset_index(drop=True), check_exact=True)
    assert set(old["trained_in"]) == {first_config.config_hash()}
    assert set(extended["trained_in"]) == {first_config.config_hash(), extended_config.config_hash()}
    # The first experiment is left as it was, and the candidates of the reused searches came along.
    with Store(db, create=False) as st:
        assert len(st.trials(1)) == len(first)
        cands = st.candidates()
    pairs = [c.drop(columns="experiment_id").reset_index(drop=True) for _, c in
             cands[cands["seed"] < 2].groupby("experiment_id")]
    assert len(pairs) == 2 and len(pairs[0]) == 2 * 2 * 6
    pd.testing.assert_frame_equal(*pairs)


def test_the_cli_says_how_many_trials_were_reused(tmp_path, cli):
    db = str(tmp_path / "s.db")
    flags = ["--dataset", "digits", "--hidden", "16", "--sparsities", "0.5", "--candidates", "3", "--epochs", "1",
             "--methods", "dense,random", "--store", db, "--no-progress"]
    code, _, err = cli("run", "--seeds", "1", *flags)
    assert code == 0 and "reused" not in err, err
    code, _, err = cli("run", "--seeds", "2", *flags)
    assert code == 0 and "reused 2 of its 4 trials" in err, err


def test_reuse_never_crosses_data_fingerprints_nor_environments(tmp_path, tiny_config):
    db = tmp_path / "s.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    more = dataclasses.replace(tiny_config, seeds=(0, 1, 2))
    environment = computing_environment(recorded_software("cpu"), "cpu")
    other_hardware = environment.replace('"threads":', '"threads_of_another_machine":')
    with Store(db) as st:
        fingerprint, stats = st.data_identity(1)
        other_data = st.experiment_id(more.config_hash() + "x", more.to_dict(), data_fingerprint="0" * 64, data_stats=stats)
        assert st.adopt_units(other_data, environment) == 0
        same_data = st.experiment_id(more.config_hash(), more.to_dict(), data_fingerprint=fingerprint, data_stats=stats)
        assert st.adopt_units(same_data, other_hardware) == 0
        assert st.adopt_units(same_data, environment) == 10  # seeds 0 and 1: 1 + 2 x 2 trials each
        assert st.adopt_units(same_data, environment) == 0  # already there


def test_identity_follows_what_determines_the_numbers_and_not_the_label(tiny_config):
    config = tiny_config.to_dict()
    base = unit_identity(config, "f" * 64, "random", "{}", 0, 0.5, 1)
    assert base == unit_identity(dict(config, seeds=[7, 8], methods=["random"]), "f" * 64, "random", "{}", 0, 0.5, 1)
    assert base == unit_identity(dict(config, data_dir="/elsewhere"), "f" * 64, "random", "{}", 0, 0.5, 1)
    for changed in (unit_identity(config, "e" * 64, "random", "{}", 0, 0.5, 1),
                    unit_identity(dict(config, lr=0.01), "f" * 64, "random", "{}", 0, 0.5, 1),
                    unit_identity(dict(config, hidden=[24, 25]), "f" * 64, "random", "{}", 0, 0.5, 1),
                    unit_identity(dict(config, engine="reference"), "f" * 64, "random", "{}", 0, 0.5, 1),
                    unit_identity(config, "f" * 64, "random", "{}", 0, 0.9, 1),
                    unit_identity(config, "f" * 64, "random", "{}", 0, 0.5, 2),
                    unit_identity(config, "f" * 64, "random-search", '{"score": "accuracy"}', 0, 0.5, 1)):
        assert changed != base
    assert unit_identity(config, None, "random", "{}", 0, 0.5, 1) is None  # unknown data: never reused
    # The dense parent reads no search setting but the score that ranks its initial score.
    dense = unit_identity(config, "f" * 64, "dense", "{}", 0, 0.0, 1)
    assert dense == unit_identity(dict(config, candidates=50, probe=3), "f" * 64, "dense", "{}", 0, 0.0, 1)
    assert dense != unit_identity(dict(config, score="accuracy"), "f" * 64, "dense", "{}", 0, 0.0, 1)


def test_another_probe_count_retrains_only_random_search(tmp_path, tiny_config, trained):
    db = tmp_path / "s.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    trained.clear()
    sparsebench.run(dataclasses.replace(tiny_config, seeds=(0, 1), probe=2), store=db, progress=False)
    # Which candidates are probed depends on the probe count; the dense parent does not read it.
    assert {m for _, _, m, _ in trained} == {"random", "random-search"}
    assert "dense" not in {m for _, _, m, _ in trained}


def test_an_older_store_trial_without_identity_is_never_reused(tmp_path, tiny_config, trained):
    db = tmp_path / "s.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    con = sqlite3.connect(db)
    con.execute("UPDATE trials SET identity = NULL, environment = NULL")  # as an upgraded schema-7 store holds them
    con.commit()
    con.close()
    trained.clear()
    sparsebench.run(dataclasses.replace(tiny_config, seeds=(0, 1, 2)), store=db, progress=False)
    assert len(trained) == 3 * 5


def test_a_unit_stored_without_its_planned_probes_trains_them_and_keeps_what_is_stored(tmp_path, tiny_dict):
    """A store whose units lack the probes their plan holds (as a store written by a version without them
    would) resumes: the missing probes are trained, the stored trials are kept as they are, and the numbers
    equal a fresh run's."""
    config = {**tiny_dict, "methods": {"random": {}, "evolution": {"probe": 2}}}
    old, fresh = tmp_path / "old.db", tmp_path / "fresh.db"
    sparsebench.run(config, store=old, progress=False)
    with sqlite3.connect(old) as con:  # as an older version stored it: the selected trial alone
        con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE role = 'probe')")
        kept = con.execute("SELECT id, final_test_acc FROM trials WHERE method = 'evolution' ORDER BY id").fetchall()
        con.execute("DELETE FROM trials WHERE role = 'probe'")
    before = dict(sqlite3.connect(old).execute("SELECT id, final_test_acc FROM trials WHERE method = 'evolution'").fetchall())
    resumed = sparsebench.run(config, store=old, progress=False)  # finishes (it once looped forever)
    assert (resumed["role"] == "probe").sum() == 2 * len(tiny_dict["seeds"]) * len(tiny_dict["sparsities"])
    after = dict(sqlite3.connect(old).execute("SELECT id, final_test_acc FROM trials WHERE method = 'evolution'").fetchall())
    assert {k: after[k] for k in before} == before and len(kept) > len(before)
    columns = ["method", "role", "candidate", "sparsity", "seed", "final_test_acc", "best_epoch", "init_score", "search_score"]
    key = ["method", "role", "candidate", "sparsity", "seed"]
    ours = resumed[columns].sort_values(key).reset_index(drop=True)
    theirs = sparsebench.run(config, store=fresh, progress=False)[columns].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs)
