"""Issue 17, items 4 and 5, end to end: each trial's selection cost in the store and the export
(wall-clock only with --timings), and the report's Leaderboard with user plugin methods."""

import csv
import sys
import textwrap

import pytest

import sparsebench
from sparsebench.analysis import paired_comparison

PLUGIN = textwrap.dedent(
    """
    from sparsebench import Method, Selection
    from sparsebench.models import NodeMask

    class FirstNodes(Method):
        '''Keeps the first nodes of every layer: no search at all.'''
        def select(self, ctx):
            keep = [list(range(k)) for k in ctx.kept()]
            return Selection(NodeMask.from_indices(keep, ctx.node_space.widths))

    class Declared(Method):
        '''Says it scored 50 sub-networks and trained for 3 epochs (returning none of them).'''
        def select(self, ctx):
            (mask,) = ctx.sample(1)
            return Selection(mask, evaluations=50, search_epochs=3)

    class Negative(Method):
        def select(self, ctx):
            (mask,) = ctx.sample(1)
            return Selection(mask, evaluations=-1)
    """
)
METHODS = "dense,random,random-search,lb_plugin:FirstNodes,lb_plugin:Declared"
K = 3
ARGS = ["--dataset", "digits", "--hidden", "16", "--seeds", "2", "--sparsities", "0.5,0.9", "--candidates", str(K),
        "--epochs", "2", "--no-progress"]


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "lb_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("lb_plugin", None)


def export_rows(cli, db, out, *extra):
    code, _, err = cli("export", "--store", str(db), "--format", "csv", "--out", str(out), *extra)
    assert code == 0, err
    columns, *rows = list(csv.reader(out.open()))
    return columns, [dict(zip(columns, r)) for r in rows], out.read_bytes()


def test_the_cost_of_each_selection_is_stored_and_exported_without_wall_clock(plugin, tmp_path, cli):
    exports = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.db"
        code, _, err = cli("run", *ARGS, "--methods", METHODS, "--store", str(db))
        assert code == 0, err
        columns, rows, data = export_rows(cli, db, tmp_path / f"{name}.csv")
        exports.append(data)
    assert exports[0] == exports[1]  # the default export stays byte-identical across runs
    assert "candidate_evaluations" in columns and "search_epochs" in columns
    assert "selection_seconds" not in columns and "train_seconds" not in columns
    cost = {(r["method"], r["role"]): (r["candidate_evaluations"], r["search_epochs"]) for r in rows}
    assert cost == {("dense", "selected"): ("0", "0"), ("random", "selected"): ("0", "0"),
                    ("random-search", "selected"): (str(K), "0"), ("lb_plugin:FirstNodes", "selected"): ("0", "0"),
                    ("lb_plugin:Declared", "selected"): ("50", "3")}

    columns, rows, _ = export_rows(cli, db, tmp_path / "t.csv", "--timings")
    assert columns[-2:] == ["train_seconds", "selection_seconds"]
    seconds = {r["method"]: float(r["selection_seconds"]) for r in rows if r["method"] != "dense"}
    assert all(s > 0 for s in seconds.values()) and {float(r["selection_seconds"]) for r in rows if r["method"] == "dense"} == {0.0}
    trials = sparsebench.load_results(db)
    assert str(trials["candidate_evaluations"].dtype) == "Int64" and trials["selection_seconds"].notna().all()


def test_a_negative_count_of_evaluations_is_refused_in_one_line(plugin, tmp_path, cli):
    code, _, err = cli("run", *ARGS, "--methods", "dense,random,lb_plugin:Negative", "--store", str(tmp_path / "n.db"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "method 'lb_plugin:Negative': its Selection at sparsity 0.5, seed 0 has evaluations -1; allowed: None" in err


def test_the_report_leads_with_the_leaderboard_ordered_by_mean_gain(plugin, tmp_path, cli):
    db = tmp_path / "r.db"
    code, _, err = cli("run", *ARGS, "--methods", METHODS, "--store", str(db))
    assert code == 0, err
    code, _, err = cli("report", "--store", str(db), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    markdown = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8").replace("\\_", "_")  # Markdown's escape
    headings = [line[3:] for line in markdown.splitlines() if line.startswith("## ")]
    assert [h for h in headings if h not in ("Warnings", "Status")][0] == "Leaderboard"
    board = markdown.split("## Leaderboard", 1)[1].split("\n## ", 1)[0]
    methods = [line.split(" | ")[1] for line in board.splitlines() if line.startswith("| ") and line[2].isdigit()]
    means = paired_comparison(sparsebench.load_results(db)).groupby("method")["mean_diff"].mean()
    expected = sorted(means.index, key=lambda m: -means[m])  # best mean gain first
    assert methods == expected and sorted(methods) == sorted(["random-search", "lb_plugin:FirstNodes", "lb_plugin:Declared"])
    assert "| sparsity 0.5 | sparsity 0.9 |" in board
    # Unranked below them, the references: random's mean accuracy, and dense − random paired by seed.
    trials = sparsebench.load_results(db)
    done = trials[(trials["role"] == "selected") & (trials["status"] == "done")]
    references = [line.rstrip(" |").split(" | ") for line in board.splitlines() if line.startswith("| — | ")]
    assert [r[1] for r in references] == ["random (baseline)", "dense (parent)"]
    random_acc = done[done["method"] == "random"].groupby("sparsity")["final_test_acc"].mean()
    assert references[0][3:5] == [f"{random_acc[s] * 100:.1f}% (the baseline)" for s in (0.5, 0.9)]
    dense = done[done["method"] == "dense"].set_index("seed")["final_test_acc"]
    for column, s in ((3, 0.5), (4, 0.9)):
        of_random = done[(done["method"] == "random") & (done["sparsity"] == s)].set_index("seed")["final_test_acc"]
        gap = (dense - of_random).mean() * 100
        assert references[1][column].replace("−", "-").startswith(f"{gap:+.1f} pp") and "(reference)" in references[1][column]
    assert "every method × sparsity compared with random" in board
    assert "Adding a method to an experiment therefore changes the adjustment of the others" in board
    for fmt in ("png", "pdf", "svg"):
        assert (tmp_path / "rep" / "figures" / f"leaderboard.{fmt}").is_file()
        assert (tmp_path / "rep" / "figures" / f"gain_vs_cost.{fmt}").is_file()
        # Declared trained for 3 epochs on search: the gain against search epochs is drawn too
        assert (tmp_path / "rep" / "figures" / f"gain_vs_search_epochs.{fmt}").is_file()
    cost = markdown.split("## Gain over random vs cost of search", 1)[1].split("\n## ", 1)[0]
    declared = [line for line in cost.splitlines() if line.startswith("| lb_plugin:Declared | 0.9 |")]
    assert len(declared) == 1 and declared[0].split(" | ")[5:7] == ["50", "3"]


def test_one_method_compared_with_random_has_no_leaderboard(tmp_path, cli):
    db = tmp_path / "one.db"
    assert cli("run", *ARGS, "--store", str(db))[0] == 0
    code, _, err = cli("report", "--store", str(db), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    markdown = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert "## Leaderboard" not in markdown and "## Gain over random vs cost of search" in markdown
    assert not (tmp_path / "rep" / "figures" / "leaderboard.png").exists()
    assert not (tmp_path / "rep" / "figures" / "gain_vs_search_epochs.png").exists()  # no method trained to search
