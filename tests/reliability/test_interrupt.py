"""Issue 6.2: Ctrl-C stops within a second or two, says how to resume, exits 130, leaves the store consistent."""

import signal
import sqlite3
import time

import pytest

import sparsebench
from sparsebench import runner
from sparsebench.store import Store, TrialRecord

from .helpers import assert_consistent, assert_same_numbers, finish, resume_in_process, start, stored_trial_count, wait_for

RESUME_HINT = "Resume with the same command"


def interrupt(proc, sig: int = signal.SIGINT) -> tuple[int, str, float]:
    """``sig`` (SIGINT, as Ctrl-C sends it, by default); the exit code, stderr and how long the process took to stop."""
    sent = time.monotonic()
    proc.send_signal(sig)
    code, _, err = finish(proc, timeout=60)
    return code, err, time.monotonic() - sent


def assert_clean_interrupt(code: int, err: str, seconds: float) -> None:
    assert code == 130, err
    assert seconds < 3.0, f"took {seconds:.1f} s to stop"
    assert RESUME_HINT in err and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sparsebench: interrupted;"), err


@pytest.mark.slow
def test_ctrl_c_while_training_and_while_writing_then_resume(tmp_path, reference, capsys, monkeypatch):
    db = tmp_path / "c.db"

    # While training: just after the first group was committed.
    proc = start(db)
    wait_for(lambda: stored_trial_count(db) > 0, proc=proc)
    assert_clean_interrupt(*interrupt(proc))
    stored = assert_consistent(db)
    assert stored >= 1
    with Store(db) as st:
        assert st.claims().empty  # released on the way out: a resume need not wait for a lease

    # While writing: inside save_group's transaction, before COMMIT. It must roll back.
    before = stored_trial_count(db)
    marker = tmp_path / "in-save"
    proc = start(db, hooks={"SB_PAUSE_IN_SAVE": 1, "SB_MARKER": marker})
    wait_for(marker.exists, proc=proc)
    assert "in_transaction=True" in marker.read_text()
    assert_clean_interrupt(*interrupt(proc))
    assert stored_trial_count(db) == before
    assert assert_consistent(db) == stored
    with Store(db) as st:
        assert st.claims().empty

    # Resume with the same command: the uninterrupted result.
    code, out, err = resume_in_process(db, capsys, monkeypatch)
    assert code == 0, err
    assert out == reference.stdout
    assert_same_numbers(db, reference.numbers)


# -- a KeyboardInterrupt at every point of a write transaction, in process ----------------
def _trial(seed: int, epochs: int = 2) -> TrialRecord:
    return TrialRecord(
        method="dense", role="selected", candidate=-1, sparsity=0.0, seed=seed, weight_sparsity=0.0, kept_nodes="[4]",
        n_params=10, mask=None, init_score=1.0, status="done", diverged_epoch=None, epochs=epochs, stop_epoch=None,
        final_test_loss=1.0,
        final_test_acc=0.5, best_epoch=1, best_val_acc=0.5, best_test_loss=1.0, best_test_acc=0.5, train_seconds=0.1,
        curves=[(e + 1, 1.0, 0.5, 1.0, 0.5, None, None) for e in range(epochs)],
    )


class InterruptingConnection:
    """A sqlite3 connection that raises KeyboardInterrupt just before or just after one statement."""

    def __init__(self, con: sqlite3.Connection, statement: str, when: str):
        self._con, self.statement, self.when, self.fired = con, statement, when, False

    def _call(self, method, sql, *args):
        hit = not self.fired and " ".join(sql.split()).upper().startswith(self.statement)
        if hit and self.when == "before":
            self.fired = True
            raise KeyboardInterrupt
        result = getattr(self._con, method)(sql, *args)
        if hit and self.when == "after":
            self.fired = True
            raise KeyboardInterrupt
        return result

    def execute(self, sql, *args):
        return self._call("execute", sql, *args)

    def executemany(self, sql, *args):
        return self._call("executemany", sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize(
    "statement,when,committed",
    [
        ("BEGIN", "after", False),          # the lock taken, the body not yet begun
        ("INSERT INTO TRIALS", "after", False),
        ("INSERT INTO CURVES", "before", False),
        ("INSERT INTO CANDIDATES", "after", False),
        ("DELETE FROM CLAIMS", "after", False),
        ("COMMIT", "before", False),
        ("COMMIT", "after", True),          # committed: whole, and nothing left open
    ],
)
def test_keyboard_interrupt_anywhere_in_save_group_leaves_no_open_transaction(tmp_path, statement, when, committed):
    db = tmp_path / "k.db"
    with Store(db) as st:
        eid = st.experiment_id("h", {"dataset": "digits", "score": "loss"})
        real = st.con
        st.con = proxy = InterruptingConnection(real, statement, when)
        with pytest.raises(KeyboardInterrupt):
            st.save_group(eid, [_trial(0), _trial(1)], claim=("dense", "me"))
        st.con = real
        assert proxy.fired
        assert not st.con.in_transaction
        n = st.con.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        curves = st.con.execute("SELECT COUNT(*) FROM curves").fetchone()[0]
        assert (n, curves) == ((2, 4) if committed else (0, 0))
        st.release_claims("me")  # what the runner does on the way out: must not fail
        assert st.save_group(eid, [_trial(0), _trial(1)]) == (0 if committed else 2)
    with Store(db) as st:
        assert len(st.trials()) == 2


def test_an_interrupted_transaction_left_open_is_rolled_back_on_close(tmp_path):
    db = tmp_path / "o.db"
    with Store(db) as st:
        eid = st.experiment_id("h", {"dataset": "digits", "score": "loss"})
        st.con.execute("BEGIN IMMEDIATE")
        st.con.execute("INSERT INTO claims VALUES (?, 'dense', 'me', 0)", (eid,))
        # as if a KeyboardInterrupt had struck between BEGIN and COMMIT, outside any `with`
    with Store(db) as st:
        assert st.claims().empty
        assert not st.con.in_transaction


def test_ctrl_c_in_the_runner_releases_its_claims_and_raises(tmp_path, tiny_config, monkeypatch):
    db = tmp_path / "r.db"
    real = runner.run_group
    calls = []

    def interrupted_in_second_group(cfg, group, *args, **kwargs):
        calls.append(group.key)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cfg, group, *args, **kwargs)

    monkeypatch.setattr(runner, "run_group", interrupted_in_second_group)
    with pytest.raises(KeyboardInterrupt):
        sparsebench.run(tiny_config, store=db, progress=False)
    with Store(db) as st:
        assert st.claims().empty
        assert len(st.trials()) == runner.plan(tiny_config)[0].n_trials
    monkeypatch.setattr(runner, "run_group", real)
    assert len(sparsebench.run(tiny_config, store=db, progress=False)) == sum(g.n_trials for g in runner.plan(tiny_config))


def test_waiting_for_the_write_lock_still_feels_ctrl_c(tmp_path, monkeypatch):
    """A run waiting for another process's write lock stops at Ctrl-C within a try, not after the busy timeout."""
    import threading

    from sparsebench import store as store_module

    db = tmp_path / "w.db"
    with Store(db):
        pass
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with Store(db) as st:
            timer = threading.Timer(0.3, lambda: signal.raise_signal(signal.SIGINT))
            started = time.monotonic()
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                with st.transaction():
                    pass
            assert time.monotonic() - started < 0.3 + 5 * store_module.BEGIN_TRY_MS / 1000 + 1.0
            assert not st.con.in_transaction
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# -- SIGTERM (timeout, Slurm pre-emption, docker stop): as Ctrl-C, exit 143 ---------------------
def assert_clean_termination(code: int, err: str, seconds: float) -> None:
    assert code == 143, err
    assert seconds < 3.0, f"took {seconds:.1f} s to stop"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sparsebench: terminated;") and RESUME_HINT in err, err
    assert "--store" in lines[0] and "Traceback" not in err


@pytest.mark.slow
def test_sigterm_while_training_and_while_writing_rolls_back_and_says_how_to_resume(tmp_path, reference, capsys, monkeypatch):
    db = tmp_path / "t.db"
    proc = start(db)
    wait_for(lambda: stored_trial_count(db) > 0, proc=proc)
    assert_clean_termination(*interrupt(proc, signal.SIGTERM))
    stored = assert_consistent(db)
    with Store(db) as st:
        assert st.claims().empty

    # Inside save_group's transaction, before COMMIT: rolled back.
    before = stored_trial_count(db)
    marker = tmp_path / "in-save"
    proc = start(db, hooks={"SB_PAUSE_IN_SAVE": 1, "SB_MARKER": marker})
    wait_for(marker.exists, proc=proc)
    assert "in_transaction=True" in marker.read_text()
    assert_clean_termination(*interrupt(proc, signal.SIGTERM))
    assert stored_trial_count(db) == before and assert_consistent(db) == stored

    code, out, err = resume_in_process(db, capsys, monkeypatch)
    assert code == 0, err
    assert out == reference.stdout
    assert_same_numbers(db, reference.numbers)


def test_the_command_line_restores_the_sigterm_handler_and_the_api_leaves_it_alone(tmp_path, tiny_config, cli):
    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        seen = []
        real = runner.run_group

        def run_group(*args, **kwargs):
            seen.append(signal.getsignal(signal.SIGTERM))
            return real(*args, **kwargs)

        runner.run_group, saved = run_group, runner.run_group
        try:
            sparsebench.run(tiny_config, store=tmp_path / "api.db", progress=False)
            assert seen and all(h is mine for h in seen)  # the API: untouched while it runs
            seen.clear()
            code, _, err = cli("run", "--dataset", "digits", "--hidden", "8", "--seeds", "1", "--sparsities", "0.5",
                               "--candidates", "2", "--epochs", "1", "--no-progress", "--store", str(tmp_path / "cli.db"))
            assert code == 0, err
            assert seen and all(h is not mine for h in seen)  # the command line: its own while it runs
        finally:
            runner.run_group = saved
        assert signal.getsignal(signal.SIGTERM) is mine  # and the previous one back after
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_in_process_is_exit_143_with_the_resume_command(tmp_path, tiny_config, monkeypatch, cli):
    real = runner.run_group

    def terminated_in_second_group(cfg, group, *args, **kwargs):
        if group.sparsity is not None:
            signal.raise_signal(signal.SIGTERM)
        return real(cfg, group, *args, **kwargs)

    monkeypatch.setattr(runner, "run_group", terminated_in_second_group)
    db = tmp_path / "s.db"
    argv = ["run", "--dataset", "digits", "--hidden", "8", "--seeds", "1", "--sparsities", "0.5", "--candidates", "2",
            "--epochs", "1", "--no-progress", "--store", str(db)]

    def not_the_cli_handler(signum, frame):
        raise AssertionError("SIGTERM reached the handler the command line was started with")

    previous = signal.signal(signal.SIGTERM, not_the_cli_handler)  # never the default: it would end pytest
    try:
        code, _, err = cli(*argv)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143, err
    assert "sparsebench: terminated;" in err and RESUME_HINT in err and "Traceback" not in err
    with Store(db) as st:
        assert st.claims().empty and len(st.trials()) == 1  # the dense parent; the rest rolled back
