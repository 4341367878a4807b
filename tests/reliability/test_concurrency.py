"""Issue 6.3: runs of one config on one store at once share the work through claims with leases."""

import os
import socket
import subprocess
import sys
import time

import pytest

import sparsebench
from sparsebench import runner
from sparsebench.errors import ConfigError, SparsebenchWarning
from sparsebench.store import Store, owner_is_gone

from .helpers import GROUP_KEYS, assert_consistent, assert_same_numbers, finish, start


@pytest.mark.slow
def test_two_runs_at_once_share_the_work_and_both_print_the_whole_result(tmp_path, reference):
    db = tmp_path / "shared.db"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start(db, hooks={"SB_TRAINED_LOG": log}) for log in logs]
    results = [finish(p) for p in procs]
    for code, out, err in results:
        assert code == 0, err
        assert out == reference.stdout  # each prints the summary of the complete experiment
        assert "Traceback" not in err
    trained = [log.read_text().split() if log.exists() else [] for log in logs]
    assert sorted(trained[0] + trained[1]) == sorted(GROUP_KEYS), trained  # each group trained once, by one run
    assert assert_consistent(db) == len(GROUP_KEYS)
    assert_same_numbers(db, reference.numbers)
    with Store(db) as st:
        assert st.claims().empty


# -- claims, in process, on a clock the test sets --------------------------------------
KEYS = ["dense", "sparsity=0.5", "sparsity=0.9"]
LEASE = 10.0


@pytest.fixture
def two_stores(tmp_path):
    db = tmp_path / "c.db"
    with Store(db) as a, Store(db) as b:
        eid = a.experiment_id("h", {"dataset": "digits", "score": "loss"})
        yield a, b, eid


def test_a_claimed_group_is_not_claimed_by_another_run_until_its_lease_expires(two_stores):
    a, b, eid = two_stores
    pending = lambda: KEYS  # noqa: E731
    assert a.claim_next(eid, "host:1:a", LEASE, pending, now=100).key == "dense"
    assert b.claim_next(eid, "host:2:b", LEASE, pending, now=100).key == "sparsity=0.5"
    assert a.claim_next(eid, "host:1:a", LEASE, lambda: KEYS[1:], now=101).key == "sparsity=0.9"
    # Everything is held by live runs: nothing to claim, and when to look again.
    blocked = b.claim_next(eid, "host:2:b", LEASE, lambda: ["dense", "sparsity=0.9"], now=102)
    assert blocked.key is None and blocked.pending == ("dense", "sparsity=0.9") and blocked.retry_at == 110
    # A renews one lease; the other expires and is taken over.
    assert a.renew_claim(eid, "dense", "host:1:a", LEASE, now=105)
    assert b.claim_next(eid, "host:2:b", LEASE, lambda: ["dense", "sparsity=0.9"], now=111.5).key == "sparsity=0.9"
    assert not a.renew_claim(eid, "sparsity=0.9", "host:1:a", LEASE, now=112)  # lost it
    claims = a.claims(eid).set_index("group_key")
    assert claims.loc["dense", "owner"] == "host:1:a" and claims.loc["dense", "expires_at"] == 115
    assert claims.loc["sparsity=0.9", "owner"] == "host:2:b"


def test_saving_a_group_releases_its_claim_in_the_same_transaction(two_stores):
    a, b, eid = two_stores
    a.claim_next(eid, "host:1:a", LEASE, lambda: KEYS, now=0)
    b.claim_next(eid, "host:2:b", LEASE, lambda: KEYS, now=0)
    a.save_group(eid, [], claim=("sparsity=0.5", "host:1:a"))  # not a's claim: nothing released
    assert len(a.claims(eid)) == 2
    a.save_group(eid, [], claim=("dense", "host:1:a"))
    assert list(a.claims(eid).owner) == ["host:2:b"]
    b.release_claims("host:2:b")
    assert a.claims(eid).empty


def test_a_stored_group_is_never_claimed(two_stores):
    a, _, eid = two_stores
    assert a.claim_next(eid, "host:1:a", LEASE, lambda: [], now=0).key is None
    assert a.claim_next(eid, "host:1:a", LEASE, lambda: [], now=0).pending == ()


def test_a_claim_of_a_dead_process_on_this_machine_is_taken_over_at_once(two_stores):
    a, b, eid = two_stores
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    assert owner_is_gone(f"{host}:{gone.pid}:x")
    assert not owner_is_gone(f"{host}:{os.getpid()}:x") and not owner_is_gone(f"{host}:{os.getppid()}:x")
    assert not owner_is_gone(f"another-host:{gone.pid}:x")  # another machine: only its lease tells
    assert not owner_is_gone("garbage") and not owner_is_gone(f"{host}:{'9' * 40}:x")
    a.claim_next(eid, f"{host}:{gone.pid}:x", LEASE, lambda: ["dense"], now=0)
    assert b.claim_next(eid, "host:2:b", LEASE, lambda: ["dense"], now=1).key == "dense"


def test_a_run_waits_for_live_claims_then_takes_over_when_their_lease_expires(tmp_path, tiny_config, monkeypatch):
    """Another machine's run holds every group and dies: this run waits no longer than the lease."""
    db = tmp_path / "w.db"
    monkeypatch.setenv(runner.LEASE_ENV, "0.4")
    keys = [g.key for g in runner.plan(tiny_config)]
    with Store(db) as st:
        eid = st.experiment_id(tiny_config.config_hash(), tiny_config.to_dict())
        for key in keys:
            st.claim_next(eid, "another-host:4242:x", 0.8, lambda: [key])
    started = time.monotonic()
    # The experiment was created here without its data's fingerprint: the run records it, and says so.
    with pytest.warns(SparsebenchWarning, match="before data fingerprints were recorded"):
        trials = sparsebench.run(tiny_config, store=db, progress=False)
    waited = time.monotonic() - started
    assert len(trials) == sum(g.n_trials for g in runner.plan(tiny_config))
    assert waited >= 0.7, "took over live claims before they expired"
    assert waited < 0.8 + 30
    with Store(db) as st:
        assert st.claims().empty


def test_a_run_takes_the_free_groups_first(tmp_path, tiny_config, monkeypatch):
    db = tmp_path / "f.db"
    groups = runner.plan(tiny_config)
    trained = []
    real = runner.run_group
    monkeypatch.setattr(runner, "run_group", lambda cfg, group, *a, **k: trained.append(group.key) or real(cfg, group, *a, **k))
    with Store(db) as st:
        eid = st.experiment_id(tiny_config.config_hash(), tiny_config.to_dict())
        # Long enough to outlast training the other groups on a loaded machine, so
        # that the run takes them first; then it expires and the run takes this one.
        st.claim_next(eid, "another-host:1:x", 8.0, lambda: [groups[0].key])
    with pytest.warns(SparsebenchWarning, match="before data fingerprints were recorded"):
        sparsebench.run(tiny_config, store=db, progress=False)
    assert trained == [g.key for g in groups[1:]] + [groups[0].key]


def test_the_lease_is_renewed_while_a_group_trains(tmp_path):
    db = tmp_path / "l.db"
    with Store(db) as st:
        eid = st.experiment_id("h", {"dataset": "digits", "score": "loss"})
        st.claim_next(eid, "me", 0.2, lambda: ["dense"])
        first = float(st.claims().expires_at.iloc[0])
        with runner.LeaseKeeper(str(db), eid, "dense", "me", 0.2) as keeper:
            time.sleep(0.6)
        assert keeper.renewals >= 3 and not keeper.lost
        renewed = float(st.claims().expires_at.iloc[0])
        assert renewed > first + 0.3
        time.sleep(0.2)
        assert float(st.claims().expires_at.iloc[0]) == renewed  # stopped with the group


@pytest.mark.parametrize("value,expected", [("", runner.LEASE_SECONDS), ("2.5", 2.5), (" 7 ", 7.0)])
def test_the_lease_comes_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(runner.LEASE_ENV, value)
    assert runner.lease_seconds() == expected


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "1e999"])
def test_a_bad_lease_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, value):
    from sparsebench.cli import main

    monkeypatch.setenv(runner.LEASE_ENV, value)
    with pytest.raises(ConfigError):
        runner.lease_seconds()
    db = tmp_path / "s.db"
    code = main(["run", "--dataset", "digits", "--hidden", "4", "--seeds", "1", "--sparsities", "0.5", "--epochs", "1",
                 "--candidates", "2", "--no-progress", "--store", str(db)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and runner.LEASE_ENV in err
    assert not db.exists()
