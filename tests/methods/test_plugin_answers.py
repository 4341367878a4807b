"""What a user's method answers is checked (issue 11, item 8): one line, exit 2, never a silent success."""

import os
import subprocess
import sys
import textwrap

import pytest

import sparsebench
from sparsebench.store import Store

PLUGIN = textwrap.dedent(
    """
    import os
    import sys

    from sparsebench import Method, Selection

    class Answer(Method):
        '''Draws 4 candidates and answers as the environment says.'''
        def select(self, ctx):
            masks = ctx.sample(4)
            how = os.environ.get("ANSWER", "ok")
            if how == "exit0":
                sys.exit(0)
            if how == "interrupt":
                raise KeyboardInterrupt
            scores = {"ok": [1.0, 2.0, 3.0, 4.0], "short": [1.0, 2.0], "nan": [1.0, float("nan"), 3.0, 4.0],
                      "inf": [1.0, 2.0, float("-inf"), 4.0], "text": [1.0, 2.0, "high", 4.0]}[how]
            return Selection(masks[0], candidates=masks, scores=scores, chosen=0)
    """
)
ARGS = ["--dataset", "digits", "--hidden", "8", "--seeds", "1", "--sparsities", "0.5", "--candidates", "2",
        "--epochs", "1", "--methods", "dense,random,answer_mod:Answer", "--no-progress"]


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "answer_mod.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("answer_mod", None)


@pytest.mark.parametrize("how, words", [
    ("short", "its Selection at sparsity 0.5, seed 0 has 4 candidates but 2 scores; allowed: one score per candidate"),
    ("nan", "its Selection at sparsity 0.5, seed 0 has score nan for candidate 1; allowed: finite numbers"),
    ("inf", "its Selection at sparsity 0.5, seed 0 has score -inf for candidate 2; allowed: finite numbers"),
    ("text", "its Selection at sparsity 0.5, seed 0 has score 'high' for candidate 2; allowed: finite numbers"),
    ("exit0", "answer_mod.Answer.select called sys.exit(0) at sparsity 0.5, seed 0; allowed: return a Selection"),
])
def test_a_bad_answer_is_refused_in_one_line_and_nothing_of_its_group_is_stored(plugin, tmp_path, monkeypatch, cli, how, words):
    db = tmp_path / "a.db"
    monkeypatch.setenv("ANSWER", how)
    code, _, err = cli("run", *ARGS, "--store", str(db))
    assert code == 2 and f"method 'answer_mod:Answer': {words}" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    trials = sparsebench.load_results(db)
    assert set(trials.method) <= {"dense"}  # the sparse group is not stored half


def test_a_good_answer_stores_every_score(plugin, tmp_path, monkeypatch, cli):
    db = tmp_path / "g.db"
    monkeypatch.setenv("ANSWER", "ok")
    assert cli("run", *ARGS, "--store", str(db))[0] == 0
    with Store(db) as st:
        scores = st.candidates()
    assert sorted(scores[scores.method == "answer_mod:Answer"].score) == [1.0, 2.0, 3.0, 4.0]


def run_cli(tmp_path, answer: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSWER": answer, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sparsebench.cli", "run", *ARGS, "--store", str(tmp_path / "p.db")],
                          capture_output=True, text=True, timeout=300, env=env)


def test_sys_exit_in_a_plugin_is_an_error_not_a_success(plugin, tmp_path):
    proc = run_cli(tmp_path, "exit0")
    assert proc.returncode == 2, proc.stderr
    assert "called sys.exit(0)" in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""  # no summary, as if it had finished


def test_ctrl_c_in_a_plugin_is_an_interruption_that_resumes(plugin, tmp_path):
    proc = run_cli(tmp_path, "interrupt")
    assert proc.returncode == 130, proc.stderr
    assert "interrupted; finished work groups are stored. Resume with the same command" in proc.stderr
    assert set(sparsebench.load_results(tmp_path / "p.db").method) == {"dense"}  # the group before it is kept
    proc = run_cli(tmp_path, "ok")
    assert proc.returncode == 0, proc.stderr
    assert set(sparsebench.load_results(tmp_path / "p.db").method) == {"dense", "random", "answer_mod:Answer"}
