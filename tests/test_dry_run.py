"""``sparsebench run ... --dry-run``: the plan and an estimate, nothing trained, no store created or changed."""

import hashlib
import re

import pytest

import sparsebench
from sparsebench.dry_run import dry_run, group_flops
from sparsebench.plan import plan
from sparsebench.store import Store

FLAGS = ["--dataset", "digits", "--hidden", "24,24", "--seeds", "2", "--sparsities", "0.5,0.9", "--candidates", "6",
         "--epochs", "2", "--batch-size", "64", "--no-progress"]
ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+:\d\d:\d\d|-)\s+(\S+)$")


def table(out: str) -> dict[str, dict]:
    """The plan's rows by group label (and ``total``)."""
    rows = {}
    for line in out.splitlines():
        m = ROW.match(line.strip())
        if m:
            label, trials, stored, candidates, gflops, time, per_epoch = m.groups()
            rows[label] = dict(trials=int(trials), stored=int(stored), candidates=int(candidates), gflops=float(gflops),
                               time=time, per_epoch=per_epoch)
    return rows


def seconds(clock: str) -> int:
    h, m, s = map(int, clock.split(":"))
    return 3600 * h + 60 * m + s


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_dry_run_prints_the_plan_and_an_estimate_and_creates_no_store(tmp_path, cli, tiny_config):
    store = tmp_path / "s.db"
    code, out, err = cli("run", *FLAGS, "--store", str(store), "--dry-run")
    assert code == 0, err
    assert list(tmp_path.iterdir()) == []  # no store, no -wal, no -shm
    rows = table(out)
    groups = plan(tiny_config.design)
    assert list(rows) == [g.label for g in groups] + ["total"]
    for g in groups:
        assert rows[g.label]["trials"] == g.n_trials
        assert rows[g.label]["stored"] == 0
        # random-search scores K candidates per seed at every sparsity; dense and random score none
        assert rows[g.label]["candidates"] == (0 if g.sparsity is None else 6 * 2)
        assert seconds(rows[g.label]["time"]) >= 1  # a time was estimated for every group
    total = rows["total"]
    assert total["trials"] == sum(g.n_trials for g in groups) == 10
    assert total["candidates"] == sum(rows[g.label]["candidates"] for g in groups) == 24
    assert total["gflops"] == pytest.approx(sum(rows[g.label]["gflops"] for g in groups), abs=2e-3)
    assert "dry run: nothing is trained" in out
    assert re.search(r"estimated time left on this machine: \d+:\d\d:\d\d if every network trains all 2 epochs", out)
    assert "an estimate" in out and "based on: 1 and 3 training steps" in out and "timed now on this machine" in out


def test_the_flops_are_the_plans_networks_epochs_and_candidates(tiny_config):
    est = dry_run(tiny_config, store=":memory:", calibrate=False)
    from sparsebench.runner import load_checked_data, parent_family
    from sparsebench.engine.families import engine_for

    data = load_checked_data(tiny_config.data, tiny_config.training.batch_size, sparsebench.runner.resolve_device("cpu"))
    family = parent_family(tiny_config.model, data)
    data = engine_for(family).prepare(data)
    dense, half, tenth = est.groups
    forward = family.flops(None)
    n_train, n_val, n_monitor, n_test = len(data.y_train), len(data.y_val), len(data.y_monitor), len(data.y_test)
    # Each dense network: 2 epochs of 3 forward passes per training example, val + monitor per epoch,
    # val at initialization, test twice (final and best).
    assert dense.flops == forward * 2 * (2 * (3 * n_train + n_val + n_monitor) + n_val + 2 * n_test)
    sparse = family.flops(family.node_space.kept(0.9))
    per_network = 2 * (3 * n_train + n_val + n_monitor) + n_val + 2 * n_test
    assert tenth.flops == sparse * (4 * per_network + 12 * n_val)  # 4 trials (random, random-search; 2 seeds); 12 candidates scored on validation
    assert half.flops == group_flops(plan(tiny_config.design)[1], [6], family, data, 2) > tenth.flops
    assert est.seconds is None and all(g.seconds is None for g in est.groups)


def test_a_dry_run_shows_what_an_existing_store_holds_and_leaves_it_unchanged(tmp_path, cli):
    store = tmp_path / "s.db"
    code, _, err = cli("run", *FLAGS, "--store", str(store))
    assert code == 0, err
    with Store(store) as st, st.transaction():
        st.con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE sparsity = 0.9)")
        st.con.execute("DELETE FROM candidates WHERE sparsity = 0.9")
        st.con.execute("DELETE FROM trials WHERE sparsity = 0.9")
    before = {p.name: digest(p) for p in tmp_path.iterdir()}
    code, out, err = cli("run", *FLAGS, "--store", str(store), "--dry-run")
    assert code == 0, err
    assert {p.name: digest(p) for p in tmp_path.iterdir()} == before  # not a byte changed, nothing created beside it
    rows = table(out)
    assert (rows["dense"]["stored"], rows["s=0.5"]["stored"], rows["s=0.9"]["stored"]) == (2, 4, 0)
    assert rows["total"]["stored"] == 6
    assert "experiment 1 in the store: 6 of 10 trials stored" in out
    # Only the group left to run takes time; the stored ones none.
    assert seconds(rows["dense"]["time"]) == seconds(rows["s=0.5"]["time"]) == 0
    assert seconds(rows["total"]["time"]) == seconds(rows["s=0.9"]["time"]) >= 1


def test_a_dry_run_refuses_a_bad_config_in_one_line_and_creates_nothing(tmp_path, cli):
    code, out, err = cli("run", *FLAGS, "--batch-size", "5000", "--store", str(tmp_path / "s.db"), "--dry-run")
    assert code == 2 and out == ""
    assert err.startswith("sparsebench: error: batch_size") and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_dry_run_names_the_methods_whose_selection_cost_it_leaves_out(tmp_path, cli):
    code, out, err = cli("run", *FLAGS, "--methods", "dense,random,snip", "--store", str(tmp_path / "s.db"), "--dry-run")
    assert code == 0, err
    assert "not estimated: the cost of choosing masks for snip" in out
    assert table(out)["total"]["candidates"] == 0


def test_with_patience_the_estimate_is_a_range_down_to_the_earliest_stop(tmp_path, cli):
    code, out, err = cli("run", *FLAGS, "--epochs", "20", "--patience", "4", "--store", str(tmp_path / "s.db"), "--dry-run")
    assert code == 0, err
    most = re.search(r"estimated time left on this machine: (\d+:\d\d:\d\d) if every network trains all 20 epochs", out)
    least = re.search(r"at least (\d+:\d\d:\d\d) if the stopping rule stops every network at its earliest, epoch 5", out)
    assert most and least and seconds(least.group(1)) <= seconds(most.group(1))
    est = dry_run(sparsebench.ExperimentConfig(dataset="digits", hidden=(24, 24), seeds=(0, 1), sparsities=(0.5, 0.9),
                                               candidates=6, epochs=20, patience=4, batch_size=64), store=":memory:")
    assert est.min_epochs == 5
    per_epoch = sum(g.epoch_seconds for g in est.groups)
    assert est.seconds_at_least == pytest.approx(est.seconds - 15 * per_epoch)  # 15 epochs fewer for every network


def test_the_searches_selection_cost_is_in_the_estimate(tiny_config):
    """evolution's K scored candidates and trained-search's K x E network-epochs count in candidates, FLOPs and time."""
    base = dict(dataset="digits", hidden=(24, 24), seeds=(0, 1), sparsities=(0.5,), candidates=6, epochs=2, batch_size=64)
    plain = dry_run(sparsebench.ExperimentConfig(**base, methods={"random": {}}), store=":memory:")
    evo = dry_run(sparsebench.ExperimentConfig(**base, methods={"random": {}, "evolution": {}}), store=":memory:")
    ts = dry_run(sparsebench.ExperimentConfig(**base, methods={"random": {}, "ts": {"method": "trained-search", "candidates": 4,
                                                                                  "epochs": 3}}), store=":memory:")
    assert evo.unestimated == ts.unestimated == ()
    assert evo.groups[0].candidates == 12 and ts.groups[0].candidates == 0  # evolution: K=6 per seed
    from sparsebench.runner import load_checked_data, parent_family
    from sparsebench.engine.families import engine_for

    cfg = sparsebench.ExperimentConfig(**base)
    data = load_checked_data(cfg.data, 64, sparsebench.runner.resolve_device("cpu"))
    family = parent_family(cfg.model, data)
    data = engine_for(family).prepare(data)
    forward = family.flops(family.node_space.kept(0.5))
    n_train, n_val = len(data.y_train), len(data.y_val)
    per_network = 2 * (3 * n_train + n_val + len(data.y_monitor)) + n_val + 2 * len(data.y_test)
    # trained-search's own trial trains like any network; its search adds 4 x 3 network-epochs per seed (no test).
    assert ts.groups[0].flops == forward * (4 * per_network + 2 * 12 * (3 * n_train + n_val))
    # Its time: the brief training of 12 network-epochs per seed costs several times the trial's own 2 epochs.
    assert ts.groups[0].seconds > 2 * plain.groups[0].seconds
