"""Issue 6.4: a learning rate that blows up some trials: the run finishes, and diverged trials are counted, not averaged."""

import math

import pytest

import sparsebench
from sparsebench.analysis import divergence_counts, summary_table
from sparsebench.cli import main

# SGD (momentum 0.9) on digits: lr 10 and 100 still give finite (useless) losses; at 1000 some
# trials' losses overflow and some do not, which is the case worth testing.
DIVERGING = ["run", "--dataset", "digits", "--hidden", "16,16", "--seeds", "3", "--sparsities", "0.5,0.9", "--candidates", "3",
             "--epochs", "3", "--optimizer", "sgd", "--lr", "1000", "--no-progress"]


@pytest.fixture(scope="module")
def diverging_run(tmp_path_factory):
    import contextlib
    import io

    db = tmp_path_factory.mktemp("div") / "d.db"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*DIVERGING, "--store", str(db)])
    return db, code, out.getvalue(), err.getvalue()


@pytest.fixture
def diverged_store(diverging_run):
    return diverging_run[0]


def test_a_diverging_run_finishes_with_exit_0_and_says_so(diverging_run):
    diverged_store, code, out, err = diverging_run
    assert code == 0, err
    assert "Traceback" not in err
    trials = sparsebench.load_results(diverged_store)
    diverged = trials[trials.status == "diverged"]
    assert 0 < len(diverged) < len(trials)  # some, not all
    assert diverged.diverged_epoch.between(1, 3).all()
    assert diverged[["final_test_acc", "final_test_loss", "best_test_acc"]].isna().all().all()
    curves = sparsebench.load_curves(diverged_store)
    per_trial = curves.groupby("trial_id").epoch.max()
    assert (per_trial.loc[diverged.trial_id].to_numpy() == diverged.diverged_epoch.to_numpy()).all()  # curves stop there
    assert "diverged" in out
    for line in out.splitlines():
        if "diverged)" in line:
            n = int(line.split("(")[-1].split()[0])
            assert n >= 1


def test_the_analysis_counts_diverged_trials_instead_of_averaging_nans(diverged_store):
    trials = sparsebench.load_results(diverged_store)
    selected = trials[trials.role == "selected"]
    counts = divergence_counts(trials).set_index(["sparsity", "method"])
    table = summary_table(trials).set_index(["sparsity", "method"])
    assert counts.n_diverged.sum() == (selected.status == "diverged").sum() > 0
    for (sparsity, method), g in selected.groupby(["sparsity", "method"]):
        done = g[g.status == "done"].final_test_acc
        row = table.loc[(sparsity, method)]
        assert row.n_diverged == (g.status == "diverged").sum() == counts.loc[(sparsity, method)].n_diverged
        assert row.n == len(done)
        if len(done):
            assert row.mean_test_acc == pytest.approx(done.mean())  # the finished trials only, never a NaN
        else:
            assert row.n == 0
    assert not any(math.isnan(x) for x in table[table.n > 0].mean_test_acc)
