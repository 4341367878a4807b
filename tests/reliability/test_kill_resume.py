"""Issue 6.1: a run SIGKILLed at any moment and started again ends with exactly the uninterrupted numbers."""

import random
import signal
import time

import pytest

from .helpers import (
    N_TRIALS, assert_consistent, assert_same_numbers, export_csv, kill, resume_in_process, start, stored_trial_count, wait_for,
)


@pytest.mark.slow
def test_sigkill_at_several_moments_then_resume_gives_the_uninterrupted_numbers(tmp_path, reference, capsys, monkeypatch):
    db = tmp_path / "cut.db"
    rng = random.Random(6)  # the delays are drawn, but the same in every CI run
    stored = []

    # The engine trains this config's groups in milliseconds: each group is made
    # to last longer, so that the kills below land in the middle of the run.
    slow = {"SB_GROUP_SECONDS": 0.3}

    # 1. After a random short delay: while starting up, or in the first groups.
    proc = start(db, hooks=slow)
    time.sleep(rng.uniform(0.5, 2.5))
    code, _, _ = kill(proc)
    assert code == -signal.SIGKILL
    stored.append(assert_consistent(db) if db.exists() else 0)

    # 2. Just after a group was committed: the next one is being selected or trained.
    before = stored_trial_count(db)
    proc = start(db, hooks=slow)
    wait_for(lambda: stored_trial_count(db) > before, proc=proc)
    code, _, _ = kill(proc)
    assert code == -signal.SIGKILL  # killed mid-run, not after it ended
    stored.append(assert_consistent(db))
    assert stored[-1] >= 1

    # 3. While writing: inside save_group's transaction, every trial of the group
    #    inserted, not yet committed. Nothing of that group may survive.
    before = stored_trial_count(db)
    marker = tmp_path / "in-save"
    proc = start(db, hooks={"SB_PAUSE_IN_SAVE": 1, "SB_MARKER": marker})
    wait_for(marker.exists, proc=proc)
    assert "in_transaction=True" in marker.read_text()
    kill(proc)
    assert stored_trial_count(db) == before  # the transaction was not committed
    stored.append(assert_consistent(db))
    assert stored[-1] == stored[-2]

    # Resume with the same command: it finishes, and the numbers are the uninterrupted run's.
    code, out, err = resume_in_process(db, capsys, monkeypatch)
    assert code == 0, err
    assert stored_trial_count(db) == N_TRIALS
    assert assert_consistent(db) == 4
    assert out == reference.stdout  # the same summary
    assert_same_numbers(db, reference.numbers)
    assert export_csv(db, tmp_path / "cut.csv") == reference.export
    assert export_csv(db, tmp_path / "cut_curves.csv", "--curves") == reference.export_curves


def test_a_group_is_stored_whole_or_not_at_all(tmp_path, tiny_config):
    """The atomicity itself, in process: a failure while a group is written leaves nothing of it."""
    import sparsebench
    from sparsebench import runner
    from sparsebench.store import Store

    db = tmp_path / "a.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    with Store(db) as st:
        eid = int(st.experiments().experiment_id.iloc[0])
        trials_before = len(st.trials(eid))
        candidates_before = len(st.candidates(eid))
        curves_before = len(st.curves(eid))
        group = runner.plan(tiny_config)[-1]
        with st.transaction():
            st.con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE sparsity = ?)", (group.sparsity,))
            st.con.execute("DELETE FROM candidates WHERE sparsity = ?", (group.sparsity,))
            st.con.execute("DELETE FROM trials WHERE sparsity = ?", (group.sparsity,))
        # Recompute the group, then fail after half of its trials were inserted.
        from sparsebench.data.registry import load_dataset
        from sparsebench.models.mlp import MLPSpec

        data = load_dataset(tiny_config.dataset, tiny_config.data_seed, tiny_config.val_fraction)
        spec = MLPSpec(data.n_features, tiny_config.hidden, data.n_classes, tiny_config.activation)
        trials, candidates = runner.run_group(tiny_config.training, group, data, spec, torch_cpu(), search=tiny_config.search,
                                              engine=tiny_config.engine)

        def half_then_fail():
            yield from trials[: len(trials) // 2]
            raise OSError("disk unplugged")

        with pytest.raises(OSError):
            st.save_group(eid, half_then_fail(), candidates)
        assert not st.con.in_transaction
        assert len(st.trials(eid)) == trials_before - group.n_trials
        assert st.save_group(eid, trials, candidates) == group.n_trials
        assert (len(st.trials(eid)), len(st.candidates(eid)), len(st.curves(eid))) == (trials_before, candidates_before, curves_before)
        assert st.save_group(eid, trials, candidates) == 0  # stored once, however often it is saved


def torch_cpu():
    import torch

    return torch.device("cpu")
