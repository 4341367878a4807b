import os
import subprocess
import sys
import textwrap

import pytest


FAST = ["--dataset", "digits", "--hidden", "16,16", "--seeds", "1", "--sparsities", "0.5", "--candidates", "3", "--epochs", "1", "--no-progress"]


BAD_INPUTS = [
    (["--sparsities", "0.5,1.0"], "sparsity"),
    (["--sparsities", "-0.1"], "sparsity"),
    (["--sparsities", "0.5,abc"], "sparsities"),
    (["--sparsities", ""], "sparsities"),
    (["--candidates", "0"], "candidates"),
    (["--epochs", "0"], "epochs"),
    (["--epochs", "two"], "epochs"),
    (["--seeds", "0"], "seeds"),
    (["--dataset", "cifar"], "dataset"),
    (["--methods", "random,nope"], "method"),
    (["--methods", "nosuchmodule_xyz:Thing"], "method"),
    (["--preset", "huge"], "preset"),
    (["--optimizer", "lbfgs"], "optimizer"),
    (["--engine", "turbo"], "engine"),
]


@pytest.mark.parametrize("args,parameter", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_naming_the_parameter(tmp_path, cli, args, parameter):
    db = tmp_path / "s.db"
    code, out, err = cli("run", *FAST, *args, "--store", str(db))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and parameter in lines[0] and "Traceback" not in err
    assert "allowed" in lines[0] or "invalid choice" in lines[0]
    assert not db.exists()  # nothing stored for a refused config


@pytest.mark.parametrize(
    "toml,parameter",
    [
        ("epochs = [", "not valid TOML"),
        ("colour = 'red'", "config key"),
        ("epochs = '3'", "epochs"),
        ("sparsities = [0.5, 2]", "sparsity"),
        ("sparsities = []", "sparsities"),
        ("candidates = 0", "candidates"),
        ("seeds = -1", "seeds"),
    ],
)
def test_bad_config_file_exits_2_with_one_line(tmp_path, cli, toml, parameter):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    code, _, err = cli("run", "--config", str(cfg), "--store", str(tmp_path / "s.db"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and parameter in err


def test_config_file_and_flags_override_in_order(tmp_path, cli):
    cfg = tmp_path / "c.toml"
    cfg.write_text('preset = "quick"\ndataset = "digits"\nhidden = [16]\nseeds = 2\nsparsities = [0.5]\ncandidates = 3\nepochs = 5\n')
    code, out, _ = cli("run", "--config", str(cfg), "--epochs", "1", "--no-progress", "--store", str(tmp_path / "s.db"))
    assert code == 0
    from sparsebench import list_experiments

    row = list_experiments(tmp_path / "s.db").iloc[0]
    assert row.epochs == 1 and row.seeds == 2 and row.dataset == "digits"


def test_run_prints_summary_and_list_shows_progress(tmp_path, cli):
    db = str(tmp_path / "s.db")
    code, out, _ = cli("run", *FAST, "--store", db)
    assert code == 0
    assert "random-search" in out and "test acc" in out and "±" in out
    code, out, _ = cli("list", "--store", db)
    assert code == 0 and "3/3" in out and "digits" in out


def test_list_of_a_missing_store_is_an_error(tmp_path, cli):
    code, _, err = cli("list", "--store", str(tmp_path / "none.db"))
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("kind", ["text", "other-sqlite", "truncated", "newer-schema", "garbage-after-header"])
def test_foreign_or_broken_store_is_refused_and_left_untouched(tmp_path, cli, kind):
    db = tmp_path / "s.db"
    if kind == "text":
        db.write_text("my thesis notes\n")
    elif kind == "other-sqlite":
        import sqlite3

        con = sqlite3.connect(db)
        con.execute("CREATE TABLE t (x)")
        con.execute("INSERT INTO t VALUES (1)")
        con.commit()
        con.close()
    else:
        assert cli("run", *FAST, "--store", str(db))[0] == 0
        import sqlite3

        con = sqlite3.connect(db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode=DELETE")
        if kind == "newer-schema":
            con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
            con.commit()
        con.close()
        data = db.read_bytes()
        if kind == "truncated":
            db.write_bytes(data[: len(data) // 2])
        elif kind == "garbage-after-header":
            db.write_bytes(data[:100] + bytes(range(256)) * ((len(data) - 100) // 256 + 1))
    before = db.read_bytes()
    siblings = set(tmp_path.iterdir())
    code, _, err = cli("run", *FAST, "--epochs", "2", "--store", str(db))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "store" in err and "Traceback" not in err
    assert db.read_bytes() == before
    assert set(tmp_path.iterdir()) == siblings  # no -wal/-journal left beside it


def test_user_method_in_a_temporary_module_runs_through_the_cli(tmp_path, cli):
    (tmp_path / "my_method.py").write_text(
        textwrap.dedent(
            """
            from sparsebench import Method, Selection
            from sparsebench.models import NodeMask, kept_count

            class FirstNodes(Method):
                def select(self, ctx):
                    keep = [list(range(kept_count(w, ctx.sparsity))) for w in ctx.spec.hidden]
                    return Selection(NodeMask.from_indices(keep, ctx.spec.hidden))
            """
        )
    )
    db = tmp_path / "u.db"
    env = {**os.environ, "PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "sparsebench.cli", "run", *FAST, "--methods", "random,my_method:FirstNodes", "--store", str(db)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "my_method:FirstNodes" in proc.stdout
    import sparsebench

    trials = sparsebench.load_results(db)
    mine = trials[trials.method == "my_method:FirstNodes"]
    assert len(mine) == 1
    mask = sparsebench.load_mask(db, int(mine.trial_id.item()))
    assert mask.kept == ((0, 1, 2, 3, 4, 5, 6, 7), (0, 1, 2, 3, 4, 5, 6, 7))


def test_a_method_written_against_the_family_interface_runs_through_the_cli(tmp_path):
    # The README's plugin example: incoming weights per node, node space widths; no MLP in sight.
    (tmp_path / "norm_method.py").write_text(
        textwrap.dedent(
            """
            from sparsebench import Method, Selection
            from sparsebench.models import NodeMask

            class LargestIncomingNorm(Method):
                def select(self, ctx):
                    keep = [w.norm(dim=1).topk(k).indices.tolist()
                            for w, k in zip(ctx.parent.incoming_weights(), ctx.node_space.kept(ctx.sparsity))]
                    return Selection(NodeMask.from_indices(keep, ctx.node_space.widths))
            """
        )
    )
    db = tmp_path / "n.db"
    env = {**os.environ, "PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "sparsebench.cli", "run", *FAST, "--methods", "random,norm_method:LargestIncomingNorm", "--store", str(db)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    import sparsebench
    from sparsebench.models import MLP

    trials = sparsebench.load_results(db)
    mine = trials[trials.method == "norm_method:LargestIncomingNorm"]
    mask = sparsebench.load_mask(db, int(mine.trial_id.item()))
    parent = MLP(64, (16, 16), 10).init(int(mine.seed.item()))  # digits: 64 features, 10 classes
    expected = tuple(tuple(sorted(layer.weight.norm(dim=1).topk(8).indices.tolist())) for layer in parent[:2])
    assert mask.kept == expected
    assert mask.kept != ((0, 1, 2, 3, 4, 5, 6, 7),) * 2  # not the first nodes by accident


def test_bad_input_from_a_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sparsebench.cli", "run", "--sparsities", "1.5", "--store", str(tmp_path / "s.db")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and "sparsity" in proc.stderr


USER_METHODS = textwrap.dedent(
    """
    from sparsebench import Method, Selection
    from sparsebench.models import NodeMask, kept_count

    class Vandal(Method):
        '''Zeroes the parent it is given, then picks the first nodes.'''
        def select(self, ctx):
            for layer in ctx.parent.weights:
                layer.weight.mul_(0)
            ctx.x_train.mul_(0)
            keep = [list(range(kept_count(w, ctx.sparsity))) for w in ctx.spec.hidden]
            return Selection(NodeMask.from_indices(keep, ctx.spec.hidden))

    class Everything(Method):
        '''Returns the full mask whatever the sparsity.'''
        def select(self, ctx):
            return Selection(NodeMask.full(ctx.spec.hidden))
    """
)


def test_a_method_cannot_change_what_other_methods_train_on(tmp_path, monkeypatch, cli):
    (tmp_path / "user_methods.py").write_text(USER_METHODS)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli("run", *FAST, "--methods", "random", "--store", str(tmp_path / "a.db"))[0] == 0
    assert cli("run", *FAST, "--methods", "random,user_methods:Vandal", "--store", str(tmp_path / "b.db"))[0] == 0
    import sparsebench

    a, b = sparsebench.load_results(tmp_path / "a.db"), sparsebench.load_results(tmp_path / "b.db")
    assert a[a.method == "random"].final_test_loss.item() == pytest.approx(b[b.method == "random"].final_test_loss.item(), abs=1e-6)
    assert (b[b.method == "user_methods:Vandal"].candidates == 0).all()


def test_a_mask_of_the_wrong_sparsity_is_one_line_exit_2(tmp_path, monkeypatch, cli):
    (tmp_path / "user_methods.py").write_text(USER_METHODS)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = cli("run", *FAST, "--methods", "random,user_methods:Everything", "--store", str(tmp_path / "s.db"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "user_methods:Everything" in err and "[8, 8]" in err


def test_method_order_does_not_make_a_new_experiment(tmp_path, cli):
    db = str(tmp_path / "s.db")
    assert cli("run", *FAST, "--methods", "dense,random,random-search", "--store", db)[0] == 0
    assert cli("run", *FAST, "--methods", "random-search,dense,random", "--store", db)[0] == 0
    import sparsebench

    assert len(sparsebench.list_experiments(db)) == 1


def test_probe_without_random_search_is_refused(tmp_path, cli):
    code, _, err = cli("run", *FAST, "--methods", "dense,random", "--probe", "2", "--store", str(tmp_path / "s.db"))
    assert code == 2 and "probe" in err and "random-search" in err


# -- issue 11.10 and 11.13: what run and list say ----------------------------------------------
def test_run_refuses_an_in_memory_store_in_one_line(cli):
    code, out, err = cli("run", *FAST, "--store", ":memory:")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "store: got ':memory:'" in err and "keeps nothing" in err


BROKEN_LOADER = "def load(seed):\n    raise OSError('the data file is gone')\n"


def test_a_refused_run_leaves_no_store_file_at_a_new_path(tmp_path, monkeypatch, cli):
    (tmp_path / "broken_data.py").write_text(BROKEN_LOADER)
    monkeypatch.syspath_prepend(str(tmp_path))
    db = tmp_path / "new.db"
    code, _, err = cli("run", *FAST, "--dataset", "broken_data:load", "--store", str(db))
    assert code == 2 and "broken_data:load" in err, err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new.db")) == []


def test_the_closing_hint_is_a_command_that_works_as_typed(tmp_path, monkeypatch, cli):
    """The report it names is the experiment just run, even when another experiment is newer."""
    import shlex

    entry_point = os.path.join(os.path.dirname(sys.executable), "sparsebench")
    assert os.path.exists(entry_point)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [entry_point, "run"])
    store = "my results's.db"  # a space and a quote: shell-quoted in the hint
    assert cli("run", *FAST, "--store", store)[0] == 0
    assert cli("run", *FAST, "--epochs", "2", "--store", store)[0] == 0  # experiment 2
    code, _, err = cli("run", *FAST, "--store", store)  # experiment 1 again: already complete
    assert code == 0
    hint = err.strip().splitlines()[-1]
    command = hint.split("; next: ", 1)[1]
    assert "--experiment 1" in command
    proc = subprocess.run(shlex.split(command), cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("experiment 1: wrote") and (tmp_path / "report" / "report.html").is_file()


def test_the_hint_of_a_run_started_as_a_module_names_the_module(monkeypatch):
    import shlex

    from sparsebench import cli as cli_module

    monkeypatch.setattr(sys, "argv", [cli_module.__file__, "run"])
    words = shlex.split(cli_module.report_command("a b.db", 3))
    assert words == [sys.executable, "-m", "sparsebench.cli", "report", "--store", "a b.db", "--experiment", "3", "--out", "report"]
    monkeypatch.setattr(sys, "argv", ["/somewhere/not/on/the/path/sparsebench", "run"])
    assert shlex.split(cli_module.report_command("s.db", 1))[0] == "/somewhere/not/on/the/path/sparsebench"


def test_list_says_whether_an_unfinished_experiment_is_running_or_stopped(tmp_path, cli, tiny_config):
    import socket

    import sparsebench
    from sparsebench.api import STOPPED
    from sparsebench.store import Store

    db = tmp_path / "s.db"
    with Store(db) as st:
        eid = st.experiment_id(tiny_config.config_hash(), tiny_config.to_dict())
    status = lambda: sparsebench.list_experiments(db).set_index("experiment").loc[eid, "status"]  # noqa: E731

    assert status() == STOPPED  # no run holds a claim: abandoned
    code, out, _ = cli("list", "--store", str(db))
    assert code == 0 and "stopped: resume with the same command" in out and "0/10" in out

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    cases = [
        (f"{host}:{os.getpid()}:x", 60, "running"),  # a live process of this machine
        (f"{host}:{gone.pid}:x", 60, STOPPED),  # killed: its lease has not expired, but it is gone
        ("another-host:1:x", 60, "running"),  # another machine: alive until its lease expires
        ("another-host:1:x", -1, STOPPED),  # ... which it has
    ]
    for owner, lease, expected in cases:
        with Store(db) as st:
            st.release_claims("another-host:1:x")
            st.con.execute("DELETE FROM claims")
            st.claim_next(eid, owner, lease, lambda: ["dense"])
        assert status() == expected, owner
    code, out, _ = cli("list", "--store", str(db))
    assert "stopped" in out

    sparsebench.run(tiny_config, store=db, progress=False)
    assert status() == "complete"
