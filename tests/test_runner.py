import pandas as pd
import pytest
import torch

import sparsebench
from sparsebench import runner
from sparsebench.engine.common import epoch_order

VOLATILE = ["train_seconds", "selection_seconds"]


def test_run_returns_every_planned_trial_with_metrics(tmp_path, tiny_config):
    trials = sparsebench.run(tiny_config, store=tmp_path / "r.db", progress=False)
    # dense once per seed, then random and random-search per seed and sparsity
    assert len(trials) == 2 + 2 * 2 * 2
    assert set(trials.status) == {"done"}
    assert trials.final_test_acc.between(0, 1).all() and trials.best_test_acc.between(0, 1).all()
    dense = trials[trials.method == "dense"]
    assert (dense.sparsity == 0).all() and (dense.weight_sparsity == 0).all()
    sparse = trials[trials.method != "dense"]
    assert (sparse.weight_sparsity > sparse.sparsity).all()  # hidden-to-hidden weights fall quadratically
    curves = sparsebench.load_curves(tmp_path / "r.db")
    assert len(curves) == len(trials) * tiny_config.epochs


def test_minibatch_order_depends_only_on_seed_and_epoch():
    assert torch.equal(epoch_order(3, 1, 100), epoch_order(3, 1, 100))
    assert not torch.equal(epoch_order(3, 1, 100), epoch_order(3, 2, 100))
    assert not torch.equal(epoch_order(3, 1, 100), epoch_order(4, 1, 100))


def test_paired_design_same_mask_same_seed_gives_identical_training(tmp_path, tiny_dict):
    # At sparsity 0 every method keeps every node, so random, random-search and
    # the dense parent are the same network: with one parent and one minibatch
    # order per seed, they must train identically.
    sparsebench.run({**tiny_dict, "sparsities": [0.0]}, store=tmp_path / "p.db", progress=False)
    curves = sparsebench.load_curves(tmp_path / "p.db")
    for seed in tiny_dict["seeds"]:
        per_method = {m: g.sort_values("epoch")[["train_loss", "val_loss", "val_acc"]].to_numpy() for m, g in curves[curves.seed == seed].groupby("method")}
        assert set(per_method) == {"dense", "random", "random-search"}
        for m in ("random", "random-search"):
            assert per_method[m] == pytest.approx(per_method["dense"], abs=1e-5)
    a, b = (curves[curves.seed == s].query("method == 'random'").val_loss.to_numpy() for s in tiny_dict["seeds"])
    assert not (a == b).all()  # different seeds really differ


def test_resume_skips_finished_trials(tmp_path, tiny_config, monkeypatch):
    db = tmp_path / "r.db"
    first = sparsebench.run(tiny_config, store=db, progress=False)

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished trial was trained again")

    monkeypatch.setattr(runner, "run_group", must_not_train)
    second = sparsebench.run(tiny_config, store=db, progress=False)
    pd.testing.assert_frame_equal(first, second)


def test_resume_runs_only_missing_groups(tmp_path, tiny_config, monkeypatch):
    db = tmp_path / "r.db"
    full = sparsebench.run(tiny_config, store=db, progress=False)
    with sparsebench.store.Store(db) as st:
        with st.transaction():
            st.con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE sparsity = 0.9)")
            st.con.execute("DELETE FROM trials WHERE sparsity = 0.9")
    trained = []
    real = runner.run_group
    monkeypatch.setattr(runner, "run_group", lambda cfg, group, *a, **k: trained.append(group.label) or real(cfg, group, *a, **k))
    resumed = sparsebench.run(tiny_config, store=db, progress=False)
    assert trained == ["s=0.9"]
    cols = [c for c in full.columns if c not in VOLATILE + ["trial_id"]]
    pd.testing.assert_frame_equal(full[cols].reset_index(drop=True), resumed[cols].reset_index(drop=True))


def test_different_config_is_a_new_experiment_and_leaves_the_old_one(tmp_path, tiny_config, tiny_dict):
    db = tmp_path / "r.db"
    first = sparsebench.run(tiny_config, store=db, progress=False)
    sparsebench.run({**tiny_dict, "epochs": 1}, store=db, progress=False)
    experiments = sparsebench.list_experiments(db)
    assert list(experiments.experiment) == [1, 2] and experiments.complete.all()
    pd.testing.assert_frame_equal(sparsebench.load_results(db, experiment=1), first)


def test_same_config_and_seed_give_bit_identical_numbers(tmp_path, tiny_config):
    a = sparsebench.run(tiny_config, store=tmp_path / "a.db", progress=False).drop(columns=VOLATILE)
    b = sparsebench.run(tiny_config, store=tmp_path / "b.db", progress=False).drop(columns=VOLATILE)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    ca, cb = sparsebench.load_curves(tmp_path / "a.db"), sparsebench.load_curves(tmp_path / "b.db")
    pd.testing.assert_frame_equal(ca, cb, check_exact=True)


def test_probe_trains_extra_scored_candidates(tmp_path, tiny_dict):
    trials = sparsebench.run({**tiny_dict, "probe": 2, "sparsities": [0.5]}, store=tmp_path / "p.db", progress=False)
    probes = trials[trials.role == "probe"]
    assert len(probes) == 2 * len(tiny_dict["seeds"])
    winners = trials[(trials.method == "random-search") & (trials.role == "selected")]
    for seed in tiny_dict["seeds"]:
        picked = set(probes[probes.seed == seed].candidate)
        assert len(picked) == 2 and winners[winners.seed == seed].candidate.item() not in picked


def test_reference_engine_gives_the_same_results(tmp_path, tiny_dict):
    fast = sparsebench.run(tiny_dict, store=tmp_path / "f.db", progress=False)
    slow = sparsebench.run({**tiny_dict, "engine": "reference"}, store=tmp_path / "s.db", progress=False)
    assert fast.final_test_acc.to_numpy() == pytest.approx(slow.final_test_acc.to_numpy(), abs=0.006)
    assert fast.final_test_loss.to_numpy() == pytest.approx(slow.final_test_loss.to_numpy(), abs=1e-3)


def test_diverging_trials_are_stored_as_diverged_and_the_run_continues(tmp_path, tiny_dict):
    trials = sparsebench.run({**tiny_dict, "optimizer": "sgd", "lr": 1e4, "sparsities": [0.5]}, store=tmp_path / "d.db", progress=False)
    assert (trials.status == "diverged").any()
    diverged = trials[trials.status == "diverged"]
    assert diverged.diverged_epoch.notna().all() and diverged.final_test_acc.isna().all()


def test_a_trial_subnetwork_loads_as_a_compact_module_with_inherited_weights(tmp_path, tiny_config):
    db = tmp_path / "m.db"
    trials = sparsebench.run(tiny_config, store=db, progress=False)
    row = trials[(trials.method == "random") & (trials.sparsity == 0.5)].iloc[0]
    net = sparsebench.load_subnetwork(db, int(row.trial_id))
    assert [m.out_features for m in net if isinstance(m, torch.nn.Linear)] == [12, 12, 10]
    from sparsebench.data import load_dataset
    from sparsebench.engine.reference import MaskedMLP
    from sparsebench.models import MLPSpec, init_parent

    data = load_dataset("digits", 0, 0.2)
    parent = init_parent(MLPSpec(data.n_features, tiny_config.hidden, data.n_classes), int(row.seed))
    masked = MaskedMLP(parent, sparsebench.load_mask(db, int(row.trial_id)))
    with torch.no_grad():
        torch.testing.assert_close(net(data.x_val), masked(data.x_val), rtol=1e-5, atol=1e-6)


def test_a_config_mapping_may_name_a_preset_like_a_toml_file(tmp_path, tiny_dict):
    trials = sparsebench.run({"preset": "quick", **tiny_dict, "seeds": [0], "sparsities": [0.5]}, store=tmp_path / "p.db", progress=False)
    assert len(trials) == 3
    config = sparsebench.list_experiments(tmp_path / "p.db").iloc[0]
    assert config.dataset == "digits" and config.epochs == tiny_dict["epochs"]
    with pytest.raises(sparsebench.ConfigError, match="preset"):
        sparsebench.run({"preset": "huge"}, store=tmp_path / "q.db", progress=False)


def test_resuming_with_other_software_warns_and_the_report_shows_versions(tmp_path, tiny_config, monkeypatch, cli):
    db = tmp_path / "v.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    with sparsebench.store.Store(db) as st:
        assert st.software(1)["torch"] == torch.__version__
        with st.transaction():
            st.con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE sparsity = 0.9)")
            st.con.execute("DELETE FROM trials WHERE sparsity = 0.9")
    monkeypatch.setattr(runner, "software_versions", lambda: {"sparsebench": "9.9", "torch": torch.__version__, "python": "3.11"})
    code, _, err = cli("run", "--config", str(_toml(tmp_path, tiny_config)), "--no-progress", "--store", str(db))
    assert code == 0
    assert err.count("sparsebench: warning: experiment 1 was started with other software (sparsebench 0.3.0 -> 9.9") == 1
    code, _, err = cli("run", "--config", str(_toml(tmp_path, tiny_config)), "--no-progress", "--store", str(db))
    assert code == 0 and "warning" not in err  # complete now: nothing is mixed
    assert cli("report", "--store", str(db), "--out", str(tmp_path / "r"))[0] == 0
    assert f"| torch version | {torch.__version__} |" in (tmp_path / "r" / "report.md").read_text()


def _toml(folder, cfg):
    import json

    path = folder / "c.toml"
    # TOML has no null: a field left unset (data_dir) is left out, as a user would write it.
    path.write_text("\n".join(f"{k} = {json.dumps(v)}" for k, v in cfg.to_dict().items() if v is not None))
    return path
