"""What the reliability tests share: the tiny experiment, running it as a user does, comparing stores.

The experiment is small enough that one uninterrupted `sparsebench run` takes a
few seconds, most of it importing torch: 4 work groups (dense; sparsities 0.5,
0.75, 0.9), 21 trials of 4 epochs.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

import sparsebench
from sparsebench import ExperimentConfig
from sparsebench.plan import plan

RUN_ARGS = [
    "run", "--dataset", "digits", "--hidden", "16,16", "--seeds", "3", "--sparsities", "0.5,0.75,0.9",
    "--candidates", "5", "--epochs", "4", "--patience", "1", "--monitor-fraction", "0.5", "--no-progress",
]
# A patience of 1 stops some networks before the last epoch, so that resuming is
# checked with the stopping rule and the monitoring split at work.
CONFIG = ExperimentConfig(dataset="digits", hidden=(16, 16), seeds=(0, 1, 2), sparsities=(0.5, 0.75, 0.9), candidates=5, epochs=4,
                          patience=1, monitor_fraction=0.5)
GROUPS = plan(CONFIG)
GROUP_KEYS = [g.key for g in GROUPS]
N_TRIALS = sum(g.n_trials for g in GROUPS)

#: Columns that differ between two runs of the same config whatever happens.
VOLATILE = ["train_seconds", "selection_seconds", "trial_id"]
TRIAL_KEY = ["experiment_id", "method", "role", "candidate", "sparsity", "seed"]

# One torch thread per process: two runs at once on a small CI machine must not
# oversubscribe its cores (and every run in these tests uses the same setting).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

# The `sparsebench` entry point, with test hooks from the environment:
#   SB_PAUSE_IN_SAVE=N  the Nth save_group of this process writes every trial of
#                       its group, writes SB_MARKER (whether a transaction is
#                       open), then sleeps inside the transaction, before COMMIT;
#   SB_TRAINED_LOG=F    appends the key of each group this process trains to F;
#   SB_GROUP_SECONDS=S  each group takes S seconds longer (after its training),
#                       so that a kill after a delay lands in the middle of a run.
DRIVER = '''
import os, sys, time
from sparsebench import runner, store
from sparsebench.cli import main

pause_at = int(os.environ.get("SB_PAUSE_IN_SAVE", "0"))
if pause_at:
    real_save, calls = store.Store.save_group, [0]

    def save_group(self, experiment_id, trials, candidates=(), claim=None):
        calls[0] += 1
        if calls[0] != pause_at:
            return real_save(self, experiment_id, trials, candidates, claim)

        def trials_then_pause():
            yield from trials
            # Written aside, then renamed: the test waits for the marker to exist and
            # must never read it half-written.
            marker = os.environ["SB_MARKER"]
            with open(marker + ".part", "w") as f:
                f.write(f"in_transaction={self.con.in_transaction} trials={len(trials)}")
            os.replace(marker + ".part", marker)
            time.sleep(60)

        return real_save(self, experiment_id, trials_then_pause(), candidates, claim)

    store.Store.save_group = save_group

log = os.environ.get("SB_TRAINED_LOG")
group_seconds = float(os.environ.get("SB_GROUP_SECONDS", "0"))
if log or group_seconds:
    real_run_group = runner.run_group

    def run_group(cfg, group, *args, **kwargs):
        if log:
            with open(log, "a") as f:
                f.write(group.key + "\\n")
        result = real_run_group(cfg, group, *args, **kwargs)
        time.sleep(group_seconds)
        return result

    runner.run_group = run_group

sys.exit(main(sys.argv[1:]))
'''


def driver(tmp: Path) -> Path:
    path = tmp / "sparsebench_driver.py"
    if not path.exists():
        path.write_text(DRIVER)
    return path


def start(db: Path, *extra: str, hooks: dict | None = None, args: list[str] | None = None) -> subprocess.Popen:
    """``sparsebench run ... --store db`` as a separate process (through the hook driver if ``hooks``)."""
    argv = [*(args or RUN_ARGS), *extra, "--store", str(db)]
    if hooks is None:
        command = [sys.executable, "-m", "sparsebench.cli", *argv]
    else:
        command = [sys.executable, str(driver(db.parent)), *argv]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, **{k: str(v) for k, v in (hooks or {}).items()}})


def resume_in_process(db: Path, capsys, monkeypatch) -> tuple[int, str, str]:
    """The same command again, through the CLI's own code in this process (no second torch
    import to wait for), with the same thread count as the subprocesses."""
    from sparsebench.cli import main

    monkeypatch.setenv("OMP_NUM_THREADS", ENV["OMP_NUM_THREADS"])
    capsys.readouterr()
    code = main([*RUN_ARGS, "--store", str(db)])
    out, err = capsys.readouterr()
    return code, out, err


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> tuple[int, str, str]:
    """Send ``sig`` and reap the process (a zombie would still look alive to the claims)."""
    proc.send_signal(sig)
    return finish(proc, timeout=60)


def wait_for(condition, timeout: float = 120, interval: float = 0.02, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        # The condition may have come true just before the process ended: ask once more.
        if proc is not None and proc.poll() is not None and not condition():
            raise AssertionError(f"the process ended first: {proc.returncode}\n{proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)


def stored_trial_count(db: Path) -> int:
    """Trials committed so far, read without taking any lock a writer needs (0 before the store exists)."""
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0  # not created yet


def stored_numbers(db: Path) -> dict[str, pd.DataFrame]:
    """Everything a run stores that must not depend on interruptions: trials, curves, candidates."""
    trials = sparsebench.load_results(db)
    curves = sparsebench.load_curves(db).merge(trials[["trial_id", "candidate"]], on="trial_id")
    candidates = sparsebench.api.load_candidates(db)
    return {
        "trials": trials.drop(columns=VOLATILE).sort_values(TRIAL_KEY).reset_index(drop=True),
        "curves": curves.drop(columns=["trial_id"]).sort_values([*TRIAL_KEY, "epoch"]).reset_index(drop=True),
        "candidates": candidates.sort_values(list(candidates.columns[:5])).reset_index(drop=True),
    }


def assert_same_numbers(db: Path, reference: dict[str, pd.DataFrame]) -> None:
    got = stored_numbers(db)
    for name, frame in reference.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True, obj=name)


def export_csv(db: Path, out: Path, *extra: str) -> str:
    """`sparsebench export --format csv` of ``db`` (in process: the CLI's code, without a second
    torch import), as text, with the volatile columns left out."""
    from sparsebench.cli import main

    assert main(["export", "--store", str(db), "--format", "csv", "--out", str(out), *extra]) == 0
    return without_columns(out.read_text(), VOLATILE)


def without_columns(text: str, drop: list[str]) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    keep = [i for i, name in enumerate(rows[0]) if name not in drop]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([[row[i] for i in keep] for row in rows])
    return buffer.getvalue()


def assert_consistent(db: Path, config: ExperimentConfig = CONFIG) -> int:
    """The store's invariants at any moment: every work group stored whole or not at all,
    no trial twice, every trial with all its curve rows, candidates only with their group.

    Returns the number of groups stored.
    """
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "trials" not in tables:
            # Killed while the store was being created: its schema is written in one transaction,
            # so the file holds no table at all, never part of the schema.
            assert tables == set(), f"a store with part of its schema: {sorted(tables)}"
            return 0
        keys = con.execute("SELECT experiment_id, method, role, candidate, sparsity, seed, COUNT(*) FROM trials "
                           "GROUP BY 1, 2, 3, 4, 5, 6 HAVING COUNT(*) > 1").fetchall()
        assert keys == [], f"trials stored twice: {keys}"
        rows = con.execute("SELECT t.id, t.method, t.sparsity, t.status, t.diverged_epoch, COALESCE(t.stop_epoch, t.epochs), "
                           "(SELECT COUNT(*) FROM curves c WHERE c.trial_id = t.id), "
                           "(SELECT MIN(epoch) FROM curves c WHERE c.trial_id = t.id), "
                           "(SELECT MAX(epoch) FROM curves c WHERE c.trial_id = t.id) FROM trials t").fetchall()
        for _id, method, sparsity, status, diverged_epoch, epochs, n, first, last in rows:
            expected = diverged_epoch if status == "diverged" else epochs
            assert (n, first, last) == (expected, 1, expected), f"trial {_id} has curves {n} ({first}..{last}), expected {expected}"
        orphans = con.execute("SELECT COUNT(*) FROM curves WHERE trial_id NOT IN (SELECT id FROM trials)").fetchone()[0]
        assert orphans == 0
        stored = 0
        for group in plan(config):
            if group.sparsity is None:
                n = con.execute("SELECT COUNT(*) FROM trials WHERE method = 'dense'").fetchone()[0]
                cands = 0
            else:
                n = con.execute("SELECT COUNT(*) FROM trials WHERE method != 'dense' AND sparsity = ?", (group.sparsity,)).fetchone()[0]
                cands = con.execute("SELECT COUNT(*) FROM candidates WHERE sparsity = ?", (group.sparsity,)).fetchone()[0]
            assert n in (0, group.n_trials), f"group {group.label} stored in part: {n} of {group.n_trials} trials"
            if n == 0:
                assert cands == 0, f"candidates of {group.label} stored without its trials"
            elif group.sparsity is not None:
                assert cands > 0, f"trials of {group.label} stored without its candidates"
            stored += n > 0
        return stored
    finally:
        con.close()
